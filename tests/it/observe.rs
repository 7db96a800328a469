//! Observe mode (`[policy] observe = true`, or a request's `"policy": {"observe": true}`):
//! failures are counted, logged and told as usual and nothing is refused but by the deny list;
//! answers add `"would_lock": true` where the policy would have refused, listings show the
//! would-be locks, and an enforcing policy on the same records refuses nobody for what was
//! observed until their next failure (docs/design.md, "Observe mode").

use std::time::Duration;

use lockout::event::{EventCursor, EventKind};
use lockout::{Attempt, Combination, Field, Policy, Target, Verdict};
use reqwest::{Client, Method};
use serde_json::{json, Value};

use crate::on_all;
use crate::support::{
    admin, http_client, json_of, lockout_command, metric, policy, text_of, with_admin, Backend,
    RedisServer, TestService,
};

/// Three failures lock a username and an IP alike, for 30 minutes (Axes' defaults).
fn observing() -> Policy {
    Policy {
        observe: true,
        ..policy(3, &[&["username"], &["ip"]])
    }
}

async fn post(client: &Client, service: &TestService, path: &str, body: Value) -> Value {
    json_of(client.post(service.at(path)).json(&body)).await
}

/// A withheld refusal's `observed` part, whatever its retry-after; that, on its own.
fn observed(answer: &Value) -> (Value, u64) {
    let mut observed = answer["observed"].clone();
    let retry_after = observed
        .as_object_mut()
        .and_then(|observed| observed.remove("retry_after_secs"))
        .and_then(|retry_after| retry_after.as_u64());
    (observed, retry_after.unwrap())
}

/// Distributed guessing of one username from three IPs, three failures each, observed, on a
/// service whose lock cache is on: every check and failure is allowed, each from the limit on
/// says what would have been, every would-be lockout is an event and each would-be refusal is
/// counted; only the deny list still refuses.
#[tokio::test]
async fn observe_mode_refuses_nothing_and_reports_every_would_be_lock() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        with_admin(c);
        c.policy = Policy {
            deny: lockout::policy::IpList::parse("policy.deny", &["198.51.100.0/24"]).unwrap(),
            ..observing()
        };
        assert!(c.lock_cache);
    })
    .await;
    let client = http_client();
    let mut failures = 0;
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for nth_of_ip in 1..=3 {
            let attempt = json!({"ip": ip, "username": "alice"});
            let check = post(&client, &service, "/v1/check", attempt.clone()).await;
            let mut reading = attempt.clone();
            reading["record_refusal"] = false.into();
            let read = post(&client, &service, "/v1/check", reading).await;
            let failure = post(&client, &service, "/v1/failure", attempt).await;
            failures += 1;
            // alice has failed `failures - 1` times before the checks, `failures` after.
            if failures > 3 {
                for answer in [&check, &read] {
                    assert_eq!(answer["locked"], false, "{answer}");
                    assert_eq!(answer["would_lock"], true, "{answer}");
                    let (rest, retry_after) = observed(answer);
                    assert_eq!(
                        rest,
                        json!({"reason": "lockout", "locked_by": [["username"]]})
                    );
                    assert!((1790..=1800).contains(&retry_after), "{answer}");
                }
            } else {
                assert_eq!(check, json!({"locked": false}));
                assert_eq!(read["would_lock"], Value::Null, "{read}");
            }
            assert_eq!(read["failures"][0]["count"], failures - 1, "{read}");
            assert_eq!(failure["locked"], false, "{failure}");
            assert_eq!(failure["retry_after_secs"], Value::Null, "{failure}");
            assert_eq!(failure["failures"][0]["count"], failures, "{failure}");
            if failures >= 3 {
                assert_eq!(failure["would_lock"], true, "{failure}");
                let (rest, retry_after) = observed(&failure);
                let locked_by = if nth_of_ip == 3 {
                    json!([["username"], ["ip"]])
                } else {
                    json!([["username"]])
                };
                assert_eq!(rest, json!({"reason": "lockout", "locked_by": locked_by}));
                assert!((1790..=1800).contains(&retry_after), "{failure}");
            } else {
                assert_eq!(failure["would_lock"], Value::Null, "{failure}");
            }
        }
    }

    // Each would-be lockout is an event of its own kind, told once; no lockout started.
    let (_, events) = admin(&client, Method::GET, service.at("/v1/events")).await;
    let mut told: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            assert_eq!(event["lockout_secs"], 1800, "{event}");
            let text = |field: &str| event[field].as_str().unwrap().to_string();
            (text("kind"), text("subject"))
        })
        .collect();
    told.sort();
    let would = |subject: &str| ("would_lockout_started".to_string(), subject.to_string());
    assert_eq!(
        told,
        [
            would("ip=203.0.113.1"),
            would("ip=203.0.113.2"),
            would("ip=203.0.113.3"),
            would("username=alice"),
        ]
    );
    // The access log has every failure, and no refusal.
    let (_, logs) = admin(&client, Method::GET, service.at("/v1/logs")).await;
    let outcomes: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failure"; 9]);
    // Would-be locks are keys of their own; no lock exists.
    let keys = redis.keys();
    assert_eq!(
        keys.iter()
            .filter(|key| key.contains(":would_lock:"))
            .count(),
        4,
        "{keys:?}"
    );
    assert!(!keys.iter().any(|key| key.contains(":lock:")), "{keys:?}");

    for (line, value) in [
        ("lockout_would_refusals_total{endpoint=\"failure\"}", 7.0),
        ("lockout_would_refusals_total{endpoint=\"check\"}", 12.0),
        ("lockout_checks_total{verdict=\"allowed\"}", 18.0),
        ("lockout_checks_total{verdict=\"lockout\"}", 0.0),
        ("lockout_lockouts_started_total", 0.0),
    ] {
        assert_eq!(metric(&client, &service, line).await, value, "{line}");
    }

    // The deny list is configuration, not a learned lock: it still refuses.
    let denied = json!({"ip": "198.51.100.7", "username": "alice"});
    let check = post(&client, &service, "/v1/check", denied.clone()).await;
    assert_eq!(check["locked"], true, "{check}");
    assert_eq!(check["reason"], "deny_list", "{check}");
    assert_eq!(
        post(&client, &service, "/v1/failure", denied).await["locked"],
        true
    );
}

