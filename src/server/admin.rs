//! The admin page at `admin.path` (Climweb's "Access attempts"): browse, filter and delete
//! attempt records, and read the access log, in a browser. Server-rendered with askama
//! (values are HTML-escaped by the templates), one stylesheet of its own, no JavaScript.
//! Behind the same credentials as the admin API (`auth::Admin`, which counts wrong guesses);
//! every form POST carries the CSRF token and is refused without it. Not mounted at all when
//! no admin password is set.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::auth::{same, Admin};
use super::error::ApiError;
use super::Service;
use crate::attempt::parse_ip;
use crate::attempt::Field;
use crate::identity::Identity;
use crate::policy::Policy;
use crate::record::{AttemptRecord, LogFilter, Outcome};
use crate::target::Target;
use crate::wire;

/// Attempt records per page.
const PAGE_SIZE: usize = 50;
/// Access-log entries shown.
const LOG_LIMIT: usize = 200;
/// Events the events page searches, newest first.
const EVENT_LIMIT: usize = 1000;

/// The admin page's routes under `base` (ending in `/`). Without an admin password (it signs
/// in with HTTP Basic) every page there is a 404 saying how to enable it.
pub fn routes(service: &Service) -> Router<Arc<Service>> {
    let base = base_path(&service.admin.path);
    if service.admin.password.is_empty() {
        let disabled = || async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "the admin page is disabled: set admin.password (LOCKOUT_ADMIN_PASSWORD) to \
                 enable it (it signs in with HTTP Basic; admin.token serves the admin API only)",
            )
        };
        return Router::new()
            .route(&base, get(disabled))
            .route(&format!("{base}{{*page}}"), get(disabled));
    }
    let mut router = Router::new()
        .route(&base, get(attempts))
        .route(&format!("{base}logs"), get(logs))
        .route(&format!("{base}events"), get(events))
        .route(&format!("{base}admin.css"), get(stylesheet))
        .route(&format!("{base}attempts/delete"), post(delete_selected))
        .route(
            &format!("{base}attempts/delete-matching"),
            post(delete_matching),
        );
    let bare = base.trim_end_matches('/');
    if !bare.is_empty() {
        let target = base.clone();
        router = router.route(
            bare,
            get(move || async move { Redirect::permanent(&target) }),
        );
    }
    router.layer(axum::middleware::map_response(security_headers))
}

/// `admin.path` with one trailing slash.
fn base_path(path: &str) -> String {
    format!("{}/", path.trim_end_matches('/'))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn stylesheet(_: Admin) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/admin.css"),
    )
}

/// `name=value` pairs of a query string or a form body, repeats kept.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(text: &[u8]) -> Self {
        Fields(form_urlencoded::parse(text).into_owned().collect())
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The attempts page's filters, as typed.
#[derive(Debug, Clone, Default)]
struct Filters {
    ip: String,
    username: String,
    prefix: bool,
    locked: bool,
}

impl Filters {
    fn from(fields: &Fields) -> Self {
        Filters {
            ip: fields.get("ip").to_string(),
            username: fields.get("username").to_string(),
            prefix: fields.get("match") == "prefix",
            locked: fields.get("locked") == "true",
        }
    }

    fn any(&self) -> bool {
        !self.ip.is_empty() || !self.username.is_empty() || self.locked
    }

    fn target(&self) -> Result<Target, String> {
        let non_empty = |value: &str| (!value.is_empty()).then(|| value.to_string());
        if self.prefix {
            return Ok(Target::Prefixes {
                ip: non_empty(&self.ip),
                username: non_empty(&self.username),
            });
        }
        // A form sends every field: an empty one is no filter.
        let ip = Some(self.ip.as_str()).filter(|ip| !ip.is_empty());
        let username = Some(self.username.as_str()).filter(|username| !username.is_empty());
        Target::exact(ip, username).map_err(|err| err.to_string())
    }

    /// The query string that shows these filters again.
    fn query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("ip", &self.ip)
            .append_pair("username", &self.username);
        if self.prefix {
            query.append_pair("match", "prefix");
        }
        if self.locked {
            query.append_pair("locked", "true");
        }
        query.finish()
    }

    /// "whose IP starts with 10.0. and that are locked", for the confirmation page.
    fn describe(&self) -> String {
        let how = if self.prefix { "starts with" } else { "is" };
        let mut parts = Vec::new();
        if !self.ip.is_empty() {
            parts.push(format!("whose IP {how} {}", self.ip));
        }
        if !self.username.is_empty() {
            parts.push(format!("whose username {how} {}", self.username));
        }
        if self.locked {
            parts.push("that are locked now".to_string());
        }
        if parts.is_empty() {
            "of every IP and username".to_string()
        } else {
            parts.join(" and ")
        }
    }
}

