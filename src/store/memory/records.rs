//! Attempt records: `fail.lua`'s counting and locking, `import.lua`'s merging, lockout counts,
//! reset markers, and the store-wide order that expiry and eviction follow.

use std::time::{Instant, SystemTime};

use super::{bytes, identity_of, Failure, Record, SpaceId, State, Tag};
use crate::identity::Identity;
use crate::keys::RESET_GUARD;
use crate::record::{AttemptRecord, IdentityState};
use crate::store::{FailureRule, ImportedRecord};

impl State {
    /// The identity's state; clean in a space that holds none (`None`).
    pub(super) fn state_of(
        &self,
        space: Option<SpaceId>,
        tag: &str,
        now: Instant,
    ) -> IdentityState {
        match space.and_then(|space| self.spaces[space].records.get(tag)) {
            Some(record) => IdentityState {
                failures: record.failures,
                lock_remaining: record.lock_ends.map(|ends| ends - now),
                ..IdentityState::CLEAN
            },
            None => IdentityState::CLEAN,
        }
    }

    /// The identity's state with, as its lock, the longer of its lock and its would-be lock
    /// (see `Store::peek_observed`).
    pub(super) fn observed_state_of(
        &self,
        space: Option<SpaceId>,
        tag: &str,
        now: Instant,
    ) -> IdentityState {
        let state = self.state_of(space, tag, now);
        let would_lock = space
            .and_then(|space| self.spaces[space].records.get(tag))
            .and_then(|record| record.would_lock_remaining(now));
        IdentityState {
            lock_remaining: state.lock_remaining.max(would_lock),
            ..state
        }
    }

    /// `fail.lua`: `failure` of `identity` at `now` (`wall` on the wall clock).
    pub(super) fn fail(
        &mut self,
        space: SpaceId,
        identity: &Identity,
        failure: Failure<'_>,
        (now, wall): (Instant, SystemTime),
    ) -> IdentityState {
        let Failure {
            rule,
            count,
            refused,
            user_agent,
            path,
        } = failure;
        let tag = identity.tag();
        if refused && self.spaces[space].markers.contains_key(tag) {
            return IdentityState::CLEAN;
        }
        let (tag, mut record) = match self.unlink(space, tag) {
            Some((tag, mut record)) => {
                record.failures = record.failures.saturating_add(count);
                record.last_failure = wall;
                record.rule = *rule;
                (tag, record)
            }
            None => {
                self.make_room();
                let record = Box::new(Record {
                    rule: *rule,
                    failures: count,
                    first_failure: wall,
                    last_failure: wall,
                    user_agent: None,
                    path: None,
                    written: 0,
                    ends: now,
                    lock_ends: None,
                    would_lock_ends: None,
                });
                (Tag::from(tag), record)
            }
        };
        if let Some(user_agent) = user_agent {
            record.user_agent = Some(user_agent.into());
        }
        if let Some(path) = path {
            record.path = Some(path.into());
        }
        record.ends = now + rule.cooloff;
        let limit = if rule.lock_out_at_failure {
            u64::from(rule.failure_limit)
        } else {
            0
        };
        let (mut lock_started, mut lockouts) = (false, 0);
        if limit > 0 && record.failures >= limit {
            // A lock that has ended is gone (see `expire`), a would-be lock is past: none
            // there starts a lockout.
            lock_started = if rule.observe {
                record.would_lock_remaining(now).is_none()
            } else {
                record.lock_ends.is_none()
            };
            let duration = match rule.repeat {
                None => rule.lockout_duration,
                Some(repeat) => {
                    lockouts = if lock_started {
                        self.count_lockout(space, &tag, now + repeat.memory)
                    } else {
                        let count = self.spaces[space].lockouts.get(&tag).map(|(n, _)| *n);
                        count.unwrap_or(1)
                    };
                    rule.lockout_for(lockouts)
                }
            };
            if rule.observe {
                record.would_lock_ends = Some(now + duration);
            } else {
                record.lock_ends = Some(now + duration);
            }
            record.ends = record.ends.max(now + duration);
        }
        let lock_remaining = if rule.observe {
            record.would_lock_remaining(now)
        } else {
            record.lock_ends.map(|ends| ends - now)
        };
        let state = IdentityState {
            failures: record.failures,
            lock_remaining,
            lock_started,
            lockouts,
        };
        self.link(space, tag.clone(), record);
        self.shed_bytes(space, &tag);
        state
    }

