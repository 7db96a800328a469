//! No secret in help, logs or errors, any string a valid password, and an environment that
//! Kubernetes filled for a Service named `lockout`, or an env file shared with the Django site,
//! accepted, while a typo is still an error.

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

/// The Django integration's settings, as a shared env file (Docker Compose `env_file`) gives
/// them to both containers.
const DJANGO_ENV: [(&str, &str); 6] = [
    ("LOCKOUT_URL", "http://lockout:8080"),
    ("LOCKOUT_TIMEOUT", "0.5"),
    ("LOCKOUT_ON_ERROR", "allow"),
    ("LOCKOUT_SCOPE", "climweb"),
    ("LOCKOUT_ADMIN_TOKEN", "an-admin-t0ken"),
    ("LOCKOUT_API_TOKEN", "an-api-t0ken"),
];

#[test]
fn one_env_file_serves_the_django_site_and_the_service() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut env = DJANGO_ENV.to_vec();
    env.push(("LOCKOUT_LISTEN", &listen));
    let serving = ServeProcess::start(&[], &env, port);
    let status = |path: &str, token: &str| {
        let output = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["-H", "Content-Type: application/json"])
            .args(["--data", r#"{"ip":"10.0.0.1"}"#])
            .arg(format!("http://{listen}{path}"))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    // The tokens mean on the service what they mean to the site.
    assert_eq!(status("/v1/check", "an-api-t0ken"), "200");
    assert_eq!(status("/v1/check", "an-admin-t0ken"), "401");
    // The CLI too: through the service's admin API with the same admin token.
    let output = lockout_command(&env)
        .args(["--server", &format!("http://{listen}"), "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let output = serving.terminate();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A typo in one of lockout's own names is still an error, for the CLI and the service.
    let mut typo = DJANGO_ENV.to_vec();
    typo.push(("LOCKOUT_REDIS_ULR", "redis://127.0.0.1:1"));
    for args in [&["list"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let output = lockout_command(&typo).args(args).output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("redis_ulr: unknown field")
                && stderr.contains("(environment variable LOCKOUT_REDIS_ULR)"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_secret_of_the_wrong_type_is_named_without_its_value() {
    for (variable, value, says, secret) in [
        (
            "LOCKOUT_WEBHOOKS",
            r#"[{"url": "http://hooks.example", "secret": "hunter2"#,
            "webhooks: invalid string, expected a sequence",
            "hunter2",
        ),
        (
            "LOCKOUT_WEBHOOKS",
            r#"[{"url": "http://hooks.example", "secret": 1234567890123456}]"#,
            "webhooks.0.secret: invalid integer, expected a string",
            "1234567890123456",
        ),
        (
            "LOCKOUT_API_TOKENS",
            r#"{"token": "hunter2", "scopes": ["site-a"]}"#,
            "api_tokens: invalid map, expected a sequence",
            "hunter2",
        ),
        (
            "LOCKOUT_DEVICES_SECRET",
            "hunter2",
            "devices.secret: must be at least 16 bytes",
            "hunter2",
        ),
    ] {
        let output = lockout_command(&[(variable, value)])
            .arg("list")
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains(secret), "{stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lockout.toml");
    std::fs::write(&file, "[admin]\npassword = 1234567\n").unwrap();
    let output = lockout_command(&[])
        .args(["--config", file.to_str().unwrap(), "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("admin.password: invalid integer, expected a string"),
        "{stderr}"
    );
    assert!(!stderr.contains("1234567"), "{stderr}");
}
