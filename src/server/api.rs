//! The endpoints: login calls (`check`, `failure`, `success`, with device tokens), admin
//! calls (attempts, logs, device revocations), health. The JSON shapes come from `wire`,
//! shared with the CLI.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::auth::{Admin, ApiClient};
use super::error::ApiError;
use super::input::{ApiJson, ApiQuery};
use super::login_call::{Check, Fail, Inspect, Succeed};
use super::views::{self, LogParameters, ViewParameters};
use super::Service;
use crate::attempt::{parse_named_username, Attempt};
use crate::config::OnStoreError;
use crate::engine::{Lockout, Verdict};
use crate::event::EventCursor;
use crate::identity::Identity;
use crate::target::Target;
use crate::wire;

/// At most this many access-log entries per request.
const MAX_LOG_LIMIT: usize = 10_000;
const DEFAULT_LOG_LIMIT: usize = 100;

type Answer = Result<Json<Value>, ApiError>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    ip: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    policy: Option<Box<RawValue>>,
    #[serde(default)]
    scope: Option<String>,
    /// A token `success` answered (see `devices`).
    #[serde(default)]
    device_token: Option<String>,
    /// False: the check only reads, and the caller reports a refused attempt itself as a
    /// failure (Django Axes does), so that it is counted once.
    #[serde(default = "recorded")]
    record_refusal: bool,
}

fn recorded() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRequest {
    ip: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    policy: Option<Box<RawValue>>,
    #[serde(default)]
    scope: Option<String>,
    /// A token `success` answered (see `devices`).
    #[serde(default)]
    device_token: Option<String>,
}

/// A success names the attempt as a failure does, so that every identity it formed (with a
/// user agent too) is cleared.
pub type SuccessRequest = FailureRequest;

impl FailureRequest {
    fn attempt(&self, service: &Service) -> Result<Attempt, ApiError> {
        let attempt = Attempt::parse(
            &self.ip,
            self.username.as_deref(),
            self.user_agent.as_deref(),
            self.path.as_deref(),
        )
        .map_err(ApiError::bad_request)?;
        Ok(with_device(
            service,
            attempt,
            self.device_token.as_deref(),
            self.scope.as_deref(),
        ))
    }
}

/// `attempt` with the device its token names, when device tokens are on and the token is valid
/// for its username and scope; any other token counts as none (see `Devices::verify`).
fn with_device(
    service: &Service,
    attempt: Attempt,
    token: Option<&str>,
    scope: Option<&str>,
) -> Attempt {
    let (Some(devices), Some(token), Some(username)) =
        (&service.devices, token, attempt.username.as_deref())
    else {
        return attempt;
    };
    let device = devices.verify(token, username, scope, SystemTime::now());
    service
        .metrics
        .device_token(if device.is_some() { "valid" } else { "invalid" });
    attempt.with_device(device)
}

/// `POST /v1/check`
pub async fn check(
    State(service): State<Arc<Service>>,
    client: ApiClient,
    ApiJson(request): ApiJson<CheckRequest>,
) -> Result<Response, ApiError> {
    client.may_use(request.scope.as_deref())?;
    let attempt = Attempt::parse(
        &request.ip,
        request.username.as_deref(),
        request.user_agent.as_deref(),
        None,
    )
    .map_err(ApiError::bad_request)?;
    let attempt = with_device(
        &service,
        attempt,
        request.device_token.as_deref(),
        request.scope.as_deref(),
    );
    let engine = service.engine_for(request.policy.as_deref(), request.scope.as_deref())?;
    if !request.record_refusal {
        let Ok(standing) = service
            .login_call("check", &engine, Inspect(&attempt))
            .await
        else {
            return Ok(Json(degraded_check(&service)).into_response());
        };
        count_check(&service, &standing.value.verdict);
        let answer = wire::marked(wire::standing(&standing.value), standing.local);
        return Ok(Json(answer).into_response());
    }
    let Ok(verdict) = service.login_call("check", &engine, Check(&attempt)).await else {
        return Ok(Json(degraded_check(&service)).into_response());
    };
    count_check(&service, &verdict.value);
    if let Verdict::Locked(lockout) = &verdict.value {
        log_lockouts(
            &service,
            &attempt,
            &lockout.started,
            lockout.spraying_started,
            lockout.retry_after,
        );
    }
    let answer = wire::marked(wire::verdict(&verdict.value), verdict.local);
    Ok(Json(answer).into_response())
}

