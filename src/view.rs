//! Views of the records for an admin list: sorted, searched, filtered by time and lock, cut to
//! one page by offset (docs/api.md, "Views of the records"). Applied above the store, to the
//! records a bounded read gave, so that every store gets the same views from one code path.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use crate::attempt::Field;
use crate::record::AttemptRecord;

/// How a view sorts its records; ties go by identity tag, so pages stay put between requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest failure first (records without a failure last).
    #[default]
    NewestFailure,
    OldestFailure,
    MostFailures,
    FewestFailures,
}

impl Order {
    pub const NAMES: [(&'static str, Order); 4] = [
        ("-last_failure", Order::NewestFailure),
        ("last_failure", Order::OldestFailure),
        ("-failures", Order::MostFailures),
        ("failures", Order::FewestFailures),
    ];

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, order)| *order)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::NAMES.iter().map(|(known, _)| *known).collect();
                format!("{name:?} is not one of {}", names.join(", "))
            })
    }

    fn compare(self, a: &AttemptRecord, b: &AttemptRecord) -> Ordering {
        let by_key = match self {
            Order::NewestFailure => b.last_failure.cmp(&a.last_failure),
            Order::OldestFailure => a.last_failure.cmp(&b.last_failure),
            Order::MostFailures => b.failures.cmp(&a.failures),
            Order::FewestFailures => a.failures.cmp(&b.failures),
        };
        by_key.then_with(|| a.identity.tag().cmp(b.identity.tag()))
    }
}

/// Case-insensitive text search: plain text, never a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(String);

impl Search {
    /// At most this many characters.
    pub const MAX_CHARS: usize = 255;

    /// `None` for empty text (no search).
    pub fn new(text: &str) -> Result<Option<Self>, String> {
        if text.chars().count() > Self::MAX_CHARS {
            return Err(format!("at most {} characters", Self::MAX_CHARS));
        }
        Ok((!text.is_empty()).then(|| Search(text.to_lowercase())))
    }

    /// Whether any of `fields` holds the text.
    pub fn in_any<'a>(&self, fields: impl IntoIterator<Item = &'a str>) -> bool {
        fields
            .into_iter()
            .any(|field| field.to_lowercase().contains(&self.0))
    }
}

/// An interval of time: at or after `from`, before `to`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
}

impl Period {
    pub fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    pub fn contains(&self, time: SystemTime) -> bool {
        self.from.is_none_or(|from| time >= from) && self.to.is_none_or(|to| time < to)
    }
}

/// What an admin list asks of the records it shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordView {
    pub order: Order,
    pub search: Option<Search>,
    /// Of the latest failure; a record without one is outside any bounded period.
    pub last_failure: Period,
    /// `Some(true)`: locked records only; `Some(false)`: unlocked ones only.
    pub locked: Option<bool>,
    pub offset: usize,
    pub limit: usize,
}

/// One page of a view, and what it was cut from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewed {
    pub records: Vec<AttemptRecord>,
    /// Records matching the view among those read.
    pub total: usize,
    /// Every record the selection holds was read (else `total` and the order are over the
    /// `scanned` ones).
    pub complete: bool,
    pub scanned: usize,
}

impl RecordView {
    pub fn matches(&self, record: &AttemptRecord) -> bool {
        self.locked
            .is_none_or(|locked| record.is_locked() == locked)
            && (self.last_failure.is_open()
                || record
                    .last_failure
                    .is_some_and(|time| self.last_failure.contains(time)))
            && self.search.as_ref().is_none_or(|search| {
                let identity = &record.identity;
                let fields = [Field::Ip, Field::Username, Field::UserAgent]
                    .into_iter()
                    .filter_map(|field| identity.value(field));
                search.in_any(
                    fields.chain(
                        record
                            .user_agent
                            .as_deref()
                            .into_iter()
                            .chain(record.path.as_deref()),
                    ),
                )
            })
    }

    /// The page of `records` (every one read, `complete` when that was all of them) this
    /// view shows.
    pub fn cut(&self, mut records: Vec<AttemptRecord>, complete: bool) -> Viewed {
        let scanned = records.len();
        records.retain(|record| self.matches(record));
        records.sort_by(|a, b| self.order.compare(a, b));
        let total = records.len();
        let records = records
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect();
        Viewed {
            records,
            total,
            complete,
            scanned,
        }
    }
}

/// Parses an RFC 3339 instant with `Z` or a numeric offset (`2026-12-06T05:00:00+01:00`).
pub fn parse_instant(text: &str) -> Result<SystemTime, String> {
    let invalid = || format!("{text:?} is not an RFC 3339 instant (such as 2026-12-06T04:00:00Z)");
    let (local, offset) = match text.char_indices().rev().nth(5) {
        Some((at, sign @ ('+' | '-'))) if text.len() - at == 6 => {
            let (hours, minutes) = text[at + 1..].split_once(':').ok_or_else(invalid)?;
            let hours: u64 = hours.parse().map_err(|_| invalid())?;
            let minutes: u64 = minutes.parse().map_err(|_| invalid())?;
            if hours > 23 || minutes > 59 {
                return Err(invalid());
            }
            let offset = Duration::from_secs(hours * 3600 + minutes * 60);
            (format!("{}Z", &text[..at]), Some((sign, offset)))
        }
        _ => (text.to_string(), None),
    };
    if !local.ends_with(['Z', 'z']) {
        return Err(invalid());
    }
    let local = humantime::parse_rfc3339(&local.replace('z', "Z")).map_err(|_| invalid())?;
    // The instant is the local time minus its offset east of UTC.
    match offset {
        None => Ok(local),
        Some(('+', offset)) => local.checked_sub(offset).ok_or_else(invalid),
        Some((_, offset)) => local.checked_add(offset).ok_or_else(invalid),
    }
}
