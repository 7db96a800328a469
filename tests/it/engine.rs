//! The engine against a real Redis: Axes' semantics, the invariants of docs/design.md,
//! one round trip per login call, NOSCRIPT recovery, resets with awkward usernames.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lockout::keys::KeyKind;
use lockout::record::{LogFilter, Outcome};
use lockout::{AnyStore, Attempt, Engine, LockReason, Policy, RedisStore, Target, Verdict};

use crate::support::{policy, Backend, RedisServer};

crate::on_all!(
    design_reference_scenario_username_or_ip,
    ip_mode_counts_every_username_of_an_ip,
    pair_mode_locks_only_the_pair,
    ip_or_username_with_user_agent,
    three_field_combination,
    the_limit_th_failure_locks_and_answers_counts,
    cooloff_is_an_inactivity_timeout,
    refused_attempts_extend_the_lock_by_default,
    without_reset_cooloff_the_lock_ends_on_time,
    reset_on_success_clears_the_attempts_identities,
    lock_out_at_failure_false_only_counts,
    ip_spellings_share_one_counter,
    parallel_failures_are_all_counted,
    list_filters_and_locked_only,
    access_log_records_failures_refusals_and_successes,
);

// These look at Redis' keys, TTLs and scripts.
crate::on_both!(
    username_mode_never_counts_an_absent_username,
    allow_and_deny_lists_with_cidrs,
    every_key_has_a_ttl_after_a_random_workload,
    resets_by_awkward_usernames_remove_exactly_their_records,
    resets_by_ip_pair_and_all_with_dry_run,
    noscript_after_script_flush_is_recovered_without_double_counting,
    access_log_expires_by_itself_or_is_off,
);

fn attempt(ip: &str, username: &str, user_agent: &str) -> Attempt {
    let present = |value: &str| (!value.is_empty()).then(|| value.to_string());
    Attempt::parse(
        ip,
        present(username).as_deref(),
        present(user_agent).as_deref(),
        None,
    )
    .unwrap()
}

/// Runs `("fail" | "check", ip, username, user_agent, expected locked)` steps in order
/// (an empty string is an absent field), failing with the step's number.
async fn run_steps(engine: &Engine<AnyStore>, steps: &[(&str, &str, &str, &str, bool)]) {
    for (n, &(op, ip, username, user_agent, expected)) in steps.iter().enumerate() {
        let attempt = attempt(ip, username, user_agent);
        let locked = match op {
            "fail" => engine.fail(&attempt).await.unwrap().locked,
            "check" => engine.check(&attempt).await.unwrap().is_locked(),
            other => panic!("unknown step {other}"),
        };
        assert_eq!(
            locked,
            expected,
            "step {}: {op} {ip} {username:?} {user_agent:?}",
            n + 1
        );
    }
}

async fn failures_of(engine: &Engine<AnyStore>, target: Target) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = engine
        .list(&target, false)
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.identity.tag().to_string(), record.failures))
        .collect();
    counts.sort();
    counts
}

async fn design_reference_scenario_username_or_ip(server: Backend) {
    let engine = server.engine(policy(3, &[&["username"], &["ip"]])).await;
    run_steps(
        &engine,
        &[
            ("fail", "10.0.0.1", "u1", "", false),
            ("fail", "10.0.0.2", "u1", "", false),
            ("fail", "10.0.0.2", "u1", "", true),  // U1 has 3
            ("check", "10.0.0.3", "u1", "", true), // refused, and recorded
            ("fail", "10.0.0.1", "u2", "", false), // IP1 has 2
            ("check", "10.0.0.1", "u1", "", true), // refused, recorded: IP1 now 3
            ("check", "10.0.0.1", "u2", "", true),
            ("check", "10.0.0.1", "u3", "", true),
        ],
    )
    .await;
    assert_eq!(
        failures_of(&engine, Target::All).await,
        [
            ("ip=10.0.0.1".to_string(), 5),
            ("ip=10.0.0.2".to_string(), 2),
            ("ip=10.0.0.3".to_string(), 1),
            ("username=u1".to_string(), 5),
            ("username=u2".to_string(), 2),
            ("username=u3".to_string(), 1),
        ]
    );
}

