//! Device tokens: lock out the attacker, not the user. With `[devices] secret` set, a
//! successful login is answered a token (see `signed`) naming the username, the scope, a new
//! random device ID, when it was issued and when it expires. An attempt that brings a valid one
//! for its username is counted under its own identity (`username=...&device=...`) instead of
//! the username's, so strangers who lock the username out lock out strangers (which locks a
//! device holder still obeys: `Engine`, docs/design.md). Verifying needs no state; revoking
//! (an operator's, or a reset of the username) is a time per username in the store: tokens
//! issued before it are void.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::secret::Secret;
use crate::signed;

/// What device tokens are signed for (see `signed`).
const PURPOSE: &str = "device";

/// Random bytes of a device's ID.
const DEVICE_ID_BYTES: usize = 16;

/// `[devices]` as configured, when its secret is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    /// Signs device tokens, and unlock tokens (see `unlock`).
    pub secret: Secret,
    /// How long a device token is valid: a token older than this now is void, whatever
    /// expiry it carries; and how long a revocation is kept.
    pub token_ttl: Duration,
    /// How long an unlock token is valid.
    pub unlock_token_ttl: Duration,
}

/// `token_ttl` by default: 90 days.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// `unlock_token_ttl` by default: an hour.
pub const DEFAULT_UNLOCK_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The claims a device token carries.
#[derive(Serialize, Deserialize)]
struct Claims {
    /// The username.
    u: String,
    /// The scope, for a scoped login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// The device's ID.
    d: String,
    /// Issued and expires, ms since the Unix epoch.
    i: u64,
    e: u64,
}

/// The device a login attempt's token names, the token's signature, username, scope and age
/// checked (`Devices::verify`); whether its tokens were revoked since is the store's to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    /// When its token was issued, ms since the Unix epoch.
    pub issued: u64,
}

impl Device {
    /// Whether a revocation of its username's devices at `revoked` (ms since the Unix epoch)
    /// voids its token: one issued before that millisecond (a token issued in it, after the
    /// revocation as likely as before, stays valid).
    pub fn revoked_by(&self, revoked: Option<u64>) -> bool {
        revoked.is_some_and(|revoked| self.issued < revoked)
    }
}

impl Devices {
    /// Device tokens signed with `secret`, valid for the default times.
    pub fn new(secret: Secret) -> Self {
        Devices {
            secret,
            token_ttl: DEFAULT_TOKEN_TTL,
            unlock_token_ttl: DEFAULT_UNLOCK_TOKEN_TTL,
        }
    }

    /// A token for a new device of `username` in `scope` (`None`: the unscoped records),
    /// issued at `now`.
    pub fn issue(&self, username: &str, scope: Option<&str>, now: SystemTime) -> Result<String> {
        let issued = epoch_millis(now);
        let claims = Claims {
            u: username.to_string(),
            s: scope.map(String::from),
            d: signed::random_id(DEVICE_ID_BYTES)?,
            i: issued,
            e: issued.saturating_add(millis(self.token_ttl)),
        };
        Ok(signed::sign(&self.secret, PURPOSE, &claims))
    }

    /// The device `token` names, when this service signed it for `username` in `scope` and
    /// at `now` it is neither expired nor older than `token_ttl`; `None` for anything else:
    /// such a token counts as none, never as an error.
    pub fn verify(
        &self,
        token: &str,
        username: &str,
        scope: Option<&str>,
        now: SystemTime,
    ) -> Option<Device> {
        let claims: Claims = signed::verify(&self.secret, PURPOSE, token)?;
        let now = epoch_millis(now);
        let fresh = now < claims.e && now < claims.i.saturating_add(millis(self.token_ttl));
        (fresh && claims.u == username && claims.s.as_deref() == scope).then_some(Device {
            id: claims.d,
            issued: claims.i,
        })
    }
}

/// `time` in ms since the Unix epoch (0 before it).
pub fn epoch_millis(time: SystemTime) -> u64 {
    millis(time.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn devices() -> Devices {
        Devices::new(Secret::from("0123456789abcdef"))
    }

    #[test]
    fn a_token_names_its_username_scope_and_age() {
        let devices = devices();
        let now = SystemTime::now();
        let token = devices.issue("alice", Some("site"), now).unwrap();
        let device = devices.verify(&token, "alice", Some("site"), now).unwrap();
        assert_eq!(device.issued, epoch_millis(now));
        assert_eq!(
            devices.verify(&token, "alice", Some("site"), now + 89 * DAY),
            Some(device.clone())
        );
        assert_eq!(
            devices.verify(&token, "alice", Some("site"), now + 90 * DAY),
            None
        );
        assert_eq!(devices.verify(&token, "bob", Some("site"), now), None);
        assert_eq!(devices.verify(&token, "alice", None, now), None);
        assert_eq!(devices.verify(&token, "alice", Some("other"), now), None);
        let shorter = Devices {
            token_ttl: DAY,
            ..devices.clone()
        };
        assert_eq!(
            shorter.verify(&token, "alice", Some("site"), now + 2 * DAY),
            None,
            "a token older than the configured ttl is void, whatever it carries"
        );
        let other = devices.issue("alice", Some("site"), now).unwrap();
        let other = devices.verify(&other, "alice", Some("site"), now).unwrap();
        assert_ne!(other.id, device.id, "every token names a new device");
    }

    #[test]
    fn a_revocation_voids_the_tokens_issued_before_it() {
        let device = Device {
            id: "d".into(),
            issued: 1000,
        };
        assert!(!device.revoked_by(None));
        assert!(!device.revoked_by(Some(999)));
        assert!(!device.revoked_by(Some(1000)));
        assert!(device.revoked_by(Some(1001)));
    }
}
