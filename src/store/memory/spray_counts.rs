//! IPs' password spraying (see `spraying`): `fail.lua`'s spraying count rule for rule, its
//! set, lock, lockout count and would-be lock held in one entry per IP whose parts end apart,
//! as the four keys do in Redis. At most `max_identities` entries in all spaces (bounded by count, as
//! lockout counts are: each holds at most the limit's 8-byte members); the one whose last part
//! ends nearest goes first.

use std::time::{Duration, Instant};

use super::{SpaceId, State, Tag};
use crate::record::{IdentityState, SprayingRecord};
use crate::store::SprayingCount;

/// One IP's spraying count. Each part is gone at its end (see `Ends`).
pub(super) struct Spraying {
    /// The usernames' members, at most the limit: Redis' set.
    members: Vec<i64>,
    /// When the set ends: the window from its first username, or its lock's end if later.
    ends: Instant,
    lock_ends: Option<Instant>,
    /// When the would-be lock observe mode set ends (see `FailureRule::observe`).
    would_lock_ends: Option<Instant>,
    /// Spraying lockouts started (repeat offenders), and when the count ends.
    lockouts: Option<(u64, Instant)>,
}

impl Spraying {
    /// When the last of its parts ends: its place in the order of ends.
    fn last_end(&self) -> Instant {
        let lockouts = self.lockouts.map(|(_, ends)| ends);
        self.lock_ends
            .max(self.would_lock_ends)
            .max(lockouts)
            .map_or(self.ends, |end| end.max(self.ends))
    }

    fn members(&self, now: Instant) -> &[i64] {
        if self.ends > now {
            &self.members
        } else {
            &[]
        }
    }

    fn lock_remaining(&self, now: Instant) -> Option<Duration> {
        remaining(self.lock_ends, now)
    }

    fn would_lock_remaining(&self, now: Instant) -> Option<Duration> {
        remaining(self.would_lock_ends, now)
    }

    fn lockouts(&self, now: Instant) -> Option<u64> {
        self.lockouts
            .filter(|&(_, ends)| ends > now)
            .map(|(count, _)| count)
    }
}

impl State {
    /// The IP's distinct usernames and spraying lock (a clean state without any).
    pub(super) fn spraying_state(
        &self,
        space: Option<SpaceId>,
        tag: &str,
        now: Instant,
    ) -> IdentityState {
        match space.and_then(|space| self.spaces[space].sprayings.get(tag)) {
            Some(spraying) => IdentityState {
                failures: spraying.members(now).len() as u64,
                lock_remaining: spraying.lock_remaining(now),
                ..IdentityState::CLEAN
            },
            None => IdentityState::CLEAN,
        }
    }

    /// As `spraying_state`, with as its lock the longer of its lock and its would-be lock
    /// (see `Store::peek_observed`).
    pub(super) fn observed_spraying_state(
        &self,
        space: Option<SpaceId>,
        tag: &str,
        now: Instant,
    ) -> IdentityState {
        let state = self.spraying_state(space, tag, now);
        let would_lock = space
            .and_then(|space| self.spraying_of(space, tag))
            .and_then(|spraying| spraying.would_lock_remaining(now));
        IdentityState {
            lock_remaining: state.lock_remaining.max(would_lock),
            ..state
        }
    }

    /// The IP's spraying as its record shows it, if it has any count or lock.
    pub(super) fn spraying_record(
        &self,
        space: SpaceId,
        tag: &str,
        now: Instant,
    ) -> Option<SprayingRecord> {
        let spraying = self.spraying_of(space, tag)?;
        let record = SprayingRecord {
            usernames: spraying.members(now).len() as u64,
            lock_remaining: spraying.lock_remaining(now),
            would_lock_remaining: spraying.would_lock_remaining(now),
            lockouts: spraying.lockouts(now).unwrap_or(0),
        };
        let any = record.usernames > 0
            || record.lock_remaining.is_some()
            || record.would_lock_remaining.is_some();
        any.then_some(record)
    }

    fn spraying_of(&self, space: SpaceId, tag: &str) -> Option<&Spraying> {
        self.spaces[space].sprayings.get(tag)
    }

