//! Without Redis: `lockout serve` with nothing configured runs on its in-process store, and the
//! CLI reaches that state through `--server`; with `on_store_error = "local"`, a service whose
//! Redis dies keeps counting and locking on its own, and writes what it counted to Redis when
//! Redis is back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockout::config::OnStoreError;
use lockout::keys::KeyKind;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::support::http_client;
use crate::support::{
    eventually, free_port, lockout_command, policy, text_of, RedisServer, ServeProcess, TestService,
};

async fn post(client: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn serve_with_no_configuration_and_no_redis_protects_logins() {
    let port = free_port();
    let admin = [
        ("LOCKOUT_ADMIN_PASSWORD", "s3cret"),
        ("LOCKOUT_ADMIN_TOKEN", "t0ken"),
    ];
    let serving = ServeProcess::start(&["--listen", &format!("127.0.0.1:{port}")], &admin, port);
    let server = format!("http://127.0.0.1:{port}");
    let client = http_client();
    let check = format!("{server}/v1/check");
    let attempt = json!({"ip": "203.0.113.7", "username": "alice"});

    assert_eq!(
        post(&client, &check, attempt.clone()).await,
        (StatusCode::OK, json!({"locked": false}))
    );
    for failures in 1..=3 {
        let (status, answer) =
            post(&client, &format!("{server}/v1/failure"), attempt.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["locked"], failures == 3, "{answer}");
        assert_eq!(answer["failures"][0]["count"], failures, "{answer}");
    }
    let (_, locked) = post(&client, &check, attempt.clone()).await;
    assert_eq!(locked["locked"], true, "{locked}");
    assert_eq!(locked["reason"], "lockout", "{locked}");
    assert_eq!(
        locked.get("degraded"),
        None,
        "the in-process store is no outage"
    );

    let direct = lockout_command(&admin).arg("list").output().unwrap();
    assert_eq!(direct.status.code(), Some(2));
    let said = String::from_utf8(direct.stderr).unwrap();
    assert!(
        said.contains("no Redis is set") && said.contains("--server"),
        "{said}"
    );

    let reset = lockout_command(&[("LOCKOUT_ADMIN_TOKEN", "t0ken")])
        .args(["--server", &server, "axes_reset_ip", "203.0.113.7"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(reset.stdout).unwrap(),
        "1 attempts removed.\n",
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert_eq!(
        post(&client, &check, attempt).await,
        (StatusCode::OK, json!({"locked": false}))
    );

    let log = String::from_utf8(serving.terminate().stderr).unwrap();
    assert!(
        log.contains("in-process store: this process alone, its state lost on restart"),
        "{log}"
    );
}

/// Failures from many addresses, sent until `stop`: every answer must be a 200; answers how many
/// there were.
async fn failures_until(service: String, stop: Arc<AtomicBool>) -> u64 {
    let client = http_client();
    let sent = AtomicU64::new(0);
    while !stop.load(Ordering::Relaxed) {
        let n = sent.fetch_add(1, Ordering::Relaxed);
        let body = json!({"ip": format!("10.1.{}.{}", n / 250 % 250, n % 250)});
        let response = client
            .post(format!("{service}/v1/failure"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    sent.into_inner()
}

#[tokio::test]
async fn with_local_insurance_an_attacker_locked_while_redis_is_down_stays_locked_after() {
    let mut redis = RedisServer::start();
    let command_timeout = Duration::from_millis(250);
    let service = TestService::start(&redis, |config| {
        config.on_store_error = OnStoreError::Local;
        config.command_timeout = command_timeout;
        config.policy = policy(3, &[&["ip"]]);
    })
    .await;
    let client = http_client();
    let attacker = json!({"ip": "198.51.100.66"});
    let (_, counted) = post(&client, &service.at("/v1/failure"), attacker.clone()).await;
    assert_eq!(counted.get("degraded"), None, "{counted}");

    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| tokio::spawn(failures_until(service.url.clone(), stop.clone())))
        .collect();
    redis.stop();
    // The outage is on (the logins in flight when Redis died may have been counted there, or
    // not: see `a_failure_whose_reply_was_lost_is_counted_once`); from now on logins go to the
    // local store without asking Redis.
    until_degraded(&client, &service, "192.0.2.50").await;
    for failure in 1..=3 {
        let (status, answer) = post(&client, &service.at("/v1/failure"), attacker.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["degraded"], true, "{answer}");
        assert_eq!(answer["store"], "local", "{answer}");
        assert_eq!(answer["locked"], failure == 3, "counted alone: {answer}");
    }
    let (_, refused) = post(&client, &service.at("/v1/check"), attacker.clone()).await;
    assert_eq!(
        (&refused["locked"], &refused["reason"], &refused["store"]),
        (&json!(true), &json!("lockout"), &json!("local")),
        "{refused}"
    );
    let (_, other) = post(
        &client,
        &service.at("/v1/check"),
        json!({"ip": "192.0.2.1"}),
    )
    .await;
    assert_eq!(other["locked"], false, "{other}");
    let metrics = text_of(client.get(service.at("/metrics"))).await;
    assert!(
        metrics.contains("lockout_degraded_answers_total{endpoint=\"failure\"}"),
        "local answers are counted as degraded: {metrics}"
    );

    // An empty Redis comes back (it keeps nothing on disk): the attacker's lock is written
    // through, and it stays refused.
    redis.restart();
    let lock_key = &crate::support::key_of("lockout", KeyKind::Lock, "ip=198.51.100.66");
    eventually(
        Duration::from_secs(10),
        "the local lock written to Redis",
        async || redis.keys().iter().any(|key| key == lock_key),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        assert!(task.await.unwrap() > 0);
    }
    let failures: u64 = redis::cmd("HGET")
        .arg(crate::support::key_of(
            "lockout",
            KeyKind::Attempt,
            "ip=198.51.100.66",
        ))
        .arg("n")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(
        failures, 4,
        "the 3 failures and the refused check of the outage"
    );
    let (_, refused) = post(&client, &service.at("/v1/check"), attacker).await;
    assert_eq!(refused["locked"], true, "{refused}");
    assert_eq!(
        refused.get("degraded"),
        None,
        "Redis answers again: {refused}"
    );
}

/// The count of failures Redis holds for `tag` (0 when it holds no record).
fn redis_failures(redis: &RedisServer, tag: &str) -> u64 {
    let count: Option<u64> = redis::cmd("HGET")
        .arg(crate::support::key_of("lockout", KeyKind::Attempt, tag))
        .arg("n")
        .query(&mut redis.connection())
        .unwrap();
    count.unwrap_or(0)
}

/// Checks `ip` until the answer comes from Redis again (the outage's recovery is done).
async fn until_recovered(client: &Client, service: &TestService, ip: &str) {
    until_check(client, service, ip, false).await;
}

/// Checks `ip` until the answer comes from the local store (an outage is on).
async fn until_degraded(client: &Client, service: &TestService, ip: &str) {
    until_check(client, service, ip, true).await;
}

async fn until_check(client: &Client, service: &TestService, ip: &str, degraded: bool) {
    eventually(Duration::from_secs(15), "the store answering", async || {
        let (_, answer) = post(client, &service.at("/v1/check"), json!({ "ip": ip })).await;
        answer.get("degraded").is_some() == degraded
    })
    .await;
}

#[tokio::test]
async fn with_local_insurance_a_failure_whose_reply_was_lost_is_counted_once() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        config.on_store_error = OnStoreError::Local;
        config.command_timeout = Duration::from_millis(250);
        config.policy = policy(10, &[&["ip"]]);
    })
    .await;
    let client = http_client();
    // Redis knows the scripts (after a restart, a script sent by its SHA would be refused).
    let (_, warm) = post(
        &client,
        &service.at("/v1/failure"),
        json!({"ip": "192.0.2.8"}),
    )
    .await;
    assert_eq!(warm["failures"][0]["count"], 1, "{warm}");
    let mut blocker = redis.connection();
    let busy = std::thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("2")
            .query::<()>(&mut blocker)
    });
    // Failures of new IPs until one finds Redis asleep: that one's script waits in Redis and
    // runs when it wakes, its reply long given up.
    let mut ips = Vec::new();
    loop {
        let ip = format!("10.9.0.{}", ips.len() + 1);
        let (status, answer) = post(&client, &service.at("/v1/failure"), json!({ "ip": ip })).await;
        assert_eq!(status, StatusCode::OK);
        ips.push(ip);
        if answer.get("degraded").is_some() {
            assert_eq!(answer["store"], "local", "{answer}");
            break;
        }
        assert!(ips.len() < 200, "Redis never slept");
    }
    for _ in 0..4 {
        let ip = format!("10.9.0.{}", ips.len() + 1);
        let (_, answer) = post(&client, &service.at("/v1/failure"), json!({ "ip": ip })).await;
        assert_eq!(answer["degraded"], true, "{answer}");
        ips.push(ip);
    }
    busy.join().unwrap().unwrap();
    until_recovered(&client, &service, "192.0.2.9").await;
    for ip in &ips {
        assert_eq!(
            redis_failures(&redis, &format!("ip={ip}")),
            1,
            "one failure of {ip}, counted once"
        );
    }
}

