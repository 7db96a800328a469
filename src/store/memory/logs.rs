//! The access log and the events: appended oldest last, kept within their bounds.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use super::bytes::Accounted;
use super::{SpaceId, State};
use crate::event::{Event, StoredEvent};
use crate::policy::AccessLog;
use crate::record::LogEntry;
use crate::store::LogAppend;

impl State {
    /// Appends to `space`'s log, then drops its entries past the policy's bounds, and its
    /// oldest while the store holds more than `max_log_entries`.
    pub(super) fn append(
        &mut self,
        space: SpaceId,
        log: &LogAppend<'_>,
        now: Instant,
        wall: SystemTime,
    ) {
        self.spaces[space].keep_until(now + log.bounds.retention);
        let attempt = log.attempt;
        let entries = &mut self.spaces[space].log;
        entries.push_back((
            now,
            LogEntry {
                time: wall,
                ip: attempt.ip,
                username: attempt.username.clone(),
                user_agent: attempt.user_agent.clone(),
                path: attempt.path.clone(),
                outcome: log.outcome,
                count: log.count,
            },
        ));
        self.bytes += entries.back().map_or(0, |(_, entry)| entry.bytes());
        self.log_entries += 1;
        keep_within(
            entries,
            log.bounds,
            now,
            (&mut self.log_entries, self.max_log_entries),
            (&mut self.bytes, self.max_bytes),
        );
    }

    /// Appends `event` to `space`'s events, then drops those past `bounds`, and its oldest
    /// while the store holds more than `max_log_entries` entries and events.
    pub(super) fn append_event(
        &mut self,
        space: SpaceId,
        event: &Event,
        bounds: AccessLog,
        (now, wall): (Instant, SystemTime),
    ) {
        self.spaces[space].keep_until(now + bounds.retention);
        let ms = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        self.last_event = if ms > self.last_event.0 {
            (ms, 0)
        } else {
            (self.last_event.0, self.last_event.1 + 1)
        };
        let (ms, sequence) = self.last_event;
        let events = &mut self.spaces[space].events;
        events.push_back((
            now,
            StoredEvent {
                id: format!("{ms}-{sequence}-{}", event.shard()),
                time: wall,
                event: event.clone(),
            },
        ));
        self.bytes += events.back().map_or(0, |(_, stored)| stored.bytes());
        self.log_entries += 1;
        keep_within(
            events,
            bounds,
            now,
            (&mut self.log_entries, self.max_log_entries),
            (&mut self.bytes, self.max_bytes),
        );
    }
    /// Drops the oldest log entry or event of any keyspace; false when there is none.
    pub(super) fn drop_oldest_entry(&mut self) -> bool {
        let oldest = self
            .spaces
            .with_ids()
            .flat_map(|(id, space)| {
                [
                    space.log.front().map(|(time, _)| (*time, id, false)),
                    space.events.front().map(|(time, _)| (*time, id, true)),
                ]
            })
            .flatten()
            .min();
        let Some((_, id, event)) = oldest else {
            return false;
        };
        let space = &mut self.spaces[id];
        let freed = if event {
            space.events.pop_front().map(|(_, stored)| stored.bytes())
        } else {
            space.log.pop_front().map(|(_, entry)| entry.bytes())
        };
        self.log_entries -= 1;
        self.bytes -= freed.unwrap_or(0);
        true
    }
}

/// Drops the oldest of `entries` (oldest first) while any is past `bounds`' retention, they are
/// more than its size, or the store holds more than its bounds (`held`: the store's count of
/// entries and its bound; `bytes`: the store's bytes and their bound).
fn keep_within<T: Accounted>(
    entries: &mut VecDeque<(Instant, T)>,
    bounds: AccessLog,
    now: Instant,
    (held, bound): (&mut usize, usize),
    (bytes, max_bytes): (&mut usize, usize),
) {
    let oldest_kept = now.checked_sub(bounds.retention);
    let most = usize::try_from(bounds.max_entries.get()).unwrap_or(usize::MAX);
    while let Some((time, _)) = entries.front() {
        let too_old = oldest_kept.is_some_and(|oldest| *time < oldest);
        if !too_old && entries.len() <= most && *held <= bound && *bytes <= max_bytes {
            break;
        }
        if let Some((_, entry)) = entries.pop_front() {
            *bytes -= entry.bytes();
        }
        *held -= 1;
    }
}
