//! The benchmark tool: lockout measured side by side with Redis itself, in one run. Not a test:
//! nothing is asserted.
//!
//!     cargo bench --bench lockout -- [--redis-url URL] [--seconds 5] [--json] [--tiny]
//!                                    [--only peer,library,flood,http,django,memory,resets]
//!                                    [--redis-sentinel URL,... --redis-sentinel-master NAME]
//!                                    [--redis-tls-ca FILE]
//!                                    [--redis-tls-cert FILE --redis-tls-key FILE]
//!
//! Against the Redis it is pointed at (by default a redis-server of its own on a free port; it
//! only ever touches keys under the `lockout-bench` prefix) it runs:
//!
//! 1. the reference: `redis-benchmark` running `fail.lua` as it was when the goals were set
//!    (`benches/reference/fail.lua`, a fixed copy) over 100,000 random IPs, pipelined and not;
//! 2. the peer the goals are stated against: rate-limiter-flexible's documented login recipe
//!    (Node, ioredis; `benches/peers`, installed with `npm ci` on first use) at concurrency 64;
//! 3. the library's failed-login flow (check, then failure) at concurrency 1, 64 and 512, for
//!    the policies `["ip"]` and `[["ip","username"], "ip"]`, over 100,000 random IPs and 10,000
//!    usernames, on Redis and then on the in-process store; and at concurrency 64 with events
//!    and repeat offenders off, then events on, then both on;
//! 4. the same flow through `lockout serve` over keep-alive HTTP, 64 and 512 connections, on
//!    Redis and on the in-process store, after the floor (a minimal hyper server answering a
//!    fixed JSON body, this tool run again, under the same load: each service row says its
//!    CPU per login against it, and against the peer's), then over a Unix socket (and, with
//!    its own Redis, once more on a 3-primary cluster of its own);
//! 5. a Django site's failed logins (one Python process, `benches/peers/django`, Django and
//!    django-axes from PyPI in a venv made on first use): through Axes' cache handler on the
//!    same Redis, then through the lockout_axes handler and `lockout serve`;
//! 6. Redis memory per tracked identity over 1,000,000 identities, next to a bare counter key,
//!    and the in-process store's (this process' RSS growth over as many identities);
//! 7. `reset --username X` and `reset --ip X` over 1,000,000 records, next to
//!    `redis-cli --scan --pattern ... | xargs redis-cli unlink`.
//!
//! For each flow: logins/s, p50/p99/p99.9 latency of a login (check + failure), Redis commands
//! the client sent per login (INFO commandstats), CPU of the client, of the service and of
//! redis-server (in cores), and the ratio to the reference (and, for the rows the goals name,
//! to the peer). A table, or JSON with `--json`.
//! `--tiny` runs every part briefly on small data, to keep the tool working (CI runs it so).
//!
//! The `--redis-*` options mean what lockout's configuration keys of the same names do
//! (docs/configuration.md), for every client the bench runs (the library, `lockout serve`,
//! redis-benchmark, redis-cli, the peer):
//!
//! - `--redis-url URL`: the server, `redis://[user:password@]host:port[/db]` (`rediss://`: TLS);
//! - `--redis-sentinel URL,URL,...`: Sentinels naming the primary, reached with the scheme,
//!   user, password and db of `--redis-url` (its host unused);
//! - `--redis-sentinel-master NAME`: the name the Sentinels monitor;
//! - `--redis-tls-ca FILE`: a PEM CA to trust for `rediss://` instead of the system's;
//! - `--redis-tls-cert FILE` and `--redis-tls-key FILE`: a PEM client certificate and its key.
//!
//! Redis' password reaches redis-cli and the peer in their environment, but redis-benchmark
//! (7.0) takes it only as `-a`, which `ps` shows to the machine's other users while it runs.

use std::future::Future;
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lockout::attempt::Field;
use lockout::keys::Keyspace;
use lockout::policy::{Backoff, Combination, Repeat};
use lockout::{
    AnyStore, Attempt, Engine, MemoryStore, Policy, RedisEndpoint, RedisOptions, RedisStore,
    RedisTls, Store, Target, Topology,
};
use rand::Rng;
use redis::IntoConnectionInfo;
use serde::Serialize;

const PREFIX: &str = "lockout-bench";
/// The reference script: `fail.lua` as it was when the performance goals were set (one identity,
/// no repeat offenders), kept here unchanged whatever the engine's scripts become, so that every
/// run measures against the same yardstick.
const SCRIPT: &str = include_str!("reference/fail.lua");

struct Options {
    redis: RedisFlags,
    seconds: f64,
    json: bool,
    tiny: bool,
    ips: u32,
    usernames: u32,
    concurrency: Vec<usize>,
    connections: Vec<usize>,
    identities: u64,
    /// `--only reference,peer,...`: the parts to run (the reference always runs: the ratios
    /// need it); all when absent.
    only: Option<Vec<String>>,
}

/// The `--redis-*` options, as given: lockout's configuration keys of the same names.
#[derive(Clone)]
struct RedisFlags {
    url: Option<String>,
    sentinel: Vec<String>,
    sentinel_master: Option<String>,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

impl RedisFlags {
    /// Whether they name a Redis (else the bench starts its own).
    fn name_a_redis(&self) -> bool {
        self.url.is_some() || !self.sentinel.is_empty()
    }

    /// `--redis-url`, or lockout's default (with Sentinels, only its scheme, user, password
    /// and db count).
    fn url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
    }

