//! Password spraying: one IP failing with many usernames is locked at the spraying limit, also
//! under Climweb's `[["username","ip_address"]]` where no IP identity is counted; on one server,
//! a cluster (the IP's spraying keys in one slot with its identities) and the in-process store,
//! and through the service (the check's `"reason": "spraying"`, a request's policy, the
//! metric, the listing and the admin reset).

use std::num::NonZeroU32;
use std::time::Duration;

use lockout::event::{EventCursor, EventKind};
use lockout::keys::KeyKind;
use lockout::policy::{IpList, Repeat, Spraying};
use lockout::store::Store;
use lockout::{AnyStore, Attempt, Engine, Identity, LockReason, Policy, Target, Verdict};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    admin, eventually, http_client, json_of, lockout_command, policy, text_of, with_admin, Backend,
    RedisServer, TestService,
};

crate::on_all!(
    a_spraying_run_locks_the_ip_at_the_limit_and_no_other,
    the_same_username_again_is_no_spraying,
    the_count_restarts_after_the_window,
    a_reset_of_the_ip_clears_its_spraying_and_a_success_does_not,
    allow_and_deny_lists_still_apply,
    a_spraying_lock_that_runs_out_is_told,
    observe_mode_counts_spraying_and_enforcing_locks_at_the_next_failure,
);

crate::on_both!(every_spraying_key_has_a_ttl);

const LIMIT: u32 = 10;
const WINDOW: Duration = Duration::from_secs(600);

/// Climweb's policy (`[["username","ip_address"]]`, Axes' limit 5) with spraying counted.
fn climweb() -> Policy {
    spraying(policy(5, &[&["ip", "username"]]), LIMIT, WINDOW)
}

fn spraying(policy: Policy, limit: u32, window: Duration) -> Policy {
    Policy {
        spraying: Some(Spraying {
            limit: NonZeroU32::new(limit).unwrap(),
            window,
        }),
        ..policy
    }
}

fn attempt(ip: &str, username: &str) -> Attempt {
    Attempt::parse(ip, Some(username), None, None).unwrap()
}

fn reason(verdict: &Verdict) -> Option<LockReason> {
    match verdict {
        Verdict::Locked(lockout) => Some(lockout.reason),
        Verdict::Allowed | Verdict::WouldLock(_) => None,
    }
}

/// Checks then fails `usernames` from `ip`, as a login page does; the number of the first
/// failure answered locked (1 for the first), if any.
async fn spray(
    engine: &Engine<AnyStore>,
    ip: &str,
    usernames: impl IntoIterator<Item = String>,
) -> Option<usize> {
    for (n, username) in usernames.into_iter().enumerate() {
        let attempt = attempt(ip, &username);
        assert_eq!(engine.check(&attempt).await.unwrap(), Verdict::Allowed);
        if engine.fail(&attempt).await.unwrap().locked {
            return Some(n + 1);
        }
    }
    None
}

fn users(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(|n| format!("user{n}@example.org"))
}

