//! `lockout serve`: the HTTP JSON API (`api`), its authentication (`auth`), its error answers
//! (`error`) and its metrics (`metrics`), over one shared engine on one multiplexed Redis
//! connection or the in-process store, and with `on_store_error = "local"` the local store that
//! covers an outage (`insurance`). `app` builds the router (tests call it too); `serve` runs it
//! until `shutdown`.

mod admin;
mod api;
mod auth;
mod error;
mod event_tasks;
mod forwarded;
mod import;
mod input;
mod insurance;
mod known_locks;
mod listener;

pub use listener::Listener;
mod login_call;
mod metrics;
mod outage;
mod unlock;
mod views;

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use futures_util::FutureExt;
use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::Sha256;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::{AdminConfig, Config, OnStoreError, RequestPolicies};
use crate::engine::Engine;
use crate::keys::Keyspace;
use crate::lock_cache::LockCacheTasks;
use crate::policy::IpList;
use crate::store::any::AnyStore;
use crate::store::redis::{RedisOptions, RedisStore};
use error::ApiError;
use insurance::Insurance;
use login_call::LoginCall;
pub use metrics::Metrics;

/// The engines of requests by scope and policy text; `None` for the service's own.
type RequestEngines = HashMap<String, Option<Arc<Engine<AnyStore>>>>;

/// Engines kept for requests that bring a policy or a scope; past that, the cache is emptied.
const MAX_REQUEST_ENGINES: usize = 256;

/// How long one command of admin work (a SCAN, an UNLINK batch) may take.
const BULK_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Everything a request handler needs, shared by all of them.
pub struct Service {
    engine: Engine<AnyStore>,
    /// The service's own admin logins: their own scope and policy (`AdminConfig::login_policy`).
    admin_logins: Engine<AnyStore>,
    /// Proxies whose `X-Forwarded-For` names an admin login's client.
    trusted_proxies: IpList,
    /// Builds the policies login requests bring, over the configured one.
    request_policies: RequestPolicies,
    /// The engines of requests that bring a policy or a scope (see `engine_for`).
    request_engines: Mutex<RequestEngines>,
    on_store_error: OnStoreError,
    command_timeout: Duration,
    bulk_timeout: Duration,
    /// Records a view of the attempt records reads at most.
    view_scan_limit: usize,
    /// The connection of admin work, opened at its first use (see `admin_engine`).
    bulk_store: tokio::sync::OnceCell<AnyStore>,
    /// With `on_store_error = "local"`: the local store that answers logins during an outage.
    insurance: Option<Insurance>,
    api_token: Option<crate::secret::Secret>,
    api_tokens: Vec<crate::config::ApiToken>,
    admin: AdminConfig,
    metrics: Metrics,
    outage: outage::OutageLog,
    limits: listener::Limits,
    /// Carried by every admin page form (see `csrf_token`).
    csrf_token: String,
    /// The lock cache's tasks, when it is on; stopped with the service.
    _lock_cache: Option<LockCacheTasks>,
    /// Lock ends told and webhooks served, when events are on; stopped with the service.
    _event_tasks: Option<event_tasks::EventTasks>,
    /// Device tokens, when `devices.secret` is set.
    devices: Option<crate::devices::Devices>,
}

impl Service {
    /// Must run inside a tokio runtime: the lock cache, when on, starts its tasks (not on the
    /// in-process store, which answers as fast as the cache would).
    pub fn new(engine: Engine<AnyStore>, config: &Config) -> Self {
        let insurance = (config.on_store_error == OnStoreError::Local)
            .then(|| Insurance::new(engine.store().clone(), config.in_process_store()));
        let metrics = Metrics::new();
        let (appended, _) = tokio::sync::watch::channel(());
        let event_tasks = engine.policy().events.map(|bounds| {
            event_tasks::EventTasks::start(
                engine.store().clone(),
                bounds,
                &config.webhooks,
                appended.clone(),
                &metrics,
            )
        });
        let engine = engine
            .with_events_signal(appended)
            .with_devices(config.devices.as_ref());
        let (engine, lock_cache) = if config.lock_cache && !engine.store().is_in_process() {
            let (engine, tasks) = engine.with_lock_cache();
            (engine, Some(tasks))
        } else {
            (engine, None)
        };
        let admin_keys = engine
            .store()
            .keys()
            .scoped(Keyspace::ADMIN_LOGINS)
            .expect("a valid scope name");
        Service {
            _lock_cache: lock_cache,
            _event_tasks: event_tasks,
            request_policies: RequestPolicies::new(engine.policy()),
            request_engines: Mutex::default(),
            admin_logins: Engine::new(
                engine.store().with_keys(admin_keys),
                config.admin.login_policy(),
            ),
            trusted_proxies: config.trusted_proxies.clone(),
            engine,
            on_store_error: config.on_store_error,
            command_timeout: config.login_timeout(),
            bulk_timeout: config.bulk_timeout,
            view_scan_limit: config.view_scan_limit,
            bulk_store: tokio::sync::OnceCell::new(),
            insurance,
            api_token: config.api_token.clone(),
            api_tokens: config.api_tokens.clone(),
            admin: config.admin.clone(),
            metrics,
            outage: outage::OutageLog::default(),
            limits: listener::Limits {
                max_connections: config.max_connections,
                header_read_timeout: config.header_read_timeout,
                body_read_timeout: config.body_read_timeout,
                drain_timeout: config.drain_timeout,
            },
            csrf_token: csrf_token(&config.admin),
            devices: config.devices.clone(),
        }
    }

