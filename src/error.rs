//! The one error type of the library. A locked-out attempt is a verdict, not an error: errors
//! are kept for bad input, bad configuration and trouble with the store.

use std::fmt;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller-supplied value is unusable; the message names the field and the value.
    #[error("{0}")]
    InvalidInput(String),
    /// The configuration is unusable; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The service could not listen or serve.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `listen: cannot bind 127.0.0.1:8080`.
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Redis could not be reached or refused a command.
    #[error("Redis at {target}: {source}{}", hint(source))]
    Store {
        /// The Redis URL (credentials hidden).
        target: RedisTarget,
        #[source]
        source: redis::RedisError,
    },
    /// A write that may have run in Redis, its reply lost (see `Error::of_write`).
    #[error("{0}")]
    ReplyLost(Box<Error>),
    /// The in-process store's reset channel failed its listener (it fell behind).
    #[error("{0}")]
    Channel(String),
    /// The service named by `--server` could not be reached, or refused the call.
    #[error("lockout service at {server}: {detail}")]
    Service {
        /// Its URL (credentials hidden).
        server: String,
        detail: String,
    },
    /// Redis answered something the engine did not expect (a foreign key under the prefix, a
    /// script that was replaced): the message says what.
    #[error("Redis at {target} answered unexpectedly: {detail}")]
    UnexpectedReply {
        /// The Redis URL (credentials hidden).
        target: RedisTarget,
        /// What was expected and what came.
        detail: String,
    },
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// True when the store could not be reached, did not answer in time, or could not run a
    /// command now (a replica where a primary was, a failover or a resharding under way): the
    /// case in which a service answers with its configured fail mode instead of an error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::ReplyLost(write) => write.is_unavailable(),
            Error::Store { source, .. } => {
                source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_unrecoverable_error()
                    || matches!(
                        source.kind(),
                        redis::ErrorKind::Server(
                            redis::ServerErrorKind::ReadOnly
                                | redis::ServerErrorKind::MasterDown
                                | redis::ServerErrorKind::ClusterDown
                                | redis::ServerErrorKind::TryAgain
                                | redis::ServerErrorKind::BusyLoading
                        )
                    )
            }
            _ => false,
        }
    }

    /// The error of a write, marked when the write may have reached Redis and run there, its
    /// reply lost: a timeout or a connection dropped while waiting (not a refused connection,
    /// nor an answer). See `reply_lost`.
    pub(crate) fn of_write(self) -> Self {
        match &self {
            Error::Store { source, .. }
                if source.is_timeout()
                    || source.is_connection_dropped()
                    || (source.is_io_error() && !source.is_connection_refusal()) =>
            {
                Error::ReplyLost(Box::new(self))
            }
            _ => self,
        }
    }

    /// True when a write may have run in Redis, its reply lost (see `of_write`): running it
    /// again elsewhere could count it twice.
    pub fn reply_lost(&self) -> bool {
        matches!(self, Error::ReplyLost(_))
    }

    /// True when Redis refused a command to lockout's user (its ACL).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::Store { source, .. }
            if source.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm))
    }

    /// True when the caller gave a value the library refuses (a usage error, not a failure).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::InvalidInput(_))
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Redis URLs fit for messages and logs: any password in them is replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget(String);

impl RedisTarget {
    /// Hides the credentials of `url`: `redis://user:secret@host` becomes
    /// `redis://user:***@host`, and `redis+unix:///run/redis.sock?pass=secret` becomes
    /// `...?pass=***`.
    pub fn new(url: &str) -> Self {
        RedisTarget(hide_password(url))
    }

    /// The primary that Sentinels name `master`.
    pub fn sentinel<'a>(master: &str, sentinels: impl IntoIterator<Item = &'a String>) -> Self {
        let RedisTarget(sentinels) = Self::of_all(sentinels);
        RedisTarget(format!(
            "the primary {master:?} of the Sentinels {sentinels}"
        ))
    }

    /// Several URLs (a cluster's seeds), joined by commas.
    pub fn of_all<'a>(urls: impl IntoIterator<Item = &'a String>) -> Self {
        let hidden: Vec<String> = urls.into_iter().map(|url| hide_password(url)).collect();
        RedisTarget(hidden.join(","))
    }
}

/// What to do about a TLS refusal, whose own words name only the rule that failed.
fn hint(source: &redis::RedisError) -> &'static str {
    let text = source.to_string();
    if text.contains("invalid peer certificate: UnknownIssuer") {
        " (Redis' certificate is not signed by a CA this process trusts: set redis_tls_ca to \
         the CA's PEM file)"
    } else if text.contains("CertificateRequired") {
        " (Redis requires a client certificate: set redis_tls_cert and redis_tls_key)"
    } else {
        ""
    }
}

fn hide_password(url: &str) -> String {
    let (address, query) = match url.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (url, None),
    };
    let mut hidden = match address.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or("", |(user, _)| user);
                format!("{scheme}://{user}:***@{host}")
            }
            None => address.to_string(),
        },
        None => address.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((name, _))
                    if name.eq_ignore_ascii_case("pass")
                        || name.eq_ignore_ascii_case("password") =>
                {
                    format!("{name}=***")
                }
                _ => parameter.to_string(),
            })
            .collect();
        hidden = format!("{hidden}?{}", parameters.join("&"));
    }
    hidden
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::RedisTarget;

    #[test]
    fn hides_passwords_in_urls() {
        assert_eq!(
            RedisTarget::new("redis://:hunter2@10.0.0.5:6379/0").to_string(),
            "redis://:***@10.0.0.5:6379/0"
        );
        assert_eq!(
            RedisTarget::new("redis://app:p@ss@host").to_string(),
            "redis://app:***@host"
        );
        assert_eq!(
            RedisTarget::new("redis://127.0.0.1:6379").to_string(),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            RedisTarget::new("redis+unix:///run/redis.sock?db=1&pass=hunter2").to_string(),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            RedisTarget::new("rediss://u:p@h:6380/0?password=x&protocol=resp3").to_string(),
            "rediss://u:***@h:6380/0?password=***&protocol=resp3"
        );
    }
}
