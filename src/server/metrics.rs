//! Prometheus metrics: what the engine decided (checks by verdict, failures, lockouts started,
//! would-be refusals in observe mode, successes, resets), what went wrong (store errors, degraded answers), and how long requests
//! and store calls took. Served at `/metrics` in the OpenMetrics text format.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::Service;

type Label = [(&'static str, &'static str); 1];
/// A webhook's name, and what became of a delivery.
pub type DeliveryLabels = [(&'static str, String); 2];
type RequestLabels = [(&'static str, String); 3];

/// Latency buckets from 100 µs to about 3 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    checks: Family<Label, Counter>,
    failures: Counter,
    lockouts_started: Counter,
    would_refusals: Family<Label, Counter>,
    successes: Counter,
    resets: Counter,
    store_errors: Family<Label, Counter>,
    degraded: Family<Label, Counter>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    store_latency: Family<Label, Histogram, fn() -> Histogram>,
    deliveries: Family<DeliveryLabels, Counter>,
    lockouts_expired: Counter,
    device_tokens: Family<Label, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("lockout"),
            checks: Family::default(),
            failures: Counter::default(),
            lockouts_started: Counter::default(),
            would_refusals: Family::default(),
            successes: Counter::default(),
            resets: Counter::default(),
            store_errors: Family::default(),
            degraded: Family::default(),
            requests: Family::new_with_constructor(latency_histogram),
            store_latency: Family::new_with_constructor(latency_histogram),
            deliveries: Family::default(),
            lockouts_expired: Counter::default(),
            device_tokens: Family::default(),
        };
        let r = &mut metrics.registry;
        r.register("checks", "Login checks by verdict", metrics.checks.clone());
        r.register(
            "failures",
            "Failed logins reported",
            metrics.failures.clone(),
        );
        r.register(
            "lockouts_started",
            "Identities locked (one per combination that reached the limit)",
            metrics.lockouts_started.clone(),
        );
        r.register(
            "would_refusals",
            "Answers in observe mode that would have refused (would_lock), by endpoint",
            metrics.would_refusals.clone(),
        );
        r.register(
            "successes",
            "Successful logins reported",
            metrics.successes.clone(),
        );
        r.register(
            "resets",
            "Attempt records removed through the admin API and page",
            metrics.resets.clone(),
        );
        r.register(
            "store_errors",
            "Store calls that failed or timed out, by operation",
            metrics.store_errors.clone(),
        );
        r.register(
            "degraded_answers",
            "Answers given by the fail mode, or counted locally (on_store_error = local), because the store was unavailable, by endpoint",
            metrics.degraded.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency by endpoint, method and status class",
            metrics.requests.clone(),
        );
        r.register(
            "store_duration_seconds",
            "Latency of engine calls to Redis (round trips included), by operation",
            metrics.store_latency.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Webhook deliveries by webhook and outcome: delivered, retried (an attempt failed, \
             another follows), failed (every attempt failed), dropped (trimmed from the events \
             before it could be delivered)",
            metrics.deliveries.clone(),
        );
        r.register(
            "lockouts_expired",
            "Locks that ran out unreset, told as events by this process",
            metrics.lockouts_expired.clone(),
        );
        r.register(
            "device_tokens",
            "Device tokens issued (with a success), and given with checks and failures: valid \
             (signed here, for the attempt's username and scope, unexpired) or invalid",
            metrics.device_tokens.clone(),
        );
        metrics
    }

    /// `token`: `issued`, `valid` or `invalid`.
    pub fn device_token(&self, token: &'static str) {
        self.device_tokens.get_or_create(&[("token", token)]).inc();
    }

    /// The webhook deliveries' counters, for the tasks that deliver (shared, not copied).
    pub fn deliveries(&self) -> Family<DeliveryLabels, Counter> {
        self.deliveries.clone()
    }

    /// The counter of lock ends told, for the task that tells them.
    pub fn lockouts_expired_counter(&self) -> Counter {
        self.lockouts_expired.clone()
    }

    /// `verdict`: `allowed`, `lockout`, `deny_list` or `degraded`.
    pub fn check(&self, verdict: &'static str) {
        self.checks.get_or_create(&[("verdict", verdict)]).inc();
    }

    /// An answer of `endpoint` (`check`, `failure`) that observe mode kept from refusing.
    pub fn would_refuse(&self, endpoint: &'static str) {
        self.would_refusals
            .get_or_create(&[("endpoint", endpoint)])
            .inc();
    }

    pub fn failure(&self) {
        self.failures.inc();
    }

    pub fn lockouts_started(&self, count: usize) {
        self.lockouts_started.inc_by(count as u64);
    }

    pub fn success(&self) {
        self.successes.inc();
    }

    pub fn resets(&self, removed: u64) {
        self.resets.inc_by(removed);
    }

    pub fn store_error(&self, operation: &'static str) {
        self.store_errors
            .get_or_create(&[("operation", operation)])
            .inc();
    }

    pub fn degraded(&self, endpoint: &'static str) {
        self.degraded.get_or_create(&[("endpoint", endpoint)]).inc();
    }

    pub fn observe_store(&self, operation: &'static str, elapsed: Duration) {
        self.store_latency
            .get_or_create(&[("operation", operation)])
            .observe(elapsed.as_secs_f64());
    }

    fn observe_request(
        &self,
        endpoint: String,
        method: String,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let class = format!("{}xx", status.as_u16() / 100);
        self.requests
            .get_or_create(&[
                ("endpoint", endpoint),
                ("method", method),
                ("status", class),
            ])
            .observe(elapsed.as_secs_f64());
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Middleware timing every routed request.
pub async fn track(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |path| path.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    service
        .metrics
        .observe_request(endpoint, method, response.status(), started.elapsed());
    response
}

/// `GET /metrics`
pub async fn render(State(service): State<Arc<Service>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        service.metrics.encode(),
    )
}
