//! The Redis store: counters and lock flags as keys with TTLs (layout in `keys`), written by the
//! Lua scripts of `scripts/`, over one multiplexed connection that reconnects by itself.
//!
//! Each login-path method sends all its commands as one pipeline: one round trip. Scripts run
//! with EVALSHA; commands refused with NOSCRIPT (a restart, a failover, SCRIPT FLUSH) are run
//! again, alone, after loading the scripts, so nothing is ever counted twice.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, ServerErrorKind, Value};

use super::scripts::{self, FAIL, LOG, TRIM_LOG};
use super::{FailureRule, LogAppend, Progress, Store};
use crate::attempt::{Attempt, Identity};
use crate::error::{Error, RedisTarget, Result};
use crate::keys::{KeyKind, Keyspace};
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter, Outcome};
use crate::target::Target;

/// Keys asked for per SCAN call, and deleted per UNLINK.
const SCAN_BATCH: usize = 1000;
const UNLINK_BATCH: usize = 500;
/// Attempt records fetched per round trip when listing.
const FETCH_BATCH: usize = 500;
/// Access-log entries read per round trip.
const LOG_BATCH: usize = 500;

/// How long to wait for Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// For each attempt to connect.
    pub connect_timeout: Duration,
    /// For each round trip once connected.
    pub command_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(5),
        }
    }
}

