//! The lock cache: locked checks answered without Redis, refusals recorded in batches, and
//! resets by another process reaching the cache, on one Redis and on a cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockout::keys::RESET_GUARD;
use lockout::record::{LogFilter, Outcome};
use lockout::store::{FailureRule, Refusals};
use lockout::{AnyStore, Attempt, Engine, Identity, Store, Target, Verdict};

use crate::support::{eventually, policy, Backend};

crate::on_all!(
    attempts_not_all_locked_go_to_redis_at_once,
    a_reset_by_another_process_reaches_the_cache,
    refusals_counted_before_a_reset_are_dropped_after_it,
    a_reset_during_a_flood_is_never_undone,
);

// This one counts the commands Redis ran.
crate::on_both!(locked_checks_skip_redis_and_refusals_arrive_in_batches);

fn attempt(ip: &str, username: Option<&str>) -> Attempt {
    Attempt::parse(ip, username, None, None).unwrap()
}

/// `engine` with its lock cache on and listening.
async fn cached(
    engine: Engine<AnyStore>,
) -> (Engine<AnyStore>, lockout::lock_cache::LockCacheTasks) {
    let (engine, tasks) = engine.with_lock_cache();
    eventually(
        Duration::from_secs(5),
        "the cache listens to resets",
        async || engine.lock_cache_listening(),
    )
    .await;
    (engine, tasks)
}

async fn failures(engine: &Engine<AnyStore>, tag: &str) -> u64 {
    engine
        .list(&Target::All, false)
        .await
        .unwrap()
        .into_iter()
        .find(|record| record.identity.tag() == tag)
        .map_or(0, |record| record.failures)
}

async fn locked_checks_skip_redis_and_refusals_arrive_in_batches(redis: Backend) {
    let (engine, _tasks) = cached(redis.engine(policy(3, &[&["ip"]])).await).await;
    let flooder = attempt("10.6.6.6", None);
    for _ in 0..3 {
        engine.fail(&flooder).await.unwrap();
    }
    let reads = redis.command_calls("pttl");
    for _ in 0..50 {
        let Verdict::Locked(lockout) = engine.check(&flooder).await.unwrap() else {
            panic!("locked");
        };
        assert!(lockout.retry_after.unwrap() > Duration::from_secs(1790));
    }
    assert_eq!(
        redis.command_calls("pttl"),
        reads,
        "no lock read from Redis"
    );
    eventually(Duration::from_secs(2), "53 failures recorded", async || {
        failures(&engine, "ip=10.6.6.6").await == 53
    })
    .await;
    let refusals = LogFilter {
        outcomes: vec![Outcome::Refused],
        ..LogFilter::default()
    };
    let entries = engine.logs(&refusals, 100).await.unwrap();
    assert_eq!(entries.iter().map(|entry| entry.count).sum::<u64>(), 50);
    assert!(entries.len() < 50, "coalesced: {} entries", entries.len());
}

async fn a_reset_by_another_process_reaches_the_cache(redis: Backend) {
    let (engine, _tasks) = cached(redis.engine(policy(3, &[&["ip"]])).await).await;
    let other_process = redis.engine(policy(3, &[&["ip"]])).await;
    let locked_out = attempt("10.7.7.7", Some("alice"));
    for _ in 0..3 {
        engine.fail(&locked_out).await.unwrap();
    }
    assert!(engine.check(&locked_out).await.unwrap().is_locked());
    let reset = Target::Ips(vec!["10.7.7.7".parse().unwrap()]);
    assert_eq!(
        other_process
            .reset(&reset, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        1
    );
    // The lock would last 30 minutes: only the reset notice can unlock it this soon.
    eventually(
        Duration::from_secs(2),
        "the reset reaches the cache",
        async || engine.check(&locked_out).await.unwrap() == Verdict::Allowed,
    )
    .await;
    assert_eq!(
        failures(&engine, "ip=10.7.7.7").await,
        0,
        "no refusal recorded after the reset"
    );
}

async fn attempts_not_all_locked_go_to_redis_at_once(redis: Backend) {
    let (engine, _tasks) = cached(redis.engine(policy(3, &[&["username"], &["ip"]])).await).await;
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.2"] {
        engine.fail(&attempt(ip, Some("u1"))).await.unwrap();
    }
    // u1 is known locked, 10.0.0.3 is not: Redis answers, and records the refusal at once.
    assert!(engine
        .check(&attempt("10.0.0.3", Some("u1")))
        .await
        .unwrap()
        .is_locked());
    assert_eq!(failures(&engine, "ip=10.0.0.3").await, 1);
    assert_eq!(failures(&engine, "username=u1").await, 4);
}

