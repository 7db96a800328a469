//! A local cache of lock flags, for credential-stuffing floods: while every identity of an
//! attempt is known to be locked, its check is answered here, without reading Redis, and the
//! refused attempts are recorded in batches (`LockCacheTasks` flushes them every
//! `FLUSH_INTERVAL`). An attempt with any identity not known locked goes to Redis as usual, so
//! the deferred failures only ever add to identities that are locked already: no verdict
//! differs from Axes'.
//!
//! Correctness rests on three things: an entry never outlives the lock it saw (its expiry is
//! the lock's remaining time when read); every reset, by any process, is announced on the
//! store's reset channel once its deletions are done, and forgets the identities it removed
//! with their queued refusals; and what Redis said before a reset is never remembered after
//! it (a `generation` counts the resets heard, and `remember` ignores answers read in an
//! earlier one). Refusals already on their way to Redis when a reset lands are dropped there
//! (the reset's marker, `Keyspace::reset_marker`): an admin's reset during a flood is never
//! undone by the flood's past. While the channel is not listening, the cache answers nothing
//! and holds nothing.
//!
//! The documented tolerance (Axes records every refused attempt at once): a refused attempt
//! answered here reaches Redis (its counts, its log entry) up to `FLUSH_INTERVAL` later,
//! coalesced with the others of its identity (one `fail.lua` with a count, one access-log
//! entry with a count); its lock renewal is counted from the flush; and a refusal pending when
//! the process dies without a graceful shutdown is lost (a graceful one flushes). Keys deleted
//! behind lockout's back (a `DEL` by hand) are not seen until their cached
//! expiry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::attempt::Attempt;
use crate::identity::Identity;
use crate::keys::RESET_GUARD;
use crate::policy::AccessLog;
use crate::store::{FailureRule, LogAppend, Refusals, ResetNotice, Store};

/// How often coalesced refusals are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Entries at most; past that, new locks are not cached (the expired ones are dropped first).
const MAX_ENTRIES: usize = 100_000;
/// Wait before listening again after the reset channel failed.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct LockCache {
    state: Mutex<State>,
    /// Resets heard so far.
    generation: AtomicU64,
}

#[derive(Default)]
struct State {
    listening: bool,
    /// Identity tag → when its lock ends.
    locks: HashMap<String, Instant>,
    /// Identity tag → refusals to record.
    refusals: HashMap<String, Refusals>,
    /// (IP, username) → the latest refused attempt and how many it stands for.
    logs: HashMap<(IpAddr, Option<String>), (Attempt, u64)>,
}

impl State {
    /// Queues a refused attempt: a failure of each identity when `record`, a log entry when
    /// `log`.
    fn queue_refusal(
        &mut self,
        identities: &[Identity],
        rules: &[FailureRule],
        attempt: &Attempt,
        record: bool,
        log: bool,
    ) {
        if record {
            for (identity, rule) in identities.iter().zip(rules) {
                let refusals = self
                    .refusals
                    .entry(identity.tag().to_string())
                    .or_insert_with(|| Refusals {
                        identity: identity.clone(),
                        rule: *rule,
                        count: 0,
                        counted_ago: RESET_GUARD,
                        user_agent: None,
                        path: None,
                    });
                refusals.count += 1;
                refusals.user_agent = attempt.user_agent.clone().or(refusals.user_agent.take());
                refusals.path = attempt.path.clone().or(refusals.path.take());
            }
        }
        if log {
            self.logs
                .entry((attempt.ip, attempt.username.clone()))
                .and_modify(|(latest, count)| {
                    *latest = attempt.clone();
                    *count += 1;
                })
                .or_insert_with(|| (attempt.clone(), 1));
        }
    }
}

impl LockCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent: recover them.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_listening(&self) -> bool {
        self.state().listening
    }

    /// To take before reading locks from Redis and give back to `remember`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// When every identity is cached as locked: queues the refused attempt (a failure of each
    /// identity when `record`, a log entry when `log`) and answers the longest remaining lock.
    /// One lock of the state for both, so that no reset can land between the look and the
    /// queueing.
    pub fn refuse(
        &self,
        identities: &[Identity],
        rules: &[FailureRule],
        attempt: &Attempt,
        record: bool,
        log: bool,
    ) -> Option<Duration> {
        let mut state = self.state();
        if !state.listening {
            return None;
        }
        let now = Instant::now();
        let mut longest = Duration::ZERO;
        for identity in identities {
            let left = state
                .locks
                .get(identity.tag())
                .and_then(|end| end.checked_duration_since(now))
                .filter(|left| !left.is_zero())?;
            longest = longest.max(left);
        }
        state.queue_refusal(identities, rules, attempt, record, log);
        Some(longest)
    }

    /// Notes what Redis said of these identities' locks, unless a reset was heard since the
    /// `generation` taken before asking (the answer may predate it).
    pub fn remember(
        &self,
        identities: &[Identity],
        locks: impl IntoIterator<Item = Option<Duration>>,
        generation: u64,
    ) {
        let mut state = self.state();
        if !state.listening || self.generation() != generation {
            return;
        }
        let now = Instant::now();
        for (identity, lock) in identities.iter().zip(locks) {
            match lock {
                Some(left) => {
                    if state.locks.len() >= MAX_ENTRIES {
                        state.locks.retain(|_, end| *end > now);
                    }
                    if state.locks.len() < MAX_ENTRIES {
                        state.locks.insert(identity.tag().to_string(), now + left);
                    }
                }
                None => {
                    state.locks.remove(identity.tag());
                }
            }
        }
    }

    fn take_pending(&self) -> (Vec<Refusals>, Vec<(Attempt, u64)>) {
        let mut state = self.state();
        let refusals = state
            .refusals
            .drain()
            .map(|(_, refusals)| refusals)
            .collect();
        let logs = state.logs.drain().map(|(_, entry)| entry).collect();
        (refusals, logs)
    }

    fn notice(&self, notice: ResetNotice) {
        let mut state = self.state();
        match notice {
            ResetNotice::Listening => state.listening = true,
            ResetNotice::Removed(tags) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
                for tag in tags {
                    state.locks.remove(&tag);
                    state.refusals.remove(&tag);
                }
            }
        }
    }

    fn stop_listening(&self) {
        let mut state = self.state();
        state.listening = false;
        state.locks.clear();
    }
}

