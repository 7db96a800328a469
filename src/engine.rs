//! The policy applied to a store: allow and deny lists, identities per combination, the
//! Axes decisions (what is locked, what is recorded), an IP's password spraying, and the
//! verdicts. No Redis in here. The operator's work on the records is in `records`, events in
//! `events`, device tokens in `devices`, unlock tokens in `unlock`.

mod devices;
mod events;
mod records;
mod unlock;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use devices::{device_identity, obeyed_with_a_device};
use events::named;

use crate::attempt::Attempt;
use crate::devices::Devices;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::lock_cache::{self, LockCache, LockCacheTasks};
use crate::policy::{Combination, Policy};
use crate::record::{IdentityState, Outcome};
use crate::spraying;
use crate::store::{FailureRule, LogAppend, SprayingCount, Store};

/// The answer to "may this attempt proceed to the password check?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Locked(Lockout),
    /// Allowed by a policy in observe mode, which would have refused it with this lockout.
    WouldLock(Lockout),
}

impl Verdict {
    pub fn is_locked(&self) -> bool {
        matches!(self, Verdict::Locked(_))
    }
}

/// Why and for how long an attempt is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub reason: LockReason,
    /// When the last of the attempt's locks ends; `None` for a deny-listed IP.
    pub retry_after: Option<Duration>,
    /// The combinations whose identity is locked.
    pub locked_by: Vec<Combination>,
    /// The combinations whose lock this very attempt started (recording a refused attempt can
    /// lock another identity of it).
    pub started: Vec<Combination>,
    /// This very attempt locked its IP for password spraying.
    pub spraying_started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// Too many failures.
    Lockout,
    /// The IP is in the deny-list.
    DenyList,
    /// The IP named too many usernames (and no combination of the attempt is locked).
    Spraying,
}

impl LockReason {
    pub fn name(self) -> &'static str {
        match self {
            LockReason::Lockout => "lockout",
            LockReason::DenyList => "deny_list",
            LockReason::Spraying => "spraying",
        }
    }
}

/// The answer to a recorded failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    pub locked: bool,
    pub retry_after: Option<Duration>,
    /// Each identity's count, in the policy's combination order.
    pub failures: Vec<FailureCount>,
    /// The combinations whose lock this failure started.
    pub started: Vec<Combination>,
    /// The combinations whose identity is locked.
    pub locked_by: Vec<Combination>,
    /// In observe mode, the lockout the policy would be in now (nothing is refused, so
    /// `locked` is false and the fields above tell of no lock): how long, by which
    /// combinations, and those whose would-be lock this failure started.
    pub would_lock: Option<Lockout>,
    /// This failure locked its IP for password spraying.
    pub spraying_started: bool,
}

/// An attempt's standing, read without recording anything: the verdict and each identity's
/// failure count, in the policy's combination order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub verdict: Verdict,
    pub failures: Vec<FailureCount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub combination: Combination,
    pub count: u64,
}

/// Django Axes' lockout logic over a `Store`.
pub struct Engine<S> {
    store: S,
    policy: Policy,
    /// Each combination's rule, in the policy's order.
    rules: Vec<FailureRule>,
    /// The rule an IP's spraying count locks under, when spraying is counted.
    spraying: Option<FailureRule>,
    cache: Option<Arc<LockCache>>,
    /// Told whenever this engine appends events (see `with_events_signal`).
    events_signal: Option<watch::Sender<()>>,
    /// The combination and rule of a device holder's own identity (see `device_identity`).
    device: Option<(Combination, FailureRule)>,
    /// With device tokens on, their `token_ttl`: how long a revocation is kept (resets of
    /// usernames revoke their device tokens, see `with_devices`).
    device_token_ttl: Option<Duration>,
}

/// The identities an attempt forms, each with its combination and the rule it counts under,
/// and its IP alone (`spraying::identity`) when its spraying is counted.
struct Formed {
    combinations: Vec<Combination>,
    identities: Vec<Identity>,
    rules: Vec<FailureRule>,
    spraying: Option<Identity>,
}

