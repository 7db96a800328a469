//! The command line: which parts run, for how long, against which Redis.

use std::time::Duration;

use lockout::{RedisTls, Topology};

pub(crate) struct Options {
    pub(crate) redis: RedisFlags,
    pub(crate) seconds: f64,
    pub(crate) json: bool,
    pub(crate) tiny: bool,
    pub(crate) ips: u32,
    pub(crate) usernames: u32,
    pub(crate) concurrency: Vec<usize>,
    pub(crate) connections: Vec<usize>,
    pub(crate) identities: u64,
    /// `--only reference,peer,...`: the parts to run (the reference always runs: the ratios
    /// need it); all when absent.
    pub(crate) only: Option<Vec<String>>,
}

/// The `--redis-*` options, as given: lockout's configuration keys of the same names.
#[derive(Clone)]
pub(crate) struct RedisFlags {
    pub(crate) url: Option<String>,
    pub(crate) sentinel: Vec<String>,
    pub(crate) sentinel_master: Option<String>,
    pub(crate) tls_ca: Option<String>,
    pub(crate) tls_cert: Option<String>,
    pub(crate) tls_key: Option<String>,
}

impl RedisFlags {
    /// Whether they name a Redis (else the bench starts its own).
    pub(crate) fn name_a_redis(&self) -> bool {
        self.url.is_some() || !self.sentinel.is_empty()
    }

    /// `--redis-url`, or lockout's default (with Sentinels, only its scheme, user, password
    /// and db count).
    pub(crate) fn url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
    }

    /// One server, or the primary of Sentinels.
    pub(crate) fn topology(&self) -> Topology {
        match (self.sentinel.is_empty(), &self.sentinel_master) {
            (true, None) => Topology::Server(self.url()),
            (false, Some(master)) => Topology::Sentinel {
                sentinels: self.sentinel.clone(),
                master: master.clone(),
                node_url: self.url(),
            },
            (true, Some(_)) => panic!("--redis-sentinel-master: set without --redis-sentinel"),
            (false, None) => panic!("--redis-sentinel: needs --redis-sentinel-master"),
        }
    }

    /// The TLS files, read and checked: for lockout, and for redis-rs' sync client.
    pub(crate) fn tls(&self) -> (RedisTls, Option<redis::TlsCertificates>) {
        let read = |path: &Option<String>| {
            path.as_ref()
                .map(|path| std::fs::read(path).unwrap_or_else(|err| panic!("{path}: {err}")))
        };
        let ca = read(&self.tls_ca);
        let client = match (read(&self.tls_cert), read(&self.tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => panic!("--redis-tls-cert and --redis-tls-key: give both or neither"),
        };
        let certificates = (ca.is_some() || client.is_some()).then(|| redis::TlsCertificates {
            client_tls: client
                .clone()
                .map(|(client_cert, client_key)| redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                }),
            root_cert: ca.clone(),
        });
        let tls = RedisTls::from_pem(ca, client).unwrap_or_else(|err| panic!("{err}"));
        (tls, certificates)
    }

    /// The environment that gives `lockout serve` these options: `LOCKOUT_REDIS_*`.
    pub(crate) fn service_env(&self) -> Vec<(&'static str, String)> {
        let sentinels = Some(self.sentinel.join(",")).filter(|urls| !urls.is_empty());
        [
            ("LOCKOUT_REDIS_URL", self.url.clone()),
            ("LOCKOUT_REDIS_SENTINEL", sentinels),
            (
                "LOCKOUT_REDIS_SENTINEL_MASTER",
                self.sentinel_master.clone(),
            ),
            ("LOCKOUT_REDIS_TLS_CA", self.tls_ca.clone()),
            ("LOCKOUT_REDIS_TLS_CERT", self.tls_cert.clone()),
            ("LOCKOUT_REDIS_TLS_KEY", self.tls_key.clone()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }
}

/// The parts `--only` can name, in the order they run.
pub(crate) const PARTS: [&str; 7] = [
    "peer", "library", "flood", "http", "django", "memory", "resets",
];

impl Options {
    pub(crate) fn parse() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let value = |name: &str| {
            args.iter()
                .position(|arg| arg == name)
                .and_then(|i| args.get(i + 1).cloned())
        };
        let list = |name: &str| -> Option<Vec<String>> {
            value(name).map(|items| items.split(',').map(str::to_string).collect())
        };
        let tiny = args.iter().any(|arg| arg == "--tiny");
        Options {
            redis: RedisFlags {
                url: value("--redis-url"),
                sentinel: list("--redis-sentinel").unwrap_or_default(),
                sentinel_master: value("--redis-sentinel-master"),
                tls_ca: value("--redis-tls-ca"),
                tls_cert: value("--redis-tls-cert"),
                tls_key: value("--redis-tls-key"),
            },
            seconds: value("--seconds")
                .map(|s| s.parse().expect("--seconds takes a number"))
                .unwrap_or(if tiny { 0.5 } else { 5.0 }),
            json: args.iter().any(|arg| arg == "--json"),
            tiny,
            ips: 100_000,
            usernames: 10_000,
            concurrency: if tiny { vec![1, 8] } else { vec![1, 64, 512] },
            connections: if tiny { vec![8] } else { vec![64, 512] },
            identities: if tiny { 10_000 } else { 1_000_000 },
            only: list("--only").inspect(|parts| {
                for part in parts {
                    assert!(
                        PARTS.contains(&part.as_str()),
                        "--only {part}: the parts are {}",
                        PARTS.join(", ")
                    );
                }
            }),
        }
    }

    pub(crate) fn runs(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|parts| parts.iter().any(|p| p == part))
    }

    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }
}
