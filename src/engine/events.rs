//! The engine's events: lockouts started (or would-be, in observe mode), resets and who made
//! them, appended beside the writes they tell of; and reading them back.

use super::{Engine, LockReason, VIEW_READ_PAGE};
use crate::attempt::Attempt;
use crate::error::Result;
use crate::event::{Event, EventCursor, EventId, EventKind, StoredEvent};
use crate::identity::Identity;
use crate::record::IdentityState;
use crate::spraying;
use crate::store::Store;

impl<S: Store> Engine<S> {
    /// The events after `since`, oldest first, at most `limit` (the cursor after them:
    /// `since.after(&events)`).
    pub async fn events(&self, since: &EventCursor, limit: usize) -> Result<Vec<StoredEvent>> {
        self.store.events(since, limit).await
    }

    /// Up to `limit` of the events after `since` that name `subject` (an identity's tag: a
    /// lockout of it, or a reset listing it), oldest first, from at most `bound` events read;
    /// and the `since` that continues the read, when the limit or the bound stopped it.
    pub async fn events_naming(
        &self,
        subject: &str,
        since: &EventCursor,
        limit: usize,
        bound: usize,
    ) -> Result<(Vec<StoredEvent>, Option<EventCursor>)> {
        let mut cursor = since.clone();
        let (mut named, mut read) = (Vec::new(), 0);
        loop {
            let size = bound.saturating_sub(read).clamp(1, VIEW_READ_PAGE);
            let events = self.store.events(&cursor, size).await?;
            let exhausted = events.len() < size;
            read += events.len();
            for stored in events {
                if let Some(id) = EventId::parse(&stored.id) {
                    cursor.advance(&id);
                }
                if stored.event.names(subject) {
                    named.push(stored);
                    if named.len() == limit {
                        return Ok((named, Some(cursor)));
                    }
                }
            }
            if exhausted {
                return Ok((named, None));
            }
            if read >= bound {
                return Ok((named, Some(cursor)));
            }
        }
    }

    fn tell_events_appended(&self) {
        if let Some(signal) = &self.events_signal {
            signal.send_replace(());
        }
    }

    /// The newest `limit` events, newest first.
    pub async fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        self.store.recent_events(limit).await
    }

    /// Appends an event for each lockout (in observe mode, would-be lockout) this write
    /// started, of its identities and of the IP's `spraying` count (its identity and state).
    /// An event that cannot be written does not undo the login it tells of: it is logged, and
    /// lost.
    pub(super) async fn lockouts_started(
        &self,
        attempt: &Attempt,
        identities: &[Identity],
        states: &[IdentityState],
        spraying: Option<(&Identity, IdentityState)>,
    ) {
        let kind = if self.policy.observe {
            EventKind::WouldLockoutStarted
        } else {
            EventKind::LockoutStarted
        };
        let started = |subject: String, state: &IdentityState, reason: LockReason| Event {
            kind,
            ip: Some(attempt.ip),
            subject,
            lockout: state.lock_remaining,
            lockouts: Some(state.lockouts).filter(|&n| n > 0),
            by: None,
            removed: None,
            reason: Some(reason.name().to_string()),
        };
        let mut events: Vec<Event> = identities
            .iter()
            .zip(states)
            .filter(|(_, state)| state.lock_started)
            .map(|(identity, state)| {
                started(identity.tag().to_string(), state, LockReason::Lockout)
            })
            .collect();
        if let Some((ip, state)) = spraying.filter(|(_, state)| state.lock_started) {
            events.push(started(spraying::subject(ip), &state, LockReason::Spraying));
        }
        self.append_events(&events).await;
    }

    /// Appends a reset's event, when it removed anything.
    pub(super) async fn reset_event(
        &self,
        ip: Option<std::net::IpAddr>,
        subject: impl FnOnce() -> String,
        removed: u64,
        by: &str,
    ) {
        if removed == 0 {
            return;
        }
        let event = Event {
            kind: EventKind::LockoutReset,
            ip,
            subject: subject(),
            lockout: None,
            lockouts: None,
            by: Some(by.to_string()),
            removed: Some(removed),
            reason: None,
        };
        self.append_events(&[event]).await;
    }

    pub(super) async fn append_events(&self, events: &[Event]) {
        let Some(bounds) = self.policy.events else {
            return;
        };
        if events.is_empty() {
            return;
        }
        match self.store.append_events(events, bounds).await {
            Ok(()) => self.tell_events_appended(),
            Err(err) => tracing::warn!(%err, events = events.len(), "events lost"),
        }
    }
}

/// Identities an event names at most; more are counted.
const NAMED_IN_AN_EVENT: usize = 10;

/// The identities' tags, for an event's subject: the first few, and how many more.
pub(super) fn named(identities: &[Identity]) -> String {
    let mut named: Vec<&str> = identities
        .iter()
        .take(NAMED_IN_AN_EVENT)
        .map(Identity::tag)
        .collect();
    let more = identities.len().saturating_sub(NAMED_IN_AN_EVENT);
    let more = format!("and {more} more");
    if identities.len() > NAMED_IN_AN_EVENT {
        named.push(&more);
    }
    named.join(" ")
}
