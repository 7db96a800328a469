//! Policies that fit real attacks: combinations with limits of their own (rate-limiter-flexible's
//! login recipe as a lockout policy) and repeat offenders (each lockout longer than the one
//! before), on one server, a cluster and the in-process store.

use std::num::NonZeroU32;
use std::time::Duration;

use lockout::attempt::Field;
use lockout::keys::KeyKind;
use lockout::policy::{Backoff, Combination, Limits, Repeat};
use lockout::{Attempt, Engine, Policy, Target, Verdict};
use serde_json::{json, Value};

use crate::support::http_client;
use crate::support::{
    free_port, json_of, lockout_command, text_of, Backend, RedisServer, ServeProcess, TestService,
};

crate::on_all!(
    the_login_recipe_limits_the_pair_and_the_ip_apart,
    repeat_offenders_are_locked_out_longer_each_time,
);

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// rate-limiter-flexible's login recipe: 10 consecutive failures of a username from one IP
/// within 90 days block the pair for an hour; 100 failures of an IP within a day block it for a
/// day.
fn login_recipe() -> Policy {
    let limits = |limit: u32, cooloff: Duration, lockout_duration: Duration| Limits {
        failure_limit: NonZeroU32::new(limit),
        cooloff: Some(cooloff),
        lockout_duration: Some(lockout_duration),
    };
    Policy {
        combinations: vec![
            Combination::new([Field::Ip, Field::Username])
                .unwrap()
                .with_limits(limits(10, 90 * DAY, HOUR)),
            Combination::new([Field::Ip])
                .unwrap()
                .with_limits(limits(100, DAY, DAY)),
        ],
        ..Policy::default()
    }
}

fn attempt(ip: &str, username: &str) -> Attempt {
    Attempt::parse(ip, Some(username), None, None).unwrap()
}

/// The lock of each of `target`'s records, to the minute.
async fn locks(engine: &Engine<lockout::AnyStore>, target: Target) -> Vec<(String, Option<u64>)> {
    let mut locks: Vec<(String, Option<u64>)> = engine
        .list(&target, false)
        .await
        .unwrap()
        .into_iter()
        .map(|record| {
            let minutes = record.lock_remaining.map(|lock| (lock.as_secs() + 30) / 60);
            (record.identity.tag().to_string(), minutes)
        })
        .collect();
    locks.sort();
    locks
}

async fn the_login_recipe_limits_the_pair_and_the_ip_apart(backend: Backend) {
    let engine = backend.engine(login_recipe()).await;
    let alice = attempt("203.0.113.7", "alice");
    for failure in 1..=9 {
        let report = engine.fail(&alice).await.unwrap();
        assert!(!report.locked, "failure {failure}");
    }
    let tenth = engine.fail(&alice).await.unwrap();
    assert!(tenth.locked);
    assert_eq!(tenth.started[0].names(), ["ip", "username"]);
    assert_eq!(tenth.retry_after.map(|lock| lock.as_secs()), Some(3600));
    let bob = attempt("203.0.113.7", "bob");
    assert!(
        !engine.check(&bob).await.unwrap().is_locked(),
        "the pair is locked, not the IP"
    );
    for n in 0..89 {
        let report = engine
            .fail(&attempt("203.0.113.7", &format!("user{n}")))
            .await
            .unwrap();
        assert!(!report.locked, "the IP's failure {}", n + 11);
    }
    let hundredth = engine.fail(&bob).await.unwrap();
    assert!(hundredth.locked);
    assert_eq!(
        hundredth
            .started
            .iter()
            .map(|c| c.names())
            .collect::<Vec<_>>(),
        [["ip"]],
        "the IP's 100th failure"
    );
    assert_eq!(
        locks(&engine, Target::Usernames(vec!["alice".into()])).await,
        [("ip=203.0.113.7&username=alice".to_string(), Some(60))]
    );
    assert_eq!(
        locks(&engine, Target::Ips(vec!["203.0.113.7".parse().unwrap()])).await[0],
        ("ip=203.0.113.7".to_string(), Some(24 * 60))
    );

    // After the pair's hour the IP's day still refuses (and the refused check renews both
    // locks); a day later both have ended, the IP's count with them, but the pair's failures
    // are remembered for 90 days: its next failure blocks it again at once.
    backend.advance(HOUR + Duration::from_secs(1));
    assert!(engine.check(&alice).await.unwrap().is_locked());
    backend.advance(DAY + Duration::from_secs(1));
    assert!(!engine.check(&alice).await.unwrap().is_locked());
    let again = engine.fail(&alice).await.unwrap();
    assert!(again.locked);
    assert_eq!(again.retry_after.map(|lock| lock.as_secs()), Some(3600));
    let counts: Vec<u64> = again.failures.iter().map(|f| f.count).collect();
    assert_eq!(counts, [12, 1], "the pair's count lives on, the IP's ended");
}

