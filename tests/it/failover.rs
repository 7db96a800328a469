//! A primary that moves: behind one name (a DNS failover, here a proxy sent elsewhere) and
//! behind Sentinels. The service answers throughout (degraded at most briefly), then works on
//! the new primary with the counts it had, without a restart; each answered failure counted
//! once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockout::keys::record_field;
use lockout::keys::KeyKind;
use lockout::{RedisEndpoint, Topology};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::proxy::Proxy;
use crate::support::http_client;
use crate::support::sentinel::{SentinelGroup, MASTER};
use crate::support::{eventually, lockout_command, policy, RedisServer, TestService};

/// Posts failures of one IP until one is answered by Redis (not degraded), at most `tries`;
/// answers the failures' count then and how many answers were degraded.
async fn fail_until_counted(service: &TestService, tries: usize) -> (u64, usize) {
    let client = http_client();
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
    old.wait_for_replica("synced");

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

/// Failures of 8 IPs under load through `SENTINEL FAILOVER`: the service answers throughout
/// (degraded while the primary moves), then works on the promoted replica without a restart.
/// Never is a failure counted twice, nor one lost that the old primary had replicated before
/// the failover began (acknowledged writes in the moment of the switch can be lost to Redis'
/// asynchronous replication: Redis' own guarantee, see docs/deployment.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_load_is_followed() {
    let group = Arc::new(SentinelGroup::start());
    let endpoint = RedisEndpoint::of(Topology::Sentinel {
        sentinels: group.sentinel_urls(),
        master: MASTER.into(),
        node_url: "redis://primary".into(),
    });
    let service = Arc::new(
        TestService::start_on(endpoint, |c| {
            c.policy = policy(1_000_000, &[&["ip"]]);
            c.command_timeout = Duration::from_millis(500);
        })
        .await,
    );
    let ips: Vec<String> = (1..=8).map(|n| format!("10.0.1.{n}")).collect();
    let failing_over = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (service, ips, failing_over, done) = (
            service.clone(),
            ips.clone(),
            failing_over.clone(),
            done.clone(),
        );
        async move {
            let client = http_client();
            // Per IP: failures answered before the failover began, and in all.
            let mut before: HashMap<String, u64> = HashMap::new();
            let mut answered: HashMap<String, u64> = HashMap::new();
            while !done.load(Ordering::SeqCst) {
                for ip in &ips {
                    let response = client
                        .post(service.at("/v1/failure"))
                        .json(&json!({"ip": ip}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200, "answers during the failover");
                    let body: Value = response.json().await.unwrap();
                    if body.get("degraded").is_some() {
                        continue;
                    }
                    *answered.entry(ip.clone()).or_default() += 1;
                    // Answered before the failover began: written before the WAIT below.
                    if !failing_over.load(Ordering::SeqCst) {
                        *before.entry(ip.clone()).or_default() += 1;
                    }
                }
            }
            (before, answered)
        }
    });
    let old = group.primary_port();
    // Some load on the old primary, all of it on the replica, then the failover.
    eventually(Duration::from_secs(10), "failures counted", async || {
        let keys = group.server(old).keys();
        keys.iter()
            .filter(|key| key.starts_with("lockout:attempt:"))
            .count()
            == ips.len()
    })
    .await;
    failing_over.store(true, Ordering::SeqCst);
    group.server(old).wait_for_replica("synced");
    let new = tokio::task::spawn_blocking({
        let group = group.clone();
        move || group.failover()
    })
    .await
    .unwrap();
    assert_ne!(new, old);
    // Working on the new primary: a failure answered by it, not degraded.
    let counted_before = group.server(new).command_calls("evalsha");
    eventually(
        Duration::from_secs(20),
        "failures counted by the new primary",
        async || group.server(new).command_calls("evalsha") > counted_before + 8,
    )
    .await;
    done.store(true, Ordering::SeqCst);
    let (before, answered) = load.await.unwrap();

    let mut primary = group.server(new).connection();
    for ip in &ips {
        let key = crate::support::key_of("lockout", KeyKind::Attempt, &format!("ip={ip}"));
        let count: u64 = redis::cmd("HGET")
            .arg(&key)
            .arg(record_field::FAILURES)
            .query::<Option<u64>>(&mut primary)
            .unwrap()
            .unwrap_or(0);
        let (answered, before) = (answered[ip], before.get(ip).copied().unwrap_or(0));
        assert!(
            count <= answered,
            "{ip}: {count} counted, {answered} answered: none twice"
        );
        assert!(
            count >= before,
            "{ip}: {count} counted, {before} answered before the failover: none lost"
        );
    }
}

/// `lockout ping` names the primary the Sentinels gave, reached with the data nodes' password.
#[test]
fn ping_reaches_the_sentinels_primary_with_its_password() {
    let group = SentinelGroup::start_with_password("pass word");
    let sentinels = group.sentinel_urls().join(",");
    let pinged = lockout_command(&[
        ("LOCKOUT_REDIS_URL", "redis://:pass%20word@primary"),
        ("LOCKOUT_REDIS_SENTINEL", &sentinels),
        ("LOCKOUT_REDIS_SENTINEL_MASTER", MASTER),
    ])
    .arg("ping")
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&pinged.stdout);
    assert!(pinged.status.success(), "{said}");
    let primary = format!("Sentinel primary 127.0.0.1:{}", group.primary_port());
    assert!(said.contains(&primary), "{said}");
    assert!(
        !said.contains("pass word") && !said.contains("pass%20word"),
        "{said}"
    );
}

/// With password-less Redis, Sentinels and the master's name are all it takes: no redis_url.
#[test]
fn sentinels_alone_need_no_redis_url() {
    let group = SentinelGroup::start();
    let sentinels = group.sentinel_urls().join(",");
    let env = [
        ("LOCKOUT_REDIS_SENTINEL", sentinels.as_str()),
        ("LOCKOUT_REDIS_SENTINEL_MASTER", MASTER),
    ];
    let pinged = lockout_command(&env).arg("ping").output().unwrap();
    let said = String::from_utf8_lossy(&pinged.stdout);
    assert!(
        pinged.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&pinged.stderr)
    );
    let primary = format!("Sentinel primary 127.0.0.1:{}", group.primary_port());
    assert!(said.contains(&primary), "{said}");
    let failed = lockout_command(&env)
        .args(["--json", "fail", "--ip", "192.0.2.80"])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&failed.stdout);
    assert!(failed.status.success(), "{answer}");
    assert!(answer.contains("\"count\":1"), "{answer}");
}