    /// An engine of `policy` on `store`, its resets revoking device tokens when they are on.
    fn new_engine(&self, store: AnyStore, policy: crate::policy::Policy) -> Engine<AnyStore> {
        Engine::new(store, policy).with_devices(self.devices.as_ref())
    }

    /// The engine for a request that may bring its own policy (the `[policy]` keys as JSON)
    /// and scope: the service's own, with its lock cache, unless the request brings a scope
    /// or a policy that differs from the configured one. Such engines are kept by scope and
    /// policy text (a site sends the same settings with every login: they are parsed and
    /// validated once), at most `MAX_REQUEST_ENGINES` of them.
    fn engine_for(
        &self,
        policy: Option<&RawValue>,
        scope: Option<&str>,
    ) -> Result<RequestEngine<'_>, ApiError> {
        if policy.is_none() && scope.is_none() {
            return Ok(RequestEngine::Shared(&self.engine));
        }
        let key = format!(
            "{}\0{}",
            scope.unwrap_or(""),
            policy.map_or("", RawValue::get)
        );
        if let Some(engine) = self.request_engines().get(&key) {
            return Ok(match engine {
                Some(engine) => RequestEngine::Cached(engine.clone()),
                None => RequestEngine::Shared(&self.engine),
            });
        }
        let policy = policy
            .map(|text| {
                let overrides: Map<String, Value> = serde_json::from_str(text.get())
                    .map_err(|err| ApiError::bad_request(format!("policy: {err}")))?;
                self.request_policies
                    .apply(&overrides)
                    .map_err(ApiError::bad_request)
            })
            .transpose()?
            .filter(|policy| policy != self.engine.policy());
        let keys = requested_keys(self.engine.store().keys(), scope)?;
        // The configured policy, unscoped: the service's own engine (None in the cache).
        let engine = if policy.is_some() || keys.is_some() {
            let store = match keys {
                Some(keys) => self.engine.store().with_keys(keys),
                None => self.engine.store().clone(),
            };
            let policy = policy.unwrap_or_else(|| self.engine.policy().clone());
            Some(Arc::new(self.new_engine(store, policy)))
        } else {
            None
        };
        let mut engines = self.request_engines();
        if engines.len() >= MAX_REQUEST_ENGINES {
            engines.clear();
        }
        engines.insert(key, engine.clone());
        Ok(match engine {
            Some(engine) => RequestEngine::Cached(engine),
            None => RequestEngine::Shared(&self.engine),
        })
    }

    fn request_engines(&self) -> MutexGuard<'_, RequestEngines> {
        // A panic while holding the lock cannot leave the map inconsistent: recover it.
        self.request_engines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The engine of admin work (listings, resets, log trims) on the records of `scope` (or
    /// the unscoped ones): the configured policy, on a Redis connection of its own whose
    /// commands may take longer, so that a reset of a million records neither fails at the
    /// login timeout nor delays the logins meanwhile.
    async fn admin_engine(&self, scope: Option<&str>) -> Result<Engine<AnyStore>, ApiError> {
        let bulk = self
            .bulk_store
            .get_or_try_init(|| {
                let options = RedisOptions {
                    connect_timeout: self.command_timeout.max(Duration::from_secs(1)),
                    command_timeout: BULK_COMMAND_TIMEOUT.min(self.bulk_timeout),
                    reset_memory: self.engine.policy().longest_record_life(),
                };
                self.engine.store().reopen(options)
            })
            .await
            .map_err(|err| {
                self.outage.failed("admin", &err);
                ApiError::unavailable()
            })?;
        let store = match requested_keys(bulk.keys(), scope)? {
            Some(keys) => bulk.with_keys(keys),
            None => bulk.clone(),
        };
        Ok(self.new_engine(store, self.engine.policy().clone()))
    }

    /// Runs one login's engine call on `engine` (see `store_call`); with insurance, on the
    /// local store instead while Redis is away, or when Redis fails it.
    async fn login_call<C: LoginCall>(
        &self,
        operation: &'static str,
        engine: &Engine<AnyStore>,
        call: C,
    ) -> Result<Answered<C::Output>, ApiError> {
        let Some(insurance) = &self.insurance else {
            return self
                .store_call(operation, call.run(engine))
                .await
                .map(Answered::stored);
        };
        let local = match insurance.while_away(engine, &call).await {
            Some(local) => local,
            None => match self.store_call(operation, call.run(engine)).await {
                Err(err) if err.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    insurance
                        .redis_failed(engine, &call, err.reply_lost())
                        .await
                }
                answered => {
                    if let Ok(output) = &answered {
                        insurance.redis_answered(engine, &call, output);
                    }
                    return answered.map(Answered::stored);
                }
            },
        };
        self.metrics.degraded(operation);
        local.map(Answered::local).map_err(ApiError::bad_request)
    }

    /// Runs one login's engine call within the command timeout (see `call`).
    fn store_call<'s, T>(
        &'s self,
        operation: &'static str,
        call: impl Future<Output = crate::Result<T>> + 's,
    ) -> impl Future<Output = Result<T, ApiError>> + 's {
        self.call(operation, self.command_timeout, call)
    }

    /// Runs admin work within the bulk timeout (see `call`); what it did before a timeout
    /// stands.
    fn bulk_call<'s, T>(
        &'s self,
        operation: &'static str,
        call: impl Future<Output = crate::Result<T>> + 's,
    ) -> impl Future<Output = Result<T, ApiError>> + 's {
        self.call(operation, self.bulk_timeout, call)
    }

    /// Runs one engine call within `timeout`, timing it; a store error or a timeout is logged
    /// (once per outage), counted and answered as 503 (login endpoints turn it into their fail
    /// mode).
    ///
    /// Combinators, not `async fn`s, from here to the engine's call: an `async fn` keeps its
    /// argument future beside the future it awaits, so each layer doubled a login's future
    /// (14 KB, copied as axum boxes it; 5 KB now).
    fn call<'s, T>(
        &'s self,
        operation: &'static str,
        timeout: Duration,
        call: impl Future<Output = crate::Result<T>> + 's,
    ) -> impl Future<Output = Result<T, ApiError>> + 's {
        let started = Instant::now();
        tokio::time::timeout(timeout, call)
            .map(move |result| self.answer(operation, timeout, started, result))
    }

    /// What an engine call `started` then came to, as the endpoint answers it (see `call`).
    fn answer<T>(
        &self,
        operation: &'static str,
        timeout: Duration,
        started: Instant,
        result: Result<crate::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, ApiError> {
        self.metrics.observe_store(operation, started.elapsed());
        match result {
            Ok(Ok(value)) => {
                self.outage.succeeded();
                return Ok(value);
            }
            Ok(Err(err)) if err.is_invalid_input() => return Err(ApiError::bad_request(err)),
            Ok(Err(err)) if err.is_unavailable() => {
                self.outage.failed(operation, &err);
                if err.reply_lost() {
                    self.metrics.store_error(operation);
                    return Err(ApiError::unavailable().with_reply_lost());
                }
            }
            // Not an outage: Redis answered something the engine cannot use. Same answer
            // for the caller, but it is a bug or a foreign key under the prefix to look at.
            Ok(Err(err)) => tracing::error!(operation, %err, "store error"),
            Err(_) => {
                let message = format!("no answer from Redis within {timeout:?}");
                self.outage.failed(operation, &message);
                self.metrics.store_error(operation);
                return Err(
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).with_reply_lost()
                );
            }
        }
        self.metrics.store_error(operation);
        Err(ApiError::unavailable())
    }
}

