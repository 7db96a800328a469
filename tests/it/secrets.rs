//! No secret in help, logs or errors, any string a valid password, and an environment that
//! Kubernetes filled for a Service named `lockout` accepted, while a typo is still an error.

use std::process::Command;

use crate::support::{free_port, lockout_command, RedisServer, ServeProcess};

#[test]
fn help_never_shows_a_redis_password() {
    let env = [
        ("LOCKOUT_REDIS_URL", "redis://:hunter2@127.0.0.1:1"),
        ("LOCKOUT_REDIS_CLUSTER", "redis://:hunter3@127.0.0.1:2"),
    ];
    for args in [&["--help"][..], &["serve", "--help"], &["list", "--help"]] {
        let output = lockout_command(&env).args(args).output().unwrap();
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
    let output = lockout_command(&[("LOCKOUT_REDIS_URL", url)])
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pass=***"), "{stderr}");
    let url = format!("redis://app:hunter2@127.0.0.1:{port}");
    let output = lockout_command(&[("LOCKOUT_REDIS_URL", &url)])
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
    let serving = ServeProcess::start(
        &[],
        &[
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
        ],
        port,
    );
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
    let output = serving.terminate();
    let log = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{log}");
    for secret in ["hunter2", "0123456"] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
}

#[test]
fn a_misspelt_variable_is_still_an_error() {
    let output = lockout_command(&[("LOCKOUT_POLICY_FAILURE_LIMT", "5")])
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
