//! `POST /v1/attempts/import`: attempt records counted elsewhere (Django Axes' database rows,
//! sent by `manage.py lockout_import_axes`) merged into the store, so that a site switching to
//! lockout keeps its lockouts in force, for the time they have left, and its counts. Each
//! record is merged atomically and taking the larger of what is there and what is imported
//! (see `Store::import_records`): an import run twice changes nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::RecordParameters;
use super::auth::Admin;
use super::error::ApiError;
use super::input::ApiJson;
use super::Service;
use crate::attempt::{parse_ip, truncate, MAX_METADATA_CHARS};
use crate::identity::Identity;
use crate::policy::Policy;
use crate::store::ImportedRecord;

/// The longest a record or a lock is kept: every key has a TTL.
const MAX_SECS: u64 = 365 * 24 * 3600;
/// The most failures a record may bring (the import script's bound: exact in a Lua number).
const MAX_FAILURES: u64 = 999_999_999_999_999;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    records: Vec<RecordJson>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// One record as sent: an identity (a listed record's `parameters`) and its counts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordJson {
    parameters: RecordParameters,
    failures: u64,
    first_failure: String,
    last_failure: String,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    path: Option<String>,
    expires_in_secs: u64,
    #[serde(default)]
    locked_for_secs: Option<u64>,
}

impl RecordJson {
    /// The record to import, its IP counted as `policy` counts it (IPv6 per network), so that
    /// it is the identity later logins form; an error names the field.
    fn parse(&self, policy: &Policy) -> Result<ImportedRecord, String> {
        let parameters = &self.parameters;
        if parameters.ip.is_none()
            && parameters.username.is_none()
            && parameters.user_agent.is_none()
        {
            return Err("parameters: name the identity by its ip, username or user_agent".into());
        }
        let ip = parameters
            .ip
            .as_deref()
            .map(|ip| parse_ip(ip).map(|ip| policy.counted_ip(ip).to_string()))
            .transpose()
            .map_err(|err| format!("parameters.{err}"))?;
        let identity = Identity::of_fields(
            ip.as_deref(),
            parameters.username.as_deref(),
            parameters.user_agent.as_deref(),
        )
        .and_then(|identity| identity.with_device(parameters.device.as_deref()))
        .map_err(|err| format!("parameters.{err}"))?;
        if !(1..=MAX_FAILURES).contains(&self.failures) {
            return Err(format!("failures: from 1 to {MAX_FAILURES}"));
        }
        let first_failure = time("first_failure", &self.first_failure)?;
        let last_failure = time("last_failure", &self.last_failure)?;
        if last_failure < first_failure {
            return Err("last_failure: before first_failure".into());
        }
        let metadata = |value: &Option<String>| {
            value
                .as_deref()
                .filter(|value| !value.is_empty())
                .map(|value| truncate(value, MAX_METADATA_CHARS))
        };
        Ok(ImportedRecord {
            identity,
            failures: self.failures,
            first_failure,
            last_failure,
            user_agent: metadata(&self.user_agent),
            path: metadata(&self.path),
            expires_in: secs("expires_in_secs", self.expires_in_secs)?,
            locked_for: self
                .locked_for_secs
                .map(|locked_for| secs("locked_for_secs", locked_for))
                .transpose()?,
        })
    }
}

fn time(field: &str, text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text).map_err(|err| {
        format!("{field}: {text:?} is not an RFC 3339 time in UTC, such as 2026-12-06T04:00:00Z ({err})")
    })
}

fn secs(field: &str, secs: u64) -> Result<Duration, String> {
    if (1..=MAX_SECS).contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        Err(format!("{field}: from 1 to {MAX_SECS} (365 days)"))
    }
}

/// `POST /v1/attempts/import` `{"records":[...],"scope":...,"dry_run":...}`: answers how many
/// records were imported and how many of them carry a lock; with `dry_run` the records are
/// checked and counted, and nothing is written.
pub async fn import_records(
    State(service): State<Arc<Service>>,
    admin: Admin,
    ApiJson(request): ApiJson<ImportRequest>,
) -> Result<Json<Value>, ApiError> {
    let policy = service.engine.policy();
    let records = request
        .records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            record
                .parse(policy)
                .map_err(|err| ApiError::bad_request(format!("records[{i}].{err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let locked = records
        .iter()
        .filter(|record| record.locked_for.is_some())
        .count();
    let engine = service.admin_engine(request.scope.as_deref()).await?;
    if request.dry_run {
        return Ok(Json(
            json!({ "imported": records.len(), "locked": locked, "dry_run": true }),
        ));
    }
    let states = service
        .bulk_call("import", engine.import(&records, &admin.by("import")))
        .await?;
    let started = states.iter().filter(|state| state.lock_started).count();
    tracing::info!(
        records = records.len(),
        locked,
        started,
        scope = request.scope.as_deref().unwrap_or("-"),
        "attempt records imported through the admin API"
    );
    Ok(Json(json!({ "imported": records.len(), "locked": locked })))
}