/// The same recipe written as JSON in `LOCKOUT_POLICY_LOCKOUT_PARAMETERS`, as a site's
/// environment gives it to `lockout serve`.
#[tokio::test]
async fn combination_tables_come_as_json_from_the_environment() {
    let port = free_port();
    let recipe = r#"[{"fields": ["ip", "username"], "failure_limit": 2, "cooloff": "90d", "lockout_duration": "1h"}, {"fields": "ip", "failure_limit": 100, "cooloff": "1d"}]"#;
    let _serving = ServeProcess::start(
        &["--listen", &format!("127.0.0.1:{port}")],
        &[("LOCKOUT_POLICY_LOCKOUT_PARAMETERS", recipe)],
        port,
    );
    let client = http_client();
    let mut answer = Value::Null;
    for _ in 0..2 {
        answer = json_of(
            client
                .post(format!("http://127.0.0.1:{port}/v1/failure"))
                .json(&json!({"ip": "203.0.113.7", "username": "alice"})),
        )
        .await;
    }
    assert_eq!(
        answer,
        json!({
            "locked": true,
            "retry_after_secs": 3600,
            "failures": [
                {"parameters": ["ip", "username"], "count": 2},
                {"parameters": ["ip"], "count": 2},
            ],
        })
    );
}

/// Two failures lock an IP for 10 s, 20 s after a remembered lockout, 35 s at most.
fn repeat_offenders() -> Policy {
    Policy {
        cooloff: Duration::from_secs(10),
        lockout_duration: Duration::from_secs(10),
        repeat: Some(Repeat {
            memory: HOUR,
            backoff: Backoff(2.0),
            max_lockout: Duration::from_secs(35),
        }),
        ..crate::support::policy(2, &[&["ip"]])
    }
}

/// Fails `attempt` until it is locked; answers the lock's length in seconds.
async fn lock_out(engine: &Engine<lockout::AnyStore>, attempt: &Attempt) -> u64 {
    loop {
        let report = engine.fail(attempt).await.unwrap();
        if report.locked {
            assert_eq!(report.started.len(), 1, "a lockout started");
            return report.retry_after.unwrap().as_secs();
        }
    }
}

async fn lockouts(engine: &Engine<lockout::AnyStore>) -> Vec<u64> {
    let records = engine.list(&Target::All, false).await.unwrap();
    records.iter().map(|record| record.lockouts).collect()
}

