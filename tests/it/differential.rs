//! The in-process store answers as Redis does: random policies (some combinations with limits of
//! their own, some with repeat offenders, some in observe mode, some counting password
//! spraying) and random sequences of checks, inspections, failures, successes (some attempts
//! with a device, issued before or after any revocation), resets (all, by IP, username, pair,
//! either, prefixes; dry runs too), device revocations, unlock tokens redeemed (some twice, some
//! after their use has expired), listings, access-log reads, log resets and switches between
//! observing and enforcing, over a few IPs and usernames so that identities collide, run
//! side by side on a real Redis and on a fresh `MemoryStore`, with the same answer required at
//! every step. Time moves through `Backend::advance`, never by waiting.
//!
//! What is not compared, and why:
//! - wall-clock times (failure times, log entry times): Redis stamps them with the real clock;
//! - lock remaining times beyond whole seconds: every duration and advance is whole seconds, so
//!   the memory store's are whole, and Redis' are short by the real time since they were set
//!   (Redis runs ahead by it, never behind: an end an advance reaches exactly is past on both).
//!   Compared rounded up, they agree while a case has run for less than a second; a mismatch
//!   in a case that ran longer proves nothing and is rejected;
//! - the order of log entries of different IPs: they live in different shards, and two entries
//!   in the same millisecond are merged in shard order. Entries are compared per IP, in order,
//!   and reads without an IP filter are not limited;
//! - log resets of an age between 0 and all of the case's advances: Redis ages entries by its
//!   own clock, which `advance` does not move, so resets remove everything or nothing.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant, SystemTime};

use lockout::attempt::parse_ip;
use lockout::devices::{epoch_millis, Device, Devices};
use lockout::policy::{Backoff, Limits, Repeat, Spraying};
use lockout::record::{AttemptRecord, LogEntry, LogFilter, Outcome, SprayingRecord};
use lockout::unlock::Unlock;
use lockout::{
    AnyStore, Attempt, Engine, FailureReport, Lockout, Policy, Standing, Target, Verdict,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::{self, Backend};

/// Two IPv4 clients and two addresses of one IPv6 /64, which count as one.
const IPS: &[&str] = &["10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2"];
/// The last one with glob characters, a space and a non-ASCII letter, for Redis' SCAN patterns.
const USERNAMES: &[&str] = &["alice", "bob", "c*[l] ü"];
const USER_AGENTS: &[&str] = &["curl/8.5", "Firefox"];
const PATHS: &[&str] = &["/login", "/admin/login"];
const IP_PREFIXES: &[&str] = &["10.0.0.", "10.0.0.1", "2001:"];
const USERNAME_PREFIXES: &[&str] = &["a", "b", "c*["];
/// `lockout_parameters`, as the configuration writes them.
const COMBINATIONS: &[&[&[&str]]] = &[
    &[&["ip"]],
    &[&["username"]],
    &[&["ip", "username"]],
    &[&["ip", "username"], &["ip"]],
    &[&["username"], &["ip"]],
    &[&["ip", "user_agent"], &["username"]],
];
/// Longer than all the advances of a case: a log reset of this age removes nothing.
const DAY: Duration = Duration::from_secs(24 * 3600);
/// Device IDs, and when their tokens were issued: long before any revocation, or after every
/// one of a case.
const DEVICES: &[&str] = &["d1", "d2"];
const ISSUED: &[u64] = &[1, u64::MAX / 2];

#[derive(Debug, Clone)]
enum Op {
    Check(Attempt),
    Inspect(Attempt),
    Fail(Attempt),
    Succeed(Attempt),
    Reset {
        target: Target,
        dry_run: bool,
    },
    RevokeDevices(Vec<String>),
    Unlock {
        username: String,
        id: &'static str,
    },
    List {
        target: Target,
        locked_only: bool,
    },
    Logs {
        filter: LogFilter,
        limit: usize,
    },
    ResetLogs(Duration),
    Advance(Duration),
    /// The same policy, observing if it enforced and enforcing if it observed, from now on.
    Switch,
}

/// An answer with what cannot be compared taken out (see the module's doc).
#[derive(Debug, PartialEq)]
enum Answer {
    Verdict(Verdict),
    Standing(Standing),
    Failure(FailureReport),
    Cleared(bool),
    Count(u64),
    Records(Vec<AttemptRecord>),
    Logs(Vec<LogEntry>),
    Revoked,
    Unlocked(Option<u64>),
    Advanced,
    Switched,
}

#[test]
fn the_memory_store_answers_as_redis_does() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = Backend::server();
    let store = runtime
        .block_on(redis.engine(Policy::default()))
        .store()
        .clone();
    let mut runner = TestRunner::new(Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&(policy(), vec(op(), 1..=40)), |(policy, ops)| {
        runtime.block_on(run_case(&redis, &store, policy, &ops))
    });
    if let Err(err) = result {
        panic!("{err}");
    }
}