/// The cache's background tasks: listening to the reset channel, flushing refusals. Stopped
/// when dropped.
pub struct LockCacheTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LockCacheTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl LockCacheTasks {
    /// Starts the tasks on the current tokio runtime.
    pub fn start<S: Store + Clone + 'static>(
        cache: Arc<LockCache>,
        store: S,
        access_log: Option<AccessLog>,
    ) -> Self {
        let listener = tokio::spawn({
            let (cache, store) = (cache.clone(), store.clone());
            async move {
                // Why the channel is down, once said: one line per outage, not one a second.
                let mut lost: Option<String> = None;
                loop {
                    let listened = AtomicBool::new(false);
                    let stopped = store
                        .watch_resets(&|notice| {
                            if matches!(notice, ResetNotice::Listening) {
                                listened.store(true, Ordering::Relaxed);
                                if let Some(why) = &lost {
                                    tracing::info!(was = %why, "lock cache on: the reset channel is back");
                                }
                            }
                            cache.notice(notice)
                        })
                        .await;
                    cache.stop_listening();
                    if listened.load(Ordering::Relaxed) {
                        lost = None;
                    }
                    if let Err(err) = stopped {
                        let why = err.to_string();
                        if lost.as_ref() != Some(&why) {
                            if err.is_permission_denied() {
                                tracing::warn!(%err, "lock cache off: the Redis user may not \
                                    subscribe to the reset channel (its ACL needs the channel \
                                    pattern &<prefix>:*), so every check goes to Redis");
                            } else {
                                tracing::warn!(%err, "lock cache off until the reset channel is back");
                            }
                            lost = Some(why);
                        }
                    }
                    tokio::time::sleep(RELISTEN_DELAY).await;
                }
            }
        });
        let flusher = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
            loop {
                ticks.tick().await;
                flush(&cache, &store, access_log).await;
            }
        });
        LockCacheTasks {
            tasks: vec![listener, flusher],
        }
    }
}

/// Records the refusals queued so far (the flusher's work, and a graceful shutdown's last).
pub async fn flush<S: Store>(cache: &LockCache, store: &S, access_log: Option<AccessLog>) {
    let generation = cache.generation();
    let (refusals, logs) = cache.take_pending();
    if refusals.is_empty() && logs.is_empty() {
        return;
    }
    let appends: Vec<LogAppend<'_>> = access_log
        .map(|bounds| {
            logs.iter()
                .map(|(attempt, count)| LogAppend {
                    attempt,
                    outcome: crate::record::Outcome::Refused,
                    bounds,
                    count: *count,
                })
                .collect()
        })
        .unwrap_or_default();
    match store.record_refusals(&refusals, &appends).await {
        Ok(states) => {
            let identities: Vec<Identity> = refusals.into_iter().map(|r| r.identity).collect();
            let locks = states.iter().map(|state| state.lock_remaining);
            cache.remember(&identities, locks, generation);
        }
        Err(err) => tracing::warn!(%err, refusals = refusals.len(), "coalesced refusals lost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::Field;
    use crate::policy::Combination;

    #[test]
    fn a_lock_read_before_a_reset_is_not_remembered_after_it() {
        let cache = LockCache::default();
        cache.notice(ResetNotice::Listening);
        let attempt = Attempt::parse("10.0.0.1", None, None, None).unwrap();
        let identity = Identity::of(&attempt, &Combination::new([Field::Ip]).unwrap()).unwrap();
        let locked = Some(Duration::from_secs(60));
        let before_the_reset = cache.generation();
        // The reset's notice is handled while the check's read of the lock is on its way.
        cache.notice(ResetNotice::Removed(vec![identity.tag().to_string()]));
        cache.remember(std::slice::from_ref(&identity), [locked], before_the_reset);
        let identities = std::slice::from_ref(&identity);
        let rules = [FailureRule {
            cooloff: Duration::from_secs(60),
            lockout_duration: Duration::from_secs(60),
            failure_limit: 1,
            lock_out_at_failure: true,
            repeat: None,
            observe: false,
        }];
        assert_eq!(cache.refuse(identities, &rules, &attempt, true, true), None);
        // A read after the reset is remembered.
        cache.remember(identities, [locked], cache.generation());
        assert!(cache
            .refuse(identities, &rules, &attempt, true, true)
            .is_some());
    }
}