async fn a_spraying_run_locks_the_ip_at_the_limit_and_no_other(backend: Backend) {
    let engine = backend.engine(climweb()).await;
    let ip = "203.0.113.9";
    // Not before the 10th username: that failure is the one answered locked, and says it.
    assert_eq!(spray(&engine, ip, users(0..9)).await, None);
    let tenth = attempt(ip, "user9@example.org");
    assert_eq!(engine.check(&tenth).await.unwrap(), Verdict::Allowed);
    let report = engine.fail(&tenth).await.unwrap();
    assert!(report.locked && report.spraying_started, "{report:?}");
    assert!(
        report.locked_by.is_empty(),
        "no combination locked: {report:?}"
    );
    assert_eq!(report.retry_after, Some(Duration::from_secs(30 * 60)));
    // The other 40 usernames of the run, and one without a username: refused for spraying.
    for username in users(10..50) {
        let verdict = engine.check(&attempt(ip, &username)).await.unwrap();
        assert_eq!(reason(&verdict), Some(LockReason::Spraying), "{username}");
        let Verdict::Locked(lockout) = verdict else {
            unreachable!()
        };
        assert!(lockout.locked_by.is_empty() && !lockout.spraying_started);
        assert!(lockout.retry_after.unwrap() > Duration::from_secs(29 * 60));
    }
    let nameless = Attempt::parse(ip, None, None, None).unwrap();
    assert_eq!(
        reason(&engine.check(&nameless).await.unwrap()),
        Some(LockReason::Spraying)
    );
    let standing = engine.inspect(&attempt(ip, "anyone")).await.unwrap();
    assert_eq!(reason(&standing.verdict), Some(LockReason::Spraying));
    // Another IP is not locked, whatever username it names.
    let other = attempt("203.0.113.10", "user0@example.org");
    assert_eq!(engine.check(&other).await.unwrap(), Verdict::Allowed);
    assert!(!engine.fail(&other).await.unwrap().locked);

    // One event told it, with its reason; the record of the IP shows it.
    let events = engine.events(&EventCursor::default(), 100).await.unwrap();
    let started: Vec<_> = events
        .iter()
        .filter(|stored| stored.event.kind == EventKind::LockoutStarted)
        .map(|stored| &stored.event)
        .collect();
    assert_eq!(started.len(), 1, "{events:?}");
    assert_eq!(started[0].subject, "spraying:ip=203.0.113.9");
    assert_eq!(started[0].reason.as_deref(), Some("spraying"));
    assert_eq!(started[0].ip, Some(ip.parse().unwrap()));
    assert_eq!(started[0].lockout, Some(Duration::from_secs(30 * 60)));
    let by_ip = Target::Ips(vec![ip.parse().unwrap()]);
    let records = engine.list(&by_ip, true).await.unwrap();
    let record = records
        .iter()
        .find(|record| record.identity.tag() == "ip=203.0.113.9")
        .expect("the IP's record, locked");
    let sprayed = record.spraying.expect("its spraying");
    assert_eq!((record.failures, sprayed.usernames), (0, u64::from(LIMIT)));
    assert!(sprayed.lock_remaining.is_some() && record.lock_remaining.is_none());

    // An IPv6 client is one IP per /64, as ipv6_prefix_length counts it.
    let addresses = (0..10).map(|n| format!("2001:db8:5:6::{}", n + 1));
    for (n, address) in addresses.enumerate() {
        let locked = engine
            .fail(&attempt(&address, &format!("v6-user{n}")))
            .await
            .unwrap()
            .locked;
        assert_eq!(locked, n == 9, "{address}");
    }
    let neighbour = attempt("2001:db8:5:6::ffff", "someone");
    assert_eq!(
        reason(&engine.check(&neighbour).await.unwrap()),
        Some(LockReason::Spraying)
    );
}

async fn the_same_username_again_is_no_spraying(backend: Backend) {
    let engine = backend
        .engine(spraying(policy(100, &[&["ip", "username"]]), LIMIT, WINDOW))
        .await;
    let ip = "198.51.100.4";
    let again = std::iter::repeat_n("admin".to_string(), 30);
    assert_eq!(spray(&engine, ip, again).await, None);
    // "admin" and 8 others are 9 usernames; a 10th locks.
    assert_eq!(spray(&engine, ip, users(0..8)).await, None);
    assert_eq!(spray(&engine, ip, users(8..9)).await, Some(1));
}

async fn the_count_restarts_after_the_window(backend: Backend) {
    let engine = backend
        .engine(spraying(
            policy(5, &[&["ip", "username"]]),
            3,
            Duration::from_secs(60),
        ))
        .await;
    let ip = "198.51.100.5";
    let usernames_counted = async || {
        let records = engine.list(&Target::All, false).await.unwrap();
        let sprayed = records.iter().find_map(|record| record.spraying);
        sprayed.map(|spraying| spraying.usernames)
    };
    assert_eq!(spray(&engine, ip, users(0..2)).await, None);
    // The window runs from the first username: within it the two are counted, past it they
    // are forgotten.
    backend.advance(Duration::from_secs(59));
    assert_eq!(usernames_counted().await, Some(2));
    backend.advance(Duration::from_secs(1));
    assert_eq!(usernames_counted().await, None);
    assert_eq!(spray(&engine, ip, users(2..4)).await, None);
    assert_eq!(usernames_counted().await, Some(2));
    assert_eq!(spray(&engine, ip, users(4..5)).await, Some(1));
}

