//! The keyspaces of the in-process store, and the expiry that each call runs first.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use tokio::sync::broadcast;

use super::{bytes, Space, SpaceId, State, MAX_SPACES, NOTICE_BACKLOG};
use crate::error::{Error, Result};
use crate::keys::Keyspace;

impl State {
    /// The space of `keys`, made at its first use.
    pub(super) fn space(&mut self, keys: &Keyspace) -> Result<SpaceId> {
        if let Some(&space) = self.space_ids.get(keys.prefix()) {
            return Ok(space);
        }
        if self.spaces.len() >= MAX_SPACES {
            return Err(Error::invalid(format!(
                "scope: the in-process store holds at most {MAX_SPACES} scopes"
            )));
        }
        self.spaces.push(Space {
            keys: keys.clone(),
            records: HashMap::new(),
            markers: HashMap::new(),
            lockouts: HashMap::new(),
            log: VecDeque::new(),
            events: VecDeque::new(),
            lock_ends: BTreeSet::new(),
            lock_end_of: HashMap::new(),
            claimed_up_to: HashMap::new(),
            notices: broadcast::channel(NOTICE_BACKLOG).0,
        });
        let space = self.spaces.len() - 1;
        self.space_ids.insert(keys.prefix().to_string(), space);
        Ok(space)
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
            let markers = &mut self.spaces[space].markers;
            if markers.get(&tag) == Some(&ends) {
                markers.remove(&tag);
            }
        }
        while let Some((ends, space, tag)) = self.lockout_ends.first().cloned() {
            if ends > now {
                break;
            }
            self.lockout_ends.pop_first();
            self.spaces[space].lockouts.remove(&tag);
        }
    }
}
