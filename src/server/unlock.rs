//! Self-service unlock (see `crate::unlock`): `POST /v1/unlock-tokens` (admin) makes a token
//! for a username, `POST /v1/unlock` (login API) redeems one, once.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Admin, ApiClient};
use super::error::ApiError;
use super::input::ApiJson;
use super::{requested_keys, Service};
use crate::attempt::parse_named_username;
use crate::devices::Devices;
use crate::unlock;
use crate::wire;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockTokenRequest {
    username: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /v1/unlock-tokens` `{"username","scope"?}`: `{"token","expires_in_secs"}`, a token
/// that unlocks the username once, within `devices.unlock_token_ttl`.
pub async fn unlock_token(
    State(service): State<Arc<Service>>,
    _: Admin,
    ApiJson(request): ApiJson<UnlockTokenRequest>,
) -> Result<Json<Value>, ApiError> {
    let devices = signing(&service)?;
    let username = parse_named_username(&request.username).map_err(ApiError::bad_request)?;
    let scope = request.scope.as_deref();
    requested_keys(service.engine.store().keys(), scope)?;
    let ttl = devices.unlock_token_ttl;
    let token = unlock::issue(&devices.secret, &username, scope, ttl, SystemTime::now()).map_err(
        |err| {
            tracing::error!(%err, "no unlock token issued");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "no unlock token issued: the system gave no random bytes",
            )
        },
    )?;
    Ok(Json(json!({
        "token": token,
        "expires_in_secs": wire::seconds(ttl),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    token: String,
}

/// `POST /v1/unlock` `{"token"}`: `{"username","removed"}`, the token's username unlocked
/// (its records and locks, not its IPs'); a token forged, expired or used before is a 400 and
/// removes nothing. A token bound to scopes redeems its scopes' tokens only.
pub async fn unlock(
    State(service): State<Arc<Service>>,
    client: ApiClient,
    ApiJson(request): ApiJson<UnlockRequest>,
) -> Result<Json<Value>, ApiError> {
    let devices = signing(&service)?;
    let unlock = unlock::verify(&devices.secret, &request.token, SystemTime::now())
        .map_err(ApiError::bad_request)?;
    client.may_use(unlock.scope.as_deref())?;
    let engine = service.admin_engine(unlock.scope.as_deref()).await?;
    let removed = service
        .bulk_call("unlock", engine.unlock(&unlock))
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "token: already used (an unlock token works once: ask for a new one)",
            )
        })?;
    tracing::info!(
        username = unlock.username,
        scope = unlock.scope.as_deref().unwrap_or("-"),
        removed,
        "unlocked with an unlock token"
    );
    Ok(Json(
        json!({ "username": unlock.username, "removed": removed }),
    ))
}

/// The secret unlock tokens are signed with: `devices.secret`; a 400 saying so when unset.
fn signing(service: &Service) -> Result<&Devices, ApiError> {
    service.devices.as_ref().ok_or_else(|| {
        ApiError::bad_request(
            "unlock tokens are off: they are signed with devices.secret \
             (LOCKOUT_DEVICES_SECRET), which is not set",
        )
    })
}