async fn a_reset_of_the_ip_clears_its_spraying_and_a_success_does_not(backend: Backend) {
    let mut climweb = climweb();
    climweb.reset_on_success = true;
    let engine = backend.engine(climweb).await;
    let ip = "192.0.2.77";
    let by_ip = Target::Ips(vec![ip.parse().unwrap()]);
    assert_eq!(spray(&engine, ip, users(0..9)).await, None);
    // A login of the sprayer's own does not start its count over.
    assert!(engine.succeed(&attempt(ip, "mine")).await.is_ok());
    assert_eq!(spray(&engine, ip, users(9..10)).await, Some(1));

    // `lockout reset --ip`: the 10 pairs' records and the IP's spraying, one record more.
    assert_eq!(
        engine
            .reset(&by_ip, true, &mut |_| {}, "test")
            .await
            .unwrap(),
        11
    );
    assert_eq!(
        engine
            .reset(&by_ip, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        11
    );
    assert_eq!(
        engine.check(&attempt(ip, "new")).await.unwrap(),
        Verdict::Allowed
    );
    assert_eq!(engine.list(&by_ip, false).await.unwrap(), vec![]);
    // The count starts over: 9 more usernames are not 10.
    assert_eq!(spray(&engine, ip, users(20..29)).await, None);
    assert_eq!(spray(&engine, ip, users(29..30)).await, Some(1));

    // The admin's delete of the IP's record takes its spraying too.
    let the_ip = Identity::of_fields(Some(ip), None, None).unwrap();
    assert_eq!(engine.remove(&[the_ip], "test").await.unwrap(), 1);
    assert_eq!(
        engine.check(&attempt(ip, "new")).await.unwrap(),
        Verdict::Allowed
    );
    assert_eq!(spray(&engine, ip, users(40..49)).await, None);
}

async fn allow_and_deny_lists_still_apply(backend: Backend) {
    let engine = backend
        .engine(Policy {
            never_lockout: IpList::parse("never_lockout", &["10.9.0.0/16"]).unwrap(),
            deny: IpList::parse("deny", &["10.8.0.1"]).unwrap(),
            ..climweb()
        })
        .await;
    assert_eq!(spray(&engine, "10.9.1.1", users(0..50)).await, None);
    let denied = engine.check(&attempt("10.8.0.1", "x")).await.unwrap();
    assert_eq!(reason(&denied), Some(LockReason::DenyList));
    for username in users(0..20) {
        engine.fail(&attempt("10.8.0.1", &username)).await.unwrap();
    }
    assert_eq!(engine.list(&Target::All, false).await.unwrap(), vec![]);
}

async fn a_spraying_lock_that_runs_out_is_told(backend: Backend) {
    let engine = backend
        .engine(Policy {
            lockout_duration: Duration::from_millis(50),
            ..spraying(policy(5, &[&["username"]]), 2, WINDOW)
        })
        .await;
    let ip = "192.0.2.99";
    assert_eq!(spray(&engine, ip, users(0..2)).await, Some(2));
    backend.advance(Duration::from_millis(60));
    let bounds = engine.policy().events.unwrap();
    let mut told = 0;
    eventually(Duration::from_secs(5), "the lock's end told", async || {
        told += engine.store().end_lockouts(bounds, 100).await.unwrap();
        told > 0
    })
    .await;
    assert_eq!(told, 1);
    let events = engine.events(&EventCursor::default(), 100).await.unwrap();
    let expired = events
        .iter()
        .find(|stored| stored.event.kind == EventKind::LockoutExpired)
        .expect("lockout_expired");
    assert_eq!(expired.event.subject, "spraying:ip=192.0.2.99");
    assert_eq!(expired.event.ip, Some(ip.parse().unwrap()));
}

/// Observe mode counts an IP's usernames as enforcing does and sets a would-be spraying lock,
/// refusing nothing, told as a would-be lockout and listed; enforcing on the same keyspace
/// refuses nobody for it, and the IP's next failure at the limit locks for real.
async fn observe_mode_counts_spraying_and_enforcing_locks_at_the_next_failure(backend: Backend) {
    let by_pair = spraying(policy(5, &[&["ip", "username"]]), 3, WINDOW);
    let observing = backend
        .engine(Policy {
            observe: true,
            ..by_pair.clone()
        })
        .await;
    let enforcing = backend.engine(by_pair).await;
    let ip = "203.0.113.77";
    let about_half_an_hour = |lockout: &lockout::Lockout| {
        let left = lockout.retry_after.unwrap();
        assert!(left > Duration::from_secs(29 * 60), "{lockout:?}");
        assert!(left <= Duration::from_secs(30 * 60), "{lockout:?}");
    };
    for (n, username) in users(0..5).enumerate() {
        let attempt = attempt(ip, &username);
        // Before this attempt's failure the IP has named `n` usernames.
        match observing.check(&attempt).await.unwrap() {
            Verdict::Allowed => assert!(n < 3, "{username}"),
            Verdict::WouldLock(lockout) => {
                assert!(n >= 3, "{username}");
                assert_eq!(lockout.reason, LockReason::Spraying);
                assert!(lockout.locked_by.is_empty() && !lockout.spraying_started);
                about_half_an_hour(&lockout);
            }
            Verdict::Locked(lockout) => panic!("refused in observe mode: {lockout:?}"),
        }
        let report = observing.fail(&attempt).await.unwrap();
        assert!(!report.locked && !report.spraying_started, "{report:?}");
        assert!(report.retry_after.is_none() && report.locked_by.is_empty());
        match &report.would_lock {
            None => assert!(n < 2, "{report:?}"),
            Some(lockout) => {
                assert!(n >= 2, "{report:?}");
                assert_eq!(lockout.reason, LockReason::Spraying);
                assert_eq!(lockout.spraying_started, n == 2, "{lockout:?}");
                about_half_an_hour(lockout);
            }
        }
    }
    let standing = observing.inspect(&attempt(ip, "anyone")).await.unwrap();
    assert!(matches!(standing.verdict, Verdict::WouldLock(ref lockout)
        if lockout.reason == LockReason::Spraying));

    // Told once, as a would-be lockout for spraying; listed as would-be.
    let events = observing
        .events(&EventCursor::default(), 100)
        .await
        .unwrap();
    let kinds: Vec<_> = events
        .iter()
        .map(|stored| (stored.event.kind, stored.event.subject.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(EventKind::WouldLockoutStarted, "spraying:ip=203.0.113.77")]
    );
    assert_eq!(events[0].event.reason.as_deref(), Some("spraying"));
    let by_ip = Target::Ips(vec![ip.parse().unwrap()]);
    let records = observing.list(&by_ip, false).await.unwrap();
    let record = records
        .iter()
        .find(|record| record.identity.tag() == "ip=203.0.113.77")
        .expect("the IP's record");
    let sprayed = record.spraying.expect("its spraying");
    assert_eq!(sprayed.usernames, 3);
    assert!(sprayed.lock_remaining.is_none() && sprayed.would_lock_remaining.is_some());
    assert!(!record.is_locked());
    if !matches!(backend, Backend::Memory { .. }) {
        let key = |kind| crate::support::key_of("lockout", kind, "ip=203.0.113.77");
        assert_eq!(backend.pttl(&key(KeyKind::SprayingLock)), -2);
        let would_lock = backend.pttl(&key(KeyKind::SprayingWouldLock));
        assert!(
            (29 * 60_000..=30 * 60_000).contains(&would_lock),
            "{would_lock}"
        );
    }

    // Enforcing: nobody refused for what was observed; the next failure locks for real.
    let next = attempt(ip, "user5@example.org");
    assert_eq!(enforcing.check(&next).await.unwrap(), Verdict::Allowed);
    let report = enforcing.fail(&next).await.unwrap();
    assert!(report.locked && report.spraying_started, "{report:?}");
    assert!(report.locked_by.is_empty() && report.would_lock.is_none());
    let verdict = enforcing
        .check(&attempt(ip, "user6@example.org"))
        .await
        .unwrap();
    assert_eq!(reason(&verdict), Some(LockReason::Spraying), "{verdict:?}");
    let events = enforcing
        .events(&EventCursor::default(), 100)
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|stored| stored.event.kind == EventKind::LockoutStarted
            && stored.event.reason.as_deref() == Some("spraying")));

    // A reset of the IP removes the would-be lock with the rest.
    enforcing
        .reset(&by_ip, false, &mut |_| {}, "test")
        .await
        .unwrap();
    assert!(observing.list(&by_ip, false).await.unwrap().is_empty());
    assert_eq!(
        observing
            .check(&attempt(ip, "user7@example.org"))
            .await
            .unwrap(),
        Verdict::Allowed
    );
}