/// Counts a check by its verdict; one that observe mode kept from refusing is allowed, and a
/// would-be refusal too.
fn count_check(service: &Service, verdict: &Verdict) {
    service.metrics.check(match verdict {
        Verdict::Allowed => "allowed",
        Verdict::WouldLock(_) => {
            service.metrics.would_refuse("check");
            "allowed"
        }
        Verdict::Locked(lockout) => lockout.reason.name(),
    });
}

fn degraded_check(service: &Service) -> Value {
    service.metrics.check("degraded");
    service.metrics.degraded("check");
    degraded_verdict(service.on_store_error)
}

/// `POST /v1/failure`
pub async fn failure(
    State(service): State<Arc<Service>>,
    client: ApiClient,
    ApiJson(request): ApiJson<FailureRequest>,
) -> Result<Response, ApiError> {
    client.may_use(request.scope.as_deref())?;
    let attempt = request.attempt(&service)?;
    let engine = service.engine_for(request.policy.as_deref(), request.scope.as_deref())?;
    service.metrics.failure();
    let Ok(report) = service.login_call("failure", &engine, Fail(&attempt)).await else {
        service.metrics.degraded("failure");
        let locked = service.on_store_error != OnStoreError::Allow;
        return Ok(Json(json!({
            "locked": locked,
            "retry_after_secs": null,
            "failures": [],
            "degraded": true,
        }))
        .into_response());
    };
    log_lockouts(
        &service,
        &attempt,
        &report.value.started,
        report.value.spraying_started,
        report.value.retry_after,
    );
    if let Some(lockout) = &report.value.would_lock {
        service.metrics.would_refuse("failure");
        log_would_lockouts(&attempt, lockout);
    }
    let answer = wire::marked(wire::failure(&report.value), report.local);
    Ok(Json(answer).into_response())
}

/// `POST /v1/success`
pub async fn success(
    State(service): State<Arc<Service>>,
    client: ApiClient,
    ApiJson(request): ApiJson<SuccessRequest>,
) -> Result<Response, ApiError> {
    client.may_use(request.scope.as_deref())?;
    let attempt = request.attempt(&service)?;
    let engine = service.engine_for(request.policy.as_deref(), request.scope.as_deref())?;
    service.metrics.success();
    let device_token = issue_device_token(&service, &attempt, request.scope.as_deref());
    let Ok(reset) = service
        .login_call("success", &engine, Succeed(&attempt))
        .await
    else {
        service.metrics.degraded("success");
        let mut answer = wire::success(false, device_token);
        answer["degraded"] = true.into();
        return Ok(Json(answer).into_response());
    };
    let answer = wire::success(reset.value, device_token);
    Ok(Json(wire::marked(answer, reset.local)).into_response())
}

/// A token for a new device of the attempt's username in `scope`, when device tokens are on
/// (the success proved the password, wherever the store is), and how long it is valid. No
/// token, and an error logged, when the system gives no random bytes.
fn issue_device_token(
    service: &Service,
    attempt: &Attempt,
    scope: Option<&str>,
) -> Option<(String, Duration)> {
    let devices = service.devices.as_ref()?;
    let username = attempt.username.as_deref()?;
    match devices.issue(username, scope, SystemTime::now()) {
        Ok(token) => {
            service.metrics.device_token("issued");
            Some((token, devices.token_ttl))
        }
        Err(err) => {
            tracing::error!(%err, "no device token issued");
            None
        }
    }
}

/// The answer `on_store_error` dictates while Redis is away (with `local`, when even the local
/// store could not answer: the safe side).
fn degraded_verdict(on_store_error: OnStoreError) -> Value {
    match on_store_error {
        OnStoreError::Deny | OnStoreError::Local => json!({
            "locked": true,
            "reason": "store_unavailable",
            "retry_after_secs": null,
            "locked_by": [],
            "degraded": true,
        }),
        OnStoreError::Allow => json!({ "locked": false, "degraded": true }),
    }
}

