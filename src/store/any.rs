//! A store chosen when the process starts: Redis, or the in-process store, behind one type, so
//! that whoever holds an engine need not be generic over its store.

use std::time::{Duration, SystemTime};

use super::memory::MemoryStore;
use super::redis::{RedisOptions, RedisStore};
use super::{
    Claim, Claimed, FailureRule, ImportedRecord, LogAppend, Page, Progress, Refusals, ResetNotice,
    SprayingCount, Store,
};
use crate::attempt::Attempt;
use crate::error::Result;
use crate::event::{Event, EventCursor, StoredEvent};
use crate::identity::Identity;
use crate::keys::Keyspace;
use crate::policy::AccessLog;
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter};
use crate::target::Target;

#[derive(Clone)]
pub enum AnyStore {
    /// Boxed: a Redis store holds its whole connection configuration.
    Redis(Box<RedisStore>),
    Memory(MemoryStore),
}

impl From<RedisStore> for AnyStore {
    fn from(store: RedisStore) -> Self {
        AnyStore::Redis(Box::new(store))
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        AnyStore::Memory(store)
    }
}

/// `$call` on whichever store `$any` holds, named `$store`.
macro_rules! on_the_store {
    ($any:expr, $store:ident => $call:expr) => {
        match $any {
            AnyStore::Redis($store) => $call,
            AnyStore::Memory($store) => $call,
        }
    };
}

impl AnyStore {
    /// The same store on the records of `keys` (a scope's, see `Keyspace::scoped`).
    pub fn with_keys(&self, keys: Keyspace) -> Self {
        match self {
            AnyStore::Redis(store) => store.with_keys(keys).into(),
            AnyStore::Memory(store) => store.with_keys(keys).into(),
        }
    }

    pub fn keys(&self) -> &Keyspace {
        on_the_store!(self, store => store.keys())
    }

    /// The store for bulk admin work: on Redis a connection of its own with `options` (see
    /// `RedisStore::reopen`); the in-process store itself.
    pub async fn reopen(&self, options: RedisOptions) -> Result<Self> {
        Ok(match self {
            AnyStore::Redis(store) => store.reopen(options).await?.into(),
            AnyStore::Memory(store) => store.clone().into(),
        })
    }

    /// Whether the store answers: for health checks.
    pub async fn ping(&self) -> Result<()> {
        match self {
            AnyStore::Redis(store) => store.ping().await,
            AnyStore::Memory(_) => Ok(()),
        }
    }

    /// See `RedisStore::reset_before`. The in-process store, which no other process writes
    /// to, clears the identities.
    pub async fn reset_before(&self, identities: &[Identity], at: SystemTime) -> Result<u64> {
        match self {
            AnyStore::Redis(store) => store.reset_before(identities, at).await,
            AnyStore::Memory(store) => store.clear(identities, false, None).await,
        }
    }

    pub fn is_in_process(&self) -> bool {
        matches!(self, AnyStore::Memory(_))
    }
}

impl Store for AnyStore {
    async fn lock_states(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<Option<Duration>>> {
        on_the_store!(self, store => store.lock_states(identities, spraying).await)
    }

    async fn peek(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<IdentityState>> {
        on_the_store!(self, store => store.peek(identities, spraying).await)
    }

    async fn peek_observed(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<IdentityState>> {
        on_the_store!(self, store => store.peek_observed(identities, spraying).await)
    }

    async fn record_failures(
        &self,
        identities: &[Identity],
        rules: &[FailureRule],
        attempt: &Attempt,
        refused: bool,
        log: Option<LogAppend<'_>>,
        spraying: Option<SprayingCount<'_>>,
    ) -> Result<Vec<IdentityState>> {
        on_the_store!(self, store => {
            store.record_failures(identities, rules, attempt, refused, log, spraying).await
        })
    }

    async fn record_refusals(
        &self,
        refusals: &[Refusals],
        logs: &[LogAppend<'_>],
    ) -> Result<Vec<IdentityState>> {
        on_the_store!(self, store => store.record_refusals(refusals, logs).await)
    }

    async fn watch_resets(&self, on_notice: &(dyn Fn(ResetNotice) + Send + Sync)) -> Result<()> {
        on_the_store!(self, store => store.watch_resets(on_notice).await)
    }

    async fn clear(
        &self,
        identities: &[Identity],
        spraying: bool,
        log: Option<LogAppend<'_>>,
    ) -> Result<u64> {
        on_the_store!(self, store => store.clear(identities, spraying, log).await)
    }

    async fn append_log(&self, log: LogAppend<'_>) -> Result<()> {
        on_the_store!(self, store => store.append_log(log).await)
    }

    async fn import_records(&self, records: &[ImportedRecord]) -> Result<Vec<IdentityState>> {
        on_the_store!(self, store => store.import_records(records).await)
    }

    async fn list(&self, target: &Target) -> Result<Vec<AttemptRecord>> {
        on_the_store!(self, store => store.list(target).await)
    }

    async fn records(&self, identities: &[Identity]) -> Result<Vec<AttemptRecord>> {
        on_the_store!(self, store => store.records(identities).await)
    }

    async fn page(&self, target: &Target, cursor: Option<&str>, size: usize) -> Result<Page> {
        on_the_store!(self, store => store.page(target, cursor, size).await)
    }

    async fn remove(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64> {
        on_the_store!(self, store => store.remove(target, dry_run, progress).await)
    }

    async fn logs(
        &self,
        filter: &LogFilter,
        limit: usize,
        max_age: Option<Duration>,
    ) -> Result<Vec<LogEntry>> {
        on_the_store!(self, store => store.logs(filter, limit, max_age).await)
    }

    async fn trim_logs(&self, age: Duration) -> Result<u64> {
        on_the_store!(self, store => store.trim_logs(age).await)
    }

    async fn append_events(&self, events: &[Event], bounds: AccessLog) -> Result<()> {
        on_the_store!(self, store => store.append_events(events, bounds).await)
    }

    async fn events(&self, since: &EventCursor, limit: usize) -> Result<Vec<StoredEvent>> {
        on_the_store!(self, store => store.events(since, limit).await)
    }

    async fn end_lockouts(&self, bounds: AccessLog, limit: usize) -> Result<u64> {
        on_the_store!(self, store => store.end_lockouts(bounds, limit).await)
    }

    async fn lock_end_scopes(&self, offset: usize, limit: usize) -> Result<Vec<String>> {
        on_the_store!(self, store => store.lock_end_scopes(offset, limit).await)
    }

    async fn claim_events(&self, claim: Claim<'_>) -> Result<Claimed> {
        on_the_store!(self, store => store.claim_events(claim).await)
    }

    async fn acknowledge_events(&self, group: &str, events: &[StoredEvent]) -> Result<()> {
        on_the_store!(self, store => store.acknowledge_events(group, events).await)
    }

    async fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        on_the_store!(self, store => store.recent_events(limit).await)
    }

    async fn devices_revoked(&self, username: &str) -> Result<Option<u64>> {
        on_the_store!(self, store => store.devices_revoked(username).await)
    }

    async fn revoke_devices(&self, usernames: &[String], at: u64, ttl: Duration) -> Result<()> {
        on_the_store!(self, store => store.revoke_devices(usernames, at, ttl).await)
    }

    async fn use_unlock_token(&self, id: &str, ttl: Duration) -> Result<bool> {
        on_the_store!(self, store => store.use_unlock_token(id, ttl).await)
    }
}
