//! A primary that moves: behind one name (a DNS failover, here a proxy sent elsewhere) and
//! behind Sentinels. The service answers throughout (degraded at most briefly), then works on
//! the new primary with the counts it had, without a restart; each answered failure counted
//! once.

use lockout::RedisEndpoint;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::proxy::Proxy;
use crate::support::{policy, RedisServer, TestService};

/// Posts failures of one IP until one is answered by Redis (not degraded), at most `tries`;
/// answers the failures' count then and how many answers were degraded.
async fn fail_until_counted(service: &TestService, tries: usize) -> (u64, usize) {
    let client = reqwest::Client::new();
    for degraded in 0..tries {
        let response = client
            .post(service.at("/v1/failure"))
            .json(&json!({"ip": "10.0.0.1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "answers during the failover");
        let body: Value = response.json().await.unwrap();
        if body.get("degraded").is_none() {
            return (body["failures"][0]["count"].as_u64().unwrap(), degraded);
        }
    }
    panic!("still degraded after {tries} failures");
}

/// The replica is promoted and the name moved to it; the old primary, now its replica, answers
/// READONLY on the connection the service still holds.
#[tokio::test]
async fn a_name_moved_to_a_promoted_replica_is_followed() {
    let old = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let new = RedisServer::start_with(&["--replicaof", "127.0.0.1", &old.port().to_string()]);
    let proxy = Proxy::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), old.port()).await;
    let service = TestService::start_on(
        RedisEndpoint::server(format!("redis://127.0.0.1:{}", proxy.port)),
        |c| c.policy = policy(100, &[&["ip"]]),
    )
    .await;
    for count in 1..=2 {
        assert_eq!(fail_until_counted(&service, 1).await, (count, 0));
    }
    // WAIT waits for its own connection's writes: one after the service's.
    let mut primary = old.connection();
    let () = redis::cmd("SET")
        .arg("synced")
        .arg(1)
        .query(&mut primary)
        .unwrap();
    let synced: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut primary)
        .unwrap();
    assert_eq!(synced, 1, "the replica has the counts");

    let () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut new.connection())
        .unwrap();
    let () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(new.port())
        .query(&mut old.connection())
        .unwrap();
    proxy.send_to(new.port());

    let (count, degraded) = fail_until_counted(&service, 3).await;
    assert_eq!(
        count, 3,
        "the new primary's count, each answered failure once ({degraded} degraded)"
    );
    assert!(degraded <= 1, "one READONLY answer at most: {degraded}");
    assert_eq!(fail_until_counted(&service, 1).await, (4, 0));
}
