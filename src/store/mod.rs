//! Where the engine keeps its state. The `Store` trait speaks of identities, never of policy
//! decisions: the engine decides, the store counts, locks and forgets atomically.
//!
//! Every method that serves a login (`lock_states`, `peek`, `record_failures`,
//! `record_refusals`, `clear`, `append_log`, `devices_revoked`) is one round trip, whatever
//! the number of identities. The login methods also read or count the attempt's IP's password
//! spraying (see `spraying`) when given it, in the same round trip: its state comes after the
//! identities'.

pub mod any;
mod connection;
pub mod endpoint;
pub mod memory;
mod primary;
pub mod redis;
mod scripts;

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::attempt::Attempt;
use crate::error::Result;
use crate::event::{Event, EventCursor, StoredEvent};
use crate::identity::Identity;
use crate::policy::{AccessLog, Repeat};
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter, Outcome};
use crate::target::Target;

/// How a failure is counted: the policy's numbers, in the form the store needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRule {
    pub cooloff: Duration,
    /// The first lockout's duration (every lockout's without `repeat`).
    pub lockout_duration: Duration,
    pub failure_limit: u32,
    pub lock_out_at_failure: bool,
    /// Repeat offenders: longer lockouts for identities locked out before.
    pub repeat: Option<Repeat>,
    /// Observe mode: the lock this failure sets or renews is a would-be lock
    /// (`KeyKind::WouldLock`), which refuses nothing, not the identity's lock; the count and
    /// the lockout count are the identity's own, as without it.
    pub observe: bool,
}

impl FailureRule {
    /// How long the `offense`-th lockout (1 for the first) lasts.
    pub fn lockout_for(&self, offense: u64) -> Duration {
        match self.repeat {
            None => self.lockout_duration,
            Some(repeat) => {
                // As fail.lua computes it (Lua's ^ is C's pow).
                let exponent = offense.saturating_sub(1) as f64;
                let millis =
                    self.lockout_duration.as_millis() as f64 * repeat.backoff.0.powf(exponent);
                let longest = repeat.max_lockout.as_millis() as f64;
                Duration::from_millis(millis.min(longest).floor() as u64)
            }
        }
    }
}

/// An attempt's part in its IP's password spraying count (see `spraying`), recorded with its
/// failures.
#[derive(Debug, Clone, Copy)]
pub struct SprayingCount<'a> {
    /// The IP alone (`spraying::identity`): the spraying keys are that identity's, in its slot.
    pub ip: &'a Identity,
    /// The username's member (`spraying::member`); `None`: the attempt names none, and adds
    /// none (a refusal still renews the lock).
    pub member: Option<i64>,
    /// The limit of distinct usernames as `failure_limit`, the window as `cooloff` (counted from
    /// the first username, not renewed by later ones), the policy's lockout duration and repeat
    /// offenders.
    pub rule: FailureRule,
}

/// An access-log entry to append along with a write.
#[derive(Debug, Clone, Copy)]
pub struct LogAppend<'a> {
    pub attempt: &'a Attempt,
    pub outcome: Outcome,
    pub bounds: AccessLog,
    /// How many attempts the entry stands for (a lock cache coalesces refusals).
    pub count: u64,
}

/// Refused attempts of one identity, coalesced by a lock cache (or failures counted by an
/// instance alone during an outage), to be recorded as failures under `rule` (its
/// combination's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusals {
    pub identity: Identity,
    pub rule: FailureRule,
    pub count: u64,
    /// How long ago the latest of them was counted: a reset of the identity since then drops
    /// them (Redis remembers a reset for `RedisOptions::reset_memory`; the in-process store,
    /// which no other instance writes to, for `RESET_GUARD`).
    pub counted_ago: Duration,
    pub user_agent: Option<String>,
    pub path: Option<String>,
}

/// An identity's record counted elsewhere (Django Axes' database rows), to merge into what
/// the store holds for the identity (see `Store::import_records`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRecord {
    pub identity: Identity,
    pub failures: u64,
    pub first_failure: SystemTime,
    pub last_failure: SystemTime,
    /// The latest failure's metadata.
    pub user_agent: Option<String>,
    pub path: Option<String>,
    /// How long the record is remembered from now.
    pub expires_in: Duration,
    /// How long the identity is locked from now, if it is.
    pub locked_for: Option<Duration>,
}

