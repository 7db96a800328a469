//! Where Redis is and how to reach it: one value holding every setting a connection needs (URLs
//! with their credentials, the Sentinel master's name, TLS files), so that every connection the
//! process opens (login commands, bulk admin work, the reset channel) is made the same way.

use std::fmt;

use redis::aio::PubSub;
use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, ClientTlsConfig, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisError, RedisResult, TlsCertificates, TlsMode,
};

use crate::error::RedisTarget;

/// Where Redis is and how to reach it. Its URLs may hold passwords and its TLS settings a
/// private key: `Debug` shows neither (see `target`).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    topology: Topology,
    tls: RedisTls,
}

/// Which Redis: one server, a cluster, or the primary that Sentinels name.
#[derive(Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (or a proxy, or a DNS name that moves on failover), e.g. `redis://127.0.0.1:6379`.
    Server(String),
    /// Seed nodes of a Redis Cluster.
    Cluster(Vec<String>),
    /// The primary that the Sentinels at `sentinels` name `master`. `node_url` gives the scheme
    /// (`rediss` for TLS), user, password and database for the primary; its host is not used.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        node_url: String,
    },
}

impl RedisEndpoint {
    /// One server.
    pub fn server(url: impl Into<String>) -> Self {
        Self::of(Topology::Server(url.into()))
    }

    /// A cluster, reached through any of its `seeds`.
    pub fn cluster(seeds: Vec<String>) -> Self {
        Self::of(Topology::Cluster(seeds))
    }

    pub fn of(topology: Topology) -> Self {
        RedisEndpoint {
            topology,
            tls: RedisTls::default(),
        }
    }

    /// The same Redis, reached with a custom CA or a client certificate.
    pub fn with_tls(self, tls: RedisTls) -> Self {
        RedisEndpoint { tls, ..self }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn tls(&self) -> &RedisTls {
        &self.tls
    }

    /// The URLs, passwords hidden, for messages and logs.
    pub fn target(&self) -> RedisTarget {
        match &self.topology {
            Topology::Server(url) => RedisTarget::new(url),
            Topology::Cluster(seeds) => RedisTarget::of_all(seeds),
            Topology::Sentinel {
                sentinels, master, ..
            } => RedisTarget::sentinel(master, sentinels),
        }
    }

    /// Whether any connection is made with TLS.
    pub fn uses_tls(&self) -> bool {
        let urls: Vec<&String> = match &self.topology {
            Topology::Server(url) => vec![url],
            Topology::Cluster(seeds) => seeds.iter().collect(),
            Topology::Sentinel {
                sentinels,
                node_url,
                ..
            } => sentinels.iter().chain([node_url]).collect(),
        };
        urls.into_iter().any(|url| url.starts_with("rediss://"))
    }

    /// A client for `url` with these TLS settings.
    pub(crate) fn client(&self, url: &str) -> RedisResult<Client> {
        crate::tls::install_crypto_provider();
        match self.tls.certificates() {
            Some(certificates) => Client::build_with_tls(url, certificates),
            None => Client::open(url),
        }
    }

    /// A cluster client for `seeds` with these TLS settings.
    pub(crate) fn cluster_builder(&self, seeds: &[String]) -> ClusterClientBuilder {
        crate::tls::install_crypto_provider();
        let builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str));
        match self.tls.certificates() {
            Some(certificates) => builder.certs(certificates),
            None => builder,
        }
    }

    /// A client that asks `sentinels` for `master`'s address and checks that it is a primary.
    pub(crate) fn sentinel_client(
        &self,
        sentinels: &[String],
        master: &str,
        node_url: &str,
    ) -> RedisResult<SentinelClient> {
        crate::tls::install_crypto_provider();
        let infos: Vec<ConnectionInfo> = sentinels
            .iter()
            .map(|url| url.as_str().into_connection_info())
            .collect::<RedisResult<_>>()?;
        let first = infos.first().ok_or_else(|| {
            RedisError::from((ErrorKind::InvalidClientConfig, "no Sentinel address given"))
        })?;
        let node = node_url.into_connection_info()?;
        let mut builder = SentinelClientBuilder::new(
            infos.iter().map(|info| info.addr().clone()),
            master,
            SentinelServerType::Master,
        )?
        .set_client_to_redis_db(node.redis_settings().db());
        if let Some(mode) = tls_mode(node.addr()) {
            builder = builder.set_client_to_redis_tls_mode(mode);
        }
        if let Some(mode) = tls_mode(first.addr()) {
            builder = builder.set_client_to_sentinel_tls_mode(mode);
        }
        let node = node.redis_settings();
        if let Some(username) = node.username() {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = node.password() {
            builder = builder.set_client_to_redis_password(password);
        }
        // One set of credentials for every Sentinel: the first URL's.
        let sentinel = first.redis_settings();
        if let Some(username) = sentinel.username() {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = sentinel.password() {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if let Some(certificates) = self.tls.certificates() {
            builder = builder
                .set_client_to_redis_certificates(certificates.clone())
                .set_client_to_sentinel_certificates(certificates);
        }
        builder.build()
    }

    /// A connection subscribed to nothing yet, on the server, on the first cluster seed that
    /// answers (a cluster delivers every PUBLISH to every node), or on the Sentinels' primary.
    pub(crate) async fn pubsub(&self) -> RedisResult<PubSub> {
        match &self.topology {
            Topology::Server(url) => self.client(url)?.get_async_pubsub().await,
            Topology::Cluster(seeds) => {
                let mut last_error = None;
                for seed in seeds {
                    match self.client(seed)?.get_async_pubsub().await {
                        Ok(pubsub) => return Ok(pubsub),
                        Err(err) => last_error = Some(err),
                    }
                }
                Err(last_error.unwrap_or_else(|| {
                    RedisError::from((ErrorKind::InvalidClientConfig, "no cluster seed given"))
                }))
            }
            Topology::Sentinel {
                sentinels,
                master,
                node_url,
            } => {
                self.sentinel_client(sentinels, master, node_url)?
                    .async_get_client()
                    .await?
                    .get_async_pubsub()
                    .await
            }
        }
    }
}

impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.topology {
            Topology::Server(_) => "Server",
            Topology::Cluster(_) => "Cluster",
            Topology::Sentinel { .. } => "Sentinel",
        };
        write!(f, "{kind}({}, {:?})", self.target(), self.tls)
    }
}

