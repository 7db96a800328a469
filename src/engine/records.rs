//! The engine's operator work on the records: listings, pages and views, one record, imports,
//! resets (each told as an event), and the access log.

use std::collections::HashSet;
use std::time::Duration;

use super::events::named;
use super::{Engine, LockReason, VIEW_READ_PAGE};
use crate::attempt::Field;
use crate::error::Result;
use crate::event::{Event, EventKind};
use crate::identity::Identity;
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter};
use crate::store::{ImportedRecord, Page, Progress, Store};
use crate::target::Target;
use crate::view::{RecordView, Viewed};

impl<S: Store> Engine<S> {
    /// The attempt records `target` selects (only locked ones with `locked_only`).
    pub async fn list(&self, target: &Target, locked_only: bool) -> Result<Vec<AttemptRecord>> {
        let mut records = self.store.list(&self.counted(target)).await?;
        if locked_only {
            records.retain(AttemptRecord::is_locked);
        }
        Ok(records)
    }

    /// One page of the attempt records `target` selects (only locked ones with
    /// `locked_only`), for browsing millions of them; see `Store::page`.
    pub async fn page(
        &self,
        target: &Target,
        locked_only: bool,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<Page> {
        let mut page = self.store.page(&self.counted(target), cursor, size).await?;
        if locked_only {
            page.records.retain(AttemptRecord::is_locked);
        }
        Ok(page)
    }

    /// The page of the records `target` selects that `view` shows, from at most about
    /// `bound` records read (docs/api.md, "Views of the records"): a store keeps no order
    /// over its records, so sorting or searching them reads them.
    pub async fn view(&self, target: &Target, view: &RecordView, bound: usize) -> Result<Viewed> {
        let target = self.counted(target);
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        let mut cursor = None;
        let complete = loop {
            let size = bound.saturating_sub(records.len()).clamp(1, VIEW_READ_PAGE);
            let page = self.store.page(&target, cursor.as_deref(), size).await?;
            // A record that several scan patterns match (Target::Either), or that a scan
            // gives twice, counts once.
            records.extend(
                page.records
                    .into_iter()
                    .filter(|record| seen.insert(record.identity.tag().to_string())),
            );
            match page.next {
                None => break true,
                Some(_) if records.len() >= bound => break false,
                next => cursor = next,
            }
        };
        Ok(view.cut(records, complete))
    }

    /// The record of exactly this identity (its IP as counted), if there is one.
    pub async fn record(&self, identity: &Identity) -> Result<Option<AttemptRecord>> {
        let records = self.store.records(std::slice::from_ref(identity)).await?;
        Ok(records.into_iter().next())
    }

    /// Deletes these identities' records and locks (an IP's, its spraying count and lock too),
    /// a reset `by` someone (see `Event::by`); answers how many had any.
    pub async fn remove(&self, identities: &[Identity], by: &str) -> Result<u64> {
        let removed = self.store.clear(identities, true, None).await?;
        self.reset_event(None, || named(identities), removed, by)
            .await;
        Ok(removed)
    }

    /// Merges records counted elsewhere into the store (see `Store::import_records`), an
    /// import `by` someone (see `Event::by`), and appends a `lockout_started` event for each
    /// lock it set where none was, so that followers learn of it and its end is told as any
    /// other's. Answers each record's state.
    pub async fn import(&self, records: &[ImportedRecord], by: &str) -> Result<Vec<IdentityState>> {
        let states = self.store.import_records(records).await?;
        let events: Vec<Event> = records
            .iter()
            .zip(&states)
            .filter(|(_, state)| state.lock_started)
            .map(|(record, state)| Event {
                kind: EventKind::LockoutStarted,
                ip: record
                    .identity
                    .value(Field::Ip)
                    .and_then(|ip| ip.parse().ok()),
                subject: record.identity.tag().to_string(),
                lockout: state.lock_remaining,
                lockouts: None,
                by: Some(by.to_string()),
                removed: None,
                reason: Some(LockReason::Lockout.name().to_string()),
            })
            .collect();
        self.append_events(&events).await;
        Ok(states)
    }

    /// Deletes the attempt records (and locks) `target` selects, a reset `by` someone;
    /// answers how many records.
    pub async fn reset(
        &self,
        target: &Target,
        dry_run: bool,
        progress: Progress<'_>,
        by: &str,
    ) -> Result<u64> {
        let target = self.counted(target);
        if !dry_run {
            self.revoke_devices_of(target.usernames()).await?;
        }
        self.remove_selected(&target, dry_run, progress, by).await
    }

    /// Deletes the records `target` (its IPs as counted) selects, a reset `by` someone, and
    /// tells it; answers how many records.
    pub(super) async fn remove_selected(
        &self,
        target: &Target,
        dry_run: bool,
        progress: Progress<'_>,
        by: &str,
    ) -> Result<u64> {
        let removed = self.store.remove(target, dry_run, progress).await?;
        if !dry_run {
            self.reset_event(target.one_ip(), || target.describe(), removed, by)
                .await;
        }
        Ok(removed)
    }

    /// Up to `limit` access-log entries, newest first.
    pub async fn logs(&self, filter: &LogFilter, limit: usize) -> Result<Vec<LogEntry>> {
        let max_age = self.policy.access_log.map(|log| log.retention);
        self.store.logs(filter, limit, max_age).await
    }

    /// Deletes access-log entries at least `age` old (`0` removes all); answers how many.
    pub async fn reset_logs(&self, age: Duration) -> Result<u64> {
        self.store.trim_logs(age).await
    }

    /// `target` with its IPs as they are counted (IPv6 per network).
    fn counted(&self, target: &Target) -> Target {
        target.counted(|ip| self.policy.counted_ip(ip))
    }
}
