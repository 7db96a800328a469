//! With `on_store_error = "local"`: a service whose Redis dies or stalls keeps counting and
//! locking on its own, keeps the locks it saw in Redis, and writes what it counted to Redis when
//! Redis is back: once, after resets made meanwhile elsewhere, without holding logins back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockout::config::OnStoreError;
use lockout::keys::{KeyKind, Keyspace, RESET_GUARD};
use lockout::RedisEndpoint;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::proxy::Proxy;
use crate::support::{
    admin, eventually, http_client, policy, post, text_of, with_admin, RedisServer, TestService,
};

/// A service on `redis` with local insurance, a 250 ms command timeout, and a policy of
/// `failure_limit` failures per IP.
async fn insured(redis: &RedisServer, failure_limit: u32) -> TestService {
    TestService::start(redis, |config| {
        config.on_store_error = OnStoreError::Local;
        config.command_timeout = Duration::from_millis(250);
        config.policy = policy(failure_limit, &[&["ip"]]);
    })
    .await
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
    let service = insured(&redis, 3).await;
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
    until_recovered(&client, &service, "192.0.2.51").await;
    let lock_key = crate::support::key_of("lockout", KeyKind::Lock, "ip=198.51.100.66");
    assert!(
        redis.keys().contains(&lock_key),
        "the local lock written to Redis"
    );
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
    let service = insured(&redis, 10).await;
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
    let service = insured(&redis, 10).await;
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

/// Two instances on one Redis, the first behind a proxy that can cut it off (see `Proxy`), both
/// with local insurance and `configure` over a policy of 3 failures per IP for 30 minutes.
async fn two_instances(
    redis: &RedisServer,
    configure: impl Fn(&mut lockout::Config),
) -> (Proxy, TestService, TestService) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy::start(listener, redis.port()).await;
    let setup = |config: &mut lockout::Config| {
        config.on_store_error = OnStoreError::Local;
        config.command_timeout = Duration::from_millis(250);
        config.policy = policy(3, &[&["ip"]]);
        with_admin(config);
        configure(config);
    };
    let behind_proxy = RedisEndpoint::server(format!("redis://127.0.0.1:{}", proxy.port));
    let cut_off = TestService::start_on(behind_proxy, setup).await;
    let healthy = TestService::start(redis, setup).await;
    (proxy, cut_off, healthy)
}

#[tokio::test]
async fn with_local_insurance_a_reset_made_elsewhere_during_an_outage_is_not_undone() {
    let redis = RedisServer::start();
    let (proxy, cut_off, healthy) = two_instances(&redis, |_| {}).await;
    let client = http_client();
    let (attacker, bystander) = ("198.51.100.7", "203.0.113.5");
    let failure = |ip: &str| json!({ "ip": ip });
    let (_, counted) = post(&client, &cut_off.at("/v1/failure"), failure(attacker)).await;
    assert_eq!(counted.get("degraded"), None, "{counted}");

    proxy.sever();
    until_degraded(&client, &cut_off, "192.0.2.70").await;
    for _ in 0..3 {
        post(&client, &cut_off.at("/v1/failure"), failure(attacker)).await;
    }
    for _ in 0..2 {
        post(&client, &cut_off.at("/v1/failure"), failure(bystander)).await;
    }
    let (_, locked) = post(&client, &cut_off.at("/v1/check"), failure(attacker)).await;
    assert_eq!(
        (&locked["locked"], &locked["store"]),
        (&json!(true), &json!("local"))
    );
    // An operator resets the attacker's IP through the instance that reaches Redis.
    let (status, removed) = admin(
        &client,
        Method::DELETE,
        healthy.at(&format!("/v1/attempts?ip={attacker}")),
    )
    .await;
    assert_eq!((status, &removed), (StatusCode::OK, &json!({"removed": 1})));
    // The outage outlasts the short guard against a lock cache's late refusals.
    let marker = Keyspace::new("lockout")
        .unwrap()
        .reset_marker(&format!("ip={attacker}"));
    eventually(
        Duration::from_secs(10),
        "the reset older than RESET_GUARD",
        async || {
            let mut connection = redis.connection();
            let life: Option<u64> = redis::cmd("GET")
                .arg(&marker)
                .query(&mut connection)
                .unwrap();
            let left: i64 = redis::cmd("PTTL")
                .arg(&marker)
                .query(&mut connection)
                .unwrap();
            life.is_none_or(|life| life as i64 - left > RESET_GUARD.as_millis() as i64)
        },
    )
    .await;

    proxy.mend();
    until_recovered(&client, &cut_off, "192.0.2.71").await;
    assert_eq!(
        redis_failures(&redis, &format!("ip={bystander}")),
        2,
        "what the outage counted is written"
    );
    assert_eq!(
        redis_failures(&redis, &format!("ip={attacker}")),
        0,
        "counted before the reset: dropped"
    );
    for instance in [&cut_off, &healthy] {
        let (_, answer) = post(&client, &instance.at("/v1/check"), failure(attacker)).await;
        assert_eq!(answer["locked"], false, "the reset stands: {answer}");
        assert_eq!(answer.get("degraded"), None, "{answer}");
    }
}

