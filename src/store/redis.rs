//! The Redis store: counters and lock flags as keys with TTLs (layout in `keys`), written by the
//! Lua scripts of `scripts/`, over one multiplexed connection (a server or a cluster, see
//! `connection`) that reconnects by itself.
//!
//! Each login-path method sends all its commands at once: one round-trip time. Scripts run with
//! EVALSHA; commands refused with NOSCRIPT (a restart, a failover, SCRIPT FLUSH, a primary that
//! never saw the script) are run again, alone, after loading the scripts everywhere, so nothing
//! is ever counted twice.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, ServerErrorKind, Value};

use super::connection::{Connection, Node};
pub use super::endpoint::{RedisEndpoint, RedisTls, Topology};
use super::scripts::{self, CLAIM_EVENTS, END_LOCKOUTS, FAIL, LOG, SCHEDULE_LOCK_ENDS, TRIM_LOG};
use super::{Claim, Claimed, FailureRule, LogAppend, Page, Progress, Refusals, ResetNotice, Store};
use crate::attempt::Attempt;
use crate::error::{Error, RedisTarget, Result};
use crate::event::{self, Event, EventKind, StoredEvent};
use crate::identity::Identity;
use crate::keys::{record_field, KeyKind, Keyspace, EVENT_SHARDS, RESET_GUARD, SHARDS};
use crate::policy::{AccessLog, Repeat};
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter, Outcome};
use crate::target::Target;

/// Keys asked for per SCAN call, and deleted per UNLINK.
const SCAN_BATCH: usize = 1000;
const UNLINK_BATCH: usize = 500;
/// Attempt records fetched per round trip when listing.
const FETCH_BATCH: usize = 500;
/// About how many keys one page of the admin page may look at.
const PAGE_WORK: usize = 100_000;
/// Access-log entries read per shard and round trip.
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

