//! `[[webhooks]]` entries as written, and their validation.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::secret::Secret;
use crate::webhook::{Webhook, MIN_SECRET_BYTES};

/// A `[[webhooks]]` entry as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    #[serde(default)]
    name: Option<String>,
    url: String,
    secret: Secret,
    #[serde(default)]
    events: Option<Vec<String>>,
}

impl RawWebhook {
    pub(super) fn validate(self, index: usize) -> Result<Webhook> {
        let key = format!("webhooks[{index}]");
        let invalid = |what: String| Error::Config(format!("{key}.{what}"));
        let url: reqwest::Url = self
            .url
            .parse()
            .map_err(|err| invalid(format!("url: not a URL ({err})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "url: must be an http:// or https:// URL with a host".into(),
            ));
        }
        if self.secret.expose().len() < MIN_SECRET_BYTES {
            return Err(invalid(format!(
                "secret: must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            )));
        }
        let events = match self.events {
            None => EventKind::ALL.to_vec(),
            Some(names) if names.is_empty() => {
                return Err(invalid(
                    "events: empty (leave it out for every kind)".into(),
                ))
            }
            Some(names) => names
                .iter()
                .map(|name| {
                    EventKind::parse(name).ok_or_else(|| {
                        let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                        invalid(format!(
                            "events: {name:?} is no event kind ({})",
                            kinds.join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?,
        };
        let name = match self.name {
            Some(name) => name,
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
            return Err(invalid(format!(
                "name: {name:?} must be 1 to 64 letters, digits, _ . or - (it names the \
                 webhook's metrics and Redis consumer group)"
            )));
        }
        Ok(Webhook {
            name,
            url,
            secret: self.secret,
            events,
        })
    }
}