async fn refusals_counted_before_a_reset_are_dropped_after_it(redis: Backend) {
    let engine = redis.engine(policy(3, &[&["ip"]])).await;
    let attacker = attempt("10.8.8.8", None);
    for _ in 0..3 {
        engine.fail(&attacker).await.unwrap();
    }
    let identity = Identity::of(&attacker, &engine.policy().combinations[0]).unwrap();
    let reset = Target::Ips(vec![attacker.ip]);
    assert_eq!(
        engine
            .reset(&reset, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        1
    );
    // A lock cache's batch, counted while the identity was locked, reaching Redis just after
    // the reset: it would lock the identity again at once.
    let batch = [Refusals {
        identity,
        rule: FailureRule {
            cooloff: Duration::from_secs(1800),
            lockout_duration: Duration::from_secs(1800),
            failure_limit: 3,
            lock_out_at_failure: true,
            repeat: None,
            observe: false,
        },
        count: 40,
        counted_ago: RESET_GUARD,
        user_agent: None,
        path: None,
    }];
    let states = engine.store().record_refusals(&batch, &[]).await.unwrap();
    assert_eq!(states[0].lock_remaining, None);
    assert_eq!(engine.check(&attacker).await.unwrap(), Verdict::Allowed);
    assert_eq!(failures(&engine, "ip=10.8.8.8").await, 0);
    // A failure after the reset counts as any other.
    assert_eq!(engine.fail(&attacker).await.unwrap().failures[0].count, 1);
    // Locked again within the reset's guard: a check's refusal is dropped, and it is refused
    // on the lock it read, by name.
    for _ in 0..2 {
        engine.fail(&attacker).await.unwrap();
    }
    let Verdict::Locked(lockout) = engine.check(&attacker).await.unwrap() else {
        panic!("locked again");
    };
    assert_eq!(lockout.locked_by, engine.policy().combinations);
    assert!(lockout.retry_after.is_some());
}

/// Two instances with lock caches under a flood of checks of one locked address while an
/// admin resets it, twenty times over: no reset is undone by refusals counted before it.
async fn a_reset_during_a_flood_is_never_undone(redis: Backend) {
    let (first, _first_tasks) = cached(redis.engine(policy(3, &[&["ip"]])).await).await;
    let (second, _second_tasks) = cached(redis.engine(policy(3, &[&["ip"]])).await).await;
    let instances = Arc::new([first, second]);
    let admin = redis.engine(policy(3, &[&["ip"]])).await;
    let attacker = attempt("10.9.9.9", None);
    let reset = Target::Ips(vec![attacker.ip]);
    for round in 0..20 {
        for _ in 0..3 {
            instances[round % 2].fail(&attacker).await.unwrap();
        }
        let flooding = Arc::new(AtomicBool::new(true));
        let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let flood: Vec<_> = (0..4)
            .map(|n| {
                let (instances, flooding, refused) =
                    (instances.clone(), flooding.clone(), refused.clone());
                let attacker = attacker.clone();
                tokio::spawn(async move {
                    while flooding.load(Ordering::Relaxed) {
                        if instances[n % 2].check(&attacker).await.unwrap().is_locked() {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        eventually(Duration::from_secs(5), "the flood is refused", async || {
            refused.load(Ordering::Relaxed) > 200
        })
        .await;
        assert_eq!(
            admin
                .reset(&reset, false, &mut |_| {}, "test")
                .await
                .unwrap(),
            1
        );
        flooding.store(false, Ordering::Relaxed);
        for task in flood {
            task.await.unwrap();
        }
        for instance in instances.iter() {
            instance.flush_lock_cache().await;
        }
        assert_eq!(
            admin.check(&attacker).await.unwrap(),
            Verdict::Allowed,
            "round {round}: the reset stands"
        );
        assert_eq!(
            failures(&admin, "ip=10.9.9.9").await,
            0,
            "round {round}: nothing counted before the reset survives it"
        );
    }
}
