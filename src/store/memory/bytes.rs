//! The bytes the store accounts for what it holds (`max_bytes`): each record, log entry and
//! event by the real lengths of its strings plus a fixed cost per entry, measured with
//! worst-case inputs (tests/memory_bytes.rs): the entry itself, its box, its place in the map
//! and in the order of ends.

use std::mem::size_of;

use super::{Record, Tag};
use crate::event::StoredEvent;
use crate::record::LogEntry;

/// Per record, besides its strings: the record, its box, the tag's `Arc` header, the map's
/// slot and the order's entry (a B-tree's, with its node's share).
const RECORD_OVERHEAD: usize = 320;

/// What holding one thing costs.
pub(super) trait Accounted {
    fn bytes(&self) -> usize;
}

fn text(value: &Option<impl AsRef<str>>) -> usize {
    value.as_ref().map_or(0, |value| value.as_ref().len())
}

/// A record and its tag.
pub(super) fn record(tag: &Tag, record: &Record) -> usize {
    RECORD_OVERHEAD + tag.len() + text(&record.user_agent) + text(&record.path)
}

impl Accounted for LogEntry {
    fn bytes(&self) -> usize {
        size_of::<(std::time::Instant, LogEntry)>()
            + text(&self.username)
            + text(&self.user_agent)
            + text(&self.path)
    }
}

impl Accounted for StoredEvent {
    fn bytes(&self) -> usize {
        size_of::<(std::time::Instant, StoredEvent)>()
            + self.id.len()
            + self.event.subject.len()
            + text(&self.event.by)
    }
}
