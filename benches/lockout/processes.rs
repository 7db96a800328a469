//! The processes a run starts: redis-server (alone or as a cluster) and `lockout serve`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::meter::redis_connection;
use crate::PREFIX;

/// A child process killed when dropped, with the directory it may have written to.
pub(crate) struct Process(pub(crate) Child, pub(crate) Option<std::path::PathBuf>);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(dir) = &self.1 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn start_redis(extra: &[&str]) -> (Process, u16) {
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

pub(crate) fn start_cluster() -> (Vec<Process>, Vec<String>) {
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

/// `lockout serve` on the Redis that `redis_env` (`LOCKOUT_REDIS_*`) names, with a policy,
/// until dropped.
pub(crate) fn start_service(redis_env: &[(&str, String)], policy_json: &str) -> (Process, u16) {
    start_service_with(redis_env, policy_json, &[])
}

/// `start_service` with more environment (an admin token, say).
pub(crate) fn start_service_with(
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
pub(crate) fn start_service_on_socket(
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
pub(crate) fn spawn_service(
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
