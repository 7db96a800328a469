//! Redis over TLS, with certificates made for the test: the CLI and the service with a custom
//! CA, with mutual TLS, and a cluster over TLS; a client without the CA or without its
//! certificate is refused with a clear error, exit status 1, within the connect timeout; the
//! CLI through Sentinels over TLS, before and after a failover.

use std::process::Output;
use std::time::{Duration, Instant};

use lockout::{Attempt, RedisEndpoint, RedisTls, Target};

use crate::support::sentinel::{SentinelGroup, MASTER};
use crate::support::tls::{ClientAuth, TestCertificates};
use crate::support::{free_port, lockout_command, policy, RedisCluster, RedisServer, ServeProcess};

fn path(file: &std::path::Path) -> String {
    file.display().to_string()
}

/// `lockout args` with `env`; it must end within 15 s.
fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    let started = Instant::now();
    let output = lockout_command(env).args(args).output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{args:?} took {:?}",
        started.elapsed()
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_cli_with_a_custom_ca_and_with_mutual_tls() {
    let certs = TestCertificates::make();
    let (ca, cert, key) = (
        path(&certs.ca),
        path(&certs.client_cert),
        path(&certs.client_key),
    );
    let optional = RedisServer::start_tls(&certs, ClientAuth::Optional);
    let url = optional.url();
    let with_ca = [
        ("LOCKOUT_REDIS_URL", url.as_str()),
        ("LOCKOUT_REDIS_TLS_CA", ca.as_str()),
    ];
    let pinged = run(&with_ca, &["ping"]);
    assert!(pinged.status.success(), "{}", stdout(&pinged));
    assert!(
        stdout(&pinged).contains("tls         yes"),
        "{}",
        stdout(&pinged)
    );
    for args in [&["fail", "--ip", "10.0.0.1"][..], &["list"]] {
        let output = run(&with_ca, args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    assert!(stdout(&run(&with_ca, &["list"])).contains("ip=10.0.0.1"));
    let written: Vec<String> = optional
        .keys()
        .into_iter()
        // What `ping` leaves: its probe's keys, and its scope in the lock ends' registry.
        .filter(|key| !key.starts_with("lockout:scope:_ping:") && key != "lockout:lock_end_scopes")
        .collect();
    assert_eq!(written.len(), 2, "a record and its log entry: {written:?}");

    let required = RedisServer::start_tls(&certs, ClientAuth::Required);
    let url = required.url();
    let mutual = [
        ("LOCKOUT_REDIS_URL", url.as_str()),
        ("LOCKOUT_REDIS_TLS_CA", ca.as_str()),
        ("LOCKOUT_REDIS_TLS_CERT", cert.as_str()),
        ("LOCKOUT_REDIS_TLS_KEY", key.as_str()),
    ];
    let pinged = run(&mutual, &["ping"]);
    assert!(pinged.status.success(), "{}", stdout(&pinged));
    assert!(
        stdout(&pinged).contains("client_certificate: true"),
        "{}",
        stdout(&pinged)
    );
}

#[test]
fn without_the_ca_or_the_client_certificate_the_cli_says_why_and_exits_1() {
    let certs = TestCertificates::make();
    let server = RedisServer::start_tls(&certs, ClientAuth::Required);
    let url = server.url();
    let (ca, other_ca) = (path(&certs.ca), path(&certs.other_ca));
    for (env, why) in [
        (
            vec![("LOCKOUT_REDIS_URL", url.as_str())],
            "set redis_tls_ca",
        ),
        (
            vec![
                ("LOCKOUT_REDIS_URL", url.as_str()),
                ("LOCKOUT_REDIS_TLS_CA", other_ca.as_str()),
            ],
            "set redis_tls_ca",
        ),
        (
            vec![
                ("LOCKOUT_REDIS_URL", url.as_str()),
                ("LOCKOUT_REDIS_TLS_CA", ca.as_str()),
            ],
            "requires a client certificate: set redis_tls_cert and redis_tls_key",
        ),
    ] {
        let output = run(&env, &["list"]);
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        let said = stderr(&output);
        assert_eq!(said.lines().count(), 1, "one line: {said}");
        assert!(
            said.starts_with("lockout: Redis at rediss://127.0.0.1:"),
            "{said}"
        );
        assert!(said.contains(why), "{env:?}: {said}");
    }
}

#[test]
fn the_service_over_mutual_tls_with_its_lock_cache() {
    let certs = TestCertificates::make();
    let server = RedisServer::start_tls(&certs, ClientAuth::Required);
    let (url, ca, cert, key) = (
        server.url(),
        path(&certs.ca),
        path(&certs.client_cert),
        path(&certs.client_key),
    );
    let env = [
        ("LOCKOUT_REDIS_URL", url.as_str()),
        ("LOCKOUT_REDIS_TLS_CA", ca.as_str()),
        ("LOCKOUT_REDIS_TLS_CERT", cert.as_str()),
        ("LOCKOUT_REDIS_TLS_KEY", key.as_str()),
    ];
    let port = free_port();
    let serving = ServeProcess::start(&["--listen", &format!("127.0.0.1:{port}")], &env, port);
    let post = |path: &str| {
        let output = std::process::Command::new("curl")
            .args(["-s", "-H", "Content-Type: application/json"])
            .args(["-d", r#"{"ip":"10.0.0.9"}"#])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    for _ in 0..3 {
        let answer = post("/v1/failure");
        assert!(!answer.contains("degraded"), "{answer}");
    }
    assert!(post("/v1/check").contains(r#""locked":true"#));
    let reset = run(&env, &["reset", "--ip", "10.0.0.9"]);
    assert!(reset.status.success(), "{}", stderr(&reset));
    let log = String::from_utf8(serving.terminate().stderr).unwrap();
    assert!(
        !log.contains("lock cache off"),
        "the reset channel over TLS: {log}"
    );
}

#[tokio::test]
async fn a_cluster_over_tls() {
    let certs = TestCertificates::make();
    let cluster = RedisCluster::start_tls(0, &certs);
    let tls = RedisTls::from_pem(Some(std::fs::read(&certs.ca).unwrap()), None).unwrap();
    let endpoint = RedisEndpoint::cluster(cluster.seeds()).with_tls(tls);
    let store = lockout::RedisStore::connect(
        &endpoint,
        lockout::keys::Keyspace::new("lockout").unwrap(),
        lockout::RedisOptions::default(),
    )
    .await
    .unwrap();
    let engine = lockout::Engine::new(store, policy(2, &[&["ip"]]));
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1"] {
        engine
            .fail(&Attempt::parse(ip, None, None, None).unwrap())
            .await
            .unwrap();
    }
    let locked = engine.list(&Target::All, true).await.unwrap();
    assert_eq!(locked.len(), 1);
    assert_eq!(
        engine
            .reset(&Target::All, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        3
    );
    assert_eq!(engine.store().primaries().await.unwrap().len(), 3);
}

#[test]
fn through_sentinels_over_tls() {
    let certs = TestCertificates::make();
    let group = SentinelGroup::start_tls(&certs);
    let sentinels = group.sentinel_urls();
    assert!(
        sentinels.iter().all(|url| url.starts_with("rediss://")),
        "{sentinels:?}"
    );
    let (sentinels, ca, cert, key) = (
        sentinels.join(","),
        path(&certs.ca),
        path(&certs.client_cert),
        path(&certs.client_key),
    );
    let env = [
        ("LOCKOUT_REDIS_URL", "rediss://primary"),
        ("LOCKOUT_REDIS_SENTINEL", sentinels.as_str()),
        ("LOCKOUT_REDIS_SENTINEL_MASTER", MASTER),
        ("LOCKOUT_REDIS_TLS_CA", ca.as_str()),
        ("LOCKOUT_REDIS_TLS_CERT", cert.as_str()),
        ("LOCKOUT_REDIS_TLS_KEY", key.as_str()),
    ];
    let pinged = run(&env, &["ping"]);
    let said = stdout(&pinged);
    assert!(pinged.status.success(), "{said}{}", stderr(&pinged));
    let primary = format!("Sentinel primary 127.0.0.1:{}", group.primary_port());
    assert!(said.contains(&primary), "{said}");
    assert!(said.contains("tls         yes"), "{said}");

    let failed = run(&env, &["fail", "--ip", "10.0.0.1"]);
    assert!(failed.status.success(), "{}", stderr(&failed));
    let listed = run(&env, &["list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("ip=10.0.0.1"),
        "{}",
        stdout(&listed)
    );
    let written: Vec<String> = group
        .server(group.primary_port())
        .keys()
        .into_iter()
        // What `ping` leaves: its probe's keys, and its scope in the lock ends' registry.
        .filter(|key| !key.starts_with("lockout:scope:_ping:") && key != "lockout:lock_end_scopes")
        .collect();
    assert_eq!(written.len(), 2, "a record and its log entry: {written:?}");

    let new = group.failover();
    assert_eq!(group.primary_port(), new);
    let listed = run(&env, &["list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("ip=10.0.0.1"),
        "from the new primary: {}",
        stdout(&listed)
    );
    let failed = run(&env, &["--json", "fail", "--ip", "10.0.0.1"]);
    assert!(failed.status.success(), "{}", stderr(&failed));
    let answer: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(
        answer["failures"],
        serde_json::json!([{"parameters": ["ip"], "count": 2}]),
        "{answer}"
    );
}