    /// `INCR` and `PEXPIRE` of the identity's lockout count: one more lockout, remembered
    /// until `ends`; answers the count.
    fn count_lockout(&mut self, space: SpaceId, tag: &Tag, ends: Instant) -> u64 {
        let count = match self.spaces[space].lockouts.remove(tag) {
            Some((count, old_end)) => {
                self.lockout_ends.remove(&(old_end, space, tag.clone()));
                count + 1
            }
            None => {
                if self.lockout_ends.len() >= self.max_identities {
                    if let Some((_, space, tag)) = self.lockout_ends.pop_first() {
                        self.spaces[space].lockouts.remove(&tag);
                    }
                }
                1
            }
        };
        self.spaces[space]
            .lockouts
            .insert(tag.clone(), (count, ends));
        self.lockout_ends.insert((ends, space, tag.clone()));
        count
    }

    /// Drops the identity's lockout count; answers whether it had one.
    pub(super) fn forget_lockouts(&mut self, space: SpaceId, tag: &str) -> bool {
        match self.spaces[space].lockouts.remove_entry(tag) {
            Some((tag, (_, ends))) => {
                self.lockout_ends.remove(&(ends, space, tag));
                true
            }
            None => false,
        }
    }

    /// `import.lua`: merges `imported` into its identity's record at `now`, taking the larger
    /// of each (count, first and latest failure, the record's and the lock's end).
    pub(super) fn import(
        &mut self,
        space: SpaceId,
        imported: &ImportedRecord,
        now: Instant,
    ) -> IdentityState {
        let lives = imported
            .expires_in
            .max(imported.locked_for.unwrap_or_default());
        let (tag, mut record) = match self.unlink(space, imported.identity.tag()) {
            Some((tag, mut record)) => {
                record.failures = record.failures.max(imported.failures);
                record.first_failure = record.first_failure.min(imported.first_failure);
                if imported.last_failure >= record.last_failure {
                    record.last_failure = imported.last_failure;
                    if let Some(user_agent) = &imported.user_agent {
                        record.user_agent = Some(user_agent.as_str().into());
                    }
                    if let Some(path) = &imported.path {
                        record.path = Some(path.as_str().into());
                    }
                }
                record.ends = record.ends.max(now + lives);
                (tag, record)
            }
            None => {
                self.make_room();
                let record = Box::new(Record {
                    rule: counted_elsewhere(imported),
                    failures: imported.failures,
                    first_failure: imported.first_failure,
                    last_failure: imported.last_failure,
                    user_agent: imported.user_agent.as_deref().map(Into::into),
                    path: imported.path.as_deref().map(Into::into),
                    written: 0,
                    ends: now + lives,
                    lock_ends: None,
                    would_lock_ends: None,
                });
                (Tag::from(imported.identity.tag()), record)
            }
        };
        let lock_started = imported.locked_for.is_some() && record.lock_ends.is_none();
        if let Some(locked_for) = imported.locked_for {
            let ends = now + locked_for;
            record.lock_ends = Some(record.lock_ends.map_or(ends, |current| current.max(ends)));
        }
        let state = IdentityState {
            failures: record.failures,
            lock_remaining: record.lock_ends.map(|ends| ends - now),
            lock_started,
            lockouts: 0,
        };
        self.link(space, tag.clone(), record);
        self.shed_bytes(space, &tag);
        state
    }

    pub(super) fn mark_reset(&mut self, space: SpaceId, tag: &str, now: Instant) {
        let ends = now + RESET_GUARD;
        let tag = Tag::from(tag);
        self.spaces[space].markers.insert(tag.clone(), ends);
        self.marker_ends.push_back((ends, space, tag));
    }

