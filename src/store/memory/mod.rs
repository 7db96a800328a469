//! The in-process store: the Redis store's behaviour (the same counts, locks, expiries, resets
//! and access log, `scripts/fail.lua` rule for rule) in this process's memory, for a single
//! process that runs without a Redis. State is lost when the process ends.
//!
//! Expiry costs no sweep over every record: records wait in two ordered sets, the locked ones
//! by the end of their lock and the others by the end of their cool-off, and each call first
//! takes from their fronts what has ended. The same sets give the eviction order when the
//! store holds `max_identities` records and a new identity comes: the unlocked record nearest
//! its end goes first, and a lock only when no unlocked record is left (the lock nearest its
//! end). Time comes from a `Clock`, so that tests move it instead of waiting.
//!
//! Each keyspace (the configured prefix, and each scope under it) is a space of its own, as its
//! keys are apart in Redis, with its own records, access log and reset channel; the bounds
//! (`max_identities`, `max_log_entries`, `max_bytes`, see `bytes`) and the eviction order hold
//! over all of them, and at most `MAX_SPACES` exist.
//!
//! Here: the store, its state's shape and the `Store` impl; the state's work by idea in
//! `spaces` (keyspaces, expiry), `records` (counting, imports, locks, eviction), `spray_counts`
//! (IPs' password spraying), `lock_ends`, `logs` (access log and events), `stamps` (device
//! revocations, unlock tokens used), `bytes` (what each costs) and `selection`; `clock`.

mod bytes;
mod clock;
mod lock_ends;
mod logs;
mod records;
mod selection;
mod spaces;
mod spray_counts;
mod stamps;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

use bytes::Accounted;
use spaces::Spaces;

use super::{
    Claim, Claimed, FailureRule, ImportedRecord, LogAppend, Page, Progress, Refusals, ResetNotice,
    SprayingCount, Store,
};
use crate::attempt::Attempt;
use crate::error::{Error, Result};
use crate::event::{Event, EventCursor, EventId, EventKind, StoredEvent};
use crate::identity::Identity;
use crate::keys::Keyspace;
use crate::policy::AccessLog;
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter};
use crate::spraying;
use crate::target::Target;

/// Reset notices a slow listener may fall behind by before it must start over.
const NOTICE_BACKLOG: usize = 1024;

/// Keyspaces (the prefix and its scopes) one store holds at most.
pub const MAX_SPACES: usize = 1024;

pub use clock::{Clock, ManualClock, SystemClock};

/// A `Store` in this process's memory, on one keyspace. Clones, and stores of other keyspaces
/// made by `with_keys`, share it.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    keys: Keyspace,
}

struct Shared {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// A keyspace's ID in `State::spaces` (never reused).
type SpaceId = u64;

/// An identity's tag (`Identity::tag`), shared by its space's map and the order of ends.
type Tag = Arc<str>;

/// What an outage left in the store (see `MemoryStore::leftovers`): the failures counted in
/// one keyspace, as refusals to record elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub keys: Keyspace,
    pub refusals: Vec<Refusals>,
}

/// Every keyspace's records, and the store-wide order of their ends and bounds.
struct State {
    max_identities: usize,
    max_log_entries: usize,
    /// Bytes of records, log entries and events (see `bytes`), in all spaces, at most.
    max_bytes: usize,
    bytes: usize,
    /// Records in all spaces.
    identities: usize,
    /// Log entries and events in all spaces.
    log_entries: usize,
    /// The latest event's ID (ms, sequence): IDs only grow, as a stream's.
    last_event: (u64, u64),
    /// Unlocked records by the end of their cool-off, then space and tag.
    counting: BTreeSet<(Instant, SpaceId, Tag)>,
    /// Locked records by the end of their lock, then space and tag.
    locked: BTreeSet<(Instant, SpaceId, Tag)>,
    /// Reset markers in order of end (every marker lives `RESET_GUARD`, so the order of ends
    /// is the order of resets).
    marker_ends: VecDeque<(Instant, SpaceId, Tag)>,
    /// Lockout counts (repeat offenders) by the end of their memory, then space and tag; as
    /// many as `max_identities`, the one nearest its end evicted first.
    lockout_ends: BTreeSet<(Instant, SpaceId, Tag)>,
    /// Stamps (see `stamps`) by their end, then space and key.
    stamp_ends: BTreeSet<(Instant, SpaceId, Tag)>,
    /// IPs' spraying counts by the end of their last part, then space and tag; as many as
    /// `max_identities`, the one nearest its end evicted first.
    spraying_ends: BTreeSet<(Instant, SpaceId, Tag)>,
    spaces: Spaces,
    /// The next space's ID.
    next_space: SpaceId,
    /// By keyspace prefix.
    space_ids: HashMap<String, SpaceId>,
}