impl<S: Store> Engine<S> {
    pub fn new(store: S, policy: Policy) -> Self {
        let rules = policy
            .combinations
            .iter()
            .map(|combination| rule_of(&policy, combination))
            .collect();
        let device = device_identity(&policy);
        Engine {
            store,
            spraying: spraying_rule_of(&policy),
            policy,
            rules,
            cache: None,
            events_signal: None,
            device,
            device_token_ttl: None,
        }
    }

    /// With device tokens on (`devices` set): a reset of usernames also revokes their device
    /// tokens (see `revoke_devices`).
    pub fn with_devices(mut self, devices: Option<&Devices>) -> Self {
        self.device_token_ttl = devices.map(|devices| devices.token_ttl);
        self
    }

    /// Tells `signal` whenever events are appended here, so that their deliverers (webhooks)
    /// need not wait for their next look.
    pub fn with_events_signal(mut self, signal: watch::Sender<()>) -> Self {
        self.events_signal = Some(signal);
        self
    }

    /// Turns on the local lock cache (see `lock_cache`) and starts its tasks, which run until
    /// the returned guard is dropped. For a long-running service, not for one-shot commands.
    pub fn with_lock_cache(mut self) -> (Self, LockCacheTasks)
    where
        S: Clone + 'static,
    {
        let cache = Arc::new(LockCache::default());
        let tasks =
            LockCacheTasks::start(cache.clone(), self.store.clone(), self.policy.access_log);
        self.cache = Some(cache);
        (self, tasks)
    }