#[tokio::test]
async fn with_local_insurance_a_success_during_an_outage_clears_what_redis_counted_before() {
    let redis = RedisServer::start();
    let (proxy, cut_off, healthy) = two_instances(&redis, |config| {
        config.policy.reset_on_success = true;
        config.policy.combinations = policy(3, &[&["ip"], &["username"]]).combinations;
    })
    .await;
    let client = http_client();
    let alice = json!({"ip": "192.0.2.80", "username": "alice"});
    for _ in 0..2 {
        post(&client, &healthy.at("/v1/failure"), alice.clone()).await;
    }
    assert_eq!(redis_failures(&redis, "username=alice"), 2);

    proxy.sever();
    until_degraded(&client, &cut_off, "192.0.2.81").await;
    let (status, answer) = post(&client, &cut_off.at("/v1/success"), alice.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // After the success: a failure the outage counts, which Redis gets on top of nothing.
    let (_, failed) = post(&client, &cut_off.at("/v1/failure"), alice.clone()).await;
    assert_eq!(
        (&failed["failures"][0]["count"], &failed["store"]),
        (&json!(1), &json!("local")),
        "{failed}"
    );

    proxy.mend();
    until_recovered(&client, &cut_off, "192.0.2.82").await;
    assert_eq!(
        redis_failures(&redis, "username=alice"),
        1,
        "the two failures before the success are cleared; the one after it stands"
    );
}

/// A check's answer and how long it took.
async fn timed_check(client: &Client, service: &TestService, ip: &str) -> (Value, Duration) {
    let started = Instant::now();
    let (_, answer) = post(client, &service.at("/v1/check"), json!({ "ip": ip })).await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn with_local_insurance_a_recovery_holds_no_login_past_the_command_timeout() {
    let redis = RedisServer::start();
    let command_timeout = Duration::from_millis(500);
    let (proxy, cut_off, _healthy) = two_instances(&redis, |config| {
        config.command_timeout = command_timeout;
    })
    .await;
    let client = http_client();
    proxy.sever();
    until_degraded(&client, &cut_off, "192.0.2.90").await;
    // Many identities counted alone: writing them to Redis takes many round trips.
    let identities = 30_000;
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (client, url) = (client.clone(), cut_off.at("/v1/failure"));
            tokio::spawn(async move {
                for n in (sender..identities).step_by(4) {
                    let ip = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
                    let (status, _) = post(&client, &url, json!({ "ip": ip })).await;
                    assert_eq!(status, StatusCode::OK);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }

    proxy.mend();
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    loop {
        n += 1;
        let (answer, took) = timed_check(&client, &cut_off, &format!("192.0.2.{}", n % 200)).await;
        slowest = slowest.max(took);
        if answer.get("degraded").is_none() {
            break;
        }
        assert!(n < 100_000, "no recovery");
    }
    assert!(
        slowest < command_timeout,
        "a check waited {slowest:?} for the recovery"
    );
    let written: usize = redis
        .keys()
        .iter()
        .filter(|key| key.starts_with("lockout:attempt:"))
        .count();
    assert_eq!(written, identities as usize, "every identity written");
}
