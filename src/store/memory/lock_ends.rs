//! Lock ends: locks told as started, to be told as run out when they end unreset.

use std::time::Instant;

use super::{SpaceId, State, Tag};
use crate::spraying;

impl State {
    /// Schedules the end of the identity's lock at `ends` (the new end of one scheduled
    /// before); as many as `max_identities` in a space, the nearest its end dropped first.
    pub(super) fn schedule_lock_end(&mut self, space: SpaceId, tag: &str, ends: Instant) {
        let space = &mut self.spaces[space];
        let tag = match space.lock_end_of.remove_entry(tag) {
            Some((tag, old_end)) => {
                space.lock_ends.remove(&(old_end, tag.clone()));
                tag
            }
            None => {
                if space.lock_ends.len() >= self.max_identities {
                    if let Some((_, dropped)) = space.lock_ends.pop_first() {
                        space.lock_end_of.remove(&dropped);
                    }
                }
                Tag::from(tag)
            }
        };
        space.lock_end_of.insert(tag.clone(), ends);
        space.lock_ends.insert((ends, tag));
    }

    /// A reset lock is not told as run out.
    pub(super) fn forget_lock_end(&mut self, space: SpaceId, tag: &str) {
        let space = &mut self.spaces[space];
        if let Some((tag, ends)) = space.lock_end_of.remove_entry(tag) {
            space.lock_ends.remove(&(ends, tag));
        }
    }

    /// Takes up to `limit` scheduled lock ends due by `now` whose lock (an identity's, or an
    /// IP's spraying lock) is gone, rescheduling those locked again; answers their subjects.
    pub(super) fn take_lock_ends(
        &mut self,
        space: SpaceId,
        now: Instant,
        limit: usize,
    ) -> Vec<String> {
        let mut taken = Vec::new();
        while taken.len() < limit {
            let Some((ends, tag)) = self.spaces[space].lock_ends.first().cloned() else {
                break;
            };
            if ends > now {
                break;
            }
            let lock_ends = match spraying::of_subject(&tag) {
                Some(ip) => self.spraying_lock_end(space, ip.tag(), now),
                None => self.spaces[space]
                    .records
                    .get(&tag)
                    .and_then(|record| record.lock_ends),
            };
            match lock_ends {
                Some(lock_ends) => self.schedule_lock_end(space, &tag, lock_ends),
                None => {
                    self.forget_lock_end(space, &tag);
                    taken.push(tag.to_string());
                }
            }
        }
        taken
    }
}
