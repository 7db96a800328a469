//! `lockout serve` over real TCP: every endpoint and shape, the Axes scenario through HTTP,
//! authentication, bad input (including random bodies), Redis going away and coming back,
//! graceful shutdown.

use std::time::{Duration, Instant};

use lockout::config::OnStoreError;
use lockout::keys::KeyKind;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::support::http_client;
use crate::support::{
    admin, eventually, free_port, lockout_command, policy, with_admin, RedisServer, ServeProcess,
    TestService,
};

async fn post(client: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn design_reference_scenario_through_http() {
    let redis = RedisServer::start();
    let service =
        TestService::start(&redis, |c| c.policy = policy(3, &[&["username"], &["ip"]])).await;
    let client = http_client();
    let steps = [
        ("failure", "10.0.0.1", "u1", false),
        ("failure", "10.0.0.2", "u1", false),
        ("failure", "10.0.0.2", "u1", true),
        ("check", "10.0.0.3", "u1", true),
        ("failure", "10.0.0.1", "u2", false),
        ("check", "10.0.0.1", "u1", true),
        ("check", "10.0.0.1", "u2", true),
        ("check", "10.0.0.1", "u3", true),
    ];
    for (n, (endpoint, ip, username, locked)) in steps.into_iter().enumerate() {
        let (status, body) = post(
            &client,
            service.at(&format!("/v1/{endpoint}")),
            json!({"ip": ip, "username": username}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["locked"], locked, "step {}: {body}", n + 1);
    }
    let (_, body) = post(
        &client,
        service.at("/v1/check"),
        json!({"ip": "10.0.0.1", "username": "u3"}),
    )
    .await;
    assert_eq!(
        body["locked_by"],
        json!([["ip"]]),
        "u3 has 2 now, IP1 is locked"
    );
}

#[tokio::test]
async fn login_endpoints_answer_the_documented_shapes() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        c.policy = policy(2, &[&["ip"], &["ip", "username"]]);
        c.policy.reset_on_success = true;
        c.policy.deny = lockout::policy::IpList::parse("deny", &["192.0.2.0/24"]).unwrap();
    })
    .await;
    let client = http_client();
    let alice =
        json!({"ip": "10.0.0.1", "username": "alice", "user_agent": "curl/8", "path": "/login"});
    assert_eq!(
        post(&client, service.at("/v1/check"), json!({"ip": "10.0.0.1"})).await,
        (StatusCode::OK, json!({"locked": false}))
    );
    assert_eq!(
        post(&client, service.at("/v1/failure"), alice.clone())
            .await
            .1,
        json!({"locked": false, "retry_after_secs": null, "failures": [
            {"parameters": ["ip"], "count": 1},
            {"parameters": ["ip", "username"], "count": 1},
        ]})
    );
    assert_eq!(
        post(&client, service.at("/v1/failure"), alice.clone())
            .await
            .1,
        json!({"locked": true, "retry_after_secs": 1800, "failures": [
            {"parameters": ["ip"], "count": 2},
            {"parameters": ["ip", "username"], "count": 2},
        ]})
    );
    assert_eq!(
        post(
            &client,
            service.at("/v1/check"),
            json!({"ip": "10.0.0.1", "username": "alice", "user_agent": "x"})
        )
        .await
        .1,
        json!({"locked": true, "reason": "lockout", "retry_after_secs": 1800, "locked_by": [["ip"], ["ip", "username"]]})
    );
    assert_eq!(
        post(&client, service.at("/v1/check"), json!({"ip": "192.0.2.1"}))
            .await
            .1,
        json!({"locked": true, "reason": "deny_list", "retry_after_secs": null, "locked_by": []})
    );
    assert_eq!(
        post(
            &client,
            service.at("/v1/success"),
            json!({"ip": "10.0.0.1", "username": "alice"})
        )
        .await
        .1,
        json!({"reset": true})
    );
    assert_eq!(
        post(
            &client,
            service.at("/v1/check"),
            json!({"ip": "10.0.0.1", "username": "alice"})
        )
        .await
        .1,
        json!({"locked": false})
    );
    let response = client.get(service.at("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn admin_endpoints_list_and_delete() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        with_admin(c);
        c.policy = policy(2, &[&["ip", "username"]]);
    })
    .await;
    let client = http_client();
    for (ip, username) in [
        ("10.0.0.1", "alice"),
        ("10.0.0.1", "alice"),
        ("10.0.0.2", "bob"),
    ] {
        post(
            &client,
            service.at("/v1/failure"),
            json!({"ip": ip, "username": username, "user_agent": "ua", "path": "/login"}),
        )
        .await;
    }
    let (status, body) = admin(&client, Method::GET, service.at("/v1/attempts")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["attempts"].as_array().unwrap().len(), 2);
    let (_, body) = admin(&client, Method::GET, service.at("/v1/attempts?locked=true")).await;
    let locked = &body["attempts"][0];
    assert_eq!(body["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(
        locked["parameters"],
        json!({"ip": "10.0.0.1", "username": "alice"})
    );
    assert_eq!(
        (locked["failures"].as_u64(), locked["locked"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(
        (locked["user_agent"].as_str(), locked["path"].as_str()),
        (Some("ua"), Some("/login"))
    );
    let (_, body) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?username=bob"),
    )
    .await;
    assert_eq!(body["attempts"][0]["parameters"]["ip"], "10.0.0.2");

    let (status, body) = admin(&client, Method::DELETE, service.at("/v1/attempts")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("all=true"));
    let (status, body) = admin(
        &client,
        Method::DELETE,
        service.at("/v1/attempts?ip=10.0.0.1&all=true"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        admin(
            &client,
            Method::DELETE,
            service.at("/v1/attempts?ip=10.0.0.1&username=alice")
        )
        .await,
        (StatusCode::OK, json!({"removed": 1}))
    );
    assert_eq!(
        admin(&client, Method::DELETE, service.at("/v1/attempts?all=true")).await,
        (StatusCode::OK, json!({"removed": 1}))
    );

    let (status, body) = admin(
        &client,
        Method::GET,
        service.at("/v1/logs?username=alice&limit=1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let entries = body["logs"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["outcome"], "failure");
    assert_eq!(entries[0]["username"], "alice");
    assert_eq!(
        admin(
            &client,
            Method::DELETE,
            service.at("/v1/logs?older_than=1h")
        )
        .await,
        (StatusCode::OK, json!({"removed": 0}))
    );
    assert_eq!(
        admin(
            &client,
            Method::DELETE,
            service.at("/v1/logs?older_than=0s")
        )
        .await,
        (StatusCode::OK, json!({"removed": 3}))
    );
    let (status, body) = admin(
        &client,
        Method::DELETE,
        service.at("/v1/logs?older_than=soon"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with("older_than:"),
        "{body}"
    );
}

#[tokio::test]
async fn an_admin_token_alone_enables_the_admin_api_for_bearers_only() {
    let service = TestService::start_with(|c| c.admin.token = "t0ken-only".into()).await;
    let client = http_client();
    let attempts = service.at("/v1/attempts");
    let response = client
        .get(&attempts)
        .bearer_auth("t0ken-only")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Basic, even with the default username and an empty password, is refused, saying why.
    let response = client
        .get(&attempts)
        .basic_auth("admin", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP Basic is disabled") && error.contains("admin.password"),
        "{body}"
    );
    let response = client
        .get(&attempts)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The admin page needs the password: every page of it says how to enable it.
    for page in ["/dj-ad-admin/", "/dj-ad-admin/logs"] {
        let response = client.get(service.at(page)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{page}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("set admin.password (LOCKOUT_ADMIN_PASSWORD)"),
            "{page}: {body}"
        );
    }
}

#[tokio::test]
async fn admin_authentication_401_403_and_lockout() {
    let redis = RedisServer::start();
    let disabled = TestService::start(&redis, |_| {}).await;
    let client = http_client();
    let response = client
        .get(disabled.at("/v1/attempts"))
        .basic_auth("admin", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("admin.password"),
        "{body}"
    );

    let service = TestService::start(&redis, |c| {
        with_admin(c);
        c.admin.token = "t0ken".into();
        c.admin.failure_limit = std::num::NonZeroU32::new(3).unwrap();
    })
    .await;
    let attempts = service.at("/v1/attempts");
    let response = client.get(&attempts).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let response = client
        .get(&attempts)
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        admin(&client, Method::GET, attempts.clone()).await.0,
        StatusCode::OK
    );
    for wrong in ["guess1", "guess2"] {
        let response = client
            .get(&attempts)
            .basic_auth("admin", Some(wrong))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = client
        .get(&attempts)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the third wrong guess"
    );
    // Locked out now, even with the right password.
    let response = client
        .get(&attempts)
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 850,
        "admin.cooloff, 15 minutes"
    );
    // The refused attempt is recorded too, in the admin logins' own scope.
    let mut connection = redis.connection();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let failures: u64 = redis::cmd("HGET")
            .arg(crate::support::key_of(
                "lockout:scope:_admin",
                KeyKind::Attempt,
                "ip=127.0.0.1",
            ))
            .arg(lockout::keys::record_field::FAILURES)
            .query(&mut connection)
            .unwrap();
        if failures == 4 {
            break; // 3 wrong guesses and the refused attempt
        }
        assert!(Instant::now() < deadline, "failures stay at {failures}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn api_token_protects_the_login_endpoints() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.api_token = Some("k3y".into())).await;
    let client = http_client();
    for endpoint in ["/v1/check", "/v1/failure", "/v1/success"] {
        let response = client
            .post(service.at(endpoint))
            .json(&json!({"ip": "10.0.0.1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{endpoint}");
        let response = client
            .post(service.at(endpoint))
            .bearer_auth("k3y")
            .json(&json!({"ip": "10.0.0.1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{endpoint}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_problem() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, with_admin).await;
    let client = http_client();
    let long = "x".repeat(300);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "/v1/check",
            "{".into(),
            StatusCode::BAD_REQUEST,
            "request body: not valid JSON (EOF while parsing an object",
        ),
        (
            "/v1/check",
            "[]".into(),
            StatusCode::BAD_REQUEST,
            "expected struct CheckRequest",
        ),
        (
            "/v1/check",
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "missing field `ip`",
        ),
        (
            "/v1/check",
            r#"{"ip":"1.2.3.4","password":"x"}"#.into(),
            StatusCode::BAD_REQUEST,
            "unknown field `password`",
        ),
        (
            "/v1/check",
            r#"{"ip":7}"#.into(),
            StatusCode::BAD_REQUEST,
            "ip: invalid type",
        ),
        (
            "/v1/check",
            r#"{"ip":"1.2.3.4","username":["a"]}"#.into(),
            StatusCode::BAD_REQUEST,
            "username: invalid type",
        ),
        (
            "/v1/check",
            r#"{"ip":"not-an-ip"}"#.into(),
            StatusCode::BAD_REQUEST,
            "ip: \"not-an-ip\" is not a valid IP address",
        ),
        (
            "/v1/check",
            r#"{"ip":""}"#.into(),
            StatusCode::BAD_REQUEST,
            "ip: must not be empty",
        ),
        (
            "/v1/failure",
            format!(r#"{{"ip":"1.2.3.4","username":"{long}"}}"#),
            StatusCode::BAD_REQUEST,
            "username: longer than 255",
        ),
        (
            "/v1/failure",
            r#"{"ip":"1.2.3.4"} {}"#.into(),
            StatusCode::BAD_REQUEST,
            "request body: not valid JSON (trailing characters",
        ),
        (
            "/v1/success",
            format!(r#"{{"ip":"1.2.3.4","path":"{}"}}"#, "a".repeat(20_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than 16384 bytes",
        ),
    ];
    for (endpoint, body, status, says) in cases {
        let response = client
            .post(service.at(endpoint))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{endpoint} {body:.60}");
        let answer: Value = response.json().await.unwrap();
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{endpoint} {body:.60}: {error}");
    }
    // Only JSON: a web page can make its visitors' browsers post text or a form anywhere, and
    // so lock out anyone, but not JSON.
    let attempt = r#"{"ip":"10.6.6.6","username":"victim"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        for endpoint in ["/v1/check", "/v1/failure", "/v1/success"] {
            let mut request = client.post(service.at(endpoint)).body(attempt);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{endpoint} {content_type:?}"
            );
            let answer: Value = response.json().await.unwrap();
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{answer}"
            );
        }
    }
    assert_eq!(redis.keys(), Vec::<String>::new(), "nothing recorded");
    let response = client
        .post(service.at("/v1/check"))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(attempt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // User agents and paths are truncated, not refused.
    let (status, _) = post(
        &client,
        service.at("/v1/failure"),
        json!({"ip": "1.2.3.4", "user_agent": long, "path": long}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (query, says) in [
        ("/v1/attempts?ip=300.1.1.1", "ip: \"300.1.1.1\""),
        ("/v1/attempts?username=", "username: must not be empty"),
        ("/v1/attempts?locked=maybe", "locked:"),
        ("/v1/attempts?colour=red", "unknown field `colour`"),
        ("/v1/logs?limit=-1", "limit:"),
        ("/v1/logs?limit=20000", "limit: from 1 to 10000"),
    ] {
        let (status, body) = admin(&client, Method::GET, service.at(query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let response = client.get(service.at("/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client.get(service.at("/v1/check")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
}

/// Random bytes, random JSON and mutated valid bodies at every endpoint: never a 5xx.
#[tokio::test]
async fn random_bodies_never_get_a_5xx() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |config| {
        with_admin(config);
        config.devices = Some(lockout::devices::Devices::new(
            "device-secret-0123456789".into(),
        ));
    })
    .await;
    let client = http_client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let fields = [
        "ip",
        "username",
        "user_agent",
        "path",
        "locked",
        "all",
        "limit",
        "older_than",
        "device_token",
        "token",
        "x",
    ];
    let values = [
        json!("10.0.0.1"),
        json!("::ffff:1.2.3.4"),
        json!(""),
        json!("*"),
        json!("{}&="),
        json!(null),
        json!(true),
        json!(-1),
        json!(1e300),
        json!([]),
        json!({"a": 1}),
        json!("\u{0}\u{7f}é日本"),
        json!("2001:db8::1%eth0"),
        json!("1.2.3.4/24"),
    ];
    let endpoints = [
        (Method::POST, "/v1/check"),
        (Method::POST, "/v1/failure"),
        (Method::POST, "/v1/success"),
        (Method::GET, "/v1/attempts"),
        (Method::DELETE, "/v1/attempts"),
        (Method::GET, "/v1/logs"),
        (Method::DELETE, "/v1/logs"),
        (Method::DELETE, "/v1/devices"),
        (Method::POST, "/v1/unlock-tokens"),
        (Method::POST, "/v1/unlock"),
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for round in 0..700 {
        let (method, path) = &endpoints[round % endpoints.len()];
        let body: Vec<u8> = match rng.random_range(0..3) {
            0 => (0..rng.random_range(0..64))
                .map(|_| rng.random::<u8>())
                .collect(),
            _ => {
                let object: serde_json::Map<String, Value> = (0..rng.random_range(0..4))
                    .map(|_| {
                        let field = fields[rng.random_range(0..fields.len())].to_string();
                        (field, values[rng.random_range(0..values.len())].clone())
                    })
                    .collect();
                serde_json::to_vec(&object).unwrap()
            }
        };
        let query: String = (0..rng.random_range(0..3))
            .map(|_| {
                let field = fields[rng.random_range(0..fields.len())];
                let value = values[rng.random_range(0..values.len())].to_string();
                format!("{field}={}&", percent(value.trim_matches('"')))
            })
            .collect();
        let response = client
            .request(method.clone(), service.at(&format!("{path}?{query}")))
            .basic_auth("admin", Some("s3cret"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "{method} {path}?{query} {:?} -> {status}",
            String::from_utf8_lossy(&body)
        );
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "{statuses:?}"
    );
}

fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn metric(client: &Client, service: &TestService, line_start: &str) -> f64 {
    let text = client
        .get(service.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn redis_going_away_gives_the_fail_mode_then_recovers() {
    let mut redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.policy = policy(3, &[&["ip"]])).await;
    let client = http_client();
    let attempt = json!({"ip": "10.0.0.1"});
    assert_eq!(
        post(&client, service.at("/v1/failure"), attempt.clone())
            .await
            .1["locked"],
        false
    );

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = post(&client, service.at("/v1/check"), attempt.clone()).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"locked": true, "reason": "store_unavailable", "retry_after_secs": null, "locked_by": [], "degraded": true})
        );
        let (_, body) = post(&client, service.at("/v1/failure"), attempt.clone()).await;
        assert_eq!(
            (body["locked"].as_bool(), body["degraded"].as_bool()),
            (Some(true), Some(true))
        );
    }
    let health = client.get(service.at("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        metric(
            &client,
            &service,
            "lockout_store_errors_total{operation=\"check\"}"
        )
        .await
            >= 3.0
    );
    assert_eq!(
        metric(
            &client,
            &service,
            "lockout_degraded_answers_total{endpoint=\"check\"}"
        )
        .await,
        3.0
    );
    assert_eq!(
        metric(
            &client,
            &service,
            "lockout_checks_total{verdict=\"degraded\"}"
        )
        .await,
        3.0
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = post(&client, service.at("/v1/failure"), attempt.clone()).await;
        if body.get("degraded").is_none() {
            assert_eq!(
                body["failures"][0]["count"], 1,
                "a fresh Redis: counting starts again"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not recover within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        client
            .get(service.at("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn fail_open_answers_allowed_while_redis_is_away() {
    let mut redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.on_store_error = OnStoreError::Allow).await;
    redis.stop();
    let client = http_client();
    let (_, body) = post(&client, service.at("/v1/check"), json!({"ip": "10.0.0.1"})).await;
    assert_eq!(body, json!({"locked": false, "degraded": true}));
    let (_, body) = post(
        &client,
        service.at("/v1/failure"),
        json!({"ip": "10.0.0.1"}),
    )
    .await;
    assert_eq!(body["locked"], false);
}

#[tokio::test]
async fn script_flush_and_client_kill_mid_run_are_survived() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.policy = policy(100, &[&["ip"]])).await;
    let client = http_client();
    let attempt = json!({"ip": "10.0.0.1"});
    post(&client, service.at("/v1/failure"), attempt.clone()).await;
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query::<()>(&mut redis.connection())
        .unwrap();
    let (_, body) = post(&client, service.at("/v1/failure"), attempt.clone()).await;
    assert_eq!(body["failures"][0]["count"], 2, "{body}");

    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query::<()>(&mut redis.connection())
        .unwrap();
    let mut counted = 2;
    let mut degraded = 0;
    for _ in 0..5 {
        let (_, body) = post(&client, service.at("/v1/failure"), attempt.clone()).await;
        if body.get("degraded").is_some() {
            degraded += 1;
        } else {
            counted += 1;
            assert_eq!(body["failures"][0]["count"], counted, "{body}");
        }
    }
    assert!(
        degraded <= 1,
        "at most the request in flight on the killed connection: {degraded}"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_requests_in_flight_finish() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.command_timeout = Duration::from_secs(5)).await;
    let client = http_client();
    post(&client, service.at("/v1/check"), json!({"ip": "10.0.0.1"})).await;
    // Redis busy for 600 ms: the next failure is in flight until then.
    let mut blocker = redis.connection();
    let busy = std::thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("0.6")
            .query::<()>(&mut blocker)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let in_flight = tokio::spawn({
        let url = service.at("/v1/failure");
        let client = client.clone();
        async move { post(&client, url, json!({"ip": "10.0.0.1"})).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = service.url.clone();
    service.stop().await.unwrap();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["failures"][0]["count"], 1, "{body}");
    busy.join().unwrap().unwrap();
    assert!(
        client.get(format!("{url}/healthz")).send().await.is_err(),
        "no longer listening"
    );
}

#[test]
fn serve_binary_starts_says_where_and_stops_on_sigterm() {
    let redis = RedisServer::start();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serving = ServeProcess::start(
        &["--redis-url", &redis.url(), "--listen", &listen],
        &[("LOCKOUT_LOG_FORMAT", "json")],
        port,
    );
    let output = serving.terminate();
    assert_eq!(output.status.code(), Some(0));
    let log = String::from_utf8(output.stderr).unwrap();
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let message = first["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{message}"
    );
    assert!(
        message.contains(&redis.url()) && message.contains("prefix lockout"),
        "{message}"
    );
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn metrics_count_verdicts_failures_lockouts_and_latency() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.policy = policy(2, &[&["ip"]])).await;
    let client = http_client();
    let attempt = json!({"ip": "10.0.0.1"});
    post(&client, service.at("/v1/check"), attempt.clone()).await;
    post(&client, service.at("/v1/failure"), attempt.clone()).await;
    post(&client, service.at("/v1/failure"), attempt.clone()).await;
    post(&client, service.at("/v1/check"), attempt.clone()).await;
    post(
        &client,
        service.at("/v1/success"),
        json!({"ip": "10.0.0.2"}),
    )
    .await;
    let response = client.get(service.at("/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("openmetrics-text"));
    for (line, value) in [
        ("lockout_checks_total{verdict=\"allowed\"}", 1.0),
        ("lockout_checks_total{verdict=\"lockout\"}", 1.0),
        ("lockout_failures_total", 2.0),
        ("lockout_lockouts_started_total", 1.0),
        ("lockout_successes_total", 1.0),
        ("lockout_http_request_duration_seconds_count{endpoint=\"/v1/check\",method=\"POST\",status=\"2xx\"}", 2.0),
        ("lockout_store_duration_seconds_count{operation=\"failure\"}", 2.0),
    ] {
        assert_eq!(metric(&client, &service, line).await, value, "{line}");
    }
}

#[test]
fn serve_refuses_to_open_the_login_endpoints_beyond_this_host_without_a_token() {
    let redis = RedisServer::start();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let args = ["--redis-url", &redis.url(), "--listen", &listen];
    let output = lockout_command(&[])
        .arg("serve")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "listen: 0.0.0.0:{port} is reachable beyond this host"
        )) && stderr.contains("LOCKOUT_API_TOKEN")
            && stderr.contains("LOCKOUT_OPEN_LOGIN_API"),
        "{stderr}"
    );
    for env in [
        &[("LOCKOUT_API_TOKEN", "k3y")][..],
        &[(
            "LOCKOUT_API_TOKENS",
            r#"[{"token": "k3y", "scopes": ["site-a"]}]"#,
        )],
        &[("LOCKOUT_OPEN_LOGIN_API", "true")],
    ] {
        let serving = ServeProcess::start(&args, env, port);
        assert!(serving.terminate().status.success(), "{env:?}");
    }
}

#[test]
fn an_outage_is_logged_once_with_its_count_and_liveness_outlives_it() {
    let mut redis = RedisServer::start();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serving = ServeProcess::start(
        &["--redis-url", &redis.url(), "--listen", &listen],
        &[],
        port,
    );
    let get = |path: &str| {
        let output = std::process::Command::new("curl")
            .args(["-s", "-w", " %{http_code}"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let check = || {
        let output = std::process::Command::new("curl")
            .args(["-s", "-H", "content-type: application/json"])
            .args(["-d", r#"{"ip":"10.0.0.1"}"#])
            .arg(format!("http://127.0.0.1:{port}/v1/check"))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    assert_eq!(check()["locked"], false);
    redis.stop();
    for _ in 0..20 {
        assert_eq!(check()["degraded"], true);
    }
    assert!(get("/livez").ends_with(" 200"), "alive while Redis is away");
    assert!(get("/readyz").ends_with(" 503"), "not ready");
    assert!(get("/healthz").ends_with(" 503"));
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while check().get("degraded").is_some() {
        assert!(Instant::now() < deadline, "recovers");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get("/readyz").ends_with(" 200"));
    let log = String::from_utf8(serving.terminate().stderr).unwrap();
    assert_eq!(
        log.matches("store unavailable").count(),
        1,
        "one line for the whole outage: {log}"
    );
    let recovered = log
        .lines()
        .find(|line| line.contains("store available again"))
        .unwrap_or_else(|| panic!("a line when it ends: {log}"));
    let failed: u64 = recovered
        .split("failed_calls=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{recovered}"));
    assert!(
        failed >= 22,
        "20 checks and 2 readiness probes at least: {recovered}"
    );
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_at_once() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.max_connections = 2).await;
    let address = service.url.trim_start_matches("http://").to_string();
    let _first = tokio::net::TcpStream::connect(&address).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut third, &mut answer)
        .await
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("too many connections"),
        "{answer}"
    );
    drop((_first, _second));
    // The permits come back as the connections close.
    eventually(
        Duration::from_secs(5),
        "a connection is served again",
        async || {
            http_client()
                .get(service.at("/livez"))
                .send()
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK)
        },
    )
    .await;
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| {
        c.header_read_timeout = Duration::from_millis(300)
    })
    .await;
    let address = service.url.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /livez HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut slow, &mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the service closed the connection");
}

/// A kept-alive connection that the service holds: one whose `GET /livez` was answered 200
/// (`None` when it was refused, every slot being taken).
async fn held_connection(address: &str) -> Option<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer's head, then its body by its content-length.
    let mut answer = Vec::new();
    let head_end = loop {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await.unwrap() == 0 {
            return None;
        }
        answer.push(byte[0]);
        if answer.ends_with(b"\r\n\r\n") {
            break answer.len();
        }
    };
    let head = String::from_utf8(answer[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(String::from)
        })
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head.starts_with("HTTP/1.1 200").then_some(stream)
}

/// A whole check on a connection of its own, closed after it: the raw answer.
async fn check_alone(address: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = r#"{"ip":"10.0.0.1"}"#;
    let request = format!(
        "POST /v1/check HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer)
        .await
        .unwrap();
    answer
}

#[tokio::test]
async fn stalled_bodies_hold_no_connection_past_body_read_timeout() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let _serving = ServeProcess::start(
        &["--listen", &address],
        &[
            ("LOCKOUT_MAX_CONNECTIONS", "5"),
            ("LOCKOUT_BODY_READ_TIMEOUT", "2s"),
        ],
        port,
    );
    // Every slot held by a connection of this test (the start-up probe's may still hold one
    // for a moment: a connection refused then is replaced), each then sending a request whose
    // body never comes.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while held.len() < 5 {
        match held_connection(&address).await {
            Some(stream) => held.push(stream),
            None => assert!(Instant::now() < deadline, "no slot came free"),
        }
    }
    for stream in &mut held {
        tokio::io::AsyncWriteExt::write_all(
            stream,
            b"POST /v1/check HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n",
        )
        .await
        .unwrap();
    }
    let answer = check_alone(&address).await;
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "every slot taken: {answer}"
    );
    // At the server's deadline, each stalled request is answered 408 and its connection
    // closed (read to its end).
    for mut stream in held {
        let mut answer = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer),
        )
        .await
        .expect("the service closed the stalled connection")
        .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408")
                && answer.contains("body_read_timeout (2s)")
                && answer.contains("connection: close"),
            "{answer}"
        );
    }
    // The slots come back as the connections close.
    eventually(
        Duration::from_secs(5),
        "a new check is served",
        async || check_alone(&address).await.starts_with("HTTP/1.1 200"),
    )
    .await;
}

#[tokio::test]
async fn shutdown_drains_for_at_most_the_deadline() {
    let redis = RedisServer::start();
    let service =
        TestService::start(&redis, |c| c.drain_timeout = Duration::from_millis(300)).await;
    let address = service.url.trim_start_matches("http://").to_string();
    // A request whose body never comes stays in flight for ever.
    let mut stuck = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stuck,
        b"POST /v1/check HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"ip\":",
    )
    .await
    .unwrap();
    // A round trip on another connection, accepted after it: the stuck one is being read.
    let live = http_client()
        .get(service.at("/livez"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), service.stop()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "the service stopped at the drain deadline: {stopped:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for the request in flight first"
    );
}

/// `count` attempt records of distinct IPs, written straight into Redis.
fn fill_records(redis: &RedisServer, count: u32) {
    let mut connection = redis.connection();
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        let mut pipeline = redis::pipe();
        for &n in chunk {
            let key = crate::support::key_of(
                "lockout",
                KeyKind::Attempt,
                &format!("ip={}", std::net::Ipv4Addr::from(0x0a00_0000 + n)),
            );
            pipeline
                .hset(&key, "n", 1)
                .ignore()
                .pexpire(&key, 600_000)
                .ignore();
        }
        pipeline.query::<()>(&mut connection).unwrap();
    }
}

/// `DELETE /v1/attempts?all=true` with the admin token the deadline tests set.
async fn delete_every_record(client: &reqwest::Client, service: &TestService) -> reqwest::Response {
    client
        .delete(service.at("/v1/attempts?all=true"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_work_runs_under_its_own_deadline_on_its_own_connection() {
    let redis = RedisServer::start();
    fill_records(&redis, 30_000);
    // A login timeout no reset of 30,000 records could meet.
    let service = TestService::start(&redis, |c| {
        with_admin(c);
        c.admin.token = "t0ken".into();
        c.command_timeout = Duration::from_millis(1);
    })
    .await;
    let response = delete_every_record(&http_client(), &service).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"removed": 30000})
    );
}

#[tokio::test]
async fn admin_work_cut_by_its_deadline_says_what_it_did() {
    let redis = RedisServer::start();
    fill_records(&redis, 300_000);
    let service = TestService::start(&redis, |c| {
        with_admin(c);
        c.admin.token = "t0ken".into();
        c.bulk_timeout = Duration::from_millis(50);
    })
    .await;
    let client = http_client();
    // A run cut before its scan matched anything removed nothing and says only that Redis did
    // not answer in time (on a loaded machine, 50 ms can pass before the first page): run
    // again until one says how far it got.
    let mut cut = None;
    for _ in 0..20 {
        let response = delete_every_record(&client, &service).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let error = response.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        if let Some(rest) = error.split("removed at most ").nth(1) {
            let at_most: u64 = rest.split(' ').next().unwrap().parse().unwrap();
            assert!(error.contains("run it again"), "{error}");
            cut = Some(at_most);
            break;
        }
        assert!(error.contains("no answer from Redis"), "{error}");
    }
    let at_most = cut.expect("a run that says how far it got");
    // Its last UNLINK, sent before the deadline and counted then, may land before or after
    // this count: either way no more than the answer said went.
    let left = redis
        .keys()
        .iter()
        .filter(|key| key.starts_with("lockout:attempt:"))
        .count() as u64;
    assert!(
        300_000 - left <= at_most,
        "{left} records left, the answer says at most {at_most} went"
    );
}

/// A request refused before its body came (a wrong token) keeps its connection usable: the
/// service reads the body first, so a client's pool of kept-alive connections never reuses a
/// connection the service closed without saying so.
#[tokio::test]
async fn a_refusal_before_the_body_came_keeps_the_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let redis = RedisServer::start();
    let service = TestService::start(&redis, |c| c.api_token = Some("k3y".into())).await;
    let address = service.url.trim_start_matches("http://").to_string();
    let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = r#"{"ip":"10.0.0.1"}"#;
    let headers = format!(
        "POST /v1/check HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer wrong\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    connection.write_all(headers.as_bytes()).await.unwrap();
    // The body comes late, as a client's second write may.
    let mut answer = vec![0u8; 4096];
    let early =
        tokio::time::timeout(Duration::from_millis(200), connection.read(&mut answer)).await;
    assert!(early.is_err(), "answered before the body came");
    connection.write_all(body.as_bytes()).await.unwrap();
    let n = connection.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    // The same connection serves the next request.
    connection
        .write_all(format!("GET /livez HTTP/1.1\r\nhost: {address}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let n = connection.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
}

/// One HTTP/1.1 request over the Unix socket at `path` (as a login page on the same host sends
/// it); the answer's status and body.
async fn over_unix_socket(
    path: &std::path::Path,
    method: &str,
    uri: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(path).await.unwrap();
    let request = format!(
        "{method} {uri} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// `listen = "unix:/path"`: a login page on the same host reaches the service over a Unix
/// socket; a socket file left by a process that is gone is replaced, one a live service
/// answers on is refused; the file goes when the service stops.
#[tokio::test]
async fn serve_listens_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lockout.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a stale socket file");
    let listen = format!("unix:{}", path.display());
    let serving = ServeProcess::start_on_socket(&["--listen", &listen], &[], &path);
    for _ in 0..3 {
        let (status, body) =
            over_unix_socket(&path, "POST", "/v1/failure", r#"{"ip":"203.0.113.4"}"#).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) =
        over_unix_socket(&path, "POST", "/v1/check", r#"{"ip":"203.0.113.4"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["locked"],
        true
    );

    let second = lockout_command(&[])
        .args(["serve", "--listen", &listen])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains(&format!("listen: cannot bind {listen}")),
        "{said}"
    );

    let stopped = serving.terminate();
    assert!(stopped.status.success());
    let log = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        log.contains(&format!("lockout listening on {listen}")),
        "{log}"
    );
    assert!(!path.exists(), "the socket file goes with the service");
}
