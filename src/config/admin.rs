//! The admin API's and page's settings.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attempt::Field;
use crate::policy::{Combination, Policy};
use crate::secret::Secret;

/// The admin API's and page's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub path: String,
    pub username: String,
    /// Empty: the admin API and page are disabled.
    pub password: Secret,
    /// Also accepted as `Authorization: Bearer <token>`; empty: no bearer token.
    pub token: Secret,
    /// Wrong admin logins (password or token) from one address after which it is locked out
    /// of the admin API and page.
    pub failure_limit: NonZeroU32,
    /// How long wrong admin logins are remembered, and the admin lockout lasts.
    #[serde(with = "humantime_serde")]
    pub cooloff: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            path: "/dj-ad-admin/".into(),
            username: "admin".into(),
            password: Secret::default(),
            token: Secret::default(),
            failure_limit: NonZeroU32::new(5).expect("non-zero"),
            cooloff: Duration::from_secs(15 * 60),
        }
    }
}

impl AdminConfig {
    /// The policy of admin logins: counted per client address, apart from the logins the
    /// service protects (see `Keyspace::ADMIN_LOGINS`).
    pub fn login_policy(&self) -> Policy {
        Policy {
            failure_limit: self.failure_limit,
            cooloff: self.cooloff,
            lockout_duration: self.cooloff,
            combinations: vec![Combination::new([Field::Ip]).expect("one field")],
            access_log: None,
            ..Policy::default()
        }
    }
}