/// One table row, ready to print.
struct Row {
    tag: String,
    ip: String,
    username: String,
    user_agent: String,
    path: String,
    failures: u64,
    first_failure: String,
    last_failure: String,
    locked: bool,
    /// Not locked, but would be were the policy not observing.
    would_lock: bool,
    status: String,
}

impl Row {
    fn new(record: &AttemptRecord, policy: &Policy) -> Self {
        let field = |field| record.identity.value(field).unwrap_or("—").to_string();
        let sprayed = record.spraying.and_then(|spraying| spraying.lock_remaining);
        let would_spray = record
            .spraying
            .and_then(|spraying| spraying.would_lock_remaining);
        let would_lock = record.would_lock_remaining;
        let mut status = match (record.lock_remaining, sprayed, would_lock, would_spray) {
            (Some(remaining), ..) => format!("Locked out, {} left", human(remaining)),
            (None, Some(remaining), ..) => format!(
                "Locked out for password spraying, {} left",
                human(remaining)
            ),
            (None, None, Some(remaining), _) => format!(
                "Would be locked out (observe mode), {} left",
                human(remaining)
            ),
            (None, None, None, Some(remaining)) => format!(
                "Would be locked out for password spraying (observe mode), {} left",
                human(remaining)
            ),
            (None, None, None, None) => {
                let fields: Vec<Field> = record
                    .identity
                    .values()
                    .iter()
                    .map(|(field, _)| *field)
                    .collect();
                let limit = u64::from(policy.failure_limit_of(&fields).get());
                let left = limit.saturating_sub(record.failures);
                format!(
                    "{left} attempt{} remaining",
                    if left == 1 { "" } else { "s" }
                )
            }
        };
        if record.lockouts > 0 {
            status.push_str(&format!(
                "; {} lockout{} remembered",
                record.lockouts,
                if record.lockouts == 1 { "" } else { "s" }
            ));
        }
        if let Some(spraying) = record.spraying {
            status.push_str(&match (record.lock_remaining, spraying.lock_remaining) {
                (Some(_), Some(remaining)) => format!(
                    "; locked out for password spraying, {} left",
                    human(remaining)
                ),
                (None, Some(_)) => format!("; {} usernames", spraying.usernames),
                (_, None) => format!(
                    "; {} username{} within the spraying window",
                    spraying.usernames,
                    if spraying.usernames == 1 { "" } else { "s" }
                ),
            });
        }
        Row {
            tag: record.identity.tag().to_string(),
            ip: field(Field::Ip),
            username: field(Field::Username),
            user_agent: record
                .user_agent
                .clone()
                .or_else(|| record.identity.value(Field::UserAgent).map(String::from))
                .unwrap_or_default(),
            path: record.path.clone().unwrap_or_default(),
            failures: record.failures,
            first_failure: record.first_failure.map(timestamp).unwrap_or_default(),
            last_failure: record.last_failure.map(timestamp).unwrap_or_default(),
            locked: record.is_locked(),
            would_lock: would_lock.or(would_spray).is_some(),
            status,
        }
    }
}

/// `12 min`, `45 s`, `2 h 5 min`: the time left of a lock.
fn human(duration: Duration) -> String {
    let seconds = wire::seconds(duration);
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds.div_ceil(60)),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// `2026-11-29 03:02:21 UTC`
fn timestamp(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replace('T', " "))
}

/// What every admin page's frame (`base.html`) shows: links under `base`, the current section
/// highlighted, a flash message or an error above the content.
struct Layout {
    base: String,
    section: &'static str,
    flash: Option<String>,
    error: Option<String>,
}

impl Layout {
    fn new(service: &Service, section: &'static str) -> Self {
        Layout {
            base: base_path(&service.admin.path),
            section,
            flash: None,
            error: None,
        }
    }
}

#[derive(Template)]
#[template(path = "attempts.html")]
struct AttemptsPage {
    layout: Layout,
    csrf: String,
    filters: Filters,
    rows: Vec<Row>,
    cursor: Option<String>,
    first_page: String,
    next_page: Option<String>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    csrf: String,
    filters: Filters,
    count: u64,
    description: String,
    back: String,
}

