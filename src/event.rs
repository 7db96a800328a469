//! Events: what happened to lockouts (one started, records reset and by whom, a lock ran out),
//! kept in the store for people and systems to follow (`lockout events`, `GET /v1/events`,
//! webhooks). Plain values.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::attempt::Field;
use crate::identity::Identity;
use crate::keys::{Keyspace, EVENT_SHARDS};
use crate::spraying;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An identity's lock was set where none was.
    LockoutStarted,
    /// Records (and their locks) were deleted.
    LockoutReset,
    /// An identity's lock ran out (it was not reset).
    LockoutExpired,
    /// In observe mode, an identity's would-be lock was set where none was: the lockout that
    /// enforcing would have started (it refuses nothing, and its end is not told).
    WouldLockoutStarted,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::LockoutStarted,
        EventKind::LockoutReset,
        EventKind::LockoutExpired,
        EventKind::WouldLockoutStarted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::LockoutStarted => "lockout_started",
            EventKind::LockoutReset => "lockout_reset",
            EventKind::LockoutExpired => "lockout_expired",
            EventKind::WouldLockoutStarted => "would_lockout_started",
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
    /// The identity locked (its tag; an IP locked for spraying: `spraying:ip=10.0.0.1`), or
    /// what a reset selected (`ip=10.0.0.1`, `all`, ...).
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
    /// Why a lockout started: `lockout` (a combination's failures) or `spraying` (the IP named
    /// too many usernames); absent from other events, and from lockouts told before it was.
    pub reason: Option<String>,
}

/// An event as the store keeps it: with its ID (see `EventId`) and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub time: SystemTime,
    pub event: Event,
}

/// An event's ID, `<ms>-<seq>-<shard>`: its entry's ID in its shard's stream (`<ms>-<seq>`,
/// which Redis makes unique within the stream) and the shard (see `Event::shard`), so unique
/// across shards. Ordered by time, then sequence, then shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
    pub shard: usize,
}

impl EventId {
    /// `None` for a text that is not an event ID.
    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.split('-');
        let (Some(ms), Some(seq), Some(shard), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let shard: usize = shard.parse().ok()?;
        (shard < EVENT_SHARDS).then_some(EventId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
            shard,
        })
    }

    /// Its entry's ID in its shard's stream.
    pub fn stream_id(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.ms, self.seq, self.shard)
    }
}

/// Where a reader of the events is: in each shard, the stream ID (`<ms>-<seq>`) of the last
/// event it has seen. Events are read per shard after these, so a reader sees each event once
/// however many shards write in one millisecond, and whatever the order in which they land
/// (one shard's entry may be written after another's later one, on another node's clock).
/// Written as the positions of the `EVENT_SHARDS` shards, comma-separated (`0` for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor([(u64, u64); EVENT_SHARDS]);

impl Default for EventCursor {
    /// Before every event.
    fn default() -> Self {
        EventCursor([(0, 0); EVENT_SHARDS])
    }
}

impl EventCursor {
    /// A cursor as `Display` writes it; or an event ID: after that event, in `EventId`'s
    /// order; or an event ID of before the shard was part of it (`<ms>-<seq>`): after it in every
    /// shard, as such an ID meant. `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text.contains(',') {
            let positions: Vec<(u64, u64)> = text
                .split(',')
                .map(|position| match position {
                    "0" => Some((0, 0)),
                    _ => {
                        let (ms, seq) = position.split_once('-')?;
                        Some((ms.parse().ok()?, seq.parse().ok()?))
                    }
                })
                .collect::<Option<_>>()?;
            return positions.try_into().ok().map(EventCursor);
        }
        if let Some(id) = EventId::parse(text) {
            let mut cursor = EventCursor::default();
            for (shard, position) in cursor.0.iter_mut().enumerate() {
                *position = if shard <= id.shard {
                    (id.ms, id.seq)
                } else {
                    // Just before it: its own (ms, seq) in a later shard comes after it.
                    match (id.ms, id.seq) {
                        (ms, 0) => (ms.saturating_sub(1), if ms == 0 { 0 } else { u64::MAX }),
                        (ms, seq) => (ms, seq - 1),
                    }
                };
            }
            return Some(cursor);
        }
        let (ms, seq) = text.split_once('-')?;
        let position = (ms.parse().ok()?, seq.parse().ok()?);
        Some(EventCursor([position; EVENT_SHARDS]))
    }

    /// The stream ID in `shard` after which the reader has seen nothing.
    pub fn position(&self, shard: usize) -> (u64, u64) {
        self.0[shard]
    }

    /// Whether the event is after the cursor.
    pub fn precedes(&self, id: &EventId) -> bool {
        (id.ms, id.seq) > self.0[id.shard]
    }

    /// The cursor after the reader has seen the event.
    pub fn advance(&mut self, id: &EventId) {
        if self.precedes(id) {
            self.0[id.shard] = (id.ms, id.seq);
        }
    }

    /// The cursor after `events` (IDs this store made; others are ignored).
    pub fn after(mut self, events: &[StoredEvent]) -> Self {
        for stored in events {
            if let Some(id) = EventId::parse(&stored.id) {
                self.advance(&id);
            }
        }
        self
    }
}