/// A `Store` on a Redis server or a Redis Cluster.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    endpoint: RedisEndpoint,
    options: RedisOptions,
    keys: Keyspace,
    target: RedisTarget,
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
        })
    }

    /// Another connection to the same Redis, with other timeouts: bulk admin work (resets and
    /// listings over millions of keys) runs on its own, so that it neither waits behind logins
    /// nor delays them.
    pub async fn reopen(&self, options: RedisOptions) -> Result<Self> {
        Self::open(&self.endpoint, self.keys.clone(), options).await
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

    fn log_request(&self, log: LogAppend<'_>) -> Cmd {
        let key = self.keys.log_key(Keyspace::log_shard(log.attempt.ip));
        let mut command = LOG.evalsha(&[&key], Vec::<String>::new());
        self.log_args(log, &mut command);
        command
    }

    /// The log entry's arguments as `log.lua` (and `fail.lua` after its identities) takes
    /// them: the oldest ID kept, the retention, the shard's size, and the entry's fields.
    fn log_args(&self, log: LogAppend<'_>, command: &mut Cmd) {
        let attempt = log.attempt;
        let retention = log.bounds.retention;
        let oldest_kept = since_epoch().saturating_sub(retention);
        let per_shard = log.bounds.max_entries.get().div_ceil(SHARDS as u64);
        command
            .arg(millis(oldest_kept))
            .arg(millis(retention))
            .arg(per_shard)
            .arg("ip")
            .arg(attempt.ip.to_string())
            .arg("outcome")
            .arg(log.outcome.name());
        if log.count > 1 {
            command.arg("count").arg(log.count);
        }
        for (field, value) in [
            ("username", &attempt.username),
            ("user_agent", &attempt.user_agent),
            ("path", &attempt.path),
        ] {
            if let Some(value) = value {
                command.arg(field).arg(value);
            }
        }
    }

    /// One `fail.lua` call on `failures`, identities of one shard, appending `log` (whose
    /// stream is that shard's) when given; `refused` attempts (decided on locks read before,
    /// or coalesced by a lock cache) are dropped for an identity whose reset marker lives (see
    /// `Keyspace::reset_marker`).
    fn fail_request(
        &self,
        failures: &[Failure<'_>],
        refused: bool,
        log: Option<LogAppend<'_>>,
    ) -> Cmd {
        // Only the keys and arguments this call uses: Redis pays for each one it receives.
        let mut keys: Vec<String> = Vec::with_capacity(4 * failures.len() + 1);
        for failure in failures {
            let identity = failure.identity;
            keys.push(self.keys.key(KeyKind::Attempt, identity));
            keys.push(self.keys.key(KeyKind::Lock, identity));
            if repeats(failure.rule).is_some() {
                keys.push(self.keys.key(KeyKind::Lockouts, identity));
            }
            if refused {
                keys.push(self.keys.reset_marker(identity.tag()));
            }
        }
        keys.extend(log.map(|log| self.keys.log_key(Keyspace::log_shard(log.attempt.ip))));
        let mut command = FAIL.evalsha(
            &keys,
            (failures.len(), since_epoch().as_secs(), u8::from(refused)),
        );
        for failure in failures {
            let rule = failure.rule;
            let limit = if rule.lock_out_at_failure {
                rule.failure_limit
            } else {
                0
            };
            command
                .arg(millis(rule.cooloff))
                .arg(millis(rule.lockout_duration))
                .arg(limit)
                .arg(failure.count);
            match repeats(rule) {
                Some((memory, repeat)) => command
                    .arg(memory)
                    .arg(repeat.backoff.0)
                    .arg(millis(repeat.max_lockout)),
                None => command.arg(0),
            };
            let metadata: Vec<(&str, &str)> = [
                (record_field::USER_AGENT, failure.user_agent),
                (record_field::PATH, failure.path),
            ]
            .into_iter()
            .filter_map(|(field, value)| Some((field, value?)))
            .collect();
            command.arg(metadata.len() * 2);
            for (field, value) in metadata {
                command.arg(field).arg(value);
            }
        }
        if let Some(log) = log {
            self.log_args(log, &mut command);
        }
        command
    }

    /// `fail.lua` calls for `failures`, one per shard among them (`log` appended by the call of
    /// its shard, or on its own), in one round trip; each identity's new state, in order.
    async fn record(
        &self,
        failures: &[Failure<'_>],
        refused: bool,
        log: Option<LogAppend<'_>>,
        more_logs: &[LogAppend<'_>],
    ) -> Result<Vec<IdentityState>> {
        // Shards in the order their first identity comes, each with its identities' places.
        let mut shards: Vec<(usize, Vec<usize>)> = Vec::new();
        for (place, failure) in failures.iter().enumerate() {
            let shard = Keyspace::shard_of_tag(failure.identity.tag());
            match shards.iter_mut().find(|(of, _)| *of == shard) {
                Some((_, places)) => places.push(place),
                None => shards.push((shard, vec![place])),
            }
        }
        let log_shard = log.map(|log| Keyspace::log_shard(log.attempt.ip));
        let mut log_left = log;
        let mut requests: Vec<Cmd> = shards
            .iter()
            .map(|(shard, places)| {
                let group: Vec<Failure<'_>> = places.iter().map(|&p| failures[p]).collect();
                let log = if log_shard == Some(*shard) {
                    log_left.take()
                } else {
                    None
                };
                self.fail_request(&group, refused, log)
            })
            .collect();
        requests.extend(log_left.map(|log| self.log_request(log)));
        requests.extend(more_logs.iter().map(|log| self.log_request(*log)));
        let replies = self.round_trip(&requests).await?;
        let mut states = vec![IdentityState::CLEAN; failures.len()];
        for ((_, places), reply) in shards.iter().zip(replies) {
            let values: Vec<i64> = self.parse(reply)?;
            if values.len() != 4 * places.len() {
                return Err(Error::UnexpectedReply {
                    target: self.target.clone(),
                    detail: format!("fail.lua answered {} values", values.len()),
                });
            }
            for (&place, state) in places.iter().zip(values.chunks(4)) {
                states[place] = IdentityState {
                    failures: u64::try_from(state[0]).unwrap_or(0),
                    lock_remaining: remaining(state[1]),
                    lock_started: state[2] == 1,
                    lockouts: u64::try_from(state[3]).unwrap_or(0),
                };
            }
        }
        Ok(states)
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

    /// A scan over every node for the keys of `kind` (or both kinds) that `target` may select.
    /// The nodes are sorted so that a page cursor means the same walk on the next request.
    async fn scan(&self, target: &Target, kind: Option<KeyKind>) -> Result<Scan> {
        let mut nodes = self
            .connection
            .nodes()
            .await
            .map_err(|err| self.error(err))?;
        nodes.sort();
        let patterns = self.keys.scan_patterns(target, kind);
        let walks = nodes
            .into_iter()
            .flat_map(|node| {
                patterns
                    .iter()
                    .map(move |pattern| (node.clone(), pattern.clone()))
            })
            .collect();
        Ok(Scan {
            walks,
            walk: 0,
            cursor: 0,
        })
    }

    /// The next page of keys matching the scan, as (key, identity), asking SCAN to look at
    /// about `count` keys; `None` when every walk is done.
    async fn next_page(
        &self,
        scan: &mut Scan,
        target: &Target,
        count: usize,
    ) -> Result<Option<Vec<(String, Identity)>>> {
        let Some((node, pattern)) = scan.walks.get(scan.walk) else {
            return Ok(None);
        };
        let mut command = redis::cmd("SCAN");
        command
            .arg(scan.cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let reply = self
            .connection
            .on_node(node, &command)
            .await
            .map_err(|err| self.error(err))?;
        let (cursor, keys): (u64, Vec<String>) = self.parse(reply)?;
        scan.cursor = cursor;
        if cursor == 0 {
            scan.walk += 1;
        }
        Ok(Some(
            keys.into_iter()
                .filter_map(|key| {
                    let (_, identity) = self.keys.parse(&key)?;
                    target.matches(&identity).then_some((key, identity))
                })
                .collect(),
        ))
    }

    async fn fetch_records(&self, identities: &[Identity]) -> Result<Vec<AttemptRecord>> {
        let requests: Vec<Cmd> = identities
            .iter()
            .flat_map(|identity| {
                [
                    self.on_identity(identity, |[record, _, _]| {
                        redis::cmd("HGETALL").arg(record).clone()
                    }),
                    self.on_identity(identity, |[_, lock, _]| {
                        redis::cmd("PTTL").arg(lock).clone()
                    }),
                    self.on_identity(identity, |[_, _, lockouts]| {
                        redis::cmd("GET").arg(lockouts).clone()
                    }),
                ]
            })
            .collect();
        let mut replies = self.round_trip(&requests).await?.into_iter();
        let mut records = Vec::with_capacity(identities.len());
        for identity in identities {
            let (Some(fields), Some(pttl), Some(lockouts)) =
                (replies.next(), replies.next(), replies.next())
            else {
                break;
            };
            let lockouts: Option<u64> = self.parse(lockouts)?;
            let mut fields: HashMap<String, String> = self.parse(fields)?;
            let lock_remaining = remaining(self.parse(pttl)?);
            if fields.is_empty() && lock_remaining.is_none() {
                continue; // expired between the scan and now
            }
            let time = |secs: Option<String>| {
                secs?
                    .parse()
                    .ok()
                    .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
            };
            records.push(AttemptRecord {
                identity: identity.clone(),
                failures: fields
                    .get(record_field::FAILURES)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                first_failure: time(fields.remove(record_field::FIRST)),
                last_failure: time(fields.remove(record_field::LAST)),
                user_agent: fields
                    .remove(record_field::USER_AGENT)
                    .filter(|v| !v.is_empty()),
                path: fields.remove(record_field::PATH).filter(|v| !v.is_empty()),
                lock_remaining,
                lockouts: lockouts.unwrap_or(0),
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
            count: fields
                .get("count")
                .and_then(|count| count.parse().ok())
                .unwrap_or(1),
        })
    }

    /// The events `read` (a range command on one shard's key) answers from every shard, in no
    /// particular order.
    async fn read_events(&self, read: impl Fn(String) -> Cmd) -> Result<Vec<StoredEvent>> {
        let requests: Vec<Cmd> = (0..EVENT_SHARDS)
            .map(|shard| read(self.keys.events_key(shard)))
            .collect();
        let mut events = Vec::new();
        for reply in self.round_trip(&requests).await? {
            events.extend(self.stored_events(self.parse(reply)?)?);
        }
        Ok(events)
    }

    /// Stream entries as events; an error for an entry that is not one.
    fn stored_events(&self, entries: StreamEntries) -> Result<Vec<StoredEvent>> {
        entries
            .into_iter()
            .map(|(id, fields)| {
                let (event, (ms, _)) = Event::from_fields(&fields)
                    .zip(event::id_order(&id))
                    .ok_or_else(|| Error::UnexpectedReply {
                        target: self.target.clone(),
                        detail: format!("event {id:?} is not one lockout writes"),
                    })?;
                Ok(StoredEvent {
                    time: from_millis(ms),
                    id,
                    event,
                })
            })
            .collect()
    }

    /// Leaves the reset markers of `tags`, deletes `keys` in batches, then tells the reset
    /// channel which identities went, in that order and to the end even if the caller stops
    /// waiting (see `run_to_completion`).
    async fn unlink(&self, keys: Vec<String>, tags: Vec<String>) -> Result<()> {
        let store = self.clone();
        run_to_completion(async move {
            let mut markers = store.forget_lock_ends_requests(&tags);
            markers.extend(tags.iter().map(|tag| store.reset_marker_request(tag)));
            if !markers.is_empty() {
                store.round_trip(&markers).await?;
            }
            for batch in keys.chunks(UNLINK_BATCH) {
                let command = redis::cmd("UNLINK").arg(batch).clone();
                store
                    .connection
                    .query(&command)
                    .await
                    .map_err(|err| store.error(err))?;
            }
            store.announce_resets(&tags).await
        })
        .await
    }

    /// ZREM of `tags` from their lock-end shards: a reset lock is not told as run out.
    fn forget_lock_ends_requests(&self, tags: &[String]) -> Vec<Cmd> {
        let mut by_shard: HashMap<usize, Vec<&str>> = HashMap::new();
        for tag in tags {
            by_shard
                .entry(Keyspace::lock_end_shard(tag))
                .or_default()
                .push(tag);
        }
        by_shard
            .into_iter()
            .map(|(shard, tags)| {
                redis::cmd("ZREM")
                    .arg(self.keys.lock_ends_key(shard))
                    .arg(tags)
                    .clone()
            })
            .collect()
    }

    /// `SET <reset marker> 1 PX <RESET_GUARD>`.
    fn reset_marker_request(&self, tag: &str) -> Cmd {
        let marker = self.keys.reset_marker(tag);
        let command = redis::cmd("SET")
            .arg(&marker)
            .arg("1")
            .arg("PX")
            .arg(millis(RESET_GUARD))
            .clone();
        command
    }

    /// PUBLISH of the removed identities' tags on the reset channel, once their deletion has
    /// answered: a notice that overtook it could let another process cache a lock that is
    /// about to go.
    async fn announce_resets(&self, tags: &[String]) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let channel = self.keys.reset_channel();
        let command = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(tags.join("\n"))
            .clone();
        match self.round_trip(&[command]).await {
            Err(err) if err.is_permission_denied() => {
                tracing::warn!(%err, %channel, "reset not announced to other processes' lock \
                    caches: the Redis user may not publish on the reset channel (its ACL needs \
                    the channel pattern &<prefix>:*); the reset itself is done");
                Ok(())
            }
            result => result.map(drop),
        }
    }
}

/// Runs `work` in a task of its own and waits for it: a caller that gives up waiting (a request
/// timeout) cannot cut a reset between its deletions and its notice.
async fn run_to_completion<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Where a scan is: its (node, pattern) walks, the one under way, and that walk's cursor.
struct Scan {
    walks: Vec<(Node, String)>,
    walk: usize,
    cursor: u64,
}

impl Scan {
    fn is_done(&self) -> bool {
        self.walk >= self.walks.len()
    }

    /// `<walk>-<cursor>`, for a page link.
    fn position(&self) -> String {
        format!("{}-{}", self.walk, self.cursor)
    }

    fn resume(&mut self, position: &str) -> Result<()> {
        let parsed = position
            .split_once('-')
            .and_then(|(walk, cursor)| Some((walk.parse().ok()?, cursor.parse().ok()?)));
        match parsed {
            Some((walk, cursor)) if walk <= self.walks.len() => {
                (self.walk, self.cursor) = (walk, cursor);
                Ok(())
            }
            _ => Err(Error::invalid(format!(
                "cursor: {position:?} is not a page cursor"
            ))),
        }
    }
}

/// Where reading one access-log shard is.
struct ShardRead {
    key: String,
    /// Exclusive upper bound of the next page (`+` at first).
    newest: String,
    matched: usize,
    exhausted: bool,
}

impl Store for RedisStore {
    async fn lock_states(&self, identities: &[Identity]) -> Result<Vec<Option<Duration>>> {
        let requests: Vec<Cmd> = identities
            .iter()
            .map(|identity| {
                self.on_identity(identity, |[_, lock, _]| {
                    redis::cmd("PTTL").arg(lock).clone()
                })
            })
            .collect();
        self.round_trip(&requests)
            .await?
            .into_iter()
            .map(|reply| self.parse(reply).map(remaining))
            .collect()
    }

    async fn peek(&self, identities: &[Identity]) -> Result<Vec<IdentityState>> {
        let requests: Vec<Cmd> = identities
            .iter()
            .flat_map(|identity| {
                [
                    self.on_identity(identity, |[record, _, _]| {
                        redis::cmd("HGET")
                            .arg(record)
                            .arg(record_field::FAILURES)
                            .clone()
                    }),
                    self.on_identity(identity, |[_, lock, _]| {
                        redis::cmd("PTTL").arg(lock).clone()
                    }),
                ]
            })
            .collect();
        let mut replies = self.round_trip(&requests).await?.into_iter();
        let mut states = Vec::with_capacity(identities.len());
        while let (Some(failures), Some(pttl)) = (replies.next(), replies.next()) {
            let failures: Option<u64> = self.parse(failures)?;
            states.push(IdentityState {
                failures: failures.unwrap_or(0),
                lock_remaining: remaining(self.parse(pttl)?),
                ..IdentityState::CLEAN
            });
        }
        Ok(states)
    }

    async fn record_failures(
        &self,
        identities: &[Identity],
        rules: &[FailureRule],
        attempt: &Attempt,
        refused: bool,
        log: Option<LogAppend<'_>>,
    ) -> Result<Vec<IdentityState>> {
        let failures: Vec<Failure<'_>> = identities
            .iter()
            .zip(rules)
            .map(|(identity, rule)| Failure {
                identity,
                rule,
                count: 1,
                user_agent: attempt.user_agent.as_deref(),
                path: attempt.path.as_deref(),
            })
            .collect();
        self.record(&failures, refused, log, &[]).await
    }

    async fn record_refusals(
        &self,
        refusals: &[Refusals],
        logs: &[LogAppend<'_>],
    ) -> Result<Vec<IdentityState>> {
        let failures: Vec<Failure<'_>> = refusals
            .iter()
            .map(|refusal| Failure {
                identity: &refusal.identity,
                rule: &refusal.rule,
                count: refusal.count,
                user_agent: refusal.user_agent.as_deref(),
                path: refusal.path.as_deref(),
            })
            .collect();
        self.record(&failures, true, None, logs).await
    }

    async fn watch_resets(&self, on_notice: &(dyn Fn(ResetNotice) + Send + Sync)) -> Result<()> {
        // A lookup and a connection (two hops through Sentinels), then the subscription.
        let subscribed =
            tokio::time::timeout(self.options.connect_timeout.saturating_mul(3), async {
                let mut pubsub = self.endpoint.pubsub().await?;
                pubsub.subscribe(self.keys.reset_channel()).await?;
                Ok::<_, RedisError>(pubsub)
            })
            .await
            .unwrap_or_else(|_| {
                Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no subscription to the reset channel in time",
                )))
            });
        let pubsub = subscribed.map_err(|err| self.error(err))?;
        on_notice(ResetNotice::Listening);
        let mut messages = pubsub.into_on_message();
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            let tags: String = message.get_payload().map_err(|err| self.error(err))?;
            on_notice(ResetNotice::Removed(
                tags.lines().map(String::from).collect(),
            ));
        }
        Err(self.error(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the reset channel closed",
        ))))
    }

    async fn clear(&self, identities: &[Identity], log: Option<LogAppend<'_>>) -> Result<u64> {
        // Each identity's marker first, then its deletion, in one slot: no coalesced refusal can
        // land between them (see `Keyspace::reset_marker`).
        let tags: Vec<String> = identities.iter().map(|i| i.tag().to_string()).collect();
        let mut requests = self.forget_lock_ends_requests(&tags);
        let forgotten = requests.len();
        requests.extend(identities.iter().flat_map(|identity| {
            [
                self.reset_marker_request(identity.tag()),
                self.on_identity(identity, |keys| redis::cmd("UNLINK").arg(&keys).clone()),
            ]
        }));
        requests.extend(log.map(|log| self.log_request(log)));
        let store = self.clone();
        let replies = run_to_completion(async move {
            let replies = store.round_trip(&requests).await?;
            store.announce_resets(&tags).await?;
            Ok(replies)
        })
        .await?;
        let mut removed = 0u64;
        for reply in replies
            .into_iter()
            .skip(forgotten + 1)
            .step_by(2)
            .take(identities.len())
        {
            removed += u64::from(self.parse::<u64>(reply)? > 0);
        }
        Ok(removed)
    }

    async fn append_log(&self, log: LogAppend<'_>) -> Result<()> {
        self.round_trip(&[self.log_request(log)]).await?;
        Ok(())
    }

    async fn list(&self, target: &Target) -> Result<Vec<AttemptRecord>> {
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor = None;
        loop {
            let page = self.page(target, cursor.as_deref(), FETCH_BATCH).await?;
            // A record that several scan patterns match (Target::Either) comes once.
            records.extend(
                page.records
                    .into_iter()
                    .filter(|record| seen.insert(record.identity.tag().to_string())),
            );
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        sort_newest_first(&mut records);
        Ok(records)
    }

    async fn page(&self, target: &Target, cursor: Option<&str>, size: usize) -> Result<Page> {
        // A record's hash outlives its lock flag (fail.lua gives it the longer TTL), so walking
        // the hashes finds every record once.
        let mut scan = self.scan(target, Some(KeyKind::Attempt)).await?;
        if let Some(cursor) = cursor {
            scan.resume(cursor)?;
        }
        let mut seen = HashSet::new();
        let mut identities = Vec::new();
        let mut count = size.max(1);
        let mut examined = 0;
        // SCAN looks at about `count` keys a call: grow it while a selective filter finds
        // little, and stop after about PAGE_WORK keys so that a page stays fast.
        while identities.len() < size && examined < PAGE_WORK {
            let Some(keys) = self.next_page(&mut scan, target, count).await? else {
                break;
            };
            examined += count;
            if keys.len() < size / 2 {
                count = (count * 4).min(SCAN_BATCH * 10);
            }
            for (_, identity) in keys {
                if seen.insert(identity.tag().to_string()) {
                    identities.push(identity);
                }
            }
        }
        let mut records = Vec::with_capacity(identities.len());
        for batch in identities.chunks(FETCH_BATCH) {
            records.extend(self.fetch_records(batch).await?);
        }
        sort_newest_first(&mut records);
        Ok(Page {
            records,
            next: (!scan.is_done()).then(|| scan.position()),
        })
    }

    async fn remove(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64> {
        let mut records = HashSet::new();
        let mut doomed: Vec<String> = Vec::new();
        let mut doomed_tags: HashSet<String> = HashSet::new();
        let mut scan = self.scan(target, None).await?;
        while let Some(page) = self.next_page(&mut scan, target, SCAN_BATCH).await? {
            for (key, identity) in page {
                if !dry_run {
                    doomed.push(key);
                    doomed_tags.insert(identity.tag().to_string());
                }
                records.insert(identity.tag().to_string());
            }
            // Told before the deletion: a caller that stops waiting knows an upper bound of
            // what went.
            progress(records.len() as u64);
            if doomed.len() >= UNLINK_BATCH {
                self.unlink(
                    std::mem::take(&mut doomed),
                    std::mem::take(&mut doomed_tags).into_iter().collect(),
                )
                .await?;
            }
        }
        self.unlink(doomed, doomed_tags.into_iter().collect())
            .await?;
        Ok(records.len() as u64)
    }

    async fn logs(
        &self,
        filter: &LogFilter,
        limit: usize,
        max_age: Option<Duration>,
    ) -> Result<Vec<LogEntry>> {
        let oldest = max_age.map_or("-".to_string(), |age| {
            millis(since_epoch().saturating_sub(age)).to_string()
        });
        // One IP's entries are all in its shard; other filters read every shard.
        let shards: Vec<usize> = match filter.ip {
            Some(ip) => vec![Keyspace::log_shard(ip)],
            None => (0..SHARDS).collect(),
        };
        let mut reads: Vec<ShardRead> = shards
            .into_iter()
            .map(|shard| ShardRead {
                key: self.keys.log_key(shard),
                newest: "+".into(),
                matched: 0,
                exhausted: false,
            })
            .collect();
        let mut entries = Vec::new();
        loop {
            let active: Vec<&mut ShardRead> = reads
                .iter_mut()
                .filter(|read| !read.exhausted && read.matched < limit)
                .collect();
            if active.is_empty() {
                break;
            }
            let requests: Vec<Cmd> = active
                .iter()
                .map(|read| {
                    let mut command = redis::cmd("XREVRANGE");
                    command
                        .arg(&read.key)
                        .arg(&read.newest)
                        .arg(&oldest)
                        .arg("COUNT")
                        .arg(LOG_BATCH);
                    command
                })
                .collect();
            let replies = self.round_trip(&requests).await?;
            for (read, reply) in active.into_iter().zip(replies) {
                let page: Vec<(String, HashMap<String, String>)> = self.parse(reply)?;
                read.exhausted = page.len() < LOG_BATCH;
                if let Some((last_id, _)) = page.last() {
                    read.newest = format!("({last_id}");
                }
                for (id, fields) in page {
                    let entry = self.parse_log_entry(&id, fields)?;
                    if filter.matches(&entry) && read.matched < limit {
                        read.matched += 1;
                        entries.push(entry);
                    }
                }
            }
        }
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.time));
        entries.truncate(limit);
        Ok(entries)
    }

    async fn append_events(&self, events: &[Event], bounds: AccessLog) -> Result<()> {
        let now = since_epoch();
        let oldest_kept = millis(now.saturating_sub(bounds.retention));
        let per_shard = bounds.max_entries.get().div_ceil(EVENT_SHARDS as u64);
        let mut requests: Vec<Cmd> = events
            .iter()
            .map(|event| {
                let shard = event_shard(event);
                let key = self.keys.events_key(shard);
                let mut command =
                    LOG.evalsha(&[&key], (oldest_kept, millis(bounds.retention), per_shard));
                for (field, value) in event.fields() {
                    command.arg(field).arg(value);
                }
                command
            })
            .collect();
        for event in events {
            if let (EventKind::LockoutStarted, Some(lockout)) = (event.kind, event.lockout) {
                let shard = Keyspace::lock_end_shard(&event.subject);
                let lifetime = millis(lockout + bounds.retention);
                requests.push(SCHEDULE_LOCK_ENDS.evalsha(
                    &[self.keys.lock_ends_key(shard)],
                    (lifetime, millis(now + lockout), &event.subject),
                ));
            }
        }
        if requests.is_empty() {
            return Ok(());
        }
        self.round_trip(&requests).await?;
        Ok(())
    }

    async fn end_lockouts(&self, bounds: AccessLog, limit: usize) -> Result<u64> {
        let now = millis(since_epoch());
        let ranges: Vec<Cmd> = (0..EVENT_SHARDS)
            .map(|shard| {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.keys.lock_ends_key(shard))
                    .arg("-inf")
                    .arg(now)
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .clone()
            })
            .collect();
        // (shard, tag, end as Redis wrote it)
        let mut due: Vec<(usize, String, String)> = Vec::new();
        for (shard, reply) in self.round_trip(&ranges).await?.into_iter().enumerate() {
            let ends: Vec<(String, String)> = self.parse(reply)?;
            due.extend(ends.into_iter().map(|(tag, end)| (shard, tag, end)));
        }
        due.truncate(limit);
        if due.is_empty() {
            return Ok(0);
        }
        // Each tag's lock; a tag that is no identity's has none to wait for.
        let locks: Vec<Option<String>> = due
            .iter()
            .map(|(_, tag, _)| {
                Identity::from_tag(tag).map(|identity| self.keys.key(KeyKind::Lock, &identity))
            })
            .collect();
        let lock_ttls: Vec<Cmd> = locks
            .iter()
            .flatten()
            .map(|lock| redis::cmd("PTTL").arg(lock).clone())
            .collect();
        let mut ttls = if lock_ttls.is_empty() {
            Vec::new()
        } else {
            self.round_trip(&lock_ttls).await?
        }
        .into_iter();
        let mut requests = Vec::new();
        let mut ended: HashMap<usize, Vec<(String, String)>> = HashMap::new();
        for ((shard, tag, end), lock) in due.into_iter().zip(&locks) {
            let ttl: i64 = match lock {
                Some(_) => self.parse(ttls.next().unwrap_or(Value::Nil))?,
                None => -2,
            };
            if ttl > 0 {
                // Locked again (or longer): its new end, unless a reset took it meanwhile.
                requests.push(
                    redis::cmd("ZADD")
                        .arg(self.keys.lock_ends_key(shard))
                        .arg("XX")
                        .arg(now + ttl as u64)
                        .arg(&tag)
                        .clone(),
                );
            } else {
                ended.entry(shard).or_default().push((tag, end));
            }
        }
        let takes = ended.len();
        requests.splice(
            0..0,
            ended.into_iter().map(|(shard, pairs)| {
                END_LOCKOUTS.evalsha(&[self.keys.lock_ends_key(shard)], pairs)
            }),
        );
        let replies = self.round_trip(&requests).await?;
        let mut events = Vec::new();
        for reply in replies.into_iter().take(takes) {
            let taken: Vec<String> = self.parse(reply)?;
            events.extend(taken.into_iter().map(Event::expired));
        }
        self.append_events(&events, bounds).await?;
        Ok(events.len() as u64)
    }

    async fn events(&self, since: Option<&str>, limit: usize) -> Result<Vec<StoredEvent>> {
        let start = since.map_or("-".to_string(), |id| format!("({id}"));
        let mut events = self
            .read_events(|key| {
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg(&start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit)
                    .clone()
            })
            .await?;
        events.sort_by_key(|stored| event::id_order(&stored.id));
        events.truncate(limit);
        Ok(events)
    }

    async fn claim_events(&self, claim: Claim<'_>) -> Result<Claimed> {
        let start = if claim.first { "$" } else { "0" };
        let per_shard = claim.limit.div_ceil(EVENT_SHARDS).max(1);
        let requests: Vec<Cmd> = (0..EVENT_SHARDS)
            .map(|shard| {
                CLAIM_EVENTS.evalsha(
                    &[self.keys.events_key(shard)],
                    (
                        claim.group,
                        claim.consumer,
                        per_shard,
                        millis(claim.stale).max(1),
                        start,
                        millis(claim.bounds.retention),
                        if claim.tidy { "1" } else { "0" },
                    ),
                )
            })
            .collect();
        let mut claimed = Claimed::default();
        for reply in self.round_trip(&requests).await? {
            let (entries, dropped): (StreamEntries, u64) = self.parse(reply)?;
            claimed.events.extend(self.stored_events(entries)?);
            claimed.dropped += dropped;
        }
        Ok(claimed)
    }

    async fn acknowledge_events(&self, group: &str, events: &[StoredEvent]) -> Result<()> {
        let mut by_shard: HashMap<usize, Vec<&str>> = HashMap::new();
        for stored in events {
            let shard = event_shard(&stored.event);
            by_shard.entry(shard).or_default().push(&stored.id);
        }
        let requests: Vec<Cmd> = by_shard
            .into_iter()
            .map(|(shard, ids)| {
                redis::cmd("XACK")
                    .arg(self.keys.events_key(shard))
                    .arg(group)
                    .arg(ids)
                    .clone()
            })
            .collect();
        if !requests.is_empty() {
            self.round_trip(&requests).await?;
        }
        Ok(())
    }

    async fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let mut events = self
            .read_events(|key| {
                redis::cmd("XREVRANGE")
                    .arg(key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit)
                    .clone()
            })
            .await?;
        events.sort_by_key(|stored| std::cmp::Reverse(event::id_order(&stored.id)));
        events.truncate(limit);
        Ok(events)
    }

    async fn trim_logs(&self, age: Duration) -> Result<u64> {
        let requests: Vec<Cmd> = (0..SHARDS)
            .map(|shard| {
                let key = self.keys.log_key(shard);
                TRIM_LOG.evalsha(&[&key], millis(age))
            })
            .collect();
        let mut removed = 0;
        for reply in self.round_trip(&requests).await? {
            removed += self.parse::<u64>(reply)?;
        }
        Ok(removed)
    }
}