/// The set, the lock and the lockout count all expire; the set holds 8-byte integers.
async fn every_spraying_key_has_a_ttl(backend: Backend) {
    let engine = backend
        .engine(Policy {
            repeat: Some(Repeat {
                memory: Duration::from_secs(7 * 24 * 3600),
                backoff: lockout::policy::Backoff(2.0),
                max_lockout: Duration::from_secs(24 * 3600),
            }),
            ..climweb()
        })
        .await;
    assert_eq!(spray(&engine, "203.0.113.50", users(0..10)).await, Some(10));
    let key = |kind| crate::support::key_of("lockout", kind, "ip=203.0.113.50");
    for kind in [
        KeyKind::Spraying,
        KeyKind::SprayingLock,
        KeyKind::SprayingLockouts,
    ] {
        assert!(backend.pttl(&key(kind)) > 0, "{}", key(kind));
    }
    let keys = backend.keys();
    assert!(keys.len() > 10, "{keys:?}");
    for key in keys {
        assert!(backend.pttl(&key) > 0, "{key} has no TTL");
    }
    let Backend::Server(server) = &backend else {
        return;
    };
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key(KeyKind::Spraying))
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(encoding, "intset");
}

/// A failure of Climweb's policy is still one script call, its spraying count inside it; a
/// check is one read; with the username alone counted, the IP's spraying rides in a second
/// script call of the same round trip.
#[tokio::test]
async fn spraying_costs_no_round_trip() {
    let server = RedisServer::start();
    let engine = server.engine(climweb()).await;
    let a = attempt("10.0.0.1", "alice");
    let (commands, reads, per_command) =
        crate::engine::server_work(&server, engine.check(&a)).await;
    assert_eq!((commands, reads), (2, 1), "{per_command}");
    let (_, reads, per_command) = crate::engine::server_work(&server, engine.fail(&a)).await;
    assert_eq!(reads, 1, "{per_command}");
    assert!(
        per_command.contains("cmdstat_evalsha:calls=1,"),
        "{per_command}"
    );

    let engine = server
        .engine(spraying(policy(5, &[&["username"]]), LIMIT, WINDOW))
        .await;
    let (_, reads, per_command) = crate::engine::server_work(&server, engine.fail(&a)).await;
    assert_eq!(reads, 1, "{per_command}");
    assert!(
        per_command.contains("cmdstat_evalsha:calls=2,"),
        "{per_command}"
    );
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Through the service, as Django sends its policy per request: locked at the 10th username
/// with `"reason": "spraying"`, counted by a metric, an event with its reason, listed by the
/// API, the admin page and `lockout list`, and ended by `lockout reset --ip`.
#[tokio::test]
async fn the_service_answers_spraying_and_resets_it() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, with_admin).await;
    let client = http_client();
    let django = json!({
        "failure_limit": 5,
        "lockout_parameters": [["username", "ip_address"]],
        "spraying_limit": LIMIT,
        "spraying_window": "10m",
    });
    let login =
        |username: String| json!({"ip": "203.0.113.7", "username": username, "policy": django});
    for (n, username) in users(0..10).enumerate() {
        let (status, answer) =
            post(&client, service.at("/v1/check"), login(username.clone())).await;
        assert_eq!((status, &answer["locked"]), (StatusCode::OK, &json!(false)));
        let (_, answer) = post(&client, service.at("/v1/failure"), login(username)).await;
        assert_eq!(answer["locked"], json!(n == 9), "{n}: {answer}");
    }
    let (_, answer) = post(&client, service.at("/v1/check"), login("new".into())).await;
    assert_eq!(answer["locked"], true, "{answer}");
    assert_eq!(answer["reason"], "spraying", "{answer}");
    assert_eq!(answer["locked_by"], json!([]), "{answer}");
    assert!(answer["retry_after_secs"].as_u64().unwrap() > 29 * 60);
    let other = json!({"ip": "203.0.113.8", "username": "new", "policy": django});
    assert_eq!(
        post(&client, service.at("/v1/check"), other).await.1["locked"],
        false
    );

    let metrics = text_of(client.get(service.at("/metrics"))).await;
    assert!(
        metrics.contains("lockout_spraying_lockouts_started_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"lockout_checks_total{verdict="spraying"} 1"#),
        "{metrics}"
    );

    let (status, listed) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?ip=203.0.113.7&locked=true"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let record = listed["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["identity"] == "ip=203.0.113.7")
        .cloned()
        .unwrap_or_else(|| panic!("the IP's record: {listed}"));
    assert_eq!(record["locked"], true);
    assert_eq!(record["spraying"]["usernames"], LIMIT);
    assert_eq!(record["spraying"]["locked"], true);
    let events = json_of(
        client
            .get(service.at("/v1/events"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    let started = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "lockout_started")
        .cloned()
        .unwrap_or_else(|| panic!("{events}"));
    assert_eq!(started["reason"], "spraying");
    assert_eq!(started["subject"], "spraying:ip=203.0.113.7");

    let page = text_of(
        client
            .get(service.at("/dj-ad-admin/?ip=203.0.113.7"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    assert!(
        page.contains("Locked out for password spraying, 30 min left"),
        "{page}"
    );
    let cli = |args: &[&str]| {
        let output = lockout_command(&[("LOCKOUT_REDIS_URL", &redis.url())])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let listed = cli(&["list", "--ip", "203.0.113.7", "--locked"]);
    assert!(
        listed.contains("locked for spraying, 1800 s left (10 usernames)")
            || listed.contains("locked for spraying, 1799 s left (10 usernames)"),
        "{listed}"
    );
    // `lockout reset --ip`: the 10 pairs, the pair of the refused check (counted, as Axes
    // counts refusals), and the IP's spraying.
    assert_eq!(
        cli(&["reset", "--ip", "203.0.113.7"]).trim(),
        "12 attempt records removed."
    );
    let (_, answer) = post(&client, service.at("/v1/check"), login("new".into())).await;
    assert_eq!(answer["locked"], false, "{answer}");
    assert!(
        !redis.keys().iter().any(|key| key.contains("spraying")),
        "{:?}",
        redis.keys()
    );

    // Out of bounds in a request: a 400 naming the key, nothing written.
    for (key, value) in [
        ("spraying_limit", json!(101)),
        ("spraying_limit", json!(1)),
        ("spraying_window", json!("400d")),
    ] {
        let keys = redis.keys().len();
        let mut policy = serde_json::Map::new();
        policy.insert(key.into(), value);
        let failure = json!({"ip": "203.0.113.9", "username": "x", "policy": policy});
        let (status, bad) = post(&client, service.at("/v1/failure"), failure).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {bad}");
        assert!(
            bad["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("policy.{key}: ")),
            "{bad}"
        );
        assert_eq!(redis.keys().len(), keys);
    }
}

/// On the in-process store, through the service too.
#[tokio::test]
async fn the_service_on_the_in_process_store_answers_spraying() {
    let service = TestService::start_with(|config| {
        with_admin(config);
        config.policy = climweb();
    })
    .await;
    let client = http_client();
    for username in users(0..10) {
        let body = json!({"ip": "203.0.113.7", "username": username});
        post(&client, service.at("/v1/failure"), body).await;
    }
    let check = json!({"ip": "203.0.113.7", "username": "new"});
    let (_, answer) = post(&client, service.at("/v1/check"), check).await;
    assert_eq!(
        (&answer["locked"], &answer["reason"]),
        (&json!(true), &json!("spraying")),
        "{answer}"
    );
    // A request observing: the 10th username's failure and the checks after it would lock.
    let observing = |username: &str| json!({"ip": "203.0.113.8", "username": username, "policy": {"observe": true}});
    let mut last = Value::Null;
    for username in users(0..10) {
        last = post(&client, service.at("/v1/failure"), observing(&username))
            .await
            .1;
    }
    let (_, check) = post(&client, service.at("/v1/check"), observing("new")).await;
    for answer in [&last, &check] {
        assert_eq!(answer["locked"], false, "{answer}");
        assert_eq!(answer["would_lock"], true, "{answer}");
        assert_eq!(answer["observed"]["reason"], "spraying", "{answer}");
        assert_eq!(answer["observed"]["locked_by"], json!([]), "{answer}");
    }
    let url = service.at("/v1/attempts?ip=203.0.113.8");
    let (_, attempts) = admin(&client, Method::GET, url).await;
    let ip_alone = attempts["attempts"].as_array().unwrap().iter();
    let ip_alone = ip_alone.filter(|record| record["identity"] == "ip=203.0.113.8");
    let [record] = &ip_alone.collect::<Vec<_>>()[..] else {
        panic!("one record of the IP alone: {attempts}");
    };
    let spraying = &record["spraying"];
    assert_eq!(spraying["would_lock"], true, "{attempts}");
    assert_eq!(spraying["locked"], false, "{attempts}");
}