struct LogRow {
    time: String,
    outcome: &'static str,
    ip: String,
    username: String,
    user_agent: String,
    path: String,
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    layout: Layout,
    ip: String,
    username: String,
    outcome: String,
    outcomes: Vec<&'static str>,
    entries: Vec<LogRow>,
    limit: usize,
}

struct EventRow {
    time: String,
    kind: &'static str,
    subject: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    layout: Layout,
    subject: String,
    rows: Vec<EventRow>,
    limit: usize,
}

fn html(page: impl Template) -> Result<Response, ApiError> {
    page.render()
        .map(|text| Html(text).into_response())
        .map_err(|err| {
            tracing::error!(%err, "admin page template failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        })
}

/// `GET <admin.path>`: the access attempts, a page at a time.
async fn attempts(
    State(service): State<Arc<Service>>,
    _: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let fields = Fields::parse(query.unwrap_or_default().as_bytes());
    let filters = Filters::from(&fields);
    let cursor = Some(fields.get("cursor").to_string()).filter(|cursor| !cursor.is_empty());
    let flash = match fields.get("removed") {
        "" => None,
        removed => Some(format!(
            "{} attempt records removed.",
            removed.parse::<u64>().unwrap_or(0)
        )),
    };
    let layout = Layout {
        flash,
        ..Layout::new(&service, "attempts")
    };
    let mut page = AttemptsPage {
        first_page: format!("{}?{}", layout.base, filters.query()),
        layout,
        csrf: service.csrf_token.clone(),
        filters: filters.clone(),
        rows: Vec::new(),
        cursor: cursor.clone(),
        next_page: None,
    };
    match filters.target() {
        Err(problem) => page.layout.error = Some(problem),
        Ok(target) => {
            let found = match service.admin_engine(None).await {
                Ok(engine) => {
                    service
                        .bulk_call(
                            "page",
                            engine.page(&target, filters.locked, cursor.as_deref(), PAGE_SIZE),
                        )
                        .await
                }
                Err(err) => Err(err),
            };
            match found {
                Ok(found) => {
                    let policy = service.engine.policy();
                    page.rows = found
                        .records
                        .iter()
                        .map(|record| Row::new(record, policy))
                        .collect();
                    page.next_page = found.next.map(|next| {
                        let mut query = form_urlencoded::Serializer::new(filters.query());
                        query.append_pair("cursor", &next);
                        format!("{}?{}", page.layout.base, query.finish())
                    });
                }
                Err(err) if err.status() == StatusCode::BAD_REQUEST => {
                    page.layout.error = Some(err.message().to_string())
                }
                Err(err) => return Err(err),
            }
        }
    }
    html(page)
}

/// The fields of a form POST that carried the page's CSRF token: the only way a handler gets
/// a form, so no state-changing handler can forget the check.
struct CheckedForm(Fields);

impl FromRequest<Arc<Service>> for CheckedForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, service: &Arc<Service>) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, service)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        let fields = Fields::parse(&body);
        if same(fields.get("csrf"), &service.csrf_token) {
            Ok(CheckedForm(fields))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "missing or invalid CSRF token: reload the page and try again",
            ))
        }
    }
}

fn back_to_attempts(service: &Service, removed: u64) -> Response {
    let base = base_path(&service.admin.path);
    Redirect::to(&format!("{base}?removed={removed}")).into_response()
}

