//! Which Redis the configuration names (server, Sentinel group or cluster), and its TLS files.

use super::{RawConfig, IN_PROCESS_URL};
use crate::error::{Error, Result};
use crate::store::redis::{RedisEndpoint, RedisTls, Topology};

impl RawConfig {
    /// The Redis to use: a cluster, a Sentinel group's primary or one server, with the TLS
    /// files read and checked; `None` when none is set (or `redis_url = "memory://"`).
    pub(super) fn redis_endpoint(&self) -> Result<Option<RedisEndpoint>> {
        let seeds = self.redis_cluster.items(Some(','));
        let sentinels = self.redis_sentinel.items(Some(','));
        let master = self.redis_sentinel_master.clone();
        let topology = match (seeds.is_empty(), sentinels.is_empty()) {
            (false, false) => {
                return Err(Error::Config(
                    "redis_cluster and redis_sentinel: give one of them, not both".into(),
                ))
            }
            (false, true) => Topology::Cluster(seeds),
            (true, false) if master.is_empty() => {
                return Err(Error::Config(
                    "redis_sentinel_master: required with redis_sentinel (the name the \
                     Sentinels monitor)"
                        .into(),
                ))
            }
            (true, false) => Topology::Sentinel {
                sentinels,
                master,
                node_url: match self.redis_url.as_str() {
                    // A host redis-rs can parse; never connected to (the Sentinels name
                    // the primary): a password-less primary needs no redis_url.
                    "" | IN_PROCESS_URL => "redis://sentinel-primary".into(),
                    url => url.into(),
                },
            },
            (true, true) if !master.is_empty() => {
                return Err(Error::Config(
                    "redis_sentinel_master: set without redis_sentinel (the Sentinels' URLs)"
                        .into(),
                ))
            }
            (true, true) if matches!(self.redis_url.as_str(), "" | IN_PROCESS_URL) => {
                if [
                    &self.redis_tls_ca,
                    &self.redis_tls_cert,
                    &self.redis_tls_key,
                ]
                .iter()
                .any(|file| !file.is_empty())
                {
                    return Err(Error::Config(
                        "redis_tls_ca, redis_tls_cert, redis_tls_key: set, but no Redis is \
                         (redis_url, redis_cluster or redis_sentinel)"
                            .into(),
                    ));
                }
                return Ok(None);
            }
            (true, true) => Topology::Server(self.redis_url.clone()),
        };
        let ca = read_file("redis_tls_ca", &self.redis_tls_ca)?;
        let client =
            match (
                read_file("redis_tls_cert", &self.redis_tls_cert)?,
                read_file("redis_tls_key", &self.redis_tls_key)?,
            ) {
                (Some(certificate), Some(key)) => Some((certificate, key)),
                (None, None) => None,
                _ => return Err(Error::Config(
                    "redis_tls_cert and redis_tls_key: give both (a client certificate and its \
                     private key) or neither"
                        .into(),
                )),
            };
        let tls = RedisTls::from_pem(ca, client).map_err(Error::Config)?;
        let endpoint = RedisEndpoint::of(topology).with_tls(tls);
        if endpoint.tls().is_set() && !endpoint.uses_tls() {
            return Err(Error::Config(
                "redis_tls_ca, redis_tls_cert: set, but no Redis URL is rediss:// (TLS)".into(),
            ));
        }
        Ok(Some(endpoint))
    }
}

/// The contents of the file that `key` names, or `None` when it names none.
fn read_file(key: &str, path: &str) -> Result<Option<Vec<u8>>> {
    if path.is_empty() {
        return Ok(None);
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|err| Error::Config(format!("{key}: cannot read {path:?}: {err}")))
}
