//! Webhooks as configured (`[[webhooks]]`): where events are POSTed, which kinds, and the
//! signature that lets a receiver know a POST came from this lockout and was not replayed.
//! Delivery itself is the service's (`server::webhooks`).
//!
//! The signature (as Stripe's): header `Lockout-Signature: t=<unix seconds>,v1=<hex>`, where
//! `<hex>` is HMAC-SHA256 with the webhook's secret over `<t>.<body>`; a receiver recomputes it
//! over the raw body, compares in constant time, and refuses a `t` far from its clock.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::event::EventKind;
use crate::secret::Secret;

/// The signature's header.
pub const SIGNATURE_HEADER: &str = "Lockout-Signature";
/// The event's ID (its place in the events stream): the same on every retry, for receivers
/// to drop a delivery they already had.
pub const EVENT_ID_HEADER: &str = "Lockout-Event-Id";
/// The event's kind (`lockout_started`, ...).
pub const EVENT_KIND_HEADER: &str = "Lockout-Event";

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// One webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Names it in metrics, logs and its Redis consumer group (`webhook:<name>`): the URL's host
    /// unless given.
    pub name: String,
    pub url: reqwest::Url,
    pub secret: Secret,
    /// The kinds of event it receives.
    pub events: Vec<EventKind>,
}

impl Webhook {
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.contains(&kind)
    }

    /// The Redis consumer group of its deliverers.
    pub fn group(&self) -> String {
        format!("webhook:{}", self.name)
    }
}

/// The URL without what may be a secret (user info, query): a Slack or chat webhook's URL
/// carries its token.
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field(
                "url",
                &format!(
                    "{}://{}{}",
                    self.url.scheme(),
                    self.url.host_str().unwrap_or(""),
                    self.url.path()
                ),
            )
            .field("secret", &self.secret)
            .field("events", &self.events)
            .finish()
    }
}

/// The `Lockout-Signature` value of `body` sent at `timestamp` (seconds since the Unix epoch).
pub fn signature(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_the_timestamp_and_body() {
        // As a receiver computes it: Python's
        // hmac.new(b"Jefe", b"1.{}", "sha256").hexdigest()
        let secret = Secret::from("Jefe");
        let signed = signature(&secret, 1, b"{}");
        assert_eq!(
            signed,
            "t=1,v1=dc7943cccf20f64327d263db5e2aca27c2b8175e8e6e7ea04f482091bf456b0f"
        );
        assert_ne!(signed, signature(&secret, 2, b"{}"));
        assert_ne!(signed, signature(&secret, 1, b"{ }"));
        assert_ne!(signed, signature(&Secret::from("jefe"), 1, b"{}"));
    }

    #[test]
    fn debug_shows_neither_the_secret_nor_the_query() {
        let webhook = Webhook {
            name: "chat".into(),
            url: "https://user:pass@hooks.example/services/T0?token=abc"
                .parse()
                .unwrap(),
            secret: Secret::from("s3cret-s3cret-s3cret"),
            events: vec![EventKind::LockoutStarted],
        };
        let shown = format!("{webhook:?}");
        for hidden in ["s3cret", "token", "abc", "pass", "user"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
        assert!(
            shown.contains("https://hooks.example/services/T0"),
            "{shown}"
        );
    }
}
