//! Self-service unlock: an unlock token from the admin API unlocks its username once (its
//! records with the username go, its IP's lock stays), told as a reset by `unlock token`; used
//! twice, forged, expired or signed for another purpose it is a 400 and removes nothing; a
//! site's API token redeems its own scope's only. On a Redis server, a cluster and the
//! in-process store.

use std::time::{Duration, SystemTime};

use lockout::config::Config;
use lockout::devices::Devices;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{admin, http_client, with_admin, RedisCluster, RedisServer, TestService};

const SECRET: &str = "unlock-secret-0123456789";
/// The address that guessed alice's password.
const GUESSER: &str = "203.0.113.9";

/// Per username, per IP, and per IP and username, 3 failures each; the admin API open.
fn configure(config: &mut Config) {
    config.policy = crate::support::policy(3, &[&["username"], &["ip"], &["ip", "username"]]);
    config.devices = Some(Devices::new(SECRET.into()));
    with_admin(config);
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Three failures of alice from `GUESSER`: her username, the guesser's IP and the pair locked.
async fn lock_alice(client: &reqwest::Client, service: &TestService) {
    for _ in 0..3 {
        let body = json!({ "ip": GUESSER, "username": "alice" });
        post(client, service.at("/v1/failure"), body).await;
    }
}

async fn check(client: &reqwest::Client, service: &TestService, ip: &str) -> Value {
    let body = json!({ "ip": ip, "username": "alice", "record_refusal": false });
    post(client, service.at("/v1/check"), body).await.1
}

async fn an_unlock_token_works_once(service: TestService) {
    let client = http_client();
    lock_alice(&client, &service).await;
    let ask = |body: Value| {
        client
            .post(service.at("/v1/unlock-tokens"))
            .basic_auth("admin", Some("s3cret"))
            .json(&body)
            .send()
    };
    for (body, says) in [
        (json!({}), "missing field `username`"),
        (json!({ "username": "" }), "username: must not be empty"),
        (
            json!({ "username": "alice", "scope": "_admin" }),
            "scope: names starting with _",
        ),
    ] {
        let response = ask(body).await.unwrap();
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let response = ask(json!({ "username": "alice" })).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["expires_in_secs"], 3600, "{answer}");
    let token = answer["token"].as_str().unwrap().to_string();

    let redeem = |token: String| post(&client, service.at("/v1/unlock"), json!({ "token": token }));
    let (status, answer) = redeem(token.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({ "username": "alice", "removed": 2 }));
    assert_eq!(
        check(&client, &service, "198.51.100.7").await["locked"],
        false,
        "alice is unlocked"
    );
    let answer = check(&client, &service, GUESSER).await;
    assert_eq!(
        answer["locked_by"],
        json!([["ip"]]),
        "the guesser's address stays locked, and its pair with alice went: {answer}"
    );
    let (_, events) = admin(&client, Method::GET, service.at("/v1/events")).await;
    let reset = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "lockout_reset")
        .unwrap_or_else(|| panic!("no reset told: {events}"));
    assert_eq!(reset["by"], "unlock token", "{reset}");
    assert_eq!(reset["subject"], "username=alice", "{reset}");
    assert_eq!(reset["removed"], 2, "{reset}");

    // Locked again: a token used twice, forged, expired or of another kind removes nothing.
    for n in 1..=3 {
        let body = json!({ "ip": format!("192.0.2.{n}"), "username": "alice" });
        post(&client, service.at("/v1/failure"), body).await;
    }
    let expired = lockout::unlock::issue(
        &SECRET.into(),
        "alice",
        None,
        Duration::from_secs(3600),
        SystemTime::now() - Duration::from_secs(7200),
    )
    .unwrap();
    let forged = lockout::unlock::issue(
        &"another-secret-0123456789".into(),
        "alice",
        None,
        Duration::from_secs(3600),
        SystemTime::now(),
    )
    .unwrap();
    let device = Devices::new(SECRET.into())
        .issue("alice", None, SystemTime::now())
        .unwrap();
    for (token, says) in [
        (token, "token: already used"),
        (expired, "token: expired"),
        (forged, "token: not an unlock token of this service"),
        (device, "token: not an unlock token of this service"),
        (
            "garbage".to_string(),
            "token: not an unlock token of this service",
        ),
    ] {
        let (status, answer) = redeem(token).await;
        assert_eq!(status, 400, "{says}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with(says),
            "{says}: {answer}"
        );
        let answer = check(&client, &service, "198.51.100.7").await;
        assert_eq!(
            answer["locked_by"],
            json!([["username"]]),
            "{says}: {answer}"
        );
    }
}