/// What a login call answered.
struct Answered<T> {
    value: T,
    /// Counted on this instance's local store while Redis is away (`on_store_error = "local"`).
    local: bool,
}

impl<T> Answered<T> {
    fn stored(value: T) -> Self {
        Answered {
            value,
            local: false,
        }
    }

    fn local(value: T) -> Self {
        Answered { value, local: true }
    }
}

/// The keyspace of the scope a request names, if any; scopes starting with `_` are lockout's
/// own (its admin logins) and not for requests.
fn requested_keys(keys: &Keyspace, scope: Option<&str>) -> Result<Option<Keyspace>, ApiError> {
    match scope {
        None => Ok(None),
        Some(scope) if scope.starts_with('_') => Err(ApiError::bad_request(
            "scope: names starting with _ are lockout's own",
        )),
        Some(scope) => keys.scoped(scope).map(Some).map_err(ApiError::bad_request),
    }
}

/// The engine one request runs on (see `Service::engine_for`).
enum RequestEngine<'a> {
    Shared(&'a Engine<AnyStore>),
    Cached(Arc<Engine<AnyStore>>),
}

impl Deref for RequestEngine<'_> {
    type Target = Engine<AnyStore>;

    fn deref(&self) -> &Self::Target {
        match self {
            RequestEngine::Shared(engine) => engine,
            RequestEngine::Cached(engine) => engine,
        }
    }
}

