//! Configuration: defaults, then the TOML file (`--config`), then `LOCKOUT_*` environment
//! variables, then command-line flags, each winning over the one before. Validated once into a
//! `Config` whose policy cannot be invalid; a bad value stops start-up with one line naming
//! the key.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::attempt::Field;
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::keys::Keyspace;
use crate::policy::{AccessLog, Backoff, Combination, IpList, Limits, Policy, Repeat};
use crate::secret::Secret;
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisEndpoint, RedisTls, Topology};
use crate::webhook::{Webhook, MIN_SECRET_BYTES};

/// Identities the in-process store tracks, and access-log entries it keeps, before it evicts
/// (see `store::memory`).
pub const DEFAULT_MEMORY_BOUND: usize = 1_000_000;

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

/// The admin API's and page's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub path: String,
    pub username: String,
    /// Empty: the admin API and page are disabled.
    pub password: Secret,
    /// Also accepted as `Authorization: Bearer <token>`; empty: no bearer token.
    pub token: Secret,
    /// Wrong admin logins (password or token) from one address after which it is locked out
    /// of the admin API and page.
    pub failure_limit: NonZeroU32,
    /// How long wrong admin logins are remembered, and the admin lockout lasts.
    #[serde(with = "humantime_serde")]
    pub cooloff: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            path: "/dj-ad-admin/".into(),
            username: "admin".into(),
            password: Secret::default(),
            token: Secret::default(),
            failure_limit: NonZeroU32::new(5).expect("non-zero"),
            cooloff: Duration::from_secs(15 * 60),
        }
    }
}

impl AdminConfig {
    /// The policy of admin logins: counted per client address, apart from the logins the
    /// service protects (see `Keyspace::ADMIN_LOGINS`).
    pub fn login_policy(&self) -> Policy {
        Policy {
            failure_limit: self.failure_limit,
            cooloff: self.cooloff,
            lockout_duration: self.cooloff,
            combinations: vec![Combination::new([Field::Ip]).expect("one field")],
            access_log: None,
            ..Policy::default()
        }
    }
}

/// How the service writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

/// Where `serve` listens: a TCP address, or a Unix socket (`unix:/run/lockout.sock`) for a
/// login page on the same host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

