//! The keyspaces of the in-process store, and the expiry that each call runs first.
//!
//! A keyspace takes one of the `MAX_SPACES` slots only while it holds state: reads of a
//! keyspace that has none (a check with a new scope) take no slot, and when every slot is
//! taken, the spaces whose state has all expired are dropped to make room. Space IDs are
//! never reused, so that an order entry left behind by a dropped space finds no space rather
//! than another's.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::{Index, IndexMut};
use std::time::Instant;

use tokio::sync::broadcast;

use super::bytes::{self, Accounted};
use super::{Space, SpaceId, State, MAX_SPACES, NOTICE_BACKLOG};
use crate::error::{Error, Result};
use crate::keys::Keyspace;

/// The live spaces, by ID.
#[derive(Default)]
pub(super) struct Spaces(HashMap<SpaceId, Space>);

impl Spaces {
    pub(super) fn get(&self, space: SpaceId) -> Option<&Space> {
        self.0.get(&space)
    }

    pub(super) fn get_mut(&mut self, space: SpaceId) -> Option<&mut Space> {
        self.0.get_mut(&space)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Space> {
        self.0.values()
    }

    /// The live spaces with their IDs.
    pub(super) fn with_ids(&self) -> impl Iterator<Item = (SpaceId, &Space)> {
        self.0.iter().map(|(id, space)| (*id, space))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Space> {
        self.0.values_mut()
    }
}

/// A space the caller resolved under the same lock: it lives.
impl Index<SpaceId> for Spaces {
    type Output = Space;

    fn index(&self, space: SpaceId) -> &Space {
        self.0.get(&space).expect("a live space")
    }
}

impl IndexMut<SpaceId> for Spaces {
    fn index_mut(&mut self, space: SpaceId) -> &mut Space {
        self.0.get_mut(&space).expect("a live space")
    }
}

impl Space {
    pub(super) fn keep_until(&mut self, until: Instant) {
        self.kept_until = self.kept_until.max(Some(until));
    }

    /// Nothing in it that lives at `now`, and no one listening to its resets: dropping it
    /// loses nothing.
    fn is_empty(&self, now: Instant) -> bool {
        self.records.is_empty()
            && self.markers.is_empty()
            && self.lockouts.is_empty()
            && self.stamps.is_empty()
            && self.kept_until.is_none_or(|until| until <= now)
            && self.lock_ends.is_empty()
            && self.notices.receiver_count() == 0
    }
}

impl State {
    /// The space of `keys`, if it holds state.
    pub(super) fn space_of(&self, keys: &Keyspace) -> Option<SpaceId> {
        self.space_ids.get(keys.prefix()).copied()
    }

    /// The space of `keys`, made at its first write; fails when `MAX_SPACES` spaces hold
    /// state.
    pub(super) fn space(&mut self, keys: &Keyspace, now: Instant) -> Result<SpaceId> {
        if let Some(space) = self.space_of(keys) {
            return Ok(space);
        }
        if self.space_ids.len() >= MAX_SPACES {
            self.drop_empty_spaces(now);
        }
        if self.space_ids.len() >= MAX_SPACES {
            return Err(Error::invalid(format!(
                "scope: the in-process store holds the state of at most {MAX_SPACES} scopes at \
                 once, and all of them hold some (use Redis for more sites)"
            )));
        }
        let space = self.next_space;
        self.next_space += 1;
        self.spaces.0.insert(
            space,
            Space {
                keys: keys.clone(),
                records: HashMap::new(),
                markers: HashMap::new(),
                lockouts: HashMap::new(),
                stamps: HashMap::new(),
                log: VecDeque::new(),
                events: VecDeque::new(),
                kept_until: None,
                lock_ends: BTreeSet::new(),
                lock_end_of: HashMap::new(),
                claimed_up_to: HashMap::new(),
                notices: broadcast::channel(NOTICE_BACKLOG).0,
            },
        );
        self.space_ids.insert(keys.prefix().to_string(), space);
        Ok(space)
    }

    /// Drops the spaces that hold nothing living (their log entries and events past
    /// retention go with them).
    fn drop_empty_spaces(&mut self, now: Instant) {
        let (log_entries, held_bytes) = (&mut self.log_entries, &mut self.bytes);
        self.spaces.0.retain(|_, space| {
            let empty = space.is_empty(now);
            if empty {
                *log_entries -= space.log.len() + space.events.len();
                *held_bytes -= space
                    .log
                    .iter()
                    .map(|(_, entry)| entry.bytes())
                    .sum::<usize>()
                    + space
                        .events
                        .iter()
                        .map(|(_, stored)| stored.bytes())
                        .sum::<usize>();
            }
            !empty
        });
        let spaces = &self.spaces;
        self.space_ids
            .retain(|_, space| spaces.get(*space).is_some());
    }

    pub(super) fn expire(&mut self, now: Instant) {
        while let Some((ends, space, tag)) = self.locked.first().cloned() {
            if ends > now {
                break;
            }
            self.locked.pop_first();
            if let Some(record) = self.spaces[space].records.get_mut(&tag) {
                record.lock_ends = None;
                let ends = record.ends.max(now);
                record.ends = ends;
                self.counting.insert((ends, space, tag));
            }
        }
        while let Some((ends, space, tag)) = self.counting.first().cloned() {
            if ends > now {
                break;
            }
            self.counting.pop_first();
            if let Some(record) = self.spaces[space].records.remove(&tag) {
                self.identities -= 1;
                self.bytes -= bytes::record(&tag, &record);
            }
        }
        while let Some((ends, _, _)) = self.marker_ends.front() {
            if *ends > now {
                break;
            }
            let (ends, space, tag) = self.marker_ends.pop_front().expect("a front");
            // A marker replaced by a later one leaves its entry here, perhaps of a space
            // dropped since.
            if let Some(space) = self.spaces.get_mut(space) {
                if space.markers.get(&tag) == Some(&ends) {
                    space.markers.remove(&tag);
                }
            }
        }
        while let Some((ends, space, tag)) = self.lockout_ends.first().cloned() {
            if ends > now {
                break;
            }
            self.lockout_ends.pop_first();
            self.spaces[space].lockouts.remove(&tag);
        }
        self.expire_stamps(now);
    }
}
