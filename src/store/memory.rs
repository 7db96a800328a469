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
//! (`max_identities`, `max_log_entries`) and the eviction order hold over all of them, and at
//! most `MAX_SPACES` exist.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

use super::{Claim, Claimed, FailureRule, LogAppend, Page, Progress, Refusals, ResetNotice, Store};
use crate::attempt::Attempt;
use crate::error::{Error, Result};
use crate::event::{self, Event, EventKind, StoredEvent};
use crate::identity::Identity;
use crate::keys::{Keyspace, RESET_GUARD};
use crate::policy::AccessLog;
use crate::record::{AttemptRecord, IdentityState, LogEntry, LogFilter};
use crate::target::Target;

/// Reset notices a slow listener may fall behind by before it must start over.
const NOTICE_BACKLOG: usize = 1024;

/// Keyspaces (the prefix and its scopes) one store holds at most.
pub const MAX_SPACES: usize = 1024;

/// Where the store's time comes from.
pub trait Clock: Send + Sync + 'static {
    /// For expiry: never goes back.
    fn instant(&self) -> Instant;
    /// For the times shown: first and last failure, log entries.
    fn wall(&self) -> SystemTime;
}

/// The system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told: for tests of cool-offs and lock ends.
#[derive(Debug)]
pub struct ManualClock {
    start: (Instant, SystemTime),
    elapsed: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            start: (Instant::now(), SystemTime::now()),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().expect("not poisoned") += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().expect("not poisoned")
    }
}

impl Clock for ManualClock {
    fn instant(&self) -> Instant {
        self.start.0 + self.elapsed()
    }

    fn wall(&self) -> SystemTime {
        self.start.1 + self.elapsed()
    }
}

/// A `Store` in this process's memory, on one keyspace. Clones, and stores of other keyspaces
/// made by `with_keys`, share it.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    space: SpaceId,
    keys: Keyspace,
}

struct Shared {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// A keyspace's index in `State::spaces`.
type SpaceId = usize;

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
    spaces: Vec<Space>,
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
    /// Oldest first.
    log: VecDeque<(Instant, LogEntry)>,
    /// Oldest first.
    events: VecDeque<(Instant, StoredEvent)>,
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
    first_failure: SystemTime,
    last_failure: SystemTime,
    user_agent: Option<Box<str>>,
    path: Option<Box<str>>,
    /// When the record goes, unless a lock keeps it.
    ends: Instant,
    lock_ends: Option<Instant>,
}

