//! Request bodies and query strings, parsed strictly (unknown fields refused) with errors that
//! name the field: `username: invalid type: integer `5`, expected a string`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::MAX_BODY_BYTES;

/// A JSON body, whatever its content type says (login pages post from many clients).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body: larger than {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    ApiError::new(
                        rejection.status(),
                        format!("request body: {}", rejection.body_text()),
                    )
                }
            })?;
        // The path of a bad field is tracked only to explain an error: a body that parses
        // does so without it.
        if let Ok(value) = serde_json::from_slice(&body) {
            return Ok(ApiJson(value));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        let value = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ApiError::bad_request(describe(err.path().to_string(), err.inner())))?;
        deserializer.end().map_err(ApiError::bad_request)?;
        Ok(ApiJson(value))
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|err| ApiError::bad_request(describe(err.path().to_string(), err.inner())))
    }
}

/// `field: problem`, or just the problem when it is about the whole (a missing field, bad
/// syntax), whose message names the field itself.
fn describe(path: String, error: &impl std::fmt::Display) -> String {
    if path.is_empty() || path == "." || path == "?" {
        error.to_string()
    } else {
        format!("{path}: {error}")
    }
}
