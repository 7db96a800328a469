//! Who may call what. Login endpoints: anyone, or when tokens are set, holders of `api_token`
//! (every scope) or of an `api_tokens` token (its scopes only: `ApiClient::may_use`).
//! Admin endpoints: HTTP Basic with the admin credentials (when `admin.password` is set) or
//! the admin bearer token (when `admin.token` is: either enables the admin API), compared in
//! constant time; a wrong guess is a failed admin login, counted per client
//! address in a scope of its own (never shared with the logins the service protects), so
//! whoever guesses the admin password or token is locked out. Behind `trusted_proxies` the
//! client is the address their `X-Forwarded-For` names (`forwarded`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use headers::authorization::{Basic, Bearer};
use headers::{Authorization, HeaderMapExt};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::forwarded::{client_ip, UnknownClient};
use super::Service;
use crate::attempt::Attempt;
use crate::config::AdminConfig;
use crate::engine::Verdict;
use crate::policy::IpList;
use crate::wire;

/// A caller allowed to use the login endpoints, and the scopes it may name: every scope
/// (`None`) without tokens or with `api_token`, the entry's with an `api_tokens` token.
pub struct ApiClient {
    scopes: Option<Arc<[String]>>,
}

impl ApiClient {
    /// Whether this caller may log in on `scope` (`None`: the unscoped records); a bound
    /// token names only its own scopes. The answer names the scope, never the token.
    pub fn may_use(&self, scope: Option<&str>) -> Result<(), ApiError> {
        let Some(scopes) = &self.scopes else {
            return Ok(());
        };
        let message = match scope {
            Some(scope) if scopes.iter().any(|own| own == scope) => return Ok(()),
            Some(scope) => format!(
                "scope: this API token is not for scope {scope:?}; it is for {}",
                scopes.join(", ")
            ),
            None => format!(
                "scope: missing; this API token is for {} only: name one in \"scope\"",
                scopes.join(", ")
            ),
        };
        tracing::warn!(scope = ?scope, "login call refused: the API token is not for this scope");
        Err(ApiError::new(StatusCode::FORBIDDEN, message))
    }
}

impl FromRequestParts<Arc<Service>> for ApiClient {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, ApiError> {
        if service.api_token.is_none() && service.api_tokens.is_empty() {
            return Ok(ApiClient { scopes: None });
        }
        let bearer = parts.headers.typed_get::<Authorization<Bearer>>();
        let mut client = None;
        if let Some(given) = bearer.as_ref().map(|b| b.token()) {
            // Every token compared, always: the time taken says nothing about which matched.
            if let Some(token) = &service.api_token {
                if same(given, token.expose()) {
                    client = Some(ApiClient { scopes: None });
                }
            }
            for bound in &service.api_tokens {
                if same(given, bound.token.expose()) {
                    client = Some(ApiClient {
                        scopes: Some(bound.scopes.clone()),
                    });
                }
            }
        }
        client.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs Authorization: Bearer <api_token, or an api_tokens token>",
            )
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
        })
    }
}

/// A caller that proved to be the admin, and how (for the events of its resets).
pub struct Admin {
    credential: Credential,
}

enum Credential {
    Token,
    Password(String),
}

impl Admin {
    /// Who reset, as events say it: `api (admin token)`, `admin page (admin)`.
    pub fn by(&self, place: &str) -> String {
        match &self.credential {
            Credential::Token => format!("{place} (admin token)"),
            Credential::Password(username) => format!("{place} ({username})"),
        }
    }
}

impl FromRequestParts<Arc<Service>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, ApiError> {
        let admin = &service.admin;
        if admin.password.is_empty() && admin.token.is_empty() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: set admin.token (LOCKOUT_ADMIN_TOKEN) for bearer \
                 tokens, or admin.password (LOCKOUT_ADMIN_PASSWORD) for HTTP Basic and the \
                 admin page",
            ));
        }
        let basic = parts.headers.typed_get::<Authorization<Basic>>();
        let bearer = parts.headers.typed_get::<Authorization<Bearer>>();
        if basic.is_none() && bearer.is_none() {
            return Err(challenge(admin, "admin credentials required"));
        }
        // No password to guess: refused without counting, saying what works.
        if basic.is_some() && admin.password.is_empty() {
            return Err(challenge(
                admin,
                "HTTP Basic is disabled: admin.password (LOCKOUT_ADMIN_PASSWORD) is not set; \
                 send Authorization: Bearer <admin.token>",
            ));
        }
        // A valid token is never refused for a lockout of the caller's address (a Django site
        // calls from the address its own users' failures may have locked); wrong ones count.
        if let (None, Some(bearer)) = (&basic, &bearer) {
            if !admin.token.is_empty() && same(bearer.token(), admin.token.expose()) {
                return Ok(Admin {
                    credential: Credential::Token,
                });
            }
        }
        let attempt = admin_attempt(
            parts,
            &service.trusted_proxies,
            basic.as_ref().map(|b| b.username()),
        )?;
        let verdict = service
            .store_call("check", service.admin_logins.check(&attempt))
            .await?;
        if let Verdict::Locked(lockout) = verdict {
            let retry_after = lockout.retry_after.map_or(0, wire::seconds);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("locked out after too many failed logins; retry after {retry_after} s"),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)));
        }
        let valid = match (&basic, &bearer) {
            (Some(basic), _) => {
                // Both compared, always: the time taken says nothing about which was wrong.
                let user = same(basic.username(), &admin.username);
                let password = same(basic.password(), admin.password.expose());
                user & password
            }
            (None, _) => false,
        };
        if valid {
            return Ok(Admin {
                credential: Credential::Password(admin.username.clone()),
            });
        }
        let report = service
            .store_call("failure", service.admin_logins.fail(&attempt))
            .await?;
        service.metrics.failure();
        service.metrics.lockouts_started(report.started.len());
        tracing::warn!(ip = %attempt.ip, username = attempt.username.as_deref().unwrap_or("-"), "failed admin login");
        Err(challenge(admin, "wrong admin credentials"))
    }
}

/// A 401 whose challenge names the scheme the configuration accepts: Basic when there is an
/// admin password, else Bearer.
fn challenge(admin: &AdminConfig, message: &str) -> ApiError {
    let scheme = if admin.password.is_empty() {
        "Bearer realm=\"lockout admin\""
    } else {
        "Basic realm=\"lockout admin\", charset=\"UTF-8\""
    };
    ApiError::new(StatusCode::UNAUTHORIZED, message)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme))
}

/// The admin login as an attempt: the client's address (see `client_ip`; a request whose
/// client cannot be told is refused before any credential is checked), the Basic username,
/// the user agent and the path.
fn admin_attempt(
    parts: &Parts,
    trusted_proxies: &IpList,
    username: Option<&str>,
) -> Result<Attempt, ApiError> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |info| info.0.ip());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    let ip = client_ip(peer, &parts.headers, trusted_proxies).map_err(|unknown| {
        tracing::warn!(proxy = %unknown.proxy, "admin login refused: {}", UnknownClient::MESSAGE);
        ApiError::bad_request(UnknownClient::MESSAGE)
    })?;
    Attempt::new(ip, username, user_agent, Some(parts.uri.path())).map_err(ApiError::bad_request)
}

/// Equal strings, compared in constant time (for a given length).
pub(super) fn same(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}
