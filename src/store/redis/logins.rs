//! The login path: `fail.lua` calls (one per shard of the identities, the IP's spraying count
//! in its shard's), lock reads, and the access-log entries that go with them.

use std::time::Duration;

use redis::Cmd;

use super::{millis, remaining, since_epoch, RedisStore};
use crate::attempt::Attempt;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::keys::{record_field, KeyKind, Keyspace, RESET_GUARD, SHARDS};
use crate::policy::Repeat;
use crate::record::IdentityState;
use crate::store::scripts::{FAIL, LOG};
use crate::store::{FailureRule, LogAppend, Refusals, SprayingCount};

impl RedisStore {
    pub(super) fn log_request(&self, log: LogAppend<'_>) -> Cmd {
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

    /// One `fail.lua` call on `failures`, identities of one shard, counting `spraying` and
    /// appending `log` (each when given, its keys in that shard); `refused` attempts (decided
    /// on locks read before, coalesced by a lock cache, or counted during an outage) are
    /// dropped for an identity (or IP) reset since they were counted (see
    /// `Keyspace::reset_marker`).
    fn fail_request(
        &self,
        failures: &[Failure<'_>],
        refused: bool,
        spraying: Option<SprayingCount<'_>>,
        log: Option<LogAppend<'_>>,
    ) -> Cmd {
        // Only the keys and arguments this call uses: Redis pays for each one it receives.
        let mut keys: Vec<String> = Vec::with_capacity(4 * failures.len() + 5);
        for failure in failures {
            let identity = failure.identity;
            keys.push(self.keys.key(KeyKind::Attempt, identity));
            keys.push(self.keys.key(lock_kind(failure.rule), identity));
            if repeats(failure.rule).is_some() {
                keys.push(self.keys.key(KeyKind::Lockouts, identity));
            }
            if refused {
                keys.push(self.keys.reset_marker(identity.tag()));
            }
        }
        if let Some(spraying) = spraying {
            let [set, lock, lockouts, would_lock] = self.spraying_keys(spraying.ip);
            keys.push(set);
            keys.push(if spraying.rule.observe {
                would_lock
            } else {
                lock
            });
            if repeats(&spraying.rule).is_some() {
                keys.push(lockouts);
            }
            if refused {
                keys.push(self.keys.reset_marker(spraying.ip.tag()));
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
            repeat_args(rule, &mut command);
            if refused {
                command.arg(millis(failure.counted_ago));
            }
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
        if let Some(spraying) = spraying {
            let rule = &spraying.rule;
            command.arg("spraying");
            match spraying.member {
                Some(member) => command.arg(member),
                None => command.arg(""),
            };
            command
                .arg(rule.failure_limit)
                .arg(millis(rule.cooloff))
                .arg(millis(rule.lockout_duration));
            repeat_args(rule, &mut command);
            if refused {
                // Refused on locks read just before.
                command.arg(millis(RESET_GUARD));
            }
        }
        if let Some(log) = log {
            self.log_args(log, &mut command);
        }
        command
    }

    /// `fail.lua` calls for `failures`, one per shard among them and `spraying`'s (`log`
    /// appended by the call of its shard, or on its own), in one round trip; each identity's
    /// new state, in order, then `spraying`'s.
    async fn record(
        &self,
        failures: &[Failure<'_>],
        refused: bool,
        spraying: Option<SprayingCount<'_>>,
        log: Option<LogAppend<'_>>,
        more_logs: &[LogAppend<'_>],
    ) -> Result<Vec<IdentityState>> {
        // Shards in the order their first identity comes, each with its identities' places,
        // then the spraying count's when none of them is its.
        let mut shards: Vec<(usize, Vec<usize>)> = Vec::new();
        for (place, failure) in failures.iter().enumerate() {
            let shard = Keyspace::shard_of_tag(failure.identity.tag());
            match shards.iter_mut().find(|(of, _)| *of == shard) {
                Some((_, places)) => places.push(place),
                None => shards.push((shard, vec![place])),
            }
        }
        let spraying_shard = spraying.map(|spraying| Keyspace::shard_of_tag(spraying.ip.tag()));
        if let Some(shard) = spraying_shard {
            if !shards.iter().any(|(of, _)| *of == shard) {
                shards.push((shard, Vec::new()));
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
                let spraying = spraying.filter(|_| spraying_shard == Some(*shard));
                self.fail_request(&group, refused, spraying, log)
            })
            .collect();
        requests.extend(log_left.map(|log| self.log_request(log)));
        requests.extend(more_logs.iter().map(|log| self.log_request(*log)));
        let replies = self.round_trip(&requests).await?;
        let mut states =
            vec![IdentityState::CLEAN; failures.len() + usize::from(spraying.is_some())];
        for ((shard, places), reply) in shards.iter().zip(replies) {
            let values: Vec<i64> = self.parse(reply)?;
            // The spraying count's state comes after the identities', in its shard's call.
            let places = places
                .iter()
                .copied()
                .chain((spraying_shard == Some(*shard)).then_some(failures.len()));
            let places: Vec<usize> = places.collect();
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
}

/// A rule's repeat offenders as `fail.lua` takes them after its lockout duration: the lockout
/// memory in ms, then, unless it is 0, the backoff and the longest lockout.
fn repeat_args(rule: &FailureRule, command: &mut Cmd) {
    match repeats(rule) {
        Some((memory, repeat)) => command
            .arg(memory)
            .arg(repeat.backoff.0)
            .arg(millis(repeat.max_lockout)),
        None => command.arg(0),
    };
}

/// A rule's repeat offenders as `fail.lua` takes them: the lockout memory in ms, which is 0
/// (off, and then the script expects neither the lockout-count key nor the backoff) for a
/// memory under a millisecond.
fn repeats(rule: &FailureRule) -> Option<(u64, Repeat)> {
    let repeat = rule.repeat?;
    Some((millis(repeat.memory), repeat)).filter(|(memory, _)| *memory != 0)
}

/// The lock flag a failure under `rule` sets: `fail.lua` sets the one it is given.
fn lock_kind(rule: &FailureRule) -> KeyKind {
    if rule.observe {
        KeyKind::WouldLock
    } else {
        KeyKind::Lock
    }
}

/// Failures to add to one identity, as `fail.lua` takes them.
#[derive(Debug, Clone, Copy)]
struct Failure<'a> {
    identity: &'a Identity,
    rule: &'a FailureRule,
    count: u64,
    /// For refused attempts: how long ago they were counted (see `Refusals::counted_ago`).
    counted_ago: Duration,
    user_agent: Option<&'a str>,
    path: Option<&'a str>,
}

pub(super) async fn lock_states(
    store: &RedisStore,
    identities: &[Identity],
    spraying: Option<&Identity>,
) -> Result<Vec<Option<Duration>>> {
    let mut requests: Vec<Cmd> = identities
        .iter()
        .map(|identity| {
            store.on_identity(identity, |[_, lock, _]| {
                redis::cmd("PTTL").arg(lock).clone()
            })
        })
        .collect();
    if let Some(ip) = spraying {
        let [_, lock, _, _] = store.spraying_keys(ip);
        requests.push(redis::cmd("PTTL").arg(lock).clone());
    }
    store
        .round_trip(&requests)
        .await?
        .into_iter()
        .map(|reply| store.parse(reply).map(remaining))
        .collect()
}

pub(super) async fn peek(
    store: &RedisStore,
    identities: &[Identity],
    spraying: Option<&Identity>,
) -> Result<Vec<IdentityState>> {
    read_states(store, identities, false, spraying).await
}

pub(super) async fn peek_observed(
    store: &RedisStore,
    identities: &[Identity],
    spraying: Option<&Identity>,
) -> Result<Vec<IdentityState>> {
    read_states(store, identities, true, spraying).await
}

/// Each identity's count and lock, then `spraying`'s distinct usernames and lock, and with
/// `observed` as each lock the longer of the lock and the would-be lock, in one round trip.
async fn read_states(
    store: &RedisStore,
    identities: &[Identity],
    observed: bool,
    spraying: Option<&Identity>,
) -> Result<Vec<IdentityState>> {
    let kinds: &[KeyKind] = if observed {
        &[KeyKind::Lock, KeyKind::WouldLock]
    } else {
        &[KeyKind::Lock]
    };
    let mut requests: Vec<Cmd> = identities
        .iter()
        .flat_map(|identity| {
            let count = store.on_identity(identity, |[record, _, _]| {
                redis::cmd("HGET")
                    .arg(record)
                    .arg(record_field::FAILURES)
                    .clone()
            });
            let locks = kinds.iter().map(|kind| {
                redis::cmd("PTTL")
                    .arg(store.keys.key(*kind, identity))
                    .clone()
            });
            std::iter::once(count).chain(locks)
        })
        .collect();
    if let Some(ip) = spraying {
        let [set, lock, _, would_lock] = store.spraying_keys(ip);
        requests.push(redis::cmd("SCARD").arg(set).clone());
        requests.push(redis::cmd("PTTL").arg(lock).clone());
        if observed {
            requests.push(redis::cmd("PTTL").arg(would_lock).clone());
        }
    }
    let mut replies = store.round_trip(&requests).await?.into_iter();
    let mut states = Vec::with_capacity(identities.len() + 1);
    for _ in identities {
        let Some(failures) = replies.next() else {
            break;
        };
        let failures: Option<u64> = store.parse(failures)?;
        let mut lock_remaining = None;
        for pttl in replies.by_ref().take(kinds.len()) {
            lock_remaining = lock_remaining.max(remaining(store.parse(pttl)?));
        }
        states.push(IdentityState {
            failures: failures.unwrap_or(0),
            lock_remaining,
            ..IdentityState::CLEAN
        });
    }
    if let Some(usernames) = replies.next() {
        let mut lock_remaining = None;
        for pttl in replies {
            lock_remaining = lock_remaining.max(remaining(store.parse(pttl)?));
        }
        states.push(IdentityState {
            failures: store.parse(usernames)?,
            lock_remaining,
            ..IdentityState::CLEAN
        });
    }
    Ok(states)
}

pub(super) async fn record_failures(
    store: &RedisStore,
    identities: &[Identity],
    rules: &[FailureRule],
    attempt: &Attempt,
    refused: bool,
    log: Option<LogAppend<'_>>,
    spraying: Option<SprayingCount<'_>>,
) -> Result<Vec<IdentityState>> {
    let failures: Vec<Failure<'_>> = identities
        .iter()
        .zip(rules)
        .map(|(identity, rule)| Failure {
            identity,
            rule,
            count: 1,
            // Refused on locks read just before.
            counted_ago: RESET_GUARD,
            user_agent: attempt.user_agent.as_deref(),
            path: attempt.path.as_deref(),
        })
        .collect();
    store.record(&failures, refused, spraying, log, &[]).await
}

pub(super) async fn record_refusals(
    store: &RedisStore,
    refusals: &[Refusals],
    logs: &[LogAppend<'_>],
) -> Result<Vec<IdentityState>> {
    let failures: Vec<Failure<'_>> = refusals
        .iter()
        .map(|refusal| Failure {
            identity: &refusal.identity,
            rule: &refusal.rule,
            count: refusal.count,
            counted_ago: refusal.counted_ago,
            user_agent: refusal.user_agent.as_deref(),
            path: refusal.path.as_deref(),
        })
        .collect();
    store.record(&failures, true, None, None, logs).await
}

pub(super) async fn append_log(store: &RedisStore, log: LogAppend<'_>) -> Result<()> {
    store.round_trip(&[store.log_request(log)]).await?;
    Ok(())
}