/// A site sends `"observe": true` with its policy over a configured enforcing one: its
/// requests refuse nothing, even an IP the configured policy has locked (and its lock cache
/// holds), while the configured policy's requests refuse on their own locks only.
#[tokio::test]
async fn a_request_may_observe_over_an_enforcing_policy() {
    let redis = RedisServer::start();
    let service =
        TestService::start(&redis, |c| c.policy = policy(3, &[&["ip"], &["username"]])).await;
    let client = http_client();
    let observing = |ip: &str| json!({"ip": ip, "username": "bob", "policy": {"observe": true}});

    for nth in 1..=5 {
        let answer = post(&client, &service, "/v1/failure", observing("10.0.0.1")).await;
        assert_eq!(answer["locked"], false, "{answer}");
        assert_eq!(answer["would_lock"] == true, nth >= 3, "{answer}");
    }
    let check = post(&client, &service, "/v1/check", observing("10.0.0.1")).await;
    assert_eq!(check["locked"], false, "{check}");
    assert_eq!(check["would_lock"], true, "{check}");
    assert_eq!(
        observed(&check).0["locked_by"],
        json!([["ip"], ["username"]])
    );
    // Observed locks are not the configured policy's: its requests are not refused by them.
    let enforced = json!({"ip": "10.0.0.1", "username": "bob"});
    assert_eq!(
        post(&client, &service, "/v1/check", enforced).await,
        json!({"locked": false})
    );

    // Locked by the configured policy, refused by it; observed, only told.
    let carol = |ip: &str| json!({"ip": ip, "username": "carol"});
    assert_eq!(service.fail(&client, "10.0.0.2", 3).await["locked"], true);
    for _ in 0..3 {
        let check = post(&client, &service, "/v1/check", carol("10.0.0.2")).await;
        assert_eq!(check["locked"], true, "{check}");
    }
    let mut observed_check = carol("10.0.0.2");
    observed_check["policy"] = json!({"observe": true});
    let check = post(&client, &service, "/v1/check", observed_check.clone()).await;
    assert_eq!(check["locked"], false, "{check}");
    assert_eq!(check["would_lock"], true, "{check}");
    let (rest, retry_after) = observed(&check);
    // The refused checks counted against carol too, as Axes counts them.
    let locked_by = json!([["ip"], ["username"]]);
    assert_eq!(rest, json!({"reason": "lockout", "locked_by": locked_by}));
    assert!((1790..=1800).contains(&retry_after), "{check}");
    let failure = post(&client, &service, "/v1/failure", observed_check).await;
    assert_eq!(failure["locked"], false, "{failure}");
    assert_eq!(failure["would_lock"], true, "{failure}");

    let response = client
        .post(service.at("/v1/check"))
        .json(&json!({"ip": "10.0.0.3", "policy": {"observe": "yes"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error = response.json::<Value>().await.unwrap()["error"].to_string();
    assert!(error.contains("policy.observe"), "{error}");
}

/// An operator reads what would have happened: the admin API's listing and view, the admin
/// page and `lockout list` show the identity that would be locked, and how long.
#[tokio::test]
async fn listings_show_the_identities_that_would_be_locked() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        with_admin(c);
        c.policy = Policy {
            observe: true,
            ..policy(3, &[&["ip"]])
        };
    })
    .await;
    let client = http_client();
    service.fail(&client, "10.0.0.1", 3).await;
    service.fail(&client, "10.0.0.2", 1).await;

    for query in ["", "?order=-last_failure"] {
        let (status, listed) = admin(
            &client,
            Method::GET,
            service.at(&format!("/v1/attempts{query}")),
        )
        .await;
        assert_eq!(status, 200, "{listed}");
        let record = |ip: &str| {
            listed["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|record| record["parameters"]["ip"] == ip)
                .cloned()
                .unwrap()
        };
        let would_be = record("10.0.0.1");
        assert_eq!(would_be["locked"], false, "{would_be}");
        assert_eq!(would_be["retry_after_secs"], Value::Null, "{would_be}");
        assert_eq!(would_be["would_lock"], true, "{would_be}");
        let left = would_be["would_lock_secs"].as_u64().unwrap();
        assert!((1790..=1800).contains(&left), "{would_be}");
        let counting = record("10.0.0.2");
        assert_eq!(counting["would_lock"], false, "{counting}");
        assert_eq!(counting["would_lock_secs"], Value::Null, "{counting}");
    }

    let page = text_of(
        client
            .get(service.at("/dj-ad-admin/"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    let row = page
        .split("<tr>")
        .find(|row| row.contains("10.0.0.1"))
        .unwrap();
    assert!(
        row.contains(r#"class="would-lock">Would be locked out (observe mode), 30 min left"#),
        "{row}"
    );
    let other = page
        .split("<tr>")
        .find(|row| row.contains("10.0.0.2"))
        .unwrap();
    assert!(other.contains("2 attempts remaining"), "{other}");

    let output = lockout_command(&[])
        .env("LOCKOUT_REDIS_URL", redis.url())
        .arg("list")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|line| line.starts_with("ip=10.0.0.1\t"))
        .unwrap();
    assert!(line.contains("\t3\twould be locked, 1"), "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("ip=10.0.0.2\t"))
        .unwrap();
    assert!(line.contains("\t1\t-\t"), "{stdout}");
}

/// Switching the same records from observing to enforcing: nobody is refused for what was
/// observed, but the failures counted carry over, so an identity past the limit is locked by
/// its next failure. Observing again, a lock is told as what would refuse; a reset removes
/// would-be locks with their records.
async fn switching_to_enforcing_refuses_nobody_until_their_next_failure(backend: Backend) {
    let by_ip = policy(3, &[&["ip"]]);
    let observing = backend
        .engine(Policy {
            observe: true,
            ..by_ip.clone()
        })
        .await;
    let enforcing = backend.engine(by_ip).await;
    let attacker = Attempt::parse("10.0.0.1", None, None, None).unwrap();
    let user = Attempt::parse("10.0.0.2", None, None, None).unwrap();
    for attempt in [&attacker, &attacker, &attacker, &user, &user, &user] {
        assert!(!observing.fail(attempt).await.unwrap().locked);
    }
    let Verdict::WouldLock(lockout) = observing.check(&attacker).await.unwrap() else {
        panic!("observed past the limit");
    };
    assert_about_half_an_hour(lockout.retry_after);

    assert_eq!(enforcing.check(&attacker).await.unwrap(), Verdict::Allowed);
    let standing = enforcing.inspect(&attacker).await.unwrap();
    assert_eq!(standing.verdict, Verdict::Allowed);
    assert_eq!(standing.failures[0].count, 3);
    let report = enforcing.fail(&attacker).await.unwrap();
    assert!(report.locked);
    assert_eq!(report.failures[0].count, 4);
    assert_eq!(report.started, [Combination::new([Field::Ip]).unwrap()]);
    assert!(enforcing.check(&attacker).await.unwrap().is_locked());

    let Verdict::WouldLock(lockout) = observing.check(&attacker).await.unwrap() else {
        panic!("a lock is what enforcing would refuse on");
    };
    assert_about_half_an_hour(lockout.retry_after);

    // In event ID order: events of one millisecond in two streams come in stream order.
    let mut kinds: Vec<(EventKind, String)> = enforcing
        .events(&EventCursor::default(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|stored| (stored.event.kind, stored.event.subject))
        .collect();
    kinds.sort_by_key(|(kind, subject)| (*kind == EventKind::LockoutStarted, subject.clone()));
    assert_eq!(
        kinds,
        [
            (EventKind::WouldLockoutStarted, "ip=10.0.0.1".to_string()),
            (EventKind::WouldLockoutStarted, "ip=10.0.0.2".to_string()),
            (EventKind::LockoutStarted, "ip=10.0.0.1".to_string()),
        ]
    );

    let user_ip = Target::Ips(vec![user.ip]);
    assert_eq!(
        enforcing
            .reset(&user_ip, false, &mut |_| {}, "test")
            .await
            .unwrap(),
        1
    );
    assert_eq!(observing.check(&user).await.unwrap(), Verdict::Allowed);
    assert!(observing.list(&user_ip, false).await.unwrap().is_empty());

    // A would-be lock ends as the lock would have.
    backend.advance(Duration::from_secs(1800));
    assert_eq!(observing.check(&attacker).await.unwrap(), Verdict::Allowed);
}

on_all!(switching_to_enforcing_refuses_nobody_until_their_next_failure);

/// A lock's remaining time, set for 30 minutes moments ago (Redis' clock runs on).
fn assert_about_half_an_hour(retry_after: Option<Duration>) {
    let left = retry_after.unwrap();
    assert!(
        (Duration::from_secs(1790)..=Duration::from_secs(1800)).contains(&left),
        "{left:?}"
    );
}
