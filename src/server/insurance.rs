//! `on_store_error = "local"`: while Redis is away, logins are counted and locked with the same
//! policy on an in-process store of this instance, and answered `"degraded": true` (each
//! instance counts alone: with N instances behind a balancer an attacker may get up to N times
//! the limit during the outage).
//!
//! The first login that finds Redis away starts the outage; from then on logins go to the local
//! store at once (no wait for Redis per login), and a task asks Redis for a PING every
//! `PROBE_INTERVAL`. When Redis answers, the task writes to Redis what the outage did: first
//! the resets of successful logins (`reset_on_success`), then the failures counted locally
//! (added to Redis' counts under the rule that counted them, so that an identity locked during
//! the outage is locked there, for a full lockout from the recovery), a batch at a time while
//! logins go on locally; then it holds logins back for the last batch (what was counted
//! meanwhile), empties the local store and lets logins go to Redis again. A failure counted
//! before a reset made meanwhile on another instance is dropped by Redis (see
//! `Refusals::counted_ago`). The local access log is not written through: the service's log
//! lines name every lockout started meanwhile.
//!
//! The locks that Redis' answers told of (`known_locks`) seed the local store when an outage
//! starts, so that an identity locked in Redis stays locked through the outage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::RwLock;
use tokio::task::AbortHandle;

use super::known_locks::{KnownLock, KnownLocks};
use super::login_call::LoginCall;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::keys::Keyspace;
use crate::store::any::AnyStore;
use crate::store::memory::MemoryStore;
use crate::store::{ImportedRecord, Store};

/// How often Redis is asked whether it answers again during an outage.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Identities written to Redis per command at recovery; also the most that the last batch,
/// written while logins wait, holds.
const WRITE_THROUGH_BATCH: usize = 500;

/// Resets of successful logins kept for the recovery at most (beyond it, Redis keeps what it
/// counted before them: the safe side).
const MAX_QUEUED_RESETS: usize = 100_000;

/// The local store and whether logins go to it now.
pub struct Insurance {
    shared: Arc<Shared>,
    recovery: Mutex<Option<AbortHandle>>,
    /// The locks seen in Redis' answers, for the next outage.
    known: Mutex<KnownLocks>,
}

struct Shared {
    redis: AnyStore,
    local: MemoryStore,
    /// True during an outage. Local logins hold it for reading, so that the recovery's last
    /// write (which takes it for writing) sees every local count.
    away: RwLock<bool>,
    /// The identities that successful logins cleared locally during the outage, to clear in
    /// Redis too (what it counted before them) at recovery.
    resets: Mutex<Vec<QueuedReset>>,
}

/// A successful login's reset made during the outage.
struct QueuedReset {
    keys: Keyspace,
    identities: Vec<Identity>,
    at: SystemTime,
}

impl Insurance {
    /// `redis`: the service's store, whose command timeout bounds each PING and write of the
    /// recovery; `local` empty.
    pub fn new(redis: AnyStore, local: MemoryStore) -> Self {
        Insurance {
            shared: Arc::new(Shared {
                redis,
                local,
                away: RwLock::new(false),
                resets: Mutex::default(),
            }),
            recovery: Mutex::new(None),
            known: Mutex::default(),
        }
    }

    /// Redis answered `call` with `output`: remembers the locks it tells of, and forgets
    /// those it cleared.
    pub fn redis_answered<C: LoginCall>(
        &self,
        engine: &Engine<AnyStore>,
        call: &C,
        output: &C::Output,
    ) {
        if C::CLEARS {
            let cleared = engine.cleared_on_success(call.attempt());
            let mut known = self.known.lock().expect("not poisoned");
            known.forget(engine.store().keys(), &cleared);
        }
        let Some((locked_by, remaining)) = C::locks(output) else {
            return;
        };
        let identities = engine.identities_of(call.attempt(), locked_by);
        let ends = Instant::now() + remaining;
        let mut known = self.known.lock().expect("not poisoned");
        known.remember(engine.store().keys(), identities, ends);
    }

    /// During an outage, runs `call` on `engine`'s local twin (its policy, on the local store
    /// in its keyspace) and answers its result; `None` when Redis is not known to be away.
    pub async fn while_away<C: LoginCall>(
        &self,
        engine: &Engine<AnyStore>,
        call: &C,
    ) -> Option<Result<C::Output>> {
        let away = self.shared.away.read().await;
        if !*away {
            return None;
        }
        Some(self.run_locally(engine, call).await)
    }

    /// Redis failed a login: starts the outage (and the task that waits for Redis) unless one
    /// is on, then runs `call` on `engine`'s local twin. When its reply was lost (`call` may
    /// have run in Redis, and the recovery would count it a second time), the twin answers
    /// it without recording it.
    pub async fn redis_failed<C: LoginCall>(
        &self,
        engine: &Engine<AnyStore>,
        call: &C,
        reply_lost: bool,
    ) -> Result<C::Output> {
        let mut away = self.shared.away.write().await;
        if !*away {
            *away = true;
            tracing::warn!(
                "Redis is away: logins are counted by this instance alone until it answers"
            );
            self.seed().await;
            let shared = self.shared.clone();
            let task = tokio::spawn(async move { shared.recover().await });
            let mut recovery = self.recovery.lock().expect("not poisoned");
            *recovery = Some(task.abort_handle());
        }
        // Held for reading from here on, with no gap in which a recovery could end the outage
        // and leave this login's count behind in the local store.
        let _away = away.downgrade();
        if reply_lost {
            return call.answer_unrecorded(&self.twin(engine)).await;
        }
        self.run_locally(engine, call).await
    }