/// What a store's reset channel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetNotice {
    /// Listening: from now on every reset will be told.
    Listening,
    /// The records and locks of these identities (tags) were deleted.
    Removed(Vec<String>),
}

/// One page of attempt records, and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub records: Vec<AttemptRecord>,
    pub next: Option<String>,
}

/// What `Store::claim_events` claims, for whom.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The consumer group: the deliverers of one webhook, in every process.
    pub group: &'a str,
    /// This process, within the group.
    pub consumer: &'a str,
    pub limit: usize,
    /// After how long an event another consumer claimed and has not acknowledged is taken
    /// over (that consumer's process is taken to be gone).
    pub stale: Duration,
    /// This process's first claim: a group made now starts after the newest event (no event
    /// kept from before the group is delivered); later, a group made again (the events
    /// expired in between) starts at the oldest.
    pub first: bool,
    /// The events' bounds (a stream made to hold the group lives as long as an event).
    pub bounds: AccessLog,
    /// Also forget the group's consumers that hold nothing and were idle for `stale`.
    pub tidy: bool,
}

/// What a claim got: events, and how many events taken over had been trimmed before anyone
/// delivered them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    pub events: Vec<StoredEvent>,
    pub dropped: u64,
}

/// Called during long scans with the number of keys matched so far.
pub type Progress<'a> = &'a mut (dyn FnMut(u64) + Send);

