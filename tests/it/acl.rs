//! A Redis ACL user with exactly the rules docs/deployment.md gives runs every command, endpoint
//! and the lock cache, and Redis denies it nothing (`ACL LOG` stays empty); without the channel
//! pattern, resets still work and the lock cache says once why it is off.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::http_client;
use crate::support::{eventually, free_port, lockout_command, RedisServer, ServeProcess};
use crate::webhooks::Receiver;

const PASSWORD: &str = "change-me";

/// The documented `ACL SETUSER` line, with the words `keep` keeps, applied to `redis`.
fn create_documented_user(redis: &RedisServer, keep: impl Fn(&str) -> bool) {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deployment.md"))
        .unwrap();
    let rule = docs
        .lines()
        .find(|line| line.starts_with("ACL SETUSER lockout "))
        .expect("docs/deployment.md gives the ACL rules");
    let mut command = redis::cmd("ACL");
    for word in rule.split_whitespace().skip(1).filter(|word| keep(word)) {
        command.arg(word);
    }
    assert!(rule.contains(&format!(">{PASSWORD}")));
    let () = command.query(&mut redis.connection()).unwrap();
}

/// `ACL LOG`: what Redis denied, as (object, count).
fn denials(redis: &RedisServer) -> Vec<(String, i64)> {
    let entries: Vec<HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query(&mut redis.connection())
        .unwrap();
    entries
        .into_iter()
        .map(|entry| {
            let object: String = redis::from_redis_value(entry["object"].clone()).unwrap();
            let count: i64 = redis::from_redis_value(entry["count"].clone()).unwrap();
            (object, count)
        })
        .collect()
}

fn lockout_url(redis: &RedisServer) -> String {
    format!("redis://lockout:{PASSWORD}@127.0.0.1:{}", redis.port())
}

