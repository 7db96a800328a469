//! The service's own admin logins: counted per client address in a scope of their own (a login
//! user named `admin` is not the admin; token guesses are throttled whatever the policy), and
//! behind `trusted_proxies` the client is the one `X-Forwarded-For` names, and a malformed entry
//! where a trusted proxy should have written one refuses the request (never counts the proxy).

use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::json;

use crate::support::http_client;
use crate::support::{lockout_command, policy, RedisServer, TestService};

async fn status(request: RequestBuilder) -> StatusCode {
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn a_login_user_named_admin_is_not_the_admin() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        c.admin.password = "s3cret".into();
        c.policy = policy(3, &[&["username"]]);
    })
    .await;
    let client = http_client();
    for _ in 0..3 {
        let failure = json!({"ip": "10.0.0.1", "username": "admin"});
        client
            .post(service.at("/v1/failure"))
            .json(&failure)
            .send()
            .await
            .unwrap();
    }
    let right = client
        .get(service.at("/v1/attempts"))
        .basic_auth("admin", Some("s3cret"));
    assert_eq!(status(right).await, StatusCode::OK);
}

#[tokio::test]
async fn token_guesses_are_throttled_whatever_the_policy() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        c.admin.password = "s3cret".into();
        c.admin.token = "t0ken".into();
        // No IP combination: before, a token guess formed no identity and was never counted.
        c.policy = policy(3, &[&["username"]]);
    })
    .await;
    let client = http_client();
    let attempts = service.at("/v1/attempts");
    for _ in 0..5 {
        let guess = client.get(&attempts).bearer_auth("guess");
        assert_eq!(status(guess).await, StatusCode::UNAUTHORIZED);
    }
    let sixth = client.get(&attempts).bearer_auth("guess");
    assert_eq!(status(sixth).await, StatusCode::TOO_MANY_REQUESTS);
    let right = client.get(&attempts).basic_auth("admin", Some("s3cret"));
    assert_eq!(
        status(right).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked out of the admin"
    );
    let listed = lockout_list(&redis, &["--scope", "_admin", "--json", "list"]);
    assert_eq!(
        listed["attempts"][0]["parameters"],
        json!({"ip": "127.0.0.1"})
    );
    let unscoped = lockout_list(&redis, &["--json", "list"]);
    assert_eq!(
        unscoped["attempts"],
        json!([]),
        "not among the protected logins"
    );
}