/// One log line and one count per identity this attempt locked, and for its IP's spraying
/// lock when it started one.
fn log_lockouts(
    service: &Service,
    attempt: &Attempt,
    started: &[crate::policy::Combination],
    spraying_started: bool,
    retry_after: Option<Duration>,
) {
    service.metrics.lockouts_started(started.len());
    let by = started.iter().map(ToString::to_string);
    let spraying = spraying_started.then(|| "spraying".to_string());
    if spraying_started {
        service.metrics.spraying_lockout_started();
    }
    for by in by.chain(spraying) {
        tracing::warn!(
            ip = %attempt.ip,
            username = attempt.username.as_deref().unwrap_or("-"),
            by,
            retry_after_secs = retry_after.map(wire::seconds),
            "lockout started"
        );
    }
}

/// One log line per identity whose would-be lock this attempt started (observe mode), and
/// for its IP's would-be spraying lock when it started one.
fn log_would_lockouts(attempt: &Attempt, lockout: &Lockout) {
    let by = lockout.started.iter().map(ToString::to_string);
    let spraying = lockout.spraying_started.then(|| "spraying".to_string());
    for by in by.chain(spraying) {
        tracing::info!(
            ip = %attempt.ip,
            username = attempt.username.as_deref().unwrap_or("-"),
            by,
            retry_after_secs = lockout.retry_after.map(wire::seconds),
            "lockout would start (observe mode: nothing refused)"
        );
    }
}

/// How `ip` and `username` together select records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Records holding both.
    #[default]
    All,
    /// Records holding either (Django Axes' `ip_or_username`).
    Any,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default, rename = "match")]
    match_: Match,
    #[serde(default)]
    locked: Option<bool>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    last_failure_from: Option<String>,
    #[serde(default)]
    last_failure_to: Option<String>,
    #[serde(default)]
    offset: Option<usize>,
}

impl AttemptsQuery {
    fn view_parameters(&self) -> ViewParameters<'_> {
        ViewParameters {
            order: self.order.as_deref(),
            q: self.q.as_deref(),
            last_failure_from: self.last_failure_from.as_deref(),
            last_failure_to: self.last_failure_to.as_deref(),
            offset: self.offset,
        }
    }

    fn target(&self) -> Result<Target, ApiError> {
        let (ip, username) = (self.ip.as_deref(), self.username.as_deref());
        match self.match_ {
            Match::All => Target::exact(ip, username),
            Match::Any => Target::exact_either(ip, username),
        }
        .map_err(ApiError::bad_request)
    }
}

/// `GET /v1/attempts?ip=&username=&match=&locked=true&scope=`, all at once, or a page of about
/// `limit` records from `cursor` (the previous page's `next`); with a view's parameters
/// (`order`, `q`, `last_failure_from`, `last_failure_to`, `offset`), a sorted, searched page
/// of exactly `limit` records (`views`).
pub async fn list_attempts(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<AttemptsQuery>,
) -> Answer {
    let target = query.target()?;
    if query.all || query.dry_run {
        return Err(ApiError::bad_request(
            "all and dry_run are for deleting, not listing",
        ));
    }
    let parameters = query.view_parameters();
    if parameters.given() {
        if query.cursor.is_some() {
            return Err(ApiError::bad_request(
                "cursor: pages the store's order; a view (order, q, last_failure_from, \
                 last_failure_to, offset) pages with offset",
            ));
        }
        let view = parameters.view(query.locked, query.limit)?;
        let engine = service.admin_engine(query.scope.as_deref()).await?;
        let viewed = service
            .bulk_call("list", engine.view(&target, &view, service.view_scan_limit))
            .await?;
        return Ok(Json(views::viewed(&viewed)));
    }
    let locked_only = match query.locked {
        Some(false) => {
            return Err(ApiError::bad_request(
                "locked: false (unlocked records only) is for a view: add order=-last_failure",
            ))
        }
        locked => locked.is_some(),
    };
    let engine = service.admin_engine(query.scope.as_deref()).await?;
    let Some(limit) = query.limit else {
        if query.cursor.is_some() {
            return Err(ApiError::bad_request("cursor: goes with limit"));
        }
        let records = service
            .bulk_call("list", engine.list(&target, locked_only))
            .await?;
        return Ok(Json(wire::attempts(&records)));
    };
    let page = service
        .bulk_call(
            "list",
            engine.page(
                &target,
                locked_only,
                query.cursor.as_deref(),
                views::page_limit(Some(limit))?,
            ),
        )
        .await?;
    let mut answer = wire::attempts(&page.records);
    answer["next"] = page.next.into();
    Ok(Json(answer))
}