    /// Whether the lock cache is on and listening to resets (so answering from memory).
    pub fn lock_cache_listening(&self) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|cache| cache.is_listening())
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Before the password is verified: is the attempt locked out? A refused attempt is itself
    /// recorded as a failure (extending the lock) unless
    /// `reset_cooloff_on_failure_during_lockout` is false. An allowed check writes nothing.
    pub async fn check(&self, attempt: &Attempt) -> Result<Verdict> {
        if self.policy.deny.contains(attempt.ip) {
            return Ok(Verdict::Locked(Lockout::deny_listed()));
        }
        if self.policy.never_lockout.contains(attempt.ip) {
            return Ok(Verdict::Allowed);
        }
        let formed = self.identities(attempt);
        if formed.identities.is_empty() && formed.spraying.is_none() {
            return Ok(Verdict::Allowed);
        }
        if self.policy.observe {
            // The attempt goes on to its password check, whose failure is counted then: a
            // would-be refusal records nothing (it would count each such failure twice).
            let (_, formed, states, spraying) = self.standing_of(attempt, formed, true).await?;
            return Ok(self.verdict(&formed.combinations, &states, spraying));
        }
        // An attempt with a device is answered from Redis: its revocation is read there.
        if self.device_of(attempt).is_none() {
            if let Some(lockout) = self.refuse_from_cache(attempt, &formed) {
                return Ok(Verdict::Locked(lockout));
            }
        }
        let generation = self.cache_generation();
        let (attempt, formed, states, spraying_state) =
            self.standing_of(attempt, formed, false).await?;
        let attempt = &*attempt;
        let Formed {
            combinations,
            identities,
            rules,
            spraying,
        } = formed;
        let locks: Vec<Option<Duration>> =
            states.iter().map(|state| state.lock_remaining).collect();
        let spraying_lock = spraying_state.and_then(|state| state.lock_remaining);
        self.remember(&identities, locks.iter().copied(), generation);
        if locks.iter().all(Option::is_none) && spraying_lock.is_none() {
            return Ok(Verdict::Allowed);
        }
        let log = self.log(attempt, Outcome::Refused);
        let (states, spraying_state) = if self.policy.reset_cooloff_on_failure_during_lockout {
            let generation = self.cache_generation();
            let count = self.spraying_count(spraying.as_ref(), attempt);
            let mut states = self
                .store
                .record_failures(&identities, &rules, attempt, true, log, count)
                .await
                .map_err(Error::of_write)?;
            let mut spraying_state = spraying.as_ref().and_then(|_| states.pop());
            let recorded = states.iter().map(|state| state.lock_remaining);
            self.remember(&identities, recorded, generation);
            // A refusal that a reset since the read dropped (see `Keyspace::reset_marker`)
            // answers the lock read: the attempt was refused on it.
            for (state, read) in states.iter_mut().zip(&locks) {
                state.lock_remaining = state.lock_remaining.or(*read);
            }
            if let Some(state) = spraying_state.as_mut() {
                state.lock_remaining = state.lock_remaining.or(spraying_lock);
            }
            let sprayed = spraying.as_ref().zip(spraying_state);
            self.lockouts_started(attempt, &identities, &states, sprayed)
                .await;
            (states, spraying_state)
        } else {
            if let Some(log) = log {
                self.store.append_log(log).await?;
            }
            let states = locks
                .into_iter()
                .map(|lock_remaining| IdentityState {
                    lock_remaining,
                    ..IdentityState::CLEAN
                })
                .collect();
            let spraying_state = spraying_lock.map(|lock_remaining| IdentityState {
                lock_remaining: Some(lock_remaining),
                ..IdentityState::CLEAN
            });
            (states, spraying_state)
        };
        let started = select(&combinations, &states, |state| state.lock_started);
        Ok(Verdict::Locked(Lockout::of(
            &combinations,
            &states,
            started,
            spraying_state,
        )))
    }

    /// Before the password is verified, for callers that record refused attempts themselves
    /// (Django Axes reports every refused attempt as a failed login): the verdict `check` would
    /// give, and each identity's failure count, writing nothing. One round trip.
    pub async fn inspect(&self, attempt: &Attempt) -> Result<Standing> {
        let unrecorded = |verdict| Standing {
            verdict,
            failures: Vec::new(),
        };
        if self.policy.deny.contains(attempt.ip) {
            return Ok(unrecorded(Verdict::Locked(Lockout::deny_listed())));
        }
        if self.policy.never_lockout.contains(attempt.ip) {
            return Ok(unrecorded(Verdict::Allowed));
        }
        let formed = self.identities(attempt);
        if formed.identities.is_empty() && formed.spraying.is_none() {
            return Ok(unrecorded(Verdict::Allowed));
        }
        let (_, Formed { combinations, .. }, states, spraying) =
            self.standing_of(attempt, formed, true).await?;
        Ok(Standing {
            verdict: self.verdict(&combinations, &states, spraying),
            failures: counts(combinations, &states),
        })
    }

    /// After a wrong password: count it for every identity of the attempt. The failure that
    /// reaches the limit is itself answered locked.
    pub async fn fail(&self, attempt: &Attempt) -> Result<FailureReport> {
        let deny_listed = self.policy.deny.contains(attempt.ip);
        if deny_listed || self.policy.never_lockout.contains(attempt.ip) {
            return Ok(FailureReport {
                locked: deny_listed,
                retry_after: None,
                failures: Vec::new(),
                started: Vec::new(),
                locked_by: Vec::new(),
                would_lock: None,
                spraying_started: false,
            });
        }
        let formed = self.identities(attempt);
        if formed.identities.is_empty() && formed.spraying.is_none() {
            if let Some(log) = self.log(attempt, Outcome::Failure) {
                self.store.append_log(log).await?;
            }
            return Ok(self.report(formed.combinations, Vec::new(), None));
        }
        let (attempt, formed) = if self.policy.reset_cooloff_on_failure_during_lockout {
            let counted = self.counted_attempt(attempt).await?;
            let formed = match counted {
                Cow::Borrowed(_) => formed,
                Cow::Owned(ref plain) => self.identities(plain),
            };
            (counted, formed)
        } else {
            // As in Axes: a failure during a lockout records nothing, so the lock ends on time.
            let (counted, formed, states, spraying) =
                self.standing_of(attempt, formed, true).await?;
            // Nothing is recorded, so the states read start nothing.
            if states.iter().chain(&spraying).any(is_locked) {
                return Ok(self.report(formed.combinations, states, spraying));
            }
            (counted, formed)
        };
        let attempt = &*attempt;
        let Formed {
            combinations,
            identities,
            rules,
            spraying,
        } = formed;
        let log = self.log(attempt, Outcome::Failure);
        let generation = self.cache_generation();
        let count = self.spraying_count(spraying.as_ref(), attempt);
        let mut states = self
            .store
            .record_failures(&identities, &rules, attempt, false, log, count)
            .await
            .map_err(Error::of_write)?;
        let spraying_state = spraying.as_ref().and_then(|_| states.pop());
        let locks = states.iter().map(|state| state.lock_remaining);
        self.remember(&identities, locks, generation);
        let sprayed = spraying.as_ref().zip(spraying_state);
        self.lockouts_started(attempt, &identities, &states, sprayed)
            .await;
        Ok(self.report(combinations, states, spraying_state))
    }

    /// After a successful login: clears the attempt's identities when `reset_on_success` is
    /// set, and logs it. Answers whether anything was cleared.
    pub async fn succeed(&self, attempt: &Attempt) -> Result<bool> {
        if self.policy.deny.contains(attempt.ip) || self.policy.never_lockout.contains(attempt.ip) {
            return Ok(false);
        }
        let identities = self.cleared_on_success(attempt);
        let log = self.log(attempt, Outcome::Success);
        if !identities.is_empty() {
            // Not the IP's spraying: a login of its own would let a sprayer start over.
            let removed = self.store.clear(&identities, false, log).await?;
            self.reset_event(Some(attempt.ip), || named(&identities), removed, "success")
                .await;
            return Ok(removed > 0);
        }
        if let Some(log) = log {
            self.store.append_log(log).await?;
        }
        Ok(false)
    }

    /// Each identity's count and lock: in observe mode, the longer of its lock and its
    /// would-be lock (every lock enforcing would refuse on); then the IP's spraying count's.
    async fn peek(
        &self,
        identities: &[Identity],
        spraying: Option<&Identity>,
    ) -> Result<Vec<IdentityState>> {
        if self.policy.observe {
            self.store.peek_observed(identities, spraying).await
        } else {
            self.store.peek(identities, spraying).await
        }
    }

    /// The verdict on an attempt whose identities are in `states`, read without recording:
    /// in observe mode a lockout would have refused it, and it is allowed.
    fn verdict(
        &self,
        combinations: &[Combination],
        states: &[IdentityState],
        spraying: Option<IdentityState>,
    ) -> Verdict {
        if !states.iter().chain(&spraying).any(is_locked) {
            return Verdict::Allowed;
        }
        let lockout = Lockout::of(combinations, states, Vec::new(), spraying);
        if self.policy.observe {
            Verdict::WouldLock(lockout)
        } else {
            Verdict::Locked(lockout)
        }
    }

    /// The report of a failure that left the identities in `states`: in observe mode, a lock
    /// among them is what would have been (`FailureReport::would_lock`), and none is told.
    fn report(
        &self,
        combinations: Vec<Combination>,
        states: Vec<IdentityState>,
        spraying: Option<IdentityState>,
    ) -> FailureReport {
        let report = report(combinations, states, spraying);
        if !self.policy.observe || !report.locked {
            return report;
        }
        let reason = if report.locked_by.is_empty() {
            LockReason::Spraying
        } else {
            LockReason::Lockout
        };
        FailureReport {
            locked: false,
            retry_after: None,
            started: Vec::new(),
            locked_by: Vec::new(),
            would_lock: Some(Lockout {
                reason,
                retry_after: report.retry_after,
                locked_by: report.locked_by,
                started: report.started,
                spraying_started: report.spraying_started,
            }),
            failures: report.failures,
            spraying_started: false,
        }
    }

    /// The attempt's identities with the combination each comes from and its rule, its IP as
    /// it is counted (IPv6 per network); combinations whose fields the attempt lacks form none.
    /// An attempt with a device (see `device_of`) forms its device's identity in place of the
    /// combinations a device holder does not obey.
    fn identities(&self, attempt: &Attempt) -> Formed {
        let ip = self.policy.counted_ip(attempt.ip).to_string();
        let mut formed = Formed {
            combinations: Vec::new(),
            identities: Vec::new(),
            rules: Vec::new(),
            spraying: self.spraying.map(|_| spraying::identity(&ip)),
        };
        let device = self.device.as_ref().filter(|_| attempt.device.is_some());
        let combinations = self.policy.combinations.iter().zip(&self.rules);
        let counted = combinations
            .filter(|(combination, _)| device.is_none() || obeyed_with_a_device(combination))
            .chain(device.map(|(combination, rule)| (combination, rule)));
        for (combination, rule) in counted {
            if let Some(identity) = Identity::counted_as(attempt, &ip, combination) {
                formed.combinations.push(combination.clone());
                formed.identities.push(identity);
                formed.rules.push(*rule);
            }
        }
        formed
    }

    /// The identities a successful login of `attempt` clears (none unless `reset_on_success`).
    pub fn cleared_on_success(&self, attempt: &Attempt) -> Vec<Identity> {
        if !self.policy.reset_on_success {
            return Vec::new();
        }
        self.identities(attempt).identities
    }

    /// The identities the attempt forms for `combinations` (an answer's `locked_by`), with its
    /// device and, as a revoked device's attempt counts, without.
    pub fn identities_of(&self, attempt: &Attempt, combinations: &[Combination]) -> Vec<Identity> {
        let mut formed = self.identities(attempt);
        if self.device_of(attempt).is_some() {
            let plain = self.identities(&attempt.clone().with_device(None));
            formed.combinations.extend(plain.combinations);
            formed.identities.extend(plain.identities);
        }
        let mut identities: Vec<Identity> = Vec::new();
        for (combination, identity) in formed.combinations.iter().zip(formed.identities) {
            if combinations.contains(combination) && !identities.contains(&identity) {
                identities.push(identity);
            }
        }
        identities
    }

    /// With the lock cache on and every identity of the attempt (at least one) known locked:
    /// the refusal, answered without Redis, its recording queued for the cache's next flush.
    /// (The IP's spraying lock is not cached: an attempt its combinations do not lock reads it.)
    fn refuse_from_cache(&self, attempt: &Attempt, formed: &Formed) -> Option<Lockout> {
        if formed.identities.is_empty() {
            return None;
        }
        let retry_after = self.cache.as_ref()?.refuse(
            &formed.identities,
            &formed.rules,
            attempt,
            self.policy.reset_cooloff_on_failure_during_lockout,
            self.policy.access_log.is_some(),
        )?;
        Some(Lockout {
            reason: LockReason::Lockout,
            retry_after: Some(retry_after),
            locked_by: formed.combinations.clone(),
            started: Vec::new(),
            spraying_started: false,
        })
    }

    /// The attempt's part in its IP's spraying count (`ip`, when counted).
    fn spraying_count<'a>(
        &self,
        ip: Option<&'a Identity>,
        attempt: &Attempt,
    ) -> Option<SprayingCount<'a>> {
        Some(SprayingCount {
            ip: ip?,
            member: attempt.username.as_deref().map(spraying::member),
            rule: self.spraying?,
        })
    }

    /// Tells the lock cache, if on, what Redis said of these identities' locks when asked in
    /// `generation` (see `LockCache::remember`).
    fn remember(
        &self,
        identities: &[Identity],
        locks: impl Iterator<Item = Option<Duration>>,
        generation: u64,
    ) {
        // Would-be locks refuse nothing: never cached.
        if let Some(cache) = self.cache.as_ref().filter(|_| !self.policy.observe) {
            cache.remember(identities, locks, generation);
        }
    }

    fn cache_generation(&self) -> u64 {
        self.cache.as_ref().map_or(0, |cache| cache.generation())
    }

    /// Records the refusals the lock cache, if on, still holds: for a graceful shutdown.
    pub async fn flush_lock_cache(&self) {
        if let Some(cache) = &self.cache {
            lock_cache::flush(cache, &self.store, self.policy.access_log).await;
        }
    }

    fn log<'a>(&self, attempt: &'a Attempt, outcome: Outcome) -> Option<LogAppend<'a>> {
        self.policy.access_log.map(|bounds| LogAppend {
            attempt,
            outcome,
            bounds,
            count: 1,
        })
    }
}