/// A `Store` on one Redis server.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    keys: Keyspace,
    target: RedisTarget,
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`) and loads the scripts; fails within
    /// about two connect timeouts when Redis cannot be reached.
    pub async fn connect(url: &str, keys: Keyspace, options: RedisOptions) -> Result<Self> {
        let store = Self::lazy(url, keys, options)?;
        // Loaded now, the first login does not pay for a NOSCRIPT round trip.
        store.round_trip(&load_commands()).await?;
        Ok(store)
    }

    /// A store that connects on first use and reconnects by itself after any failure: for a
    /// service that must start, and keep answering, while Redis is away. Fails only for an
    /// invalid URL.
    pub fn lazy(url: &str, keys: Keyspace, options: RedisOptions) -> Result<Self> {
        let target = RedisTarget::new(url);
        let store_error = |source| Error::Store {
            target: target.clone(),
            source,
        };
        let client = redis::Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(store_error)?;
        Ok(RedisStore {
            connection,
            keys,
            target,
        })
    }

    /// One PING: for health checks.
    pub async fn ping(&self) -> Result<()> {
        self.round_trip(&[redis::cmd("PING")]).await?;
        Ok(())
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
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

    /// Sends `commands` as one pipeline and answers their replies in order; an error reply of
    /// any command is the error of the whole.
    async fn round_trip(&self, commands: &[Cmd]) -> Result<Vec<Value>> {
        let mut results = self.pipeline(commands).await?;
        let refused: Vec<usize> = (0..results.len())
            .filter(|&i| matches!(&results[i], Err(err) if is_noscript(err)))
            .collect();
        if !refused.is_empty() {
            let loads = load_commands();
            let retry: Vec<Cmd> = loads
                .iter()
                .cloned()
                .chain(refused.iter().map(|&i| commands[i].clone()))
                .collect();
            let retried = self.pipeline(&retry).await?;
            for (i, result) in refused
                .into_iter()
                .zip(retried.into_iter().skip(loads.len()))
            {
                results[i] = result;
            }
        }
        results
            .into_iter()
            .map(|result| result.map_err(|err| self.error(err)))
            .collect()
    }

    async fn pipeline(&self, commands: &[Cmd]) -> Result<Vec<RedisResult<Value>>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for command in commands {
            pipe.add_command(command.clone());
        }
        let mut connection = self.connection.clone();
        pipe.query_async(&mut connection)
            .await
            .map_err(|err| self.error(err))
    }

    fn log_command(&self, log: LogAppend<'_>) -> Cmd {
        let attempt = log.attempt;
        let mut args: Vec<String> = vec![
            millis(log.retention).to_string(),
            "ip".into(),
            attempt.ip.to_string(),
            "outcome".into(),
            log.outcome.name().into(),
        ];
        for (field, value) in [
            ("username", &attempt.username),
            ("user_agent", &attempt.user_agent),
            ("path", &attempt.path),
        ] {
            if let Some(value) = value {
                args.extend([field.to_string(), value.clone()]);
            }
        }
        LOG.evalsha(&[self.keys.log_key()], args)
    }

    fn identity_keys(&self, identity: &Identity) -> [String; 2] {
        [
            self.keys.key(KeyKind::Attempt, identity),
            self.keys.key(KeyKind::Lock, identity),
        ]
    }

    fn scan(&self, target: &Target) -> Scan {
        Scan {
            patterns: self.keys.scan_patterns(target),
            cursor: 0,
        }
    }

    /// The next page of keys matching the scan's patterns, as (key, kind, identity); `None`
    /// when every pattern has been walked.
    async fn next_page(
        &self,
        scan: &mut Scan,
        target: &Target,
    ) -> Result<Option<Vec<(String, KeyKind, Identity)>>> {
        let Some(pattern) = scan.patterns.last() else {
            return Ok(None);
        };
        let mut command = redis::cmd("SCAN");
        command
            .arg(scan.cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH);
        let reply = self.round_trip(&[command]).await?.remove(0);
        let (cursor, keys): (u64, Vec<String>) = self.parse(reply)?;
        scan.cursor = cursor;
        if cursor == 0 {
            scan.patterns.pop();
        }
        Ok(Some(
            keys.into_iter()
                .filter_map(|key| {
                    let (kind, identity) = self.keys.parse(&key)?;
                    target.matches(&identity).then_some((key, kind, identity))
                })
                .collect(),
        ))
    }

    async fn fetch_records(&self, identities: &[Identity]) -> Result<Vec<AttemptRecord>> {
        let commands: Vec<Cmd> = identities
            .iter()
            .flat_map(|identity| {
                let [record, lock] = self.identity_keys(identity);
                [
                    redis::cmd("HGETALL").arg(record).clone(),
                    redis::cmd("PTTL").arg(lock).clone(),
                ]
            })
            .collect();
        let mut replies = self.round_trip(&commands).await?.into_iter();
        let mut records = Vec::with_capacity(identities.len());
        for identity in identities {
            let (Some(fields), Some(pttl)) = (replies.next(), replies.next()) else {
                break;
            };
            let mut fields: HashMap<String, String> = self.parse(fields)?;
            let lock_remaining = remaining(self.parse(pttl)?);
            if fields.is_empty() && lock_remaining.is_none() {
                continue; // expired between the scan and now
            }
            let time = |ms: Option<String>| ms?.parse().ok().map(from_millis);
            records.push(AttemptRecord {
                identity: identity.clone(),
                failures: fields
                    .get("failures")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                first_failure: time(fields.remove("first")),
                last_failure: time(fields.remove("last")),
                user_agent: fields.remove("user_agent").filter(|v| !v.is_empty()),
                path: fields.remove("path").filter(|v| !v.is_empty()),
                lock_remaining,
            });
        }
        Ok(records)
    }

    fn parse_log_entry(&self, id: &str, mut fields: HashMap<String, String>) -> Result<LogEntry> {
        let unexpected = |detail: String| Error::UnexpectedReply {
            target: self.target.clone(),
            detail,
        };
        let ms = id
            .split('-')
            .next()
            .and_then(|ms| ms.parse().ok())
            .ok_or_else(|| unexpected(format!("access-log entry ID {id:?}")))?;
        let ip: IpAddr = fields
            .get("ip")
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| unexpected(format!("access-log entry {id} without a valid ip")))?;
        let outcome = fields
            .get("outcome")
            .and_then(|name| Outcome::parse(name))
            .ok_or_else(|| unexpected(format!("access-log entry {id} without a valid outcome")))?;
        Ok(LogEntry {
            time: from_millis(ms),
            ip,
            username: fields.remove("username"),
            user_agent: fields.remove("user_agent"),
            path: fields.remove("path"),
            outcome,
        })
    }
}

/// Where a scan is: the patterns still to walk (the current one last) and its cursor.
struct Scan {
    patterns: Vec<String>,
    cursor: u64,
}

impl Store for RedisStore {
    async fn lock_states(&self, identities: &[Identity]) -> Result<Vec<Option<Duration>>> {
        let commands: Vec<Cmd> = identities
            .iter()
            .map(|identity| {
                redis::cmd("PTTL")
                    .arg(self.keys.key(KeyKind::Lock, identity))
                    .clone()
            })
            .collect();
        self.round_trip(&commands)
            .await?
            .into_iter()
            .map(|reply| self.parse(reply).map(remaining))
            .collect()
    }

    async fn peek(&self, identities: &[Identity]) -> Result<Vec<IdentityState>> {
        let commands: Vec<Cmd> = identities
            .iter()
            .flat_map(|identity| {
                let [record, lock] = self.identity_keys(identity);
                [
                    redis::cmd("HGET").arg(record).arg("failures").clone(),
                    redis::cmd("PTTL").arg(lock).clone(),
                ]
            })
            .collect();
        let mut replies = self.round_trip(&commands).await?.into_iter();
        let mut states = Vec::with_capacity(identities.len());
        while let (Some(failures), Some(pttl)) = (replies.next(), replies.next()) {
            let failures: Option<u64> = self.parse(failures)?;
            states.push(IdentityState {
                failures: failures.unwrap_or(0),
                lock_remaining: remaining(self.parse(pttl)?),
            });
        }
        Ok(states)
    }

    async fn record_failures(
        &self,
        identities: &[Identity],
        rule: &FailureRule,
        attempt: &Attempt,
        log: Option<LogAppend<'_>>,
    ) -> Result<Vec<IdentityState>> {
        let args = (
            millis(rule.cooloff),
            millis(rule.lockout_duration),
            rule.failure_limit,
            u8::from(rule.lock_out_at_failure),
            attempt.user_agent.as_deref().unwrap_or(""),
            attempt.path.as_deref().unwrap_or(""),
        );
        let mut commands: Vec<Cmd> = identities
            .iter()
            .map(|identity| FAIL.evalsha(&self.identity_keys(identity), args))
            .collect();
        commands.extend(log.map(|log| self.log_command(log)));
        let replies = self.round_trip(&commands).await?;
        replies
            .into_iter()
            .take(identities.len())
            .map(|reply| {
                let (failures, lock_ms): (u64, i64) = self.parse(reply)?;
                Ok(IdentityState {
                    failures,
                    lock_remaining: remaining(lock_ms),
                })
            })
            .collect()
    }

    async fn clear(&self, identities: &[Identity], log: Option<LogAppend<'_>>) -> Result<bool> {
        let mut commands: Vec<Cmd> = identities
            .iter()
            .map(|identity| {
                redis::cmd("UNLINK")
                    .arg(&self.identity_keys(identity))
                    .clone()
            })
            .collect();
        commands.extend(log.map(|log| self.log_command(log)));
        let replies = self.round_trip(&commands).await?;
        let mut removed = 0u64;
        for reply in replies.into_iter().take(identities.len()) {
            removed += self.parse::<u64>(reply)?;
        }
        Ok(removed > 0)
    }

    async fn append_log(&self, log: LogAppend<'_>) -> Result<()> {
        self.round_trip(&[self.log_command(log)]).await?;
        Ok(())
    }

    async fn list(&self, target: &Target) -> Result<Vec<AttemptRecord>> {
        let mut seen = HashSet::new();
        let mut identities = Vec::new();
        let mut scan = self.scan(target);
        while let Some(page) = self.next_page(&mut scan, target).await? {
            for (_, _, identity) in page {
                if seen.insert(identity.tag().to_string()) {
                    identities.push(identity);
                }
            }
        }
        let mut records = Vec::with_capacity(identities.len());
        for batch in identities.chunks(FETCH_BATCH) {
            records.extend(self.fetch_records(batch).await?);
        }
        records.sort_by(|a, b| {
            b.last_failure
                .cmp(&a.last_failure)
                .then_with(|| a.identity.tag().cmp(b.identity.tag()))
        });
        Ok(records)
    }

    async fn remove(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64> {
        let mut records = HashSet::new();
        let mut doomed: Vec<String> = Vec::new();
        let mut scan = self.scan(target);
        while let Some(page) = self.next_page(&mut scan, target).await? {
            for (key, _, identity) in page {
                records.insert(identity.tag().to_string());
                if !dry_run {
                    doomed.push(key);
                }
            }
            if doomed.len() >= UNLINK_BATCH {
                self.unlink(&std::mem::take(&mut doomed)).await?;
            }
            progress(records.len() as u64);
        }
        self.unlink(&doomed).await?;
        Ok(records.len() as u64)
    }

    async fn logs(
        &self,
        filter: &LogFilter,
        limit: usize,
        max_age: Option<Duration>,
    ) -> Result<Vec<LogEntry>> {
        let oldest = max_age.map_or("-".to_string(), |age| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            millis(now.saturating_sub(age)).to_string()
        });
        let mut newest = "+".to_string();
        let mut entries = Vec::new();
        while entries.len() < limit {
            let mut command = redis::cmd("XREVRANGE");
            command
                .arg(self.keys.log_key())
                .arg(&newest)
                .arg(&oldest)
                .arg("COUNT")
                .arg(LOG_BATCH);
            let reply = self.round_trip(&[command]).await?.remove(0);
            let page: Vec<(String, HashMap<String, String>)> = self.parse(reply)?;
            let exhausted = page.len() < LOG_BATCH;
            if let Some((last_id, _)) = page.last() {
                newest = format!("({last_id}");
            }
            for (id, fields) in page {
                let entry = self.parse_log_entry(&id, fields)?;
                if filter.matches(&entry) && entries.len() < limit {
                    entries.push(entry);
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(entries)
    }

    async fn trim_logs(&self, age: Duration) -> Result<u64> {
        let command = TRIM_LOG.evalsha(&[self.keys.log_key()], millis(age));
        let reply = self.round_trip(&[command]).await?.remove(0);
        self.parse(reply)
    }
}

impl RedisStore {
    async fn unlink(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let commands: Vec<Cmd> = keys
            .chunks(UNLINK_BATCH)
            .map(|batch| redis::cmd("UNLINK").arg(batch).clone())
            .collect();
        self.round_trip(&commands).await?;
        Ok(())
    }
}

fn load_commands() -> Vec<Cmd> {
    scripts::all().iter().map(|script| script.load()).collect()
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
