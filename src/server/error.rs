//! Every failure of a request as a status and a JSON body `{"error": "..."}` naming what is
//! wrong. Internals (Redis errors, panics) never reach the body: they go to the log.

use std::any::Any;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    /// A store call that may have run in Redis, its reply lost (see `Error::reply_lost`).
    reply_lost: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            headers: Vec::new(),
            reply_lost: false,
        }
    }

    pub fn bad_request(message: impl ToString) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message.to_string())
    }

    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store (Redis) is unavailable",
        )
    }

    /// The same error, marked as a store call that may have run in Redis.
    pub fn with_reply_lost(mut self) -> Self {
        self.reply_lost = true;
        self
    }

    pub fn reply_lost(&self) -> bool {
        self.reply_lost
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error, its message followed by `detail`.
    pub fn with_detail(mut self, detail: impl std::fmt::Display) -> Self {
        self.message = format!("{}: {detail}", self.message);
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

/// A handler panicked: a bug, never a consequence of bad input. Logged, answered 500.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(detail, "request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}
