//! A multiplexed connection to the primary of a server or of a Sentinel group that follows it
//! when it moves: after an error that says the connection no longer reaches a writable primary
//! (a broken or timed-out connection, `READONLY` from a demoted primary), the connection is
//! dropped and the next command looks the primary up again (the Sentinels, or the server's
//! name in DNS) and connects.
//!
//! One lookup at a time: commands that find no connection wait for the lookup under way
//! instead of starting their own. Commands never wait behind a lookup while a connection is
//! there. Nothing is sent twice (see `connection`): the command that met the error answers it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RedisResult, ServerErrorKind};

/// How the primary is found.
pub(crate) enum Locate {
    /// At a fixed URL (whose name DNS may point elsewhere after a failover).
    Address(Client),
    /// By asking Sentinels.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl Locate {
    /// A connection to the primary, and its address.
    async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<(MultiplexedConnection, Arc<str>)> {
        let client = match self {
            Locate::Address(client) => client.clone(),
            Locate::Sentinel(sentinels) => sentinels.lock().await.async_get_client().await?,
        };
        let address = client.get_connection_info().addr().to_string().into();
        let connection = client
            .get_multiplexed_async_connection_with_config(config)
            .await?;
        Ok((connection, address))
    }
}

pub(crate) struct Primary {
    locate: Locate,
    config: AsyncConnectionConfig,
    /// Bounds one lookup and connection (a Sentinel lookup is two hops).
    lookup_timeout: Duration,
    current: RwLock<Option<Current>>,
    looking_up: tokio::sync::Mutex<()>,
    connections_made: AtomicU64,
}

/// The connection in use, numbered so that an error on an older one does not drop a newer.
#[derive(Clone)]
pub(crate) struct Current {
    number: u64,
    pub(crate) connection: MultiplexedConnection,
    /// `host:port`; shared, so that taking the connection for a login allocates nothing.
    pub(crate) address: Arc<str>,
}

impl Primary {
    /// Connects on first use.
    pub(crate) fn new(
        locate: Locate,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Self {
        Primary {
            locate,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(command_timeout)),
            lookup_timeout: connect_timeout.saturating_mul(2),
            current: RwLock::new(None),
            looking_up: tokio::sync::Mutex::new(()),
            connections_made: AtomicU64::new(0),
        }
    }

    /// The connection in use, or a new one.
    pub(crate) async fn connection(&self) -> RedisResult<Current> {
        if let Some(current) = self.in_use() {
            return Ok(current);
        }
        let _one_lookup_at_a_time = self.looking_up.lock().await;
        if let Some(current) = self.in_use() {
            return Ok(current);
        }
        let (connection, address) =
            tokio::time::timeout(self.lookup_timeout, self.locate.connect(&self.config))
                .await
                .map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no primary found and connected in time",
                    ))
                })??;
        let current = Current {
            number: self.connections_made.fetch_add(1, Ordering::Relaxed),
            connection,
            address,
        };
        *self.current.write().expect("not poisoned") = Some(current.clone());
        Ok(current)
    }

    fn in_use(&self) -> Option<Current> {
        self.current.read().expect("not poisoned").clone()
    }

    /// Notes that `used` met `err`: drops it when the error says it no longer reaches a
    /// writable primary.
    pub(crate) fn after(&self, used: &Current, err: &RedisError) {
        let lost = err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
        if !lost {
            return;
        }
        let mut current = self.current.write().expect("not poisoned");
        if current.as_ref().is_some_and(|c| c.number == used.number) {
            *current = None;
        }
    }
}
