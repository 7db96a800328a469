//! Policies that fit real attacks: combinations with limits of their own (rate-limiter-flexible's
//! login recipe as a lockout policy), on one server, a cluster and the in-process store.

use std::num::NonZeroU32;
use std::time::Duration;

use lockout::attempt::Field;
use lockout::policy::{Combination, Limits};
use lockout::{Attempt, Engine, Policy, Target};
use reqwest::Client;
use serde_json::{json, Value};

use crate::support::{free_port, Backend, ServeProcess};

crate::on_all!(the_login_recipe_limits_the_pair_and_the_ip_apart);

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// rate-limiter-flexible's login recipe: 10 consecutive failures of a username from one IP
/// within 90 days block the pair for an hour; 100 failures of an IP within a day block it for a
/// day.
fn login_recipe() -> Policy {
    let limits = |limit: u32, cooloff: Duration, lockout_duration: Duration| Limits {
        failure_limit: NonZeroU32::new(limit),
        cooloff: Some(cooloff),
        lockout_duration: Some(lockout_duration),
    };
    Policy {
        combinations: vec![
            Combination::new([Field::Ip, Field::Username])
                .unwrap()
                .with_limits(limits(10, 90 * DAY, HOUR)),
            Combination::new([Field::Ip])
                .unwrap()
                .with_limits(limits(100, DAY, DAY)),
        ],
        ..Policy::default()
    }
}

fn attempt(ip: &str, username: &str) -> Attempt {
    Attempt::parse(ip, Some(username), None, None).unwrap()
}

/// The lock of each of `target`'s records, to the minute.
async fn locks(engine: &Engine<lockout::AnyStore>, target: Target) -> Vec<(String, Option<u64>)> {
    let mut locks: Vec<(String, Option<u64>)> = engine
        .list(&target, false)
        .await
        .unwrap()
        .into_iter()
        .map(|record| {
            let minutes = record.lock_remaining.map(|lock| (lock.as_secs() + 30) / 60);
            (record.identity.tag().to_string(), minutes)
        })
        .collect();
    locks.sort();
    locks
}

async fn the_login_recipe_limits_the_pair_and_the_ip_apart(backend: Backend) {
    let engine = backend.engine(login_recipe()).await;
    let alice = attempt("203.0.113.7", "alice");
    for failure in 1..=9 {
        let report = engine.fail(&alice).await.unwrap();
        assert!(!report.locked, "failure {failure}");
    }
    let tenth = engine.fail(&alice).await.unwrap();
    assert!(tenth.locked);
    assert_eq!(tenth.started[0].names(), ["ip", "username"]);
    assert_eq!(tenth.retry_after.map(|lock| lock.as_secs()), Some(3600));
    let bob = attempt("203.0.113.7", "bob");
    assert!(
        !engine.check(&bob).await.unwrap().is_locked(),
        "the pair is locked, not the IP"
    );
    for n in 0..89 {
        let report = engine
            .fail(&attempt("203.0.113.7", &format!("user{n}")))
            .await
            .unwrap();
        assert!(!report.locked, "the IP's failure {}", n + 11);
    }
    let hundredth = engine.fail(&bob).await.unwrap();
    assert!(hundredth.locked);
    assert_eq!(
        hundredth
            .started
            .iter()
            .map(|c| c.names())
            .collect::<Vec<_>>(),
        [["ip"]],
        "the IP's 100th failure"
    );
    assert_eq!(
        locks(&engine, Target::Usernames(vec!["alice".into()])).await,
        [("ip=203.0.113.7&username=alice".to_string(), Some(60))]
    );
    assert_eq!(
        locks(&engine, Target::Ips(vec!["203.0.113.7".parse().unwrap()])).await[0],
        ("ip=203.0.113.7".to_string(), Some(24 * 60))
    );

    // After the pair's hour the IP's day still refuses (and the refused check renews both
    // locks); a day later both have ended, the IP's count with them, but the pair's failures
    // are remembered for 90 days: its next failure blocks it again at once.
    backend.advance(HOUR + Duration::from_secs(1));
    assert!(engine.check(&alice).await.unwrap().is_locked());
    backend.advance(DAY + Duration::from_secs(1));
    assert!(!engine.check(&alice).await.unwrap().is_locked());
    let again = engine.fail(&alice).await.unwrap();
    assert!(again.locked);
    assert_eq!(again.retry_after.map(|lock| lock.as_secs()), Some(3600));
    let counts: Vec<u64> = again.failures.iter().map(|f| f.count).collect();
    assert_eq!(counts, [12, 1], "the pair's count lives on, the IP's ended");
}

/// The same recipe written as JSON in `LOCKOUT_POLICY_LOCKOUT_PARAMETERS`, as a site's
/// environment gives it to `lockout serve`.
#[tokio::test]
async fn combination_tables_come_as_json_from_the_environment() {
    let port = free_port();
    let recipe = r#"[{"fields": ["ip", "username"], "failure_limit": 2, "cooloff": "90d", "lockout_duration": "1h"}, {"fields": "ip", "failure_limit": 100, "cooloff": "1d"}]"#;
    let _serving = ServeProcess::start(
        &["--listen", &format!("127.0.0.1:{port}")],
        &[("LOCKOUT_POLICY_LOCKOUT_PARAMETERS", recipe)],
        port,
    );
    let client = Client::new();
    let mut answer = Value::Null;
    for _ in 0..2 {
        answer = client
            .post(format!("http://127.0.0.1:{port}/v1/failure"))
            .json(&json!({"ip": "203.0.113.7", "username": "alice"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(
        answer,
        json!({
            "locked": true,
            "retry_after_secs": 3600,
            "failures": [
                {"parameters": ["ip", "username"], "count": 2},
                {"parameters": ["ip"], "count": 2},
            ],
        })
    );
}
