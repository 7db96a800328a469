//! Lock ends in a backlog: 20,000 ends due at once are told by two service instances within
//! the bound that `end_lockouts` documents (in sweeps), each once; and one instance takes
//! from every shard in turn, none waiting for the others to drain.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lockout::store::Store;
use lockout::Engine;

use crate::support::{eventually, lockouts_started, policy, RedisServer};

/// Ends told per sweep (the service's `LOCK_ENDS_PER_LOOK`).
const LIMIT: usize = 1000;
/// A sweep takes at least this many shards' batches (`SHARDS_PER_SWEEP`).
const SHARDS_PER_SWEEP: usize = 4;
const BACKLOG: usize = 20_000;

/// Schedules `BACKLOG` lock ends through `engine`'s store and waits until all are due.
async fn backlog<S: Store>(redis: &RedisServer, engine: &Engine<S>) {
    let bounds = engine.policy().events.unwrap();
    let started = lockouts_started(BACKLOG);
    for chunk in started.chunks(2000) {
        engine.store().append_events(chunk, bounds).await.unwrap();
    }
    assert_eq!(sizes(redis).iter().sum::<usize>(), BACKLOG);
    let mut last_end = 0.0_f64;
    for shard in 0..16 {
        let last: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(format!("lockout:lock_ends:{shard}"))
            .arg(-1)
            .arg(-1)
            .arg("WITHSCORES")
            .query(&mut redis.connection())
            .unwrap();
        last_end = last.iter().map(|(_, end)| *end).fold(last_end, f64::max);
    }
    eventually(Duration::from_secs(5), "every end due", async || {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        now.as_millis() as f64 > last_end
    })
    .await;
}

/// How many ends each shard holds.
fn sizes(redis: &RedisServer) -> Vec<usize> {
    let mut connection = redis.connection();
    (0..16)
        .map(|shard| {
            redis::cmd("ZCARD")
                .arg(format!("lockout:lock_ends:{shard}"))
                .query(&mut connection)
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_backlog_of_lock_ends_is_told_once_each_within_its_bound_in_sweeps() {
    let redis = RedisServer::start();
    let policy = policy(3, &[&["ip"]]);
    let (one, two) = (
        redis.engine(policy.clone()).await,
        redis.engine(policy).await,
    );
    let bounds = one.policy().events.unwrap();
    backlog(&redis, &one).await;
    let fullest = sizes(&redis).into_iter().max().unwrap();
    let bound = BACKLOG / LIMIT + fullest.div_ceil(LIMIT / SHARDS_PER_SWEEP);
    let mut told = 0;
    let mut sweeps = 0;
    while told < BACKLOG as u64 {
        assert!(
            sweeps < bound,
            "{told} of {BACKLOG} ends told after {sweeps} sweeps (bound {bound})"
        );
        let (a, b) = tokio::join!(
            one.store().end_lockouts(bounds, LIMIT),
            two.store().end_lockouts(bounds, LIMIT)
        );
        told += a.unwrap() + b.unwrap();
        sweeps += 1;
    }
    assert_eq!(told, BACKLOG as u64, "each end told once");
    let (a, b) = tokio::join!(
        one.store().end_lockouts(bounds, LIMIT),
        two.store().end_lockouts(bounds, LIMIT)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 0, "none left");
    assert_eq!(sizes(&redis), vec![0; 16]);
    println!("{BACKLOG} ends told by two instances in {sweeps} sweeps (bound {bound})");
}

#[tokio::test]
async fn every_shard_of_a_backlog_progresses_within_a_few_sweeps() {
    let redis = RedisServer::start();
    let engine = redis.engine(policy(3, &[&["ip"]])).await;
    let bounds = engine.policy().events.unwrap();
    backlog(&redis, &engine).await;
    // Sweeps since each shard last lost an end.
    let mut waiting = [0; 16];
    let mut before = sizes(&redis);
    while before.iter().any(|&size| size > 0) {
        engine.store().end_lockouts(bounds, LIMIT).await.unwrap();
        let after = sizes(&redis);
        for shard in 0..16 {
            waiting[shard] = if after[shard] < before[shard] || after[shard] == 0 {
                0
            } else {
                waiting[shard] + 1
            };
            assert!(
                waiting[shard] < 16 / SHARDS_PER_SWEEP,
                "shard {shard} untouched for {} sweeps: {after:?}",
                waiting[shard]
            );
        }
        before = after;
    }
}