    /// `fail.lua`'s spraying part: `count`'s member joins its IP's set while the set holds
    /// fewer than the limit (a new set lives the window); at the limit the IP's spraying lock
    /// is set as an identity's at its limit (in observe mode, the would-be lock), and the set
    /// lives as long as the lock.
    pub(super) fn spray(
        &mut self,
        space: SpaceId,
        count: SprayingCount<'_>,
        refused: bool,
        now: Instant,
    ) -> IdentityState {
        let tag = count.ip.tag();
        if refused && self.spaces[space].markers.contains_key(tag) {
            return IdentityState::CLEAN;
        }
        let (tag, mut spraying) = self.unlink_spraying(space, tag).unwrap_or_else(|| {
            let spraying = Spraying {
                members: Vec::new(),
                ends: now,
                lock_ends: None,
                would_lock_ends: None,
                lockouts: None,
            };
            (Tag::from(tag), spraying)
        });
        if spraying.ends <= now {
            spraying.members.clear();
        }
        spraying.lock_ends = spraying.lock_ends.filter(|&ends| ends > now);
        spraying.would_lock_ends = spraying.would_lock_ends.filter(|&ends| ends > now);
        spraying.lockouts = spraying.lockouts.filter(|&(_, ends)| ends > now);
        let rule = count.rule;
        let limit = rule.failure_limit as usize;
        if let Some(member) = count.member {
            if spraying.members.len() < limit && !spraying.members.contains(&member) {
                spraying.members.reserve_exact(limit);
                spraying.members.push(member);
                if spraying.members.len() == 1 {
                    spraying.ends = now + rule.cooloff;
                }
            }
        }
        let (mut lock_started, mut lockouts) = (false, 0);
        let lock_ends = if rule.observe {
            &mut spraying.would_lock_ends
        } else {
            &mut spraying.lock_ends
        };
        if spraying.members.len() >= limit {
            lock_started = lock_ends.is_none();
            let duration = match rule.repeat {
                None => rule.lockout_duration,
                Some(repeat) => {
                    lockouts = if lock_started {
                        let count = spraying.lockouts.map_or(0, |(count, _)| count) + 1;
                        spraying.lockouts = Some((count, now + repeat.memory));
                        count
                    } else {
                        spraying.lockouts.map_or(1, |(count, _)| count)
                    };
                    rule.lockout_for(lockouts)
                }
            };
            *lock_ends = Some(now + duration);
            spraying.ends = spraying.ends.max(now + duration);
        }
        let state = IdentityState {
            failures: spraying.members.len() as u64,
            lock_remaining: if rule.observe {
                spraying.would_lock_remaining(now)
            } else {
                spraying.lock_remaining(now)
            },
            lock_started,
            lockouts,
        };
        // An attempt without a username from an IP with nothing counted keeps nothing.
        if !spraying.members.is_empty() || spraying.lockouts.is_some() {
            self.link_spraying(space, tag, spraying);
        }
        state
    }

    /// Drops the IP's spraying count, locks and lockout count; answers whether it had any.
    pub(super) fn forget_spraying(&mut self, space: SpaceId, tag: &str) -> bool {
        self.unlink_spraying(space, tag).is_some()
    }

    fn unlink_spraying(&mut self, space: SpaceId, tag: &str) -> Option<(Tag, Spraying)> {
        let (tag, spraying) = self.spaces[space].sprayings.remove_entry(tag)?;
        self.spraying_ends
            .remove(&(spraying.last_end(), space, tag.clone()));
        Some((tag, spraying))
    }

    fn link_spraying(&mut self, space: SpaceId, tag: Tag, spraying: Spraying) {
        self.make_room_for_spraying();
        self.spraying_ends
            .insert((spraying.last_end(), space, tag.clone()));
        self.spaces[space].sprayings.insert(tag, spraying);
    }

    /// Room for one more IP's count: the one nearest its end goes, in whichever space.
    fn make_room_for_spraying(&mut self) {
        while self.spraying_ends.len() >= self.max_identities {
            let Some((_, space, tag)) = self.spraying_ends.pop_first() else {
                break;
            };
            self.spaces[space].sprayings.remove(&tag);
        }
    }

    /// Drops the counts whose every part has ended by `now`.
    pub(super) fn expire_sprayings(&mut self, now: Instant) {
        while let Some((ends, space, tag)) = self.spraying_ends.first().cloned() {
            if ends > now {
                break;
            }
            self.spraying_ends.pop_first();
            self.spaces[space].sprayings.remove(&tag);
        }
    }

    /// The end of the IP's spraying lock, if it is locked at `now` (see `lock_ends`).
    pub(super) fn spraying_lock_end(
        &self,
        space: SpaceId,
        tag: &str,
        now: Instant,
    ) -> Option<Instant> {
        self.spraying_of(space, tag)?
            .lock_ends
            .filter(|&ends| ends > now)
    }
}

/// What is left of a part that ends at `ends`, if it has not ended by `now`.
fn remaining(ends: Option<Instant>, now: Instant) -> Option<Duration> {
    ends.filter(|&ends| ends > now).map(|ends| ends - now)
}
