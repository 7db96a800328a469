//! Test fixtures: a throwaway `redis-server` per test, on a free loopback port, never the one
//! already running on 6379 (it fails loudly when `redis-server` is missing, and the server dies
//! with the fixture); and the HTTP service started in-process on a free port. TLS servers and
//! clusters are in `tls`, a primary with a replica under three Sentinels in `sentinel`.

pub mod sentinel;
pub mod tls;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockout::attempt::Field;
use lockout::config::{Config, Overrides};
use lockout::keys::Keyspace;
use lockout::policy::{Combination, Policy};
use lockout::server::{self, Service};
use lockout::{
    AnyStore, Engine, ManualClock, MemoryStore, RedisEndpoint, RedisOptions, RedisStore,
};

pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    setup: Setup,
}

/// How a `RedisServer` runs, the same after a restart.
#[derive(Clone, Default)]
struct Setup {
    /// More `redis-server` arguments.
    extra: Vec<String>,
    /// A configuration file's name and text, written into the server's directory before its
    /// first start and given as the first argument (a Sentinel's, which it rewrites).
    config: Option<(&'static str, String)>,
    /// TLS only (`--tls-port`, no plain port): what clients present and trust.
    tls: Option<redis::TlsCertificates>,
    /// Clients AUTH with it (`--requirepass` is among `extra`).
    password: Option<String>,
}

fn spawn_redis(port: u16, dir: &Path, setup: &Setup) -> Child {
    let mut command = Command::new("redis-server");
    if let Some((name, _)) = &setup.config {
        command.arg(dir.join(name));
    }
    let port = port.to_string();
    if setup.tls.is_some() {
        command.args(["--port", "0", "--tls-port", &port]);
    } else {
        command.args(["--port", &port]);
    }
    command
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--enable-debug-command", "local"])
        .args(&setup.extra)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (.ci/run installs it)")
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with more `redis-server` arguments (`--cluster-enabled yes`, ...).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::launch(Setup {
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
            ..Setup::default()
        })
    }

    fn launch(setup: Setup) -> Self {
        for _ in 0..10 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("a temporary directory");
            if let Some((name, text)) = &setup.config {
                std::fs::write(dir.path().join(name), text).expect("a writable temporary file");
            }
            let mut server = RedisServer {
                child: spawn_redis(port, dir.path(), &setup),
                port,
                dir,
                setup: setup.clone(),
            };
            // Not ready: the port was taken between choosing and binding it. Try another.
            if server.wait_until_ready() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port after 10 tries");
    }

    /// Polls until the server answers PING; false if it exited (port taken) or never answers.
    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut connection) = self.client().get_connection() {
                if redis::cmd("PING").query::<String>(&mut connection).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Calls of `command` (e.g. `pttl`) this server has run, from INFO commandstats.
    pub fn command_calls(&self, command: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.connection())
            .unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn is_running(&self) -> bool {
        // try_wait needs &mut; a stopped server refuses connections.
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// Stops the server (as a crash would), keeping its port for `restart`.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and directory: empty, unless its arguments
    /// persist (`--appendonly yes`).
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_redis(self.port, self.dir.path(), &self.setup);
        assert!(
            self.wait_until_ready(),
            "redis-server restarts on port {}",
            self.port
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:port`; `rediss://` for a TLS server, with `:password@` for one that
    /// wants a password.
    pub fn url(&self) -> String {
        let scheme = if self.setup.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let password = self.setup.password.as_ref().map(|password| {
            let encoded =
                percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC);
            format!(":{encoded}@")
        });
        let password = password.unwrap_or_default();
        format!("{scheme}://{password}127.0.0.1:{}", self.port)
    }

    /// A client of this server, with its TLS certificates if it has some.
    fn client(&self) -> redis::Client {
        match &self.setup.tls {
            None => redis::Client::open(self.url()),
            Some(certificates) => redis::Client::build_with_tls(self.url(), certificates.clone()),
        }
        .expect("valid URL")
    }

    /// A plain connection for inspecting what the engine wrote.
    pub fn connection(&self) -> redis::Connection {
        self.client()
            .get_connection()
            .expect("the test's redis-server answers")
    }

    /// Waits until a replica has everything this primary wrote so far: `WAIT 1` after a write
    /// of its own, to `key` (in the slot to wait for, on a cluster), since WAIT waits for its
    /// own connection's writes only.
    pub fn wait_for_replica(&self, key: &str) {
        let mut connection = self.connection();
        let () = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .query(&mut connection)
            .unwrap();
        let replicas: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut connection)
            .unwrap();
        assert_eq!(replicas, 1, "a replica has what {} wrote", self.url());
    }

    /// Every key in the server.
    pub fn keys(&self) -> Vec<String> {
        let mut connection = self.connection();
        let keys: redis::RedisResult<Vec<String>> =
            redis::Commands::scan::<String>(&mut connection)
                .unwrap()
                .collect();
        keys.unwrap()
    }

    pub async fn engine(&self, policy: Policy) -> Engine<RedisStore> {
        engine_on(&RedisEndpoint::server(self.url()), policy).await
    }

    /// Moves this server's clock of expiry `by` ahead, without waiting: every key's time to
    /// live is shortened by `by`, and the keys that would have expired meanwhile are deleted.
    pub fn advance(&self, by: Duration) {
        let by = by.as_millis() as i64;
        let mut connection = self.connection();
        for key in self.keys() {
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut connection).unwrap();
            if ttl < 0 {
                continue;
            }
            let command = if ttl <= by {
                redis::cmd("DEL").arg(&key).clone()
            } else {
                redis::cmd("PEXPIRE").arg(&key).arg(ttl - by).clone()
            };
            let _: i64 = command.query(&mut connection).unwrap();
        }
    }
}