impl Lockout {
    /// The lockout of an attempt whose identities are in `states` (and its IP's spraying
    /// count in `spraying`): until the last lock ends, by the combinations locked; for
    /// spraying when none is.
    fn of(
        combinations: &[Combination],
        states: &[IdentityState],
        started: Vec<Combination>,
        spraying: Option<IdentityState>,
    ) -> Self {
        let locked_by = select(combinations, states, is_locked);
        let sprayed = spraying.is_some_and(|state| is_locked(&state));
        Lockout {
            reason: if locked_by.is_empty() && sprayed {
                LockReason::Spraying
            } else {
                LockReason::Lockout
            },
            retry_after: latest_lock_end(states.iter().chain(&spraying)),
            locked_by,
            started,
            spraying_started: spraying.is_some_and(|state| state.lock_started),
        }
    }

    /// The refusal of a deny-listed IP: no lock, no end.
    fn deny_listed() -> Self {
        Lockout {
            reason: LockReason::DenyList,
            retry_after: None,
            locked_by: Vec::new(),
            started: Vec::new(),
            spraying_started: false,
        }
    }
}

/// Records or events a view reads from the store per call.
const VIEW_READ_PAGE: usize = 1000;

/// The rule `combination` counts under: its own limits, else the policy's.
fn rule_of(policy: &Policy, combination: &Combination) -> FailureRule {
    let own = combination.limits();
    FailureRule {
        cooloff: own.cooloff.unwrap_or(policy.cooloff),
        lockout_duration: own.lockout_duration.unwrap_or(policy.lockout_duration),
        failure_limit: own.failure_limit.unwrap_or(policy.failure_limit).get(),
        lock_out_at_failure: policy.lock_out_at_failure,
        repeat: policy.repeat,
        observe: policy.observe,
    }
}

