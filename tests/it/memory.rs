//! What only the in-process store has: its bound on tracked identities and the order in which
//! it evicts, its access-log bounds, and paging (its behaviour otherwise is tested with Redis',
//! see `on_all!` in `engine` and `lock_cache`).

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use lockout::policy::AccessLog;
use lockout::record::LogFilter;
use lockout::{Attempt, Engine, ManualClock, MemoryStore, Policy, Store, Target};

use crate::support::policy;

fn engine(max_identities: usize, policy: Policy) -> (Engine<MemoryStore>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let store = MemoryStore::with_clock(max_identities, clock.clone());
    (Engine::new(store, policy), clock)
}

fn ip(ip: &str) -> Attempt {
    Attempt::parse(ip, None, None, None).unwrap()
}

async fn tracked(engine: &Engine<MemoryStore>) -> Vec<(String, bool)> {
    let mut records: Vec<(String, bool)> = engine
        .list(&Target::All, false)
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.identity.tag().to_string(), record.is_locked()))
        .collect();
    records.sort();
    records
}

#[tokio::test]
async fn at_its_bound_it_evicts_the_counter_nearest_its_end_and_a_lock_last() {
    let (engine, clock) = engine(3, policy(2, &[&["ip"]]));
    for _ in 0..2 {
        engine.fail(&ip("10.0.0.1")).await.unwrap();
    }
    for address in ["10.0.0.2", "10.0.0.3"] {
        clock.advance(Duration::from_secs(1));
        engine.fail(&ip(address)).await.unwrap();
    }
    clock.advance(Duration::from_secs(1));
    engine.fail(&ip("10.0.0.4")).await.unwrap();
    assert_eq!(
        tracked(&engine).await,
        [
            ("ip=10.0.0.1".to_string(), true),
            ("ip=10.0.0.3".to_string(), false),
            ("ip=10.0.0.4".to_string(), false),
        ],
        "the counter that failed first went, the lock stayed"
    );

    let (engine, _) = engine_with_one_lock().await;
    engine.fail(&ip("10.0.0.2")).await.unwrap();
    assert_eq!(
        tracked(&engine).await,
        [("ip=10.0.0.2".to_string(), true)],
        "with no counter left, the lock nearest its end goes"
    );
}

async fn engine_with_one_lock() -> (Engine<MemoryStore>, Arc<ManualClock>) {
    let (engine, clock) = engine(1, policy(1, &[&["ip"]]));
    assert!(engine.fail(&ip("10.0.0.1")).await.unwrap().locked);
    (engine, clock)
}

