//! Self-service unlock: an operator (or a site, through the admin API) asks for a token for a
//! username, sends it to the user (a link in an email), and whoever holds it may, once and
//! within `devices.unlock_token_ttl`, remove that username's locks and records (not its
//! addresses': an attacker holding the link gains nothing against an IP's lock). Signed with
//! the device tokens' secret for another purpose (see `signed`), so that one never passes for
//! the other; its single use is a key per token in the store, kept until it expires.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::devices::epoch_millis;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::signed;

/// What unlock tokens are signed for (see `signed`).
const PURPOSE: &str = "unlock";

/// Random bytes of a token's ID.
const TOKEN_ID_BYTES: usize = 16;

/// Who an unlock reset is told as done by (an event's `by`).
pub const BY: &str = "unlock token";

/// The claims an unlock token carries.
#[derive(Serialize, Deserialize)]
struct Claims {
    /// The username.
    u: String,
    /// The scope, for a scoped site's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// The token's ID: its single use is kept under it.
    t: String,
    /// Expires, ms since the Unix epoch.
    e: u64,
}

/// A valid unlock token's claims (see `verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    pub username: String,
    pub scope: Option<String>,
    /// 22 characters of `A-Z a-z 0-9 - _`.
    pub id: String,
    /// When it expires, ms since the Unix epoch.
    pub expires: u64,
}

impl Unlock {
    /// How long it is valid after `now`: how long its use must be remembered (at least 1 ms).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        Duration::from_millis(self.expires.saturating_sub(epoch_millis(now)).max(1))
    }
}

/// A token that unlocks `username` in `scope` (`None`: the unscoped records) once, within
/// `ttl` from `now`.
pub fn issue(
    secret: &Secret,
    username: &str,
    scope: Option<&str>,
    ttl: Duration,
    now: SystemTime,
) -> Result<String> {
    let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let claims = Claims {
        u: username.to_string(),
        s: scope.map(String::from),
        t: signed::random_id(TOKEN_ID_BYTES)?,
        e: epoch_millis(now).saturating_add(ttl),
    };
    Ok(signed::sign(secret, PURPOSE, &claims))
}

/// The claims of `token` when this secret signed it as an unlock token and it has not expired
/// at `now`; otherwise an error (bad input) saying which. Whether it was used is the store's
/// to say (`Engine::unlock`).
pub fn verify(secret: &Secret, token: &str, now: SystemTime) -> Result<Unlock> {
    let claims: Claims = signed::verify(secret, PURPOSE, token).ok_or_else(|| {
        Error::invalid(
            "token: not an unlock token of this service (altered, or signed with another secret)",
        )
    })?;
    if epoch_millis(now) >= claims.e {
        return Err(Error::invalid(
            "token: expired (an unlock token is valid for devices.unlock_token_ttl: ask for a \
             new one)",
        ));
    }
    Ok(Unlock {
        username: claims.u,
        scope: claims.s,
        id: claims.t,
        expires: claims.e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_token_names_its_username_and_scope_until_it_expires() {
        let secret = Secret::from("0123456789abcdef");
        let now = SystemTime::now();
        let token = issue(&secret, "alice", Some("site"), HOUR, now).unwrap();
        let unlock = verify(&secret, &token, now).unwrap();
        assert_eq!(
            (unlock.username.as_str(), unlock.scope.as_deref()),
            ("alice", Some("site"))
        );
        assert_eq!(unlock.remaining(now), HOUR);
        let later = verify(&secret, &token, now + HOUR - Duration::from_millis(1)).unwrap();
        assert_eq!(later, unlock);
        let expired = verify(&secret, &token, now + HOUR).unwrap_err();
        assert!(
            expired.to_string().starts_with("token: expired"),
            "{expired}"
        );
        let forged = verify(&Secret::from("fedcba9876543210"), &token, now).unwrap_err();
        assert!(
            forged.to_string().starts_with("token: not an unlock token"),
            "{forged}"
        );
        let device = crate::devices::Devices::new(secret.clone())
            .issue("alice", Some("site"), now)
            .unwrap();
        assert!(
            verify(&secret, &device, now).is_err(),
            "a device token unlocks nothing"
        );
    }
}
