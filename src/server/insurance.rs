//! `on_store_error = "local"`: while Redis is away, logins are counted and locked with the same
//! policy on an in-process store of this instance, and answered `"degraded": true` (each
//! instance counts alone: with N instances behind a balancer an attacker may get up to N times
//! the limit during the outage).
//!
//! The first login that finds Redis away starts the outage; from then on logins go to the local
//! store at once (no wait for Redis per login), and a task asks Redis for a PING every
//! `PROBE_INTERVAL`. When Redis answers, the task holds logins back for a moment, writes the
//! failures counted locally to Redis (added to Redis' counts under the rule that counted them,
//! so that an identity locked during the outage is locked there, for a full lockout from the
//! recovery), empties the local store and lets logins go to Redis again. The local access log
//! is not written through: the service's log lines name every lockout started meanwhile.
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
use crate::error::Result;
use crate::keys::Keyspace;
use crate::store::any::AnyStore;
use crate::store::memory::MemoryStore;
use crate::store::{ImportedRecord, Store};

/// How often Redis is asked whether it answers again during an outage.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Failures written to Redis per command at recovery.
const WRITE_THROUGH_BATCH: usize = 500;

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
    /// True during an outage. Local logins hold it for reading, so that the recovery's write
    /// (which takes it for writing) sees every local count.
    away: RwLock<bool>,
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
            }),
            recovery: Mutex::new(None),
            known: Mutex::default(),
        }
    }

    /// Redis answered `call` with `output`: remembers the locks it tells of.
    pub fn redis_answered<C: LoginCall>(
        &self,
        engine: &Engine<AnyStore>,
        call: &C,
        output: &C::Output,
    ) {
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
        Some(call.run(&self.twin(engine)).await)
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
        let twin = self.twin(engine);
        if reply_lost {
            return call.answer_unrecorded(&twin).await;
        }
        call.run(&twin).await
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
    /// Waits for Redis, then writes the local counts through and ends the outage.
    async fn recover(&self) {
        let mut probe = tokio::time::interval(PROBE_INTERVAL);
        probe.tick().await;
        loop {
            probe.tick().await;
            if self.redis.ping().await.is_err() {
                continue;
            }
            let mut away = self.away.write().await;
            match self.write_through().await {
                Ok(written) => {
                    self.local.forget_all();
                    *away = false;
                    tracing::info!(
                        identities = written,
                        "Redis answers again: the failures counted during the outage are written there"
                    );
                    return;
                }
                Err(err) => {
                    tracing::warn!(%err, "Redis answered, but the write-through failed; retrying")
                }
            }
        }
    }

    /// Adds every local count to Redis, a batch at a time; each batch written is forgotten
    /// locally at once, so that a failure midway writes nothing twice. Answers how many
    /// identities were written.
    async fn write_through(&self) -> Result<usize> {
        let mut written = 0;
        for leftover in self.local.leftovers() {
            let redis = self.redis.with_keys(leftover.keys.clone());
            let local = self.local.with_keys(leftover.keys.clone());
            // A lock seeded at the outage's start, and not failed since, has nothing to add.
            let counted: Vec<_> = leftover
                .refusals
                .into_iter()
                .filter(|r| r.count > 0)
                .collect();
            for batch in counted.chunks(WRITE_THROUGH_BATCH) {
                redis.record_refusals(batch, &[]).await?;
                let identities: Vec<_> = batch.iter().map(|r| r.identity.clone()).collect();
                local.forget(&identities);
                written += batch.len();
            }
        }
        Ok(written)
    }
}
