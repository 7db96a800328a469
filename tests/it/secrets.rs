//! No secret in help, logs or errors, any string a valid password, and an environment that
//! Kubernetes filled for a Service named `lockout` accepted, while a typo is still an error.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, RedisServer};

/// The `lockout` binary with no `LOCKOUT_` variable but `env`.
fn lockout(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lockout"));
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("LOCKOUT_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command
}

#[test]
fn help_never_shows_a_redis_password() {
    let env = [
        ("LOCKOUT_REDIS_URL", "redis://:hunter2@127.0.0.1:1"),
        ("LOCKOUT_REDIS_CLUSTER", "redis://:hunter3@127.0.0.1:2"),
    ];
    for args in [&["--help"][..], &["serve", "--help"], &["list", "--help"]] {
        let output = lockout(&env).args(args).output().unwrap();
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("LOCKOUT_REDIS_URL"), "{args:?}: {help}");
        assert!(
            !help.contains("hunter2") && !help.contains("hunter3"),
            "{args:?}: {help}"
        );
    }
}

#[test]
fn an_unreachable_redis_is_named_without_its_password() {
    let port = free_port();
    let url = "redis+unix:///nonexistent/redis.sock?pass=hunter2&db=0";
    let output = lockout(&[("LOCKOUT_REDIS_URL", url)])
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pass=***"), "{stderr}");
    let url = format!("redis://app:hunter2@127.0.0.1:{port}");
    let output = lockout(&[("LOCKOUT_REDIS_URL", &url)])
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("redis://app:***@127.0.0.1"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn numeric_passwords_and_kubernetes_variables_are_taken_as_they_are() {
    let redis = RedisServer::start();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("hunter2")
        .query::<()>(&mut redis.connection())
        .unwrap();
    let port = free_port();
    let redis_url = format!("redis://:hunter2@127.0.0.1:{}", redis.port());
    let listen = format!("127.0.0.1:{port}");
    let child = lockout(&[
        ("LOCKOUT_REDIS_URL", &redis_url),
        ("LOCKOUT_LISTEN", &listen),
        ("LOCKOUT_ADMIN_PASSWORD", "0123456"),
        ("LOCKOUT_ADMIN_TOKEN", "1e9"),
        ("LOCKOUT_LOG", "debug"),
        // What Kubernetes sets for a Service named "lockout".
        ("LOCKOUT_PORT", "tcp://10.96.0.12:8080"),
        ("LOCKOUT_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
        ("LOCKOUT_PORT_8080_TCP_ADDR", "10.96.0.12"),
        ("LOCKOUT_PORT_8080_TCP_PORT", "8080"),
        ("LOCKOUT_PORT_8080_TCP_PROTO", "tcp"),
        ("LOCKOUT_SERVICE_HOST", "10.96.0.12"),
        ("LOCKOUT_SERVICE_PORT", "8080"),
        ("LOCKOUT_SERVICE_PORT_HTTP", "8080"),
    ])
    .arg("serve")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "lockout serve did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut serving = KillOnDrop(Some(child));
    let status = |credentials: [&str; 2]| {
        let output = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(credentials)
            .arg(format!("http://{listen}/v1/attempts"))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(
        status(["-u", "admin:0123456"]),
        "200",
        "the password as written"
    );
    assert_eq!(
        status(["-H", "Authorization: Bearer 1e9"]),
        "200",
        "the token as written"
    );
    let child = serving.0.take().expect("running");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{log}");
    for secret in ["hunter2", "0123456"] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
}

/// A `lockout serve` that a failing assertion must not leave running.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_misspelt_variable_is_still_an_error() {
    let output = lockout(&[("LOCKOUT_POLICY_FAILURE_LIMT", "5")])
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("policy.failure_limt") && stderr.contains("LOCKOUT_POLICY_FAILURE_LIMT"),
        "{stderr}"
    );
}
