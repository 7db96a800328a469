//! The measured Redis, and how each client of the bench reaches it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lockout::keys::Keyspace;
use lockout::{RedisEndpoint, RedisOptions, RedisStore};
use redis::IntoConnectionInfo;

use crate::meter::redis_connection;
use crate::options::RedisFlags;
use crate::PREFIX;

/// The measured Redis, and how each client of the bench reaches it: lockout's library and
/// `lockout serve` as configured by the `--redis-*` options; the other clients (redis-rs' sync
/// client, redis-cli, redis-benchmark, the peer) at the primary these found, with the same
/// user, password, database and TLS files.
pub(crate) struct Reach {
    pub(crate) endpoint: RedisEndpoint,
    /// The options, for `lockout serve`, and the TLS files' names for the tools and the peer.
    pub(crate) flags: RedisFlags,
    /// The primary: its address, with the URL's scheme, user, password and database.
    pub(crate) primary: redis::ConnectionInfo,
    /// The TLS files' contents, for redis-rs' sync client.
    pub(crate) certificates: Option<redis::TlsCertificates>,
}

/// The tools of redis-tools that the bench runs.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum RedisTool {
    Cli,
    Benchmark,
}

impl Reach {
    /// Connects as `flags` say, and finds the primary.
    pub(crate) async fn new(flags: &RedisFlags) -> Self {
        // For the sync client's TLS, which may come before lockout's first connection.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tls, certificates) = flags.tls();
        let endpoint = RedisEndpoint::of(flags.topology()).with_tls(tls);
        assert!(
            !endpoint.tls().is_set() || endpoint.uses_tls(),
            "--redis-tls-*: given, but no Redis URL is rediss:// (TLS)"
        );
        let store = RedisStore::connect(
            &endpoint,
            Keyspace::new(PREFIX).unwrap(),
            RedisOptions::default(),
        )
        .await
        .expect("Redis answers");
        let primaries = store.primaries().await.expect("Redis answers");
        let (host, port) = primaries
            .first()
            .and_then(|address| address.rsplit_once(':'))
            .and_then(|(host, port)| Some((host.to_string(), port.parse().ok()?)))
            .expect("the primary's host:port");
        let info = flags
            .url()
            .into_connection_info()
            .expect("--redis-url: not a Redis URL");
        let mut address = info.addr().clone();
        match &mut address {
            redis::ConnectionAddr::Tcp(to_host, to_port)
            | redis::ConnectionAddr::TcpTls {
                host: to_host,
                port: to_port,
                ..
            } => {
                *to_host = host;
                *to_port = port;
            }
            _ => panic!("the bench needs a TCP Redis URL, not a Unix socket"),
        }
        Reach {
            endpoint,
            flags: flags.clone(),
            primary: info.set_addr(address),
            certificates,
        }
    }

    /// A connection of redis-rs' sync client to the primary.
    pub(crate) fn connection(&self) -> redis::Connection {
        let info = self.primary.clone();
        redis_connection(match &self.certificates {
            Some(certificates) => redis::Client::build_with_tls(info, certificates.clone()),
            None => redis::Client::open(info),
        })
    }

    /// The primary's host and port.
    pub(crate) fn host_port(&self) -> (String, u16) {
        match self.primary.addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
            _ => unreachable!("a TCP address (checked in Reach::new)"),
        }
    }

    /// `Some(insecure)` when the primary is reached with TLS.
    pub(crate) fn tls(&self) -> Option<bool> {
        match self.primary.addr() {
            redis::ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
            _ => None,
        }
    }

    /// Points `command`, which runs `tool`, at the primary: host, port, database, user and TLS
    /// files as options, the password in REDISCLI_AUTH (redis-cli) or as `-a` (redis-benchmark
    /// 7.0 reads no environment).
    pub(crate) fn point<'c>(&self, command: &'c mut Command, tool: RedisTool) -> &'c mut Command {
        let (host, port) = self.host_port();
        command.args(["-h", &host, "-p", &port.to_string()]);
        let settings = self.primary.redis_settings();
        if settings.db() != 0 {
            let db = if tool == RedisTool::Benchmark {
                "--dbnum"
            } else {
                "-n"
            };
            command.args([db, &settings.db().to_string()]);
        }
        if let Some(user) = settings.username() {
            command.args(["--user", user]);
        }
        match (settings.password(), tool) {
            (Some(password), RedisTool::Benchmark) => command.args(["-a", password]),
            (Some(password), RedisTool::Cli) => command.env("REDISCLI_AUTH", password),
            (None, _) => command,
        };
        if let Some(insecure) = self.tls() {
            command.arg("--tls");
            if insecure {
                command.arg("--insecure");
            }
        }
        if let Some(ca) = &self.flags.tls_ca {
            command.args(["--cacert", ca]);
        }
        if let (Some(cert), Some(key)) = (&self.flags.tls_cert, &self.flags.tls_key) {
            command.args(["--cert", cert, "--key", key]);
        }
        command
    }

    /// The environment of the peer (`benches/peers/rlf_login.js`): user, password, database
    /// and TLS, each empty when not used.
    pub(crate) fn peer_env(&self) -> [(&'static str, String); 7] {
        let settings = self.primary.redis_settings();
        let file = |name: &Option<String>| name.clone().unwrap_or_default();
        let tls = self
            .tls()
            .map_or("", |insecure| if insecure { "insecure" } else { "on" });
        [
            (
                "REDIS_USERNAME",
                settings.username().unwrap_or_default().into(),
            ),
            (
                "REDIS_PASSWORD",
                settings.password().unwrap_or_default().into(),
            ),
            ("REDIS_DB", settings.db().to_string()),
            ("REDIS_TLS", tls.into()),
            ("REDIS_TLS_CA", file(&self.flags.tls_ca)),
            ("REDIS_TLS_CERT", file(&self.flags.tls_cert)),
            ("REDIS_TLS_KEY", file(&self.flags.tls_key)),
        ]
    }
}

/// `redis-cli --scan --pattern PATTERN | xargs -r redis-cli unlink`: its time.
pub(crate) fn unlink_matching(reach: &Reach, pattern: &str) -> Duration {
    let started = Instant::now();
    let mut scan = reach
        .point(&mut Command::new("redis-cli"), RedisTool::Cli)
        .args(["--scan", "--pattern", pattern])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli must be installed");
    let unlinked = reach
        .point(
            Command::new("xargs").args(["-r", "redis-cli"]),
            RedisTool::Cli,
        )
        .arg("unlink")
        .stdin(scan.stdout.take().unwrap())
        .stdout(Stdio::null())
        .status()
        .expect("xargs");
    assert!(scan.wait().unwrap().success() && unlinked.success());
    started.elapsed()
}