fn sort_newest_first(records: &mut [AttemptRecord]) {
    records.sort_by(|a, b| {
        b.last_failure
            .cmp(&a.last_failure)
            .then_with(|| a.identity.tag().cmp(b.identity.tag()))
    });
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

/// A rule's repeat offenders as `fail.lua` takes them: the lockout memory in ms, which is 0
/// (off, and then the script expects neither the lockout-count key nor the backoff) for a
/// memory under a millisecond.
fn repeats(rule: &FailureRule) -> Option<(u64, Repeat)> {
    let repeat = rule.repeat?;
    Some((millis(repeat.memory), repeat)).filter(|(memory, _)| *memory != 0)
}

/// Failures to add to one identity, as `fail.lua` takes them.
#[derive(Debug, Clone, Copy)]
struct Failure<'a> {
    identity: &'a Identity,
    rule: &'a FailureRule,
    count: u64,
    user_agent: Option<&'a str>,
    path: Option<&'a str>,
}

/// Stream entries as redis-rs reads them: ID, and fields by name.
type StreamEntries = Vec<(String, HashMap<String, String>)>;

/// The events shard of `event`: its IP's access-log shard; 0 for a reset of no one IP.
fn event_shard(event: &Event) -> usize {
    event.ip.map_or(0, Keyspace::event_shard)
}

/// Now, on this machine's clock, as a duration since the Unix epoch.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
