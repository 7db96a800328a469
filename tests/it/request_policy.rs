//! What a client that brings its own settings needs (the Django Axes handler is one): a policy
//! and a scope per request, a check that only reads, successes that clear user-agent identities,
//! Axes' "IP or username" reset, deleting listed records, paging, and an admin token that a
//! lockout of the caller's address never refuses.

use std::time::Duration;

use lockout::keys::KeyKind;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::support::http_client;
use crate::support::{eventually, RedisServer, TestService};

async fn post(client: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn admin(client: &Client, method: Method, url: String) -> (StatusCode, Value) {
    admin_with(client, method, url, None).await
}

async fn admin_with(
    client: &Client,
    method: Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url).bearer_auth("t0ken");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn start(redis: &RedisServer) -> TestService {
    TestService::start(redis, |config| {
        config.admin.password = "s3cret".into();
        config.admin.token = "t0ken".into();
    })
    .await
}

fn usernames(listing: &Value) -> Vec<String> {
    let mut names: Vec<String> = listing["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            let parameters = &record["parameters"];
            format!(
                "{}/{}",
                parameters["ip"].as_str().unwrap_or("-"),
                parameters["username"].as_str().unwrap_or("-")
            )
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_request_policy_replaces_the_configured_one_for_that_request() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    let axes = json!({
        "failure_limit": 2,
        "cooloff": "90s",
        "lockout_parameters": [["username", "ip_address"]],
    });
    let failure = json!({"ip": "10.0.0.1", "username": "alice", "policy": axes});
    let (status, first) = post(&client, service.at("/v1/failure"), failure.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        first["failures"],
        json!([{"parameters": ["ip", "username"], "count": 1}])
    );
    let (_, second) = post(&client, service.at("/v1/failure"), failure).await;
    assert_eq!(second["locked"], true, "the request's limit is 2: {second}");
    assert_eq!(second["retry_after_secs"], 90);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(crate::support::key_of(
            "lockout",
            KeyKind::Lock,
            "ip=10.0.0.1&username=alice",
        ))
        .query(&mut redis.connection())
        .unwrap();
    assert!((85_000..=90_000).contains(&pttl), "{pttl}");
    // The configured policy (["ip"], 3 failures) never saw these failures.
    let (_, plain) = post(&client, service.at("/v1/check"), json!({"ip": "10.0.0.1"})).await;
    assert_eq!(plain, json!({"locked": false}));

    let keys = redis.keys().len();
    let (status, bad) = post(
        &client,
        service.at("/v1/check"),
        json!({"ip": "10.0.0.1", "policy": {"cooloff": "forever"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .starts_with("policy.cooloff: "),
        "{bad}"
    );
    let (status, bad) = post(
        &client,
        service.at("/v1/failure"),
        json!({"ip": "10.0.0.1", "policy": {"lockout_parameters": []}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad["error"],
        "policy.lockout_parameters: needs at least one combination"
    );
    assert_eq!(redis.keys().len(), keys, "a refused request writes nothing");
}

#[tokio::test]
async fn a_check_that_only_reads_leaves_the_refusal_to_the_caller() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    let attempt = json!({"ip": "10.0.0.9", "username": "bob"});
    for _ in 0..3 {
        post(&client, service.at("/v1/failure"), attempt.clone()).await;
    }
    let mut read_only = attempt.clone();
    read_only["record_refusal"] = json!(false);
    for _ in 0..3 {
        let (status, body) = post(&client, service.at("/v1/check"), read_only.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["locked"], true);
        assert_eq!(body["locked_by"], json!([["ip"]]));
        assert_eq!(
            body["failures"],
            json!([{"parameters": ["ip"], "count": 3}]),
            "read-only checks count nothing"
        );
    }
    let (_, listing) = admin(&client, Method::GET, service.at("/v1/attempts")).await;
    assert_eq!(listing["attempts"][0]["failures"], 3);
    let (_, logs) = admin(&client, Method::GET, service.at("/v1/logs")).await;
    assert_eq!(logs["logs"].as_array().unwrap().len(), 3, "and log nothing");

    let (_, fresh) = post(
        &client,
        service.at("/v1/check"),
        json!({"ip": "10.0.0.10", "record_refusal": false}),
    )
    .await;
    assert_eq!(
        fresh,
        json!({"locked": false, "failures": [{"parameters": ["ip"], "count": 0}]})
    );
    // The default check records a refused attempt, as before (the lock cache answers it and
    // records it in its next batch).
    post(&client, service.at("/v1/check"), attempt).await;
    eventually(Duration::from_secs(2), "the refusal recorded", async || {
        let (_, listing) = admin(&client, Method::GET, service.at("/v1/attempts")).await;
        listing["attempts"][0]["failures"] == 4
    })
    .await;
}

#[tokio::test]
async fn scopes_keep_sites_apart() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    for scope in ["site-a", "site-a", "site-a", "site-b"] {
        post(
            &client,
            service.at("/v1/failure"),
            json!({"ip": "10.1.1.1", "scope": scope}),
        )
        .await;
    }
    let check = |scope: Option<&str>| {
        let mut body = json!({"ip": "10.1.1.1"});
        if let Some(scope) = scope {
            body["scope"] = scope.into();
        }
        post(&client, service.at("/v1/check"), body)
    };
    assert_eq!(check(Some("site-a")).await.1["locked"], true);
    assert_eq!(check(Some("site-b")).await.1["locked"], false);
    assert_eq!(check(None).await.1["locked"], false);
    assert!(redis.keys().contains(&crate::support::key_of(
        "lockout:scope:site-a",
        KeyKind::Lock,
        "ip=10.1.1.1"
    )));

    let (_, unscoped) = admin(&client, Method::GET, service.at("/v1/attempts")).await;
    assert_eq!(unscoped["attempts"], json!([]));
    let (_, b) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?scope=site-b"),
    )
    .await;
    assert_eq!(b["attempts"][0]["failures"], 1);
    let (_, removed) = admin(
        &client,
        Method::DELETE,
        service.at("/v1/attempts?all=true&scope=site-a"),
    )
    .await;
    assert_eq!(removed, json!({"removed": 1}));
    assert_eq!(check(Some("site-a")).await.1["locked"], false);
    let (_, b) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?scope=site-b"),
    )
    .await;
    assert_eq!(b["attempts"].as_array().unwrap().len(), 1, "site-b kept");
    let (_, logs) = admin(&client, Method::GET, service.at("/v1/logs?scope=site-b")).await;
    assert_eq!(logs["logs"].as_array().unwrap().len(), 1);

    let (status, bad) = post(
        &client,
        service.at("/v1/check"),
        json!({"ip": "10.1.1.1", "scope": "a b"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"].as_str().unwrap().starts_with("scope: "),
        "{bad}"
    );
}

#[tokio::test]
async fn a_success_clears_identities_with_a_user_agent() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    let policy = json!({
        "lockout_parameters": [["username", "user_agent"]],
        "reset_on_success": true,
    });
    let attempt = json!({
        "ip": "10.2.2.2", "username": "carol", "user_agent": "Firefox", "path": "/login",
        "policy": policy,
    });
    post(&client, service.at("/v1/failure"), attempt.clone()).await;
    assert_eq!(redis.keys().len(), 2, "the record and a log shard");
    let (status, body) = post(&client, service.at("/v1/success"), attempt).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"reset": true})));
    let (_, listing) = admin(&client, Method::GET, service.at("/v1/attempts")).await;
    assert_eq!(listing["attempts"], json!([]));
}

