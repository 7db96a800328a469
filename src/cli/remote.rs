//! `--server URL`: the operator commands through a running service's admin API, for state the
//! operator cannot reach otherwise (a Redis behind the service, an in-process store), with the
//! admin token (or username and password) of the configuration. The answers are the API's JSON
//! shapes, read back into records (`wire::parse_*`), so the commands print what they print
//! against Redis.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::source::Records;
use crate::config::AdminConfig;
use crate::error::{Error, RedisTarget, Result};
use crate::event::{EventCursor, StoredEvent};
use crate::record::{AttemptRecord, LogEntry, LogFilter};
use crate::secret::Secret;
use crate::store::Progress;
use crate::target::Target;
use crate::wire;

/// How long a call may take beyond the service's own deadline for admin work.
const MARGIN: Duration = Duration::from_secs(30);

pub(super) struct Remote {
    client: reqwest::Client,
    /// Without a trailing slash.
    base: String,
    /// `base`, credentials hidden, for messages.
    shown: String,
    auth: Auth,
    scope: Option<String>,
}

enum Auth {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

impl Remote {
    /// A client of the service at `server`, authenticating as `admin` says, for the records of
    /// `scope`; calls may last `bulk_timeout` (the service's deadline for admin work) and a
    /// margin.
    pub(super) fn new(
        server: &str,
        admin: &AdminConfig,
        scope: Option<String>,
        bulk_timeout: Duration,
    ) -> Result<Self> {
        // Plain HTTP only: the service itself serves no TLS, and the CLI is meant to run beside
        // it (`docker compose exec lockout lockout --server http://127.0.0.1:8080 ...`).
        if !server.starts_with("http://") {
            return Err(Error::InvalidInput(format!(
                "--server: {:?} is not an http:// URL (the service speaks plain HTTP: run the \
                 CLI beside it, or through a port forward)",
                RedisTarget::new(server).to_string()
            )));
        }
        let auth = if !admin.token.is_empty() {
            Auth::Bearer(admin.token.clone())
        } else if !admin.password.is_empty() {
            Auth::Basic {
                username: admin.username.clone(),
                password: admin.password.clone(),
            }
        } else {
            return Err(Error::InvalidInput(
                "--server: the admin API needs admin.token, or admin.username and \
                 admin.password (LOCKOUT_ADMIN_TOKEN, LOCKOUT_ADMIN_PASSWORD)"
                    .into(),
            ));
        };
        let client = crate::tls::http_client_builder()
            .timeout(bulk_timeout.saturating_add(MARGIN))
            .build()
            .map_err(|err| Error::InvalidInput(format!("--server: {err}")))?;
        Ok(Remote {
            client,
            base: server.trim_end_matches('/').to_string(),
            shown: RedisTarget::new(server).to_string(),
            auth,
            scope,
        })
    }

    /// `method path?query` (with the scope), its JSON answer.
    async fn call(&self, method: Method, path: &str, query: &[(&str, String)]) -> Result<Value> {
        let mut parameters = form_urlencoded::Serializer::new(String::new());
        for (name, value) in query {
            parameters.append_pair(name, value);
        }
        if let Some(scope) = &self.scope {
            parameters.append_pair("scope", scope);
        }
        let url = format!("{}{path}?{}", self.base, parameters.finish());
        let request = self.client.request(method, url);
        let request = match &self.auth {
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
        };
        let unreachable = |err: reqwest::Error| self.error(err.without_url().to_string());
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(unreachable)?;
        let said = answer["error"].as_str().unwrap_or("").to_string();
        match status {
            status if status.is_success() => Ok(answer),
            StatusCode::BAD_REQUEST => Err(Error::InvalidInput(said)),
            status => Err(self.error(format!("{status}: {said}"))),
        }
    }

    fn error(&self, detail: String) -> Error {
        Error::Service {
            server: self.shown.clone(),
            detail,
        }
    }

    fn unexpected(&self, detail: String) -> Error {
        self.error(format!("unexpected answer: {detail}"))
    }

    /// The `ip=`/`username=` queries whose records together are `target`'s: the API names one
    /// IP and one username per call, and a record holds one of each, so their counts add up.
    fn queries(&self, target: &Target) -> Result<Vec<Vec<(&'static str, String)>>> {
        let ip = |ip: &std::net::IpAddr| ("ip", ip.to_string());
        let username = |name: &String| ("username", name.clone());
        Ok(match target {
            Target::All => vec![vec![]],
            Target::Ips(ips) => ips.iter().map(|i| vec![ip(i)]).collect(),
            Target::Usernames(names) => names.iter().map(|u| vec![username(u)]).collect(),
            Target::Pairs { ips, usernames } => ips
                .iter()
                .flat_map(|i| usernames.iter().map(move |u| vec![ip(i), username(u)]))
                .collect(),
            other => {
                return Err(Error::InvalidInput(format!(
                    "--server: {other:?} has no admin API query"
                )))
            }
        })
    }
}

impl Records for Remote {
    async fn list(&self, target: &Target, locked_only: bool) -> Result<Vec<AttemptRecord>> {
        let mut records = Vec::new();
        for mut query in self.queries(target)? {
            if locked_only {
                query.push(("locked", "true".into()));
            }
            let answer = self.call(Method::GET, "/v1/attempts", &query).await?;
            records.extend(wire::parse_attempts(answer).map_err(|err| self.unexpected(err))?);
        }
        records.sort_by_key(|record| std::cmp::Reverse(record.last_failure));
        Ok(records)
    }

    async fn reset(&self, target: &Target, dry_run: bool, _: Progress<'_>) -> Result<u64> {
        let mut removed = 0;
        for mut query in self.queries(target)? {
            if query.is_empty() {
                query.push(("all", "true".into()));
            }
            if dry_run {
                query.push(("dry_run", "true".into()));
            }
            let answer = self.call(Method::DELETE, "/v1/attempts", &query).await?;
            removed += wire::parse_removed(&answer).map_err(|err| self.unexpected(err))?;
        }
        Ok(removed)
    }

    async fn logs(&self, filter: &LogFilter, limit: usize) -> Result<Vec<LogEntry>> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(filter.ip.map(|ip| ("ip", ip.to_string())));
        query.extend(filter.username.clone().map(|name| ("username", name)));
        let answer = self.call(Method::GET, "/v1/logs", &query).await?;
        wire::parse_logs(answer).map_err(|err| self.unexpected(err))
    }

    async fn reset_logs(&self, age: Duration) -> Result<u64> {
        let query = [("older_than", format!("{}ms", age.as_millis()))];
        let answer = self.call(Method::DELETE, "/v1/logs", &query).await?;
        wire::parse_removed(&answer).map_err(|err| self.unexpected(err))
    }

    async fn events(&self, since: &EventCursor, limit: usize) -> Result<Vec<StoredEvent>> {
        let mut query = vec![("limit", limit.to_string())];
        query.push(("since", since.to_string()));
        let answer = self.call(Method::GET, "/v1/events", &query).await?;
        wire::parse_events(answer).map_err(|err| self.unexpected(err))
    }

    async fn revoke_devices(&self, usernames: &[String]) -> Result<()> {
        for username in usernames {
            let query = [("username", username.clone())];
            self.call(Method::DELETE, "/v1/devices", &query).await?;
        }
        Ok(())
    }
}
