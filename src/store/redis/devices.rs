//! Device tokens' revocations: a time per username (`Keyspace::devices_revoked_key`), set by
//! a revocation, read with a login's locks; and unlock tokens' single use
//! (`Keyspace::unlock_key`), signed with the same secret.

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

pub(super) async fn use_unlock_token(store: &RedisStore, id: &str, ttl: Duration) -> Result<bool> {
    let command = redis::cmd("SET")
        .arg(store.keys.unlock_key(id))
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(millis(ttl).max(1))
        .clone();
    let reply = store.round_trip(&[command]).await?;
    Ok(matches!(reply.first(), Some(redis::Value::Okay)))
}