/// `ops` on an emptied Redis and on a new memory store, comparing every answer.
async fn run_case(
    redis: &Backend,
    store: &AnyStore,
    policy: Policy,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    flush_all(redis);
    let started = Instant::now();
    let memory = Backend::memory();
    // Revocations kept for 30 s: advances outlive some.
    let devices = Devices {
        token_ttl: Duration::from_secs(30),
        ..Devices::new("differential-secret".into())
    };
    // The policy as drawn, and the same in the other mode, on the same keyspace.
    let switched = Policy {
        observe: !policy.observe,
        ..policy.clone()
    };
    let on_redis = [
        Engine::new(store.clone(), policy.clone()).with_devices(Some(&devices)),
        Engine::new(store.clone(), switched.clone()).with_devices(Some(&devices)),
    ];
    let in_memory = [
        memory.engine(policy).await.with_devices(Some(&devices)),
        memory.engine(switched).await.with_devices(Some(&devices)),
    ];
    let mut mode = 0;
    for (n, op) in ops.iter().enumerate() {
        if let Op::Switch = op {
            mode = 1 - mode;
        }
        let redis_answer = step(redis, &on_redis[mode], op).await;
        let memory_answer = step(&memory, &in_memory[mode], op).await;
        if redis_answer != memory_answer && started.elapsed() >= Duration::from_secs(1) {
            return Err(TestCaseError::reject("Redis ran a second or more ahead"));
        }
        prop_assert_eq!(
            redis_answer,
            memory_answer,
            "step {}: {:?} (left: Redis, right: memory)",
            n + 1,
            op
        );
    }
    Ok(())
}

fn flush_all(backend: &Backend) {
    let Backend::Server(server) = backend else {
        unreachable!("the property runs on one Redis server");
    };
    let () = redis::cmd("FLUSHALL")
        .query(&mut server.connection())
        .unwrap();
}

