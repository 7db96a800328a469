//! Test fixtures: a throwaway `redis-server` per test, on a free loopback port, never the one
//! already running on 6379 (it fails loudly when `redis-server` is missing, and the server dies
//! with the fixture); and the HTTP service started in-process on a free port.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockout::config::{Config, Overrides};
use lockout::keys::Keyspace;
use lockout::policy::{Combination, Field, Policy};
use lockout::server::{self, Service};
use lockout::{Engine, RedisOptions, RedisStore};

pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn spawn_redis(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--enable-debug-command", "local"])
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
        for _ in 0..10 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("a temporary directory");
            let mut server = RedisServer {
                child: spawn_redis(port, dir.path()),
                port,
                dir,
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
            let client = redis::Client::open(self.url()).expect("valid URL");
            if let Ok(mut connection) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut connection).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Stops the server (as a crash would), keeping its port for `restart`.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_redis(self.port, self.dir.path());
        assert!(
            self.wait_until_ready(),
            "redis-server restarts on port {}",
            self.port
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain connection for inspecting what the engine wrote.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("valid URL")
            .get_connection()
            .expect("the test's redis-server answers")
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
        let store = RedisStore::connect(
            &self.url(),
            Keyspace::new("lockout").unwrap(),
            RedisOptions::default(),
        )
        .await
        .expect("connects to the test's redis-server");
        Engine::new(store, policy)
    }
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
    /// Starts the service with the default configuration changed by `configure`.
    pub async fn start(redis: &RedisServer, configure: impl FnOnce(&mut Config)) -> Self {
        let overrides = Overrides {
            redis_url: Some(redis.url()),
            ..Overrides::default()
        };
        let mut config = Config::load(None, &overrides).expect("the default configuration");
        configure(&mut config);
        let options = RedisOptions {
            connect_timeout: config.command_timeout,
            command_timeout: config.command_timeout,
        };
        let store = RedisStore::lazy(&config.redis_url, config.keys.clone(), options).unwrap();
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
