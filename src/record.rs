//! What the store answers about identities: their live state, their attempt records (what the
//! admin page and `list` show), and the entries of the access log.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::identity::Identity;
use crate::view::{Period, Search};

/// One identity's failures and lock, as a check or a failure leaves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityState {
    pub failures: u64,
    /// Remaining time of the lock flag; `None` when not locked.
    pub lock_remaining: Option<Duration>,
    /// The write that answered this set a lock where none was: a lockout started.
    pub lock_started: bool,
    /// With repeat offenders, the number of the lockout this write set or renewed; else 0.
    pub lockouts: u64,
}

impl IdentityState {
    /// No failures, no lock.
    pub const CLEAN: IdentityState = IdentityState {
        failures: 0,
        lock_remaining: None,
        lock_started: false,
        lockouts: 0,
    };
}

/// One identity with its counter, metadata and lock (docs/design.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub identity: Identity,
    pub failures: u64,
    pub first_failure: Option<SystemTime>,
    pub last_failure: Option<SystemTime>,
    pub user_agent: Option<String>,
    pub path: Option<String>,
    pub lock_remaining: Option<Duration>,
    /// Remaining time of the would-be lock observe mode set (it refuses nothing); `None`
    /// when there is none.
    pub would_lock_remaining: Option<Duration>,
    /// Lockouts the identity started within the policy's `lockout_memory` (0 without repeat
    /// offenders).
    pub lockouts: u64,
    /// An IP's password spraying (only on the record of an IP alone, `ip=...`, when it has
    /// any): a record may hold it and nothing else.
    pub spraying: Option<SprayingRecord>,
}

impl AttemptRecord {
    /// Locked out, by its own lock or, an IP's, for spraying.
    pub fn is_locked(&self) -> bool {
        self.lock_remaining.is_some() || self.spraying.is_some_and(|s| s.lock_remaining.is_some())
    }
}

/// An IP's password spraying (see `spraying`): the distinct usernames its failures named
/// within the window, its spraying lock, and its spraying lockouts remembered (repeat
/// offenders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SprayingRecord {
    pub usernames: u64,
    pub lock_remaining: Option<Duration>,
    /// Remaining time of the would-be spraying lock observe mode set (it refuses nothing).
    pub would_lock_remaining: Option<Duration>,
    pub lockouts: u64,
}

/// What became of a logged attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A failed password, counted.
    Failure,
    /// Refused because locked out (counted too, unless the policy says otherwise).
    Refused,
    Success,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Failure, Outcome::Refused, Outcome::Success];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
            Outcome::Success => "success",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.name() == name)
    }
}

/// One access-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub time: SystemTime,
    pub ip: IpAddr,
    pub username: Option<String>,
    pub user_agent: Option<String>,
    pub path: Option<String>,
    pub outcome: Outcome,
    /// How many attempts the entry stands for: 1, or more for refusals coalesced by a lock
    /// cache.
    pub count: u64,
}

/// Which access-log entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub ip: Option<IpAddr>,
    pub username: Option<String>,
    /// Any of these; empty: any outcome.
    pub outcomes: Vec<Outcome>,
    /// Text in the IP, username, user agent or path.
    pub search: Option<Search>,
    pub period: Period,
}

impl LogFilter {
    pub fn matches(&self, entry: &LogEntry) -> bool {
        self.ip.is_none_or(|ip| ip == entry.ip)
            && (self.outcomes.is_empty() || self.outcomes.contains(&entry.outcome))
            && self
                .username
                .as_ref()
                .is_none_or(|u| entry.username.as_ref() == Some(u))
            && self.period.contains(entry.time)
            && self.search.as_ref().is_none_or(|search| {
                let ip = entry.ip.to_string();
                let texts = [&entry.username, &entry.user_agent, &entry.path];
                search.in_any(
                    std::iter::once(ip.as_str())
                        .chain(texts.into_iter().filter_map(|text| text.as_deref())),
                )
            })
    }
}
