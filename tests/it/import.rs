//! `POST /v1/attempts/import` on Redis (a server and a cluster) and on the in-process store: imported records keep their
//! counts, and their locks for the time given, every key with a TTL; counts carry on; the same
//! import again changes nothing; a dry run writes nothing; a bad record is refused, naming its
//! field, before anything is written.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use lockout::config::Config;
use lockout::keys::KeyKind;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::support::{http_client, key_of, RedisCluster, RedisServer, TestService};

const TOKEN: &str = "t0ken";

fn configure(config: &mut Config) {
    config.admin.password = "s3cret".into();
    config.admin.token = TOKEN.into();
}

async fn post(client: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn get(client: &Client, url: String) -> Value {
    let response = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The records of a listing by their identity's text (`ip=10.0.0.1&username=alice`).
async fn listed(client: &Client, service: &TestService, query: &str) -> HashMap<String, Value> {
    let listing = get(client, service.at(&format!("/v1/attempts{query}"))).await;
    listing["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            let parameters = record["parameters"].as_object().unwrap();
            let name: Vec<String> = ["ip", "username", "user_agent"]
                .into_iter()
                .filter_map(|field| Some(format!("{field}={}", parameters.get(field)?.as_str()?)))
                .collect();
            (name.join("&"), record.clone())
        })
        .collect()
}

/// An IP's lockout of 25 minutes left of a 30-minute cool-off, an IPv6 client's of 10 minutes,
/// a pair's count under the limit.
fn records() -> Value {
    json!([
        {
            "parameters": {"ip": "10.0.0.1"},
            "failures": 5,
            "first_failure": "2026-12-06T03:00:00Z",
            "last_failure": "2026-12-06T03:40:00Z",
            "user_agent": "curl/8.5",
            "path": "/admin/login/",
            "expires_in_secs": 1500,
            "locked_for_secs": 1200,
        },
        {
            "parameters": {"ip": "10.0.0.2", "username": "alice"},
            "failures": 2,
            "first_failure": "2026-12-06T03:10:00Z",
            "last_failure": "2026-12-06T03:20:00Z",
            "expires_in_secs": 1500,
            "locked_for_secs": null,
        },
        {
            "parameters": {"ip": "2001:db8::1"},
            "failures": 7,
            "first_failure": "2026-12-06T03:30:00Z",
            "last_failure": "2026-12-06T03:30:00Z",
            "expires_in_secs": 600,
            "locked_for_secs": 600,
        },
    ])
}

fn assert_within(value: &Value, range: RangeInclusive<u64>, what: &str) {
    let value = value.as_u64().unwrap_or_else(|| panic!("{what}: {value}"));
    assert!(range.contains(&value), "{what}: {value} not in {range:?}");
}

/// The import's behaviour over HTTP, the same on every store.
async fn imported_records_keep_their_locks_and_counts(service: &TestService) {
    let client = http_client();
    let import = service.at("/v1/attempts/import");
    let (status, answer) = post(&client, import.clone(), json!({"records": records()})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"imported": 3, "locked": 2}));

    let records = listed(&client, service, "").await;
    let ip = &records["ip=10.0.0.1"];
    assert_eq!((&ip["failures"], &ip["locked"]), (&json!(5), &json!(true)));
    assert_within(&ip["retry_after_secs"], 1170..=1200, "the IP's lock");
    assert_eq!(ip["first_failure"], "2026-12-06T03:00:00.000Z");
    assert_eq!(ip["last_failure"], "2026-12-06T03:40:00.000Z");
    assert_eq!(
        (&ip["user_agent"], &ip["path"]),
        (&json!("curl/8.5"), &json!("/admin/login/"))
    );
    // Counted as logins count an IPv6 client: by its network.
    let network = &records["ip=2001:db8::"];
    assert_eq!(network["failures"], 7);
    assert_within(
        &network["retry_after_secs"],
        570..=600,
        "the network's lock",
    );
    let pair = &records["ip=10.0.0.2&username=alice"];
    assert_eq!(
        (&pair["failures"], &pair["locked"]),
        (&json!(2), &json!(false))
    );

    for ip in ["10.0.0.1", "2001:db8::2"] {
        let (_, check) = post(
            &client,
            service.at("/v1/check"),
            json!({"ip": ip, "record_refusal": false}),
        )
        .await;
        assert_eq!(check["locked"], true, "{ip}: {check}");
    }

    // The pair's count carries on: its third failure locks it.
    let pairs = json!({"lockout_parameters": [["ip_address", "username"]]});
    let (_, failure) = post(
        &client,
        service.at("/v1/failure"),
        json!({"ip": "10.0.0.2", "username": "alice", "policy": pairs}),
    )
    .await;
    assert_eq!(failure["locked"], true, "{failure}");
    assert_eq!(failure["failures"][0]["count"], 3);

    // The same import again: nothing doubles, nothing is lowered, no lockout starts again.
    let (_, again) = post(&client, import.clone(), json!({"records": self::records()})).await;
    assert_eq!(again, json!({"imported": 3, "locked": 2}));
    let after = listed(&client, service, "").await;
    assert_eq!(after["ip=10.0.0.1"]["failures"], 5);
    assert_eq!(after["ip=10.0.0.1"]["first_failure"], ip["first_failure"]);
    let pair = &after["ip=10.0.0.2&username=alice"];
    assert_eq!(
        (&pair["failures"], &pair["locked"]),
        (&json!(3), &json!(true))
    );
    assert!(
        pair["last_failure"].as_str() > Some("2026-12-06T03:20:00.000Z"),
        "the failure's time stays: {pair}"
    );
    let events = get(&client, service.at("/v1/events")).await;
    let mut started: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "lockout_started")
        .map(|event| {
            (
                event["subject"].as_str().unwrap(),
                event["by"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    started.sort();
    assert_eq!(
        started,
        [
            ("ip=10.0.0.1", "import (admin token)"),
            ("ip=10.0.0.2&username=alice", "-"),
            ("ip=2001%3Adb8%3A%3A", "import (admin token)"),
        ]
    );

    let newcomer = json!([{
        "parameters": {"ip": "10.0.0.9"},
        "failures": 3,
        "first_failure": "2026-12-06T03:00:00Z",
        "last_failure": "2026-12-06T03:00:00Z",
        "expires_in_secs": 60,
        "locked_for_secs": 60,
    }]);
    let (_, dry) = post(
        &client,
        import.clone(),
        json!({"records": newcomer, "dry_run": true}),
    )
    .await;
    assert_eq!(dry, json!({"imported": 1, "locked": 1, "dry_run": true}));
    assert!(!listed(&client, service, "")
        .await
        .contains_key("ip=10.0.0.9"));

    let (_, scoped) = post(
        &client,
        import,
        json!({"records": newcomer, "scope": "site-a"}),
    )
    .await;
    assert_eq!(scoped, json!({"imported": 1, "locked": 1}));
    let in_scope = listed(&client, service, "?scope=site-a").await;
    assert_eq!(in_scope.keys().collect::<Vec<_>>(), ["ip=10.0.0.9"]);
    assert!(!listed(&client, service, "")
        .await
        .contains_key("ip=10.0.0.9"));
}

#[tokio::test]
async fn imported_records_keep_their_locks_and_counts_on_redis() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, configure).await;
    imported_records_keep_their_locks_and_counts(&service).await;

    let pttl = |kind, tag| -> i64 {
        redis::cmd("PTTL")
            .arg(key_of("lockout", kind, tag))
            .query(&mut redis.connection())
            .unwrap()
    };
    let record = pttl(KeyKind::Attempt, "ip=10.0.0.1");
    assert!((1_170_000..=1_500_000).contains(&record), "{record}");
    let lock = pttl(KeyKind::Lock, "ip=10.0.0.1");
    assert!((1_170_000..=1_200_000).contains(&lock), "{lock}");
    for key in redis.keys() {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query(&mut redis.connection())
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL: {ttl}");
    }
}

#[tokio::test]
async fn imported_records_keep_their_locks_and_counts_on_a_cluster() {
    let cluster = RedisCluster::start(0);
    let service = TestService::start_on(cluster.endpoint(), configure).await;
    imported_records_keep_their_locks_and_counts(&service).await;
}

#[tokio::test]
async fn imported_records_keep_their_locks_and_counts_in_process() {
    let service = TestService::start_with(configure).await;
    imported_records_keep_their_locks_and_counts(&service).await;
}

#[tokio::test]
async fn a_bad_record_is_refused_naming_its_field_before_anything_is_written() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, configure).await;
    let client = http_client();
    let good = records()[0].clone();
    let with = |field: &str, value: Value| {
        let mut record = good.clone();
        record[field] = value;
        record
    };
    let without = |field: &str| {
        let mut record = good.clone();
        record.as_object_mut().unwrap().remove(field);
        record
    };
    let cases = [
        (
            with("failures", json!(0)),
            "records[1].failures: from 1 to 999999999999999",
        ),
        (
            with("failures", json!(-1)),
            "records[1].failures: invalid value: integer `-1`",
        ),
        (
            with("first_failure", json!("yesterday")),
            "records[1].first_failure: \"yesterday\" is not an RFC 3339 time in UTC",
        ),
        (
            with("last_failure", json!("2026-12-06T02:00:00Z")),
            "records[1].last_failure: before first_failure",
        ),
        (
            with("expires_in_secs", json!(0)),
            "records[1].expires_in_secs: from 1 to 31536000 (365 days)",
        ),
        (
            with("locked_for_secs", json!(31_536_001)),
            "records[1].locked_for_secs: from 1 to 31536000 (365 days)",
        ),
        (
            with("parameters", json!({})),
            "records[1].parameters: name the identity by its ip, username or user_agent",
        ),
        (
            with("parameters", json!({"ip": "nope"})),
            "records[1].parameters.ip: \"nope\" is not a valid IP address",
        ),
        (
            with("parameters", json!({"ip": "10.0.0.1", "cookie": "x"})),
            "records[1].parameters.cookie: unknown field `cookie`",
        ),
        (
            without("expires_in_secs"),
            "missing field `expires_in_secs`",
        ),
        (
            with("count", json!(3)),
            "records[1].count: unknown field `count`",
        ),
    ];
    for (bad, error) in cases {
        let body = json!({"records": [good.clone(), bad]});
        let (status, answer) = post(&client, service.at("/v1/attempts/import"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.starts_with(error) || message.contains(error),
            "{message}"
        );
    }
    assert_eq!(redis.keys(), Vec::<String>::new(), "nothing was written");

    let unauthenticated = client
        .post(service.at("/v1/attempts/import"))
        .json(&json!({"records": [good]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}
