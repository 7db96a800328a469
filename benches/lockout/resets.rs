//! Part 7, resets over many records, and logins while an admin resets.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use lockout::keys::{KeyKind, Keyspace};
use lockout::{Identity, Policy, Target};

use crate::flow::engine;
use crate::http::http_flow;
use crate::meter::Meter;
use crate::options::Options;
use crate::processes::start_service_with;
use crate::reach::{unlink_matching, Reach};
use crate::report::Row;
use crate::{Bench, PREFIX};

/// HTTP logins (policy ip, 8 connections) alone, then while an admin resets `--username
/// victim` over `records` records again and again through the API (a SCAN of every key each
/// time, on the service's connection for admin work): the p99 of a login next to its p99 alone.
pub(crate) async fn logins_during_admin_resets(
    options: &Options,
    reach: &Reach,
    records: u64,
    redis: &mut redis::Connection,
    reference: f64,
) -> Vec<Row> {
    let admin = [
        ("LOCKOUT_ADMIN_PASSWORD", "bench"),
        ("LOCKOUT_ADMIN_TOKEN", "bench-token"),
    ];
    let (service, port) = start_service_with(&reach.flags.service_env(), r#"["ip"]"#, &admin);
    let mut rows = Vec::new();
    for during_resets in [false, true] {
        let resetting = Arc::new(AtomicBool::new(during_resets));
        let resets = std::thread::spawn({
            let resetting = resetting.clone();
            move || {
                let mut done = 0u32;
                while resetting.load(Ordering::Relaxed) {
                    let status = Command::new("curl")
                        .args(["-sf", "-o", "/dev/null", "-X", "DELETE"])
                        .args(["-H", "Authorization: Bearer bench-token"])
                        .arg(format!(
                            "http://127.0.0.1:{port}/v1/attempts?username=victim"
                        ))
                        .status()
                        .expect("curl");
                    assert!(status.success(), "the admin reset answered an error");
                    done += 1;
                }
                done
            }
        });
        let meter = Meter::start(redis, std::process::id(), Some(service.0.id()));
        let (logins, latencies) = http_flow(options, port, 8).await;
        resetting.store(false, Ordering::Relaxed);
        let resets = resets.join().unwrap();
        let what = if during_resets {
            format!("lockout serve, policy ip, 8 connections, while admin resets scan {records} records")
        } else {
            "lockout serve, policy ip, 8 connections, no admin work (the same service)".to_string()
        };
        let mut row = meter.finish(redis, what, logins, latencies, reference);
        if during_resets {
            let idle: &Row = rows.first().expect("the row without resets");
            row.ratio = Some(row.p99_ms.unwrap() / idle.p99_ms.unwrap());
            row.note = format!("p99 to the p99 without admin work; {resets} resets done");
        }
        rows.push(row);
    }
    drop(service);
    rows
}

/// `count` attempt records `ip=10.x.y.z&username=userN`, plus 100 records of IP 192.0.2.1 and
/// 100 of username `victim`, at the keys lockout itself writes (`Keyspace::key`), in pipelines.
pub(crate) fn fill_records(connection: &mut redis::Connection, count: u64) {
    let tags = (0..count).map(|i| {
        let ip = format!("10.{}.{}.{}", (i >> 16) % 256, (i >> 8) % 256, i % 256);
        format!("ip={ip}&username=user{}", i % 10_000)
    });
    write_records(connection, tags);
    fill_victims(connection);
}

/// The 100 records of IP 192.0.2.1 and the 100 of username `victim` that a reset removes.
pub(crate) fn fill_victims(connection: &mut redis::Connection) {
    let tags = (0..100).flat_map(|n| {
        [
            format!("ip=192.0.2.1&username=someone{n}"),
            format!("ip=198.51.{}.{}&username=victim", n / 256, n % 256),
        ]
    });
    write_records(connection, tags);
}

/// An attempt record (one failure, an hour to live) for each identity tag, 10,000 a pipeline.
fn write_records(connection: &mut redis::Connection, tags: impl Iterator<Item = String>) {
    let keys = Keyspace::new(PREFIX).unwrap();
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for tag in tags {
        let identity = Identity::from_tag(&tag).expect("an identity tag");
        let key = keys.key(KeyKind::Attempt, &identity);
        pipe.hset_multiple(&key, &[("n", 1), ("f", 0), ("l", 0)])
            .ignore()
            .pexpire(&key, 3_600_000)
            .ignore();
        queued += 1;
        if queued == 10_000 {
            pipe.query::<()>(connection).unwrap();
            pipe = redis::pipe();
            queued = 0;
        }
    }
    if queued > 0 {
        pipe.query::<()>(connection).unwrap();
    }
}

/// Part 7.
pub(crate) async fn run(bench: &mut Bench, rows: &mut Vec<Row>) {
    let reference = bench.reference;
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    let n = options.identities;
    // 7. Resets over n records.
    if options.runs("resets") {
        fill_records(redis, n);
        let engine = engine(reach, Policy::default()).await;
        let keys = Keyspace::new(PREFIX).unwrap();
        for (name, target) in [
            (
                "--username victim",
                Target::Usernames(vec!["victim".into()]),
            ),
            (
                "--ip 192.0.2.1",
                Target::Ips(vec!["192.0.2.1".parse().unwrap()]),
            ),
        ] {
            let started = Instant::now();
            let removed = engine
                .reset(&target, false, &mut |_| {}, "benchmark")
                .await
                .unwrap();
            let ours = started.elapsed();
            fill_victims(redis);
            // The same keys for redis-cli, by lockout's own SCAN patterns (which would also
            // match a few keys the reset leaves, such as `username=victim2`: none are written).
            let theirs = keys
                .scan_patterns(&target, None)
                .iter()
                .map(|pattern| unlink_matching(reach, pattern))
                .sum::<std::time::Duration>();
            fill_victims(redis);
            rows.push(Row {
                what: format!("reset {name} over {n} records ({removed} removed)"),
                rate: Some(ours.as_secs_f64()),
                unit: "s",
                ratio: Some(ours.as_secs_f64() / theirs.as_secs_f64()),
                note: format!(
                    "redis-cli --scan | xargs unlink: {:.2} s",
                    theirs.as_secs_f64()
                ),
                ..Row::default()
            });
        }
        rows.extend(logins_during_admin_resets(options, reach, n, redis, reference).await);
        engine
            .reset(&Target::All, false, &mut |_| {}, "benchmark")
            .await
            .unwrap();
    }
}
