//! Redeeming an unlock token (see `crate::unlock`): once, the username's records and locks go.

use std::time::SystemTime;

use super::Engine;
use crate::error::Result;
use crate::store::Store;
use crate::target::Target;
use crate::unlock::{Unlock, BY};

impl<S: Store> Engine<S> {
    /// Redeems `unlock`, a valid unlock token's claims: marks it used, then removes every
    /// record with its username (the username's, with an IP, with a user agent, its devices';
    /// not its IPs' own), told as a reset by `unlock token`. Device tokens stay valid. `None`,
    /// with nothing removed, when the token was used before.
    pub async fn unlock(&self, unlock: &Unlock) -> Result<Option<u64>> {
        let ttl = unlock.remaining(SystemTime::now());
        if !self.store.use_unlock_token(&unlock.id, ttl).await? {
            return Ok(None);
        }
        let target = Target::Usernames(vec![unlock.username.clone()]);
        let removed = self
            .remove_selected(&target, false, &mut |_| {}, BY)
            .await?;
        Ok(Some(removed))
    }
}