#[tokio::test]
async fn records_end_with_their_cool_off_and_locks_with_their_duration() {
    let (engine, clock) = engine(
        100,
        Policy {
            cooloff: Duration::from_secs(60),
            lockout_duration: Duration::from_secs(600),
            ..policy(1, &[&["ip"]])
        },
    );
    assert!(engine.fail(&ip("10.0.0.1")).await.unwrap().locked);
    clock.advance(Duration::from_secs(599));
    assert!(engine.check(&ip("10.0.0.2")).await.unwrap() == lockout::Verdict::Allowed);
    let record = &engine.list(&Target::All, true).await.unwrap()[0];
    assert_eq!(record.lock_remaining, Some(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    assert!(engine.list(&Target::All, false).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_access_log_keeps_its_retention_and_its_size() {
    let (engine, clock) = engine(
        100,
        Policy {
            access_log: Some(AccessLog {
                retention: Duration::from_secs(10),
                max_entries: NonZeroU64::new(3).unwrap(),
            }),
            ..policy(100, &[&["ip"]])
        },
    );
    for n in 1..=5 {
        engine.fail(&ip(&format!("10.0.0.{n}"))).await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let ips = |entries: Vec<lockout::record::LogEntry>| -> Vec<String> {
        entries.iter().map(|entry| entry.ip.to_string()).collect()
    };
    let all = LogFilter::default();
    assert_eq!(
        ips(engine.logs(&all, 10).await.unwrap()),
        ["10.0.0.5", "10.0.0.4", "10.0.0.3"],
        "the newest three"
    );
    // Now 14 s after the first entry: only the one written 10 s ago or less is read.
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        ips(engine.logs(&all, 10).await.unwrap()),
        ["10.0.0.5"],
        "entries older than the retention are not read"
    );
    assert_eq!(engine.reset_logs(Duration::ZERO).await.unwrap(), 3);
    assert!(engine.logs(&all, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn pages_walk_every_record_once() {
    let (engine, _) = engine(1000, policy(100, &[&["ip"]]));
    for n in 0..25 {
        engine.fail(&ip(&format!("10.0.1.{n}"))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = engine
            .store()
            .page(&Target::All, cursor.as_deref(), 10)
            .await
            .unwrap();
        assert!(page.records.len() <= 10);
        seen.extend(
            page.records
                .into_iter()
                .map(|r| r.identity.tag().to_string()),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);
}

#[tokio::test]
async fn its_bounds_and_eviction_order_hold_over_all_scopes() {
    let (engine, clock) = engine(2, policy(1, &[&["ip"]]));
    assert!(engine.fail(&ip("10.0.0.1")).await.unwrap().locked);
    let scoped = |name: &str, policy: Policy| {
        let keys = engine.store().keys().scoped(name).unwrap();
        Engine::new(engine.store().with_keys(keys), policy)
    };
    let other = scoped("other", policy(5, &[&["ip"]]));
    clock.advance(Duration::from_secs(1));
    other.fail(&ip("10.0.0.2")).await.unwrap();
    clock.advance(Duration::from_secs(1));
    other.fail(&ip("10.0.0.3")).await.unwrap();
    assert_eq!(
        tracked(&engine).await,
        [("ip=10.0.0.1".to_string(), true)],
        "the lock in one scope stays; the other scope's oldest counter went"
    );
    assert_eq!(tracked(&other).await, [("ip=10.0.0.3".to_string(), false)]);

    let logged = MemoryStore::new(100).with_max_log_entries(3);
    let first = Engine::new(logged.clone(), policy(100, &[&["ip"]]));
    let second = Engine::new(
        logged.with_keys(logged.keys().scoped("second").unwrap()),
        policy(100, &[&["ip"]]),
    );
    first.fail(&ip("10.0.0.1")).await.unwrap();
    first.fail(&ip("10.0.0.2")).await.unwrap();
    for n in 3..=5 {
        second.fail(&ip(&format!("10.0.0.{n}"))).await.unwrap();
    }
    let all = LogFilter::default();
    let count = |entries: Vec<lockout::record::LogEntry>| entries.len();
    assert_eq!(
        (
            count(first.logs(&all, 10).await.unwrap()),
            count(second.logs(&all, 10).await.unwrap())
        ),
        (2, 1),
        "3 entries in all: the scope that appends drops its own oldest"
    );
}

/// A scope takes one of the in-process store's `MAX_SPACES` slots only while it holds state:
/// read-only checks of new scopes take none, scopes whose state all expired give theirs back,
/// and only scopes that all hold state at once refuse another.
#[tokio::test]
async fn scopes_take_slots_only_while_they_hold_state() {
    let (root, clock) = engine(10_000, policy(3, &[&["ip"]]));
    let scoped = |name: String| {
        let store = root.store();
        Engine::new(
            store.with_keys(store.keys().scoped(&name).unwrap()),
            policy(3, &[&["ip"]]),
        )
    };
    for n in 0..2000 {
        let verdict = scoped(format!("read-{n}")).check(&ip("10.0.0.1")).await;
        assert!(!verdict.unwrap().is_locked());
    }
    let report = scoped("after-reads".into()).fail(&ip("10.0.0.1")).await;
    assert_eq!(
        report.unwrap().failures[0].count,
        1,
        "a new scope still counts"
    );

    let max = lockout::store::memory::MAX_SPACES;
    // `after-reads` holds state too.
    for n in 0..max - 1 {
        scoped(format!("full-{n}"))
            .fail(&ip("10.0.0.1"))
            .await
            .unwrap();
    }
    let refused = scoped("one-too-many".into()).fail(&ip("10.0.0.1")).await;
    let refused = refused.expect_err("every slot holds state");
    assert!(
        refused.to_string().contains("at most 1024 scopes"),
        "{refused}"
    );
    assert!(
        !scoped("one-too-many".into())
            .check(&ip("10.0.0.1"))
            .await
            .unwrap()
            .is_locked(),
        "a full store still answers checks"
    );

    let policy = root.policy();
    let retention = policy
        .access_log
        .map_or(Duration::ZERO, |log| log.retention);
    clock.advance(policy.cooloff.max(retention) + Duration::from_secs(1));
    let report = scoped("after-expiry".into()).fail(&ip("10.0.0.1")).await;
    assert_eq!(
        report.unwrap().failures[0].count,
        1,
        "the slots of scopes whose failures expired are taken again"
    );
}

/// 255 four-byte characters, the most a username, user agent or path holds.
fn worst(n: usize) -> String {
    let text = format!("{n:06}{}", "\u{1D11E}".repeat(255));
    text.chars().take(255).collect()
}

fn worst_attempt(ip: &str, user: usize, n: usize) -> Attempt {
    Attempt::parse(ip, Some(&worst(user)), Some(&worst(n)), Some(&worst(n))).unwrap()
}

#[tokio::test]
async fn worst_case_inputs_stay_within_its_bytes_oldest_evicted_first() {
    const MAX_BYTES: usize = 1 << 20;
    let clock = Arc::new(ManualClock::default());
    let store = MemoryStore::with_clock(1_000_000, clock.clone()).with_max_bytes(MAX_BYTES);
    let engine = Engine::new(
        store,
        policy(3, &[&["ip"], &["username"], &["ip", "username"]]),
    );
    let all = LogFilter::default();
    // Many identities: records and log entries share the bound.
    for n in 0..2000 {
        let ip = format!("10.0.{}.{}", n / 256, n % 256);
        engine.fail(&worst_attempt(&ip, n, n)).await.unwrap();
        assert!(engine.store().held_bytes() <= MAX_BYTES, "after {n}");
        clock.advance(Duration::from_millis(1));
    }
    let tracked = tracked(&engine).await;
    assert!(!tracked.is_empty());
    assert!(tracked.len() < 3 * 2000, "some evicted");
    assert!(
        tracked.iter().any(|(tag, _)| tag == "ip=10.0.7.207"),
        "the newest kept"
    );
    assert!(
        !tracked.iter().any(|(tag, _)| tag == "ip=10.0.0.0"),
        "the oldest evicted"
    );
    // Records came first: the log yielded its room.
    assert!(engine.logs(&all, 10).await.unwrap().len() < 10);

    // One client failing again and again: its log entries go, oldest first.
    engine
        .reset(&Target::All, false, &mut |_| {}, "test")
        .await
        .unwrap();
    for n in 0..2000 {
        engine
            .fail(&worst_attempt("192.0.2.1", 0, n))
            .await
            .unwrap();
        assert!(engine.store().held_bytes() <= MAX_BYTES, "after {n}");
        clock.advance(Duration::from_millis(1));
    }
    let kept = engine.logs(&all, 2000).await.unwrap();
    assert!(kept.len() > 100 && kept.len() < 2000, "{} kept", kept.len());
    assert_eq!(kept[0].path.as_deref(), Some(worst(1999).as_str()));
    assert_eq!(
        kept.last().unwrap().path.as_deref(),
        Some(worst(2000 - kept.len()).as_str()),
        "the newest kept, without a gap"
    );
}