#[tokio::test]
async fn behind_trusted_proxies_the_forwarded_client_is_counted() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        c.admin.password = "s3cret".into();
        c.admin.failure_limit = std::num::NonZeroU32::new(2).unwrap();
        c.trusted_proxies =
            lockout::policy::IpList::parse("trusted_proxies", &["127.0.0.0/8", "10.0.0.0/8"])
                .unwrap();
    })
    .await;
    let client = http_client();
    let attempts = service.at("/v1/attempts");
    let from = |forwarded: &str, password: &str| {
        client
            .get(&attempts)
            .header("X-Forwarded-For", forwarded)
            .basic_auth("admin", Some(password))
    };
    // The attacker's address is the nearest one a trusted proxy vouches for.
    for _ in 0..2 {
        let guess = from("198.51.100.7, 203.0.113.5, 10.1.1.1", "guess");
        assert_eq!(status(guess).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        status(from("203.0.113.5", "s3cret")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(from("203.0.113.6, 10.1.1.1", "s3cret")).await,
        StatusCode::OK,
        "another admin behind the same proxy is not locked out"
    );

    // Without trusted proxies the header is the client's to write, so it is ignored.
    let direct = TestService::start(&redis, |c| {
        c.admin.password = "s3cret".into();
        c.admin.failure_limit = std::num::NonZeroU32::new(2).unwrap();
        c.keys = lockout::keys::Keyspace::new("direct").unwrap();
    })
    .await;
    let attempts = direct.at("/v1/attempts");
    for forged in ["192.0.2.1", "192.0.2.2"] {
        let guess = client
            .get(&attempts)
            .header("X-Forwarded-For", forged)
            .basic_auth("admin", Some("guess"));
        assert_eq!(status(guess).await, StatusCode::UNAUTHORIZED);
    }
    let right = client
        .get(&attempts)
        .header("X-Forwarded-For", "192.0.2.3")
        .basic_auth("admin", Some("s3cret"));
    assert_eq!(status(right).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn lockouts_own_scopes_are_not_for_requests() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |_| {}).await;
    let response = http_client()
        .post(service.at("/v1/failure"))
        .json(&json!({"ip": "10.0.0.1", "scope": "_admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(redis.keys(), Vec::<String>::new());
}

fn lockout_list(redis: &RedisServer, args: &[&str]) -> serde_json::Value {
    let output = lockout_command(&[("LOCKOUT_REDIS_URL", &redis.url())])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A service behind trusted proxies (127.0.0.0/8, 10.0.0.0/8) whose admin is locked out after
/// two wrong guesses.
async fn behind_proxies(redis: &RedisServer) -> TestService {
    TestService::start(redis, |c| {
        c.admin.password = "s3cret".into();
        c.admin.failure_limit = std::num::NonZeroU32::new(2).unwrap();
        c.trusted_proxies =
            lockout::policy::IpList::parse("trusted_proxies", &["127.0.0.0/8", "10.0.0.0/8"])
                .unwrap();
    })
    .await
}

/// An admin request with one `X-Forwarded-For` line per item of `forwarded`, as bytes.
fn forwarded_admin(service: &TestService, forwarded: &[&[u8]], password: &str) -> RequestBuilder {
    let mut request = http_client()
        .get(service.at("/v1/attempts"))
        .basic_auth("admin", Some(password));
    for line in forwarded {
        request = request.header("X-Forwarded-For", HeaderValue::from_bytes(line).unwrap());
    }
    request
}

/// The addresses counted for failed admin logins.
fn admin_addresses(redis: &RedisServer) -> Vec<String> {
    let listed = lockout_list(redis, &["--scope", "_admin", "--json", "list"]);
    let mut addresses: Vec<String> = listed["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["parameters"]["ip"].as_str().unwrap().to_string())
        .collect();
    addresses.sort();
    addresses
}

#[tokio::test]
async fn a_byte_beyond_ascii_in_the_clients_part_of_x_forwarded_for_does_not_count_the_proxy() {
    let redis = RedisServer::start();
    let service = behind_proxies(&redis).await;
    // What a proxy that appends makes of a client's own header holding a byte beyond ASCII.
    let attacker: &[u8] = b"203.0.113.5\xff, 198.51.100.9";
    for _ in 0..2 {
        let guess = forwarded_admin(&service, &[attacker], "guess");
        assert_eq!(status(guess).await, StatusCode::UNAUTHORIZED);
    }
    let attacker_again = forwarded_admin(&service, &[b"198.51.100.9"], "s3cret");
    assert_eq!(
        status(attacker_again).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the address the proxy vouched for is the one locked out"
    );
    let from_the_proxy_host = forwarded_admin(&service, &[], "s3cret");
    assert_eq!(
        status(from_the_proxy_host).await,
        StatusCode::OK,
        "the proxy's own address is not locked out"
    );
    assert_eq!(admin_addresses(&redis), ["198.51.100.9"]);
}

#[tokio::test]
async fn an_entry_a_trusted_proxy_should_have_written_that_is_no_address_refuses_the_request() {
    let redis = RedisServer::start();
    let service = behind_proxies(&redis).await;
    let malformed: [&[u8]; 10] = [
        b"garbage, 10.1.1.1",
        b"198.51.100.7, 10.1.1.\xb9",
        b"\xff\xfe",
        b"",
        b" ",
        b", 10.1.1.1",
        b"198.51.100.7,",
        b"198.51.100.7, unknown",
        b"198.51.100.7; 10.1.1.1",
        b"fe80::1%eth0",
    ];
    for forwarded in malformed {
        let shown = String::from_utf8_lossy(forwarded);
        for password in ["guess", "s3cret"] {
            let response = forwarded_admin(&service, &[forwarded], password)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{shown:?}");
            let body: serde_json::Value = response.json().await.unwrap();
            let message = body["error"].as_str().unwrap();
            assert!(message.contains("X-Forwarded-For"), "{message}");
            assert!(
                !message.contains("127.0.0.1"),
                "no proxy address: {message}"
            );
        }
    }
    assert_eq!(
        admin_addresses(&redis),
        Vec::<String>::new(),
        "no guess was checked, so none was counted"
    );
    let from_the_proxy_host = forwarded_admin(&service, &[], "s3cret");
    assert_eq!(status(from_the_proxy_host).await, StatusCode::OK);
}

#[tokio::test]
async fn x_forwarded_for_lines_are_one_list_read_from_the_right() {
    let redis = RedisServer::start();
    let service = behind_proxies(&redis).await;
    // Garbage and empty entries left of the nearest untrusted address are the client's own:
    // never read.
    let client_junk: [&[u8]; 4] = [b"junk\xfe", b"", b"x,,y", b"198.51.100.30"];
    let long_chain: Vec<&[u8]> = std::iter::once(&b"198.51.100.31"[..])
        .chain(std::iter::repeat_n(&b"10.1.1.1"[..], 60))
        .collect();
    let with_ports: [&[u8]; 2] = [b"203.0.113.8:4711, 10.1.1.1", b"[2001:db8::8]:443"];
    let forwarded = [
        &client_junk[..],
        &long_chain,
        &with_ports[..1],
        &with_ports[1..],
    ];
    for lines in forwarded {
        let guess = forwarded_admin(&service, lines, "guess");
        assert_eq!(status(guess).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        admin_addresses(&redis),
        // An IPv6 address is counted as its /64 (`ipv6_prefix_length`).
        [
            "198.51.100.30",
            "198.51.100.31",
            "2001:db8::",
            "203.0.113.8"
        ]
    );

    // A last line that is no address is the proxy's entry: not skipped for the one before.
    let skipped = forwarded_admin(&service, &[b"198.51.100.32", b"\xff"], "guess");
    assert_eq!(status(skipped).await, StatusCode::BAD_REQUEST);
    assert_eq!(admin_addresses(&redis).len(), 4);
}
