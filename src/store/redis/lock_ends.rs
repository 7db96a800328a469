//! Lock ends: the `lockout_expired` events of locks that ran out unreset, taken once however
//! many processes ask.

use std::collections::HashMap;

use redis::{Cmd, Value};

use super::{millis, since_epoch, RedisStore};
use crate::error::Result;
use crate::event::Event;
use crate::identity::Identity;
use crate::keys::{KeyKind, EVENT_SHARDS};
use crate::policy::AccessLog;
use crate::store::scripts::END_LOCKOUTS;

pub(super) async fn end_lockouts(
    store: &RedisStore,
    bounds: AccessLog,
    limit: usize,
) -> Result<u64> {
    let now = millis(since_epoch());
    let ranges: Vec<Cmd> = (0..EVENT_SHARDS)
        .map(|shard| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(store.keys.lock_ends_key(shard))
                .arg("-inf")
                .arg(now)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .clone()
        })
        .collect();
    // (shard, tag, end as Redis wrote it)
    let mut due: Vec<(usize, String, String)> = Vec::new();
    for (shard, reply) in store.round_trip(&ranges).await?.into_iter().enumerate() {
        let ends: Vec<(String, String)> = store.parse(reply)?;
        due.extend(ends.into_iter().map(|(tag, end)| (shard, tag, end)));
    }
    due.truncate(limit);
    if due.is_empty() {
        return Ok(0);
    }
    // Each tag's lock; a tag that is no identity's has none to wait for.
    let locks: Vec<Option<String>> = due
        .iter()
        .map(|(_, tag, _)| {
            Identity::from_tag(tag).map(|identity| store.keys.key(KeyKind::Lock, &identity))
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
        } else {
            ended.entry(shard).or_default().push((tag, end));
        }
    }
    let takes = ended.len();
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
    super::events::append_events(store, &events, bounds).await?;
    Ok(events.len() as u64)
}