/// One keyspace's records, reset markers, access log and reset channel.
struct Space {
    keys: Keyspace,
    /// By tag. Boxed: a map keeps buckets to spare, and an empty bucket then costs a pointer,
    /// not a record.
    records: HashMap<Tag, Box<Record>>,
    /// Reset markers (see `Keyspace::reset_marker`): tag to end.
    markers: HashMap<Tag, Instant>,
    /// Lockouts started within the lockout memory (repeat offenders): tag to count and end.
    lockouts: HashMap<Tag, (u64, Instant)>,
    /// Values with an end (see `stamps`): key to value and end.
    stamps: HashMap<Tag, (u64, Instant)>,
    /// IPs' password spraying, by the tag of the IP's identity.
    sprayings: HashMap<Tag, spray_counts::Spraying>,
    /// Oldest first.
    log: VecDeque<(Instant, LogEntry)>,
    /// Oldest first.
    events: VecDeque<(Instant, StoredEvent)>,
    /// When the newest log entry or event runs past its retention: after it, they are
    /// entries no one may read (see `Store::logs`), and the space may be dropped.
    kept_until: Option<Instant>,
    /// Locks told as started, by their end (see `Store::end_lockouts`), and each tag's end.
    lock_ends: BTreeSet<(Instant, Tag)>,
    lock_end_of: HashMap<Tag, Instant>,
    /// Consumer groups (see `Store::claim_events`): the ID of the last event each claimed.
    /// This process is the only consumer, so a claim is delivered as soon as it is made.
    claimed_up_to: HashMap<String, (u64, u64)>,
    notices: broadcast::Sender<Vec<String>>,
}

/// Failures to add to one identity, as `fail.lua` takes them.
struct Failure<'a> {
    rule: &'a FailureRule,
    count: u64,
    /// Refused on a lock read before (or coalesced by a lock cache): dropped while the
    /// identity's reset marker lives.
    refused: bool,
    user_agent: Option<&'a str>,
    path: Option<&'a str>,
}

/// An attempt record; its identity is its tag's (`Identity::from_tag`).
struct Record {
    /// The rule of its last failure.
    rule: FailureRule,
    failures: u64,
    /// Of `failures`, those already written elsewhere (see `MemoryStore::leftovers`).
    written: u64,
    first_failure: SystemTime,
    last_failure: SystemTime,
    user_agent: Option<Box<str>>,
    path: Option<Box<str>>,
    /// When the record goes, unless a lock keeps it.
    ends: Instant,
    lock_ends: Option<Instant>,
    /// When the would-be lock observe mode set ends (see `FailureRule::observe`): it refuses
    /// nothing, and the record lives until then unless a later failure's cool-off ends it
    /// sooner. Past, it is none.
    would_lock_ends: Option<Instant>,
}

impl Record {
    /// Its place in `counting` or `locked`.
    fn order(&self, space: SpaceId, tag: &Tag) -> (bool, (Instant, SpaceId, Tag)) {
        match self.lock_ends {
            Some(lock_ends) => (true, (lock_ends, space, tag.clone())),
            None => (false, (self.ends, space, tag.clone())),
        }
    }

    /// What is left of its would-be lock at `now`, if anything.
    fn would_lock_remaining(&self, now: Instant) -> Option<Duration> {
        self.would_lock_ends
            .filter(|ends| *ends > now)
            .map(|ends| ends - now)
    }
}

impl MemoryStore {
    /// A store of at most `max_identities` records in all its keyspaces, on the system's
    /// clocks, in keyspace `lockout` (see `with_keys`); its access logs are bounded by their
    /// policies (and see `with_max_log_entries`).
    pub fn new(max_identities: usize) -> Self {
        Self::with_clock(max_identities, Arc::new(SystemClock))
    }

