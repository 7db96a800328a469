//! Device tokens' revocations: a time per username (`Keyspace::devices_revoked_key`), set by
//! a revocation, read with a login's locks.

use std::time::Duration;

use super::{millis, RedisStore};
use crate::error::Result;

pub(super) async fn devices_revoked(store: &RedisStore, username: &str) -> Result<Option<u64>> {
    let command = redis::cmd("GET")
        .arg(store.keys.devices_revoked_key(username))
        .clone();
    let reply = store.round_trip(&[command]).await?;
    store.parse(reply.into_iter().next().unwrap_or(redis::Value::Nil))
}

pub(super) async fn revoke_devices(
    store: &RedisStore,
    usernames: &[String],
    at: u64,
    ttl: Duration,
) -> Result<()> {
    let requests: Vec<redis::Cmd> = usernames
        .iter()
        .map(|username| {
            redis::cmd("SET")
                .arg(store.keys.devices_revoked_key(username))
                .arg(at)
                .arg("PX")
                .arg(millis(ttl).max(1))
                .clone()
        })
        .collect();
    store.round_trip(&requests).await.map(drop)
}
