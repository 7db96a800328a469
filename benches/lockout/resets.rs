//! Part 7, resets over many records, and logins while an admin resets.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use lockout::{Policy, Target};

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

/// `count` attempt records `ip=10.x.y.z&username=userN` written server-side in chunks, plus 100
/// records of `victim_ip` and 100 of `victim`.
pub(crate) fn fill_records(connection: &mut redis::Connection, count: u64) {
    let script = r"
        for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
          local ip = '10.' .. (math.floor(i / 65536) % 256) .. '.' .. (math.floor(i / 256) % 256) .. '.' .. (i % 256)
          local key = ARGV[3] .. ':attempt:{ip=' .. ip .. '&username=user' .. (i % 10000) .. '}'
          redis.call('HSET', key, 'n', 1, 'f', 0, 'l', 0)
          redis.call('PEXPIRE', key, 3600000)
        end";
    let mut from = 0;
    while from < count {
        let to = (from + 20_000).min(count) - 1;
        redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .arg(from)
            .arg(to)
            .arg(PREFIX)
            .query::<()>(connection)
            .unwrap();
        from = to + 1;
    }
    fill_victims(connection);
}

pub(crate) fn fill_victims(connection: &mut redis::Connection) {
    for n in 0..100 {
        for key in [
            format!("{PREFIX}:attempt:{{ip=192.0.2.1&username=someone{n}}}"),
            format!(
                "{PREFIX}:attempt:{{ip=198.51.{}.{}&username=victim}}",
                n / 256,
                n % 256
            ),
        ] {
            redis::pipe()
                .hset(&key, "failures", 1)
                .pexpire(&key, 3_600_000)
                .query::<()>(connection)
                .unwrap();
        }
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
        for (name, target, pattern) in [
            (
                "--username victim",
                Target::Usernames(vec!["victim".into()]),
                "lockout-bench:*[{&]username=victim[&}]*",
            ),
            (
                "--ip 192.0.2.1",
                Target::Ips(vec!["192.0.2.1".parse().unwrap()]),
                "lockout-bench:*:{ip=192.0.2.1[&}]*",
            ),
        ] {
            let started = Instant::now();
            let removed = engine
                .reset(&target, false, &mut |_| {}, "benchmark")
                .await
                .unwrap();
            let ours = started.elapsed();
            fill_victims(redis);
            let theirs = unlink_matching(reach, pattern);
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
