//! `lockout serve`: logging set up, the listener bound, the service run until SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, Listen, LogFormat};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::server::{self, Listener, Service};

/// Printed by `lockout serve --help`: every setting, with its environment variable.
pub(super) const SETTINGS_HELP: &str = "\
Settings (TOML file key = environment variable; flags win over the environment, which wins
over the file, which wins over the defaults):
  redis_url = LOCKOUT_REDIS_URL               empty: the in-process store (one process, state lost
                                              on restart); redis://host:6379 for production
  redis_cluster = LOCKOUT_REDIS_CLUSTER       [] (seed URLs, comma-separated in the environment)
  memory_max_identities = LOCKOUT_MEMORY_MAX_IDENTITIES    1000000 (in-process store, all scopes)
  memory_max_log_entries = LOCKOUT_MEMORY_MAX_LOG_ENTRIES  1000000 (in-process store, all scopes)
  memory_max_bytes = LOCKOUT_MEMORY_MAX_BYTES              268435456 (256 MiB: records, logs and
                                              events of the in-process store, all scopes)
  prefix = LOCKOUT_PREFIX                     lockout
  listen = LOCKOUT_LISTEN                     127.0.0.1:8080, or unix:/run/lockout.sock
  on_store_error = LOCKOUT_ON_STORE_ERROR     deny (locked while Redis is away), allow, or local
                                              (counted by each instance alone meanwhile)
  command_timeout = LOCKOUT_COMMAND_TIMEOUT   250ms: longest wait for Redis per login request
  bulk_timeout = LOCKOUT_BULK_TIMEOUT         10m: longest admin work, on its own connection
  view_scan_limit = LOCKOUT_VIEW_SCAN_LIMIT   20000 records read at most by a sorted or searched listing
  api_token = LOCKOUT_API_TOKEN               empty; else check/failure/success need it as a bearer token
  api_tokens = LOCKOUT_API_TOKENS             [] (JSON: [{\"token\": ..., \"scopes\": [\"site-a\"]}]: its scopes only)
  open_login_api = LOCKOUT_OPEN_LOGIN_API     false: listening beyond loopback needs api_token(s)
  trusted_proxies = LOCKOUT_TRUSTED_PROXIES   [] (IPs, CIDRs whose X-Forwarded-For names an admin's client)
  max_connections = LOCKOUT_MAX_CONNECTIONS   10000 (more at once: 503)
  header_read_timeout = LOCKOUT_HEADER_READ_TIMEOUT  10s (also an idle kept-alive connection's)
  body_read_timeout = LOCKOUT_BODY_READ_TIMEOUT      10s (else 408 and the connection closed)
  drain_timeout = LOCKOUT_DRAIN_TIMEOUT       10s (requests in flight after SIGTERM)
  log_format = LOCKOUT_LOG_FORMAT             text or json (one object per line)
  lock_cache = LOCKOUT_LOCK_CACHE             true: checks of identities known locked skip Redis
  [policy] failure_limit = LOCKOUT_POLICY_FAILURE_LIMIT                       3
           cooloff = LOCKOUT_POLICY_COOLOFF                                   30m
           lockout_duration = LOCKOUT_POLICY_LOCKOUT_DURATION                 the cool-off
           lockout_parameters = LOCKOUT_POLICY_LOCKOUT_PARAMETERS             [\"ip\"]
           lock_out_at_failure = LOCKOUT_POLICY_LOCK_OUT_AT_FAILURE           true
           reset_on_success = LOCKOUT_POLICY_RESET_ON_SUCCESS                 false
           reset_cooloff_on_failure_during_lockout = LOCKOUT_POLICY_RESET_COOLOFF_ON_FAILURE_DURING_LOCKOUT  true
           never_lockout = LOCKOUT_POLICY_NEVER_LOCKOUT                       [] (IPs, CIDRs)
           deny = LOCKOUT_POLICY_DENY                                         [] (IPs, CIDRs)
           access_log = LOCKOUT_POLICY_ACCESS_LOG                             true
           access_log_retention = LOCKOUT_POLICY_ACCESS_LOG_RETENTION         30d
           access_log_max_entries = LOCKOUT_POLICY_ACCESS_LOG_MAX_ENTRIES     1000000
           events = LOCKOUT_POLICY_EVENTS                                     true (lockouts started, resets, lock ends)
           events_retention = LOCKOUT_POLICY_EVENTS_RETENTION                 30d
           events_max_entries = LOCKOUT_POLICY_EVENTS_MAX_ENTRIES             100000
           ipv6_prefix_length = LOCKOUT_POLICY_IPV6_PREFIX_LENGTH             64 (IPv6 counted per /64)
           lockout_memory = LOCKOUT_POLICY_LOCKOUT_MEMORY                     unset; set: repeat offenders
           lockout_backoff = LOCKOUT_POLICY_LOCKOUT_BACKOFF                   2.0 (each lockout that much longer)
           max_lockout_duration = LOCKOUT_POLICY_MAX_LOCKOUT_DURATION         1d
  [admin]  path = LOCKOUT_ADMIN_PATH            /dj-ad-admin/
           username = LOCKOUT_ADMIN_USERNAME    admin
           password = LOCKOUT_ADMIN_PASSWORD    empty: admin API and page disabled
           token = LOCKOUT_ADMIN_TOKEN          empty; else also accepted as a bearer token
           failure_limit = LOCKOUT_ADMIN_FAILURE_LIMIT  5 wrong admin logins lock the address out
           cooloff = LOCKOUT_ADMIN_COOLOFF      15m
  [[webhooks]] url, secret, events, name = LOCKOUT_WEBHOOKS (JSON: [{\"url\": ..., \"secret\": ...}])
  [devices] secret = LOCKOUT_DEVICES_SECRET        empty; set: device tokens (successes answer one)
            token_ttl = LOCKOUT_DEVICES_TOKEN_TTL  90d
            unlock_token_ttl = LOCKOUT_DEVICES_UNLOCK_TOKEN_TTL  1h (self-service unlock)
Logging: LOCKOUT_LOG (a tracing filter, default info). See lockout.example.toml.";

pub(super) async fn serve(config: Config) -> Result<()> {
    config.check_exposure()?;
    init_logging(config.log_format);
    let shutdown = server::shutdown_signal();
    let store = server::open_store(&config).await?;
    let listener = Listener::bind(&config.listen)
        .await
        .map_err(|source| Error::Io {
            what: format!("listen: cannot bind {}", config.listen),
            source,
        })?;
    let address = listener.local_address().map_err(|source| Error::Io {
        what: "listen: no local address".into(),
        source,
    })?;
    let address = match address {
        Listen::Tcp(address) => format!("http://{address}"),
        unix => unix.to_string(),
    };
    let admin = match (
        config.admin.password.is_empty(),
        config.admin.token.is_empty(),
    ) {
        (true, true) => "disabled".to_string(),
        (true, false) => "API for the admin token only (no admin page: no admin.password)".into(),
        (false, _) => format!("at {}", config.admin.path),
    };
    match &config.redis {
        Some(endpoint) => tracing::info!(
            "lockout listening on {address}; Redis {}; prefix {}; {}; on store error: {:?}; admin {admin}",
            endpoint.target(),
            config.keys.prefix(),
            config.policy.summary(),
            config.on_store_error,
        ),
        None => tracing::info!(
            "lockout listening on {address}; in-process store: this process alone, its \
             state lost on restart (set redis_url for several instances, and in production); {}; \
             admin {admin}",
            config.policy.summary(),
        ),
    }
    let engine = Engine::new(store, config.policy.clone());
    let service = Arc::new(Service::new(engine, &config));
    server::serve(listener, service, shutdown)
        .await
        .map_err(|source| Error::Io {
            what: "serving HTTP".into(),
            source,
        })?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LOCKOUT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