#[tokio::test]
async fn with_local_insurance_a_lock_seen_in_redis_stays_in_force_while_redis_stalls() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        config.on_store_error = OnStoreError::Local;
        config.command_timeout = Duration::from_millis(250);
        config.policy = policy(10, &[&["ip"]]);
    })
    .await;
    let client = http_client();
    // As Django sends every request: its Axes settings, and its site's scope (so the service's
    // lock cache never answers it).
    let django = |ip: &str| {
        json!({
            "ip": ip,
            "scope": "site-a",
            "policy": {
                "failure_limit": 2,
                "cooloff": "1h",
                "lockout_parameters": [["ip"]],
                "reset_cooloff_on_failure_during_lockout": false,
            },
        })
    };
    let attacker = django("198.51.100.23");
    for _ in 0..2 {
        post(&client, &service.at("/v1/failure"), attacker.clone()).await;
    }
    let (_, locked) = post(&client, &service.at("/v1/check"), attacker.clone()).await;
    assert_eq!(locked["locked"], true, "{locked}");
    assert_eq!(locked.get("store"), None, "answered by Redis: {locked}");

    let mut blocker = redis.connection();
    let busy = std::thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("5")
            .query::<()>(&mut blocker)
    });
    eventually(
        Duration::from_secs(15),
        "an answer from the local store",
        async || {
            let (_, answer) = post(&client, &service.at("/v1/check"), django("192.0.2.60")).await;
            answer.get("store").is_some()
        },
    )
    .await;
    for _ in 0..3 {
        let (_, refused) = post(&client, &service.at("/v1/check"), attacker.clone()).await;
        assert_eq!(
            (&refused["locked"], &refused["reason"], &refused["store"]),
            (&json!(true), &json!("lockout"), &json!("local")),
            "the lock seen in Redis stays in force: {refused}"
        );
        let retry_after = refused["retry_after_secs"].as_u64().unwrap();
        assert!(
            (1..=3600).contains(&retry_after),
            "what remains of the hour: {refused}"
        );
    }
    let (_, newcomer) = post(&client, &service.at("/v1/check"), django("192.0.2.61")).await;
    assert_eq!(
        (&newcomer["locked"], &newcomer["store"]),
        (&json!(false), &json!("local")),
        "{newcomer}"
    );
    busy.join().unwrap().unwrap();
}
