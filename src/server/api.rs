//! The endpoints of DESIGN.md section 4: login calls (`check`, `failure`, `success`), admin
//! calls (attempts and logs), health. The JSON shapes come from `wire`, shared with the CLI.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Admin, ApiClient};
use super::error::ApiError;
use super::input::{ApiJson, ApiQuery};
use super::Service;
use crate::attempt::{parse_ip, Attempt};
use crate::config::OnStoreError;
use crate::engine::Verdict;
use crate::record::LogFilter;
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessRequest {
    ip: String,
    #[serde(default)]
    username: Option<String>,
}

/// `POST /v1/check`
pub async fn check(
    State(service): State<Arc<Service>>,
    _: ApiClient,
    ApiJson(request): ApiJson<CheckRequest>,
) -> Answer {
    let attempt = Attempt::parse(
        &request.ip,
        request.username.as_deref(),
        request.user_agent.as_deref(),
        None,
    )
    .map_err(ApiError::bad_request)?;
    let Ok(verdict) = service
        .store_call("check", service.engine.check(&attempt))
        .await
    else {
        service.metrics.check("degraded");
        service.metrics.degraded("check");
        return Ok(Json(degraded_verdict(service.on_store_error)));
    };
    match &verdict {
        Verdict::Allowed => service.metrics.check("allowed"),
        Verdict::Locked(lockout) => {
            service.metrics.check(lockout.reason.name());
            log_lockouts(&service, &attempt, &lockout.started, lockout.retry_after);
        }
    }
    Ok(Json(wire::verdict(&verdict)))
}

/// `POST /v1/failure`
pub async fn failure(
    State(service): State<Arc<Service>>,
    _: ApiClient,
    ApiJson(request): ApiJson<FailureRequest>,
) -> Answer {
    let attempt = Attempt::parse(
        &request.ip,
        request.username.as_deref(),
        request.user_agent.as_deref(),
        request.path.as_deref(),
    )
    .map_err(ApiError::bad_request)?;
    service.metrics.failure();
    let Ok(report) = service
        .store_call("failure", service.engine.fail(&attempt))
        .await
    else {
        service.metrics.degraded("failure");
        let locked = service.on_store_error == OnStoreError::Deny;
        return Ok(Json(json!({
            "locked": locked,
            "retry_after_secs": null,
            "failures": [],
            "degraded": true,
        })));
    };
    log_lockouts(&service, &attempt, &report.started, report.retry_after);
    Ok(Json(wire::failure(&report)))
}

/// `POST /v1/success`
pub async fn success(
    State(service): State<Arc<Service>>,
    _: ApiClient,
    ApiJson(request): ApiJson<SuccessRequest>,
) -> Answer {
    let attempt = Attempt::parse(&request.ip, request.username.as_deref(), None, None)
        .map_err(ApiError::bad_request)?;
    service.metrics.success();
    let Ok(reset) = service
        .store_call("success", service.engine.succeed(&attempt))
        .await
    else {
        service.metrics.degraded("success");
        return Ok(Json(json!({ "reset": false, "degraded": true })));
    };
    Ok(Json(wire::success(reset)))
}

/// The answer `on_store_error` dictates while Redis is away.
fn degraded_verdict(on_store_error: OnStoreError) -> Value {
    match on_store_error {
        OnStoreError::Deny => json!({
            "locked": true,
            "reason": "store_unavailable",
            "retry_after_secs": null,
            "locked_by": [],
            "degraded": true,
        }),
        OnStoreError::Allow => json!({ "locked": false, "degraded": true }),
    }
}

/// One log line and one count per identity this attempt locked.
fn log_lockouts(
    service: &Service,
    attempt: &Attempt,
    started: &[crate::policy::Combination],
    retry_after: Option<Duration>,
) {
    service.metrics.lockouts_started(started.len());
    for combination in started {
        tracing::warn!(
            ip = %attempt.ip,
            username = attempt.username.as_deref().unwrap_or("-"),
            by = %combination,
            retry_after_secs = retry_after.map(wire::seconds),
            "lockout started"
        );
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    locked: bool,
    #[serde(default)]
    all: bool,
}

impl AttemptsQuery {
    fn target(&self) -> Result<Target, ApiError> {
        Target::exact(self.ip.as_deref(), self.username.as_deref()).map_err(ApiError::bad_request)
    }
}

/// `GET /v1/attempts?ip=&username=&locked=true`
pub async fn list_attempts(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<AttemptsQuery>,
) -> Answer {
    let target = query.target()?;
    let records = service
        .store_call("list", service.engine.list(&target, query.locked))
        .await?;
    Ok(Json(wire::attempts(&records)))
}

/// `DELETE /v1/attempts?ip=&username=` or `?all=true`
pub async fn delete_attempts(
    State(service): State<Arc<Service>>,
    _: Admin,
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
    let removed = service
        .store_call("reset", service.engine.reset(&target, false, &mut |_| {}))
        .await?;
    service.metrics.resets(removed);
    tracing::info!(
        ?target,
        removed,
        "attempt records removed through the admin API"
    );
    Ok(Json(wire::removed(removed)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /v1/logs?ip=&username=&limit=`
pub async fn list_logs(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> Answer {
    let limit = query.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    if limit > MAX_LOG_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit: at most {MAX_LOG_LIMIT}"
        )));
    }
    let filter = LogFilter {
        ip: query
            .ip
            .as_deref()
            .map(parse_ip)
            .transpose()
            .map_err(ApiError::bad_request)?,
        username: query.username.filter(|username| !username.is_empty()),
        outcome: None,
    };
    let entries = service
        .store_call("logs", service.engine.logs(&filter, limit))
        .await?;
    Ok(Json(wire::logs(&entries)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteLogsQuery {
    #[serde(default)]
    older_than: Option<String>,
}

/// `DELETE /v1/logs?older_than=30d`
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
    let removed = service
        .store_call("reset_logs", service.engine.reset_logs(age))
        .await?;
    Ok(Json(wire::removed(removed)))
}

/// `GET /healthz`: 200 when Redis answers, 503 otherwise.
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