/// The rule an IP's spraying count locks under (see `SprayingCount::rule`), when the policy
/// counts spraying and locks at all.
fn spraying_rule_of(policy: &Policy) -> Option<FailureRule> {
    let spraying = policy.spraying.filter(|_| policy.lock_out_at_failure)?;
    Some(FailureRule {
        cooloff: spraying.window,
        lockout_duration: policy.lockout_duration,
        failure_limit: spraying.limit.get(),
        lock_out_at_failure: true,
        repeat: policy.repeat,
        observe: policy.observe,
    })
}

/// The report of a failure whose identities are in `states` (and its IP's spraying count in
/// `spraying`).
fn report(
    combinations: Vec<Combination>,
    states: Vec<IdentityState>,
    spraying: Option<IdentityState>,
) -> FailureReport {
    FailureReport {
        locked: states.iter().chain(&spraying).any(is_locked),
        retry_after: latest_lock_end(states.iter().chain(&spraying)),
        started: select(&combinations, &states, |state| state.lock_started),
        locked_by: select(&combinations, &states, is_locked),
        failures: counts(combinations, &states),
        would_lock: None,
        spraying_started: spraying.is_some_and(|state| state.lock_started),
    }
}

fn is_locked(state: &IdentityState) -> bool {
    state.lock_remaining.is_some()
}

/// Each combination's identity with its failure count.
fn counts(combinations: Vec<Combination>, states: &[IdentityState]) -> Vec<FailureCount> {
    combinations
        .into_iter()
        .zip(states)
        .map(|(combination, state)| FailureCount {
            combination,
            count: state.failures,
        })
        .collect()
}

/// The combinations whose identity's state satisfies `test`.
fn select(
    combinations: &[Combination],
    states: &[IdentityState],
    test: impl Fn(&IdentityState) -> bool,
) -> Vec<Combination> {
    combinations
        .iter()
        .zip(states)
        .filter(|(_, state)| test(state))
        .map(|(combination, _)| combination.clone())
        .collect()
}

/// When the last of the locks ends: the attempt's retry-after.
fn latest_lock_end<'a>(states: impl Iterator<Item = &'a IdentityState>) -> Option<Duration> {
    states.filter_map(|state| state.lock_remaining).max()
}
