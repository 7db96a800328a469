//! Where the operator commands (`list`, `reset`, `logs`, `reset-logs`, `events`, `devices
//! revoke`, the `axes_*` aliases)
//! find the records: Redis, through the engine, or a running service, through its admin API
//! (`--server`). Both give the same records, so the commands print the same.

use std::time::Duration;

use crate::engine::Engine;
use crate::error::Result;
use crate::event::{EventCursor, StoredEvent};
use crate::record::{AttemptRecord, LogEntry, LogFilter};
use crate::store::{Progress, Store};
use crate::target::Target;

pub(super) trait Records {
    /// The records `target` selects (only locked ones with `locked_only`).
    async fn list(&self, target: &Target, locked_only: bool) -> Result<Vec<AttemptRecord>>;

    /// Deletes (or with `dry_run` counts) the records `target` selects.
    async fn reset(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64>;

    /// Up to `limit` access-log entries, newest first.
    async fn logs(&self, filter: &LogFilter, limit: usize) -> Result<Vec<LogEntry>>;

    /// Deletes access-log entries at least `age` old.
    async fn reset_logs(&self, age: Duration) -> Result<u64>;

    /// Up to `limit` events after `since`, oldest first.
    async fn events(&self, since: &EventCursor, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Voids the device tokens of `usernames` issued until now.
    async fn revoke_devices(&self, usernames: &[String]) -> Result<()>;
}

impl<S: Store> Records for Engine<S> {
    async fn list(&self, target: &Target, locked_only: bool) -> Result<Vec<AttemptRecord>> {
        Engine::list(self, target, locked_only).await
    }

    async fn reset(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64> {
        Engine::reset(self, target, dry_run, progress, "cli").await
    }

    async fn logs(&self, filter: &LogFilter, limit: usize) -> Result<Vec<LogEntry>> {
        Engine::logs(self, filter, limit).await
    }

    async fn reset_logs(&self, age: Duration) -> Result<u64> {
        Engine::reset_logs(self, age).await
    }

    async fn events(&self, since: &EventCursor, limit: usize) -> Result<Vec<StoredEvent>> {
        Engine::events(self, since, limit).await
    }

    async fn revoke_devices(&self, usernames: &[String]) -> Result<()> {
        Engine::revoke_devices(self, usernames).await
    }
}
