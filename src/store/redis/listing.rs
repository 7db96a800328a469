//! Listings: SCANs over every node for the attempt records a target selects, and the records
//! they name, a page at a time.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, UNIX_EPOCH};

use redis::Cmd;

use super::{remaining, RedisStore};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::keys::{record_field, KeyKind};
use crate::record::{AttemptRecord, SprayingRecord};
use crate::spraying;
use crate::store::connection::Node;
use crate::store::Page;
use crate::target::Target;

/// Keys asked for per SCAN call.
pub(super) const SCAN_BATCH: usize = 1000;

/// Attempt records fetched per round trip when listing.
const FETCH_BATCH: usize = 500;

/// About how many keys one page of the admin page may look at.
const PAGE_WORK: usize = 100_000;

impl RedisStore {
    /// A scan over every node for the keys of `kind` (or both kinds) that `target` may select.
    /// The nodes are sorted so that a page cursor means the same walk on the next request.
    pub(super) async fn scan(&self, target: &Target, kind: Option<KeyKind>) -> Result<Scan> {
        let mut nodes = self
            .connection
            .nodes()
            .await
            .map_err(|err| self.error(err))?;
        nodes.sort();
        let patterns = self.keys.scan_patterns(target, kind);
        let walks = nodes
            .into_iter()
            .flat_map(|node| {
                patterns
                    .iter()
                    .map(move |pattern| (node.clone(), pattern.clone()))
            })
            .collect();
        Ok(Scan {
            walks,
            walk: 0,
            cursor: 0,
        })
    }

    /// The next page of keys matching the scan, as (key, kind, identity), asking SCAN to look
    /// at about `count` keys; `None` when every walk is done.
    pub(super) async fn next_page(
        &self,
        scan: &mut Scan,
        target: &Target,
        count: usize,
    ) -> Result<Option<Vec<(String, KeyKind, Identity)>>> {
        let Some((node, pattern)) = scan.walks.get(scan.walk) else {
            return Ok(None);
        };
        let mut command = redis::cmd("SCAN");
        command
            .arg(scan.cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let reply = self
            .connection
            .on_node(node, &command)
            .await
            .map_err(|err| self.error(err))?;
        let (cursor, keys): (u64, Vec<String>) = self.parse(reply)?;
        scan.cursor = cursor;
        if cursor == 0 {
            scan.walk += 1;
        }
        Ok(Some(
            keys.into_iter()
                .filter_map(|key| {
                    let (kind, identity) = self.keys.parse(&key)?;
                    target.matches(&identity).then_some((key, kind, identity))
                })
                .collect(),
        ))
    }

    async fn fetch_records(&self, identities: &[Identity]) -> Result<Vec<AttemptRecord>> {
        let mut requests: Vec<Cmd> = Vec::with_capacity(8 * identities.len());
        for identity in identities {
            let [record, lock, lockouts] = self.identity_keys(identity);
            requests.push(redis::cmd("HGETALL").arg(record).clone());
            requests.push(redis::cmd("PTTL").arg(lock).clone());
            requests.push(redis::cmd("GET").arg(lockouts).clone());
            let would_lock = self.keys.key(KeyKind::WouldLock, identity);
            requests.push(redis::cmd("PTTL").arg(would_lock).clone());
            if spraying::is_counted(identity) {
                let [set, lock, lockouts, would_lock] = self.spraying_keys(identity);
                requests.push(redis::cmd("SCARD").arg(set).clone());
                requests.push(redis::cmd("PTTL").arg(lock).clone());
                requests.push(redis::cmd("GET").arg(lockouts).clone());
                requests.push(redis::cmd("PTTL").arg(would_lock).clone());
            }
        }
        let mut replies = self.round_trip(&requests).await?.into_iter();
        let mut next = || replies.next().unwrap_or(redis::Value::Nil);
        let mut records = Vec::with_capacity(identities.len());
        for identity in identities {
            let mut fields: HashMap<String, String> = self.parse(next())?;
            let lock_remaining = remaining(self.parse(next())?);
            let lockouts: Option<u64> = self.parse(next())?;
            let would_lock_remaining = remaining(self.parse(next())?);
            let spraying = if spraying::is_counted(identity) {
                let usernames: u64 = self.parse(next())?;
                let lock_remaining = remaining(self.parse(next())?);
                let lockouts: Option<u64> = self.parse(next())?;
                let would_lock_remaining = remaining(self.parse(next())?);
                let any = usernames > 0 || lock_remaining.is_some();
                (any || would_lock_remaining.is_some()).then_some(SprayingRecord {
                    usernames,
                    lock_remaining,
                    would_lock_remaining,
                    lockouts: lockouts.unwrap_or(0),
                })
            } else {
                None
            };
            if fields.is_empty()
                && lock_remaining.is_none()
                && would_lock_remaining.is_none()
                && spraying.is_none()
            {
                continue; // expired between the scan and now
            }
            let time = |secs: Option<String>| {
                secs?
                    .parse()
                    .ok()
                    .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
            };
            records.push(AttemptRecord {
                identity: identity.clone(),
                failures: fields
                    .get(record_field::FAILURES)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                first_failure: time(fields.remove(record_field::FIRST)),
                last_failure: time(fields.remove(record_field::LAST)),
                user_agent: fields
                    .remove(record_field::USER_AGENT)
                    .filter(|v| !v.is_empty()),
                path: fields.remove(record_field::PATH).filter(|v| !v.is_empty()),
                lock_remaining,
                would_lock_remaining,
                lockouts: lockouts.unwrap_or(0),
                spraying,
            });
        }
        Ok(records)
    }
}

/// Where a scan is: its (node, pattern) walks, the one under way, and that walk's cursor.
pub(super) struct Scan {
    walks: Vec<(Node, String)>,
    walk: usize,
    cursor: u64,
}

impl Scan {
    fn is_done(&self) -> bool {
        self.walk >= self.walks.len()
    }

