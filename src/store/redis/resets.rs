//! Resets: reset markers, deletions and the notice on the reset channel, run to the end even
//! when the caller stops waiting; and the watch on that channel.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::SystemTime;

use redis::{Cmd, RedisError};

use super::listing::SCAN_BATCH;
use super::{epoch_secs, millis, RedisStore};
use crate::error::Result;
use crate::identity::Identity;
use crate::keys::{KeyKind, Keyspace, RESET_GUARD};
use crate::spraying;
use crate::store::scripts::RESET_BEFORE;
use crate::store::{LogAppend, Progress, ResetNotice};
use crate::target::Target;

const UNLINK_BATCH: usize = 500;

impl RedisStore {
    /// Leaves the reset markers of `tags`, deletes `keys` in batches, then tells the reset
    /// channel which identities went, in that order and to the end even if the caller stops
    /// waiting (see `run_to_completion`). `sprayings`: the subjects of the spraying locks that
    /// go, whose ends are dropped as the identities' are.
    async fn unlink(
        &self,
        keys: Vec<String>,
        tags: Vec<String>,
        sprayings: Vec<String>,
    ) -> Result<()> {
        let store = self.clone();
        run_to_completion(async move {
            let subjects: Vec<String> = tags.iter().cloned().chain(sprayings).collect();
            let mut markers = store.forget_lock_ends_requests(&subjects);
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

    /// ZREM of `tags` (lock subjects: identities' tags, spraying subjects) from their lock-end
    /// shards: a reset lock is not told as run out.
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

    /// `SET <reset marker> <life> PX <life>`, the life in ms: the reset's age is the value
    /// minus the marker's PTTL (see `scripts/fail.lua`).
    fn reset_marker_request(&self, tag: &str) -> Cmd {
        let marker = self.keys.reset_marker(tag);
        let life = millis(self.options.reset_memory.max(RESET_GUARD));
        let command = redis::cmd("SET")
            .arg(&marker)
            .arg(life)
            .arg("PX")
            .arg(life)
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

pub(super) async fn watch_resets(
    store: &RedisStore,
    on_notice: &(dyn Fn(ResetNotice) + Send + Sync),
) -> Result<()> {
    // A lookup and a connection (two hops through Sentinels), then the subscription.
    let subscribed = tokio::time::timeout(store.options.connect_timeout.saturating_mul(3), async {
        let mut pubsub = store.endpoint.pubsub().await?;
        pubsub.subscribe(store.keys.reset_channel()).await?;
        Ok::<_, RedisError>(pubsub)
    })
    .await
    .unwrap_or_else(|_| {
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no subscription to the reset channel in time",
        )))
    });
    let pubsub = subscribed.map_err(|err| store.error(err))?;
    on_notice(ResetNotice::Listening);
    let mut messages = pubsub.into_on_message();
    while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
        let tags: String = message.get_payload().map_err(|err| store.error(err))?;
        on_notice(ResetNotice::Removed(
            tags.lines().map(String::from).collect(),
        ));
    }
    Err(store.error(RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the reset channel closed",
    ))))
}

pub(super) async fn clear(
    store: &RedisStore,
    identities: &[Identity],
    with_spraying: bool,
    log: Option<LogAppend<'_>>,
) -> Result<u64> {
    // Each identity's marker first, then its deletion, in one slot: no coalesced refusal can
    // land between them (see `Keyspace::reset_marker`).
    let tags: Vec<String> = identities.iter().map(|i| i.tag().to_string()).collect();
    let sprayings = identities
        .iter()
        .filter(|identity| with_spraying && spraying::is_counted(identity));
    let subjects: Vec<String> = tags
        .iter()
        .cloned()
        .chain(sprayings.map(spraying::subject))
        .collect();
    let mut requests = store.forget_lock_ends_requests(&subjects);
    let forgotten = requests.len();
    requests.extend(identities.iter().flat_map(|identity| {
        let mut keys = store.identity_keys(identity).to_vec();
        keys.push(store.keys.key(KeyKind::WouldLock, identity));
        if with_spraying && spraying::is_counted(identity) {
            keys.extend(store.spraying_keys(identity));
        }
        [
            store.reset_marker_request(identity.tag()),
            redis::cmd("UNLINK").arg(keys).clone(),
        ]
    }));
    requests.extend(log.map(|log| store.log_request(log)));
    let owned = store.clone();
    let replies = run_to_completion(async move {
        let replies = owned.round_trip(&requests).await?;
        owned.announce_resets(&tags).await?;
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
        removed += u64::from(store.parse::<u64>(reply)? > 0);
    }
    Ok(removed)
}

/// A reset made `ago` (at `at` on this instance's clock) that could not reach Redis then:
/// each identity's keys are deleted unless it failed since (see `scripts/reset_before.lua`),
/// and its marker drops what was counted before it. Tells the reset channel of those deleted;
/// answers how many.
pub(super) async fn reset_before(
    store: &RedisStore,
    identities: &[Identity],
    at: SystemTime,
) -> Result<u64> {
    let ago = SystemTime::now().duration_since(at).unwrap_or_default();
    let life = millis(store.options.reset_memory.max(RESET_GUARD));
    let requests: Vec<Cmd> = identities
        .iter()
        .map(|identity| {
            let [record, lock, lockouts] = store.identity_keys(identity);
            let would_lock = store.keys.key(KeyKind::WouldLock, identity);
            let marker = store.keys.reset_marker(identity.tag());
            RESET_BEFORE.evalsha(
                &[record, lock, lockouts, would_lock, marker],
                (epoch_secs(at), life, millis(ago)),
            )
        })
        .collect();
    let replies = store.round_trip(&requests).await?;
    let mut removed = Vec::new();
    for (identity, reply) in identities.iter().zip(replies) {
        if store.parse::<u64>(reply)? > 0 {
            removed.push(identity.tag().to_string());
        }
    }
    let forget = store.forget_lock_ends_requests(&removed);
    if !forget.is_empty() {
        store.round_trip(&forget).await?;
    }
    store.announce_resets(&removed).await?;
    Ok(removed.len() as u64)
}

pub(super) async fn remove(
    store: &RedisStore,
    target: &Target,
    dry_run: bool,
    progress: Progress<'_>,
) -> Result<u64> {
    let mut records = HashSet::new();
    let mut doomed: Vec<String> = Vec::new();
    let mut doomed_tags: HashSet<String> = HashSet::new();
    let mut doomed_sprayings: HashSet<String> = HashSet::new();
    let mut scan = store.scan(target, None).await?;
    while let Some(page) = store.next_page(&mut scan, target, SCAN_BATCH).await? {
        for (key, kind, identity) in page {
            if !dry_run {
                doomed.push(key);
                doomed_tags.insert(identity.tag().to_string());
                if kind.is_spraying() {
                    doomed_sprayings.insert(spraying::subject(&identity));
                }
            }
            records.insert(identity.tag().to_string());
        }
        // Told before the deletion: a caller that stops waiting knows an upper bound of
        // what went.
        progress(records.len() as u64);
        if doomed.len() >= UNLINK_BATCH {
            store
                .unlink(
                    std::mem::take(&mut doomed),
                    std::mem::take(&mut doomed_tags).into_iter().collect(),
                    std::mem::take(&mut doomed_sprayings).into_iter().collect(),
                )
                .await?;
        }
    }
    store
        .unlink(
            doomed,
            doomed_tags.into_iter().collect(),
            doomed_sprayings.into_iter().collect(),
        )
        .await?;
    Ok(records.len() as u64)
}