async fn step(backend: &Backend, engine: &Engine<AnyStore>, op: &Op) -> Answer {
    match op {
        Op::Check(attempt) => Answer::Verdict(whole_verdict(engine.check(attempt).await.unwrap())),
        Op::Inspect(attempt) => {
            let standing = engine.inspect(attempt).await.unwrap();
            Answer::Standing(Standing {
                verdict: whole_verdict(standing.verdict),
                ..standing
            })
        }
        Op::Fail(attempt) => {
            let report = engine.fail(attempt).await.unwrap();
            Answer::Failure(FailureReport {
                retry_after: whole(report.retry_after),
                would_lock: report.would_lock.map(whole_lockout),
                ..report
            })
        }
        Op::Succeed(attempt) => Answer::Cleared(engine.succeed(attempt).await.unwrap()),
        Op::Reset { target, dry_run } => Answer::Count(
            engine
                .reset(target, *dry_run, &mut |_| {}, "test")
                .await
                .unwrap(),
        ),
        Op::List {
            target,
            locked_only,
        } => {
            let mut records: Vec<AttemptRecord> = engine
                .list(target, *locked_only)
                .await
                .unwrap()
                .into_iter()
                .map(|record| AttemptRecord {
                    first_failure: None,
                    last_failure: None,
                    lock_remaining: whole(record.lock_remaining),
                    would_lock_remaining: whole(record.would_lock_remaining),
                    spraying: record.spraying.map(|spraying| SprayingRecord {
                        lock_remaining: whole(spraying.lock_remaining),
                        would_lock_remaining: whole(spraying.would_lock_remaining),
                        ..spraying
                    }),
                    ..record
                })
                .collect();
            records.sort_by(|a, b| a.identity.tag().cmp(b.identity.tag()));
            Answer::Records(records)
        }
        Op::Logs { filter, limit } => {
            let mut entries: Vec<LogEntry> = engine
                .logs(filter, *limit)
                .await
                .unwrap()
                .into_iter()
                .map(|entry| LogEntry {
                    time: std::time::UNIX_EPOCH,
                    ..entry
                })
                .collect();
            // Stable: each IP's entries stay newest first.
            entries.sort_by_key(|entry| entry.ip);
            Answer::Logs(entries)
        }
        Op::ResetLogs(age) => Answer::Count(engine.reset_logs(*age).await.unwrap()),
        Op::RevokeDevices(usernames) => {
            engine.revoke_devices(usernames).await.unwrap();
            Answer::Revoked
        }
        Op::Unlock { username, id } => {
            // Valid for 20 s: within a case's advances, or past them.
            let unlock = Unlock {
                username: username.clone(),
                scope: None,
                id: id.to_string(),
                expires: epoch_millis(SystemTime::now() + Duration::from_secs(20)),
            };
            Answer::Unlocked(engine.unlock(&unlock).await.unwrap())
        }
        Op::Advance(by) => {
            backend.advance(*by);
            Answer::Advanced
        }
        Op::Switch => Answer::Switched,
    }
}

/// A remaining time rounded up to whole seconds.
fn whole(remaining: Option<Duration>) -> Option<Duration> {
    remaining.map(|left| Duration::from_secs(left.as_millis().div_ceil(1000) as u64))
}

fn whole_verdict(verdict: Verdict) -> Verdict {
    match verdict {
        Verdict::Locked(lockout) => Verdict::Locked(whole_lockout(lockout)),
        Verdict::WouldLock(lockout) => Verdict::WouldLock(whole_lockout(lockout)),
        Verdict::Allowed => Verdict::Allowed,
    }
}

fn whole_lockout(lockout: Lockout) -> Lockout {
    Lockout {
        retry_after: whole(lockout.retry_after),
        ..lockout
    }
}