/// `POST <admin.path>attempts/delete`: the ticked rows.
async fn delete_selected(
    State(service): State<Arc<Service>>,
    admin: Admin,
    CheckedForm(fields): CheckedForm,
) -> Result<Response, ApiError> {
    let identities = fields
        .all("tag")
        .map(|tag| {
            Identity::from_tag(tag).ok_or_else(|| {
                ApiError::bad_request(format!("tag: {tag:?} is not an attempt record"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let removed = if identities.is_empty() {
        0
    } else {
        let engine = service.admin_engine(None).await?;
        service
            .bulk_call(
                "remove",
                engine.remove(&identities, &admin.by("admin page")),
            )
            .await?
    };
    service.metrics.resets(removed);
    tracing::info!(removed, "attempt records removed on the admin page");
    Ok(back_to_attempts(&service, removed))
}

/// `POST <admin.path>attempts/delete-matching`: first a confirmation page saying how many,
/// then (with `confirm=yes`) the deletion.
async fn delete_matching(
    State(service): State<Arc<Service>>,
    admin: Admin,
    CheckedForm(fields): CheckedForm,
) -> Result<Response, ApiError> {
    let filters = Filters::from(&fields);
    let target = filters.target().map_err(ApiError::bad_request)?;
    let confirmed = fields.get("confirm") == "yes";
    let engine = service.admin_engine(None).await?;
    let count = if filters.locked {
        // Only the records locked now: listed, then deleted by identity.
        let locked = service
            .bulk_call("list", engine.list(&target, true))
            .await?;
        let identities: Vec<Identity> = locked.into_iter().map(|record| record.identity).collect();
        if confirmed && !identities.is_empty() {
            service
                .bulk_call(
                    "remove",
                    engine.remove(&identities, &admin.by("admin page")),
                )
                .await?
        } else {
            identities.len() as u64
        }
    } else {
        service
            .bulk_call(
                "reset",
                engine.reset(&target, !confirmed, &mut |_| {}, &admin.by("admin page")),
            )
            .await?
    };
    if confirmed {
        service.metrics.resets(count);
        tracing::info!(
            ?target,
            removed = count,
            "attempt records removed on the admin page"
        );
        return Ok(back_to_attempts(&service, count));
    }
    let layout = Layout::new(&service, "attempts");
    html(ConfirmPage {
        back: format!("{}?{}", layout.base, filters.query()),
        layout,
        csrf: service.csrf_token.clone(),
        description: filters.describe(),
        filters,
        count,
    })
}

/// `GET <admin.path>logs`: the access log, newest first.
async fn logs(
    State(service): State<Arc<Service>>,
    _: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let fields = Fields::parse(query.unwrap_or_default().as_bytes());
    let (ip, username, outcome) = (
        fields.get("ip"),
        fields.get("username"),
        fields.get("outcome"),
    );
    let mut page = LogsPage {
        layout: Layout::new(&service, "logs"),
        ip: ip.to_string(),
        username: username.to_string(),
        outcome: outcome.to_string(),
        outcomes: Outcome::ALL.iter().map(|outcome| outcome.name()).collect(),
        entries: Vec::new(),
        limit: LOG_LIMIT,
    };
    let filter = (|| {
        Ok::<_, String>(LogFilter {
            ip: (!ip.is_empty())
                .then(|| parse_ip(ip))
                .transpose()
                .map_err(|err| err.to_string())?,
            username: (!username.is_empty()).then(|| username.to_string()),
            outcomes: match outcome {
                "" => Vec::new(),
                name => vec![Outcome::parse(name).ok_or_else(|| {
                    format!("outcome: {name:?} is not failure, refused or success")
                })?],
            },
            ..LogFilter::default()
        })
    })();
    match filter {
        Err(problem) => page.layout.error = Some(problem),
        Ok(filter) => {
            let engine = service.admin_engine(None).await?;
            let entries = service
                .bulk_call("logs", engine.logs(&filter, LOG_LIMIT))
                .await?;
            page.entries = entries
                .into_iter()
                .map(|entry| LogRow {
                    time: timestamp(entry.time),
                    outcome: entry.outcome.name(),
                    ip: entry.ip.to_string(),
                    username: entry.username.unwrap_or_default(),
                    user_agent: entry.user_agent.unwrap_or_default(),
                    path: entry.path.unwrap_or_default(),
                })
                .collect();
        }
    }
    html(page)
}

/// `GET <admin.path>events?subject=`: the newest events, newest first; with `subject`, those
/// whose subject holds it (an identity's tag: its lockout history).
async fn events(
    State(service): State<Arc<Service>>,
    _: Admin,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let fields = Fields::parse(query.unwrap_or_default().as_bytes());
    let subject = fields.get("subject");
    let engine = service.admin_engine(None).await?;
    let events = service
        .bulk_call("events", engine.recent_events(EVENT_LIMIT))
        .await?;
    let rows = events
        .into_iter()
        .filter(|stored| stored.event.subject.contains(subject))
        .map(|stored| {
            let event = stored.event;
            let detail = event.detail(human);
            EventRow {
                time: timestamp(stored.time),
                kind: event.kind.name(),
                subject: event.subject,
                detail,
            }
        })
        .collect();
    html(EventsPage {
        layout: Layout::new(&service, "events"),
        subject: subject.to_string(),
        rows,
        limit: EVENT_LIMIT,
    })
}