    pub fn with_clock(max_identities: usize, clock: Arc<dyn Clock>) -> Self {
        let max_identities = max_identities.max(1);
        let state = State {
            max_identities,
            max_log_entries: usize::MAX,
            max_bytes: usize::MAX,
            bytes: 0,
            identities: 0,
            log_entries: 0,
            last_event: (0, 0),
            counting: BTreeSet::new(),
            locked: BTreeSet::new(),
            marker_ends: VecDeque::new(),
            lockout_ends: BTreeSet::new(),
            stamp_ends: BTreeSet::new(),
            spraying_ends: BTreeSet::new(),
            spaces: Spaces::default(),
            next_space: 0,
            space_ids: HashMap::new(),
        };
        let keys = Keyspace::new("lockout").expect("a valid prefix");
        MemoryStore {
            shared: Arc::new(Shared {
                clock,
                state: Mutex::new(state),
            }),
            keys,
        }
    }

    /// The same store, holding at most `max_log_entries` access-log entries in all its
    /// keyspaces (each keyspace's policy bounds its own as well); past it, the oldest entry of
    /// the keyspace that appends goes.
    pub fn with_max_log_entries(self, max_log_entries: usize) -> Self {
        self.lock().max_log_entries = max_log_entries.max(1);
        self
    }

    /// The same store, holding at most about `max_bytes` bytes of records, access-log entries and
    /// events in all its keyspaces (as `bytes` accounts them). Past it, log entries and events
    /// go first, oldest first (a record needs room: in any keyspace; an entry: its own
    /// keyspace's), then records in the order of `max_identities`.
    pub fn with_max_bytes(self, max_bytes: usize) -> Self {
        self.lock().max_bytes = max_bytes;
        self
    }

    /// The bytes it accounts for now (see `with_max_bytes`).
    pub fn held_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The same store, on the records of `keys` (another prefix, or a scope). Its space is made
    /// at its first write (see `spaces`).
    pub fn with_keys(&self, keys: Keyspace) -> Self {
        MemoryStore {
            shared: self.shared.clone(),
            keys,
        }
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    /// The failures not yet written elsewhere of every keyspace that holds any, each
    /// identity's under the rule of its latest: what an instance counted alone while Redis was
    /// away, to be written there (see `written`). The records stay, locks and all.
    pub fn leftovers(&self) -> Vec<Leftover> {
        let (state, _) = self.state();
        let wall = self.shared.clock.wall();
        state
            .spaces
            .iter()
            .map(|space| Leftover {
                keys: space.keys.clone(),
                refusals: space
                    .records
                    .iter()
                    .filter(|(_, record)| record.failures > record.written)
                    .map(|(tag, record)| Refusals {
                        identity: identity_of(tag),
                        rule: record.rule,
                        count: record.failures - record.written,
                        counted_ago: wall.duration_since(record.last_failure).unwrap_or_default(),
                        user_agent: record.user_agent.as_deref().map(String::from),
                        path: record.path.as_deref().map(String::from),
                    })
                    .collect(),
            })
            .filter(|leftover| !leftover.refusals.is_empty())
            .collect()
    }

    /// Takes these leftovers (see `leftovers`) as written elsewhere: the records keep their
    /// counts and locks, and only failures counted after them are left over.
    pub fn written(&self, refusals: &[Refusals]) {
        let (mut state, _) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return;
        };
        for refusal in refusals {
            if let Some(record) = state.spaces[space].records.get_mut(refusal.identity.tag()) {
                // At most its count: a record that ended and began again meanwhile is new.
                record.written = (record.written + refusal.count).min(record.failures);
            }
        }
    }