#[tokio::test]
async fn admins_reset_by_ip_or_username_and_delete_listed_records() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    let pairs = json!({"lockout_parameters": [["ip", "username"]]});
    for (ip, username) in [
        ("10.0.0.1", "alice"),
        ("10.0.0.1", "bob"),
        ("10.0.0.2", "alice"),
        ("10.0.0.2", "bob"),
        ("10.0.0.3", "carol"),
    ] {
        post(
            &client,
            service.at("/v1/failure"),
            json!({"ip": ip, "username": username, "policy": pairs}),
        )
        .await;
    }
    let (_, either) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?ip=10.0.0.1&username=alice&match=any"),
    )
    .await;
    assert_eq!(
        usernames(&either),
        ["10.0.0.1/alice", "10.0.0.1/bob", "10.0.0.2/alice"],
        "each record once, though both filters match 10.0.0.1/alice"
    );
    let (_, removed) = admin(
        &client,
        Method::DELETE,
        service.at("/v1/attempts?ip=10.0.0.1&username=alice&match=any"),
    )
    .await;
    assert_eq!(removed, json!({"removed": 3}));

    let (status, removed) = admin_with(
        &client,
        Method::POST,
        service.at("/v1/attempts/delete"),
        Some(json!({"records": [
            {"ip": "10.0.0.2", "username": "bob"},
            {"ip": "10.0.0.2", "username": "nobody"},
        ]})),
    )
    .await;
    assert_eq!((status, removed), (StatusCode::OK, json!({"removed": 1})));
    let (_, left) = admin(&client, Method::GET, service.at("/v1/attempts")).await;
    assert_eq!(usernames(&left), ["10.0.0.3/carol"]);

    let (status, bad) = admin_with(
        &client,
        Method::POST,
        service.at("/v1/attempts/delete"),
        Some(json!({"records": [{"ip": "10.0.0.3"}, {"ip": "nope"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad["error"],
        "records[1].ip: \"nope\" is not a valid IP address"
    );
}

#[tokio::test]
async fn listings_come_in_pages_when_asked() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    for n in 0..30 {
        post(
            &client,
            service.at("/v1/failure"),
            json!({"ip": format!("10.9.0.{n}")}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut url = service.at("/v1/attempts?limit=7");
    for _ in 0..30 {
        let (status, page) = admin(&client, Method::GET, url.clone()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(usernames(&page));
        match page["next"].as_str() {
            Some(next) => url = service.at(&format!("/v1/attempts?limit=7&cursor={next}")),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 30, "every record, once");
    let (status, _) = admin(&client, Method::GET, service.at("/v1/attempts?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin(&client, Method::GET, service.at("/v1/attempts?cursor=0-0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_valid_admin_token_is_not_refused_for_a_locked_address() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    // The Django site calls from 127.0.0.1; wrong tokens from there lock the address out of
    // the admin (five, `admin.failure_limit`).
    for _ in 0..5 {
        let wrong = client
            .get(service.at("/v1/attempts"))
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let wrong = client
        .get(service.at("/v1/attempts"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = admin(&client, Method::GET, service.at("/v1/attempts")).await;
    assert_eq!(status, StatusCode::OK, "the right token still works");
}

#[tokio::test]
async fn a_request_policy_equal_to_the_configured_one_keeps_the_lock_cache() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    // What a site whose Axes settings match the service's configuration sends.
    let attempt = json!({"ip": "10.4.4.4", "policy": {"failure_limit": 3, "cooloff": "30m"}});
    for _ in 0..3 {
        post(&client, service.at("/v1/failure"), attempt.clone()).await;
    }
    let reads = redis.command_calls("pttl");
    for _ in 0..20 {
        let (_, verdict) = post(&client, service.at("/v1/check"), attempt.clone()).await;
        assert_eq!(verdict["locked"], true);
    }
    assert_eq!(
        redis.command_calls("pttl"),
        reads,
        "answered from the lock cache"
    );
}

/// A request may set the policy keys docs/api.md lists (the Django integration sends six of
/// them), not those that would weaken the service for its requests, and may lower the
/// access-log bounds, not raise them.
#[tokio::test]
async fn a_request_policy_sets_only_the_documented_keys_within_the_configured_bounds() {
    let redis = RedisServer::start();
    let service = start(&redis).await;
    let client = http_client();
    let django = json!({
        "failure_limit": 2,
        "cooloff": "1h",
        "lockout_parameters": [["ip", "username"]],
        "lock_out_at_failure": true,
        "reset_on_success": true,
        "reset_cooloff_on_failure_during_lockout": false,
        "deny": ["192.0.2.0/24"],
        "access_log_retention": "1d",
        "access_log_max_entries": 10,
    });
    for _ in 0..2 {
        let failure = json!({"ip": "10.2.0.1", "username": "bob", "policy": django});
        let (status, _) = post(&client, service.at("/v1/failure"), failure).await;
        assert_eq!(status, StatusCode::OK);
    }
    let check = json!({"ip": "10.2.0.1", "username": "bob", "policy": django});
    assert_eq!(
        post(&client, service.at("/v1/check"), check).await.1["locked"],
        true
    );

    let keys = redis.keys().len();
    for (key, value) in [
        ("never_lockout", json!(["0.0.0.0/0"])),
        ("access_log", json!(false)),
        ("events", json!(false)),
        ("ipv6_prefix_length", json!(128)),
        ("lockout_memory", json!("1d")),
    ] {
        let mut policy = serde_json::Map::new();
        policy.insert(key.into(), value);
        let failure = json!({"ip": "10.2.0.2", "policy": policy});
        let (status, bad) = post(&client, service.at("/v1/failure"), failure).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}");
        let error = bad["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("policy.{key}: not accepted in a request")),
            "{bad}"
        );
    }
    for (key, value, bound) in [
        (
            "access_log_max_entries",
            json!(u64::MAX),
            "policy.access_log_max_entries: at most",
        ),
        (
            "access_log_retention",
            json!("360d"),
            "policy.access_log_retention: at most",
        ),
    ] {
        let mut policy = serde_json::Map::new();
        policy.insert(key.into(), value);
        let failure = json!({"ip": "10.2.0.2", "policy": policy});
        let (status, bad) = post(&client, service.at("/v1/failure"), failure).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}");
        assert!(bad["error"].as_str().unwrap().starts_with(bound), "{bad}");
    }
    assert_eq!(redis.keys().len(), keys, "a refused request writes nothing");
}
