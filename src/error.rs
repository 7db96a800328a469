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
    #[error("Redis at {target}: {source}")]
    Store {
        /// The Redis URL (credentials hidden).
        target: RedisTarget,
        #[source]
        source: redis::RedisError,
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

    /// True when the store could not be reached or did not answer in time: the case in which a
    /// service answers with its configured fail mode instead of an error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Store { source, .. } => {
                source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_unrecoverable_error()
            }
            _ => false,
        }
    }

    /// True when the caller gave a value the library refuses (a usage error, not a failure).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::InvalidInput(_))
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Redis URL fit for messages and logs: any password in it is replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget(String);

impl RedisTarget {
    /// Hides the credentials of `url` (`redis://user:secret@host` becomes `redis://user:***@host`).
    pub fn new(url: &str) -> Self {
        let Some((scheme, rest)) = url.split_once("://") else {
            return RedisTarget(url.to_string());
        };
        let Some((userinfo, host)) = rest.rsplit_once('@') else {
            return RedisTarget(url.to_string());
        };
        let user = userinfo.split_once(':').map_or("", |(user, _)| user);
        RedisTarget(format!("{scheme}://{user}:***@{host}"))
    }
}

impl RedisTarget {
    /// The URL of a server, or the seed URLs of a cluster joined by commas.
    pub fn of(endpoint: &crate::store::redis::RedisEndpoint) -> Self {
        use crate::store::redis::RedisEndpoint;
        match endpoint {
            RedisEndpoint::Server(url) => RedisTarget::new(url),
            RedisEndpoint::Cluster(seeds) => RedisTarget(
                seeds
                    .iter()
                    .map(|url| RedisTarget::new(url).0)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        }
    }
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
    }
}
