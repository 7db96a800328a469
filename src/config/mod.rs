//! Configuration: defaults, then the TOML file (`--config`), then `LOCKOUT_*` environment
//! variables, then command-line flags, each winning over the one before. Validated once into a
//! `Config` whose policy cannot be invalid; a bad value stops start-up with one line naming
//! the key.
//!
//! Here: `Config` and the raw configuration as written; `environment` (the `LOCKOUT_*`
//! variables), `policy`, `api_tokens`, `webhooks`, `devices`, `redis` (which Redis), `admin`,
//! `listen`, and `validate` (the raw configuration into a `Config`).

mod admin;
mod api_tokens;
mod devices;
mod environment;
mod listen;
mod policy;
mod redis;
#[cfg(test)]
mod tests;
mod validate;
mod webhooks;

use std::path::Path;
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::devices::Devices;
use crate::error::{Error, Result};
use crate::keys::Keyspace;
use crate::policy::{IpList, Policy};
use crate::secret::Secret;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisEndpoint;
use crate::webhook::Webhook;

pub use admin::AdminConfig;
pub use api_tokens::ApiToken;
pub use listen::Listen;
pub use policy::RequestPolicies;

use api_tokens::RawApiToken;
use devices::RawDevices;
use environment::{describe, environment, json_environment, text_environment};
use policy::{OneOrMany, RawPolicy};
use webhooks::RawWebhook;

/// Identities the in-process store tracks, and access-log entries it keeps, before it evicts
/// (see `store::memory`).
pub const DEFAULT_MEMORY_BOUND: usize = 1_000_000;
/// The in-process store's default bound on the bytes of its records, log entries and events
/// together (see `store::memory`): room for a small container.
pub const DEFAULT_MEMORY_MAX_BYTES: usize = 256 << 20;
/// The least `memory_max_bytes`: room for a few hundred worst-case records.
pub const MIN_MEMORY_MAX_BYTES: usize = 1 << 20;

/// The longest duration any setting takes, so that every key lockout writes expires within a
/// year (a longer one is refused with an error naming the key).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the service answers when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Fail closed: every attempt is refused.
    Deny,
    /// Fail open: every attempt is allowed.
    Allow,
    /// Insurance: each instance counts and locks on its own in-process store until Redis
    /// answers again, then writes what it counted to Redis (see `server::insurance`).
    Local,
}

/// `redis_url`'s value that chooses the in-process store, as leaving Redis unset does.
pub const IN_PROCESS_URL: &str = "memory://";

/// How the service writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `redis_cluster`, `redis_sentinel` or `redis_url`; `None`: the in-process store (no
    /// Redis set, or `redis_url = "memory://"`).
    pub redis: Option<RedisEndpoint>,
    /// The in-process store's bounds over all its scopes, for the embedded store and for
    /// `on_store_error = "local"`: tracked identities, and access-log entries.
    pub memory_max_identities: usize,
    pub memory_max_log_entries: usize,
    pub memory_max_bytes: usize,
    pub keys: Keyspace,
    pub listen: Listen,
    pub on_store_error: OnStoreError,
    /// How long the service waits for Redis before answering in its fail mode.
    pub command_timeout: Duration,
    /// How long admin work (resets, listings, log trims) may take, on its own connection.
    pub bulk_timeout: Duration,
    /// Records a sorted or searched view of the attempt records reads at most (docs/design.md,
    /// "Views of the records").
    pub view_scan_limit: usize,
    /// When set, check/failure/success require `Authorization: Bearer <api_token>`.
    pub api_token: Option<Secret>,
    /// Tokens that open check/failure/success for their scopes only (see `api_tokens`).
    pub api_tokens: Vec<ApiToken>,
    /// Whether `serve` may listen beyond this host without an API token (the operator says
    /// that something in front restricts who may call the login endpoints).
    pub open_login_api: bool,
    pub log_format: LogFormat,
    /// Whether `lockout serve` answers checks of identities known to be locked from memory
    /// (see `lock_cache`).
    pub lock_cache: bool,
    pub policy: Policy,
    pub admin: AdminConfig,
    /// Reverse proxies whose `X-Forwarded-For` names the client of an admin login.
    pub trusted_proxies: IpList,
    /// `serve` answers more connections than this with 503 at once.
    pub max_connections: usize,
    /// How long `serve` waits for a request's headers (and an idle kept-alive connection for
    /// its next request).
    pub header_read_timeout: Duration,
    /// How long `serve` waits for a request's whole body once its headers are in.
    pub body_read_timeout: Duration,
    /// How long `serve` lets requests in flight finish after SIGTERM.
    pub drain_timeout: Duration,
    /// Where `serve` POSTs events (see `webhook`).
    pub webhooks: Vec<Webhook>,
    /// Device tokens (see `devices`), when `devices.secret` is set.
    pub devices: Option<Devices>,
}

/// Values given on the command line (or through clap's own environment variables), which win
/// over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub redis_url: Option<String>,
    pub redis_cluster: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub listen: Option<String>,
}

