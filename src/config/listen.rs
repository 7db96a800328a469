//! Where `serve` listens: a TCP address or a Unix socket.

use std::net::SocketAddr;

use crate::error::{Error, Result};

/// Where `serve` listens: a TCP address, or a Unix socket (`unix:/run/lockout.sock`) for a
/// login page on the same host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

impl Listen {
    /// `address:port`, or `unix:` and an absolute path.
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Error::Config(format!(
                    "listen: {text:?}: a Unix socket's path must be absolute (unix:/run/lockout.sock)"
                )));
            }
            return Ok(Listen::Unix(path));
        }
        text.parse().map(Listen::Tcp).map_err(|_| {
            Error::Config(format!(
                "listen: {text:?} is not an address:port (or unix:/path/to.sock)"
            ))
        })
    }

    /// Whether only this host can reach it: a loopback address, or a Unix socket.
    pub fn is_local(&self) -> bool {
        match self {
            Listen::Tcp(address) => address.ip().is_loopback(),
            Listen::Unix(_) => true,
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(address) => write!(f, "{address}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}
