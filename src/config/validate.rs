//! The configuration as written, validated into a `Config`.

use super::{api_tokens, bounded, Config, Listen, OnStoreError, RawConfig, MIN_MEMORY_MAX_BYTES};
use crate::error::{Error, Result};
use crate::keys::Keyspace;
use crate::policy::IpList;
use crate::webhook::Webhook;

/// `view_scan_limit` at most: ten million records, about two and a half minutes a page view.
const MAX_VIEW_SCAN_LIMIT: usize = 10_000_000;

impl RawConfig {
    pub(super) fn validate(self) -> Result<Config> {
        let listen = Listen::parse(&self.listen)?;
        bounded("command_timeout", self.command_timeout)?;
        bounded("bulk_timeout", self.bulk_timeout)?;
        bounded("header_read_timeout", self.header_read_timeout)?;
        bounded("body_read_timeout", self.body_read_timeout)?;
        bounded("drain_timeout", self.drain_timeout)?;
        if !(1..=MAX_VIEW_SCAN_LIMIT).contains(&self.view_scan_limit) {
            return Err(Error::Config(format!(
                "view_scan_limit: from 1 to {MAX_VIEW_SCAN_LIMIT} records (each costs about 15 us \
                 per page view: docs/performance.md)"
            )));
        }
        if self.max_connections == 0 {
            return Err(Error::Config("max_connections: must be at least 1".into()));
        }
        bounded("admin.cooloff", self.admin.cooloff)?;
        if self.admin.path.is_empty() || !self.admin.path.starts_with('/') {
            return Err(Error::Config(format!(
                "admin.path: {:?} must start with /",
                self.admin.path
            )));
        }
        let redis = self.redis_endpoint()?;
        if redis.is_none() && self.on_store_error == OnStoreError::Local {
            return Err(Error::Config(
                "on_store_error: \"local\" counts in the process while Redis is away, and no \
                 Redis is set (redis_url, redis_cluster or redis_sentinel)"
                    .into(),
            ));
        }
        for (key, bound) in [
            ("memory_max_identities", self.memory_max_identities),
            ("memory_max_log_entries", self.memory_max_log_entries),
        ] {
            if bound == 0 {
                return Err(Error::Config(format!("{key}: must be at least 1")));
            }
        }
        if self.memory_max_bytes < MIN_MEMORY_MAX_BYTES {
            return Err(Error::Config(format!(
                "memory_max_bytes: must be at least {MIN_MEMORY_MAX_BYTES} (1 MiB), e.g. 268435456 (256 MiB)"
            )));
        }
        let policy = self.policy.validate()?;
        let mut webhooks: Vec<Webhook> = Vec::new();
        for (index, raw) in self.webhooks.into_iter().enumerate() {
            let webhook = raw.validate(index)?;
            if policy.events.is_none() {
                return Err(Error::Config(format!(
                    "webhooks[{index}]: webhooks send events, and policy.events is false"
                )));
            }
            if let Some(other) = webhooks.iter().position(|w| w.name == webhook.name) {
                return Err(Error::Config(format!(
                    "webhooks[{index}].name: {:?} is webhooks[{other}]'s name too (give each \
                     its own name)",
                    webhook.name
                )));
            }
            webhooks.push(webhook);
        }
        let api_tokens = api_tokens::validate(self.api_tokens, &self.api_token, &self.admin.token)?;
        let devices = self.devices.validate()?;
        Ok(Config {
            redis,
            memory_max_identities: self.memory_max_identities,
            memory_max_log_entries: self.memory_max_log_entries,
            memory_max_bytes: self.memory_max_bytes,
            keys: Keyspace::new(&self.prefix)?,
            listen,
            on_store_error: self.on_store_error,
            command_timeout: self.command_timeout,
            bulk_timeout: self.bulk_timeout,
            view_scan_limit: self.view_scan_limit,
            api_token: Some(self.api_token).filter(|token| !token.is_empty()),
            api_tokens,
            open_login_api: self.open_login_api,
            log_format: self.log_format,
            lock_cache: self.lock_cache,
            policy,
            admin: self.admin,
            trusted_proxies: IpList::parse(
                "trusted_proxies",
                &self.trusted_proxies.items(Some(',')),
            )?,
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            drain_timeout: self.drain_timeout,
            webhooks,
            devices,
        })
    }
}
