//! Request bodies and query strings, parsed strictly (unknown fields refused) with errors that
//! name the field: `username: invalid type: integer `5`, expected a string`.

use axum::body::{Body, Bytes};
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::MAX_BODY_BYTES;

/// Reads each request's whole body (at most `MAX_BODY_BYTES`, within `body_read_timeout`)
/// before anything answers it. A request refused before its body was read (a wrong token, a
/// locked-out admin) would leave the body's late bytes unread, and hyper then closes the
/// connection without saying so: a client that reuses it, as a pool of kept-alive connections
/// does, fails its next request. A body over the limit is answered 413, one that has not all
/// arrived in time 408 (a client that stalls cannot hold a connection, and its slot under
/// `max_connections`, forever), and the connection closed.
pub async fn read_body_first(
    State(body_read_timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        body_read_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    );
    let refusal = match read.await {
        Ok(Ok(bytes)) => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => too_large(),
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body: not all received within body_read_timeout ({})",
                humantime::format_duration(body_read_timeout)
            ),
        ),
    };
    let mut response = refusal.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body: larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// A JSON body, sent as `Content-Type: application/json`. A web page can make a browser post
/// `text/plain` or a form anywhere without asking, but not JSON: requiring it keeps strangers'
/// pages from driving the login endpoints through their visitors' browsers.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request body: send it as Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
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
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            if err.inner().is_data() {
                ApiError::bad_request(describe(err.path().to_string(), err.inner()))
            } else {
                not_json(err.inner())
            }
        })?;
        deserializer.end().map_err(|err| not_json(&err))?;
        Ok(ApiJson(value))
    }
}

fn not_json(error: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("request body: not valid JSON ({error})"))
}

/// `application/json`, with any parameters (`; charset=utf-8`), in any case.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
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