impl Config {
    /// Reads `file` (if any), the environment and `overrides`, and validates the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(Error::Config(format!(
                    "config: {} does not exist or is not a file",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(environment())
            .merge(text_environment())
            .merge(json_environment());
        for (key, value) in [
            ("redis_url", &overrides.redis_url),
            ("prefix", &overrides.prefix),
            ("listen", &overrides.listen),
        ] {
            if let Some(value) = value {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        if let Some(seeds) = &overrides.redis_cluster {
            figment = figment.merge(Serialized::default("redis_cluster", seeds));
        }
        let raw: RawConfig = figment.extract().map_err(describe)?;
        raw.validate()
    }
}

impl Config {
    /// An empty in-process store with the configured bounds, on the unscoped keyspace.
    pub fn in_process_store(&self) -> MemoryStore {
        MemoryStore::new(self.memory_max_identities)
            .with_max_log_entries(self.memory_max_log_entries)
            .with_max_bytes(self.memory_max_bytes)
            .with_keys(self.keys.clone())
    }

    /// How long a login waits for Redis: `command_timeout`, less a fifth with
    /// `on_store_error = "local"`, so that the local answer that follows a timeout still comes
    /// within `command_timeout`.
    pub fn login_redis_timeout(&self) -> Duration {
        match self.on_store_error {
            OnStoreError::Local => self.command_timeout * 4 / 5,
            OnStoreError::Deny | OnStoreError::Allow => self.command_timeout,
        }
    }

    /// How long a login's engine call may take on Redis, all its commands together:
    /// `command_timeout`, less a tenth with `on_store_error = "local"`. It outlasts one command's
    /// timeout (`login_redis_timeout`), so that a command that timed out is reported by the
    /// store, which tells a read from a write whose reply was lost (see `Error::of_write`).
    pub fn login_timeout(&self) -> Duration {
        match self.on_store_error {
            OnStoreError::Local => self.command_timeout * 9 / 10,
            OnStoreError::Deny | OnStoreError::Allow => self.command_timeout,
        }
    }

    /// `serve` refuses to offer the login endpoints beyond this host to anyone: whoever reaches
    /// them could lock out any user, or clear failures.
    pub fn check_exposure(&self) -> Result<()> {
        let token = self.api_token.is_some() || !self.api_tokens.is_empty();
        if self.listen.is_local() || token || self.open_login_api {
            return Ok(());
        }
        Err(Error::Config(format!(
            "listen: {} is reachable beyond this host and api_token and api_tokens are empty, \
             so anyone who reaches it could lock out any user; set api_token \
             (LOCKOUT_API_TOKEN) or api_tokens (LOCKOUT_API_TOKENS), or \
             open_login_api = true (LOCKOUT_OPEN_LOGIN_API) when a proxy or network policy \
             in front decides who may call it",
            self.listen
        )))
    }
}

/// The configuration as written, before validation.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    redis_url: String,
    redis_cluster: OneOrMany,
    redis_sentinel: OneOrMany,
    redis_sentinel_master: String,
    redis_tls_ca: String,
    redis_tls_cert: String,
    redis_tls_key: String,
    memory_max_identities: usize,
    memory_max_log_entries: usize,
    memory_max_bytes: usize,
    prefix: String,
    listen: String,
    on_store_error: OnStoreError,
    #[serde(with = "humantime_serde")]
    command_timeout: Duration,
    #[serde(with = "humantime_serde")]
    bulk_timeout: Duration,
    view_scan_limit: usize,
    api_token: Secret,
    api_tokens: Vec<RawApiToken>,
    open_login_api: bool,
    log_format: LogFormat,
    lock_cache: bool,
    trusted_proxies: OneOrMany,
    max_connections: usize,
    #[serde(with = "humantime_serde")]
    header_read_timeout: Duration,
    #[serde(with = "humantime_serde")]
    body_read_timeout: Duration,
    #[serde(with = "humantime_serde")]
    drain_timeout: Duration,
    policy: RawPolicy,
    admin: AdminConfig,
    webhooks: Vec<RawWebhook>,
    devices: RawDevices,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            redis_url: String::new(),
            redis_cluster: OneOrMany::Many(Vec::new()),
            redis_sentinel: OneOrMany::Many(Vec::new()),
            redis_sentinel_master: String::new(),
            redis_tls_ca: String::new(),
            redis_tls_cert: String::new(),
            redis_tls_key: String::new(),
            memory_max_identities: DEFAULT_MEMORY_BOUND,
            memory_max_log_entries: DEFAULT_MEMORY_BOUND,
            memory_max_bytes: DEFAULT_MEMORY_MAX_BYTES,
            prefix: "lockout".into(),
            listen: "127.0.0.1:8080".into(),
            on_store_error: OnStoreError::Deny,
            command_timeout: Duration::from_millis(250),
            bulk_timeout: Duration::from_secs(600),
            view_scan_limit: 20_000,
            api_token: Secret::default(),
            api_tokens: Vec::new(),
            open_login_api: false,
            log_format: LogFormat::Text,
            lock_cache: true,
            trusted_proxies: OneOrMany::Many(Vec::new()),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            policy: RawPolicy::default(),
            admin: AdminConfig::default(),
            webhooks: Vec::new(),
            devices: RawDevices::default(),
        }
    }
}

/// `duration`, when it is longer than 0 and at most `MAX_DURATION`.
fn bounded(key: &str, duration: Duration) -> Result<Duration> {
    if duration.is_zero() {
        return Err(Error::Config(format!("{key}: must be longer than 0")));
    }
    if duration < Duration::from_millis(1) {
        return Err(Error::Config(format!(
            "{key}: must be at least 1ms (Redis keeps every duration in whole milliseconds)"
        )));
    }
    if duration > MAX_DURATION {
        return Err(Error::Config(format!(
            "{key}: must be at most 365 days (every key lockout writes expires within a year)"
        )));
    }
    Ok(duration)
}