/// The admin page's CSRF token: an HMAC of the admin username keyed by the admin password. Every
/// instance with the same configuration makes the same token, so a form works whichever
/// instance a load balancer sends it to, and after a restart; nobody without the password can
/// make it (and whoever has it needs no forged form). A new password makes new tokens.
fn csrf_token(admin: &AdminConfig) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(admin.password.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"lockout admin page CSRF token\0");
    mac.update(admin.username.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The store `serve` runs on: the configured Redis (connected on first use, its commands
/// bounded by `Config::login_redis_timeout`), or the in-process store when none is set.
pub async fn open_store(config: &Config) -> crate::Result<AnyStore> {
    Ok(match &config.redis {
        Some(endpoint) => {
            let options = RedisOptions {
                connect_timeout: config.login_redis_timeout(),
                command_timeout: config.login_redis_timeout(),
                reset_memory: config.policy.longest_record_life(),
            };
            RedisStore::open(endpoint, config.keys.clone(), options)
                .await?
                .into()
        }
        None => config.in_process_store().into(),
    })
}

/// The router: the API, the admin page (when enabled), health and metrics, with the body limit
/// and request metrics.
pub fn app(service: Arc<Service>) -> Router {
    let admin_page = admin::routes(&service);
    Router::new()
        .merge(admin_page)
        .route("/v1/check", post(api::check))
        .route("/v1/failure", post(api::failure))
        .route("/v1/success", post(api::success))
        .route(
            "/v1/attempts",
            get(api::list_attempts).delete(api::delete_attempts),
        )
        .route("/v1/attempts/delete", post(api::delete_records))
        .route("/v1/attempts/import", post(import::import_records))
        .route("/v1/attempts/record", get(views::record))
        .route("/v1/logs", get(api::list_logs).delete(api::delete_logs))
        .route("/v1/events", get(api::list_events))
        .route("/v1/devices", delete(api::revoke_devices))
        .route("/v1/unlock-tokens", post(unlock::unlock_token))
        .route("/v1/unlock", post(unlock::unlock))
        .route("/livez", get(api::live))
        .route("/readyz", get(api::health))
        .route("/healthz", get(api::health))
        .route("/metrics", get(metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            service.clone(),
            metrics::track,
        ))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            service.limits.body_read_timeout,
            input::read_body_first,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(service)
}

/// Serves `app(service)` on `listener` until `shutdown` completes; requests in flight then
/// finish (for at most `drain_timeout`), and the lock cache's queued refusals are recorded,
/// before it returns.
pub async fn serve(
    listener: impl Into<Listener>,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::run(
        listener.into(),
        app(service.clone()),
        service.limits,
        shutdown,
    )
    .await;
    // Refusals the lock cache answered are recorded before the process goes (a deploy).
    service.engine.flush_lock_cache().await;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled: called before the listener is bound, no signal that
/// comes between the bind and the server's start kills the process unasked.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::interrupt()).and_then(|interrupt| {
            signal(SignalKind::terminate()).map(|terminate| (interrupt, terminate))
        })
    };
    async move {
        #[cfg(unix)]
        match signals {
            Ok((mut interrupt, mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests in flight");
    }
}
