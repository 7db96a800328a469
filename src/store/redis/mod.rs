//! The Redis store: counters and lock flags as keys with TTLs (layout in `keys`), written by the
//! Lua scripts of `scripts/`, over one multiplexed connection (a server or a cluster, see
//! `connection`) that reconnects by itself.
//!
//! Each login-path method sends all its commands at once: one round-trip time. Scripts run with
//! EVALSHA; commands refused with NOSCRIPT (a restart, a failover, SCRIPT FLUSH, a primary that
//! never saw the script) are run again, alone, after loading the scripts everywhere, so nothing
//! is ever counted twice.
//!
//! Here: the connection, its round trips and the `Store` impl; the work by idea in `logins`
//! (`fail.lua` calls and lock reads), `listing` (scans and records), `resets`, `access_log`,
//! `events`, `lock_ends`, `import` (`import.lua` calls) and `devices` (device tokens'
//! revocations, unlock tokens' single use).

mod access_log;
mod devices;
mod events;
mod import;
mod listing;
mod lock_ends;
mod logins;
mod resets;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, ServerErrorKind, Value};

use super::connection::Connection;
pub use super::endpoint::{RedisEndpoint, RedisTls, Topology};
use super::scripts;
use super::{
    Claim, Claimed, FailureRule, ImportedRecord, LogAppend, Page, Progress, Refusals, ResetNotice,
    SprayingCount, Store,
};
use crate::attempt::Attempt;
use crate::error::{Error, RedisTarget, Result};
use crate::event::{Event, EventCursor, StoredEvent};
use crate::identity::Identity;
use crate::keys::{KeyKind, Keyspace};
use crate::policy::{AccessLog, Policy};
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter};
use crate::target::Target;

/// How long to wait for Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// For each attempt to connect.
    pub connect_timeout: Duration,
    /// For each round trip once connected.
    pub command_timeout: Duration,
    /// How long a reset is remembered (its identities' reset markers live, at least
    /// `RESET_GUARD`): failures that an instance counted alone during an outage before a reset
    /// this recent are dropped when it writes them here (see `Refusals::counted_ago`). The
    /// service sets it to its policy's longest record life (`Policy::longest_record_life`),
    /// beyond which such failures are forgotten anyway.
    pub reset_memory: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(5),
            reset_memory: Policy::default().longest_record_life(),
        }
    }
}

/// A `Store` on a Redis server or a Redis Cluster.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    endpoint: RedisEndpoint,
    options: RedisOptions,
    keys: Keyspace,
    target: RedisTarget,
    sweep_start: lock_ends::SweepStart,
}

impl RedisStore {
    /// Connects and loads the scripts; fails within about two connect timeouts when Redis
    /// cannot be reached. For commands that need Redis now (the CLI).
    pub async fn connect(
        endpoint: &RedisEndpoint,
        keys: Keyspace,
        options: RedisOptions,
    ) -> Result<Self> {
        let store = Self::open(endpoint, keys, options).await?;
        // Loaded now, the first login does not pay for a NOSCRIPT round trip.
        store.load_scripts().await?;
        Ok(store)
    }

    /// A store that reconnects by itself after any failure: for a service that must start,
    /// and keep answering, while Redis is away. A server is connected on first use; a cluster
    /// needs one seed node to answer now.
    pub async fn open(
        endpoint: &RedisEndpoint,
        keys: Keyspace,
        options: RedisOptions,
    ) -> Result<Self> {
        let target = endpoint.target();
        let connection =
            Connection::open(endpoint, options.connect_timeout, options.command_timeout)
                .await
                .map_err(|source| Error::Store {
                    target: target.clone(),
                    source,
                })?;
        Ok(RedisStore {
            connection,
            endpoint: endpoint.clone(),
            options,
            keys,
            target,
            sweep_start: lock_ends::SweepStart::new(),
        })
    }

    /// Another connection to the same Redis, with other timeouts: bulk admin work (resets and
    /// listings over millions of keys) runs on its own, so that it neither waits behind logins
    /// nor delays them.
    pub async fn reopen(&self, options: RedisOptions) -> Result<Self> {
        Self::open(&self.endpoint, self.keys.clone(), options).await
    }