#[tokio::test]
async fn an_unlock_token_works_once_on_a_server() {
    let redis = RedisServer::start();
    an_unlock_token_works_once(TestService::start(&redis, configure).await).await;
    let keys = redis.keys();
    let used: Vec<&String> = keys.iter().filter(|key| key.contains(":unlock:")).collect();
    assert_eq!(used.len(), 1, "{keys:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(used[0])
        .query(&mut redis.connection())
        .unwrap();
    assert!(
        (1..=3_600_000).contains(&ttl),
        "kept while the token is valid: {ttl}"
    );
}

#[tokio::test]
async fn an_unlock_token_works_once_on_a_cluster() {
    let cluster = RedisCluster::start(0);
    an_unlock_token_works_once(TestService::start_on(cluster.endpoint(), configure).await).await;
}

#[tokio::test]
async fn an_unlock_token_works_once_in_process() {
    an_unlock_token_works_once(TestService::start_with(configure).await).await;
}

/// Of many redemptions of one token at once, exactly one unlocks.
#[tokio::test]
async fn a_token_redeemed_at_once_unlocks_once() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, configure).await;
    let client = http_client();
    lock_alice(&client, &service).await;
    let token = lockout::unlock::issue(
        &SECRET.into(),
        "alice",
        None,
        Duration::from_secs(60),
        SystemTime::now(),
    )
    .unwrap();
    let redemptions = (0..8).map(|_| {
        post(
            &client,
            service.at("/v1/unlock"),
            json!({ "token": token.clone() }),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(redemptions)
        .await
        .into_iter()
        .map(|(status, _)| status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 400).count(),
        7,
        "{statuses:?}"
    );
}

/// A site's API token redeems its own scope's unlock tokens only, and the unlock works on that
/// scope's records; without `devices.secret` there are no unlock tokens.
#[tokio::test]
async fn unlock_tokens_are_bound_to_their_scope() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        configure(config);
        config.api_tokens = vec![lockout::config::ApiToken {
            token: "site-a-t0ken".into(),
            scopes: vec!["site-a".to_string()].into(),
        }];
    })
    .await;
    let client = http_client();
    for _ in 0..3 {
        let body = json!({ "ip": GUESSER, "username": "alice", "scope": "site-a" });
        client
            .post(service.at("/v1/failure"))
            .bearer_auth("site-a-t0ken")
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    let issue = |scope: &str| {
        lockout::unlock::issue(
            &SECRET.into(),
            "alice",
            Some(scope),
            Duration::from_secs(60),
            SystemTime::now(),
        )
        .unwrap()
    };
    let redeem = |token: String| {
        client
            .post(service.at("/v1/unlock"))
            .bearer_auth("site-a-t0ken")
            .json(&json!({ "token": token }))
            .send()
    };
    let response = redeem(issue("site-b")).await.unwrap();
    assert_eq!(response.status(), 403);
    let response = redeem(issue("site-a")).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({ "username": "alice", "removed": 2 }));

    let off = TestService::start(&redis, with_admin).await;
    let response = client
        .post(off.at("/v1/unlock-tokens"))
        .basic_auth("admin", Some("s3cret"))
        .json(&json!({ "username": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("devices.secret"),
        "{answer}"
    );
}