async fn ip_mode_counts_every_username_of_an_ip(server: Backend) {
    let engine = server.engine(policy(3, &[&["ip"]])).await;
    run_steps(
        &engine,
        &[
            ("fail", "10.0.0.1", "a", "", false),
            ("fail", "10.0.0.1", "b", "", false),
            ("check", "10.0.0.1", "c", "", false),
            ("fail", "10.0.0.1", "", "", true),
            ("check", "10.0.0.1", "d", "", true),
            ("check", "10.0.0.2", "a", "", false),
        ],
    )
    .await;
}

async fn username_mode_never_counts_an_absent_username(server: Backend) {
    let engine = server.engine(policy(2, &[&["username"]])).await;
    run_steps(
        &engine,
        &[
            ("fail", "10.0.0.1", "", "", false),
            ("fail", "10.0.0.2", "", "", false),
            ("fail", "10.0.0.3", "", "", false),
            ("check", "10.0.0.4", "", "", false),
            ("fail", "10.0.0.1", "alice", "", false),
            ("fail", "10.0.0.9", "alice", "", true),
            ("check", "10.0.0.7", "alice", "", true),
            ("check", "10.0.0.7", "bob", "", false),
        ],
    )
    .await;
    let keys = server.keys();
    assert!(
        keys.iter().all(|key| !key.contains("username=}")),
        "{keys:?}"
    );
}

async fn pair_mode_locks_only_the_pair(server: Backend) {
    let engine = server.engine(policy(3, &[&["username", "ip"]])).await;
    run_steps(
        &engine,
        &[
            ("fail", "10.0.0.1", "u1", "", false),
            ("fail", "10.0.0.1", "u1", "", false),
            ("fail", "10.0.0.2", "u1", "", false),
            ("fail", "10.0.0.1", "u2", "", false),
            ("fail", "10.0.0.1", "u1", "", true),
            ("check", "10.0.0.2", "u1", "", false),
            ("check", "10.0.0.1", "u2", "", false),
            ("check", "10.0.0.1", "u1", "", true),
            ("check", "10.0.0.1", "", "", false),
        ],
    )
    .await;
}

async fn ip_or_username_with_user_agent(server: Backend) {
    let engine = server
        .engine(policy(2, &[&["ip"], &["username", "user_agent"]]))
        .await;
    run_steps(
        &engine,
        &[
            ("fail", "10.0.0.1", "u1", "firefox", false),
            ("fail", "10.0.0.2", "u1", "firefox", true), // u1+firefox has 2
            ("check", "10.0.0.3", "u1", "chrome", false),
            ("check", "10.0.0.3", "u1", "", false), // no user agent: no such identity
            ("check", "10.0.0.4", "u1", "firefox", true),
            ("fail", "10.0.0.1", "u2", "curl", true), // IP1 has 2
        ],
    )
    .await;
}

async fn three_field_combination(server: Backend) {
    let engine = server
        .engine(policy(2, &[&["ip", "username", "user_agent"]]))
        .await;
    run_steps(
        &engine,
        &[
            ("fail", "10.0.0.1", "u1", "ua", false),
            ("fail", "10.0.0.1", "u1", "other", false),
            ("fail", "10.0.0.2", "u1", "ua", false),
            ("fail", "10.0.0.1", "u2", "ua", false),
            ("fail", "10.0.0.1", "u1", "ua", true),
            ("check", "10.0.0.1", "u1", "other", false),
            ("check", "10.0.0.1", "u1", "ua", true),
        ],
    )
    .await;
}

async fn the_limit_th_failure_locks_and_answers_counts(server: Backend) {
    let engine = server
        .engine(policy(5, &[&["ip"], &["ip", "username"]]))
        .await;
    let a = attempt("192.0.2.1", "alice", "");
    for n in 1..5u64 {
        let report = engine.fail(&a).await.unwrap();
        assert!(!report.locked, "failure {n}");
        assert_eq!(report.retry_after, None);
        let counts: Vec<u64> = report.failures.iter().map(|f| f.count).collect();
        assert_eq!(counts, [n, n]);
        assert_eq!(engine.check(&a).await.unwrap(), Verdict::Allowed);
    }
    let report = engine.fail(&a).await.unwrap();
    assert!(report.locked);
    let retry_after = report.retry_after.unwrap();
    assert!(retry_after > Duration::from_secs(29 * 60) && retry_after <= Duration::from_secs(1800));
    let Verdict::Locked(lockout) = engine.check(&a).await.unwrap() else {
        panic!("locked after the limit");
    };
    assert_eq!(lockout.reason, LockReason::Lockout);
    let by: Vec<String> = lockout.locked_by.iter().map(|c| c.to_string()).collect();
    assert_eq!(by, ["ip", "ip+username"]);
}