async fn engine_on(endpoint: &RedisEndpoint, policy: Policy) -> Engine<RedisStore> {
    let store = RedisStore::connect(
        endpoint,
        Keyspace::new("lockout").unwrap(),
        RedisOptions::default(),
    )
    .await
    .expect("connects to the test's Redis");
    Engine::new(store, policy)
}

/// A throwaway Redis Cluster: 3 primaries (or more), each with `replicas` replicas, made with
/// `redis-cli --cluster create`, ready (`cluster_state:ok` everywhere) when `start` returns.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(replicas: usize) -> Self {
        Self::create(3, replicas, Setup::default(), &[])
    }

    /// A cluster of `primaries` primaries (at least 3) without replicas.
    pub fn with_primaries(primaries: usize) -> Self {
        Self::create(primaries, 0, Setup::default(), &[])
    }

    /// A cluster of nodes run with `setup` made cluster nodes, created by `redis-cli cli_args`.
    fn create(primaries: usize, replicas: usize, mut setup: Setup, cli_args: &[String]) -> Self {
        setup.extra.extend(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
            ]
            .map(String::from),
        );
        let nodes: Vec<RedisServer> = (0..primaries * (1 + replicas))
            .map(|_| RedisServer::launch(setup.clone()))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(cli_args)
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli must be installed (.ci/run installs redis-tools)");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// Polls every node until it reports `cluster_state:ok`, and every replica until it is in
    /// sync with its primary (a replica that never synced cannot take over).
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            loop {
                let mut connection = node.connection();
                let cluster: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut connection)
                    .unwrap();
                let replication: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut connection)
                    .unwrap();
                let synced = replication.contains("role:master")
                    || replication.contains("master_link_status:up");
                if cluster.contains("cluster_state:ok") && synced {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster not ok: {cluster}\n{replication}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .map(RedisServer::url)
            .collect()
    }

    pub fn endpoint(&self) -> RedisEndpoint {
        RedisEndpoint::cluster(self.seeds())
    }

    /// A cluster connection for inspecting what the engine wrote.
    pub fn connection(&self) -> redis::cluster::ClusterConnection {
        let mut client = redis::cluster::ClusterClientBuilder::new(self.seeds());
        if let Some(certificates) = &self.nodes[0].setup.tls {
            client = client.certs(certificates.clone());
        }
        client
            .build()
            .unwrap()
            .get_connection()
            .expect("the test's cluster answers")
    }

    /// The nodes that are primaries now.
    pub fn primaries(&self) -> Vec<&RedisServer> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .filter(|node| {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut node.connection())
                    .unwrap();
                info.contains("role:master")
            })
            .collect()
    }

    /// The primary serving `key` now, as the cluster itself says.
    pub fn primary_of(&mut self, key: &str) -> &mut RedisServer {
        let mut seed = self
            .nodes
            .iter()
            .find(|node| node.is_running())
            .unwrap()
            .connection();
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut seed)
            .unwrap();
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut seed).unwrap();
        let port: u16 = nodes
            .lines()
            .find(|line| {
                let flags = line.split_whitespace().nth(2).unwrap_or_default();
                flags.contains("master") && !flags.contains("fail") && owns(line, slot)
            })
            .and_then(|line| {
                line.split_whitespace()
                    .nth(1)?
                    .split(['@', ':'])
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .expect("some primary owns the slot");
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap()
    }

    pub async fn engine(&self, policy: Policy) -> Engine<RedisStore> {
        engine_on(&self.endpoint(), policy).await
    }

    /// Every key on every primary.
    pub fn keys(&self) -> Vec<String> {
        self.primaries()
            .iter()
            .flat_map(|node| node.keys())
            .collect()
    }

    /// `RedisServer::advance` on every primary.
    pub fn advance(&self, by: Duration) {
        for node in self.primaries() {
            node.advance(by);
        }
    }
}

