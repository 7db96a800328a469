//! Events: a lockout started and a reset appear once each, in order, in the store, through
//! `GET /v1/events` and in `lockout events --follow` run as a process of its own.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use lockout::event::{EventCursor, EventKind};
use lockout::store::Store;
use lockout::{Attempt, Target};
use serde_json::Value;

use crate::support::http_client;
use crate::support::{
    eventually, json_of, lockout_command, lockouts_started, policy, text_of, Backend, RedisServer,
    TestService,
};

crate::on_all!(lockouts_started_and_resets_are_events_once_each);

async fn lockouts_started_and_resets_are_events_once_each(backend: Backend) {
    let engine = backend
        .engine(lockout::Policy {
            reset_on_success: true,
            ..policy(2, &[&["ip"], &["ip", "username"]])
        })
        .await;
    let alice = Attempt::parse("203.0.113.7", Some("alice"), None, None).unwrap();
    for _ in 0..3 {
        engine.fail(&alice).await.unwrap(); // the third renews the locks: no new event
    }
    assert!(engine.check(&alice).await.unwrap().is_locked());
    assert_eq!(
        engine
            .reset(
                &Target::Usernames(vec!["alice".into()]),
                false,
                &mut |_| {},
                "cli"
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        engine
            .reset(&Target::All, true, &mut |_| {}, "cli")
            .await
            .unwrap(),
        1,
        "a dry run is no reset"
    );
    engine.succeed(&alice).await.unwrap();
    let events = engine
        .events(&lockout::event::EventCursor::default(), 100)
        .await
        .unwrap();
    let seen: Vec<(EventKind, &str, Option<&str>, Option<u64>)> = events
        .iter()
        .map(|stored| {
            let event = &stored.event;
            (
                event.kind,
                event.subject.as_str(),
                event.by.as_deref(),
                event.removed,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::LockoutStarted, "ip=203.0.113.7", None, None),
            (
                EventKind::LockoutStarted,
                "ip=203.0.113.7&username=alice",
                None,
                None
            ),
            (
                EventKind::LockoutReset,
                "username=alice",
                Some("cli"),
                Some(1)
            ),
            (
                EventKind::LockoutReset,
                "ip=203.0.113.7 ip=203.0.113.7&username=alice",
                Some("success"),
                Some(1)
            ),
        ]
    );
    assert_eq!(
        events[0].event.lockout.map(|lock| lock.as_secs()),
        Some(30 * 60)
    );
    let after_first = engine
        .events(&EventCursor::parse(&events[0].id).unwrap(), 100)
        .await
        .unwrap();
    assert_eq!(after_first, events[1..]);
}

#[tokio::test]
async fn events_through_the_api_and_lockout_events_follow() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        config.admin.password = "s3cret".into();
        config.policy = policy(2, &[&["ip"]]);
    })
    .await;
    let (mut follower, received) = follow_events(&redis);

    let client = http_client();
    service.fail(&client, "198.51.100.66", 2).await;
    let reset = json_of(
        client
            .delete(service.at("/v1/attempts?ip=198.51.100.66"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    assert_eq!(reset["removed"], 1);

    let events = json_of(
        client
            .get(service.at("/v1/events"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    let kinds: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["kind"].as_str().unwrap(),
                event["by"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("lockout_started", "-"), ("lockout_reset", "api (admin)")],
        "{events}"
    );
    let first = events["events"][0]["id"].as_str().unwrap();
    let since = json_of(
        client
            .get(service.at(&format!("/v1/events?since={first}")))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    assert_eq!(since["events"].as_array().unwrap().len(), 1, "{since}");
    let refused = client
        .get(service.at("/v1/events?since=yesterday"))
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    // The follower, a process of its own, prints both, once each, as the API has them.
    let mut followed: Vec<Value> = Vec::new();
    while followed.len() < 2 {
        let line = received
            .recv_timeout(Duration::from_secs(10))
            .expect("lockout events --follow prints each event");
        followed.push(serde_json::from_str(&line).unwrap());
    }
    assert_eq!(followed, events["events"].as_array().unwrap()[..]);
    // Nothing printed twice: the next line is the next event.
    service.fail(&client, "198.51.100.67", 2).await;
    let next: Value = serde_json::from_str(
        &received
            .recv_timeout(Duration::from_secs(10))
            .expect("the next event"),
    )
    .unwrap();
    assert_eq!(next["subject"], "ip=198.51.100.67", "{next}");
    follower.kill().unwrap();
    follower.wait().unwrap();
}

/// Hundreds of lockouts, then their lock ends, each batch written in one round trip across
/// the 16 event streams (so many in one millisecond, with the same stream IDs in different
/// shards): every event has an ID of its own, and a reader paging with a small limit, through
/// the API's `next` cursors or `lockout events --follow`, sees each exactly once.
#[tokio::test]
async fn a_burst_across_shards_is_paged_and_followed_once_each() {
    const BURST: usize = 300;
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        config.admin.password = "s3cret".into();
    })
    .await;
    let engine = redis.engine(policy(3, &[&["ip"]])).await;
    let bounds = engine.policy().events.unwrap();
    let (mut follower, received) = follow_events(&redis);

    let started = lockouts_started(BURST);
    engine
        .store()
        .append_events(&started, bounds)
        .await
        .unwrap();
    // The lock ends, once due (1 ms on), many at a time.
    let mut ended = 0;
    eventually(Duration::from_secs(10), "every lock end told", async || {
        ended += engine.store().end_lockouts(bounds, BURST).await.unwrap();
        ended as usize == BURST
    })
    .await;

    let client = http_client();
    let mut seen: Vec<String> = Vec::new();
    let mut url = service.at("/v1/events?limit=7");
    loop {
        let page = json_of(client.get(&url).basic_auth("admin", Some("s3cret"))).await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        seen.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        let next = page["next"].as_str().unwrap();
        url = service.at(&format!("/v1/events?limit=7&since={next}"));
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    assert_eq!(seen.len(), 2 * BURST, "every event once");
    let kept: usize = (0..16)
        .map(|shard| {
            redis::cmd("XLEN")
                .arg(format!("lockout:events:{shard}"))
                .query::<usize>(&mut redis.connection())
                .unwrap()
        })
        .sum();
    assert_eq!(kept, 2 * BURST);
    let shards: std::collections::HashSet<&str> = seen
        .iter()
        .map(|id| id.rsplit('-').next().unwrap())
        .collect();
    assert!(
        shards.len() > 8,
        "the burst spread over the shards: {shards:?}"
    );

    let mut followed: Vec<String> = Vec::new();
    while followed.len() < 2 * BURST {
        let line = received
            .recv_timeout(Duration::from_secs(10))
            .expect("lockout events --follow prints each event");
        let event: Value = serde_json::from_str(&line).unwrap();
        followed.push(event["id"].as_str().unwrap().to_string());
    }
    followed.sort();
    seen.sort();
    assert_eq!(followed, seen, "the follower saw each event once");
    follower.kill().unwrap();
    follower.wait().unwrap();
}

/// A reset of many identities names the first ten and counts the rest: an event stays small.
#[tokio::test]
async fn a_reset_of_many_identities_names_a_few() {
    let backend = Backend::memory();
    let engine = backend.engine(policy(5, &[&["ip"]])).await;
    let mut identities = Vec::new();
    for n in 0..12 {
        let attempt = Attempt::parse(&format!("10.0.0.{n}"), None, None, None).unwrap();
        engine.fail(&attempt).await.unwrap();
        identities.extend(
            engine
                .list(&Target::Ips(vec![attempt.ip]), false)
                .await
                .unwrap(),
        );
    }
    let identities: Vec<_> = identities
        .into_iter()
        .map(|record| record.identity)
        .collect();
    assert_eq!(engine.remove(&identities, "test").await.unwrap(), 12);
    let events = engine
        .events(&lockout::event::EventCursor::default(), 10)
        .await
        .unwrap();
    let subject = &events.last().unwrap().event.subject;
    assert_eq!(
        subject
            .split(' ')
            .filter(|word| word.starts_with("ip="))
            .count(),
        10
    );
    assert!(subject.ends_with("and 2 more"), "{subject}");
}

/// The admin page lists the events, newest first, and an identity's history from its record.
#[tokio::test]
async fn the_admin_page_shows_the_events_and_an_identitys_history() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        config.admin.password = "s3cret".into();
        config.policy = policy(2, &[&["ip"]]);
    })
    .await;
    let client = http_client();
    service.fail(&client, "198.51.100.66", 2).await;
    service.fail(&client, "198.51.100.67", 2).await;
    let page = |path: &str| {
        text_of(
            client
                .get(service.at(&format!("/dj-ad-admin/{path}")))
                .basic_auth("admin", Some("s3cret")),
        )
    };
    let attempts = page("").await;
    assert!(
        attempts.contains("events?subject=ip%3D198.51.100.66\">history</a>"),
        "{attempts}"
    );
    let all = page("events").await;
    let newest = all.find("ip=198.51.100.67").expect("the second lockout");
    let oldest = all.find("ip=198.51.100.66").expect("the first lockout");
    assert!(newest < oldest, "newest first: {all}");
    assert!(all.contains("locked out for 30 min"), "{all}");
    let history = page("events?subject=ip%3D198.51.100.66").await;
    assert!(history.contains("ip=198.51.100.66"), "{history}");
    assert!(!history.contains("ip=198.51.100.67"), "{history}");
}

/// `lockout --json events --follow` on `redis`, and its lines as they come.
fn follow_events(redis: &RedisServer) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut follower = lockout_command(&[("LOCKOUT_REDIS_URL", &redis.url())])
        .args(["--json", "events", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (follower, received)
}
