//! What the admin lists ask (docs/api.md, "Views of the records"): the query parameters of a
//! view of the attempt records and of the access log, checked with errors that name the
//! parameter, and the endpoint of one record.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Admin;
use super::error::ApiError;
use super::input::ApiQuery;
use super::Service;
use crate::attempt::parse_ip;
use crate::identity::Identity;
use crate::record::{LogFilter, Outcome};
use crate::view::{parse_instant, Order, Period, RecordView, Search, Viewed};
use crate::wire;

/// Records a view's page holds when the request does not say.
const DEFAULT_VIEW_LIMIT: usize = 100;
/// At most this many records per page.
pub const MAX_PAGE_LIMIT: usize = 1000;
/// Events the events of one record are looked for among, per request.
pub const EVENT_SCAN_LIMIT: usize = 100_000;

/// The view parameters of `GET /v1/attempts`, as the query gives them.
#[derive(Debug, Default)]
pub struct ViewParameters<'a> {
    pub order: Option<&'a str>,
    pub q: Option<&'a str>,
    pub last_failure_from: Option<&'a str>,
    pub last_failure_to: Option<&'a str>,
    pub offset: Option<usize>,
}

impl ViewParameters<'_> {
    /// Whether the request asks for a view (else: the store's order, by cursor).
    pub fn given(&self) -> bool {
        self.order.is_some()
            || self.q.is_some()
            || self.last_failure_from.is_some()
            || self.last_failure_to.is_some()
            || self.offset.is_some()
    }

    pub fn view(&self, locked: Option<bool>, limit: Option<usize>) -> Result<RecordView, ApiError> {
        Ok(RecordView {
            order: self
                .order
                .map(Order::parse)
                .transpose()
                .map_err(|err| named("order", err))?
                .unwrap_or_default(),
            search: search(self.q)?,
            last_failure: period(
                ("last_failure_from", self.last_failure_from),
                ("last_failure_to", self.last_failure_to),
            )?,
            locked,
            offset: self.offset.unwrap_or(0),
            limit: page_limit(limit)?,
        })
    }
}

/// A page's `limit`: 1 to `MAX_PAGE_LIMIT`, `DEFAULT_VIEW_LIMIT` when not given.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_VIEW_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: from 1 to {MAX_PAGE_LIMIT}"
        )));
    }
    Ok(limit)
}

fn named(parameter: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("{parameter}: {problem}"))
}

fn search(q: Option<&str>) -> Result<Option<Search>, ApiError> {
    Ok(q.map(Search::new)
        .transpose()
        .map_err(|err| named("q", err))?
        .flatten())
}

fn period(from: (&str, Option<&str>), to: (&str, Option<&str>)) -> Result<Period, ApiError> {
    let instant = |(name, text): (&str, Option<&str>)| {
        text.map(parse_instant)
            .transpose()
            .map_err(|err| named(name, err))
    };
    Ok(Period {
        from: instant(from)?,
        to: instant(to)?,
    })
}

/// `{"attempts":[...],"total":N,"complete":bool,"scanned":N}`.
pub fn viewed(viewed: &Viewed) -> Value {
    let mut answer = wire::attempts(&viewed.records);
    answer["total"] = viewed.total.into();
    answer["complete"] = viewed.complete.into();
    answer["scanned"] = viewed.scanned.into();
    answer
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// `GET /v1/attempts/record?ip=&username=&user_agent=&device=&scope=`: the record of exactly this
/// identity (a listed record's `parameters`).
pub async fn record(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiQuery(query): ApiQuery<RecordQuery>,
) -> Result<Json<Value>, ApiError> {
    let identity = Identity::of_fields(
        query.ip.as_deref(),
        query.username.as_deref(),
        query.user_agent.as_deref(),
    )
    .and_then(|identity| identity.with_device(query.device.as_deref()))
    .map_err(ApiError::bad_request)?;
    let engine = service.admin_engine(query.scope.as_deref()).await?;
    let record = service
        .bulk_call("list", engine.record(&identity))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such record"))?;
    Ok(Json(json!({ "attempt": wire::attempt(&record) })))
}

/// The filters of `GET /v1/logs` beyond `ip` and `username`, as the query gives them.
#[derive(Debug, Default)]
pub struct LogParameters<'a> {
    pub outcome: Option<&'a str>,
    pub q: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
}

impl LogParameters<'_> {
    pub fn filter(
        &self,
        ip: Option<&str>,
        username: Option<String>,
    ) -> Result<LogFilter, ApiError> {
        let outcomes = match self.outcome {
            None | Some("") => Vec::new(),
            Some(names) => names
                .split(',')
                .map(|name| {
                    Outcome::parse(name).ok_or_else(|| {
                        named(
                            "outcome",
                            format!("{name:?} is not failure, refused or success"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(LogFilter {
            ip: ip
                .map(parse_ip)
                .transpose()
                .map_err(ApiError::bad_request)?,
            username: username.filter(|username| !username.is_empty()),
            outcomes,
            search: search(self.q)?,
            period: period(("from", self.from), ("to", self.to))?,
        })
    }
}
