//! Part 6, memory per tracked identity: Redis', the in-process store's, and after an IPv6
//! flood.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::Arc;

use lockout::{Attempt, Engine, MemoryStore, Policy};
use rand::Rng;

use crate::flow::{clean, engine, policy};
use crate::meter::info_field;
use crate::reach::{unlink_matching, Reach};
use crate::reference::{fail_script, redis_benchmark};
use crate::report::Row;
use crate::{Bench, PREFIX};

/// The argument with which this tool, run again, only measures the in-process store's memory.
pub(crate) const IN_PROCESS_MEMORY: &str = "--in-process-memory-of";

/// Bytes of resident memory per identity the in-process store takes over `n` identities (one
/// record each: a limit none reaches, no access log), measured in a fresh run of this tool so
/// that no earlier flow's freed memory is counted back (mimalloc, as the service).
pub(crate) fn in_process_memory_per_identity(n: u64) -> f64 {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([IN_PROCESS_MEMORY, &n.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .expect("bytes per identity")
}

/// The fresh run of `in_process_memory_per_identity`: prints the bytes per identity.
pub(crate) async fn measure_in_process_memory(n: u64) {
    let mut policy = policy("ip");
    policy.failure_limit = std::num::NonZeroU32::new(1_000_000).unwrap();
    policy.access_log = None;
    let engine = Engine::new(MemoryStore::new(n as usize), policy);
    let before = resident_bytes();
    for i in 0..n {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        engine.fail(&Attempt::from_ip(ip)).await.unwrap();
    }
    println!("{}", (resident_bytes() - before) / n as f64);
}

/// This process' resident memory (`/proc/self/statm`, in 4 KiB pages on Linux x86_64).
pub(crate) fn resident_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .expect("statm's resident pages");
    pages * 4096.0
}

/// Bytes of Redis memory per key that `command` adds, over about `count` random keys.
pub(crate) fn memory_per_key(
    connection: &mut redis::Connection,
    reach: &Reach,
    count: u64,
    command: &[&str],
    pattern: &str,
) -> (f64, u64) {
    let before = info_field(connection, "memory", "used_memory");
    redis_benchmark(reach, count, 1_000_000_000, 32, command);
    let after = info_field(connection, "memory", "used_memory");
    let keys = scan_count(connection, pattern);
    ((after - before) / keys.max(1) as f64, keys)
}

pub(crate) fn scan_count(connection: &mut redis::Connection, pattern: &str) -> u64 {
    let mut cursor = 0u64;
    let mut count = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(connection)
            .unwrap();
        count += keys.len() as u64;
        if next == 0 {
            return count;
        }
        cursor = next;
    }
}

/// Redis memory after `failures` failed logins from random addresses of one IPv6 /48 (one
/// customer's allocation: an attacker's whole supply), counted per `prefix_length` bits.
pub(crate) async fn ipv6_flood_memory(
    reach: &Reach,
    redis: &mut redis::Connection,
    failures: u64,
    prefix_length: u8,
) -> Row {
    let policy = Policy {
        ipv6_prefix_length: prefix_length,
        ..policy("ip")
    };
    let engine = Arc::new(engine(reach, policy).await);
    let before = info_field(redis, "memory", "used_memory");
    let workers: Vec<_> = (0..256u64)
        .map(|worker| {
            let engine = engine.clone();
            tokio::spawn(async move {
                for _ in (worker..failures).step_by(256) {
                    let host: u128 = rand::rng().random::<u128>() >> 48;
                    let ip = Ipv6Addr::from((0x2001_0db8_00ab_u128 << 80) | host);
                    let attempt = Attempt::from_ip(IpAddr::V6(ip));
                    engine.fail(&attempt).await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let after = info_field(redis, "memory", "used_memory");
    let identities = scan_count(redis, &format!("{PREFIX}:attempt:*"));
    Row {
        what: format!(
            "Redis memory after {failures} failures from random IPv6 addresses of one /48, ipv6_prefix_length {prefix_length}"
        ),
        rate: Some((after - before) / 1_048_576.0),
        unit: "MiB",
        note: format!(
            "{identities} identities; the access log is bounded by access_log_max_entries"
        ),
        ..Row::default()
    }
}

/// Part 6: memory per identity, on Redis, in the in-process store, after an IPv6 flood.
pub(crate) async fn run(bench: &mut Bench, rows: &mut Vec<Row>) {
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    // 6. Memory per identity.
    let n = options.identities;
    if options.runs("memory") {
        // A limit no identity reaches: one key (the record) per identity, as most are.
        let script = fail_script(&bench.sha, "1000000", &bench.now);
        let (per_identity, identities) =
            memory_per_key(redis, reach, n, &script, "lockout-bench:attempt:*");
        clean(reach).await;
        let (per_counter, counters) = memory_per_key(
            redis,
            reach,
            n,
            &["INCR", "lockout-bench:counter:__rand_int__"],
            "lockout-bench:counter:*",
        );
        unlink_matching(reach, "lockout-bench:counter:*");
        let (per_expiring, expiring) = memory_per_key(
            redis,
            reach,
            n,
            &[
                "SET",
                "lockout-bench:counter:__rand_int__",
                "1",
                "PX",
                "1800000",
            ],
            "lockout-bench:counter:*",
        );
        unlink_matching(reach, "lockout-bench:counter:*");
        rows.push(Row {
            what: format!("Redis memory per tracked identity ({identities} identities)"),
            rate: Some(per_identity),
            unit: "bytes",
            ratio: Some(per_identity / per_counter),
            note: "ratio: to a bare INCR counter key".into(),
            ..Row::default()
        });
        rows.push(Row {
            what: format!("Redis memory per bare INCR counter key ({counters} keys)"),
            rate: Some(per_counter),
            unit: "bytes",
            ..Row::default()
        });
        rows.push(Row {
            what: format!("Redis memory per counter key with a TTL ({expiring} keys)"),
            rate: Some(per_expiring),
            unit: "bytes",
            ratio: Some(per_identity / per_expiring),
            note: "ratio: a tracked identity to this".into(),
            ..Row::default()
        });
    }

    // 5a. The in-process store's memory per identity, in a process of its own.
    if options.runs("memory") {
        let per_identity = in_process_memory_per_identity(n);
        let on_redis = rows
            .iter()
            .find(|row| row.what.starts_with("Redis memory per tracked identity"))
            .and_then(|row| row.rate);
        rows.push(Row {
            what: format!("in-process store memory per tracked identity ({n} identities, RSS)"),
            rate: Some(per_identity),
            unit: "bytes",
            ratio: on_redis.map(|redis| per_identity / redis),
            note: "ratio: to Redis' per tracked identity".into(),
            ..Row::default()
        });
    }

    // 5b. Redis memory after a flood of failures from random IPv6 addresses of one /48.
    if options.runs("memory") {
        for prefix_length in [64, 128] {
            rows.push(ipv6_flood_memory(reach, redis, n, prefix_length).await);
            clean(reach).await;
        }
    }
}