    /// Runs `call` on `engine`'s local twin; a reset it makes is queued for Redis.
    async fn run_locally<C: LoginCall>(
        &self,
        engine: &Engine<AnyStore>,
        call: &C,
    ) -> Result<C::Output> {
        let output = call.run(&self.twin(engine)).await?;
        if C::CLEARS {
            let identities = engine.cleared_on_success(call.attempt());
            if !identities.is_empty() {
                self.shared.queue_reset(QueuedReset {
                    keys: engine.store().keys().clone(),
                    identities,
                    at: SystemTime::now(),
                });
            }
        }
        Ok(output)
    }

    /// Sets the locks known in force in the local store, each for what remains of it (with no
    /// failure count: at recovery, only what the outage counted is written to Redis).
    async fn seed(&self) {
        let now = Instant::now();
        let locks = self.known.lock().expect("not poisoned").in_force(now);
        let mut by_keys: HashMap<Keyspace, Vec<ImportedRecord>> = HashMap::new();
        for KnownLock {
            keys,
            identity,
            remaining,
        } in locks
        {
            by_keys.entry(keys).or_default().push(ImportedRecord {
                identity,
                failures: 0,
                first_failure: SystemTime::now(),
                last_failure: SystemTime::now(),
                user_agent: None,
                path: None,
                expires_in: remaining,
                locked_for: Some(remaining),
            });
        }
        for (keys, records) in by_keys {
            if let Err(err) = self
                .shared
                .local
                .with_keys(keys)
                .import_records(&records)
                .await
            {
                tracing::warn!(%err, "the locks known in force could not all be kept locally");
            }
        }
    }

    /// `engine`'s policy on the local store, in its keyspace.
    fn twin(&self, engine: &Engine<AnyStore>) -> Engine<AnyStore> {
        let local = self.shared.local.with_keys(engine.store().keys().clone());
        Engine::new(AnyStore::from(local), engine.policy().clone())
    }
}

impl Drop for Insurance {
    fn drop(&mut self) {
        if let Some(task) = self.recovery.lock().expect("not poisoned").take() {
            task.abort();
        }
    }
}

impl Shared {
    fn queue_reset(&self, reset: QueuedReset) {
        let mut resets = self.resets.lock().expect("not poisoned");
        if resets.len() < MAX_QUEUED_RESETS {
            resets.push(reset);
        } else if resets.len() == MAX_QUEUED_RESETS {
            tracing::warn!(
                "{MAX_QUEUED_RESETS} successful logins reset identities during the outage: \
                 later ones are not reset in Redis at recovery"
            );
        }
    }

    /// Waits for Redis, then writes what the outage did there and ends it. Logins go on
    /// locally while the bulk is written; they wait only for the last batch.
    async fn recover(&self) {
        let mut probe = tokio::time::interval(PROBE_INTERVAL);
        probe.tick().await;
        let mut written = 0;
        'outage: loop {
            probe.tick().await;
            if self.redis.ping().await.is_err() {
                continue;
            }
            loop {
                if let Err(err) = self.write_through(&mut written, usize::MAX).await {
                    tracing::warn!(%err, "Redis answered, but the write-through failed; retrying");
                    continue 'outage;
                }
                let mut away = self.away.write().await;
                match self.write_through(&mut written, WRITE_THROUGH_BATCH).await {
                    Ok(true) => {
                        self.local.forget_all();
                        *away = false;
                        tracing::info!(
                            identities = written,
                            "Redis answers again: the failures counted during the outage are written there"
                        );
                        return;
                    }
                    // More was counted meanwhile than the last batch may hold: another pass.
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(%err, "Redis answered, but the write-through failed; retrying");
                        continue 'outage;
                    }
                }
            }
        }
    }

    /// Writes the queued resets, then adds every local count not yet written to Redis, a
    /// batch at a time, each batch taken as written once sent (a batch whose reply was lost
    /// may have run: it is not sent again). Writes nothing, and answers false, when more than
    /// `most` identities are left to write; else true. Adds the identities written to
    /// `written`.
    async fn write_through(&self, written: &mut usize, most: usize) -> Result<bool> {
        let leftovers = self.local.leftovers();
        let resets = std::mem::take(&mut *self.resets.lock().expect("not poisoned"));
        let left: usize = leftovers.iter().map(|l| l.refusals.len()).sum::<usize>()
            + resets.iter().map(|r| r.identities.len()).sum::<usize>();
        if left > most {
            self.resets
                .lock()
                .expect("not poisoned")
                .splice(0..0, resets);
            return Ok(false);
        }
        // Resets first: a count written now would date the record after them, and keep what
        // Redis counted before them (see `RedisStore::reset_before`).
        let mut resets = resets.into_iter();
        while let Some(reset) = resets.next() {
            let redis = self.redis.with_keys(reset.keys.clone());
            if let Err(err) = redis.reset_before(&reset.identities, reset.at).await {
                let mut queued = self.resets.lock().expect("not poisoned");
                queued.splice(0..0, std::iter::once(reset).chain(resets));
                return Err(err);
            }
        }
        for leftover in leftovers {
            let redis = self.redis.with_keys(leftover.keys.clone());
            let local = self.local.with_keys(leftover.keys);
            for batch in leftover.refusals.chunks(WRITE_THROUGH_BATCH) {
                match redis
                    .record_refusals(batch, &[])
                    .await
                    .map_err(Error::of_write)
                {
                    Ok(_) => {
                        local.written(batch);
                        *written += batch.len();
                    }
                    Err(err) => {
                        if err.reply_lost() {
                            local.written(batch);
                        }
                        return Err(err);
                    }
                }
            }
        }
        Ok(true)
    }
}