    /// `<walk>-<cursor>`, for a page link.
    fn position(&self) -> String {
        format!("{}-{}", self.walk, self.cursor)
    }

    fn resume(&mut self, position: &str) -> Result<()> {
        let parsed = position
            .split_once('-')
            .and_then(|(walk, cursor)| Some((walk.parse().ok()?, cursor.parse().ok()?)));
        match parsed {
            Some((walk, cursor)) if walk <= self.walks.len() => {
                (self.walk, self.cursor) = (walk, cursor);
                Ok(())
            }
            _ => Err(Error::invalid(format!(
                "cursor: {position:?} is not a page cursor"
            ))),
        }
    }
}

fn sort_newest_first(records: &mut [AttemptRecord]) {
    records.sort_by(|a, b| {
        b.last_failure
            .cmp(&a.last_failure)
            .then_with(|| a.identity.tag().cmp(b.identity.tag()))
    });
}

pub(super) async fn list(store: &RedisStore, target: &Target) -> Result<Vec<AttemptRecord>> {
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor = None;
    loop {
        let page = page(store, target, cursor.as_deref(), FETCH_BATCH).await?;
        // A record that several scan patterns match (Target::Either) comes once.
        records.extend(
            page.records
                .into_iter()
                .filter(|record| seen.insert(record.identity.tag().to_string())),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    sort_newest_first(&mut records);
    Ok(records)
}

pub(super) async fn records(
    store: &RedisStore,
    identities: &[Identity],
) -> Result<Vec<AttemptRecord>> {
    let mut records = Vec::with_capacity(identities.len());
    for batch in identities.chunks(FETCH_BATCH) {
        records.extend(store.fetch_records(batch).await?);
    }
    Ok(records)
}

pub(super) async fn page(
    store: &RedisStore,
    target: &Target,
    cursor: Option<&str>,
    size: usize,
) -> Result<Page> {
    // A record's hash outlives its lock flag, and an IP's spraying set its spraying lock
    // (fail.lua gives each the longer TTL), so walking the hashes and the sets finds every
    // record.
    let mut scan = store.scan(target, None).await?;
    if let Some(cursor) = cursor {
        scan.resume(cursor)?;
    }
    let mut seen = HashSet::new();
    // IPs this page found by their spraying set alone: one that also has a hash is listed by
    // the page that finds the hash, so that it comes once.
    let mut by_spraying = HashSet::new();
    let mut identities = Vec::new();
    let mut count = size.max(1);
    let mut examined = 0;
    // SCAN looks at about `count` keys a call: grow it while a selective filter finds
    // little, and stop after about PAGE_WORK keys so that a page stays fast.
    while identities.len() < size && examined < PAGE_WORK {
        let Some(keys) = store.next_page(&mut scan, target, count).await? else {
            break;
        };
        examined += count;
        if keys.len() < size / 2 {
            count = (count * 4).min(SCAN_BATCH * 10);
        }
        for (_, kind, identity) in keys {
            let tag = identity.tag().to_string();
            match kind {
                KeyKind::Attempt => {
                    by_spraying.remove(&tag);
                }
                KeyKind::Spraying if !seen.contains(&tag) => {
                    by_spraying.insert(tag.clone());
                }
                _ => continue,
            }
            if seen.insert(tag) {
                identities.push(identity);
            }
        }
    }
    let mut records = records(store, &identities).await?;
    records.retain(|record| {
        record.first_failure.is_none() || !by_spraying.contains(record.identity.tag())
    });
    sort_newest_first(&mut records);
    Ok(Page {
        records,
        next: (!scan.is_done()).then(|| scan.position()),
    })
}