    /// One server, or the primary of Sentinels.
    fn topology(&self) -> Topology {
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
    fn tls(&self) -> (RedisTls, Option<redis::TlsCertificates>) {
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
    fn service_env(&self) -> Vec<(&'static str, String)> {
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

/// The load generator allocates as the `lockout` binary does: with mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The parts `--only` can name, in the order they run.
const PARTS: [&str; 7] = [
    "peer", "library", "flood", "http", "django", "memory", "resets",
];

impl Options {
    fn parse() -> Self {
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

    fn runs(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|parts| parts.iter().any(|p| p == part))
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }
}

/// One line of the report.
#[derive(Debug, Clone, Default, Serialize)]
struct Row {
    what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p999_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commands_per_login: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_cpu: Option<f64>,
    /// logins/s x commands per login / the reference's pipelined scripts/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    note: String,
}

/// A child process killed when dropped, with the directory it may have written to.
struct Process(Child, Option<std::path::PathBuf>);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(dir) = &self.1 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_redis(extra: &[&str]) -> (Process, u16) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("lockout-bench-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed");
    let process = Process(child, Some(dir));
    wait_for_port(port);
    (process, port)
}

fn start_cluster() -> (Vec<Process>, Vec<String>) {
    let (processes, ports): (Vec<Process>, Vec<u16>) = (0..3)
        .map(|_| {
            start_redis(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
        })
        .unzip();
    let addresses: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli must be installed");
    assert!(created.success(), "redis-cli --cluster create");
    for port in &ports {
        let mut connection =
            redis_connection(redis::Client::open(format!("redis://127.0.0.1:{port}")));
        while !redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut connection)
            .unwrap()
            .contains("cluster_state:ok")
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let seeds = ports
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect();
    (processes, seeds)
}

/// A connection of redis-rs' sync client, for INFO, SCAN and such.
fn redis_connection(client: redis::RedisResult<redis::Client>) -> redis::Connection {
    client
        .and_then(|client| client.get_connection())
        .expect("Redis answers")
}

/// A field of INFO as a number.
fn info_field(connection: &mut redis::Connection, section: &str, name: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg(section).query(connection).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Commands a client sent (not those scripts ran inside): EVALSHA, PTTL, HGET.
fn client_commands(connection: &mut redis::Connection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(connection)
        .unwrap();
    ["evalsha", "pttl", "hget"]
        .iter()
        .filter_map(|name| {
            info.lines()
                .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:calls=")))
                .and_then(|rest| rest.split(',').next()?.parse::<f64>().ok())
        })
        .sum()
}

fn redis_cpu_seconds(connection: &mut redis::Connection) -> f64 {
    info_field(connection, "cpu", "used_cpu_user") + info_field(connection, "cpu", "used_cpu_sys")
}

/// CPU seconds a process has used (user + system), from /proc.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime 11, stime 12; USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// The flow's counters read before and after a run.
struct Meter {
    started: Instant,
    commands: f64,
    redis_cpu: f64,
    client_cpu: (u32, f64),
    service_cpu: Option<(u32, f64)>,
}

impl Meter {
    /// Starts measuring a flow driven by process `client` (this one, or a peer's).
    fn start(redis: &mut redis::Connection, client: u32, service: Option<u32>) -> Self {
        Meter {
            started: Instant::now(),
            commands: client_commands(redis),
            redis_cpu: redis_cpu_seconds(redis),
            client_cpu: (client, process_cpu_seconds(client)),
            service_cpu: service.map(|pid| (pid, process_cpu_seconds(pid))),
        }
    }

    fn finish(
        self,
        redis: &mut redis::Connection,
        what: String,
        logins: u64,
        mut latencies: Vec<u32>,
        reference: f64,
    ) -> Row {
        let seconds = self.started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let rate = logins as f64 / seconds;
        let commands = (client_commands(redis) - self.commands) / logins.max(1) as f64;
        Row {
            what,
            rate: Some(rate),
            unit: "logins/s",
            p50_ms: Some(percentile(&latencies, 0.50)),
            p99_ms: Some(percentile(&latencies, 0.99)),
            p999_ms: Some(percentile(&latencies, 0.999)),
            commands_per_login: Some(commands),
            client_cpu: Some(
                (process_cpu_seconds(self.client_cpu.0) - self.client_cpu.1) / seconds,
            ),
            service_cpu: self
                .service_cpu
                .map(|(pid, before)| (process_cpu_seconds(pid) - before) / seconds),
            redis_cpu: Some((redis_cpu_seconds(redis) - self.redis_cpu) / seconds),
            ratio: Some(rate * commands / reference),
            note: String::new(),
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[index]) / 1000.0
}

/// The measured Redis, and how each client of the bench reaches it: lockout's library and
/// `lockout serve` as configured by the `--redis-*` options; the other clients (redis-rs' sync
/// client, redis-cli, redis-benchmark, the peer) at the primary these found, with the same
/// user, password, database and TLS files.
struct Reach {
    endpoint: RedisEndpoint,
    /// The options, for `lockout serve`, and the TLS files' names for the tools and the peer.
    flags: RedisFlags,
    /// The primary: its address, with the URL's scheme, user, password and database.
    primary: redis::ConnectionInfo,
    /// The TLS files' contents, for redis-rs' sync client.
    certificates: Option<redis::TlsCertificates>,
}

/// The tools of redis-tools that the bench runs.
#[derive(Clone, Copy, PartialEq)]
enum RedisTool {
    Cli,
    Benchmark,
}

impl Reach {
    /// Connects as `flags` say, and finds the primary.
    async fn new(flags: &RedisFlags) -> Self {
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
    fn connection(&self) -> redis::Connection {
        let info = self.primary.clone();
        redis_connection(match &self.certificates {
            Some(certificates) => redis::Client::build_with_tls(info, certificates.clone()),
            None => redis::Client::open(info),
        })
    }

    /// The primary's host and port.
    fn host_port(&self) -> (String, u16) {
        match self.primary.addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
            _ => unreachable!("a TCP address (checked in Reach::new)"),
        }
    }

    /// `Some(insecure)` when the primary is reached with TLS.
    fn tls(&self) -> Option<bool> {
        match self.primary.addr() {
            redis::ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
            _ => None,
        }
    }

    /// Points `command`, which runs `tool`, at the primary: host, port, database, user and TLS
    /// files as options, the password in REDISCLI_AUTH (redis-cli) or as `-a` (redis-benchmark
    /// 7.0 reads no environment).
    fn point<'c>(&self, command: &'c mut Command, tool: RedisTool) -> &'c mut Command {
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
    fn peer_env(&self) -> [(&'static str, String); 7] {
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

/// Requests/s of redis-benchmark running `command` (with `__rand_int__` under `keyspace`),
/// `pipeline` commands per round trip, 50 clients.
fn redis_benchmark(
    reach: &Reach,
    requests: u64,
    keyspace: u64,
    pipeline: u32,
    command: &[&str],
) -> f64 {
    let output = reach
        .point(&mut Command::new("redis-benchmark"), RedisTool::Benchmark)
        .args(["-c", "50"])
        .args(["-n", &requests.to_string(), "-P", &pipeline.to_string()])
        .args(["-r", &keyspace.to_string(), "--csv"])
        .args(command)
        .output()
        .expect("redis-benchmark (package redis-tools) must be installed");
    let csv = String::from_utf8_lossy(&output.stdout);
    csv.lines()
        .last()
        .and_then(|line| line.split(',').nth(1)?.trim_matches('"').parse().ok())
        .unwrap_or_else(|| {
            let errors = String::from_utf8_lossy(&output.stderr);
            panic!("no rate in redis-benchmark's output: {csv}{errors}")
        })
}

/// fail.lua on random IPs, as the engine calls it, with a failure limit.
/// `fail.lua` as the engine sends it for one IP: cool-off and lockout 30 minutes, no metadata.
fn fail_script<'a>(sha: &'a str, limit: &'a str, now: &'a str) -> [&'a str; 10] {
    [
        "EVALSHA",
        sha,
        "2",
        "lockout-bench:attempt:{ip=__rand_int__}",
        "lockout-bench:lock:{ip=__rand_int__}",
        "1800000",
        "1800000",
        limit,
        "1",
        now,
    ]
}

fn policy(name: &str) -> Policy {
    let combinations = match name {
        "ip" => vec![Combination::new([Field::Ip]).unwrap()],
        _ => vec![
            Combination::new([Field::Ip, Field::Username]).unwrap(),
            Combination::new([Field::Ip]).unwrap(),
        ],
    };
    Policy {
        combinations,
        ..Policy::default()
    }
}

const POLICIES: [(&str, &str); 2] = [
    ("ip", r#"["ip"]"#),
    ("ip+username, ip", r#"[["ip","username"],"ip"]"#),
];

fn flood_ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(172, 16, (n >> 8) as u8, n as u8))
}

fn random_ip(rng: &mut impl Rng, ips: u32) -> IpAddr {
    let n = rng.random_range(0..ips);
    IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

/// One client's failed-login flow, repeated by `drive`.
trait Login: Send + 'static {
    fn login(&mut self, ip: IpAddr, user: u32) -> impl Future<Output = ()> + Send;
}

/// The library: check, then failure.
struct LibraryLogin<S>(Arc<Engine<S>>);

impl<S: Store + 'static> Login for LibraryLogin<S> {
    async fn login(&mut self, ip: IpAddr, user: u32) {
        let username = format!("user{user}");
        let attempt = Attempt::new(ip, Some(&username), None, None).unwrap();
        self.0.check(&attempt).await.unwrap();
        self.0.fail(&attempt).await.unwrap();
    }
}

/// A flood: checks of locked identities only (`user` picks the flooding IP).
struct FloodCheck(Arc<Engine<RedisStore>>, u32);

impl Login for FloodCheck {
    async fn login(&mut self, _: IpAddr, user: u32) {
        let attempt = Attempt::from_ip(flood_ip(user % self.1));
        assert!(self.0.check(&attempt).await.unwrap().is_locked());
    }
}

/// The HTTP service: check, then failure, on one keep-alive HTTP/1.1 connection spoken
/// directly (the request's bytes written, the response read up to its Content-Length), as wrk
/// does: the load generator shares the machine's cores with the service and Redis, so it must
/// take as little of them as it can: 40-44 µs of CPU per login, against 64 for hyper's client
/// connection (a task of its own per connection) and more than the service for reqwest's.
struct HttpLogin<S> {
    stream: S,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl HttpLogin<tokio::net::TcpStream> {
    async fn connect(port: u16) -> Self {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.set_nodelay(true).unwrap();
        HttpLogin::over(stream)
    }
}

impl HttpLogin<tokio::net::UnixStream> {
    async fn connect_unix(path: &std::path::Path) -> Self {
        HttpLogin::over(tokio::net::UnixStream::connect(path).await.unwrap())
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> HttpLogin<S> {
    fn over(stream: S) -> Self {
        HttpLogin {
            stream,
            request: Vec::with_capacity(256),
            response: Vec::with_capacity(1024),
        }
    }

    /// POSTs `body` to `path` and reads the whole answer, which must be a success.
    async fn post(&mut self, path: &str, body: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        self.stream.write_all(&self.request).await.unwrap();
        self.response.clear();
        loop {
            let read = self.stream.read_buf(&mut self.response).await.unwrap();
            assert!(read > 0, "the service closed the connection");
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = response.parse(&self.response).unwrap() else {
                continue;
            };
            let status = response.code.unwrap();
            assert!((200..300).contains(&status), "{path}: status {status}");
            let length: usize = response
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case("content-length"))
                .and_then(|header| std::str::from_utf8(header.value).ok()?.parse().ok())
                .expect("a Content-Length");
            if self.response.len() >= head + length {
                return;
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Login
    for HttpLogin<S>
{
    async fn login(&mut self, ip: IpAddr, user: u32) {
        let body = format!(r#"{{"ip":"{ip}","username":"user{user}"}}"#);
        self.post("/v1/check", &body).await;
        self.post("/v1/failure", &body).await;
    }
}

/// The library's flow on `engine` with `concurrency` clients, measured: one row.
async fn library_row<S: Store + 'static>(
    options: &Options,
    redis: &mut redis::Connection,
    engine: Engine<S>,
    concurrency: usize,
    what: String,
    reference: f64,
) -> Row {
    let engine = Arc::new(engine);
    let meter = Meter::start(redis, std::process::id(), None);
    let (logins, latencies) = drive(options, concurrency, || {
        let engine = engine.clone();
        async move { LibraryLogin(engine) }
    })
    .await;
    meter.finish(redis, what, logins, latencies, reference)
}

/// Runs `concurrency` clients made by `make`, each repeating its login until the time is up;
/// answers the logins done and each one's latency in µs.
async fn drive<L, F, Fut>(options: &Options, concurrency: usize, make: F) -> (u64, Vec<u32>)
where
    L: Login,
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
{
    let (ips, usernames, duration) = (options.ips, options.usernames, options.duration());
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(make().await);
    }
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let (ip, user) = {
                        let mut rng = rand::rng();
                        (random_ip(&mut rng, ips), rng.random_range(0..usernames))
                    };
                    let started = Instant::now();
                    client.login(ip, user).await;
                    latencies.push(started.elapsed().as_micros() as u32);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    (latencies.len() as u64, latencies)
}

async fn engine(reach: &Reach, policy: Policy) -> Engine<RedisStore> {
    let store = RedisStore::connect(
        &reach.endpoint,
        Keyspace::new(PREFIX).unwrap(),
        RedisOptions::default(),
    )
    .await
    .expect("Redis answers");
    Engine::new(store, policy)
}

async fn clean(reach: &Reach) {
    engine(reach, Policy::default())
        .await
        .reset(&Target::All, false, &mut |_| {}, "benchmark")
        .await
        .unwrap();
    let mut connection = reach.connection();
    let keys = lockout::keys::Keyspace::new(PREFIX).unwrap();
    let logs = (0..lockout::keys::SHARDS).map(|shard| keys.log_key(shard));
    let events = (0..lockout::keys::EVENT_SHARDS)
        .flat_map(|shard| [keys.events_key(shard), keys.lock_ends_key(shard)]);
    for key in logs.chain(events) {
        redis::cmd("UNLINK")
            .arg(key)
            .query::<()>(&mut connection)
            .unwrap();
    }
}

/// rate-limiter-flexible's login recipe (`benches/peers/rlf_login.js`) against the same Redis,
/// driven like the library's flow: the peer of the performance goals, measured in the same run.
fn rate_limiter_flexible(
    options: &Options,
    reach: &Reach,
    redis: &mut redis::Connection,
    concurrency: usize,
    reference: f64,
) -> Row {
    let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers");
    if !std::path::Path::new(peers).join("node_modules").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix", peers])
            .stdout(Stdio::null())
            .status()
            .expect("npm (Node.js) must be installed to run rate-limiter-flexible side by side");
        assert!(status.success(), "npm ci in {peers} failed");
    }
    let (host, port) = reach.host_port();
    let mut node = Command::new("node");
    node.arg(format!("{peers}/rlf_login.js"))
        .args([
            host,
            port.to_string(),
            options.seconds.to_string(),
            concurrency.to_string(),
            options.ips.to_string(),
            options.usernames.to_string(),
        ])
        .envs(reach.peer_env());
    let what =
        format!("rate-limiter-flexible login recipe (Node, ioredis), concurrency {concurrency}");
    let (mut row, result) = measure_peer(node, "rlf_login.js", redis, None, what, reference);
    // Redis counts the commands of scripts too: the peer counts what it sent.
    let commands = result["commands"]
        .as_f64()
        .expect("rlf_login.js's commands")
        / logins_of(&result).max(1) as f64;
    row.commands_per_login = Some(commands);
    row.ratio = row.rate.map(|rate| rate * commands / reference);
    unlink_matching(reach, "lockout-bench-rlf:*");
    row
}

/// Runs a peer process (`command`, named `name`), which speaks this tool's protocol: it prints
/// `ready` once set up, runs when it reads a line, prints `{"latencies_us": [...], ...}`, and
/// exits when its stdin closes. Its CPU is the client's (with `service`'s, if any); the row,
/// and its JSON result.
fn measure_peer(
    mut command: Command,
    name: &str,
    redis: &mut redis::Connection,
    service: Option<u32>,
    what: String,
    reference: f64,
) -> (Row, serde_json::Value) {
    let mut peer = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{name} cannot start (is its runtime installed?): {err}"));
    let mut stdin = peer.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(peer.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{name} did not start");
    let meter = Meter::start(redis, peer.id(), service);
    writeln!(stdin, "go").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{name}: {err}: {line}"));
    let latencies: Vec<u32> = result["latencies_us"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}'s latencies"))
        .iter()
        .map(|us| u32::try_from(us.as_u64().unwrap()).unwrap_or(u32::MAX))
        .collect();
    let logins = latencies.len() as u64;
    let row = meter.finish(redis, what, logins, latencies, reference);
    drop(stdin);
    assert!(peer.wait().unwrap().success(), "{name} failed");
    (row, result)
}

/// How many logins a peer's result has latencies for.
fn logins_of(result: &serde_json::Value) -> usize {
    result["latencies_us"].as_array().map_or(0, Vec::len)
}

/// A Django site's failed logins (`benches/peers/django/django_login.py`, one Python process,
/// Django and django-axes from PyPI in `benches/peers/django/.venv`, made on first use):
/// through Axes' cache handler on the same Redis, or, given a `lockout serve` (its process and
/// port), through the lockout_axes handler. One row; the process's CPU is the client's.
fn django_login(
    options: &Options,
    reach: &Reach,
    redis: &mut redis::Connection,
    service: Option<(&Process, u16)>,
    reference: f64,
) -> Row {
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/django");
    let python = format!("{peer}/.venv/bin/python");
    if !std::path::Path::new(&python).exists() {
        let made = Command::new("python3")
            .args(["-m", "venv", &format!("{peer}/.venv")])
            .status()
            .expect("python3 must be installed to run the Django rows");
        assert!(made.success(), "python3 -m venv in {peer} failed");
        let integration = concat!(env!("CARGO_MANIFEST_DIR"), "/integrations/django");
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(format!("{peer}/requirements.txt"))
            .arg(integration)
            .status()
            .unwrap();
        assert!(installed.success(), "pip install in {peer} failed");
    }
    let (host, port) = reach.host_port();
    let (handler, lockout_url) = match service {
        Some((_, port)) => ("lockout", format!("http://127.0.0.1:{port}")),
        None => ("axes-cache", String::new()),
    };
    let mut django = Command::new(&python);
    django
        .arg(format!("{peer}/django_login.py"))
        .args([
            handler,
            &host,
            &port.to_string(),
            &lockout_url,
            &options.seconds.to_string(),
            &options.ips.to_string(),
            &options.usernames.to_string(),
        ])
        .envs(reach.peer_env());
    let what = match service {
        Some(_) => "Django login, lockout_axes handler and lockout serve on Redis, policy ip",
        None => "Django login, Axes' cache handler on Redis, policy ip (the site's anchor)",
    };
    let service = service.map(|(process, _)| process.0.id());
    let (mut row, _) = measure_peer(
        django,
        "django_login.py",
        redis,
        service,
        what.to_string(),
        reference,
    );
    // The cache handler's commands are not those counted (EVALSHA, PTTL): no comparison.
    row.ratio = None;
    row.commands_per_login = None;
    unlink_matching(reach, "lockout-bench-axes:*");
    row
}

/// `lockout serve` on the Redis that `redis_env` (`LOCKOUT_REDIS_*`) names, with a policy,
/// until dropped.
fn start_service(redis_env: &[(&str, String)], policy_json: &str) -> (Process, u16) {
    start_service_with(redis_env, policy_json, &[])
}

/// `start_service` with more environment (an admin token, say).
fn start_service_with(
    redis_env: &[(&str, String)],
    policy_json: &str,
    env: &[(&str, &str)],
) -> (Process, u16) {
    let port = free_port();
    let service = spawn_service(redis_env, policy_json, env, &format!("127.0.0.1:{port}"));
    wait_for_port(port);
    (service, port)
}

/// `lockout serve` on a Unix socket at `path` (see `start_service`).
fn start_service_on_socket(
    redis_env: &[(&str, String)],
    policy_json: &str,
    path: &std::path::Path,
) -> Process {
    let service = spawn_service(
        redis_env,
        policy_json,
        &[],
        &format!("unix:{}", path.display()),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    service
}

/// `lockout serve --listen listen` with the Redis of `redis_env` only, the policy's
/// combinations and `env`.
fn spawn_service(
    redis_env: &[(&str, String)],
    policy_json: &str,
    env: &[(&str, &str)],
    listen: &str,
) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lockout"));
    // Only the Redis of `redis_env`, whatever this process' environment says.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOCKOUT_REDIS_") {
            command.env_remove(name);
        }
    }
    let child = command
        .envs(redis_env.iter().map(|(name, value)| (name, value)))
        .args(["--prefix", PREFIX, "serve", "--listen", listen])
        .env("LOCKOUT_POLICY_LOCKOUT_PARAMETERS", policy_json)
        .env("LOCKOUT_LOG", "error")
        .envs(env.iter().copied())
        .spawn()
        .expect("the lockout binary");
    Process(child, None)
}

async fn http_flow(options: &Options, port: u16, connections: usize) -> (u64, Vec<u32>) {
    drive(options, connections, || HttpLogin::connect(port)).await
}

/// `row` of a flow on the in-process store, its note saying how it compares to the same flow
/// on Redis (`on_redis` logins/s) in this run.
fn versus_redis(mut row: Row, on_redis: Option<f64>) -> Row {
    row.ratio = None;
    if let (Some(rate), Some(on_redis)) = (row.rate, on_redis) {
        row.note = format!("{:.2}x the same on Redis", rate / on_redis);
    }
    row
}

/// The argument with which this tool, run again, only measures the in-process store's memory.
const IN_PROCESS_MEMORY: &str = "--in-process-memory-of";

/// Bytes of resident memory per identity the in-process store takes over `n` identities (one
/// record each: a limit none reaches, no access log), measured in a fresh run of this tool so
/// that no earlier flow's freed memory is counted back (mimalloc, as the service).
fn in_process_memory_per_identity(n: u64) -> f64 {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([IN_PROCESS_MEMORY, &n.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .expect("bytes per identity")
}

/// The fresh run of `in_process_memory_per_identity`: prints the bytes per identity.
async fn measure_in_process_memory(n: u64) {
    let mut policy = policy("ip");
    policy.failure_limit = std::num::NonZeroU32::new(1_000_000).unwrap();
    policy.access_log = None;
    let engine = Engine::new(MemoryStore::new(n as usize), policy);
    let before = resident_bytes();
    for i in 0..n {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        engine.fail(&Attempt::from_ip(ip)).await.unwrap();
    }
    println!("{}", (resident_bytes() - before) / n as f64);
}

/// This process' resident memory (`/proc/self/statm`, in 4 KiB pages on Linux x86_64).
fn resident_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .expect("statm's resident pages");
    pages * 4096.0
}

/// Bytes of Redis memory per key that `command` adds, over about `count` random keys.
fn memory_per_key(
    connection: &mut redis::Connection,
    reach: &Reach,
    count: u64,
    command: &[&str],
    pattern: &str,
) -> (f64, u64) {
    let before = info_field(connection, "memory", "used_memory");
    redis_benchmark(reach, count, 1_000_000_000, 32, command);
    let after = info_field(connection, "memory", "used_memory");
    let keys = scan_count(connection, pattern);
    ((after - before) / keys.max(1) as f64, keys)
}

fn scan_count(connection: &mut redis::Connection, pattern: &str) -> u64 {
    let mut cursor = 0u64;
    let mut count = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(connection)
            .unwrap();
        count += keys.len() as u64;
        if next == 0 {
            return count;
        }
        cursor = next;
    }
}

/// `redis-cli --scan --pattern PATTERN | xargs -r redis-cli unlink`: its time.
fn unlink_matching(reach: &Reach, pattern: &str) -> Duration {
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

/// Redis memory after `failures` failed logins from random addresses of one IPv6 /48 (one
/// customer's allocation: an attacker's whole supply), counted per `prefix_length` bits.
async fn ipv6_flood_memory(
    reach: &Reach,
    redis: &mut redis::Connection,
    failures: u64,
    prefix_length: u8,
) -> Row {
    let policy = Policy {
        ipv6_prefix_length: prefix_length,
        ..policy("ip")
    };
    let engine = Arc::new(engine(reach, policy).await);
    let before = info_field(redis, "memory", "used_memory");
    let workers: Vec<_> = (0..256u64)
        .map(|worker| {
            let engine = engine.clone();
            tokio::spawn(async move {
                for _ in (worker..failures).step_by(256) {
                    let host: u128 = rand::rng().random::<u128>() >> 48;
                    let ip = Ipv6Addr::from((0x2001_0db8_00ab_u128 << 80) | host);
                    let attempt = Attempt::from_ip(IpAddr::V6(ip));
                    engine.fail(&attempt).await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let after = info_field(redis, "memory", "used_memory");
    let identities = scan_count(redis, &format!("{PREFIX}:attempt:*"));
    Row {
        what: format!(
            "Redis memory after {failures} failures from random IPv6 addresses of one /48, ipv6_prefix_length {prefix_length}"
        ),
        rate: Some((after - before) / 1_048_576.0),
        unit: "MiB",
        note: format!(
            "{identities} identities; the access log is bounded by access_log_max_entries"
        ),
        ..Row::default()
    }
}

/// HTTP logins (policy ip, 8 connections) alone, then while an admin resets `--username
/// victim` over `records` records again and again through the API (a SCAN of every key each
/// time, on the service's connection for admin work): the p99 of a login next to its p99 alone.
async fn logins_during_admin_resets(
    options: &Options,
    reach: &Reach,
    records: u64,
    redis: &mut redis::Connection,
    reference: f64,
) -> Vec<Row> {
    let admin = [
        ("LOCKOUT_ADMIN_PASSWORD", "bench"),
        ("LOCKOUT_ADMIN_TOKEN", "bench-token"),
    ];
    let (service, port) = start_service_with(&reach.flags.service_env(), r#"["ip"]"#, &admin);
    let mut rows = Vec::new();
    for during_resets in [false, true] {
        let resetting = Arc::new(AtomicBool::new(during_resets));
        let resets = std::thread::spawn({
            let resetting = resetting.clone();
            move || {
                let mut done = 0u32;
                while resetting.load(Ordering::Relaxed) {
                    let status = Command::new("curl")
                        .args(["-sf", "-o", "/dev/null", "-X", "DELETE"])
                        .args(["-H", "Authorization: Bearer bench-token"])
                        .arg(format!(
                            "http://127.0.0.1:{port}/v1/attempts?username=victim"
                        ))
                        .status()
                        .expect("curl");
                    assert!(status.success(), "the admin reset answered an error");
                    done += 1;
                }
                done
            }
        });
        let meter = Meter::start(redis, std::process::id(), Some(service.0.id()));
        let (logins, latencies) = http_flow(options, port, 8).await;
        resetting.store(false, Ordering::Relaxed);
        let resets = resets.join().unwrap();
        let what = if during_resets {
            format!("lockout serve, policy ip, 8 connections, while admin resets scan {records} records")
        } else {
            "lockout serve, policy ip, 8 connections, no admin work (the same service)".to_string()
        };
        let mut row = meter.finish(redis, what, logins, latencies, reference);
        if during_resets {
            let idle: &Row = rows.first().expect("the row without resets");
            row.ratio = Some(row.p99_ms.unwrap() / idle.p99_ms.unwrap());
            row.note = format!("p99 to the p99 without admin work; {resets} resets done");
        }
        rows.push(row);
    }
    drop(service);
    rows
}

/// `count` attempt records `ip=10.x.y.z&username=userN` written server-side in chunks, plus 100
/// records of `victim_ip` and 100 of `victim`.
fn fill_records(connection: &mut redis::Connection, count: u64) {
    let script = r"
        for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
          local ip = '10.' .. (math.floor(i / 65536) % 256) .. '.' .. (math.floor(i / 256) % 256) .. '.' .. (i % 256)
          local key = ARGV[3] .. ':attempt:{ip=' .. ip .. '&username=user' .. (i % 10000) .. '}'
          redis.call('HSET', key, 'n', 1, 'f', 0, 'l', 0)
          redis.call('PEXPIRE', key, 3600000)
        end";
    let mut from = 0;
    while from < count {
        let to = (from + 20_000).min(count) - 1;
        redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .arg(from)
            .arg(to)
            .arg(PREFIX)
            .query::<()>(connection)
            .unwrap();
        from = to + 1;
    }
    fill_victims(connection);
}

fn fill_victims(connection: &mut redis::Connection) {
    for n in 0..100 {
        for key in [
            format!("{PREFIX}:attempt:{{ip=192.0.2.1&username=someone{n}}}"),
            format!(
                "{PREFIX}:attempt:{{ip=198.51.{}.{}&username=victim}}",
                n / 256,
                n % 256
            ),
        ] {
            redis::pipe()
                .hset(&key, "failures", 1)
                .pexpire(&key, 3_600_000)
                .query::<()>(connection)
                .unwrap();
        }
    }
}

/// The argument with which this tool, run again, is the floor HTTP server on a port.
const FLOOR_SERVER: &str = "--floor-server-on";

/// The floor of any HTTP service here: hyper's HTTP/1.1 server on the same runtime as
/// `lockout serve` (tokio, two worker threads), answering every request with a fixed JSON body
/// and doing nothing else. Runs until killed.
async fn floor_server(port: u16) {
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_request| async {
                let mut response = hyper::Response::new(String::from(r#"{"locked":false}"#));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, std::convert::Infallible>(response)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The floor server, as a process of its own (this tool run again), and its port.
fn start_floor_server() -> (Process, u16) {
    let port = free_port();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([FLOOR_SERVER, &port.to_string()])
        .spawn()
        .unwrap();
    wait_for_port(port);
    (Process(child, None), port)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, n] = &args[..] {
        if flag == IN_PROCESS_MEMORY {
            return measure_in_process_memory(n.parse().expect("a number of identities")).await;
        }
        if flag == FLOOR_SERVER {
            return floor_server(n.parse().expect("a port")).await;
        }
    }
    let options = Options::parse();
    let own = (!options.redis.name_a_redis()).then(|| start_redis(&[]));
    let own_url = own
        .as_ref()
        .map(|(_, port)| format!("redis://127.0.0.1:{port}"));
    let reach = Reach::new(&RedisFlags {
        url: own_url.or(options.redis.url.clone()),
        ..options.redis.clone()
    })
    .await;
    let mut redis = reach.connection();
    let info: String = redis::cmd("INFO").arg("server").query(&mut redis).unwrap();
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim();
    // Which Redis, passwords hidden (the bench's own goes without saying).
    let at = match own {
        Some(_) => String::new(),
        None => format!(" at {}", reach.endpoint.target()),
    };
    let version = format!("Redis {version}{at}");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SCRIPT)
        .query(&mut redis)
        .unwrap();
    let mut rows = Vec::new();
    let requests = if options.tiny { 20_000 } else { 500_000 };

    // 1. The reference.
    let mut reference = 0.0;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    for pipeline in [16, 1] {
        let cpu = redis_cpu_seconds(&mut redis);
        let started = Instant::now();
        let script = fail_script(&sha, "3", &now);
        let rate = redis_benchmark(&reach, requests, u64::from(options.ips), pipeline, &script);
        let redis_cpu = (redis_cpu_seconds(&mut redis) - cpu) / started.elapsed().as_secs_f64();
        if pipeline == 16 {
            reference = rate;
        }
        rows.push(Row {
            what: format!("redis-benchmark EVALSHA fail.lua, 50 clients, pipeline {pipeline}"),
            rate: Some(rate),
            unit: "scripts/s",
            redis_cpu: Some(redis_cpu),
            ratio: Some(rate / reference),
            ..Row::default()
        });
    }
    clean(&reach).await;

    // 2. The peer.
    let peer = options.runs("peer").then(|| {
        let row = rate_limiter_flexible(&options, &reach, &mut redis, 64, reference);
        rows.push(row.clone());
        row
    });
    // The machine's CPU per login (the peer's Node and Redis; the service and Redis).
    let peer_cost = peer.as_ref().and_then(|peer| {
        let cpu = peer.client_cpu? + peer.redis_cpu?;
        Some(cpu / peer.rate?)
    });
    let versus_peer = |row: &mut Row| {
        if let (Some(rate), Some(peer)) = (row.rate, peer.as_ref().and_then(|peer| peer.rate)) {
            row.note = format!("{:.2}x rate-limiter-flexible", rate / peer);
            if let (Some(peer_cost), Some(service)) = (peer_cost, row.service_cpu) {
                let cost = (service + row.redis_cpu.unwrap_or(0.0)) / rate;
                row.note = format!("{}, CPU per login {:.2}x its", row.note, cost / peer_cost);
            }
        }
    };

    // 3. The library's flow.
    if options.runs("library") {
        for (name, _) in POLICIES {
            for &concurrency in &options.concurrency {
                let engine = engine(&reach, policy(name)).await;
                let what = format!("library, policy {name}, concurrency {concurrency}");
                let mut row =
                    library_row(&options, &mut redis, engine, concurrency, what, reference).await;
                if name != "ip" {
                    versus_peer(&mut row); // the policy of the peer's recipe: IP, username and IP
                }
                let on_redis = row.rate;
                rows.push(row);
                clean(&reach).await;

                let store = AnyStore::from(MemoryStore::new(options.identities as usize));
                let engine = Engine::new(store, policy(name));
                let what = format!(
                    "library on the in-process store, policy {name}, concurrency {concurrency}"
                );
                let row =
                    library_row(&options, &mut redis, engine, concurrency, what, reference).await;
                rows.push(versus_redis(row, on_redis));
            }
        }
    }

    // 3a. The same flow with issue 14's features off (the Axes baseline: no events, no repeat
    // offenders), with events (the default), and with repeat offenders too, in the same run.
    if options.runs("library") {
        let concurrency = options
            .concurrency
            .iter()
            .copied()
            .filter(|&c| c <= 64)
            .max()
            .unwrap_or(1);
        let name = "ip+username, ip";
        let mut baseline = None;
        for (events, repeat) in [(false, false), (true, false), (true, true)] {
            let mut policy = policy(name);
            if !events {
                policy.events = None;
            }
            if repeat {
                policy.repeat = Some(Repeat {
                    memory: Duration::from_secs(7 * 24 * 3600),
                    backoff: Backoff(2.0),
                    max_lockout: Duration::from_secs(24 * 3600),
                });
            }
            let engine = engine(&reach, policy).await;
            let on = |on: bool| if on { "on" } else { "off" };
            let what = format!(
                "library, policy {name}, concurrency {concurrency}, events {}, repeat offenders {}",
                on(events),
                on(repeat)
            );
            let mut row =
                library_row(&options, &mut redis, engine, concurrency, what, reference).await;
            let cost = row.redis_cpu.zip(row.rate).map(|(cpu, rate)| cpu / rate);
            match (baseline, cost) {
                (None, _) => baseline = cost,
                (Some(baseline), Some(cost)) => {
                    row.note = format!(
                        "{:.2}x the Redis CPU per login of both off",
                        cost / baseline
                    );
                }
                (Some(_), None) => {}
            }
            rows.push(row);
            clean(&reach).await;
        }
    }

    // 3b. Under attack: checks of identities that are all locked already (a credential-stuffing
    // flood from 1,000 addresses), without and with the lock cache.
    if options.runs("flood") {
        for cache in [false, true] {
            let engine = engine(&reach, policy("ip")).await;
            let (engine, _tasks) = if cache {
                let (engine, tasks) = engine.with_lock_cache();
                while !engine.lock_cache_listening() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (engine, Some(tasks))
            } else {
                (engine, None)
            };
            let engine = Arc::new(engine);
            let flooders = 1_000u32;
            for n in 0..flooders {
                let attempt = Attempt::from_ip(flood_ip(n));
                for _ in 0..3 {
                    engine.fail(&attempt).await.unwrap();
                }
            }
            let meter = Meter::start(&mut redis, std::process::id(), None);
            let (refused, latencies) = drive(&options, 64, || {
                let engine = engine.clone();
                async move { FloodCheck(engine, flooders) }
            })
            .await;
            let what = format!(
                "flood: checks of 1,000 locked IPs, library, concurrency 64, lock cache {}",
                if cache { "on" } else { "off" }
            );
            let mut row = meter.finish(&mut redis, what, refused, latencies, reference);
            row.unit = "refused/s";
            row.note = "Redis cmds per refused attempt".into();
            rows.push(row);
            clean(&reach).await;
        }
    }

    // 4. The HTTP service, after its floor: the same load on a server that does nothing.
    if options.runs("http") {
        let (floor, floor_port) = start_floor_server();
        let meter = Meter::start(&mut redis, std::process::id(), Some(floor.0.id()));
        let (logins, latencies) = http_flow(&options, floor_port, 64).await;
        let what =
            "minimal hyper server, a fixed JSON body, 64 connections (the floor)".to_string();
        let mut floor_row = meter.finish(&mut redis, what, logins, latencies, reference);
        floor_row.ratio = None;
        floor_row.commands_per_login = None;
        let floor_cpu_per_login = floor_row
            .service_cpu
            .zip(floor_row.rate)
            .map(|(cpu, rate)| cpu / rate);
        rows.push(floor_row);
        drop(floor);
        let versus_floor = |row: &mut Row| {
            if let (Some(cpu), Some(rate), Some(floor)) =
                (row.service_cpu, row.rate, floor_cpu_per_login)
            {
                let floor_note = format!(
                    "service CPU per login {:.2}x the floor's",
                    cpu / rate / floor
                );
                row.note = if row.note.is_empty() {
                    floor_note
                } else {
                    format!("{}; {floor_note}", row.note)
                };
            }
        };
        for (name, json) in POLICIES {
            for &connections in &options.connections {
                let (service, http_port) = start_service(&reach.flags.service_env(), json);
                let meter = Meter::start(&mut redis, std::process::id(), Some(service.0.id()));
                let (logins, latencies) = http_flow(&options, http_port, connections).await;
                let what = format!("lockout serve, policy {name}, {connections} connections");
                let mut row = meter.finish(&mut redis, what, logins, latencies, reference);
                versus_peer(&mut row);
                versus_floor(&mut row);
                let on_redis = row.rate;
                rows.push(row);
                drop(service);
                clean(&reach).await;

                let in_process = [("LOCKOUT_REDIS_URL", "memory://".to_string())];
                let (service, http_port) = start_service(&in_process, json);
                let meter = Meter::start(&mut redis, std::process::id(), Some(service.0.id()));
                let (logins, latencies) = http_flow(&options, http_port, connections).await;
                let what = format!(
                    "lockout serve on the in-process store, policy {name}, {connections} connections"
                );
                let row = meter.finish(&mut redis, what, logins, latencies, reference);
                let mut row = versus_redis(row, on_redis);
                versus_floor(&mut row);
                rows.push(row);
                drop(service);
            }
        }
        // A login page on the same host: the same flow over a Unix socket.
        let (name, json) = POLICIES[0];
        let tcp_rate = rows
            .iter()
            .find(|row| row.what == format!("lockout serve, policy {name}, 64 connections"))
            .and_then(|row| row.rate);
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("lockout.sock");
        let service = start_service_on_socket(&reach.flags.service_env(), json, &socket);
        let meter = Meter::start(&mut redis, std::process::id(), Some(service.0.id()));
        let (logins, latencies) = drive(&options, 64, || HttpLogin::connect_unix(&socket)).await;
        let what = format!("lockout serve over a Unix socket, policy {name}, 64 connections");
        let mut row = meter.finish(&mut redis, what, logins, latencies, reference);
        if let (Some(rate), Some(tcp_rate)) = (row.rate, tcp_rate) {
            row.note = format!("{:.2}x the same over TCP", rate / tcp_rate);
        }
        rows.push(row);
        drop(service);
        clean(&reach).await;
        if own.is_some() && !options.tiny {
            let (_cluster, seeds) = start_cluster();
            let (service, http_port) =
                start_service(&[("LOCKOUT_REDIS_CLUSTER", seeds.join(","))], r#"["ip"]"#);
            let started = Instant::now();
            let (logins, mut latencies) = http_flow(&options, http_port, 64).await;
            latencies.sort_unstable();
            rows.push(Row {
                what: "lockout serve on a 3-primary cluster, policy ip, 64 connections".into(),
                rate: Some(logins as f64 / started.elapsed().as_secs_f64()),
                unit: "logins/s",
                p50_ms: Some(percentile(&latencies, 0.50)),
                p99_ms: Some(percentile(&latencies, 0.99)),
                p999_ms: Some(percentile(&latencies, 0.999)),
                note: "same machine: the cluster's 3 servers share its cores".into(),
                ..Row::default()
            });
            drop(service);
        }
    }

    // 5. A Django site's login: Axes' cache handler on Redis, then lockout_axes and the service.
    if options.runs("django") {
        let cache = django_login(&options, &reach, &mut redis, None, reference);
        let cache_cost = cache.client_cpu.zip(cache.redis_cpu).zip(cache.rate);
        rows.push(cache);
        let (service, port) = start_service(&reach.flags.service_env(), r#"["ip"]"#);
        let mut row = django_login(
            &options,
            &reach,
            &mut redis,
            Some((&service, port)),
            reference,
        );
        if let (Some(((client, redis_cpu), rate)), Some(service_cpu), Some(own_rate)) =
            (cache_cost, row.service_cpu, row.rate)
        {
            let own = (row.client_cpu.unwrap_or(0.0) + service_cpu + row.redis_cpu.unwrap_or(0.0))
                / own_rate;
            row.note = format!(
                "{:.2}x the cache handler's rate; CPU per login (Django + service + Redis) {:.2}x its",
                own_rate / rate,
                own / ((client + redis_cpu) / rate)
            );
        }
        rows.push(row);
        drop(service);
        clean(&reach).await;
    }

    // 6. Memory per identity.
    let n = options.identities;
    if options.runs("memory") {
        // A limit no identity reaches: one key (the record) per identity, as most are.
        let script = fail_script(&sha, "1000000", &now);
        let (per_identity, identities) =
            memory_per_key(&mut redis, &reach, n, &script, "lockout-bench:attempt:*");
        clean(&reach).await;
        let (per_counter, counters) = memory_per_key(
            &mut redis,
            &reach,
            n,
            &["INCR", "lockout-bench:counter:__rand_int__"],
            "lockout-bench:counter:*",
        );
        unlink_matching(&reach, "lockout-bench:counter:*");
        let (per_expiring, expiring) = memory_per_key(
            &mut redis,
            &reach,
            n,
            &[
                "SET",
                "lockout-bench:counter:__rand_int__",
                "1",
                "PX",
                "1800000",
            ],
            "lockout-bench:counter:*",
        );
        unlink_matching(&reach, "lockout-bench:counter:*");
        rows.push(Row {
            what: format!("Redis memory per tracked identity ({identities} identities)"),
            rate: Some(per_identity),
            unit: "bytes",
            ratio: Some(per_identity / per_counter),
            note: "ratio: to a bare INCR counter key".into(),
            ..Row::default()
        });
        rows.push(Row {
            what: format!("Redis memory per bare INCR counter key ({counters} keys)"),
            rate: Some(per_counter),
            unit: "bytes",
            ..Row::default()
        });
        rows.push(Row {
            what: format!("Redis memory per counter key with a TTL ({expiring} keys)"),
            rate: Some(per_expiring),
            unit: "bytes",
            ratio: Some(per_identity / per_expiring),
            note: "ratio: a tracked identity to this".into(),
            ..Row::default()
        });
    }

    // 5a. The in-process store's memory per identity, in a process of its own.
    if options.runs("memory") {
        let per_identity = in_process_memory_per_identity(n);
        let on_redis = rows
            .iter()
            .find(|row| row.what.starts_with("Redis memory per tracked identity"))
            .and_then(|row| row.rate);
        rows.push(Row {
            what: format!("in-process store memory per tracked identity ({n} identities, RSS)"),
            rate: Some(per_identity),
            unit: "bytes",
            ratio: on_redis.map(|redis| per_identity / redis),
            note: "ratio: to Redis' per tracked identity".into(),
            ..Row::default()
        });
    }

    // 5b. Redis memory after a flood of failures from random IPv6 addresses of one /48.
    if options.runs("memory") {
        for prefix_length in [64, 128] {
            rows.push(ipv6_flood_memory(&reach, &mut redis, n, prefix_length).await);
            clean(&reach).await;
        }
    }

    // 7. Resets over n records.
    if options.runs("resets") {
        fill_records(&mut redis, n);
        let engine = engine(&reach, Policy::default()).await;
        for (name, target, pattern) in [
            (
                "--username victim",
                Target::Usernames(vec!["victim".into()]),
                "lockout-bench:*[{&]username=victim[&}]*",
            ),
            (
                "--ip 192.0.2.1",
                Target::Ips(vec!["192.0.2.1".parse().unwrap()]),
                "lockout-bench:*:{ip=192.0.2.1[&}]*",
            ),
        ] {
            let started = Instant::now();
            let removed = engine
                .reset(&target, false, &mut |_| {}, "benchmark")
                .await
                .unwrap();
            let ours = started.elapsed();
            fill_victims(&mut redis);
            let theirs = unlink_matching(&reach, pattern);
            fill_victims(&mut redis);
            rows.push(Row {
                what: format!("reset {name} over {n} records ({removed} removed)"),
                rate: Some(ours.as_secs_f64()),
                unit: "s",
                ratio: Some(ours.as_secs_f64() / theirs.as_secs_f64()),
                note: format!(
                    "redis-cli --scan | xargs unlink: {:.2} s",
                    theirs.as_secs_f64()
                ),
                ..Row::default()
            });
        }
        rows.extend(logins_during_admin_resets(&options, &reach, n, &mut redis, reference).await);
        engine
            .reset(&Target::All, false, &mut |_| {}, "benchmark")
            .await
            .unwrap();
    }

    if options.json {
        let report = serde_json::json!({
            "machine": machine(),
            "redis": version,
            "seconds_per_flow": options.seconds,
            "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
        return;
    }
    println!(
        "lockout benchmark: {}, {version}, {} s per flow",
        machine(),
        options.seconds
    );
    println!();
    println!("| what | rate | p50 ms | p99 ms | p99.9 ms | Redis cmds/login | CPU client | CPU service | CPU redis | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let number = |value: Option<f64>, digits: usize| {
        value.map_or(String::new(), |v| format!("{v:.digits$}"))
    };
    for row in &rows {
        let rate = row
            .rate
            .map_or(String::new(), |rate| format!("{rate:.2} {}", row.unit));
        let rate = if row.unit.ends_with("/s") {
            row.rate
                .map_or(rate.clone(), |r| format!("{r:.0} {}", row.unit))
        } else {
            rate
        };
        let ratio = number(row.ratio, 2);
        let ratio = if row.note.is_empty() {
            ratio
        } else {
            format!("{ratio} ({})", row.note)
        };
        println!(
            "| {} | {rate} | {} | {} | {} | {} | {} | {} | {} | {ratio} |",
            row.what,
            number(row.p50_ms, 2),
            number(row.p99_ms, 2),
            number(row.p999_ms, 2),
            number(row.commands_per_login, 2),
            number(row.client_cpu, 2),
            number(row.service_cpu, 2),
            number(row.redis_cpu, 2),
        );
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu})")
}