fn short(policy: Policy, cooloff_ms: u64) -> Policy {
    Policy {
        cooloff: Duration::from_millis(cooloff_ms),
        lockout_duration: Duration::from_millis(cooloff_ms),
        ..policy
    }
}

async fn cooloff_is_an_inactivity_timeout(server: Backend) {
    let engine = server.engine(short(policy(3, &[&["ip"]]), 1000)).await;
    let steady = attempt("10.0.0.1", "", "");
    let idle = attempt("10.0.0.2", "", "");
    engine.fail(&steady).await.unwrap();
    engine.fail(&idle).await.unwrap();
    server.advance(Duration::from_millis(600));
    engine.fail(&steady).await.unwrap();
    server.advance(Duration::from_millis(600));
    // 1.2 s after the first failure, but each failure renewed the cool-off.
    assert!(engine.fail(&steady).await.unwrap().locked);
    // The idle identity's failure was forgotten: counting starts again.
    let report = engine.fail(&idle).await.unwrap();
    assert_eq!(report.failures[0].count, 1);
    // And the lock ends a cool-off after the latest failure.
    server.advance(Duration::from_millis(1000));
    assert_eq!(engine.check(&steady).await.unwrap(), Verdict::Allowed);
    assert_eq!(failures_of(&engine, Target::All).await, []);
}

async fn refused_attempts_extend_the_lock_by_default(server: Backend) {
    let engine = server.engine(short(policy(1, &[&["ip"]]), 1000)).await;
    let a = attempt("10.0.0.1", "", "");
    assert!(engine.fail(&a).await.unwrap().locked);
    server.advance(Duration::from_millis(600));
    assert!(engine.check(&a).await.unwrap().is_locked()); // recorded: lock renewed
    server.advance(Duration::from_millis(600));
    // 1.2 s after the failure that locked: still locked thanks to the refused check.
    assert!(engine.check(&a).await.unwrap().is_locked());
    assert_eq!(failures_of(&engine, Target::All).await[0].1, 3);
}

async fn without_reset_cooloff_the_lock_ends_on_time(server: Backend) {
    let engine = server
        .engine(Policy {
            reset_cooloff_on_failure_during_lockout: false,
            ..short(policy(1, &[&["ip"]]), 1000)
        })
        .await;
    let a = attempt("10.0.0.1", "", "");
    assert!(engine.fail(&a).await.unwrap().locked);
    server.advance(Duration::from_millis(600));
    assert!(engine.check(&a).await.unwrap().is_locked());
    let report = engine.fail(&a).await.unwrap();
    assert!(report.locked);
    assert_eq!(
        report.failures[0].count, 1,
        "nothing recorded during the lock"
    );
    server.advance(Duration::from_millis(600));
    assert_eq!(engine.check(&a).await.unwrap(), Verdict::Allowed);
}

async fn reset_on_success_clears_the_attempts_identities(server: Backend) {
    let mut on = policy(2, &[&["username"], &["ip"]]);
    on.reset_on_success = true;
    let engine = server.engine(on).await;
    let a = attempt("10.0.0.1", "alice", "");
    engine.fail(&a).await.unwrap();
    engine.fail(&attempt("10.0.0.9", "bob", "")).await.unwrap();
    assert!(engine.succeed(&a).await.unwrap());
    assert_eq!(
        failures_of(&engine, Target::All).await,
        [
            ("ip=10.0.0.9".to_string(), 1),
            ("username=bob".to_string(), 1)
        ]
    );
    assert!(!engine.succeed(&a).await.unwrap(), "nothing left to clear");

    let server = server.another();
    let engine = server.engine(policy(2, &[&["ip"]])).await;
    engine.fail(&a).await.unwrap();
    assert!(!engine.succeed(&a).await.unwrap());
    assert_eq!(failures_of(&engine, Target::All).await.len(), 1);
}

async fn lock_out_at_failure_false_only_counts(server: Backend) {
    let engine = server
        .engine(Policy {
            lock_out_at_failure: false,
            ..policy(2, &[&["ip"]])
        })
        .await;
    let a = attempt("10.0.0.1", "", "");
    for _ in 0..4 {
        assert!(!engine.fail(&a).await.unwrap().locked);
    }
    assert_eq!(engine.check(&a).await.unwrap(), Verdict::Allowed);
    assert_eq!(failures_of(&engine, Target::All).await[0].1, 4);
}