/// Whether a CLUSTER NODES line lists `slot` among its ranges (`0-5460 5462 ...`).
fn owns(line: &str, slot: u16) -> bool {
    line.split_whitespace()
        .skip(8)
        .any(|range| match range.split_once('-') {
            Some((from, to)) => {
                from.parse::<u16>().is_ok_and(|from| from <= slot)
                    && to.parse::<u16>().is_ok_and(|to| slot <= to)
            }
            None => range.parse::<u16>() == Ok(slot),
        })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A policy with Axes' defaults but `limit` and `combinations`, written as in the TOML file:
/// `&[&["username"], &["ip"]]` is `["username", "ip"]`.
pub fn policy(limit: u32, combinations: &[&[&str]]) -> Policy {
    Policy {
        failure_limit: limit.try_into().unwrap(),
        combinations: combinations
            .iter()
            .map(|fields| {
                Combination::new(fields.iter().map(|name| Field::parse(name).unwrap())).unwrap()
            })
            .collect(),
        ..Policy::default()
    }
}

/// `lockout serve` in-process, on a free port, against `redis`.
pub struct TestService {
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestService {
    /// Starts the service on `redis` with the default configuration changed by `configure`.
    pub async fn start(redis: &RedisServer, configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(RedisEndpoint::server(redis.url()), configure).await
    }

    pub async fn start_on(endpoint: RedisEndpoint, configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(|config| {
            config.redis = Some(endpoint);
            configure(config);
        })
        .await
    }

    /// Starts the service with the default configuration (the in-process store) changed by
    /// `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let mut config =
            Config::load(None, &Overrides::default()).expect("the default configuration");
        configure(&mut config);
        let store = server::open_store(&config).await.unwrap();
        let service = Arc::new(Service::new(
            Engine::new(store, config.policy.clone()),
            &config,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, service, async {
            let _ = stop.await;
        }));
        TestService {
            url: format!("http://{address}"),
            shutdown: Some(shutdown),
            task,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Asks for a graceful shutdown and waits until the server has stopped.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.task).await.expect("the server task ends")
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A standalone Redis, a cluster, or the in-process store (on a clock the test moves), for
/// the behaviour tests that must hold on each.
pub enum Backend {
    Server(RedisServer),
    Cluster(RedisCluster),
    Memory {
        store: MemoryStore,
        clock: Arc<ManualClock>,
    },
}

/// What only a Redis backend can do: the tests that need it run on Redis only (`on_both!`).
const REDIS_ONLY: &str = "a Redis-only test ran on the in-process store: list it in on_both!";

impl Backend {
    pub fn server() -> Self {
        Backend::Server(RedisServer::start())
    }

    pub fn cluster() -> Self {
        Backend::Cluster(RedisCluster::start(0))
    }

    pub fn memory() -> Self {
        let clock = Arc::new(ManualClock::default());
        Backend::Memory {
            store: MemoryStore::with_clock(1_000_000, clock.clone()),
            clock,
        }
    }

    /// A new, empty backend of the same kind.
    pub fn another(&self) -> Self {
        match self {
            Backend::Server(_) => Backend::server(),
            Backend::Cluster(_) => Backend::cluster(),
            Backend::Memory { .. } => Backend::memory(),
        }
    }

    /// An engine on this backend; two engines of one backend share its state, as two
    /// processes on one Redis do.
    pub async fn engine(&self, policy: Policy) -> Engine<AnyStore> {
        let store: AnyStore = match self {
            Backend::Server(server) => server.engine(policy.clone()).await.store().clone().into(),
            Backend::Cluster(cluster) => {
                cluster.engine(policy.clone()).await.store().clone().into()
            }
            Backend::Memory { store, .. } => store.clone().into(),
        };
        Engine::new(store, policy)
    }

    /// Every key.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Backend::Server(server) => server.keys(),
            Backend::Cluster(cluster) => cluster.keys(),
            Backend::Memory { .. } => panic!("{REDIS_ONLY}"),
        }
    }

    /// Moves the clock of expiry `by` ahead (see `RedisServer::advance`): a test of cool-offs
    /// and lock ends waits for nothing.
    pub fn advance(&self, by: Duration) {
        match self {
            Backend::Server(server) => server.advance(by),
            Backend::Cluster(cluster) => cluster.advance(by),
            Backend::Memory { clock, .. } => clock.advance(by),
        }
    }

    /// PTTL of `key`, wherever it lives.
    pub fn pttl(&self, key: &str) -> i64 {
        let command = redis::cmd("PTTL").arg(key).clone();
        match self {
            Backend::Server(server) => command.query(&mut server.connection()).unwrap(),
            Backend::Cluster(cluster) => command.query(&mut cluster.connection()).unwrap(),
            Backend::Memory { .. } => panic!("{REDIS_ONLY}"),
        }
    }

    /// SCRIPT FLUSH on every node, as after a restart or a failover.
    pub fn flush_scripts(&self) {
        let flush = redis::cmd("SCRIPT").arg("FLUSH").clone();
        match self {
            Backend::Server(server) => flush.query::<()>(&mut server.connection()).unwrap(),
            Backend::Cluster(cluster) => {
                for node in cluster.primaries() {
                    flush.query::<()>(&mut node.connection()).unwrap();
                }
            }
            Backend::Memory { .. } => panic!("{REDIS_ONLY}"),
        }
    }
}

/// Runs each named `async fn name(backend: Backend)` once per backend named in brackets, as
/// tests `name::server`, `name::cluster`, `name::memory` (see `Backend`).
#[macro_export]
macro_rules! on_backends {
    ([$($backend:ident),*]) => {};
    ([$($backend:ident),*] $name:ident $(, $rest:ident)* $(,)?) => {
        mod $name {
            $(#[tokio::test]
            async fn $backend() {
                super::$name($crate::support::Backend::$backend()).await
            })*
        }
        $crate::on_backends!([$($backend),*] $($rest),*);
    };
}

/// The tests that must hold on one Redis and on a 3-primary cluster.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $crate::on_backends!([server, cluster] $($name),*);
    };
}

