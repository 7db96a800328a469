//! Lock ends: the `lockout_expired` events of locks that ran out unreset, taken once however
//! many processes ask; and the scopes that have lock ends to tell (`register_scope`,
//! `lock_end_scopes`), so that every instance sweeps every scope's.
//!
//! A sweep reads, in one round trip, at most `limit / SHARDS_PER_SWEEP` due ends of every
//! shard, and takes them shard after shard from where the last sweep of this process stopped
//! (the first shard it could not take whole), until `limit`. So a backlog is taken in turn
//! from every shard, and a backlog of N due ends, at most M of them in one shard, is told
//! within N / limit + ⌈M / (limit / SHARDS_PER_SWEEP)⌉ sweeps of any one process: a sweep
//! either tells `limit` ends or takes every shard's first batch. Each process starts at a
//! shard of its own (at random), and one that finds others took what it read moves to another
//! at random, so that processes sweeping together take different shards' ends.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, Value};

use super::{millis, since_epoch, RedisStore};
use crate::error::Result;
use crate::event::Event;
use crate::identity::Identity;
use crate::keys::{KeyKind, EVENT_SHARDS};
use crate::policy::AccessLog;
use crate::spraying;
use crate::store::scripts::{END_LOCKOUTS, REGISTER_LOCK_END_SCOPE};

/// How long after its latest lock end a scope is still swept: ends a sweep missed for as long
/// (every instance down, or Redis away) are then left untold.
const SCOPE_GRACE: Duration = Duration::from_secs(3600);

/// For a scope's store, the request that notes it has a lock ending at `ends` (since the
/// epoch); none for the unscoped keys, always swept.
pub(super) fn register_scope(store: &RedisStore, ends: Duration) -> Option<Cmd> {
    let scope = store.keys.scope()?;
    Some(REGISTER_LOCK_END_SCOPE.evalsha(
        &[store.keys.lock_end_scopes_key()],
        (
            millis(ends),
            scope,
            millis(ends.saturating_sub(since_epoch()) + SCOPE_GRACE),
            millis(since_epoch().saturating_sub(SCOPE_GRACE)),
        ),
    ))
}

/// Scopes with lock ends to tell, after the first `offset`, at most `limit`: those whose latest
/// end is within `SCOPE_GRACE` (`register_scope` drops the others).
pub(super) async fn lock_end_scopes(
    store: &RedisStore,
    offset: usize,
    limit: usize,
) -> Result<Vec<String>> {
    let key = store.keys.lock_end_scopes_key();
    let forgotten = millis(since_epoch().saturating_sub(SCOPE_GRACE));
    let scopes = redis::cmd("ZRANGEBYSCORE")
        .arg(&key)
        .arg(forgotten)
        .arg("+inf")
        .arg("LIMIT")
        .arg(offset)
        .arg(limit)
        .clone();
    let reply = store.round_trip(&[scopes]).await?;
    store.parse(reply.into_iter().next().unwrap_or(Value::Nil))
}

/// A sweep's `limit` is shared by this many shards at least: each shard gives at most
/// `limit / SHARDS_PER_SWEEP` ends a sweep.
const SHARDS_PER_SWEEP: usize = 4;

/// Where this process's next sweep starts taking (a shard); shared by a store's clones.
#[derive(Clone, Debug)]
pub(super) struct SweepStart(Arc<AtomicUsize>);

impl SweepStart {
    /// At a random shard.
    pub(super) fn new() -> Self {
        SweepStart(Arc::new(AtomicUsize::new(random_shard())))
    }
}

fn random_shard() -> usize {
    RandomState::new().hash_one(std::process::id()) as usize % EVENT_SHARDS
}

pub(super) async fn end_lockouts(
    store: &RedisStore,
    bounds: AccessLog,
    limit: usize,
) -> Result<u64> {
    let now = millis(since_epoch());
    let per_shard = limit.div_ceil(SHARDS_PER_SWEEP).max(1);
    let ranges: Vec<Cmd> = (0..EVENT_SHARDS)
        .map(|shard| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(store.keys.lock_ends_key(shard))
                .arg("-inf")
                .arg(now)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(per_shard)
                .clone()
        })
        .collect();
    let mut read: Vec<Vec<(String, String)>> = Vec::with_capacity(EVENT_SHARDS);
    for reply in store.round_trip(&ranges).await? {
        read.push(store.parse(reply)?);
    }
    // (shard, tag, end as Redis wrote it), shard after shard from the start, within `limit`.
    let start = store.sweep_start.0.load(Ordering::Relaxed);
    let mut next_start = start;
    let mut due: Vec<(usize, String, String)> = Vec::new();
    for shard in (0..EVENT_SHARDS).map(|n| (start + n) % EVENT_SHARDS) {
        let ends = std::mem::take(&mut read[shard]);
        let room = limit - due.len();
        let whole = ends.len() <= room;
        due.extend(
            ends.into_iter()
                .take(room)
                .map(|(tag, end)| (shard, tag, end)),
        );
        if !whole {
            next_start = shard;
            break;
        }
    }
    if due.is_empty() {
        return Ok(0);
    }
    // Each tag's lock (an identity's, or an IP's spraying lock); a tag that is neither has
    // none to wait for.
    let locks: Vec<Option<String>> = due
        .iter()
        .map(|(_, tag, _)| match spraying::of_subject(tag) {
            Some(ip) => Some(store.keys.key(KeyKind::SprayingLock, &ip)),
            None => {
                Identity::from_tag(tag).map(|identity| store.keys.key(KeyKind::Lock, &identity))
            }
        })
        .collect();
    let lock_ttls: Vec<Cmd> = locks
        .iter()
        .flatten()
        .map(|lock| redis::cmd("PTTL").arg(lock).clone())
        .collect();
    let mut ttls = if lock_ttls.is_empty() {
        Vec::new()
    } else {
        store.round_trip(&lock_ttls).await?
    }
    .into_iter();
    let mut requests = Vec::new();
    let mut ended: HashMap<usize, Vec<(String, String)>> = HashMap::new();
    for ((shard, tag, end), lock) in due.into_iter().zip(&locks) {
        let ttl: i64 = match lock {
            Some(_) => store.parse(ttls.next().unwrap_or(Value::Nil))?,
            None => -2,
        };
        if ttl > 0 {
            // Locked again (or longer): its new end, unless a reset took it meanwhile.
            requests.push(
                redis::cmd("ZADD")
                    .arg(store.keys.lock_ends_key(shard))
                    .arg("XX")
                    .arg(now + ttl as u64)
                    .arg(&tag)
                    .clone(),
            );
            requests.extend(register_scope(
                store,
                Duration::from_millis(now + ttl as u64),
            ));
        } else {
            ended.entry(shard).or_default().push((tag, end));
        }
    }
    let takes = ended.len();
    let asked: usize = ended.values().map(Vec::len).sum();
    requests.splice(
        0..0,
        ended
            .into_iter()
            .map(|(shard, pairs)| END_LOCKOUTS.evalsha(&[store.keys.lock_ends_key(shard)], pairs)),
    );
    let replies = store.round_trip(&requests).await?;
    let mut events = Vec::new();
    for reply in replies.into_iter().take(takes) {
        let taken: Vec<String> = store.parse(reply)?;
        events.extend(taken.into_iter().map(Event::expired));
    }
    if events.len() < asked {
        // Another process took some of them: sweep elsewhere than it next time.
        next_start = random_shard();
    }
    store.sweep_start.0.store(next_start, Ordering::Relaxed);
    super::events::append_events(store, &events, bounds).await?;
    Ok(events.len() as u64)
}