impl std::fmt::Display for EventCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (shard, (ms, seq)) in self.0.iter().enumerate() {
            if shard > 0 {
                f.write_str(",")?;
            }
            match (ms, seq) {
                (0, 0) => f.write_str("0")?,
                _ => write!(f, "{ms}-{seq}")?,
            }
        }
        Ok(())
    }
}

impl Event {
    /// Whether the event names the identity whose tag is `tag`: a lockout of it (an IP's: of
    /// its spraying too), or a reset listing it among others (`ip=10.0.0.1 ip=10.0.0.2 and 3
    /// more`).
    pub fn names(&self, tag: &str) -> bool {
        self.subject == tag
            || self.subject.split(' ').any(|word| word == tag)
            || spraying::of_subject(&self.subject).is_some_and(|ip| ip.tag() == tag)
    }

    /// The events shard it is kept in: its IP's (see `Keyspace::event_shard`); 0 for a reset
    /// of no one IP.
    pub fn shard(&self) -> usize {
        self.ip.map_or(0, Keyspace::event_shard)
    }

    /// The end of the lock of the identity whose tag is `subject` (or of an IP's spraying
    /// lock, see `spraying::subject`), run out.
    pub fn expired(subject: String) -> Self {
        let ip = spraying::of_subject(&subject)
            .or_else(|| Identity::from_tag(&subject))
            .and_then(|identity| identity.value(Field::Ip)?.parse().ok());
        Event {
            kind: EventKind::LockoutExpired,
            ip,
            subject,
            lockout: None,
            lockouts: None,
            by: None,
            removed: None,
            reason: None,
        }
    }

    /// What the event says beyond its kind and subject, lengths written by `length`:
    /// `locked out for 30 min (lockout 2)`, `would be locked out (observe mode) for 30 min`, `locked out for 25 min by import (admin token)`,
    /// `3 removed by api (admin)`.
    pub fn detail(&self, length: impl Fn(Duration) -> String) -> String {
        match self.kind {
            EventKind::LockoutStarted | EventKind::WouldLockoutStarted => {
                let verb = match self.kind {
                    EventKind::LockoutStarted => "locked out",
                    _ => "would be locked out (observe mode)",
                };
                let mut detail = format!("{verb} for {}", length(self.lockout.unwrap_or_default()));
                if self.reason.as_deref() == Some("spraying") {
                    detail.push_str(" for password spraying");
                }
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
            ("reason", self.reason.clone()),
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
            reason: fields.get("reason").cloned(),
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
            reason: Some("spraying".into()),
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
    }

    #[test]
    fn ids_and_cursors_parse_and_order_events_per_shard() {
        let id = EventId::parse("1764380000000-3-7").unwrap();
        assert_eq!(id.to_string(), "1764380000000-3-7");
        assert_eq!(id.stream_id(), "1764380000000-3");
        for bad in [
            "1764380000000-3",
            "1764380000000-3-16",
            "yesterday",
            "1-2-3-4",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
        let same_ms = |shard| EventId {
            ms: 5,
            seq: 0,
            shard,
        };
        // After an event ID: the same stream ID in a later shard comes after it.
        let after = EventCursor::parse("5-0-7").unwrap();
        assert!(!after.precedes(&same_ms(3)) && !after.precedes(&same_ms(7)));
        assert!(after.precedes(&same_ms(8)));
        // A cursor round-trips, and moves per shard.
        let mut cursor = EventCursor::default();
        cursor.advance(&same_ms(3));
        let text = cursor.to_string();
        assert_eq!(text, "0,0,0,5-0,0,0,0,0,0,0,0,0,0,0,0,0");
        let parsed = EventCursor::parse(&text).unwrap();
        assert_eq!(parsed, cursor);
        assert!(!parsed.precedes(&same_ms(3)) && parsed.precedes(&same_ms(2)));
        // An ID of before the shard suffix: after it in every shard.
        let old = EventCursor::parse("5-0").unwrap();
        assert!((0..EVENT_SHARDS).all(|shard| !old.precedes(&same_ms(shard))));
        for bad in ["yesterday", "0,0", "a-b,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0"] {
            assert_eq!(EventCursor::parse(bad), None, "{bad}");
        }
    }
}
