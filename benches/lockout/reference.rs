//! Part 1, the reference: `redis-benchmark` running the reference `fail.lua`.

use std::process::Command;
use std::time::Instant;

use crate::flow::clean;
use crate::meter::redis_cpu_seconds;
use crate::reach::{Reach, RedisTool};
use crate::report::Row;
use crate::Bench;

/// The reference script: `fail.lua` as it was when the performance goals were set (one identity,
/// no repeat offenders), kept here unchanged whatever the engine's scripts become, so that every
/// run measures against the same yardstick.
pub(crate) const SCRIPT: &str = include_str!("../reference/fail.lua");

/// Requests/s of redis-benchmark running `command` (with `__rand_int__` under `keyspace`),
/// `pipeline` commands per round trip, 50 clients.
pub(crate) fn redis_benchmark(
    reach: &Reach,
    requests: u64,
    keyspace: u64,
    pipeline: u32,
    command: &[&str],
) -> f64 {
    let output = reach
        .point(&mut Command::new("redis-benchmark"), RedisTool::Benchmark)
        .args(["-c", "50"])
        .args(["-n", &requests.to_string(), "-P", &pipeline.to_string()])
        .args(["-r", &keyspace.to_string(), "--csv"])
        .args(command)
        .output()
        .expect("redis-benchmark (package redis-tools) must be installed");
    let csv = String::from_utf8_lossy(&output.stdout);
    csv.lines()
        .last()
        .and_then(|line| line.split(',').nth(1)?.trim_matches('"').parse().ok())
        .unwrap_or_else(|| {
            let errors = String::from_utf8_lossy(&output.stderr);
            panic!("no rate in redis-benchmark's output: {csv}{errors}")
        })
}

/// fail.lua on random IPs, as the engine calls it, with a failure limit.
/// `fail.lua` as the engine sends it for one IP: cool-off and lockout 30 minutes, no metadata.
pub(crate) fn fail_script<'a>(sha: &'a str, limit: &'a str, now: &'a str) -> [&'a str; 10] {
    [
        "EVALSHA",
        sha,
        "2",
        "lockout-bench:attempt:{ip=__rand_int__}",
        "lockout-bench:lock:{ip=__rand_int__}",
        "1800000",
        "1800000",
        limit,
        "1",
        now,
    ]
}

/// Part 1: the reference's rows; answers its pipelined scripts/s.
pub(crate) async fn run(bench: &mut Bench, rows: &mut Vec<Row>) -> f64 {
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    let requests = if options.tiny { 20_000 } else { 500_000 };
    let mut reference = 0.0;
    for pipeline in [16, 1] {
        let cpu = redis_cpu_seconds(redis);
        let started = Instant::now();
        let script = fail_script(&bench.sha, "3", &bench.now);
        let rate = redis_benchmark(reach, requests, u64::from(options.ips), pipeline, &script);
        let redis_cpu = (redis_cpu_seconds(redis) - cpu) / started.elapsed().as_secs_f64();
        if pipeline == 16 {
            reference = rate;
        }
        rows.push(Row {
            what: format!("redis-benchmark EVALSHA fail.lua, 50 clients, pipeline {pipeline}"),
            rate: Some(rate),
            unit: "scripts/s",
            redis_cpu: Some(redis_cpu),
            ratio: Some(rate / reference),
            ..Row::default()
        });
    }
    clean(reach).await;
    reference
}