/// Failure counters, lock flags and the access log.
pub trait Store: Send + Sync {
    /// The remaining lock time of each identity (`None`: not locked), in order, then of the
    /// spraying lock of `spraying` (an IP's identity) when given. Reads only.
    fn lock_states(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> impl Future<Output = Result<Vec<Option<Duration>>>> + Send;

    /// Failures and lock of each identity, in order, then the distinct usernames and the lock
    /// of the spraying of `spraying` (an IP's identity) when given. Reads only.
    fn peek(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> impl Future<Output = Result<Vec<IdentityState>>> + Send;

    /// As `peek`, with as each lock (the spraying lock too) the longer of the lock and its
    /// would-be lock (see `FailureRule::observe`): what a policy in observe mode reads, every
    /// lock that enforcing would refuse on. Reads only.
    fn peek_observed(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> impl Future<Output = Result<Vec<IdentityState>>> + Send;

    /// Adds one failure to each identity under its rule (`rules`, in order: locking at the
    /// limit, renewing present locks), counts `spraying` (its member, then its lock as an
    /// identity's at its limit) and appends `log`; answers each identity's new state, then the
    /// spraying count's. A `refused` attempt was refused on locks read before: an identity (or
    /// IP) reset since (see `Keyspace::reset_marker`) does not count it.
    fn record_failures(
        &self,
        identities: &[Identity],
        rules: &[FailureRule],
        attempt: &Attempt,
        refused: bool,
        log: Option<LogAppend<'_>>,
        spraying: Option<SprayingCount<'_>>,
    ) -> impl Future<Output = Result<Vec<IdentityState>>> + Send;

    /// Records coalesced refusals (`fail.lua` with a count per identity) and appends `logs`;
    /// answers each identity's new state. One round trip.
    fn record_refusals(
        &self,
        refusals: &[Refusals],
        logs: &[LogAppend<'_>],
    ) -> impl Future<Output = Result<Vec<IdentityState>>> + Send;

    /// Calls `on_notice` with `Listening`, then with every reset of any process sharing this
    /// store, until the channel fails (the error) or the store goes away.
    fn watch_resets(
        &self,
        on_notice: &(dyn Fn(ResetNotice) + Send + Sync),
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes the identities' records and locks (with `spraying`, an IP's identity's spraying
    /// count and lock too) and appends `log`; answers how many of the identities had anything
    /// to delete. Tells the reset channel.
    fn clear(
        &self,
        identities: &[Identity],
        spraying: bool,
        log: Option<LogAppend<'_>>,
    ) -> impl Future<Output = Result<u64>> + Send;

    fn append_log(&self, log: LogAppend<'_>) -> impl Future<Output = Result<()>> + Send;

    /// Merges each record into its identity's, atomically per record: the higher count, the
    /// earlier first and the later latest failure (with the later one's metadata), the later
    /// end of the record and of the lock; nothing is lowered or shortened, so importing the
    /// same records again changes nothing. Answers each identity's state (`lock_started`: the
    /// import set a lock where none was). One round trip.
    fn import_records(
        &self,
        records: &[ImportedRecord],
    ) -> impl Future<Output = Result<Vec<IdentityState>>> + Send;

    /// The attempt records `target` selects, most recent failure first.
    fn list(&self, target: &Target) -> impl Future<Output = Result<Vec<AttemptRecord>>> + Send;

    /// The records of these identities, those that exist, in order: what a detail page of
    /// one record reads, without a scan. One round trip per 500 identities.
    fn records(
        &self,
        identities: &[Identity],
    ) -> impl Future<Output = Result<Vec<AttemptRecord>>> + Send;

    /// About `size` of the records `target` selects, from `cursor` (a previous page's `next`,
    /// or the start), in no particular order across pages: the store's own order, which stays
    /// fast over millions of records.
    fn page(
        &self,
        target: &Target,
        cursor: Option<&str>,
        size: usize,
    ) -> impl Future<Output = Result<Page>> + Send;

    /// Deletes (or with `dry_run` only counts) the attempt records `target` selects, locks
    /// included, and the spraying counts and locks of the IPs it selects; answers how many
    /// records (an IP's spraying is its record's). Tells the reset channel.
    fn remove(
        &self,
        target: &Target,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Up to `limit` access-log entries matching `filter`, newest first, none older than
    /// `max_age`.
    fn logs(
        &self,
        filter: &LogFilter,
        limit: usize,
        max_age: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<LogEntry>>> + Send;

    /// Deletes access-log entries at least `age` old; answers how many.
    fn trim_logs(&self, age: Duration) -> impl Future<Output = Result<u64>> + Send;

    /// Appends `events`, each kept within `bounds` (retention and size, as the access log's),
    /// and schedules the end of each lockout started among them (see `end_lockouts`). One
    /// round trip.
    fn append_events(
        &self,
        events: &[Event],
        bounds: AccessLog,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Up to `limit` events after `since`, oldest first (in `EventId` order), each shard's
    /// being the first of its events after the cursor's position there.
    fn events(
        &self,
        since: &EventCursor,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;

    /// Appends a `lockout_expired` event (within `bounds`) for each lock whose start was
    /// appended as an event and that has run out since, unreset; at most `limit` per call, and
    /// each once, however many processes share the store and call this at once. Answers how
    /// many.
    fn end_lockouts(
        &self,
        bounds: AccessLog,
        limit: usize,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The scopes of this keyspace that may have lock ends to tell (see `end_lockouts`), in a
    /// stable order: those after the first `offset`, at most `limit`. Every scope whose lock
    /// start was appended as an event is among them until its latest lock has ended.
    fn lock_end_scopes(
        &self,
        offset: usize,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Events for one consumer of a group (see `Claim`), oldest first within a shard: each
    /// event goes to one consumer of the group, whichever process asks first.
    fn claim_events(&self, claim: Claim<'_>) -> impl Future<Output = Result<Claimed>> + Send;

    /// Tells `group` that these claimed events are done with (delivered, or given up on).
    fn acknowledge_events(
        &self,
        group: &str,
        events: &[StoredEvent],
    ) -> impl Future<Output = Result<()>> + Send;

    /// The newest `limit` events, newest first.
    fn recent_events(&self, limit: usize) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;

    /// When the device tokens of `username` were last revoked (ms since the Unix epoch:
    /// tokens issued before are void), while the revocation is kept. Reads only: a
    /// login sends it at once with its identities' reads.
    fn devices_revoked(&self, username: &str) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Voids the device tokens of `usernames` issued before `at` (ms since the Unix epoch),
    /// kept for `ttl` (the longest a token lives). One round trip.
    fn revoke_devices(
        &self,
        usernames: &[String],
        at: u64,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Marks the unlock token `id` used, remembered for `ttl` (as long as it is valid);
    /// answers whether it was not used before: of callers at once, exactly one gets true.
    fn use_unlock_token(
        &self,
        id: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;
}