impl Listen {
    /// `address:port`, or `unix:` and an absolute path.
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Error::Config(format!(
                    "listen: {text:?}: a Unix socket's path must be absolute (unix:/run/lockout.sock)"
                )));
            }
            return Ok(Listen::Unix(path));
        }
        text.parse().map(Listen::Tcp).map_err(|_| {
            Error::Config(format!(
                "listen: {text:?} is not an address:port (or unix:/path/to.sock)"
            ))
        })
    }

    /// Whether only this host can reach it: a loopback address, or a Unix socket.
    pub fn is_local(&self) -> bool {
        match self {
            Listen::Tcp(address) => address.ip().is_loopback(),
            Listen::Unix(_) => true,
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(address) => write!(f, "{address}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
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
    pub keys: Keyspace,
    pub listen: Listen,
    pub on_store_error: OnStoreError,
    /// How long the service waits for Redis before answering in its fail mode.
    pub command_timeout: Duration,
    /// How long admin work (resets, listings, log trims) may take, on its own connection.
    pub bulk_timeout: Duration,
    /// When set, check/failure/success require `Authorization: Bearer <api_token>`.
    pub api_token: Option<Secret>,
    /// Whether `serve` may listen beyond this host without an `api_token` (the operator says
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
    /// How long `serve` waits for a request's headers.
    pub header_read_timeout: Duration,
    /// How long `serve` lets requests in flight finish after SIGTERM.
    pub drain_timeout: Duration,
    /// Where `serve` POSTs events (see `webhook`).
    pub webhooks: Vec<Webhook>,
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

/// Keys whose values are text whatever they look like: figment reads `LOCKOUT_ADMIN_PASSWORD=
/// 123456` as a number (and `0123` as 123), so these are taken from the environment as written.
const TEXT_KEYS: [&str; 12] = [
    "redis_url",
    "redis_sentinel_master",
    "redis_tls_ca",
    "redis_tls_cert",
    "redis_tls_key",
    "prefix",
    "listen",
    "api_token",
    "admin.path",
    "admin.username",
    "admin.password",
    "admin.token",
];

/// `LOCKOUT_POLICY_FAILURE_LIMIT` is `policy.failure_limit`, `LOCKOUT_ADMIN_PASSWORD` is
/// `admin.password`; `LOCKOUT_CONFIG`, `LOCKOUT_LOG` and `LOCKOUT_SERVER` (the CLI's
/// `--server`) are not configuration keys, and neither
/// are the variables Kubernetes makes for a Service named `lockout` (`LOCKOUT_PORT`,
/// `LOCKOUT_PORT_8080_TCP_ADDR`, `LOCKOUT_SERVICE_HOST`, ...). Any other `LOCKOUT_` variable
/// must name a key: a typo is an error. `TEXT_KEYS` come from `text_environment`.
fn environment() -> Env {
    Env::prefixed("LOCKOUT_").filter_map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        let kubernetes = key == "port"
            || key.starts_with("port_")
            || key == "service_host"
            || key == "service_port"
            || key.starts_with("service_port_");
        if kubernetes || key == "config" || key == "log" || key == "server" {
            return None;
        }
        let path = config_path(&key);
        (!TEXT_KEYS.contains(&path.as_str())).then(|| path.into())
    })
}

/// The `TEXT_KEYS` set in the environment, each exactly as written.
fn text_environment() -> Serialized<Map<String, Value>> {
    let mut values = Map::new();
    for key in TEXT_KEYS {
        if let Ok(value) = std::env::var(environment_variable(key)) {
            let (section, name) = key
                .split_once('.')
                .map_or((None, key), |(s, n)| (Some(s), n));
            let table = match section {
                Some(section) => values
                    .entry(section)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("a section is a table"),
                None => &mut values,
            };
            table.insert(name.to_string(), Value::String(value));
        }
    }
    Serialized::defaults(values)
}

/// `JSON_KEYS` set in the environment as JSON, which figment's own parsing of environment
/// values does not read (`[{"fields": ["ip"], "failure_limit": 10}]`): the same shapes as in a
/// request's policy (and as `[[webhooks]]` in TOML). A value that is not JSON is left to figment (`ip`, `[ip, username]`).
fn json_environment() -> Serialized<Map<String, Value>> {
    let mut values = Map::new();
    for key in JSON_KEYS {
        let Ok(text) = std::env::var(environment_variable(key)) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match key.split_once('.') {
            Some((section, name)) => values
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("a section is a table")
                .insert(name.to_string(), value),
            None => values.insert(key.to_string(), value),
        };
    }
    Serialized::defaults(values)
}

/// Keys whose environment values may be JSON (see `json_environment`).
const JSON_KEYS: [&str; 2] = ["policy.lockout_parameters", "webhooks"];

/// The contents of the file that `key` names, or `None` when it names none.
fn read_file(key: &str, path: &str) -> Result<Option<Vec<u8>>> {
    if path.is_empty() {
        return Ok(None);
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|err| Error::Config(format!("{key}: cannot read {path:?}: {err}")))
}

/// `policy_failure_limit` is `policy.failure_limit`.
fn config_path(key: &str) -> String {
    for section in ["policy", "admin"] {
        if let Some(rest) = key.strip_prefix(section).and_then(|k| k.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key.to_string()
}

/// `admin.password` is `LOCKOUT_ADMIN_PASSWORD`.
fn environment_variable(key: &str) -> String {
    format!("LOCKOUT_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// One line naming the key, the problem and where the value came from.
fn describe(errors: figment::Error) -> Error {
    let Some(error) = errors.into_iter().next() else {
        return Error::Config("unreadable configuration".into());
    };
    let key = error.path.join(".");
    let origin = match &error.metadata {
        Some(metadata) if metadata.name.contains("environment") => {
            format!(" (environment variable {})", environment_variable(&key))
        }
        Some(metadata) => metadata.source.as_ref().map_or_else(
            || format!(" ({})", metadata.name),
            |source| format!(" (in {source})"),
        ),
        None => String::new(),
    };
    Error::Config(format!("{key}: {}{origin}", error.kind))
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
    prefix: String,
    listen: String,
    on_store_error: OnStoreError,
    #[serde(with = "humantime_serde")]
    command_timeout: Duration,
    #[serde(with = "humantime_serde")]
    bulk_timeout: Duration,
    api_token: Secret,
    open_login_api: bool,
    log_format: LogFormat,
    lock_cache: bool,
    trusted_proxies: OneOrMany,
    max_connections: usize,
    #[serde(with = "humantime_serde")]
    header_read_timeout: Duration,
    #[serde(with = "humantime_serde")]
    drain_timeout: Duration,
    policy: RawPolicy,
    admin: AdminConfig,
    webhooks: Vec<RawWebhook>,
}

/// A `[[webhooks]]` entry as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default)]
    name: Option<String>,
    url: String,
    secret: Secret,
    #[serde(default)]
    events: Option<Vec<String>>,
}

impl RawWebhook {
    fn validate(self, index: usize) -> Result<Webhook> {
        let key = format!("webhooks[{index}]");
        let invalid = |what: String| Error::Config(format!("{key}.{what}"));
        let url: reqwest::Url = self
            .url
            .parse()
            .map_err(|err| invalid(format!("url: not a URL ({err})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "url: must be an http:// or https:// URL with a host".into(),
            ));
        }
        if self.secret.expose().len() < MIN_SECRET_BYTES {
            return Err(invalid(format!(
                "secret: must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            )));
        }
        let events = match self.events {
            None => EventKind::ALL.to_vec(),
            Some(names) if names.is_empty() => {
                return Err(invalid(
                    "events: empty (leave it out for every kind)".into(),
                ))
            }
            Some(names) => names
                .iter()
                .map(|name| {
                    EventKind::parse(name).ok_or_else(|| {
                        let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                        invalid(format!(
                            "events: {name:?} is no event kind ({})",
                            kinds.join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?,
        };
        let name = match self.name {
            Some(name) => name,
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
            return Err(invalid(format!(
                "name: {name:?} must be 1 to 64 letters, digits, _ . or - (it names the \
                 webhook's metrics and Redis consumer group)"
            )));
        }
        Ok(Webhook {
            name,
            url,
            secret: self.secret,
            events,
        })
    }
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
            prefix: "lockout".into(),
            listen: "127.0.0.1:8080".into(),
            on_store_error: OnStoreError::Deny,
            command_timeout: Duration::from_millis(250),
            bulk_timeout: Duration::from_secs(600),
            api_token: Secret::default(),
            open_login_api: false,
            log_format: LogFormat::Text,
            lock_cache: true,
            trusted_proxies: OneOrMany::Many(Vec::new()),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            policy: RawPolicy::default(),
            admin: AdminConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawPolicy {
    failure_limit: NonZeroU32,
    #[serde(with = "humantime_serde")]
    cooloff: Duration,
    #[serde(with = "humantime_serde")]
    lockout_duration: Option<Duration>,
    lockout_parameters: Vec<RawCombination>,
    lock_out_at_failure: bool,
    reset_on_success: bool,
    reset_cooloff_on_failure_during_lockout: bool,
    never_lockout: OneOrMany,
    deny: OneOrMany,
    access_log: bool,
    #[serde(with = "humantime_serde")]
    access_log_retention: Duration,
    access_log_max_entries: NonZeroU64,
    events: bool,
    #[serde(with = "humantime_serde")]
    events_retention: Duration,
    events_max_entries: NonZeroU64,
    ipv6_prefix_length: u8,
    #[serde(with = "humantime_serde")]
    lockout_memory: Option<Duration>,
    lockout_backoff: f64,
    #[serde(with = "humantime_serde")]
    max_lockout_duration: Duration,
}

impl Default for RawPolicy {
    fn default() -> Self {
        let policy = Policy::default();
        RawPolicy {
            failure_limit: policy.failure_limit,
            cooloff: policy.cooloff,
            lockout_duration: None,
            lockout_parameters: vec![RawCombination::Fields(OneOrMany::One("ip".into()))],
            lock_out_at_failure: policy.lock_out_at_failure,
            reset_on_success: policy.reset_on_success,
            reset_cooloff_on_failure_during_lockout: policy.reset_cooloff_on_failure_during_lockout,
            never_lockout: OneOrMany::Many(Vec::new()),
            deny: OneOrMany::Many(Vec::new()),
            access_log: true,
            access_log_retention: policy.access_log.expect("on by default").retention,
            access_log_max_entries: policy.access_log.expect("on by default").max_entries,
            events: true,
            events_retention: policy.events.expect("on by default").retention,
            events_max_entries: policy.events.expect("on by default").max_entries,
            ipv6_prefix_length: policy.ipv6_prefix_length,
            lockout_memory: None,
            lockout_backoff: DEFAULT_BACKOFF,
            max_lockout_duration: DEFAULT_MAX_LOCKOUT,
        }
    }
}

/// Repeat offenders' defaults: each lockout twice as long as the one before, at most a day.
const DEFAULT_BACKOFF: f64 = 2.0;
const DEFAULT_MAX_LOCKOUT: Duration = Duration::from_secs(24 * 3600);

/// A string or a list of strings: a lockout combination (`"ip"` or `["ip","username"]`), or an
/// IP list (a list, or one comma-separated string as environment variables give it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A combination as written: a field name, a list of them, or a table with the fields and
/// limits of its own (`{ fields = ["ip", "username"], failure_limit = 10, cooloff = "90d" }`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum RawCombination {
    Fields(OneOrMany),
    Table(Map<String, Value>),
}

/// The keys a combination's table may hold.
const COMBINATION_KEYS: [&str; 4] = ["fields", "failure_limit", "cooloff", "lockout_duration"];

impl RawCombination {
    /// The validated combination; `at` names it in errors (`policy.lockout_parameters[1]`).
    fn validate(&self, at: &str) -> Result<Combination> {
        let names = |fields: &OneOrMany| -> Result<Combination> {
            let fields = fields
                .items(None)
                .iter()
                .map(|name| Field::parse(name))
                .collect::<Result<Vec<_>>>()?;
            Combination::new(fields)
        };
        let table = match self {
            RawCombination::Fields(fields) => return names(fields),
            RawCombination::Table(table) => table,
        };
        if let Some(unknown) = table
            .keys()
            .find(|key| !COMBINATION_KEYS.contains(&key.as_str()))
        {
            return Err(Error::Config(format!(
                "{at}: unknown key {unknown:?} (expected {})",
                COMBINATION_KEYS.join(", ")
            )));
        }
        let fields = table.get("fields").ok_or_else(|| {
            Error::Config(format!(
                "{at}.fields: missing (the fields counted together)"
            ))
        })?;
        let fields: OneOrMany = serde_json::from_value(fields.clone()).map_err(|_| {
            Error::Config(format!(
                "{at}.fields: a field name or a list of field names"
            ))
        })?;
        let failure_limit = table
            .get("failure_limit")
            .map(|limit| {
                serde_json::from_value::<NonZeroU32>(limit.clone()).map_err(|_| {
                    Error::Config(format!(
                        "{at}.failure_limit: {limit} is not a whole number from 1"
                    ))
                })
            })
            .transpose()?;
        let duration = |key: &str| -> Result<Option<Duration>> {
            let Some(value) = table.get(key) else {
                return Ok(None);
            };
            let duration = value
                .as_str()
                .and_then(|text| humantime::parse_duration(text).ok())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{at}.{key}: {value} is not a duration such as \"90d\" or \"30m\""
                    ))
                })?;
            bounded(&format!("{at}.{key}"), duration).map(Some)
        };
        let limits = Limits {
            failure_limit,
            cooloff: duration("cooloff")?,
            lockout_duration: duration("lockout_duration")?,
        };
        Ok(names(&fields)?.with_limits(limits))
    }
}

impl From<&Combination> for RawCombination {
    fn from(combination: &Combination) -> Self {
        let fields = OneOrMany::Many(combination.names().into_iter().map(String::from).collect());
        let limits = combination.limits();
        if limits.is_empty() {
            return RawCombination::Fields(fields);
        }
        let mut table = Map::new();
        table.insert(
            "fields".into(),
            serde_json::to_value(fields).expect("a list of names"),
        );
        if let Some(limit) = limits.failure_limit {
            table.insert("failure_limit".into(), limit.get().into());
        }
        for (key, duration) in [
            ("cooloff", limits.cooloff),
            ("lockout_duration", limits.lockout_duration),
        ] {
            if let Some(duration) = duration {
                table.insert(
                    key.into(),
                    humantime::format_duration(duration).to_string().into(),
                );
            }
        }
        RawCombination::Table(table)
    }
}

impl OneOrMany {
    fn items(&self, separator: Option<char>) -> Vec<String> {
        match self {
            OneOrMany::One(one) => match separator {
                Some(separator) => one
                    .split(separator)
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(String::from)
                    .collect(),
                None => vec![one.clone()],
            },
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

impl Config {
    /// An empty in-process store with the configured bounds, on the unscoped keyspace.
    pub fn in_process_store(&self) -> MemoryStore {
        MemoryStore::new(self.memory_max_identities)
            .with_max_log_entries(self.memory_max_log_entries)
            .with_keys(self.keys.clone())
            .expect("the store's second keyspace")
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

    /// `serve` refuses to offer the login endpoints beyond this host to anyone: whoever reaches
    /// them could lock out any user, or clear failures.
    pub fn check_exposure(&self) -> Result<()> {
        if self.listen.is_local() || self.api_token.is_some() || self.open_login_api {
            return Ok(());
        }
        Err(Error::Config(format!(
            "listen: {} is reachable beyond this host and api_token is empty, so anyone who \
             reaches it could lock out any user; set api_token (LOCKOUT_API_TOKEN), or \
             open_login_api = true (LOCKOUT_OPEN_LOGIN_API) when a proxy or network policy \
             in front decides who may call it",
            self.listen
        )))
    }
}

impl RawConfig {
    /// The Redis to use: a cluster, a Sentinel group's primary or one server, with the TLS
    /// files read and checked; `None` when none is set (or `redis_url = "memory://"`).
    fn redis_endpoint(&self) -> Result<Option<RedisEndpoint>> {
        let seeds = self.redis_cluster.items(Some(','));
        let sentinels = self.redis_sentinel.items(Some(','));
        let master = self.redis_sentinel_master.clone();
        let topology = match (seeds.is_empty(), sentinels.is_empty()) {
            (false, false) => {
                return Err(Error::Config(
                    "redis_cluster and redis_sentinel: give one of them, not both".into(),
                ))
            }
            (false, true) => Topology::Cluster(seeds),
            (true, false) if master.is_empty() => {
                return Err(Error::Config(
                    "redis_sentinel_master: required with redis_sentinel (the name the \
                     Sentinels monitor)"
                        .into(),
                ))
            }
            (true, false) => Topology::Sentinel {
                sentinels,
                master,
                node_url: match self.redis_url.as_str() {
                    "" | IN_PROCESS_URL => "redis://".into(),
                    url => url.into(),
                },
            },
            (true, true) if !master.is_empty() => {
                return Err(Error::Config(
                    "redis_sentinel_master: set without redis_sentinel (the Sentinels' URLs)"
                        .into(),
                ))
            }
            (true, true) if matches!(self.redis_url.as_str(), "" | IN_PROCESS_URL) => {
                if [
                    &self.redis_tls_ca,
                    &self.redis_tls_cert,
                    &self.redis_tls_key,
                ]
                .iter()
                .any(|file| !file.is_empty())
                {
                    return Err(Error::Config(
                        "redis_tls_ca, redis_tls_cert, redis_tls_key: set, but no Redis is \
                         (redis_url, redis_cluster or redis_sentinel)"
                            .into(),
                    ));
                }
                return Ok(None);
            }
            (true, true) => Topology::Server(self.redis_url.clone()),
        };
        let ca = read_file("redis_tls_ca", &self.redis_tls_ca)?;
        let client =
            match (
                read_file("redis_tls_cert", &self.redis_tls_cert)?,
                read_file("redis_tls_key", &self.redis_tls_key)?,
            ) {
                (Some(certificate), Some(key)) => Some((certificate, key)),
                (None, None) => None,
                _ => return Err(Error::Config(
                    "redis_tls_cert and redis_tls_key: give both (a client certificate and its \
                     private key) or neither"
                        .into(),
                )),
            };
        let tls = RedisTls::from_pem(ca, client).map_err(Error::Config)?;
        let endpoint = RedisEndpoint::of(topology).with_tls(tls);
        if endpoint.tls().is_set() && !endpoint.uses_tls() {
            return Err(Error::Config(
                "redis_tls_ca, redis_tls_cert: set, but no Redis URL is rediss:// (TLS)".into(),
            ));
        }
        Ok(Some(endpoint))
    }

    fn validate(self) -> Result<Config> {
        let listen = Listen::parse(&self.listen)?;
        bounded("command_timeout", self.command_timeout)?;
        bounded("bulk_timeout", self.bulk_timeout)?;
        bounded("header_read_timeout", self.header_read_timeout)?;
        bounded("drain_timeout", self.drain_timeout)?;
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
        Ok(Config {
            redis,
            memory_max_identities: self.memory_max_identities,
            memory_max_log_entries: self.memory_max_log_entries,
            keys: Keyspace::new(&self.prefix)?,
            listen,
            on_store_error: self.on_store_error,
            command_timeout: self.command_timeout,
            bulk_timeout: self.bulk_timeout,
            api_token: Some(self.api_token).filter(|token| !token.is_empty()),
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
            drain_timeout: self.drain_timeout,
            webhooks,
        })
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

impl RawPolicy {
    /// Repeat offenders, when `lockout_memory` is set: the backoff a factor from 1 to 100, the
    /// longest lockout no shorter than `lockout_duration`.
    fn repeat(&self, lockout_duration: Duration) -> Result<Option<Repeat>> {
        let Some(memory) = self.lockout_memory else {
            return Ok(None);
        };
        let memory = bounded("policy.lockout_memory", memory)?;
        if !(1.0..=100.0).contains(&self.lockout_backoff) {
            return Err(Error::Config(format!(
                "policy.lockout_backoff: {} is not a factor from 1 to 100",
                self.lockout_backoff
            )));
        }
        let max_lockout = bounded("policy.max_lockout_duration", self.max_lockout_duration)?;
        if max_lockout < lockout_duration {
            return Err(Error::Config(format!(
                "policy.max_lockout_duration: {} is shorter than lockout_duration ({})",
                humantime::format_duration(max_lockout),
                humantime::format_duration(lockout_duration)
            )));
        }
        Ok(Some(Repeat {
            memory,
            backoff: Backoff(self.lockout_backoff),
            max_lockout,
        }))
    }

    fn validate(self) -> Result<Policy> {
        let cooloff = bounded("policy.cooloff", self.cooloff)?;
        let lockout_duration = bounded(
            "policy.lockout_duration",
            self.lockout_duration.unwrap_or(cooloff),
        )?;
        let access_log_retention =
            bounded("policy.access_log_retention", self.access_log_retention)?;
        if !(1..=128).contains(&self.ipv6_prefix_length) {
            return Err(Error::Config(format!(
                "policy.ipv6_prefix_length: {} is not from 1 to 128",
                self.ipv6_prefix_length
            )));
        }
        if self.lockout_parameters.is_empty() {
            return Err(Error::Config(
                "policy.lockout_parameters: needs at least one combination".into(),
            ));
        }
        let mut combinations: Vec<Combination> = Vec::new();
        for (index, combination) in self.lockout_parameters.iter().enumerate() {
            let at = format!("policy.lockout_parameters[{index}]");
            let combination = combination.validate(&at)?;
            // `["ip", "ip_address"]` names one combination twice: counted once; with other
            // limits it would be two counts of one identity.
            match combinations
                .iter()
                .find(|known| known.fields() == combination.fields())
            {
                Some(known) if *known == combination => {}
                Some(_) => {
                    return Err(Error::Config(format!(
                        "{at}: {combination} is named twice with different limits"
                    )))
                }
                None => combinations.push(combination),
            }
        }
        Ok(Policy {
            failure_limit: self.failure_limit,
            cooloff,
            lockout_duration,
            combinations,
            lock_out_at_failure: self.lock_out_at_failure,
            reset_on_success: self.reset_on_success,
            reset_cooloff_on_failure_during_lockout: self.reset_cooloff_on_failure_during_lockout,
            never_lockout: IpList::parse(
                "policy.never_lockout",
                &self.never_lockout.items(Some(',')),
            )?,
            deny: IpList::parse("policy.deny", &self.deny.items(Some(',')))?,
            access_log: self.access_log.then_some(AccessLog {
                retention: access_log_retention,
                max_entries: self.access_log_max_entries,
            }),
            events: self.events.then_some(AccessLog {
                retention: bounded("policy.events_retention", self.events_retention)?,
                max_entries: self.events_max_entries,
            }),
            ipv6_prefix_length: self.ipv6_prefix_length,
            repeat: self.repeat(lockout_duration)?,
        })
    }
}

impl From<&Policy> for RawPolicy {
    fn from(policy: &Policy) -> Self {
        let names = |list: &IpList| OneOrMany::Many(list.entries().collect());
        // Bounds that are off keep the defaults' numbers, as an unset key does.
        let defaults = RawPolicy::default();
        let access_log = policy.access_log.unwrap_or(AccessLog {
            retention: defaults.access_log_retention,
            max_entries: defaults.access_log_max_entries,
        });
        let events = policy.events.unwrap_or(AccessLog {
            retention: defaults.events_retention,
            max_entries: defaults.events_max_entries,
        });
        RawPolicy {
            failure_limit: policy.failure_limit,
            cooloff: policy.cooloff,
            lockout_duration: Some(policy.lockout_duration),
            lockout_parameters: policy
                .combinations
                .iter()
                .map(RawCombination::from)
                .collect(),
            lock_out_at_failure: policy.lock_out_at_failure,
            reset_on_success: policy.reset_on_success,
            reset_cooloff_on_failure_during_lockout: policy.reset_cooloff_on_failure_during_lockout,
            never_lockout: names(&policy.never_lockout),
            deny: names(&policy.deny),
            access_log: policy.access_log.is_some(),
            access_log_retention: access_log.retention,
            access_log_max_entries: access_log.max_entries,
            events: policy.events.is_some(),
            events_retention: events.retention,
            events_max_entries: events.max_entries,
            ipv6_prefix_length: policy.ipv6_prefix_length,
            lockout_memory: policy.repeat.map(|repeat| repeat.memory),
            lockout_backoff: policy
                .repeat
                .map_or(DEFAULT_BACKOFF, |repeat| repeat.backoff.0),
            max_lockout_duration: policy
                .repeat
                .map_or(DEFAULT_MAX_LOCKOUT, |repeat| repeat.max_lockout),
        }
    }
}

/// Policies given with requests (the `[policy]` keys as a JSON object), over a base policy
/// whose values the keys left out keep.
#[derive(Debug, Clone)]
pub struct RequestPolicies {
    base: Map<String, Value>,
}

impl RequestPolicies {
    pub fn new(base: &Policy) -> Self {
        let base = match serde_json::to_value(RawPolicy::from(base)) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("RawPolicy serializes to a JSON object"),
        };
        RequestPolicies { base }
    }

    /// The base policy with `overrides` applied and validated; errors name the key
    /// (`policy.cooloff: ...`). A request that sets `cooloff` and not `lockout_duration` gets
    /// locks as long as its cool-off, as a configuration file would.
    pub fn apply(&self, overrides: &Map<String, Value>) -> Result<Policy> {
        let mut merged = self.base.clone();
        if overrides.contains_key("cooloff") && !overrides.contains_key("lockout_duration") {
            merged.insert("lockout_duration".into(), Value::Null);
        }
        merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let raw: RawPolicy = serde_path_to_error::deserialize(Value::Object(merged))
            .map_err(|err| Error::invalid(format!("policy.{}: {}", err.path(), err.inner())))?;
        raw.validate().map_err(|err| match err {
            Error::Config(message) => Error::InvalidInput(message),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_valid_and_holds_the_defaults() {
        let example = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lockout.example.toml"));
        let config = Config::load(Some(example), &Overrides::default()).unwrap();
        assert_eq!(config.policy, Policy::default());
        assert_eq!(config.admin, AdminConfig::default());
        assert_eq!(config.command_timeout, Duration::from_millis(250));
        assert_eq!(config.on_store_error, OnStoreError::Deny);
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let mut config = Config::load(None, &Overrides::default()).unwrap();
        config.admin.password = "hunter2".into();
        config.admin.token = "t0ken-hunter3".into();
        config.api_token = Some("hunter4".into());
        config.redis = Some(RedisEndpoint::server("redis://app:hunter5@10.0.0.5:6379"));
        let shown = format!("{config:?}");
        for secret in ["hunter2", "hunter3", "hunter4", "hunter5"] {
            assert!(!shown.contains(secret), "{secret}: {shown}");
        }
        assert!(shown.contains("redis://app:***@10.0.0.5:6379"), "{shown}");
    }

    fn apply(overrides: Value) -> Result<Policy> {
        let Value::Object(overrides) = overrides else {
            panic!("an object")
        };
        RequestPolicies::new(&Policy::default()).apply(&overrides)
    }

    #[test]
    fn request_policies_override_the_base_key_by_key() {
        assert_eq!(apply(serde_json::json!({})).unwrap(), Policy::default());
        let policy = apply(serde_json::json!({
            "failure_limit": 10,
            "cooloff": "1500ms",
            "lockout_parameters": [["username", "ip_address"], "ip", "ip_address"],
        }))
        .unwrap();
        assert_eq!(policy.failure_limit.get(), 10);
        assert_eq!(policy.cooloff, Duration::from_millis(1500));
        assert_eq!(policy.lockout_duration, Duration::from_millis(1500));
        assert_eq!(
            policy.combinations,
            [
                Combination::new([Field::Ip, Field::Username]).unwrap(),
                Combination::new([Field::Ip]).unwrap()
            ]
        );
        assert_eq!(policy.never_lockout, Policy::default().never_lockout);
    }

    #[test]
    fn request_policies_name_what_is_wrong() {
        for (overrides, message) in [
            (
                serde_json::json!({"cooloff": 5}),
                "policy.cooloff: invalid type: integer `5`, expected a duration",
            ),
            (
                serde_json::json!({"cooloff": "366d"}),
                "policy.cooloff: must be at most 365 days (every key lockout writes expires within a year)",
            ),
            (
                serde_json::json!({"failure_limit": 0}),
                "policy.failure_limit: invalid value: integer `0`, expected a nonzero u32",
            ),
            (
                serde_json::json!({"lockout_parameters": ["password"]}),
                "policy.lockout_parameters: unknown field \"password\" (expected \"ip\", \"username\" or \"user_agent\")",
            ),
        ] {
            let err = apply(overrides).unwrap_err();
            assert!(err.is_invalid_input());
            assert_eq!(err.to_string(), message);
        }
        let err = apply(serde_json::json!({"colloff": "1m"})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy.colloff: unknown field `colloff`"),
            "{err}"
        );
    }

    /// The configuration of `toml`, or its error message.
    fn load_toml(toml: &str) -> std::result::Result<Config, String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        Config::load(Some(file.path()), &Overrides::default()).map_err(|err| err.to_string())
    }

    #[test]
    fn webhooks_are_read_from_toml_and_checked_each_with_its_place() {
        let config = load_toml(
            "[[webhooks]]\nurl = \"https://hooks.example/lockout?token=t0k\"\nsecret = \"0123456789abcdef\"\n\n[[webhooks]]\nname = \"pager\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"fedcba9876543210\"\nevents = [\"lockout_started\"]\n",
        )
        .unwrap();
        let names: Vec<(&str, usize)> = config
            .webhooks
            .iter()
            .map(|w| (w.name.as_str(), w.events.len()))
            .collect();
        assert_eq!(names, [("hooks.example", 3), ("pager", 1)]);
        assert!(!format!("{config:?}").contains("t0k"));
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
        let entry = |body: &str| format!("[[webhooks]]\n{body}\n");
        let good = "url = \"http://a.example/\"\nsecret = \"0123456789abcdef\"";
        for (toml, wanted) in [
            (
                entry("url = \"ftp://a.example/\"\nsecret = \"0123456789abcdef\""),
                "webhooks[0].url: must be an http:// or https:// URL",
            ),
            (
                entry("url = \"http://a.example/\"\nsecret = \"short\""),
                "webhooks[0].secret: must be at least 16 bytes",
            ),
            (
                entry(&format!("{good}\nevents = [\"lockout_ended\"]")),
                "webhooks[0].events: \"lockout_ended\" is no event kind",
            ),
            (
                format!("{}{}", entry(good), entry(good)),
                "webhooks[1].name: \"a.example\" is webhooks[0]'s name too",
            ),
            (
                format!("[policy]\nevents = false\n{}", entry(good)),
                "webhooks[0]: webhooks send events, and policy.events is false",
            ),
            (entry("url = \"http://a.example/\""), "webhooks"),
        ] {
            let error = load_toml(&toml).unwrap_err();
            assert!(error.contains(wanted), "{toml}: {error}");
            assert!(!error.contains("0123456789abcdef"), "{error}");
        }
    }

    #[test]
    fn combinations_may_set_limits_of_their_own() {
        let recipe = load_toml(
            "[policy]\nlockout_parameters = [\n  { fields = [\"ip\", \"username\"], failure_limit = 10, cooloff = \"90d\", lockout_duration = \"1h\" },\n  { fields = \"ip\", failure_limit = 100, cooloff = \"1d\" },\n  \"username\",\n]\n",
        )
        .unwrap();
        let limits: Vec<(Vec<&str>, Limits)> = recipe
            .policy
            .combinations
            .iter()
            .map(|combination| (combination.names(), *combination.limits()))
            .collect();
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(
            limits,
            [
                (
                    vec!["ip", "username"],
                    Limits {
                        failure_limit: NonZeroU32::new(10),
                        cooloff: Some(90 * day),
                        lockout_duration: Some(Duration::from_secs(3600)),
                    }
                ),
                (
                    vec!["ip"],
                    Limits {
                        failure_limit: NonZeroU32::new(100),
                        cooloff: Some(day),
                        lockout_duration: None,
                    }
                ),
                (vec!["username"], Limits::default()),
            ]
        );
        // A request's policy takes the same shape, and the configured one goes through JSON
        // unchanged.
        let requested = apply(serde_json::json!({
            "lockout_parameters": [{"fields": ["username", "ip"], "failure_limit": 10, "cooloff": "90d", "lockout_duration": "1h"}, {"fields": "ip", "failure_limit": 100, "cooloff": "1d"}, "username"],
        }))
        .unwrap();
        assert_eq!(requested.combinations, recipe.policy.combinations);
        assert_eq!(
            RequestPolicies::new(&recipe.policy)
                .apply(&Map::new())
                .unwrap(),
            recipe.policy
        );
        for (parameters, message) in [
            (
                serde_json::json!([{"fields": "ip", "limit": 3}]),
                "policy.lockout_parameters[0]: unknown key \"limit\" (expected fields, failure_limit, cooloff, lockout_duration)",
            ),
            (
                serde_json::json!([{"failure_limit": 3}]),
                "policy.lockout_parameters[0].fields: missing",
            ),
            (
                serde_json::json!(["ip", {"fields": "ip", "cooloff": "soon"}]),
                "policy.lockout_parameters[1].cooloff: \"soon\" is not a duration",
            ),
            (
                serde_json::json!([{"fields": "ip", "failure_limit": 0}]),
                "policy.lockout_parameters[0].failure_limit: 0 is not a whole number from 1",
            ),
            (
                serde_json::json!([{"fields": "ip", "lockout_duration": "400d"}]),
                "policy.lockout_parameters[0].lockout_duration: must be at most 365 days",
            ),
            (
                serde_json::json!(["ip", {"fields": ["ip_address"], "failure_limit": 5}]),
                "policy.lockout_parameters[1]: ip is named twice with different limits",
            ),
        ] {
            let err = apply(serde_json::json!({ "lockout_parameters": parameters }))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(message), "{err}");
        }
    }

    #[test]
    fn repeat_offenders_are_off_unless_a_lockout_memory_is_set() {
        assert_eq!(load_toml("").unwrap().policy.repeat, None);
        let on = load_toml("[policy]\nlockout_memory = \"7d\"\n").unwrap();
        assert_eq!(
            on.policy.repeat,
            Some(Repeat {
                memory: Duration::from_secs(7 * 24 * 3600),
                backoff: Backoff(2.0),
                max_lockout: Duration::from_secs(24 * 3600),
            })
        );
        for (toml, message) in [
            (
                "[policy]\nlockout_memory = \"7d\"\nlockout_backoff = 0.5\n",
                "policy.lockout_backoff: 0.5 is not a factor from 1 to 100",
            ),
            (
                "[policy]\nlockout_memory = \"7d\"\ncooloff = \"2d\"\n",
                "policy.max_lockout_duration: 1day is shorter than lockout_duration (2days)",
            ),
            (
                "[policy]\nlockout_memory = \"400d\"\n",
                "policy.lockout_memory: must be at most 365 days",
            ),
        ] {
            let err = load_toml(toml).unwrap_err();
            assert!(err.contains(message), "{toml}: {err}");
        }
        // A request may turn it on, and the configured one goes through JSON unchanged.
        let requested = apply(serde_json::json!({"lockout_memory": "1h", "lockout_backoff": 3}));
        assert_eq!(requested.unwrap().repeat.unwrap().backoff, Backoff(3.0));
        assert_eq!(
            RequestPolicies::new(&on.policy).apply(&Map::new()).unwrap(),
            on.policy
        );
    }

    #[test]
    fn without_a_redis_the_store_is_in_process() {
        for toml in ["", "redis_url = \"memory://\"\n"] {
            assert!(load_toml(toml).unwrap().redis.is_none(), "{toml}");
        }
        let server = load_toml("redis_url = \"redis://10.0.0.5:6379\"\n").unwrap();
        assert!(server.redis.is_some());
        for (toml, message) in [
            (
                "on_store_error = \"local\"\n",
                "on_store_error: \"local\" counts in the process while Redis is away, and no Redis is set",
            ),
            (
                "redis_tls_ca = \"/etc/ca.pem\"\n",
                "redis_tls_ca, redis_tls_cert, redis_tls_key: set, but no Redis is",
            ),
            ("memory_max_identities = 0\n", "memory_max_identities: must be at least 1"),
            ("memory_max_log_entries = 0\n", "memory_max_log_entries: must be at least 1"),
        ] {
            let err = load_toml(toml).unwrap_err();
            assert!(err.contains(message), "{toml}: {err}");
        }
        let insured = load_toml(
            "redis_url = \"redis://10.0.0.5:6379\"\non_store_error = \"local\"\ncommand_timeout = \"250ms\"\n",
        )
        .unwrap();
        assert_eq!(insured.login_redis_timeout(), Duration::from_millis(200));
    }

    #[test]
    fn redis_topologies_and_tls_files_are_checked_at_load() {
        let sentinel = load_toml(
            "redis_url = \"rediss://app:pw@ignored/2\"\nredis_sentinel = \"redis://s1:26379,redis://s2:26379\"\nredis_sentinel_master = \"main\"\n",
        )
        .unwrap();
        let sentinel = sentinel.redis.expect("Sentinels set");
        // No Debug on Topology: its URLs hold passwords.
        assert!(
            sentinel.topology()
                == &Topology::Sentinel {
                    sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                    master: "main".into(),
                    node_url: "rediss://app:pw@ignored/2".into(),
                }
        );
        assert!(sentinel.uses_tls());
        let not_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_pem.path(), "not a certificate").unwrap();
        let not_pem = not_pem.path().display().to_string();
        for (toml, message) in [
            (
                "redis_sentinel = [\"redis://s1:26379\"]\n".to_string(),
                "redis_sentinel_master: required with redis_sentinel",
            ),
            (
                "redis_sentinel_master = \"main\"\n".to_string(),
                "redis_sentinel_master: set without redis_sentinel",
            ),
            (
                "redis_cluster = [\"redis://a:1\"]\nredis_sentinel = [\"redis://s:2\"]\nredis_sentinel_master = \"m\"\n".to_string(),
                "redis_cluster and redis_sentinel: give one of them",
            ),
            (
                "redis_url = \"rediss://h:1\"\nredis_tls_ca = \"/nonexistent/ca.pem\"\n".to_string(),
                "redis_tls_ca: cannot read \"/nonexistent/ca.pem\"",
            ),
            (
                format!("redis_url = \"rediss://h:1\"\nredis_tls_ca = {not_pem:?}\n"),
                "redis_tls_ca: no PEM certificate in the file",
            ),
            (
                format!("redis_url = \"rediss://h:1\"\nredis_tls_cert = {not_pem:?}\n"),
                "redis_tls_cert and redis_tls_key: give both",
            ),
        ] {
            let err = load_toml(&toml).unwrap_err();
            assert!(err.contains(message), "{toml}: {err}");
        }
    }

    #[test]
    fn durations_under_a_millisecond_are_refused_at_load() {
        for (toml, key) in [
            ("[policy]\ncooloff = \"500us\"\n", "policy.cooloff"),
            (
                "[policy]\nlockout_memory = \"999us\"\n",
                "policy.lockout_memory",
            ),
        ] {
            let err = load_toml(toml).unwrap_err();
            assert!(
                err.contains(&format!("{key}: must be at least 1ms")),
                "{toml}: {err}"
            );
        }
    }

    #[test]
    fn durations_over_a_year_are_refused_at_load() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "[policy]\nlockout_duration = \"400d\"\n").unwrap();
        let err = Config::load(Some(file.path()), &Overrides::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: policy.lockout_duration: must be at most 365 days (every key lockout writes expires within a year)"
        );
    }
}
