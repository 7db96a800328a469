//! `api_tokens`: login API tokens bound to scopes, as written, and their validation. A bound
//! token opens the login endpoints for its scopes only, so that one site's token cannot read,
//! reset or unlock another site's logins; `api_token` still opens every scope.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::Keyspace;
use crate::secret::Secret;

/// An `api_tokens` entry as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiToken {
    token: Secret,
    scopes: Vec<String>,
}

/// A login API token and the scopes its holder may name.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub token: Secret,
    pub scopes: Arc<[String]>,
}

/// The entries, each with its own token (none empty, repeated, or `api_token`'s or
/// `admin.token`'s) and valid scope names that are not lockout's own (`_...`).
pub(super) fn validate(
    raw: Vec<RawApiToken>,
    api_token: &Secret,
    admin_token: &Secret,
) -> Result<Vec<ApiToken>> {
    let mut tokens: Vec<ApiToken> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.into_iter().enumerate() {
        let key = format!("api_tokens[{index}]");
        let invalid = |what: String| Error::Config(format!("{key}.{what}"));
        let token = entry.token;
        if token.is_empty() {
            return Err(invalid("token: empty (e.g. `openssl rand -hex 32`)".into()));
        }
        if token == *api_token {
            return Err(invalid(
                "token: the same as api_token, which opens every scope (give each its own token)"
                    .into(),
            ));
        }
        if token == *admin_token {
            return Err(invalid(
                "token: the same as admin.token (give each its own token)".into(),
            ));
        }
        if let Some(other) = tokens.iter().position(|t| t.token == token) {
            return Err(invalid(format!(
                "token: api_tokens[{other}]'s token too (give each its own token)"
            )));
        }
        if entry.scopes.is_empty() {
            return Err(invalid(
                "scopes: empty (a token for every scope is api_token)".into(),
            ));
        }
        for (number, scope) in entry.scopes.iter().enumerate() {
            if !Keyspace::is_scope_name(scope) || scope.starts_with('_') {
                return Err(invalid(format!(
                    "scopes[{number}]: {scope:?} must be 1 to 64 letters, digits, _ . or -, not \
                     starting with _ (those are lockout's own)"
                )));
            }
        }
        tokens.push(ApiToken {
            token,
            scopes: entry.scopes.into(),
        });
    }
    Ok(tokens)
}
