//! The access log: one stream per shard, read newest first across shards, trimmed by age.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use redis::Cmd;

use super::{from_millis, millis, since_epoch, RedisStore};
use crate::error::{Error, Result};
use crate::keys::{Keyspace, SHARDS};
use crate::record::{LogEntry, LogFilter, Outcome};
use crate::store::scripts::TRIM_LOG;

/// Access-log entries read per shard and round trip.
const LOG_BATCH: usize = 500;

/// Where reading one access-log shard is.
struct ShardRead {
    key: String,
    /// Exclusive upper bound of the next page (`+` at first).
    newest: String,
    matched: usize,
    exhausted: bool,
}

impl RedisStore {
    fn parse_log_entry(&self, id: &str, mut fields: HashMap<String, String>) -> Result<LogEntry> {
        let unexpected = |detail: String| Error::UnexpectedReply {
            target: self.target.clone(),
            detail,
        };
        let ms = id
            .split('-')
            .next()
            .and_then(|ms| ms.parse().ok())
            .ok_or_else(|| unexpected(format!("access-log entry ID {id:?}")))?;
        let ip: IpAddr = fields
            .get("ip")
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| unexpected(format!("access-log entry {id} without a valid ip")))?;
        let outcome = fields
            .get("outcome")
            .and_then(|name| Outcome::parse(name))
            .ok_or_else(|| unexpected(format!("access-log entry {id} without a valid outcome")))?;
        Ok(LogEntry {
            time: from_millis(ms),
            ip,
            username: fields.remove("username"),
            user_agent: fields.remove("user_agent"),
            path: fields.remove("path"),
            outcome,
            count: fields
                .get("count")
                .and_then(|count| count.parse().ok())
                .unwrap_or(1),
        })
    }
}

pub(super) async fn logs(
    store: &RedisStore,
    filter: &LogFilter,
    limit: usize,
    max_age: Option<Duration>,
) -> Result<Vec<LogEntry>> {
    // The entry IDs' milliseconds are the entries' times: a period bounds the reads.
    let retained = max_age.map(|age| millis(since_epoch().saturating_sub(age)));
    let from = filter
        .period
        .from
        .map(|from| millis(from.duration_since(UNIX_EPOCH).unwrap_or_default()));
    let oldest = retained
        .max(from)
        .map_or("-".to_string(), |ms| ms.to_string());
    let newest = filter.period.to.map_or("+".to_string(), |to| {
        format!(
            "({}-0",
            millis(to.duration_since(UNIX_EPOCH).unwrap_or_default())
        )
    });
    // One IP's entries are all in its shard; other filters read every shard.
    let shards: Vec<usize> = match filter.ip {
        Some(ip) => vec![Keyspace::log_shard(ip)],
        None => (0..SHARDS).collect(),
    };
    let mut reads: Vec<ShardRead> = shards
        .into_iter()
        .map(|shard| ShardRead {
            key: store.keys.log_key(shard),
            newest: newest.clone(),
            matched: 0,
            exhausted: false,
        })
        .collect();
    let mut entries = Vec::new();
    loop {
        let active: Vec<&mut ShardRead> = reads
            .iter_mut()
            .filter(|read| !read.exhausted && read.matched < limit)
            .collect();
        if active.is_empty() {
            break;
        }
        let requests: Vec<Cmd> = active
            .iter()
            .map(|read| {
                let mut command = redis::cmd("XREVRANGE");
                command
                    .arg(&read.key)
                    .arg(&read.newest)
                    .arg(&oldest)
                    .arg("COUNT")
                    .arg(LOG_BATCH);
                command
            })
            .collect();
        let replies = store.round_trip(&requests).await?;
        for (read, reply) in active.into_iter().zip(replies) {
            let page: Vec<(String, HashMap<String, String>)> = store.parse(reply)?;
            read.exhausted = page.len() < LOG_BATCH;
            if let Some((last_id, _)) = page.last() {
                read.newest = format!("({last_id}");
            }
            for (id, fields) in page {
                let entry = store.parse_log_entry(&id, fields)?;
                if filter.matches(&entry) && read.matched < limit {
                    read.matched += 1;
                    entries.push(entry);
                }
            }
        }
    }
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.time));
    entries.truncate(limit);
    Ok(entries)
}

pub(super) async fn trim_logs(store: &RedisStore, age: Duration) -> Result<u64> {
    let requests: Vec<Cmd> = (0..SHARDS)
        .map(|shard| {
            let key = store.keys.log_key(shard);
            TRIM_LOG.evalsha(&[&key], millis(age))
        })
        .collect();
    let mut removed = 0;
    for reply in store.round_trip(&requests).await? {
        removed += store.parse::<u64>(reply)?;
    }
    Ok(removed)
}