/// `DELETE /v1/attempts?ip=&username=&match=&scope=` or `?all=true`; with `dry_run=true` only
/// counts.
pub async fn delete_attempts(
    State(service): State<Arc<Service>>,
    admin: Admin,
    ApiQuery(query): ApiQuery<AttemptsQuery>,
) -> Answer {
    let target = query.target()?;
    match (target == Target::All, query.all) {
        (true, false) => {
            return Err(ApiError::bad_request(
                "give ip, username or both, or all=true to delete every record",
            ))
        }
        (false, true) => {
            return Err(ApiError::bad_request(
                "all=true cannot be combined with ip or username",
            ))
        }
        _ => {}
    }
    if query.locked.is_some()
        || query.limit.is_some()
        || query.cursor.is_some()
        || query.view_parameters().given()
    {
        return Err(ApiError::bad_request(
            "locked, limit, cursor and a view's parameters are for listing, not deleting",
        ));
    }
    let engine = service.admin_engine(query.scope.as_deref()).await?;
    let matched = AtomicU64::new(0);
    let mut progress = |count| matched.store(count, Ordering::Relaxed);
    let removed = service
        .bulk_call(
            "reset",
            engine.reset(&target, query.dry_run, &mut progress, &admin.by("api")),
        )
        .await
        .map_err(|err| match matched.load(Ordering::Relaxed) {
            0 => err,
            at_most => err.with_detail(format!(
                "the reset stopped having removed at most {at_most} records; run it again to \
                 remove the rest"
            )),
        })?;
    if query.dry_run {
        let mut answer = wire::removed(removed);
        answer["dry_run"] = true.into();
        return Ok(Json(answer));
    }
    service.metrics.resets(removed);
    tracing::info!(
        ?target,
        scope = query.scope.as_deref().unwrap_or("-"),
        removed,
        "attempt records removed through the admin API"
    );
    Ok(Json(wire::removed(removed)))
}