async fn allow_and_deny_lists_with_cidrs(server: Backend) {
    use lockout::policy::IpList;
    let engine = server
        .engine(Policy {
            never_lockout: IpList::parse("never_lockout", &["10.0.0.0/8", "2001:db8::/32"])
                .unwrap(),
            deny: IpList::parse("deny", &["10.6.6.0/24", "192.0.2.7"]).unwrap(),
            ..policy(1, &[&["ip"], &["username"]])
        })
        .await;
    for ip in ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8::42"] {
        let a = attempt(ip, "alice", "");
        assert!(!engine.fail(&a).await.unwrap().locked, "{ip}");
        assert_eq!(engine.check(&a).await.unwrap(), Verdict::Allowed, "{ip}");
    }
    for ip in ["10.6.6.6", "192.0.2.7"] {
        let a = attempt(ip, "bob", "");
        let Verdict::Locked(lockout) = engine.check(&a).await.unwrap() else {
            panic!("{ip} is deny-listed");
        };
        assert_eq!(lockout.reason, LockReason::DenyList);
        assert_eq!(lockout.retry_after, None);
        assert!(engine.fail(&a).await.unwrap().locked);
    }
    assert_eq!(
        server.keys(),
        Vec::<String>::new(),
        "nothing stored for either list"
    );
    // Outside both lists, the policy applies.
    assert!(
        engine
            .fail(&attempt("172.16.0.1", "carol", ""))
            .await
            .unwrap()
            .locked
    );
}

async fn ip_spellings_share_one_counter(server: Backend) {
    let engine = server.engine(policy(3, &[&["ip"]])).await;
    engine.fail(&attempt("2001:db8::1", "", "")).await.unwrap();
    engine
        .fail(&attempt("2001:0DB8:0000:0000:0000:0000:0000:0001", "", ""))
        .await
        .unwrap();
    assert!(
        engine
            .fail(&attempt("2001:db8:0:0::1", "", ""))
            .await
            .unwrap()
            .locked
    );
    engine
        .fail(&attempt("::ffff:198.51.100.4", "", ""))
        .await
        .unwrap();
    engine.fail(&attempt("198.51.100.4", "", "")).await.unwrap();
    assert_eq!(
        failures_of(&engine, Target::All).await,
        [
            ("ip=198.51.100.4".to_string(), 2),
            // IPv6 is counted per /64 (ipv6_prefix_length), by the network's first address.
            ("ip=2001%3Adb8%3A%3A".to_string(), 3)
        ]
    );
}

async fn parallel_failures_are_all_counted(server: Backend) {
    let engine = Arc::new(server.engine(policy(3, &[&["ip"], &["username"]])).await);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.fail(&attempt("10.0.0.1", "alice", "")).await })
        })
        .collect();
    let mut locked = 0;
    for task in tasks {
        locked += u32::from(task.await.unwrap().unwrap().locked);
    }
    assert_eq!(
        locked, 198,
        "every failure from the 3rd on is answered locked"
    );
    assert_eq!(
        failures_of(&engine, Target::All).await,
        [
            ("ip=10.0.0.1".to_string(), 200),
            ("username=alice".to_string(), 200)
        ]
    );
    assert!(engine
        .check(&attempt("10.0.0.1", "", ""))
        .await
        .unwrap()
        .is_locked());
}

