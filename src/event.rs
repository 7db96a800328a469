//! Events: what happened to lockouts (one started, records reset and by whom, a lock ran out),
//! kept in the store for people and systems to follow (`lockout events`, `GET /v1/events`,
//! webhooks). Plain values.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::attempt::Field;
use crate::identity::Identity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An identity's lock was set where none was.
    LockoutStarted,
    /// Records (and their locks) were deleted.
    LockoutReset,
    /// An identity's lock ran out (it was not reset).
    LockoutExpired,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [
        EventKind::LockoutStarted,
        EventKind::LockoutReset,
        EventKind::LockoutExpired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::LockoutStarted => "lockout_started",
            EventKind::LockoutReset => "lockout_reset",
            EventKind::LockoutExpired => "lockout_expired",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// One event, as appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The attempt's IP (a lockout), or the one IP a reset named.
    pub ip: Option<IpAddr>,
    /// The identity locked (its tag), or what a reset selected (`ip=10.0.0.1`, `all`, ...).
    pub subject: String,
    /// A lockout's length.
    pub lockout: Option<Duration>,
    /// A lockout's number within the lockout memory (repeat offenders).
    pub lockouts: Option<u64>,
    /// Who reset: `cli`, `api (admin token)`, `admin page (admin)`, `success`; or who
    /// imported a lockout (`import (admin token)`): one counted elsewhere, in force when
    /// imported, its length the time it had left.
    pub by: Option<String>,
    /// How many records a reset removed.
    pub removed: Option<u64>,
}

/// An event as the store keeps it: with its ID (stream order: `<ms>-<seq>`) and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub time: SystemTime,
    pub event: Event,
}

/// The order of event IDs (`<ms>-<seq>`), as Redis orders stream IDs; `None` for an ID that
/// is not one.
pub fn id_order(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

impl Event {
    /// Whether the event names the identity whose tag is `tag`: a lockout of it, or a reset
    /// listing it among others (`ip=10.0.0.1 ip=10.0.0.2 and 3 more`).
    pub fn names(&self, tag: &str) -> bool {
        self.subject == tag || self.subject.split(' ').any(|word| word == tag)
    }

    /// The end of the lock of the identity whose tag is `subject`, run out.
    pub fn expired(subject: String) -> Self {
        let ip = Identity::from_tag(&subject)
            .and_then(|identity| identity.value(Field::Ip)?.parse().ok());
        Event {
            kind: EventKind::LockoutExpired,
            ip,
            subject,
            lockout: None,
            lockouts: None,
            by: None,
            removed: None,
        }
    }

    /// What the event says beyond its kind and subject, lengths written by `length`:
    /// `locked out for 30 min (lockout 2)`, `locked out for 25 min by import (admin token)`,
    /// `3 removed by api (admin)`.
    pub fn detail(&self, length: impl Fn(Duration) -> String) -> String {
        match self.kind {
            EventKind::LockoutStarted => {
                let mut detail = format!(
                    "locked out for {}",
                    length(self.lockout.unwrap_or_default())
                );
                if let Some(number) = self.lockouts {
                    detail.push_str(&format!(" (lockout {number})"));
                }
                if let Some(by) = &self.by {
                    detail.push_str(&format!(" by {by}"));
                }
                detail
            }
            EventKind::LockoutExpired => "lock ran out".to_string(),
            EventKind::LockoutReset => format!(
                "{} removed by {}",
                self.removed.unwrap_or(0),
                self.by.as_deref().unwrap_or("-")
            ),
        }
    }

    /// The event as field/value pairs (a stream entry's), absent values left out.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("kind", self.kind.name().to_string()),
            ("subject", self.subject.clone()),
        ];
        let optional = [
            ("ip", self.ip.map(|ip| ip.to_string())),
            (
                "lockout_ms",
                self.lockout.map(|d| d.as_millis().to_string()),
            ),
            ("lockouts", self.lockouts.map(|n| n.to_string())),
            ("by", self.by.clone()),
            ("removed", self.removed.map(|n| n.to_string())),
        ];
        fields.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        fields
    }

    /// The event of `fields` (see `fields`); `None` when they are not one.
    pub fn from_fields(fields: &std::collections::HashMap<String, String>) -> Option<Self> {
        // An absent field is `Some(None)`; one that does not parse, `None`.
        fn optional<T: std::str::FromStr>(value: Option<&String>) -> Option<Option<T>> {
            match value {
                None => Some(None),
                Some(value) => value.parse().ok().map(Some),
            }
        }
        let number = |name: &str| optional::<u64>(fields.get(name));
        Some(Event {
            kind: EventKind::parse(fields.get("kind")?)?,
            ip: optional(fields.get("ip"))?,
            subject: fields.get("subject")?.clone(),
            lockout: number("lockout_ms")?.map(Duration::from_millis),
            lockouts: number("lockouts")?,
            by: fields.get("by").cloned(),
            removed: number("removed")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_goes_through_its_fields_unchanged_and_bad_fields_are_no_event() {
        let event = Event {
            kind: EventKind::LockoutStarted,
            ip: Some("203.0.113.9".parse().unwrap()),
            subject: "ip=203.0.113.9".into(),
            lockout: Some(Duration::from_secs(1800)),
            lockouts: Some(2),
            by: None,
            removed: None,
        };
        let fields: std::collections::HashMap<String, String> = event
            .fields()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        assert_eq!(Event::from_fields(&fields), Some(event));
        for (name, bad) in [
            ("kind", "lockout_ended"),
            ("ip", "nowhere"),
            ("lockout_ms", "soon"),
        ] {
            let mut fields = fields.clone();
            fields.insert(name.into(), bad.into());
            assert_eq!(Event::from_fields(&fields), None, "{name}");
        }
        let mut fields = fields;
        fields.remove("subject");
        assert_eq!(Event::from_fields(&fields), None);
        assert_eq!(id_order("1764380000000-3"), Some((1_764_380_000_000, 3)));
        assert_eq!(id_order("yesterday"), None);
    }
}
