//! What device tokens change in the engine (see `crate::devices`): the attempt with a device is
//! counted under its device's identity in place of the combinations a device holder does not
//! obey, unless its username's tokens were revoked since its token was issued; revocations.

use std::borrow::Cow;
use std::time::SystemTime;

use super::{rule_of, Engine, Formed};
use crate::attempt::{Attempt, Field};
use crate::devices::{epoch_millis, Device};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::policy::{Combination, Policy};
use crate::record::IdentityState;
use crate::store::{FailureRule, Store};

impl<S: Store> Engine<S> {
    /// The attempt's username and device, when the device changes how the attempt is counted
    /// here (the policy has combinations a device holder does not obey).
    pub(super) fn device_of<'a>(&self, attempt: &'a Attempt) -> Option<(&'a str, &'a Device)> {
        self.device.as_ref()?;
        Some((attempt.username.as_deref()?, attempt.device.as_ref()?))
    }

    /// The attempt as it is counted: without its device when its username's device tokens were
    /// revoked since its token was issued (one read, for an attempt with a device only).
    pub(super) async fn counted_attempt<'a>(
        &self,
        attempt: &'a Attempt,
    ) -> Result<Cow<'a, Attempt>> {
        let Some((username, device)) = self.device_of(attempt) else {
            return Ok(Cow::Borrowed(attempt));
        };
        let revoked = self.store.devices_revoked(username).await?;
        Ok(if device.revoked_by(revoked) {
            Cow::Owned(attempt.clone().with_device(None))
        } else {
            Cow::Borrowed(attempt)
        })
    }

    /// The attempt as it is counted (see `counted_attempt`), its identities and their standing
    /// (failure counts too `with_counts`, else locks only), in one round trip: an attempt with
    /// a device reads its revocation at once with `formed`'s standing, and only when revoked
    /// reads again, as the attempt without its device.
    pub(super) async fn standing_of<'a>(
        &self,
        attempt: &'a Attempt,
        formed: Formed,
        with_counts: bool,
    ) -> Result<(Cow<'a, Attempt>, Formed, Vec<IdentityState>)> {
        let Some((username, device)) = self.device_of(attempt) else {
            let states = self.standing(&formed.identities, with_counts).await?;
            return Ok((Cow::Borrowed(attempt), formed, states));
        };
        let (states, revoked) = tokio::try_join!(
            self.standing(&formed.identities, with_counts),
            self.store.devices_revoked(username)
        )?;
        if !device.revoked_by(revoked) {
            return Ok((Cow::Borrowed(attempt), formed, states));
        }
        let plain = attempt.clone().with_device(None);
        let formed = self.identities(&plain);
        let states = self.standing(&formed.identities, with_counts).await?;
        Ok((Cow::Owned(plain), formed, states))
    }

    /// The identities' failures (`with_counts`) and locks, or their locks alone; in observe
    /// mode failures and the longer of each lock and would-be lock (every lock enforcing would
    /// refuse on).
    async fn standing(
        &self,
        identities: &[Identity],
        with_counts: bool,
    ) -> Result<Vec<IdentityState>> {
        if self.policy.observe {
            return self.store.peek_observed(identities).await;
        }
        if with_counts {
            return self.store.peek(identities).await;
        }
        let locks = self.store.lock_states(identities).await?;
        Ok(locks
            .into_iter()
            .map(|lock_remaining| IdentityState {
                lock_remaining,
                ..IdentityState::CLEAN
            })
            .collect())
    }

    /// Voids the device tokens of `usernames` issued until now (an operator's "revoke
    /// devices"); refused when device tokens are off.
    pub async fn revoke_devices(&self, usernames: &[String]) -> Result<()> {
        if self.device_token_ttl.is_none() {
            return Err(Error::invalid(
                "devices: device tokens are off (devices.secret, LOCKOUT_DEVICES_SECRET, is \
                 not set): there are none to revoke",
            ));
        }
        self.revoke_devices_of(usernames).await
    }

    /// With device tokens on, voids the device tokens of `usernames` issued until now.
    pub(super) async fn revoke_devices_of(&self, usernames: &[String]) -> Result<()> {
        match self.device_token_ttl {
            Some(ttl) if !usernames.is_empty() => {
                let now = epoch_millis(SystemTime::now());
                self.store.revoke_devices(usernames, now, ttl).await
            }
            _ => Ok(()),
        }
    }
}

/// Whether a device holder obeys `combination`'s locks: those of its network (with the IP,
/// without the username), which only attempts from that network cause. The others (the
/// username's, with or without the IP, and a user agent's, which anyone may send) can be
/// caused against the holder from anywhere: its device's own identity replaces them.
pub(super) fn obeyed_with_a_device(combination: &Combination) -> bool {
    let fields = combination.fields();
    fields.contains(&Field::Ip) && !fields.contains(&Field::Username)
}

/// The combination and rule of a device holder's own identity (`username` and `device`, under
/// the policy's limits), when `policy` has combinations a device holder does not obey, which
/// that identity replaces.
pub(super) fn device_identity(policy: &Policy) -> Option<(Combination, FailureRule)> {
    if policy.combinations.iter().all(obeyed_with_a_device) {
        return None;
    }
    let combination = Combination::new([Field::Username, Field::Device]).expect("two fields");
    let rule = rule_of(policy, &combination);
    Some((combination, rule))
}
