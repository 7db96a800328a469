//! A local cache of lock flags, for credential-stuffing floods: while every identity of an
//! attempt is known to be locked, its check is answered here, without reading Redis, and the
//! refused attempts are recorded in batches (`LockCacheTasks` flushes them every
//! `FLUSH_INTERVAL`). An attempt with any identity not known locked goes to Redis as usual, so
//! the deferred failures only ever add to identities that are locked already: no verdict
//! differs from Axes'.
//!
//! Correctness rests on two things: an entry never outlives the lock it saw (its expiry is the
//! lock's remaining time when read), and every reset, by any process, is announced on the
//! store's reset channel and forgets the identities it removed. While that channel is not
//! listening, the cache answers nothing and holds nothing.
//!
//! The documented tolerance (Axes records every refused attempt at once): a refused attempt
//! answered here reaches Redis (its counts, its log entry) up to `FLUSH_INTERVAL` later,
//! coalesced with the others of its identity (one `fail.lua` with a count, one access-log
//! entry with a count); its lock renewal is counted from the flush; and a refusal pending when
//! the process dies is lost; refusals already taken for a flush when a reset lands are counted
//! after it (as if they came just after the reset: an attacker still at it locks again either
//! way). Keys deleted behind lockout's back (a `DEL` by hand) are not seen until their cached
//! expiry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::attempt::{Attempt, Identity};
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
        attempt: &Attempt,
        record: bool,
        log: bool,
    ) {
        if record {
            for identity in identities {
                let refusals = self
                    .refusals
                    .entry(identity.tag().to_string())
                    .or_insert_with(|| Refusals {
                        identity: identity.clone(),
                        count: 0,
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

    /// When every identity is cached as locked: queues the refused attempt (a failure of each
    /// identity when `record`, a log entry when `log`) and answers the longest remaining lock.
    /// One lock of the state for both, so that no reset can land between the look and the
    /// queueing.
    pub fn refuse(
        &self,
        identities: &[Identity],
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
        state.queue_refusal(identities, attempt, record, log);
        Some(longest)
    }

    /// Notes what Redis just said of these identities' locks.
    pub fn remember(
        &self,
        identities: &[Identity],
        locks: impl IntoIterator<Item = Option<Duration>>,
    ) {
        let mut state = self.state();
        if !state.listening {
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
        rule: FailureRule,
        log_retention: Option<Duration>,
    ) -> Self {
        let listener = tokio::spawn({
            let (cache, store) = (cache.clone(), store.clone());
            async move {
                loop {
                    let stopped = store.watch_resets(&|notice| cache.notice(notice)).await;
                    cache.stop_listening();
                    if let Err(err) = stopped {
                        tracing::warn!(%err, "lock cache off until the reset channel is back");
                    }
                    tokio::time::sleep(RELISTEN_DELAY).await;
                }
            }
        });
        let flusher = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
            loop {
                ticks.tick().await;
                flush(&cache, &store, &rule, log_retention).await;
            }
        });
        LockCacheTasks {
            tasks: vec![listener, flusher],
        }
    }
}

async fn flush<S: Store>(
    cache: &LockCache,
    store: &S,
    rule: &FailureRule,
    log_retention: Option<Duration>,
) {
    let (refusals, logs) = cache.take_pending();
    if refusals.is_empty() && logs.is_empty() {
        return;
    }
    let appends: Vec<LogAppend<'_>> = log_retention
        .map(|retention| {
            logs.iter()
                .map(|(attempt, count)| LogAppend {
                    attempt,
                    outcome: crate::record::Outcome::Refused,
                    retention,
                    count: *count,
                })
                .collect()
        })
        .unwrap_or_default();
    match store.record_refusals(&refusals, rule, &appends).await {
        Ok(states) => {
            let identities: Vec<Identity> = refusals.into_iter().map(|r| r.identity).collect();
            cache.remember(&identities, states.iter().map(|state| state.lock_remaining));
        }
        Err(err) => tracing::warn!(%err, refusals = refusals.len(), "coalesced refusals lost"),
    }
}
