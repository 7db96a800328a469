//! Several `lockout serve` on one Redis: what an operator does on one is seen by the others,
//! their lock caches included.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::http_client;
use crate::support::{eventually, policy, RedisServer, TestService};

async fn start(redis: &RedisServer) -> TestService {
    TestService::start(redis, |c| {
        c.policy = policy(3, &[&["ip"]]);
        c.admin.password = "s3cret".into();
    })
    .await
}

async fn locked(client: &reqwest::Client, service: &TestService) -> bool {
    let body: Value = client
        .post(service.at("/v1/check"))
        .json(&json!({"ip": "10.0.0.1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["locked"].as_bool().unwrap()
}

#[tokio::test]
async fn a_reset_on_one_instance_unlocks_on_the_others_at_once() {
    let redis = RedisServer::start();
    let (one, other) = (start(&redis).await, start(&redis).await);
    let client = http_client();
    for _ in 0..3 {
        let failed = client
            .post(one.at("/v1/failure"))
            .json(&json!({"ip": "10.0.0.1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), 200);
    }
    // The other instance's lock cache knows the lock (30 minutes long) after one check.
    assert!(locked(&client, &other).await);
    assert!(locked(&client, &other).await);

    let reset: Value = client
        .delete(one.at("/v1/attempts?ip=10.0.0.1"))
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["removed"], 1, "{reset}");
    // The reset notice travels by pub/sub: it has reached the other instance as soon as Redis
    // delivered it, well within this bound.
    eventually(
        Duration::from_secs(1),
        "the other instance unlocks",
        async || !locked(&client, &other).await,
    )
    .await;
    assert!(!locked(&client, &one).await);
}