fn tls_mode(address: &ConnectionAddr) -> Option<TlsMode> {
    match address {
        ConnectionAddr::TcpTls { insecure: true, .. } => Some(TlsMode::Insecure),
        ConnectionAddr::TcpTls { .. } => Some(TlsMode::Secure),
        _ => None,
    }
}

/// The TLS settings beyond a `rediss://` URL: a CA to trust instead of the system's, and a
/// client certificate for mutual TLS. PEM, read and checked when the configuration loads.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// `ca` (one or more certificates) and a client `certificate` with its private `key`, all
    /// PEM; an error names what is wrong.
    pub fn from_pem(
        ca: Option<Vec<u8>>,
        client: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let certificates = |pem: &[u8]| -> Result<usize, String> {
            let parsed: Vec<_> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|err| format!("not PEM certificates ({err})"))?;
            Ok(parsed.len())
        };
        if let Some(pem) = &ca {
            match certificates(pem) {
                Ok(0) => return Err("redis_tls_ca: no PEM certificate in the file".into()),
                Ok(_) => {}
                Err(err) => return Err(format!("redis_tls_ca: {err}")),
            }
        }
        if let Some((certificate, key)) = &client {
            match certificates(certificate) {
                Ok(0) => return Err("redis_tls_cert: no PEM certificate in the file".into()),
                Ok(_) => {}
                Err(err) => return Err(format!("redis_tls_cert: {err}")),
            }
            // The key's bytes never reach the message: only whether it parsed.
            PrivateKeyDer::from_pem_slice(key).map_err(|_| {
                "redis_tls_key: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file".to_string()
            })?;
        }
        Ok(RedisTls { ca, client })
    }

    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client.is_some()
    }

    fn certificates(&self) -> Option<TlsCertificates> {
        self.is_set().then(|| TlsCertificates {
            client_tls: self
                .client
                .as_ref()
                .map(|(client_cert, client_key)| ClientTlsConfig {
                    client_cert: client_cert.clone(),
                    client_key: client_key.clone(),
                }),
            root_cert: self.ca.clone(),
        })
    }
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("custom_ca", &self.ca.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}