impl Record {
    /// Its place in `counting` or `locked`.
    fn order(&self, space: SpaceId, tag: &Tag) -> (bool, (Instant, SpaceId, Tag)) {
        match self.lock_ends {
            Some(lock_ends) => (true, (lock_ends, space, tag.clone())),
            None => (false, (self.ends, space, tag.clone())),
        }
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
        let mut state = State {
            max_identities,
            max_log_entries: usize::MAX,
            identities: 0,
            log_entries: 0,
            last_event: (0, 0),
            counting: BTreeSet::new(),
            locked: BTreeSet::new(),
            marker_ends: VecDeque::new(),
            lockout_ends: BTreeSet::new(),
            spaces: Vec::new(),
            space_ids: HashMap::new(),
        };
        let keys = Keyspace::new("lockout").expect("a valid prefix");
        let space = state.space(&keys).expect("the first space");
        MemoryStore {
            shared: Arc::new(Shared {
                clock,
                state: Mutex::new(state),
            }),
            space,
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

    /// The same store, on the records of `keys` (another prefix, or a scope). Fails when the
    /// store already holds `MAX_SPACES` keyspaces.
    pub fn with_keys(&self, keys: Keyspace) -> Result<Self> {
        Ok(MemoryStore {
            space: self.lock().space(&keys)?,
            shared: self.shared.clone(),
            keys,
        })
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    /// The failures of every keyspace that holds any, each under the rule of its latest,
    /// without removing them: what an instance counted alone while Redis was away, to be
    /// written there (see `forget`).
    pub fn leftovers(&self) -> Vec<Leftover> {
        let (state, _) = self.state();
        state
            .spaces
            .iter()
            .filter(|space| !space.records.is_empty())
            .map(|space| Leftover {
                keys: space.keys.clone(),
                refusals: space
                    .records
                    .iter()
                    .map(|(tag, record)| Refusals {
                        identity: identity_of(tag),
                        rule: record.rule,
                        count: record.failures,
                        user_agent: record.user_agent.as_deref().map(String::from),
                        path: record.path.as_deref().map(String::from),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Drops the records of `identities`, as if they had never failed: no reset marker, no
    /// reset notice (their failures were moved elsewhere, see `leftovers`).
    pub fn forget(&self, identities: &[Identity]) {
        let (mut state, _) = self.state();
        for identity in identities {
            state.unlink(self.space, identity.tag());
        }
    }

    /// Empties every keyspace: records, reset markers, lockout counts and access logs.
    pub fn forget_all(&self) {
        let mut state = self.lock();
        let State {
            identities,
            log_entries,
            counting,
            locked,
            marker_ends,
            lockout_ends,
            spaces,
            ..
        } = &mut *state;
        (*identities, *log_entries) = (0, 0);
        counting.clear();
        locked.clear();
        marker_ends.clear();
        lockout_ends.clear();
        for space in spaces {
            space.records.clear();
            space.markers.clear();
            space.lockouts.clear();
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

    /// `failures` at one moment, then `logs`; each identity's new state.
    fn record<'a>(
        &self,
        failures: impl Iterator<Item = (&'a Identity, Failure<'a>)>,
        logs: &[LogAppend<'_>],
    ) -> Vec<IdentityState> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let states = failures
            .map(|(identity, failure)| state.fail(self.space, identity, failure, (now, wall)))
            .collect();
        for log in logs {
            state.append(self.space, log, now, wall);
        }
        states
    }

    /// Tells this keyspace's listeners that `tags` were reset.
    fn announce(&self, state: &State, tags: Vec<String>) {
        if !tags.is_empty() {
            // No receiver: no lock cache listens; nothing to tell.
            let _ = state.spaces[self.space].notices.send(tags);
        }
    }
}

impl State {
    /// The space of `keys`, made at its first use.
    fn space(&mut self, keys: &Keyspace) -> Result<SpaceId> {
        if let Some(&space) = self.space_ids.get(keys.prefix()) {
            return Ok(space);
        }
        if self.spaces.len() >= MAX_SPACES {
            return Err(Error::invalid(format!(
                "scope: the in-process store holds at most {MAX_SPACES} scopes"
            )));
        }
        self.spaces.push(Space {
            keys: keys.clone(),
            records: HashMap::new(),
            markers: HashMap::new(),
            lockouts: HashMap::new(),
            log: VecDeque::new(),
            events: VecDeque::new(),
            lock_ends: BTreeSet::new(),
            lock_end_of: HashMap::new(),
            claimed_up_to: HashMap::new(),
            notices: broadcast::channel(NOTICE_BACKLOG).0,
        });
        let space = self.spaces.len() - 1;
        self.space_ids.insert(keys.prefix().to_string(), space);
        Ok(space)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((ends, space, tag)) = self.locked.first().cloned() {
            if ends > now {
                break;
            }
            self.locked.pop_first();
            if let Some(record) = self.spaces[space].records.get_mut(&tag) {
                record.lock_ends = None;
                let ends = record.ends.max(now);
                record.ends = ends;
                self.counting.insert((ends, space, tag));
            }
        }
        while let Some((ends, space, tag)) = self.counting.first().cloned() {
            if ends > now {
                break;
            }
            self.counting.pop_first();
            if self.spaces[space].records.remove(&tag).is_some() {
                self.identities -= 1;
            }
        }
        while let Some((ends, _, _)) = self.marker_ends.front() {
            if *ends > now {
                break;
            }
            let (ends, space, tag) = self.marker_ends.pop_front().expect("a front");
            let markers = &mut self.spaces[space].markers;
            if markers.get(&tag) == Some(&ends) {
                markers.remove(&tag);
            }
        }
        while let Some((ends, space, tag)) = self.lockout_ends.first().cloned() {
            if ends > now {
                break;
            }
            self.lockout_ends.pop_first();
            self.spaces[space].lockouts.remove(&tag);
        }
    }

    /// `INCR` and `PEXPIRE` of the identity's lockout count: one more lockout, remembered
    /// until `ends`; answers the count.
    fn count_lockout(&mut self, space: SpaceId, tag: &Tag, ends: Instant) -> u64 {
        let count = match self.spaces[space].lockouts.remove(tag) {
            Some((count, old_end)) => {
                self.lockout_ends.remove(&(old_end, space, tag.clone()));
                count + 1
            }
            None => {
                if self.lockout_ends.len() >= self.max_identities {
                    if let Some((_, space, tag)) = self.lockout_ends.pop_first() {
                        self.spaces[space].lockouts.remove(&tag);
                    }
                }
                1
            }
        };
        self.spaces[space]
            .lockouts
            .insert(tag.clone(), (count, ends));
        self.lockout_ends.insert((ends, space, tag.clone()));
        count
    }

    /// Schedules the end of the identity's lock at `ends` (the new end of one scheduled
    /// before); as many as `max_identities` in a space, the nearest its end dropped first.
    fn schedule_lock_end(&mut self, space: SpaceId, tag: &str, ends: Instant) {
        let space = &mut self.spaces[space];
        let tag = match space.lock_end_of.remove_entry(tag) {
            Some((tag, old_end)) => {
                space.lock_ends.remove(&(old_end, tag.clone()));
                tag
            }
            None => {
                if space.lock_ends.len() >= self.max_identities {
                    if let Some((_, dropped)) = space.lock_ends.pop_first() {
                        space.lock_end_of.remove(&dropped);
                    }
                }
                Tag::from(tag)
            }
        };
        space.lock_end_of.insert(tag.clone(), ends);
        space.lock_ends.insert((ends, tag));
    }

    /// A reset lock is not told as run out.
    fn forget_lock_end(&mut self, space: SpaceId, tag: &str) {
        let space = &mut self.spaces[space];
        if let Some((tag, ends)) = space.lock_end_of.remove_entry(tag) {
            space.lock_ends.remove(&(ends, tag));
        }
    }

    /// Takes up to `limit` scheduled lock ends due by `now` whose lock is gone (rescheduling
    /// those locked again); answers their tags.
    fn take_lock_ends(&mut self, space: SpaceId, now: Instant, limit: usize) -> Vec<String> {
        let mut taken = Vec::new();
        while taken.len() < limit {
            let Some((ends, tag)) = self.spaces[space].lock_ends.first().cloned() else {
                break;
            };
            if ends > now {
                break;
            }
            let lock_ends = self.spaces[space]
                .records
                .get(&tag)
                .and_then(|record| record.lock_ends);
            match lock_ends {
                Some(lock_ends) => self.schedule_lock_end(space, &tag, lock_ends),
                None => {
                    self.forget_lock_end(space, &tag);
                    taken.push(tag.to_string());
                }
            }
        }
        taken
    }

    /// Drops the identity's lockout count; answers whether it had one.
    fn forget_lockouts(&mut self, space: SpaceId, tag: &str) -> bool {
        match self.spaces[space].lockouts.remove_entry(tag) {
            Some((tag, (_, ends))) => {
                self.lockout_ends.remove(&(ends, space, tag));
                true
            }
            None => false,
        }
    }

    fn unlink(&mut self, space: SpaceId, tag: &str) -> Option<(Tag, Box<Record>)> {
        let (tag, record) = self.spaces[space].records.remove_entry(tag)?;
        self.identities -= 1;
        let (locked, place) = record.order(space, &tag);
        if locked {
            self.locked.remove(&place);
        } else {
            self.counting.remove(&place);
        }
        Some((tag, record))
    }

    fn link(&mut self, space: SpaceId, tag: Tag, record: Box<Record>) {
        let (locked, place) = record.order(space, &tag);
        if locked {
            self.locked.insert(place);
        } else {
            self.counting.insert(place);
        }
        self.spaces[space].records.insert(tag, record);
        self.identities += 1;
    }

    /// Room for one more record: the unlocked record nearest its end goes, or else the lock
    /// nearest its end, in whichever keyspace it is.
    fn make_room(&mut self) {
        while self.identities >= self.max_identities {
            let victim = self
                .counting
                .first()
                .or_else(|| self.locked.first())
                .map(|(_, space, tag)| (*space, tag.clone()));
            match victim {
                Some((space, tag)) => {
                    self.unlink(space, &tag);
                }
                None => break,
            }
        }
    }

    fn state_of(&self, space: SpaceId, tag: &str, now: Instant) -> IdentityState {
        match self.spaces[space].records.get(tag) {
            Some(record) => IdentityState {
                failures: record.failures,
                lock_remaining: record.lock_ends.map(|ends| ends - now),
                ..IdentityState::CLEAN
            },
            None => IdentityState::CLEAN,
        }
    }

    /// `fail.lua`: `failure` of `identity` at `now` (`wall` on the wall clock).
    fn fail(
        &mut self,
        space: SpaceId,
        identity: &Identity,
        failure: Failure<'_>,
        (now, wall): (Instant, SystemTime),
    ) -> IdentityState {
        let Failure {
            rule,
            count,
            refused,
            user_agent,
            path,
        } = failure;
        let tag = identity.tag();
        if refused && self.spaces[space].markers.contains_key(tag) {
            return IdentityState::CLEAN;
        }
        let (tag, mut record) = match self.unlink(space, tag) {
            Some((tag, mut record)) => {
                record.failures = record.failures.saturating_add(count);
                record.last_failure = wall;
                record.rule = *rule;
                (tag, record)
            }
            None => {
                self.make_room();
                let record = Box::new(Record {
                    rule: *rule,
                    failures: count,
                    first_failure: wall,
                    last_failure: wall,
                    user_agent: None,
                    path: None,
                    ends: now,
                    lock_ends: None,
                });
                (Tag::from(tag), record)
            }
        };
        if let Some(user_agent) = user_agent {
            record.user_agent = Some(user_agent.into());
        }
        if let Some(path) = path {
            record.path = Some(path.into());
        }
        record.ends = now + rule.cooloff;
        let limit = if rule.lock_out_at_failure {
            u64::from(rule.failure_limit)
        } else {
            0
        };
        let (mut lock_started, mut lockouts) = (false, 0);
        if limit > 0 && record.failures >= limit {
            // A lock that has ended is gone (see `expire`): none there starts a lockout.
            lock_started = record.lock_ends.is_none();
            let duration = match rule.repeat {
                None => rule.lockout_duration,
                Some(repeat) => {
                    lockouts = if lock_started {
                        self.count_lockout(space, &tag, now + repeat.memory)
                    } else {
                        let count = self.spaces[space].lockouts.get(&tag).map(|(n, _)| *n);
                        count.unwrap_or(1)
                    };
                    rule.lockout_for(lockouts)
                }
            };
            record.lock_ends = Some(now + duration);
            record.ends = record.ends.max(now + duration);
        }
        let state = IdentityState {
            failures: record.failures,
            lock_remaining: record.lock_ends.map(|ends| ends - now),
            lock_started,
            lockouts,
        };
        self.link(space, tag, record);
        state
    }

    /// Appends to `space`'s log, then drops its entries past the policy's bounds, and its
    /// oldest while the store holds more than `max_log_entries`.
    fn append(&mut self, space: SpaceId, log: &LogAppend<'_>, now: Instant, wall: SystemTime) {
        let attempt = log.attempt;
        let entries = &mut self.spaces[space].log;
        entries.push_back((
            now,
            LogEntry {
                time: wall,
                ip: attempt.ip,
                username: attempt.username.clone(),
                user_agent: attempt.user_agent.clone(),
                path: attempt.path.clone(),
                outcome: log.outcome,
                count: log.count,
            },
        ));
        self.log_entries += 1;
        keep_within(
            entries,
            log.bounds,
            now,
            (&mut self.log_entries, self.max_log_entries),
        );
    }

    /// Appends `event` to `space`'s events, then drops those past `bounds`, and its oldest
    /// while the store holds more than `max_log_entries` entries and events.
    fn append_event(
        &mut self,
        space: SpaceId,
        event: &Event,
        bounds: AccessLog,
        (now, wall): (Instant, SystemTime),
    ) {
        let ms = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        self.last_event = if ms > self.last_event.0 {
            (ms, 0)
        } else {
            (self.last_event.0, self.last_event.1 + 1)
        };
        let (ms, sequence) = self.last_event;
        let events = &mut self.spaces[space].events;
        events.push_back((
            now,
            StoredEvent {
                id: format!("{ms}-{sequence}"),
                time: wall,
                event: event.clone(),
            },
        ));
        self.log_entries += 1;
        keep_within(
            events,
            bounds,
            now,
            (&mut self.log_entries, self.max_log_entries),
        );
    }

    fn mark_reset(&mut self, space: SpaceId, tag: &str, now: Instant) {
        let ends = now + RESET_GUARD;
        let tag = Tag::from(tag);
        self.spaces[space].markers.insert(tag.clone(), ends);
        self.marker_ends.push_back((ends, space, tag));
    }

    fn record(&self, space: SpaceId, tag: &str, now: Instant) -> Option<AttemptRecord> {
        let record = self.spaces[space].records.get(tag)?;
        Some(AttemptRecord {
            identity: identity_of(tag),
            failures: record.failures,
            first_failure: Some(record.first_failure),
            last_failure: Some(record.last_failure),
            user_agent: record.user_agent.as_deref().map(String::from),
            path: record.path.as_deref().map(String::from),
            lock_remaining: record.lock_ends.map(|ends| ends - now),
            lockouts: self.spaces[space]
                .lockouts
                .get(tag)
                .map_or(0, |(count, _)| *count),
        })
    }

    /// The tags of the records `target` selects (as a listing walks the record hashes).
    fn selected(&self, space: SpaceId, target: &Target) -> Vec<String> {
        selected(self.spaces[space].records.keys(), target)
    }

    /// The tags of the identities `target` selects that have a record or a lockout count (as
    /// a reset scans every key of an identity).
    fn selected_for_removal(&self, space: SpaceId, target: &Target) -> Vec<String> {
        let space = &self.spaces[space];
        let mut tags = selected(space.records.keys(), target);
        tags.extend(
            selected(space.lockouts.keys(), target)
                .into_iter()
                .filter(|tag| !space.records.contains_key(tag.as_str())),
        );
        tags
    }
}

fn selected<'t>(tags: impl Iterator<Item = &'t Tag>, target: &Target) -> Vec<String> {
    tags.filter(|tag| target.matches(&identity_of(tag)))
        .map(|tag| tag.to_string())
        .collect()
}

/// Drops the oldest of `entries` (oldest first) while any is past `bounds`' retention, they are
/// more than its size, or the store holds more than its bound (`held`: the store's count of
/// entries, and its bound).
fn keep_within<T>(
    entries: &mut VecDeque<(Instant, T)>,
    bounds: AccessLog,
    now: Instant,
    (held, bound): (&mut usize, usize),
) {
    let oldest_kept = now.checked_sub(bounds.retention);
    let most = usize::try_from(bounds.max_entries.get()).unwrap_or(usize::MAX);
    while let Some((time, _)) = entries.front() {
        let too_old = oldest_kept.is_some_and(|oldest| *time < oldest);
        if !too_old && entries.len() <= most && *held <= bound {
            break;
        }
        entries.pop_front();
        *held -= 1;
    }
}

/// The identity of a record's tag: tags are made by `Identity::tag`, so they decode.
fn identity_of(tag: &str) -> Identity {
    Identity::from_tag(tag).expect("a tag made by Identity::tag")
}

impl Store for MemoryStore {
    async fn lock_states(&self, identities: &[Identity]) -> Result<Vec<Option<Duration>>> {
        let (state, now) = self.state();
        Ok(identities
            .iter()
            .map(|identity| {
                state
                    .state_of(self.space, identity.tag(), now)
                    .lock_remaining
            })
            .collect())
    }

    async fn peek(&self, identities: &[Identity]) -> Result<Vec<IdentityState>> {
        let (state, now) = self.state();
        Ok(identities
            .iter()
            .map(|identity| state.state_of(self.space, identity.tag(), now))
            .collect())
    }

    async fn record_failures(
        &self,
        identities: &[Identity],
        rules: &[FailureRule],
        attempt: &Attempt,
        refused: bool,
        log: Option<LogAppend<'_>>,
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
        Ok(self.record(failures, log.as_slice()))
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
        Ok(self.record(failures, logs))
    }

    async fn watch_resets(&self, on_notice: &(dyn Fn(ResetNotice) + Send + Sync)) -> Result<()> {
        let mut notices = self.lock().spaces[self.space].notices.subscribe();
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

    async fn clear(&self, identities: &[Identity], log: Option<LogAppend<'_>>) -> Result<u64> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let mut removed = 0;
        for identity in identities {
            state.mark_reset(self.space, identity.tag(), now);
            state.forget_lock_end(self.space, identity.tag());
            let record = state.unlink(self.space, identity.tag()).is_some();
            let lockouts = state.forget_lockouts(self.space, identity.tag());
            removed += u64::from(record || lockouts);
        }
        if let Some(log) = log {
            state.append(self.space, &log, now, wall);
        }
        let tags = identities.iter().map(|i| i.tag().to_string()).collect();
        self.announce(&state, tags);
        Ok(removed)
    }

    async fn append_log(&self, log: LogAppend<'_>) -> Result<()> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        state.append(self.space, &log, now, wall);
        Ok(())
    }

    async fn list(&self, target: &Target) -> Result<Vec<AttemptRecord>> {
        let (state, now) = self.state();
        let mut records: Vec<AttemptRecord> = state
            .selected(self.space, target)
            .iter()
            .filter_map(|tag| state.record(self.space, tag, now))
            .collect();
        records.sort_by_key(|record| std::cmp::Reverse(record.last_failure));
        Ok(records)
    }

    async fn page(&self, target: &Target, cursor: Option<&str>, size: usize) -> Result<Page> {
        let (state, now) = self.state();
        let mut tags: Vec<String> = state
            .selected(self.space, target)
            .into_iter()
            .filter(|tag| cursor.is_none_or(|after| tag.as_str() > after))
            .collect();
        tags.sort();
        let more = tags.len() > size;
        tags.truncate(size.max(1));
        let next = if more { tags.last().cloned() } else { None };
        let mut records: Vec<AttemptRecord> = tags
            .iter()
            .filter_map(|tag| state.record(self.space, tag, now))
            .collect();
        records.sort_by_key(|record| std::cmp::Reverse(record.last_failure));
        Ok(Page { records, next })
    }

    async fn remove(&self, target: &Target, dry_run: bool, progress: Progress<'_>) -> Result<u64> {
        let (mut state, now) = self.state();
        let tags = state.selected_for_removal(self.space, target);
        progress(tags.len() as u64);
        if dry_run {
            return Ok(tags.len() as u64);
        }
        for tag in &tags {
            state.mark_reset(self.space, tag, now);
            state.forget_lock_end(self.space, tag);
            state.unlink(self.space, tag);
            state.forget_lockouts(self.space, tag);
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
        let oldest = max_age.and_then(|age| now.checked_sub(age));
        Ok(state.spaces[self.space]
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
        for event in events {
            state.append_event(self.space, event, bounds, (now, wall));
            if let (EventKind::LockoutStarted, Some(lockout)) = (event.kind, event.lockout) {
                state.schedule_lock_end(self.space, &event.subject, now + lockout);
            }
        }
        Ok(())
    }

    async fn end_lockouts(&self, bounds: AccessLog, limit: usize) -> Result<u64> {
        let wall = self.shared.clock.wall();
        let (mut state, now) = self.state();
        let ended = state.take_lock_ends(self.space, now, limit);
        for tag in &ended {
            state.append_event(
                self.space,
                &Event::expired(tag.clone()),
                bounds,
                (now, wall),
            );
        }
        Ok(ended.len() as u64)
    }

    async fn events(&self, since: Option<&str>, limit: usize) -> Result<Vec<StoredEvent>> {
        let (state, _) = self.state();
        let after = since.and_then(event::id_order);
        Ok(state.spaces[self.space]
            .events
            .iter()
            .map(|(_, stored)| stored)
            .filter(|stored| after.is_none_or(|after| event::id_order(&stored.id) > Some(after)))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn claim_events(&self, claim: Claim<'_>) -> Result<Claimed> {
        let (mut state, _) = self.state();
        let newest = state.last_event;
        let space = &mut state.spaces[self.space];
        let after = *space
            .claimed_up_to
            .entry(claim.group.to_string())
            .or_insert(if claim.first { newest } else { (0, 0) });
        let events: Vec<StoredEvent> = space
            .events
            .iter()
            .map(|(_, stored)| stored)
            .filter(|stored| event::id_order(&stored.id) > Some(after))
            .take(claim.limit)
            .cloned()
            .collect();
        if let Some(last) = events.last() {
            let last = event::id_order(&last.id).expect("an ID this store made");
            space.claimed_up_to.insert(claim.group.to_string(), last);
        }
        Ok(Claimed { events, dropped: 0 })
    }

    async fn acknowledge_events(&self, _group: &str, _events: &[StoredEvent]) -> Result<()> {
        Ok(())
    }

    async fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let (state, _) = self.state();
        Ok(state.spaces[self.space]
            .events
            .iter()
            .rev()
            .take(limit)
            .map(|(_, stored)| stored.clone())
            .collect())
    }

    async fn trim_logs(&self, age: Duration) -> Result<u64> {
        let (mut state, now) = self.state();
        let log = &mut state.spaces[self.space].log;
        let before = log.len();
        // Entries at least `age` old; none when the store is younger than `age`.
        if let Some(newest_removed) = now.checked_sub(age) {
            log.retain(|(time, _)| *time > newest_removed);
        }
        let removed = before - log.len();
        state.log_entries -= removed;
        Ok(removed as u64)
    }
}