async fn repeat_offenders_are_locked_out_longer_each_time(backend: Backend) {
    let engine = backend.engine(repeat_offenders()).await;
    let attacker = Attempt::parse("198.51.100.66", None, None, None).unwrap();
    assert_eq!(lock_out(&engine, &attacker).await, 10);
    assert_eq!(lockouts(&engine).await, [1]);
    for (expected, count) in [(20, 2), (35, 3), (35, 4)] {
        // The lock and the record end; the lockout is remembered.
        backend.advance(Duration::from_secs(36));
        assert!(!engine.check(&attacker).await.unwrap().is_locked());
        assert_eq!(
            lock_out(&engine, &attacker).await,
            expected,
            "lockout {count}"
        );
        assert_eq!(lockouts(&engine).await, [count]);
    }
    // A refusal during the lockout renews it at the same length: no new lockout.
    backend.advance(Duration::from_secs(5));
    let Verdict::Locked(refused) = engine.check(&attacker).await.unwrap() else {
        panic!("locked")
    };
    assert_eq!(refused.retry_after.map(|lock| lock.as_secs()), Some(35));
    assert!(refused.started.is_empty());
    assert_eq!(lockouts(&engine).await, [4]);
    if !matches!(backend, Backend::Memory { .. }) {
        let ttl = backend.pttl(&crate::support::key_of(
            "lockout",
            KeyKind::Lockouts,
            "ip=198.51.100.66",
        ));
        assert!(
            0 < ttl && ttl <= 3_600_000,
            "the count lives the lockout memory: {ttl}"
        );
    }

    // The memory ends: the next lockout is a first one again.
    backend.advance(HOUR);
    assert_eq!(lock_out(&engine, &attacker).await, 10);
    assert_eq!(lockouts(&engine).await, [1]);
    // A reset forgets the lockouts too.
    backend.advance(Duration::from_secs(11));
    assert_eq!(lock_out(&engine, &attacker).await, 20);
    let removed = engine
        .reset(&Target::All, false, &mut |_| {}, "test")
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(lock_out(&engine, &attacker).await, 10);
    assert_eq!(lockouts(&engine).await, [1]);
    let started: Vec<Option<u64>> = engine
        .events(&lockout::event::EventCursor::default(), 100)
        .await
        .unwrap()
        .iter()
        .filter(|stored| stored.event.kind == lockout::event::EventKind::LockoutStarted)
        .map(|stored| stored.event.lockouts)
        .collect();
    let numbers = [1, 2, 3, 4, 1, 2, 1].map(Some);
    assert_eq!(started, numbers, "each lockout's event has its number");
}

/// A lockout memory under a millisecond is no memory: `fail.lua` then gets neither the
/// lockout-count key nor the backoff, and the keys and arguments after them still line up.
#[tokio::test]
async fn a_lockout_memory_under_a_millisecond_is_off() {
    let backend = Backend::server();
    let engine = backend
        .engine(Policy {
            repeat: Some(Repeat {
                memory: Duration::from_micros(500),
                backoff: Backoff(2.0),
                max_lockout: Duration::from_secs(35),
            }),
            ..repeat_offenders()
        })
        .await;
    let attacker = Attempt::parse(
        "198.51.100.67",
        Some("mallory"),
        Some("curl/8"),
        Some("/login"),
    )
    .unwrap();
    assert_eq!(lock_out(&engine, &attacker).await, 10);
    backend.advance(Duration::from_secs(11));
    assert_eq!(
        lock_out(&engine, &attacker).await,
        10,
        "no longer: no memory"
    );
    let records = engine.list(&Target::All, false).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].lockouts, 0);
    assert_eq!(records[0].user_agent.as_deref(), Some("curl/8"));
    let logged = engine
        .logs(&lockout::record::LogFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(logged.len(), 4, "every failure logged: {logged:?}");
}

/// The lockout count where operators look: the API's records, `lockout list`, the admin page.
#[tokio::test]
async fn operators_see_how_often_an_identity_was_locked_out() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        config.admin.password = "s3cret".into();
        config.policy = repeat_offenders();
    })
    .await;
    let client = http_client();
    service.fail(&client, "198.51.100.66", 2).await;
    let attempts = json_of(
        client
            .get(service.at("/v1/attempts"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    assert_eq!(attempts["attempts"][0]["lockouts"], 1, "{attempts}");
    let page = text_of(
        client
            .get(service.at("/dj-ad-admin/"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    assert!(page.contains("1 lockout remembered"), "{page}");
    let listed = lockout_command(&[("LOCKOUT_REDIS_URL", &redis.url())])
        .arg("list")
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("(1 lockout remembered)"), "{listed}");
}
