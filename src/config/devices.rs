//! `[devices]` as written, and its validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounded;
use crate::devices::{Devices, DEFAULT_TOKEN_TTL, DEFAULT_UNLOCK_TOKEN_TTL};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::webhook::MIN_SECRET_BYTES;

/// `[devices]` as written: device tokens (and unlock tokens) are on when `secret` is set.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDevices {
    secret: Secret,
    #[serde(with = "humantime_serde")]
    token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    unlock_token_ttl: Duration,
}

impl Default for RawDevices {
    fn default() -> Self {
        RawDevices {
            secret: Secret::default(),
            token_ttl: DEFAULT_TOKEN_TTL,
            unlock_token_ttl: DEFAULT_UNLOCK_TOKEN_TTL,
        }
    }
}

impl RawDevices {
    /// The device tokens' settings, `None` without a secret.
    pub(super) fn validate(self) -> Result<Option<Devices>> {
        bounded("devices.token_ttl", self.token_ttl)?;
        bounded("devices.unlock_token_ttl", self.unlock_token_ttl)?;
        if self.secret.is_empty() {
            return Ok(None);
        }
        if self.secret.expose().len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "devices.secret: must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand \
                 -hex 32`)"
            )));
        }
        Ok(Some(Devices {
            secret: self.secret,
            token_ttl: self.token_ttl,
            unlock_token_ttl: self.unlock_token_ttl,
        }))
    }
}
