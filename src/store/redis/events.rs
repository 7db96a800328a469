//! Events: one stream per events shard, appended with the lock ends they schedule, read in
//! ID order across shards, and claimed by webhook consumer groups.

use std::collections::HashMap;

use redis::Cmd;

use super::{from_millis, millis, since_epoch, RedisStore};
use crate::error::{Error, Result};
use crate::event::{self, Event, EventKind, StoredEvent};
use crate::keys::{Keyspace, EVENT_SHARDS};
use crate::policy::AccessLog;
use crate::store::scripts::{CLAIM_EVENTS, LOG, SCHEDULE_LOCK_ENDS};
use crate::store::{Claim, Claimed};

/// Stream entries as redis-rs reads them: ID, and fields by name.
type StreamEntries = Vec<(String, HashMap<String, String>)>;

/// The events shard of `event`: its IP's access-log shard; 0 for a reset of no one IP.
fn event_shard(event: &Event) -> usize {
    event.ip.map_or(0, Keyspace::event_shard)
}

impl RedisStore {
    /// The events `read` (a range command on one shard's key) answers from every shard, in no
    /// particular order.
    async fn read_events(&self, read: impl Fn(String) -> Cmd) -> Result<Vec<StoredEvent>> {
        let requests: Vec<Cmd> = (0..EVENT_SHARDS)
            .map(|shard| read(self.keys.events_key(shard)))
            .collect();
        let mut events = Vec::new();
        for reply in self.round_trip(&requests).await? {
            events.extend(self.stored_events(self.parse(reply)?)?);
        }
        Ok(events)
    }

    /// Stream entries as events; an error for an entry that is not one.
    fn stored_events(&self, entries: StreamEntries) -> Result<Vec<StoredEvent>> {
        entries
            .into_iter()
            .map(|(id, fields)| {
                let (event, (ms, _)) = Event::from_fields(&fields)
                    .zip(event::id_order(&id))
                    .ok_or_else(|| Error::UnexpectedReply {
                        target: self.target.clone(),
                        detail: format!("event {id:?} is not one lockout writes"),
                    })?;
                Ok(StoredEvent {
                    time: from_millis(ms),
                    id,
                    event,
                })
            })
            .collect()
    }
}

pub(super) async fn append_events(
    store: &RedisStore,
    events: &[Event],
    bounds: AccessLog,
) -> Result<()> {
    let now = since_epoch();
    let oldest_kept = millis(now.saturating_sub(bounds.retention));
    let per_shard = bounds.max_entries.get().div_ceil(EVENT_SHARDS as u64);
    let mut requests: Vec<Cmd> = events
        .iter()
        .map(|event| {
            let shard = event_shard(event);
            let key = store.keys.events_key(shard);
            let mut command =
                LOG.evalsha(&[&key], (oldest_kept, millis(bounds.retention), per_shard));
            for (field, value) in event.fields() {
                command.arg(field).arg(value);
            }
            command
        })
        .collect();
    for event in events {
        if let (EventKind::LockoutStarted, Some(lockout)) = (event.kind, event.lockout) {
            let shard = Keyspace::lock_end_shard(&event.subject);
            let lifetime = millis(lockout + bounds.retention);
            requests.push(SCHEDULE_LOCK_ENDS.evalsha(
                &[store.keys.lock_ends_key(shard)],
                (lifetime, millis(now + lockout), &event.subject),
            ));
        }
    }
    if requests.is_empty() {
        return Ok(());
    }
    store.round_trip(&requests).await?;
    Ok(())
}

pub(super) async fn events(
    store: &RedisStore,
    since: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let start = since.map_or("-".to_string(), |id| format!("({id}"));
    let mut events = store
        .read_events(|key| {
            redis::cmd("XRANGE")
                .arg(key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .clone()
        })
        .await?;
    events.sort_by_key(|stored| event::id_order(&stored.id));
    events.truncate(limit);
    Ok(events)
}

pub(super) async fn claim_events(store: &RedisStore, claim: Claim<'_>) -> Result<Claimed> {
    let start = if claim.first { "$" } else { "0" };
    let per_shard = claim.limit.div_ceil(EVENT_SHARDS).max(1);
    let requests: Vec<Cmd> = (0..EVENT_SHARDS)
        .map(|shard| {
            CLAIM_EVENTS.evalsha(
                &[store.keys.events_key(shard)],
                (
                    claim.group,
                    claim.consumer,
                    per_shard,
                    millis(claim.stale).max(1),
                    start,
                    millis(claim.bounds.retention),
                    if claim.tidy { "1" } else { "0" },
                ),
            )
        })
        .collect();
    let mut claimed = Claimed::default();
    for reply in store.round_trip(&requests).await? {
        let (entries, dropped): (StreamEntries, u64) = store.parse(reply)?;
        claimed.events.extend(store.stored_events(entries)?);
        claimed.dropped += dropped;
    }
    Ok(claimed)
}

pub(super) async fn acknowledge_events(
    store: &RedisStore,
    group: &str,
    events: &[StoredEvent],
) -> Result<()> {
    let mut by_shard: HashMap<usize, Vec<&str>> = HashMap::new();
    for stored in events {
        let shard = event_shard(&stored.event);
        by_shard.entry(shard).or_default().push(&stored.id);
    }
    let requests: Vec<Cmd> = by_shard
        .into_iter()
        .map(|(shard, ids)| {
            redis::cmd("XACK")
                .arg(store.keys.events_key(shard))
                .arg(group)
                .arg(ids)
                .clone()
        })
        .collect();
    if !requests.is_empty() {
        store.round_trip(&requests).await?;
    }
    Ok(())
}

pub(super) async fn recent_events(store: &RedisStore, limit: usize) -> Result<Vec<StoredEvent>> {
    let mut events = store
        .read_events(|key| {
            redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(limit)
                .clone()
        })
        .await?;
    events.sort_by_key(|stored| std::cmp::Reverse(event::id_order(&stored.id)));
    events.truncate(limit);
    Ok(events)
}