    /// Resets `identities` as of `at`, a reset that could not reach Redis then (made during an
    /// outage): each one's record, locks and lockout count are deleted unless it failed after
    /// `at` (by the seconds of the failures' clocks), and failures counted before `at` and
    /// written later are dropped (see `Refusals::counted_ago`). Answers how many were deleted.
    pub async fn reset_before(&self, identities: &[Identity], at: SystemTime) -> Result<u64> {
        resets::reset_before(self, identities, at).await
    }

    /// The same Redis connection with another keyspace (a scope's, see `Keyspace::scoped`).
    pub fn with_keys(&self, keys: Keyspace) -> Self {
        RedisStore {
            keys,
            ..self.clone()
        }
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    /// One PING: for health checks.
    pub async fn ping(&self) -> Result<()> {
        self.connection
            .everywhere(&redis::cmd("PING"))
            .await
            .map_err(|err| self.error(err))
    }

    fn error(&self, source: RedisError) -> Error {
        Error::Store {
            target: self.target.clone(),
            source,
        }
    }

    fn parse<T: FromRedisValue>(&self, value: Value) -> Result<T> {
        T::from_redis_value(value).map_err(|err| Error::UnexpectedReply {
            target: self.target.clone(),
            detail: err.to_string(),
        })
    }

    /// The primaries reached, `host:port`: the server, the Sentinels' primary, or every primary
    /// of the cluster.
    pub async fn primaries(&self) -> Result<Vec<String>> {
        self.connection
            .primaries()
            .await
            .map_err(|err| self.error(err))
    }

    /// The version a node reports (`INFO server`; an ACL may deny INFO, which lockout does not
    /// otherwise need).
    pub async fn version(&self) -> Result<String> {
        let info: String = self.parse(
            self.connection
                .query(redis::cmd("INFO").arg("server"))
                .await
                .map_err(|err| self.error(err))?,
        )?;
        info.lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .map(|version| version.trim().to_string())
            .ok_or_else(|| Error::UnexpectedReply {
                target: self.target.clone(),
                detail: "INFO server names no redis_version".into(),
            })
    }

    /// A PUBLISH naming no identity on the reset channel (lock caches ignore it): whether this
    /// user may announce resets.
    pub async fn announce_nothing(&self) -> Result<()> {
        let command = redis::cmd("PUBLISH")
            .arg(self.keys.reset_channel())
            .arg("")
            .clone();
        self.round_trip(&[command]).await.map(drop)
    }

    /// Loads the scripts on the server, or on every primary.
    pub async fn load_scripts(&self) -> Result<()> {
        for script in scripts::all() {
            self.connection
                .everywhere(&script.load())
                .await
                .map_err(|err| self.error(err))?;
        }
        Ok(())
    }

    /// Sends `requests` at once and answers their replies in order; an error reply of any of
    /// them is the error of the whole.
    async fn round_trip(&self, requests: &[Cmd]) -> Result<Vec<Value>> {
        let mut replies = self
            .connection
            .send(requests)
            .await
            .map_err(|err| self.error(err))?;
        let refused: Vec<usize> = (0..replies.len())
            .filter(|&i| matches!(&replies[i], Err(err) if is_noscript(err)))
            .collect();
        if !refused.is_empty() {
            self.load_scripts().await?;
            let retry: Vec<Cmd> = refused.iter().map(|&i| requests[i].clone()).collect();
            let retried = self
                .connection
                .send(&retry)
                .await
                .map_err(|err| self.error(err))?;
            for (i, reply) in refused.into_iter().zip(retried) {
                replies[i] = reply;
            }
        }
        replies
            .into_iter()
            .map(|reply| reply.map_err(|err| self.error(err)))
            .collect()
    }

    fn identity_keys(&self, identity: &Identity) -> [String; 3] {
        [
            self.keys.key(KeyKind::Attempt, identity),
            self.keys.key(KeyKind::Lock, identity),
            self.keys.key(KeyKind::Lockouts, identity),
        ]
    }

    /// One command on one identity's keys (all share its slot).
    fn on_identity(&self, identity: &Identity, command: impl FnOnce([String; 3]) -> Cmd) -> Cmd {
        command(self.identity_keys(identity))
    }

    /// An IP's spraying keys (see `spraying`), in its identity's slot: the set of usernames'
    /// members, the lock flag, the lockout count, the would-be lock flag (observe mode).
    fn spraying_keys(&self, ip: &Identity) -> [String; 4] {
        [
            self.keys.key(KeyKind::Spraying, ip),
            self.keys.key(KeyKind::SprayingLock, ip),
            self.keys.key(KeyKind::SprayingLockouts, ip),
            self.keys.key(KeyKind::SprayingWouldLock, ip),
        ]
    }
}

impl Store for RedisStore {
    async fn lock_states(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<Option<Duration>>> {
        logins::lock_states(self, identities, spraying).await
    }

    async fn peek(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<IdentityState>> {
        logins::peek(self, identities, spraying).await
    }

    async fn peek_observed(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<IdentityState>> {
        logins::peek_observed(self, identities, spraying).await
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
        logins::record_failures(self, identities, rules, attempt, refused, log, spraying).await
    }

    async fn record_refusals(
        &self,
        refusals: &[Refusals],
        logs: &[LogAppend<'_>],
    ) -> Result<Vec<IdentityState>> {
        logins::record_refusals(self, refusals, logs).await
    }

    async fn watch_resets(&self, on_notice: &(dyn Fn(ResetNotice) + Send + Sync)) -> Result<()> {
        resets::watch_resets(self, on_notice).await
    }

    async fn clear(
        &self,
        identities: &[Identity],
        spraying: bool,
        log: Option<LogAppend<'_>>,
    ) -> Result<u64> {
        resets::clear(self, identities, spraying, log).await
    }

    async fn append_log(&self, log: LogAppend<'_>) -> Result<()> {
        logins::append_log(self, log).await
    }

    async fn import_records(&self, records: &[ImportedRecord]) -> Result<Vec<IdentityState>> {
        import::import_records(self, records).await
    }

    async fn list(&self, target: &Target) -> Result<Vec<AttemptRecord>> {
        listing::list(self, target).await
    }

    async fn records(&self, identities: &[Identity]) -> Result<Vec<AttemptRecord>> {
        listing::records(self, identities).await
    }

    async fn page(&self, target: &Target, cursor: Option<&str>, size: usize) -> Result<Page> {
        listing::page(self, target, cursor, size).await
    }

    async fn remove(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64> {
        resets::remove(self, target, dry_run, progress).await
    }

    async fn logs(
        &self,
        filter: &LogFilter,
        limit: usize,
        max_age: Option<Duration>,
    ) -> Result<Vec<LogEntry>> {
        access_log::logs(self, filter, limit, max_age).await
    }

    async fn trim_logs(&self, age: Duration) -> Result<u64> {
        access_log::trim_logs(self, age).await
    }

    async fn append_events(&self, events: &[Event], bounds: AccessLog) -> Result<()> {
        events::append_events(self, events, bounds).await
    }

    async fn events(&self, since: &EventCursor, limit: usize) -> Result<Vec<StoredEvent>> {
        events::events(self, since, limit).await
    }

    async fn end_lockouts(&self, bounds: AccessLog, limit: usize) -> Result<u64> {
        lock_ends::end_lockouts(self, bounds, limit).await
    }

    async fn lock_end_scopes(&self, offset: usize, limit: usize) -> Result<Vec<String>> {
        lock_ends::lock_end_scopes(self, offset, limit).await
    }

    async fn claim_events(&self, claim: Claim<'_>) -> Result<Claimed> {
        events::claim_events(self, claim).await
    }

    async fn acknowledge_events(&self, group: &str, events: &[StoredEvent]) -> Result<()> {
        events::acknowledge_events(self, group, events).await
    }

    async fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        events::recent_events(self, limit).await
    }

    async fn devices_revoked(&self, username: &str) -> Result<Option<u64>> {
        devices::devices_revoked(self, username).await
    }

    async fn revoke_devices(&self, usernames: &[String], at: u64, ttl: Duration) -> Result<()> {
        devices::revoke_devices(self, usernames, at, ttl).await
    }

    async fn use_unlock_token(&self, id: &str, ttl: Duration) -> Result<bool> {
        devices::use_unlock_token(self, id, ttl).await
    }
}

fn is_noscript(err: &RedisError) -> bool {
    err.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// A PTTL-style answer (ms, or negative when absent) as a remaining time.
fn remaining(ms: i64) -> Option<Duration> {
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// Now, on this machine's clock, as a duration since the Unix epoch.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
