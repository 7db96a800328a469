//! Values with an end, by key, as `SET key value PX ttl` keeps them in Redis: device tokens'
//! revocations (see `devices`) and unlock tokens used (see `unlock`). At most
//! `max_identities` of them in all spaces; past that a new one is refused rather than an old
//! one dropped, since dropping one would make a void or used token valid again.

use std::time::Instant;

use super::{SpaceId, State, Tag};
use crate::error::{Error, Result};

impl State {
    /// The value of `key` in `space`, while it lives.
    pub(super) fn stamp_of(&self, space: Option<SpaceId>, key: &str) -> Option<u64> {
        let (value, _) = self.spaces.get(space?)?.stamps.get(key)?;
        Some(*value)
    }

    /// Sets `key` in `space` to `value` until `ends`, replacing what it held.
    pub(super) fn stamp(
        &mut self,
        space: SpaceId,
        key: &str,
        value: u64,
        ends: Instant,
    ) -> Result<()> {
        let key = Tag::from(key);
        match self.spaces[space].stamps.remove(&key) {
            Some((_, old_end)) => {
                self.stamp_ends.remove(&(old_end, space, key.clone()));
            }
            None if self.stamp_ends.len() >= self.max_identities => {
                return Err(Error::invalid(format!(
                    "the in-process store keeps at most {} device revocations and used unlock \
                     tokens at once (use Redis for more)",
                    self.max_identities
                )))
            }
            None => {}
        }
        self.spaces[space].stamps.insert(key.clone(), (value, ends));
        self.stamp_ends.insert((ends, space, key));
        Ok(())
    }

    /// Sets `key` in `space` to `value` until `ends` unless it holds one (`SET ... NX`);
    /// answers whether it did.
    pub(super) fn stamp_new(
        &mut self,
        space: SpaceId,
        key: &str,
        value: u64,
        ends: Instant,
    ) -> Result<bool> {
        if self.stamp_of(Some(space), key).is_some() {
            return Ok(false);
        }
        self.stamp(space, key, value, ends)?;
        Ok(true)
    }

    /// Drops the values that have ended by `now`.
    pub(super) fn expire_stamps(&mut self, now: Instant) {
        while let Some((ends, space, key)) = self.stamp_ends.first().cloned() {
            if ends > now {
                break;
            }
            self.stamp_ends.pop_first();
            if let Some(space) = self.spaces.get_mut(space) {
                space.stamps.remove(&key);
            }
        }
    }
}