    /// Empties every keyspace: records, reset markers, lockout counts, spraying counts, stamps
    /// and access logs.
    pub fn forget_all(&self) {
        let mut state = self.lock();
        let State {
            identities,
            log_entries,
            bytes,
            counting,
            locked,
            marker_ends,
            lockout_ends,
            stamp_ends,
            spraying_ends,
            spaces,
            ..
        } = &mut *state;
        (*identities, *log_entries, *bytes) = (0, 0, 0);
        counting.clear();
        locked.clear();
        marker_ends.clear();
        lockout_ends.clear();
        stamp_ends.clear();
        spraying_ends.clear();
        for space in spaces.iter_mut() {
            space.records.clear();
            space.markers.clear();
            space.lockouts.clear();
            space.stamps.clear();
            space.sprayings.clear();
            space.log.clear();
            space.events.clear();
            space.lock_ends.clear();
            space.lock_end_of.clear();
            space.claimed_up_to.clear();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("not poisoned")
    }

    /// The state, with what has ended by now taken out.
    fn state(&self) -> (MutexGuard<'_, State>, Instant) {
        let now = self.shared.clock.instant();
        let mut state = self.lock();
        state.expire(now);
        (state, now)
    }

    /// `failures` and `spraying` (of `refused` attempts or not) at one moment, then `logs`;
    /// each identity's new state, then the spraying count's.
    fn record<'a>(
        &self,
        failures: impl Iterator<Item = (&'a Identity, Failure<'a>)>,
        spraying: Option<(SprayingCount<'_>, bool)>,
        logs: &[LogAppend<'_>],
    ) -> Result<Vec<IdentityState>> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let space = state.space(&self.keys, now)?;
        let mut states: Vec<IdentityState> = failures
            .map(|(identity, failure)| state.fail(space, identity, failure, (now, wall)))
            .collect();
        if let Some((count, refused)) = spraying {
            states.push(state.spray(space, count, refused, now));
        }
        for log in logs {
            state.append(space, log, now, wall);
        }
        Ok(states)
    }

    /// Tells this keyspace's listeners that `tags` were reset.
    fn announce(&self, state: &State, tags: Vec<String>) {
        if !tags.is_empty() {
            // No receiver: no lock cache listens; nothing to tell.
            if let Some(space) = state.space_of(&self.keys) {
                let _ = state.spaces[space].notices.send(tags);
            }
        }
    }
}

/// The identity of a record's tag: tags are made by `Identity::tag`, so they decode.
fn identity_of(tag: &str) -> Identity {
    Identity::from_tag(tag).expect("a tag made by Identity::tag")
}

impl Store for MemoryStore {
    async fn lock_states(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<Option<Duration>>> {
        let states = self.peek(identities, spraying).await?;
        Ok(states.iter().map(|state| state.lock_remaining).collect())
    }

    async fn peek(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<IdentityState>> {
        let (state, now) = self.state();
        let space = state.space_of(&self.keys);
        let states = identities
            .iter()
            .map(|identity| state.state_of(space, identity.tag(), now));
        let spraying = spraying.map(|ip| state.spraying_state(space, ip.tag(), now));
        Ok(states.chain(spraying).collect())
    }

    async fn peek_observed(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<IdentityState>> {
        let (state, now) = self.state();
        let space = state.space_of(&self.keys);
        let states = identities
            .iter()
            .map(|identity| state.observed_state_of(space, identity.tag(), now));
        let spraying = spraying.map(|ip| state.observed_spraying_state(space, ip.tag(), now));
        Ok(states.chain(spraying).collect())
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
        let failures = identities.iter().zip(rules).map(|(identity, rule)| {
            let failure = Failure {
                rule,
                count: 1,
                refused,
                user_agent: attempt.user_agent.as_deref(),
                path: attempt.path.as_deref(),
            };
            (identity, failure)
        });
        let spraying = spraying.map(|count| (count, refused));
        self.record(failures, spraying, log.as_slice())
    }

    async fn record_refusals(
        &self,
        refusals: &[Refusals],
        logs: &[LogAppend<'_>],
    ) -> Result<Vec<IdentityState>> {
        let failures = refusals.iter().map(|refusal| {
            let failure = Failure {
                rule: &refusal.rule,
                count: refusal.count,
                refused: true,
                user_agent: refusal.user_agent.as_deref(),
                path: refusal.path.as_deref(),
            };
            (&refusal.identity, failure)
        });
        self.record(failures, None, logs)
    }

    async fn watch_resets(&self, on_notice: &(dyn Fn(ResetNotice) + Send + Sync)) -> Result<()> {
        let mut notices = {
            let (mut state, now) = self.state();
            let space = state.space(&self.keys, now)?;
            state.spaces[space].notices.subscribe()
        };
        on_notice(ResetNotice::Listening);
        loop {
            match notices.recv().await {
                Ok(tags) => on_notice(ResetNotice::Removed(tags)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Err(Error::Channel(format!(
                        "the reset channel fell {missed} notices behind"
                    )))
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    async fn clear(
        &self,
        identities: &[Identity],
        with_spraying: bool,
        log: Option<LogAppend<'_>>,
    ) -> Result<u64> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let space = state.space(&self.keys, now)?;
        let mut removed = 0;
        for identity in identities {
            state.mark_reset(space, identity.tag(), now);
            state.forget_lock_end(space, identity.tag());
            let record = state.unlink(space, identity.tag()).is_some();
            let lockouts = state.forget_lockouts(space, identity.tag());
            let sprayed = with_spraying && spraying::is_counted(identity) && {
                state.forget_lock_end(space, &spraying::subject(identity));
                state.forget_spraying(space, identity.tag())
            };
            removed += u64::from(record || lockouts || sprayed);
        }
        if let Some(log) = log {
            state.append(space, &log, now, wall);
        }
        let tags = identities.iter().map(|i| i.tag().to_string()).collect();
        self.announce(&state, tags);
        Ok(removed)
    }

    async fn append_log(&self, log: LogAppend<'_>) -> Result<()> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let space = state.space(&self.keys, now)?;
        state.append(space, &log, now, wall);
        Ok(())
    }

    async fn import_records(&self, records: &[ImportedRecord]) -> Result<Vec<IdentityState>> {
        let (mut state, now) = self.state();
        let space = state.space(&self.keys, now)?;
        Ok(records
            .iter()
            .map(|record| state.import(space, record, now))
            .collect())
    }

    async fn list(&self, target: &Target) -> Result<Vec<AttemptRecord>> {
        let (state, now) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        let mut records: Vec<AttemptRecord> = state
            .selected(space, target)
            .iter()
            .filter_map(|tag| state.record(space, tag, now))
            .collect();
        records.sort_by_key(|record| std::cmp::Reverse(record.last_failure));
        Ok(records)
    }

    async fn records(&self, identities: &[Identity]) -> Result<Vec<AttemptRecord>> {
        let (state, now) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        Ok(identities
            .iter()
            .filter_map(|identity| state.record(space, identity.tag(), now))
            .collect())
    }

    async fn page(&self, target: &Target, cursor: Option<&str>, size: usize) -> Result<Page> {
        let (state, now) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        let mut tags: Vec<String> = state
            .selected(space, target)
            .into_iter()
            .filter(|tag| cursor.is_none_or(|after| tag.as_str() > after))
            .collect();
        tags.sort();
        let more = tags.len() > size;
        tags.truncate(size.max(1));
        let next = if more { tags.last().cloned() } else { None };
        let mut records: Vec<AttemptRecord> = tags
            .iter()
            .filter_map(|tag| state.record(space, tag, now))
            .collect();
        records.sort_by_key(|record| std::cmp::Reverse(record.last_failure));
        Ok(Page { records, next })
    }

    async fn remove(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64> {
        let (mut state, now) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            progress(0);
            return Ok(0);
        };
        let tags = state.selected_for_removal(space, target);
        progress(tags.len() as u64);
        if dry_run {
            return Ok(tags.len() as u64);
        }
        for tag in &tags {
            state.mark_reset(space, tag, now);
            state.forget_lock_end(space, tag);
            state.unlink(space, tag);
            state.forget_lockouts(space, tag);
            if state.forget_spraying(space, tag) {
                state.forget_lock_end(space, &spraying::subject(&identity_of(tag)));
            }
        }
        let removed = tags.len() as u64;
        self.announce(&state, tags);
        Ok(removed)
    }

    async fn logs(
        &self,
        filter: &LogFilter,
        limit: usize,
        max_age: Option<Duration>,
    ) -> Result<Vec<LogEntry>> {
        let (state, now) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        let oldest = max_age.and_then(|age| now.checked_sub(age));
        Ok(state.spaces[space]
            .log
            .iter()
            .rev()
            .take_while(|(time, _)| oldest.is_none_or(|oldest| *time >= oldest))
            .map(|(_, entry)| entry)
            .filter(|entry| filter.matches(entry))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn append_events(&self, events: &[Event], bounds: AccessLog) -> Result<()> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let space = state.space(&self.keys, now)?;
        for event in events {
            state.append_event(space, event, bounds, (now, wall));
            if let (EventKind::LockoutStarted, Some(lockout)) = (event.kind, event.lockout) {
                state.schedule_lock_end(space, &event.subject, now + lockout);
            }
        }
        Ok(())
    }

    async fn end_lockouts(&self, bounds: AccessLog, limit: usize) -> Result<u64> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        let ended = state.take_lock_ends(space, now, limit);
        for tag in &ended {
            state.append_event(space, &Event::expired(tag.clone()), bounds, (now, wall));
        }
        Ok(ended.len() as u64)
    }

    async fn lock_end_scopes(&self, offset: usize, limit: usize) -> Result<Vec<String>> {
        let (state, _) = self.state();
        let mut scopes: Vec<String> = state
            .spaces
            .iter()
            .filter(|space| !space.lock_ends.is_empty())
            .filter(|space| space.keys.lock_end_scopes_key() == self.keys.lock_end_scopes_key())
            .filter_map(|space| space.keys.scope().map(String::from))
            .collect();
        scopes.sort();
        Ok(scopes.into_iter().skip(offset).take(limit).collect())
    }

    async fn events(&self, since: &EventCursor, limit: usize) -> Result<Vec<StoredEvent>> {
        let (state, _) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        // Kept in ID order, each shard's too (one sequence for them all).
        Ok(state.spaces[space]
            .events
            .iter()
            .map(|(_, stored)| stored)
            .filter(|stored| EventId::parse(&stored.id).is_some_and(|id| since.precedes(&id)))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn claim_events(&self, claim: Claim<'_>) -> Result<Claimed> {
        let (mut state, _) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        let newest = state.last_event;
        let space = &mut state.spaces[space];
        let after = *space
            .claimed_up_to
            .entry(claim.group.to_string())
            .or_insert(if claim.first { newest } else { (0, 0) });
        let events: Vec<StoredEvent> = space
            .events
            .iter()
            .map(|(_, stored)| stored)
            .filter(|stored| EventId::parse(&stored.id).is_some_and(|id| (id.ms, id.seq) > after))
            .take(claim.limit)
            .cloned()
            .collect();
        if let Some(last) = events.last() {
            let last = EventId::parse(&last.id).expect("an ID this store made");
            space
                .claimed_up_to
                .insert(claim.group.to_string(), (last.ms, last.seq));
        }
        Ok(Claimed { events, dropped: 0 })
    }

    async fn acknowledge_events(&self, _group: &str, _events: &[StoredEvent]) -> Result<()> {
        Ok(())
    }

    async fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let (state, _) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        Ok(state.spaces[space]
            .events
            .iter()
            .rev()
            .take(limit)
            .map(|(_, stored)| stored.clone())
            .collect())
    }

    async fn trim_logs(&self, age: Duration) -> Result<u64> {
        let (mut state, now) = self.state();
        let Some(space) = state.space_of(&self.keys) else {
            return Ok(Default::default());
        };
        let log = &mut state.spaces[space].log;
        let (mut removed, mut freed) = (0, 0);
        // Entries at least `age` old; none when the store is younger than `age`.
        if let Some(newest_removed) = now.checked_sub(age) {
            log.retain(|(time, entry)| {
                let kept = *time > newest_removed;
                if !kept {
                    removed += 1;
                    freed += entry.bytes();
                }
                kept
            });
        }
        state.log_entries -= removed;
        state.bytes -= freed;
        Ok(removed as u64)
    }

    async fn devices_revoked(&self, username: &str) -> Result<Option<u64>> {
        let (state, _) = self.state();
        let space = state.space_of(&self.keys);
        Ok(state.stamp_of(space, &self.keys.devices_revoked_key(username)))
    }

    async fn revoke_devices(&self, usernames: &[String], at: u64, ttl: Duration) -> Result<()> {
        let (mut state, now) = self.state();
        let space = state.space(&self.keys, now)?;
        for username in usernames {
            state.stamp(
                space,
                &self.keys.devices_revoked_key(username),
                at,
                now + ttl,
            )?;
        }
        Ok(())
    }

    async fn use_unlock_token(&self, id: &str, ttl: Duration) -> Result<bool> {
        let (mut state, now) = self.state();
        let space = state.space(&self.keys, now)?;
        state.stamp_new(space, &self.keys.unlock_key(id), 1, now + ttl)
    }
}