/// One record to delete, named by its identity's fields (a listed record's `parameters`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordParameters {
    #[serde(default)]
    pub(super) ip: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) user_agent: Option<String>,
    /// A device record's (see `devices`).
    #[serde(default)]
    pub(super) device: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteRecordsRequest {
    records: Vec<RecordParameters>,
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /v1/attempts/delete` `{"records":[{"ip":...,"username":...}],"scope":...}`: exactly
/// these records, as an admin selects them in a list.
pub async fn delete_records(
    State(service): State<Arc<Service>>,
    admin: Admin,
    ApiJson(request): ApiJson<DeleteRecordsRequest>,
) -> Answer {
    let identities = request
        .records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            Identity::of_fields(
                record.ip.as_deref(),
                record.username.as_deref(),
                record.user_agent.as_deref(),
            )
            .and_then(|identity| identity.with_device(record.device.as_deref()))
            .map_err(|err| ApiError::bad_request(format!("records[{i}].{err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let engine = service.admin_engine(request.scope.as_deref()).await?;
    let removed = service
        .bulk_call("remove", engine.remove(&identities, &admin.by("api")))
        .await?;
    service.metrics.resets(removed);
    tracing::info!(
        records = identities.len(),
        scope = request.scope.as_deref().unwrap_or("-"),
        removed,
        "attempt records removed through the admin API"
    );
    Ok(Json(wire::removed(removed)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesQuery {
    username: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `DELETE /v1/devices?username=&scope=`: voids every device token of the username issued
/// until now (an operator's "revoke devices"); 400 when device tokens are off.
pub async fn revoke_devices(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<DevicesQuery>,
) -> Answer {
    let username = parse_named_username(&query.username).map_err(ApiError::bad_request)?;
    let engine = service.admin_engine(query.scope.as_deref()).await?;
    service
        .bulk_call(
            "revoke_devices",
            engine.revoke_devices(std::slice::from_ref(&username)),
        )
        .await?;
    tracing::info!(
        username,
        scope = query.scope.as_deref().unwrap_or("-"),
        "device tokens revoked through the admin API"
    );
    Ok(Json(wire::revoked()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// `GET /v1/events?since=&limit=&scope=`: the events after `since` (an event's `id`, or the
/// `next` cursor of an answer), oldest first, and `next`; a follower passes the `next` it got.
/// With `subject` (an identity), those naming it, and `next` only when the read stopped early.
pub async fn list_events(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Answer {
    let limit = query.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    if !(1..=MAX_LOG_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: from 1 to {MAX_LOG_LIMIT}"
        )));
    }
    let since = match &query.since {
        None => EventCursor::default(),
        Some(since) => EventCursor::parse(since).ok_or_else(|| {
            ApiError::bad_request(format!(
                "since: {since:?} is neither an event id (such as 1764380000000-0-3) nor a \
                 next cursor of this endpoint"
            ))
        })?,
    };
    let engine = service.admin_engine(query.scope.as_deref()).await?;
    let Some(subject) = &query.subject else {
        let events = service
            .bulk_call("events", engine.events(&since, limit))
            .await?;
        let next = since.after(&events);
        return Ok(Json(wire::events(&events, &next)));
    };
    if Identity::from_tag(subject).is_none() {
        return Err(ApiError::bad_request(format!(
            "subject: {subject:?} is not a record's identity (such as ip=203.0.113.9&username=alice)"
        )));
    }
    let (events, next) = service
        .bulk_call(
            "events",
            engine.events_naming(subject, &since, limit, views::EVENT_SCAN_LIMIT),
        )
        .await?;
    let mut answer = wire::events(&events, &since);
    answer["next"] = next.map(|cursor| cursor.to_string()).into();
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    scope: Option<String>,
}

/// `GET /v1/logs?ip=&username=&outcome=&q=&from=&to=&offset=&limit=&scope=`: newest first, and
/// whether more entries match past this page.
pub async fn list_logs(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> Answer {
    let limit = query.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    let offset = query.offset.unwrap_or(0);
    if !(1..=MAX_LOG_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: from 1 to {MAX_LOG_LIMIT}"
        )));
    }
    if offset + limit > MAX_LOG_LIMIT {
        return Err(ApiError::bad_request(format!(
            "offset: offset + limit at most {MAX_LOG_LIMIT}; to go further back, pass to= \
             (the time of the last entry seen)"
        )));
    }
    let parameters = LogParameters {
        outcome: query.outcome.as_deref(),
        q: query.q.as_deref(),
        from: query.from.as_deref(),
        to: query.to.as_deref(),
    };
    let filter = parameters.filter(query.ip.as_deref(), query.username)?;
    let engine = service.admin_engine(query.scope.as_deref()).await?;
    let mut entries = service
        .bulk_call("logs", engine.logs(&filter, offset + limit + 1))
        .await?;
    let more = entries.len() > offset + limit;
    entries.truncate(offset + limit);
    let mut answer = wire::logs(entries.get(offset..).unwrap_or_default());
    answer["more"] = more.into();
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteLogsQuery {
    #[serde(default)]
    older_than: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// `DELETE /v1/logs?older_than=30d&scope=`
pub async fn delete_logs(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<DeleteLogsQuery>,
) -> Answer {
    let age = match query.older_than.as_deref() {
        None => Duration::from_secs(30 * 24 * 3600),
        Some(text) => humantime::parse_duration(text).map_err(|err| {
            ApiError::bad_request(format!("older_than: {text:?} is not a duration ({err})"))
        })?,
    };
    let engine = service.admin_engine(query.scope.as_deref()).await?;
    let removed = service
        .bulk_call("reset_logs", engine.reset_logs(age))
        .await?;
    Ok(Json(wire::removed(removed)))
}

/// `GET /livez`: the process answers (a liveness probe: Redis being away is no reason to
/// restart the service, which keeps answering in its fail mode and recovers by itself).
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// `GET /readyz` and `GET /healthz`: 200 when Redis answers, 503 otherwise.
pub async fn health(State(service): State<Arc<Service>>) -> (StatusCode, Json<Value>) {
    match service
        .store_call("ping", service.engine.store().ping())
        .await
    {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": "the store (Redis) is unavailable" })),
        ),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}