/// `lockout serve` as the ACL user, with the admin API on, locks of a second and a webhook to
/// `receiver` (so that lock ends are told, and events delivered, as that user).
fn serve(redis: &RedisServer, receiver: &Receiver) -> (ServeProcess, String) {
    let port = free_port();
    let url = lockout_url(redis);
    let webhooks = json!([{"url": receiver.url, "secret": "an-acl-test-secret"}]).to_string();
    let serving = ServeProcess::start(
        &["--listen", &format!("127.0.0.1:{port}")],
        &[
            ("LOCKOUT_REDIS_URL", url.as_str()),
            ("LOCKOUT_ADMIN_PASSWORD", "admin-pw"),
            ("LOCKOUT_POLICY_LOCKOUT_DURATION", "1s"),
            ("LOCKOUT_POLICY_SPRAYING_LIMIT", "2"),
            ("LOCKOUT_WEBHOOKS", &webhooks),
        ],
        port,
    );
    (serving, format!("http://127.0.0.1:{port}"))
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut request = http_client()
        .request(method.clone(), &url)
        .basic_auth("admin", Some("admin-pw"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{method} {url}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

async fn lock_out(base: &str) {
    let attempt =
        json!({"ip": "10.0.0.1", "username": "alice", "user_agent": "t", "path": "/login"});
    for _ in 0..3 {
        call(
            reqwest::Method::POST,
            format!("{base}/v1/failure"),
            Some(attempt.clone()),
        )
        .await;
    }
    let check = call(
        reqwest::Method::POST,
        format!("{base}/v1/check"),
        Some(json!({"ip": "10.0.0.1", "username": "alice"})),
    )
    .await;
    assert_eq!(check["locked"], true, "{check}");
}

fn ping(redis: &RedisServer) -> std::process::Output {
    lockout_command(&[("LOCKOUT_REDIS_URL", &lockout_url(redis))])
        .arg("ping")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_documented_rules_allow_every_command_endpoint_and_the_lock_cache() {
    let redis = RedisServer::start();
    create_documented_user(&redis, |_| true);

    let pinged = ping(&redis);
    let said = String::from_utf8_lossy(&pinged.stdout);
    assert!(pinged.status.success(), "{said}");
    assert!(said.contains("everything lockout needs works"), "{said}");

    let receiver = Receiver::start(0).await;
    let (serving, base) = serve(&redis, &receiver);
    lock_out(&base).await;
    eventually(
        Duration::from_secs(10),
        "the lock's start and end delivered",
        async || {
            let kinds: Vec<String> = receiver.accepted().into_iter().map(|d| d.kind).collect();
            kinds.iter().any(|kind| kind == "lockout_expired")
        },
    )
    .await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let delete = reqwest::Method::DELETE;
    let bob = json!({"ip": "10.0.0.2", "username": "bob"});
    call(post.clone(), format!("{base}/v1/success"), Some(bob)).await;
    let listed = call(get.clone(), format!("{base}/v1/attempts"), None).await;
    assert_eq!(listed["attempts"].as_array().unwrap().len(), 1, "{listed}");
    call(get.clone(), format!("{base}/v1/attempts?limit=10"), None).await;
    call(get.clone(), format!("{base}/v1/logs"), None).await;
    call(get.clone(), format!("{base}/dj-ad-admin/"), None).await;
    call(get.clone(), format!("{base}/readyz"), None).await;
    call(get, format!("{base}/metrics"), None).await;
    let records = json!({"records": [{"ip": "10.0.0.1"}]});
    call(
        post.clone(),
        format!("{base}/v1/attempts/delete"),
        Some(records),
    )
    .await;
    lock_out(&base).await;
    let removed = call(delete.clone(), format!("{base}/v1/attempts?all=true"), None).await;
    assert_eq!(removed["removed"], 1, "{removed}");
    let check = json!({"ip": "10.0.0.1", "username": "alice"});
    let after = call(post, format!("{base}/v1/check"), Some(check)).await;
    assert_eq!(after["locked"], false, "{after}");
    call(delete, format!("{base}/v1/logs?older_than=1s"), None).await;
    let log = String::from_utf8(serving.terminate().stderr).unwrap();
    assert!(!log.contains("NoPerm"), "{log}");

    let url = lockout_url(&redis);
    for args in [
        &["fail", "--ip", "10.0.0.3"][..],
        &["check", "--ip", "10.0.0.3"],
        &["succeed", "--ip", "10.0.0.3"],
        &["list"],
        &["logs"],
        &["axes_list_attempts"],
        &["reset", "--all"],
        &["reset-logs", "--older-than", "1s"],
    ] {
        let output = lockout_command(&[("LOCKOUT_REDIS_URL", &url)])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(denials(&redis), [], "Redis denied nothing");
}

#[tokio::test]
async fn without_the_channel_pattern_resets_work_and_the_lock_cache_says_once_why_it_is_off() {
    let redis = RedisServer::start();
    create_documented_user(&redis, |word| word != "&lockout:*");

    let receiver = Receiver::start(0).await;
    let (serving, base) = serve(&redis, &receiver);
    lock_out(&base).await;
    let removed = call(
        reqwest::Method::DELETE,
        format!("{base}/v1/attempts?all=true"),
        None,
    )
    .await;
    assert_eq!(removed["removed"], 1, "{removed}");
    let check = json!({"ip": "10.0.0.1", "username": "alice"});
    let after = call(
        reqwest::Method::POST,
        format!("{base}/v1/check"),
        Some(check),
    )
    .await;
    assert_eq!(after["locked"], false, "{after}");
    // The lock cache has tried to listen at least three times (Redis counts the denials of
    // the reset's PUBLISH and of the SUBSCRIBEs in one entry, under the channel's name).
    eventually(
        Duration::from_secs(10),
        "three refused subscriptions",
        async || {
            denials(&redis)
                .iter()
                .any(|(object, count)| object == "lockout:resets" && *count >= 4)
        },
    )
    .await;
    let log = String::from_utf8(serving.terminate().stderr).unwrap();
    assert_eq!(log.matches("lock cache off").count(), 1, "{log}");
    assert!(log.contains("may not subscribe"), "{log}");
    assert!(log.contains("reset not announced"), "{log}");

    let pinged = ping(&redis);
    let said = String::from_utf8_lossy(&pinged.stdout);
    assert_eq!(pinged.status.code(), Some(1), "{said}");
    for failed in ["publish", "subscribe"] {
        assert!(
            said.lines()
                .any(|line| line.trim_start().starts_with(failed) && line.contains("FAILED")),
            "{said}"
        );
    }
    assert!(said.contains("not working: publish, subscribe"), "{said}");
}
