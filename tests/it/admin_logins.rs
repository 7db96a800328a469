//! The service's own admin logins: counted per client address in a scope of their own (a login
//! user named `admin` is not the admin; token guesses are throttled whatever the policy), and
//! behind `trusted_proxies` the client is the one `X-Forwarded-For` names.

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