/// The tests that must hold on Redis and on the in-process store alike: the behaviour that
/// does not depend on where the state lives.
#[macro_export]
macro_rules! on_all {
    ($($name:ident),* $(,)?) => {
        $crate::on_backends!([server, cluster, memory] $($name),*);
    };
}

impl Backend {
    /// Calls of `command` (e.g. `pttl`) the servers have run, summed over every primary.
    pub fn command_calls(&self, command: &str) -> u64 {
        match self {
            Backend::Server(server) => server.command_calls(command),
            Backend::Cluster(cluster) => cluster
                .primaries()
                .into_iter()
                .map(|node| node.command_calls(command))
                .sum(),
            Backend::Memory { .. } => panic!("{REDIS_ONLY}"),
        }
    }
}

/// Polls `condition` every 10 ms until it holds; panics after `within`. For what happens in the
/// background (a flush, a pub/sub message), never to wait out a race.
pub async fn eventually(within: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl TestService {
    /// `times` failures of `ip` through `POST /v1/failure`; the last answer.
    pub async fn fail(
        &self,
        client: &reqwest::Client,
        ip: &str,
        times: usize,
    ) -> serde_json::Value {
        let mut answer = serde_json::Value::Null;
        for _ in 0..times {
            answer = json_of(
                client
                    .post(self.at("/v1/failure"))
                    .json(&serde_json::json!({ "ip": ip })),
            )
            .await;
        }
        answer
    }
}

/// A metric's value from the service's `/metrics`: the first line that starts with
/// `line_start`; 0 when the service has not counted it.
pub async fn metric(client: &reqwest::Client, service: &TestService, line_start: &str) -> f64 {
    let text = text_of(client.get(service.at("/metrics"))).await;
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

/// `POST url` with `body`: the status and JSON body of the answer.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The body of the answer to `request`, whatever its status.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// The JSON body of the answer to `request`, whatever its status.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The `lockout` binary, with none of the test environment's `LOCKOUT_` variables but `env`.
pub fn lockout_command(env: &[(&str, &str)]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lockout"));
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("LOCKOUT_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command
}

/// `lockout serve` as operators run it, a process of its own listening on `port`, its log
/// (stderr) kept; killed when dropped, so that a failing assertion leaves nothing running.
pub struct ServeProcess(Option<std::process::Child>);

impl ServeProcess {
    /// Runs `lockout serve args` with `env` and waits until `port` accepts connections.
    pub fn start(args: &[&str], env: &[(&str, &str)], port: u16) -> Self {
        Self::start_when(args, env, &format!("port {port}"), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    /// Runs `lockout serve args` with `env` and waits until the Unix socket `path` accepts
    /// connections.
    pub fn start_on_socket(args: &[&str], env: &[(&str, &str)], path: &std::path::Path) -> Self {
        Self::start_when(args, env, &path.display().to_string(), || {
            std::os::unix::net::UnixStream::connect(path).is_ok()
        })
    }

    fn start_when(
        args: &[&str],
        env: &[(&str, &str)],
        listening_on: &str,
        listening: impl Fn() -> bool,
    ) -> Self {
        let child = lockout_command(env)
            .arg("serve")
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the lockout binary runs");
        let serving = ServeProcess(Some(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening() {
            assert!(
                Instant::now() < deadline,
                "lockout serve did not listen on {listening_on}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        serving
    }

    /// Sends SIGTERM and answers how the process ended, with its log.
    pub fn terminate(mut self) -> std::process::Output {
        let child = self.0.take().expect("running");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        child.wait_with_output().unwrap()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client, built as lockout builds its own (see `lockout::tls::http_client_builder`).
pub fn http_client() -> reqwest::Client {
    lockout::tls::http_client_builder().build().unwrap()
}

/// The key of `kind` of the identity whose tag is `tag` (`ip=10.0.0.1`), under `prefix`.
pub fn key_of(prefix: &str, kind: lockout::keys::KeyKind, tag: &str) -> String {
    Keyspace::new(prefix)
        .unwrap()
        .key(kind, &lockout::Identity::from_tag(tag).unwrap())
}

/// `count` `lockout_started` events of IPs `10.0.x.y`, each locking for 1 ms: as many lock ends
/// due at once, spread over the shards.
pub fn lockouts_started(count: usize) -> Vec<lockout::event::Event> {
    (0..count)
        .map(|n| {
            let ip: std::net::IpAddr = format!("10.0.{}.{}", n / 256, n % 256).parse().unwrap();
            lockout::event::Event {
                kind: lockout::event::EventKind::LockoutStarted,
                ip: Some(ip),
                subject: format!("ip={ip}"),
                lockout: Some(Duration::from_millis(1)),
                lockouts: None,
                by: None,
                removed: None,
                reason: None,
            }
        })
        .collect()
}

/// An admin API call with the admin password `with_admin` sets: its status and JSON body.
pub async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = client
        .request(method, url)
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The admin password `admin` calls with.
pub fn with_admin(config: &mut lockout::Config) {
    config.admin.password = "s3cret".into();
}