    pub(super) fn unlink(&mut self, space: SpaceId, tag: &str) -> Option<(Tag, Box<Record>)> {
        let (tag, record) = self.spaces[space].records.remove_entry(tag)?;
        self.identities -= 1;
        self.bytes -= bytes::record(&tag, &record);
        let (locked, place) = record.order(space, &tag);
        if locked {
            self.locked.remove(&place);
        } else {
            self.counting.remove(&place);
        }
        Some((tag, record))
    }

    fn link(&mut self, space: SpaceId, tag: Tag, record: Box<Record>) {
        let (locked, place) = record.order(space, &tag);
        if locked {
            self.locked.insert(place);
        } else {
            self.counting.insert(place);
        }
        self.bytes += bytes::record(&tag, &record);
        self.spaces[space].records.insert(tag, record);
        self.identities += 1;
    }

    /// Room for one more record: the unlocked record nearest its end goes, or else the lock
    /// nearest its end, in whichever keyspace it is.
    fn make_room(&mut self) {
        while self.identities >= self.max_identities {
            let victim = self
                .counting
                .first()
                .or_else(|| self.locked.first())
                .map(|(_, space, tag)| (*space, tag.clone()));
            match victim {
                Some((space, tag)) => {
                    self.unlink(space, &tag);
                }
                None => break,
            }
        }
    }

    /// Within `max_bytes` after `tag`'s record (in `space`) came or grew: the oldest log entries
    /// and events of any keyspace go first, then other records in the order of `make_room`.
    fn shed_bytes(&mut self, space: SpaceId, tag: &Tag) {
        while self.bytes > self.max_bytes {
            if self.drop_oldest_entry() {
                continue;
            }
            let victim = self
                .counting
                .iter()
                .chain(&self.locked)
                .find(|(_, other, other_tag)| *other != space || other_tag != tag)
                .map(|(_, other, other_tag)| (*other, other_tag.clone()));
            match victim {
                Some((other, other_tag)) => {
                    self.unlink(other, &other_tag);
                }
                None => break,
            }
        }
    }

    /// The record of `tag` as listed: its counts, and an IP's spraying; `None` without either.
    pub(super) fn record(&self, space: SpaceId, tag: &str, now: Instant) -> Option<AttemptRecord> {
        let spraying = self.spraying_record(space, tag, now);
        let lockouts = self.spaces[space]
            .lockouts
            .get(tag)
            .map_or(0, |(count, _)| *count);
        let Some(record) = self.spaces[space].records.get(tag) else {
            return spraying.map(|spraying| AttemptRecord {
                identity: identity_of(tag),
                failures: 0,
                first_failure: None,
                last_failure: None,
                user_agent: None,
                path: None,
                lock_remaining: None,
                would_lock_remaining: None,
                lockouts,
                spraying: Some(spraying),
            });
        };
        Some(AttemptRecord {
            identity: identity_of(tag),
            failures: record.failures,
            first_failure: Some(record.first_failure),
            last_failure: Some(record.last_failure),
            user_agent: record.user_agent.as_deref().map(String::from),
            path: record.path.as_deref().map(String::from),
            lock_remaining: record.lock_ends.map(|ends| ends - now),
            would_lock_remaining: record.would_lock_remaining(now),
            lockouts,
            spraying,
        })
    }
}

/// The rule of an imported record until its next failure brings one: counting only, for as
/// long as the import keeps it. (Only leftovers read a record's rule, and an import, an admin
/// call, never goes to the store that covers an outage.)
fn counted_elsewhere(imported: &ImportedRecord) -> FailureRule {
    let lives = imported.expires_in;
    FailureRule {
        cooloff: lives,
        lockout_duration: imported.locked_for.unwrap_or(lives),
        failure_limit: u32::MAX,
        lock_out_at_failure: false,
        repeat: None,
        observe: false,
    }
}