fn policy() -> impl Strategy<Value = Policy> {
    let seconds = || (1..=30u64).prop_map(Duration::from_secs);
    // Limits of their own for some combinations (the others keep the policy's).
    let own_limits = vec(
        option::of((
            option::of(1..=4u32),
            option::of(seconds()),
            option::of(seconds()),
        )),
        2,
    );
    (
        1..=4u32,
        select(COMBINATIONS),
        seconds(),
        option::of(seconds()),
        // Mostly locking: a policy that only counts has fewer states to tell apart.
        prop::bool::weighted(0.8),
        any::<[bool; 2]>(),
        own_limits,
        // Repeat offenders: memory, backoff, and the longest lockout beyond the first's.
        option::of((
            (1..=120u64).prop_map(Duration::from_secs),
            select(&[1.0, 1.5, 2.0, 3.0][..]),
            0..=60u64,
        )),
        prop::bool::weighted(0.3),
        // Password spraying: 2 or 3 of the usernames within a window, or off.
        option::of((2..=3u32, seconds())),
    )
        .prop_map(
            |(
                limit,
                combinations,
                cooloff,
                lockout,
                at_failure,
                [on_success, extend],
                own,
                repeat,
                observe,
                spraying,
            )| {
                let lockout_duration = lockout.unwrap_or(cooloff);
                let mut policy = Policy {
                    cooloff,
                    lockout_duration,
                    lock_out_at_failure: at_failure,
                    reset_on_success: on_success,
                    reset_cooloff_on_failure_during_lockout: extend,
                    repeat: repeat.map(|(memory, backoff, beyond)| Repeat {
                        memory,
                        backoff: Backoff(backoff),
                        max_lockout: lockout_duration + Duration::from_secs(beyond),
                    }),
                    observe,
                    spraying: spraying.map(|(limit, window)| Spraying {
                        limit: NonZeroU32::new(limit).unwrap(),
                        window,
                    }),
                    ..support::policy(limit, combinations)
                };
                for (combination, own) in policy.combinations.iter_mut().zip(own) {
                    if let Some((failure_limit, cooloff, lockout_duration)) = own {
                        *combination = combination.clone().with_limits(Limits {
                            failure_limit: failure_limit.and_then(NonZeroU32::new),
                            cooloff,
                            lockout_duration,
                        });
                    }
                }
                policy
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => attempt().prop_map(Op::Check),
        1 => attempt().prop_map(Op::Inspect),
        6 => attempt().prop_map(Op::Fail),
        2 => attempt().prop_map(Op::Succeed),
        3 => (target(), any::<bool>())
            .prop_map(|(target, dry_run)| Op::Reset { target, dry_run }),
        1 => vec(username(), 1..=2).prop_map(Op::RevokeDevices),
        1 => (username(), select(&["u1", "u2"][..]))
            .prop_map(|(username, id)| Op::Unlock { username, id }),
        2 => (target(), any::<bool>())
            .prop_map(|(target, locked_only)| Op::List { target, locked_only }),
        2 => logs(),
        1 => prop_oneof![Just(Duration::ZERO), Just(DAY)].prop_map(Op::ResetLogs),
        // Half of them 1 or 2 s: within, or just at, the end of the 2 s a reset's marker lives.
        3 => prop_oneof![1..=2u64, 1..=35u64]
            .prop_map(|secs| Op::Advance(Duration::from_secs(secs))),
        1 => Just(Op::Switch),
    ]
}

fn attempt() -> impl Strategy<Value = Attempt> {
    (
        select(IPS),
        option::weighted(0.8, select(USERNAMES)),
        option::of(select(USER_AGENTS)),
        option::of(select(PATHS)),
        option::weighted(0.3, (select(DEVICES), select(ISSUED))),
    )
        .prop_map(|(ip, username, user_agent, path, device)| {
            let device = device.map(|(id, issued)| Device {
                id: id.to_string(),
                issued,
            });
            Attempt::parse(ip, username, user_agent, path)
                .unwrap()
                .with_device(device)
        })
}

fn ip() -> impl Strategy<Value = IpAddr> {
    select(IPS).prop_map(|ip| parse_ip(ip).unwrap())
}

fn username() -> impl Strategy<Value = String> {
    select(USERNAMES).prop_map(String::from)
}

fn target() -> impl Strategy<Value = Target> {
    let ips = || vec(ip(), 1..=2);
    let usernames = || vec(username(), 1..=2);
    prop_oneof![
        Just(Target::All),
        ips().prop_map(Target::Ips),
        usernames().prop_map(Target::Usernames),
        (ips(), usernames()).prop_map(|(ips, usernames)| Target::Pairs { ips, usernames }),
        (ips(), usernames()).prop_map(|(ips, usernames)| Target::Either { ips, usernames }),
        (
            option::of(select(IP_PREFIXES)),
            option::of(select(USERNAME_PREFIXES))
        )
            .prop_map(|(ip, username)| Target::Prefixes {
                ip: ip.map(String::from),
                username: username.map(String::from),
            }),
    ]
}

/// Reads of one IP's entries, limited or not, and unlimited reads of every IP's.
fn logs() -> impl Strategy<Value = Op> {
    let outcome = || option::of(select(Outcome::ALL.to_vec()));
    prop_oneof![
        (
            ip(),
            option::of(username()),
            outcome(),
            prop_oneof![1..=3usize, Just(usize::MAX)]
        )
            .prop_map(|(ip, username, outcome, limit)| Op::Logs {
                filter: LogFilter {
                    ip: Some(ip),
                    username,
                    outcomes: outcome.into_iter().collect(),
                    ..LogFilter::default()
                },
                limit,
            }),
        (option::of(username()), outcome()).prop_map(|(username, outcome)| Op::Logs {
            filter: LogFilter {
                ip: None,
                username,
                outcomes: outcome.into_iter().collect(),
                ..LogFilter::default()
            },
            limit: usize::MAX,
        }),
    ]
}