async fn every_key_has_a_ttl_after_a_random_workload(server: Backend) {
    use rand::{Rng, SeedableRng};
    let engine = server
        .engine(Policy {
            reset_on_success: true,
            ..policy(
                3,
                &[&["ip"], &["username", "ip"], &["username", "user_agent"]],
            )
        })
        .await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..600 {
        let a = attempt(
            &format!("10.0.{}.{}", rng.random_range(0..3), rng.random_range(0..5)),
            ["", "alice", "bob", "c*rol"][rng.random_range(0..4)],
            ["", "curl", "firefox"][rng.random_range(0..3)],
        );
        match rng.random_range(0..10) {
            0..=5 => drop(engine.fail(&a).await.unwrap()),
            6..=8 => drop(engine.check(&a).await.unwrap()),
            _ => drop(engine.succeed(&a).await.unwrap()),
        }
    }
    let keys = server.keys();
    assert!(keys.len() > 20, "the workload wrote keys: {keys:?}");
    for key in keys {
        let ttl = server.pttl(&key);
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

const AWKWARD: &[&str] = &[
    "a*",
    "abc",
    "a",
    "?",
    "[a]",
    "]",
    "\\",
    "{",
    "}",
    "{a}",
    "&",
    "=",
    ":",
    "%",
    "%2A",
    "a b",
    "Ünïcødé",
    "日本",
    "a&username=b",
    "*",
];

async fn resets_by_awkward_usernames_remove_exactly_their_records(server: Backend) {
    let engine = server
        .engine(policy(3, &[&["username"], &["ip", "username"]]))
        .await;
    for username in AWKWARD {
        engine
            .fail(&attempt("10.0.0.1", username, ""))
            .await
            .unwrap();
    }
    let all: HashSet<String> = server.keys().into_iter().collect();
    assert_eq!(
        all.len(),
        AWKWARD.len() * 2 + 1,
        "attempt records and the log"
    );
    for username in AWKWARD {
        let before: HashSet<String> = server.keys().into_iter().collect();
        let target = Target::Usernames(vec![username.to_string()]);
        let removed = engine
            .reset(&target, false, &mut |_| {}, "test")
            .await
            .unwrap();
        assert_eq!(
            removed, 2,
            "{username:?}: its username and ip+username records"
        );
        let after: HashSet<String> = server.keys().into_iter().collect();
        let gone: Vec<&String> = before.difference(&after).collect();
        assert_eq!(gone.len(), 2, "{username:?} removed {gone:?}");
        assert!(engine.list(&target, false).await.unwrap().is_empty());
        for other in AWKWARD.iter().skip_while(|u| *u != username).skip(1) {
            let left = engine
                .list(&Target::Usernames(vec![other.to_string()]), false)
                .await
                .unwrap();
            assert_eq!(left.len(), 2, "resetting {username:?} touched {other:?}");
        }
    }
}

async fn resets_by_ip_pair_and_all_with_dry_run(server: Backend) {
    let engine = server
        .engine(policy(3, &[&["ip"], &["ip", "username"]]))
        .await;
    for (ip, username) in [
        ("10.0.0.1", "alice"),
        ("10.0.0.1", "bob"),
        ("10.0.0.12", "alice"),
        ("2001:db8::1", "alice"),
    ] {
        engine.fail(&attempt(ip, username, "")).await.unwrap();
    }
    let ip = |s: &str| s.parse().unwrap();
    let one_ip = Target::Ips(vec![ip("10.0.0.1")]);
    assert_eq!(
        engine
            .reset(&one_ip, true, &mut |_| {}, "test")
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        engine.list(&one_ip, false).await.unwrap().len(),
        3,
        "dry run deletes nothing"
    );
    let pair = Target::Pairs {
        ips: vec![ip("10.0.0.1"), ip("10.0.0.12")],
        usernames: vec!["alice".into()],
    };
    assert_eq!(
        engine
            .reset(&pair, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        engine
            .reset(&one_ip, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        failures_of(&engine, Target::All).await,
        [
            ("ip=10.0.0.12".to_string(), 1),
            // 2001:db8::1's /64.
            ("ip=2001%3Adb8%3A%3A".to_string(), 1),
            ("ip=2001%3Adb8%3A%3A&username=alice".to_string(), 1),
        ]
    );
    let v6 = Target::Ips(vec![ip("2001:db8:0::1")]);
    assert_eq!(
        engine.reset(&v6, false, &mut |_| {}, "test").await.unwrap(),
        2
    );
    assert_eq!(
        engine
            .reset(&Target::All, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        1
    );
    let left = server.keys();
    assert!(
        left.iter().any(|key| key.starts_with("lockout:log:"))
            && left
                .iter()
                .all(|key| ["lockout:log:", "lockout:events:", "lockout:reset:"]
                    .iter()
                    .any(|kept| key.starts_with(kept))),
        "only the access log, the events and the resets' markers are left: {left:?}"
    );
    for marker in left.iter().filter(|key| key.starts_with("lockout:reset:")) {
        let pttl = server.pttl(marker);
        assert!(
            (1..=1_800_000).contains(&pttl),
            "{marker} expires within the policy's longest record life (30 minutes): {pttl}"
        );
    }
}

async fn list_filters_and_locked_only(server: Backend) {
    let engine = server.engine(policy(2, &[&["ip", "username"]])).await;
    let a = attempt("10.0.0.1", "alice", "Mozilla/5.0");
    engine.fail(&a).await.unwrap();
    engine.fail(&a).await.unwrap();
    engine
        .fail(&attempt("10.0.0.2", "alice", ""))
        .await
        .unwrap();
    let locked = engine.list(&Target::All, true).await.unwrap();
    assert_eq!(locked.len(), 1);
    let record = &locked[0];
    assert_eq!(record.identity.tag(), "ip=10.0.0.1&username=alice");
    assert_eq!(record.failures, 2);
    assert_eq!(record.user_agent.as_deref(), Some("Mozilla/5.0"));
    assert!(record.first_failure <= record.last_failure && record.first_failure.is_some());
    assert_eq!(
        engine
            .list(&Target::Usernames(vec!["alice".into()]), false)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// What the server counted while `action` ran: commands, socket reads (one per request the
/// client wrote, a pipeline being one write), and the `cmdstat_*` lines of INFO.
pub(crate) async fn server_work<F: std::future::Future>(
    server: &RedisServer,
    action: F,
) -> (u64, u64, String) {
    let mut connection = server.connection();
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query::<()>(&mut connection)
        .unwrap();
    action.await;
    let info: String = redis::cmd("INFO")
        .arg("all")
        .query(&mut connection)
        .unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map_or(0, |value| value.trim().parse().unwrap())
    };
    let per_command: String = info
        .lines()
        .filter(|line| line.starts_with("cmdstat_") && !line.starts_with("cmdstat_info"))
        .collect::<Vec<_>>()
        .join("\n");
    // CONFIG RESETSTAT counts itself once reset; the INFO that reads the counters was itself
    // read from the socket.
    let commands = field("total_commands_processed") - 1;
    (commands, field("total_reads_processed") - 1, per_command)
}

#[tokio::test]
async fn one_round_trip_per_check_and_per_failure() {
    let server = RedisServer::start();
    let engine = server
        .engine(policy(
            3,
            &[&["ip"], &["username"], &["ip", "username", "user_agent"]],
        ))
        .await;
    let a = attempt("10.0.0.1", "alice", "curl");

    let (commands, reads, per_command) = server_work(&server, engine.check(&a)).await;
    assert_eq!(
        (commands, reads),
        (3, 1),
        "check: 3 PTTL in one read\n{per_command}"
    );
    assert!(
        per_command.contains("cmdstat_pttl:calls=3,"),
        "{per_command}"
    );

    let (commands, reads, per_command) = server_work(&server, engine.fail(&a)).await;
    // Scripts' inner commands count too; EVALSHA calls are what the client sent: one for the
    // identities that start with the IP and the log entry (one shard), one for the username.
    assert!(
        per_command.contains("cmdstat_evalsha:calls=2,"),
        "{per_command}"
    );
    assert!(
        !per_command.contains("cmdstat_xadd:calls=2"),
        "{per_command}"
    );
    assert_eq!(
        reads, 1,
        "failure: 3 identities and the log in one read\n{per_command}"
    );
    assert!(commands > 2);

    // `[["ip","username"],"ip"]`: both identities and the log entry in one script.
    let engine = server
        .engine(policy(3, &[&["ip", "username"], &["ip"]]))
        .await;
    let (_, reads, per_command) = server_work(&server, engine.fail(&a)).await;
    assert_eq!(reads, 1);
    assert!(
        per_command.contains("cmdstat_evalsha:calls=1,"),
        "{per_command}"
    );
    assert!(
        per_command.contains("cmdstat_xadd:calls=1,"),
        "{per_command}"
    );
}

/// The attempt record is the hash docs/keys.md documents for clients in other languages, in
/// Redis' compact listpack encoding.
#[tokio::test]
async fn attempt_record_has_the_documented_fields() {
    let server = RedisServer::start();
    let engine = server.engine(policy(3, &[&["ip"]])).await;
    let key = &crate::support::key_of("lockout", KeyKind::Attempt, "ip=10.0.0.1");
    let mut connection = server.connection();
    let hash = |connection: &mut redis::Connection| -> std::collections::BTreeMap<String, String> {
        redis::cmd("HGETALL").arg(key).query(connection).unwrap()
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };

    let before = now();
    engine.fail(&attempt("10.0.0.1", "", "")).await.unwrap();
    let first = hash(&mut connection);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["f", "l", "n"],
        "{first:?}"
    );
    assert_eq!(first["n"], "1");
    let stamped: u64 = first["f"].parse().unwrap();
    assert!((before..=now()).contains(&stamped), "{first:?}: seconds");
    assert_eq!(first["l"], first["f"]);
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query(&mut connection)
        .unwrap();
    assert_eq!(encoding, "listpack");

    let with_metadata = Attempt::parse("10.0.0.1", None, Some("curl/8"), Some("/login")).unwrap();
    engine.fail(&with_metadata).await.unwrap();
    let second = hash(&mut connection);
    assert_eq!(
        (&second["n"], &second["f"], &second["ua"], &second["p"]),
        (
            &"2".to_string(),
            &first["f"],
            &"curl/8".to_string(),
            &"/login".to_string()
        )
    );
}

async fn noscript_after_script_flush_is_recovered_without_double_counting(server: Backend) {
    let engine = server.engine(policy(3, &[&["ip"], &["username"]])).await;
    let a = attempt("10.0.0.1", "alice", "");
    engine.fail(&a).await.unwrap();
    server.flush_scripts();
    let report = engine.fail(&a).await.unwrap();
    let counts: Vec<u64> = report.failures.iter().map(|f| f.count).collect();
    assert_eq!(counts, [2, 2]);
    server.flush_scripts();
    assert_eq!(
        engine.reset_logs(Duration::ZERO).await.unwrap(),
        2,
        "one entry per failure"
    );
}

async fn access_log_records_failures_refusals_and_successes(server: Backend) {
    let engine = server.engine(policy(1, &[&["ip"]])).await;
    let mut a = attempt("10.0.0.1", "alice", "curl/8");
    a.path = Some("/login".into());
    engine.fail(&a).await.unwrap();
    engine.check(&a).await.unwrap();
    engine
        .succeed(&attempt("10.0.0.2", "bob", ""))
        .await
        .unwrap();
    engine.check(&attempt("10.0.0.3", "", "")).await.unwrap(); // allowed: not logged

    let all = engine.logs(&LogFilter::default(), 10).await.unwrap();
    // Newest first; entries of one millisecond in two shards (on a cluster, two nodes'
    // clocks) come in either order, one IP's in the order they were written.
    let outcomes: Vec<(String, Outcome)> =
        all.iter().map(|e| (e.ip.to_string(), e.outcome)).collect();
    let of = |ip: &str| -> Vec<Outcome> {
        outcomes
            .iter()
            .filter(|(of, _)| of == ip)
            .map(|(_, outcome)| *outcome)
            .collect()
    };
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(of("10.0.0.1"), [Outcome::Refused, Outcome::Failure]);
    assert_eq!(of("10.0.0.2"), [Outcome::Success]);
    assert!(all.windows(2).all(|pair| pair[0].time >= pair[1].time));
    let failure = all.iter().find(|e| e.outcome == Outcome::Failure).unwrap();
    assert_eq!(failure.username.as_deref(), Some("alice"));
    assert_eq!(failure.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(failure.path.as_deref(), Some("/login"));

    let alice = LogFilter {
        username: Some("alice".into()),
        ..LogFilter::default()
    };
    assert_eq!(engine.logs(&alice, 10).await.unwrap().len(), 2);
    assert_eq!(
        engine.logs(&alice, 1).await.unwrap()[0].outcome,
        Outcome::Refused
    );
    let by_ip = LogFilter {
        ip: Some("10.0.0.2".parse().unwrap()),
        ..LogFilter::default()
    };
    assert_eq!(engine.logs(&by_ip, 10).await.unwrap().len(), 1);
    let refusals = LogFilter {
        outcomes: vec![Outcome::Refused],
        ..LogFilter::default()
    };
    let refused = engine.logs(&refusals, 10).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].ip.to_string(), "10.0.0.1");

    assert_eq!(
        engine.reset_logs(Duration::from_secs(3600)).await.unwrap(),
        0
    );
    assert_eq!(engine.reset_logs(Duration::ZERO).await.unwrap(), 3);
    assert!(engine
        .logs(&LogFilter::default(), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn access_log_expires_by_itself_or_is_off(server: Backend) {
    let engine = server
        .engine(Policy {
            access_log: Some(lockout::policy::AccessLog {
                retention: Duration::from_millis(500),
                ..Policy::default().access_log.unwrap()
            }),
            ..policy(3, &[&["ip"]])
        })
        .await;
    engine.fail(&attempt("10.0.0.1", "", "")).await.unwrap();
    assert_eq!(
        engine.logs(&LogFilter::default(), 10).await.unwrap().len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(engine
        .logs(&LogFilter::default(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        !server
            .keys()
            .iter()
            .any(|key| key.starts_with("lockout:log:")),
        "the stream expired"
    );

    let server = server.another();
    let engine = server
        .engine(Policy {
            access_log: None,
            ..policy(3, &[&["ip"]])
        })
        .await;
    engine.fail(&attempt("10.0.0.1", "", "")).await.unwrap();
    engine.succeed(&attempt("10.0.0.1", "", "")).await.unwrap();
    assert!(engine
        .logs(&LogFilter::default(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(!server
        .keys()
        .iter()
        .any(|key| key.starts_with("lockout:log:")));
}

#[tokio::test]
async fn store_errors_name_the_url_and_are_unavailable() {
    let server = RedisServer::start();
    let url = format!("redis://:secret@127.0.0.1:{}", server.port());
    drop(server);
    let started = std::time::Instant::now();
    let err = RedisStore::connect(
        &lockout::RedisEndpoint::server(url),
        lockout::keys::Keyspace::new("lockout").unwrap(),
        lockout::RedisOptions::default(),
    )
    .await
    .err()
    .expect("nothing listens there any more");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.is_unavailable(), "{err}");
    let message = err.to_string();
    assert!(message.contains("redis://:***@127.0.0.1:"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn the_access_log_is_bounded_by_size_too() {
    let server = RedisServer::start();
    let bounds = lockout::policy::AccessLog {
        max_entries: std::num::NonZeroU64::new(640).unwrap(),
        ..Policy::default().access_log.unwrap()
    };
    let engine = server
        .engine(Policy {
            access_log: Some(bounds),
            ..policy(1_000, &[&["ip"]])
        })
        .await;
    // A flood from 16,000 addresses within the retention: only the size bound can stop it.
    for n in 0..16_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n).to_string();
        engine
            .fail(&Attempt::parse(&ip, None, None, None).unwrap())
            .await
            .unwrap();
    }
    let mut connection = server.connection();
    let mut total = 0;
    let keys = lockout::keys::Keyspace::new("lockout").unwrap();
    for shard in 0..lockout::keys::SHARDS {
        let length: u64 = redis::cmd("XLEN")
            .arg(keys.log_key(shard))
            .query(&mut connection)
            .unwrap();
        // 10 a shard, give or take the stream node (100 entries) Redis trims as a whole.
        assert!(length <= 10 + 100, "shard {shard}: {length} entries");
        total += length;
    }
    assert!(total < 8_000, "{total} entries kept of 16,000");
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_network() {
    let server = RedisServer::start();
    let engine = server.engine(policy(3, &[&["ip"]])).await;
    let from = |ip: &str| Attempt::parse(ip, Some("alice"), None, None).unwrap();
    // One client walking through the addresses of its /64.
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
        engine.fail(&from(ip)).await.unwrap();
    }
    assert!(engine
        .check(&from("2001:db8:1:2:abcd::9"))
        .await
        .unwrap()
        .is_locked());
    assert_eq!(
        engine.check(&from("2001:db8:1:3::1")).await.unwrap(),
        Verdict::Allowed,
        "the next network is another client"
    );
    assert!(engine.check(&from("10.0.0.1")).await.unwrap() == Verdict::Allowed);
    let records = engine.list(&Target::All, false).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].identity.tag(), "ip=2001%3Adb8%3A1%3A2%3A%3A");
    // An operator names any address of the network.
    let reset = Target::Ips(vec!["2001:db8:1:2::77".parse().unwrap()]);
    assert_eq!(
        engine
            .reset(&reset, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        1
    );

    // ipv6_prefix_length = 128: every address on its own, as before.
    let per_address = server
        .engine(Policy {
            ipv6_prefix_length: 128,
            ..policy(3, &[&["ip"]])
        })
        .await;
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"] {
        per_address.fail(&from(ip)).await.unwrap();
    }
    assert_eq!(
        per_address.list(&Target::All, false).await.unwrap().len(),
        3
    );
}
