//! Events: one stream per events shard, appended with the lock ends they schedule, read per
//! shard from a cursor and merged in ID order (see `EventId`, `EventCursor`), and claimed by
//! webhook consumer groups.

use std::collections::HashMap;

use redis::Cmd;

use super::{from_millis, millis, since_epoch, RedisStore};
use crate::error::{Error, Result};
use crate::event::{Event, EventCursor, EventId, EventKind, StoredEvent};
use crate::keys::{Keyspace, EVENT_SHARDS};
use crate::policy::AccessLog;
use crate::store::scripts::{CLAIM_EVENTS, LOG, SCHEDULE_LOCK_ENDS};
use crate::store::{Claim, Claimed};

/// Stream entries as redis-rs reads them: ID, and fields by name.
type StreamEntries = Vec<(String, HashMap<String, String>)>;

impl RedisStore {
    /// The events `read` (a range command on one shard, given the shard and its key) answers
    /// from every shard, in no particular order.
    async fn read_events(&self, read: impl Fn(usize, String) -> Cmd) -> Result<Vec<StoredEvent>> {
        let requests: Vec<Cmd> = (0..EVENT_SHARDS)
            .map(|shard| read(shard, self.keys.events_key(shard)))
            .collect();
        let mut events = Vec::new();
        for (shard, reply) in self.round_trip(&requests).await?.into_iter().enumerate() {
            events.extend(self.stored_events(shard, self.parse(reply)?)?);
        }
        Ok(events)
    }

    /// Stream entries of `shard` as events (their IDs `<entry ID>-<shard>`, see `EventId`); an
    /// error for an entry that is not one.
    fn stored_events(&self, shard: usize, entries: StreamEntries) -> Result<Vec<StoredEvent>> {
        entries
            .into_iter()
            .map(|(entry, fields)| {
                let id = format!("{entry}-{shard}");
                let (event, parsed) = Event::from_fields(&fields)
                    .zip(EventId::parse(&id))
                    .ok_or_else(|| Error::UnexpectedReply {
                        target: self.target.clone(),
                        detail: format!("event {entry:?} is not one lockout writes"),
                    })?;
                Ok(StoredEvent {
                    time: from_millis(parsed.ms),
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
            let shard = event.shard();
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
    let longest = events
        .iter()
        .filter(|event| event.kind == EventKind::LockoutStarted)
        .filter_map(|event| event.lockout)
        .max();
    if let Some(longest) = longest {
        requests.extend(super::lock_ends::register_scope(store, now + longest));
    }
    if requests.is_empty() {
        return Ok(());
    }
    store.round_trip(&requests).await?;
    Ok(())
}

pub(super) async fn events(
    store: &RedisStore,
    since: &EventCursor,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    // Each shard from its own position: the first `limit` of the merge are, in each shard,
    // the first of its events after the cursor.
    let mut events = store
        .read_events(|shard, key| {
            let (ms, seq) = since.position(shard);
            redis::cmd("XRANGE")
                .arg(key)
                .arg(format!("({ms}-{seq}"))
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .clone()
        })
        .await?;
    events.sort_by_key(|stored| EventId::parse(&stored.id));
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
    for (shard, reply) in store.round_trip(&requests).await?.into_iter().enumerate() {
        let (entries, dropped): (StreamEntries, u64) = store.parse(reply)?;
        claimed.events.extend(store.stored_events(shard, entries)?);
        claimed.dropped += dropped;
    }
    Ok(claimed)
}

pub(super) async fn acknowledge_events(
    store: &RedisStore,
    group: &str,
    events: &[StoredEvent],
) -> Result<()> {
    let mut by_shard: HashMap<usize, Vec<String>> = HashMap::new();
    for id in events
        .iter()
        .filter_map(|stored| EventId::parse(&stored.id))
    {
        by_shard.entry(id.shard).or_default().push(id.stream_id());
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
        .read_events(|_, key| {
            redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(limit)
                .clone()
        })
        .await?;
    events.sort_by_key(|stored| std::cmp::Reverse(EventId::parse(&stored.id)));
    events.truncate(limit);
    Ok(events)
}
