//! Redis Cluster specifics (the behaviour tests run on a cluster too, see `engine`): an
//! attempt's per-node commands go out at once, failover and resharding under load, and the
//! CLI and the service pointed at a cluster.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockout::keys::{KeyKind, Keyspace};
use lockout::{Attempt, Combination, Field, Identity, Policy, Target};
use serde_json::{json, Value};

use crate::support::http_client;
use crate::support::{lockout_command, policy, RedisCluster, RedisServer, TestService};

fn slot_key(attempt: &Attempt, combination: &Combination) -> String {
    Keyspace::new("lockout")
        .unwrap()
        .key(KeyKind::Lock, &Identity::of(attempt, combination).unwrap())
}

/// While one primary is paused, the attempt's commands for the two others have already been
/// answered: the per-node commands of one check or one failure are not sent one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempts_commands_reach_all_primaries_at_once() {
    let mut cluster = RedisCluster::start(0);
    let combinations = [
        Combination::new([Field::Ip]).unwrap(),
        Combination::new([Field::Username]).unwrap(),
        Combination::new([Field::UserAgent]).unwrap(),
    ];
    // Values whose three identities live on three different primaries.
    let attempt = (0..10_000)
        .map(|n| {
            Attempt::parse(
                &format!("10.0.{}.{}", n / 256, n % 256),
                Some(&format!("user{n}")),
                Some(&format!("ua{n}")),
                None,
            )
            .unwrap()
        })
        .find(|attempt| {
            let ports: std::collections::HashSet<u16> = combinations
                .iter()
                .map(|c| cluster.primary_of(&slot_key(attempt, c)).port())
                .collect();
            ports.len() == 3
        })
        .expect("an attempt spread over the three primaries");
    let engine = Arc::new(
        cluster
            .engine(Policy {
                combinations: combinations.to_vec(),
                access_log: None,
                ..policy(100, &[&["ip"]])
            })
            .await,
    );
    let primaries = cluster.primaries();
    let ports: Vec<u16> = primaries.iter().map(|node| node.port()).collect();
    for (operation, command) in [("check", "pttl"), ("failure", "evalsha")] {
        for &paused in &ports {
            // Found without asking the nodes: the paused one would not answer.
            let node = |port: u16| *primaries.iter().find(|node| node.port() == port).unwrap();
            let others: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|&port| port != paused)
                .collect();
            let before: Vec<u64> = others
                .iter()
                .map(|&port| node(port).command_calls(command))
                .collect();
            redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(1500)
                .arg("ALL")
                .query::<()>(&mut node(paused).connection())
                .unwrap();
            let call = tokio::spawn({
                let engine = engine.clone();
                let attempt = attempt.clone();
                async move {
                    match operation {
                        "check" => engine.check(&attempt).await.map(drop),
                        _ => engine.fail(&attempt).await.map(drop),
                    }
                }
            });
            let deadline = Instant::now() + Duration::from_millis(1200);
            loop {
                let answered = others
                    .iter()
                    .zip(&before)
                    .all(|(&port, &before)| node(port).command_calls(command) > before);
                if answered {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{operation}: with {paused} paused, the other primaries got nothing"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            call.await.unwrap().unwrap();
        }
    }
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    client
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn failover_keeps_the_service_answering_and_it_recovers() {
    let mut cluster = RedisCluster::start(1);
    let service = TestService::start_on(cluster.endpoint(), |c| {
        c.policy = policy(100, &[&["ip"]]);
        c.command_timeout = Duration::from_millis(500);
    })
    .await;
    let client = http_client();
    let attempt = json!({"ip": "10.0.0.1"});
    for count in 1..=2 {
        let body = post(&client, service.at("/v1/failure"), attempt.clone()).await;
        assert_eq!(body["failures"][0]["count"], count, "{body}");
    }
    // The replica has the counter before its primary dies.
    let key = &crate::support::key_of("lockout", KeyKind::Attempt, "ip=10.0.0.1");
    let primary = cluster.primary_of(key);
    primary.wait_for_replica(&format!(
        "synced:{{{}}}",
        Keyspace::shard_tag(Keyspace::shard_of_tag("ip=10.0.0.1"))
    ));
    primary.stop();

    let deadline = Instant::now() + Duration::from_secs(20);
    let recovered = loop {
        let response = client
            .post(service.at("/v1/failure"))
            .json(&attempt)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "answers during the failover");
        let body: Value = response.json().await.unwrap();
        if body.get("degraded").is_none() {
            break body;
        }
        if Instant::now() >= deadline {
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut cluster.primaries()[0].connection())
                .unwrap();
            panic!("no recovery within 20 s: {body}\n{nodes}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        recovered["failures"][0]["count"], 3,
        "the promoted replica kept the count"
    );
}

#[tokio::test]
async fn resharding_under_load_loses_and_doubles_no_failure() {
    let cluster = RedisCluster::start(0);
    let engine = Arc::new(
        cluster
            .engine(Policy {
                access_log: None,
                ..policy(1_000_000, &[&["ip"]])
            })
            .await,
    );
    let primaries = cluster.primaries();
    let source = &primaries[0];
    let id = |node: &RedisServer| -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut node.connection())
            .unwrap()
    };
    let (from, to) = (id(source), id(primaries[1]));
    let owned: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut source.connection())
        .unwrap();
    let first_slot: u16 = owned
        .lines()
        .find(|line| line.starts_with(&from))
        .and_then(|line| {
            line.split_whitespace()
                .nth(8)?
                .split('-')
                .next()?
                .parse()
                .ok()
        })
        .unwrap();
    // IPs whose keys are in the slots about to move.
    let moving: Vec<String> = (0..5000)
        .map(|n| format!("10.1.{}.{}", n / 256, n % 256))
        .filter(|ip| {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(crate::support::key_of(
                    "lockout",
                    KeyKind::Attempt,
                    &format!("ip={ip}"),
                ))
                .query(&mut source.connection())
                .unwrap();
            (first_slot..first_slot + 500).contains(&slot)
        })
        .take(20)
        .collect();
    assert_eq!(moving.len(), 20);

    let load = tokio::spawn({
        let engine = engine.clone();
        let ips = moving.clone();
        async move {
            let mut counted: HashMap<String, u64> = HashMap::new();
            let mut errors = 0;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                for ip in &ips {
                    match engine
                        .fail(&Attempt::parse(ip, None, None, None).unwrap())
                        .await
                    {
                        Ok(_) => *counted.entry(ip.clone()).or_default() += 1,
                        Err(_) => errors += 1,
                    }
                }
            }
            (counted, errors)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let address = format!("127.0.0.1:{}", source.port());
    let resharded = tokio::task::spawn_blocking(move || {
        Command::new("redis-cli")
            .args([
                "--cluster",
                "reshard",
                &address,
                "--cluster-from",
                &from,
                "--cluster-to",
                &to,
            ])
            .args(["--cluster-slots", "500", "--cluster-yes"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        resharded.status.success(),
        "{}",
        String::from_utf8_lossy(&resharded.stderr)
    );
    let (counted, errors) = load.await.unwrap();
    assert_eq!(
        errors, 0,
        "redirects (MOVED, ASK, TRYAGAIN) are followed, not reported"
    );
    let records: HashMap<String, u64> = engine
        .list(&Target::All, false)
        .await
        .unwrap()
        .into_iter()
        .map(|record| {
            (
                record.identity.value(Field::Ip).unwrap().to_string(),
                record.failures,
            )
        })
        .collect();
    assert_eq!(records, counted);
    assert!(counted.values().all(|&n| n > 10), "{counted:?}");
}

/// The CLI on a cluster: failures land on every primary, a reset removes them all, and `ping`
/// names every primary.
#[test]
fn the_cli_resets_across_every_primary() {
    let cluster = RedisCluster::start(0);
    let seeds = cluster.seeds().join(",");
    let lockout = |args: &[&str]| {
        let output = lockout_command(&[(
            "LOCKOUT_POLICY_LOCKOUT_PARAMETERS",
            r#"[["ip","username"],"username"]"#,
        )])
        .args(["--redis-cluster", &seeds])
        .args(args)
        .output()
        .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    for n in 0..30 {
        lockout(&[
            "fail",
            "--ip",
            &format!("10.0.0.{n}"),
            "--username",
            "alice",
        ]);
    }
    let per_node: Vec<usize> = cluster
        .primaries()
        .iter()
        .map(|node| node.keys().len())
        .collect();
    assert!(
        per_node.iter().all(|&keys| keys > 0),
        "records on every primary: {per_node:?}"
    );
    assert_eq!(
        lockout(&["axes_reset_username", "alice"]),
        "31 attempts removed.\n"
    );
    assert_eq!(
        lockout(&["reset-logs", "--older-than", "0s"]),
        "30 log entries removed.\n"
    );
    // The access log, the events and the resets' markers, which expire within seconds.
    let left = cluster.keys();
    assert!(
        left.iter().all(|key| {
            ["lockout:log:", "lockout:events:", "lockout:reset:"]
                .iter()
                .any(|kept| key.starts_with(kept))
        }),
        "{left:?}"
    );
    let pinged = lockout(&["ping"]);
    let ports: Vec<String> = cluster
        .primaries()
        .iter()
        .map(|node| format!("127.0.0.1:{}", node.port()))
        .collect();
    assert!(
        ports.iter().all(|port| pinged.contains(port.as_str())),
        "ping names every primary: {pinged}"
    );
    assert!(
        pinged.contains("everything lockout needs works"),
        "{pinged}"
    );
}

/// The shards spread an attempt's keys evenly: 20,000 failures of random IPs and usernames
/// (`[["ip","username"],"ip"]`, logged) on a 3- and a 6-primary cluster leave each primary
/// within a fifth of its equal share of the keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shards_spread_keys_evenly_over_3_and_6_primaries() {
    for primaries in [3, 6] {
        let cluster = RedisCluster::with_primaries(primaries);
        let engine = Arc::new(
            cluster
                .engine(policy(100, &[&["ip", "username"], &["ip"]]))
                .await,
        );
        let attempts: Vec<Attempt> = (0..20_000u32)
            .map(|n| {
                let ip = std::net::Ipv4Addr::from(n.wrapping_mul(2_654_435_761));
                Attempt::parse(
                    &ip.to_string(),
                    Some(&format!("user{}", n % 997)),
                    None,
                    None,
                )
                .unwrap()
            })
            .collect();
        for chunk in attempts.chunks(200) {
            futures_util::future::join_all(chunk.iter().map(|attempt| engine.fail(attempt)))
                .await
                .into_iter()
                .for_each(|report| {
                    report.unwrap();
                });
        }
        let sizes: Vec<u64> = cluster
            .primaries()
            .iter()
            .map(|node| {
                redis::cmd("DBSIZE")
                    .query::<u64>(&mut node.connection())
                    .unwrap()
            })
            .collect();
        let share = sizes.iter().sum::<u64>() as f64 / primaries as f64;
        assert!(share > 6_000.0, "{sizes:?}");
        for size in &sizes {
            let off = (*size as f64 - share).abs() / share;
            assert!(off < 0.2, "{primaries} primaries: {sizes:?}");
        }
        println!("{primaries} primaries: keys per primary {sizes:?}");
    }
}
