//! Test fixture: a throwaway `redis-server` per test, on a free loopback port, never the one
//! already running on 6379. It fails loudly when `redis-server` is missing, and the server dies
//! with the fixture.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockout::keys::Keyspace;
use lockout::policy::{Combination, Field, Policy};
use lockout::{Engine, RedisOptions, RedisStore};

pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        for _ in 0..10 {
            if let Some(server) = Self::try_start() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port after 10 tries");
    }

    /// `None` when the port was taken between choosing it and binding it.
    fn try_start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        server.wait_until_ready().then_some(server)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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
