//! Views of the records for admin lists (docs/api.md, "Views of the records"): sorted,
//! searched, filtered, offset-paged attempt records from a bounded read, one record's events,
//! filtered access-log entries; on Redis and the in-process store, through the engine and
//! through `lockout serve`.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lockout::event::EventCursor;
use lockout::keys::KeyKind;
use lockout::record::{LogFilter, Outcome};
use lockout::view::{Order, Period, RecordView, Search};
use lockout::{AnyStore, Attempt, Engine, Identity, Target};
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{
    admin, http_client, key_of, policy, with_admin, Backend, RedisServer, TestService,
};

/// An attempt record to make: `failures` failures, the latest `minutes_ago` before the `now`
/// that `seed` answers.
struct Seed {
    ip: &'static str,
    username: &'static str,
    user_agent: Option<&'static str>,
    path: Option<&'static str>,
    failures: u32,
    minutes_ago: u64,
}

fn seed(ip: &'static str, username: &'static str, failures: u32, minutes_ago: u64) -> Seed {
    Seed {
        ip,
        username,
        user_agent: None,
        path: None,
        failures,
        minutes_ago,
    }
}

impl Seed {
    fn tag(&self) -> String {
        Identity::of_fields(Some(self.ip), Some(self.username), None)
            .unwrap()
            .tag()
            .to_string()
    }
}

/// Records one per IP and username pair, unlocked whatever their count, kept for a day
/// (the in-process store's clock moves by the hour).
async fn engine_of(backend: &Backend) -> Engine<AnyStore> {
    backend
        .engine(lockout::Policy {
            cooloff: Duration::from_secs(24 * 3600),
            ..policy(1000, &[&["ip", "username"]])
        })
        .await
}

/// Makes the seeds' records; answers the time their `minutes_ago` count back from. The
/// in-process store's clock is moved between failures; on Redis, whose records take the
/// caller's clock, each record's latest failure (`l`, keys.md) is set afterwards.
async fn make(backend: &Backend, engine: &Engine<AnyStore>, seeds: &[Seed]) -> SystemTime {
    let mut seeds: Vec<&Seed> = seeds.iter().collect();
    seeds.sort_by_key(|seed| std::cmp::Reverse(seed.minutes_ago));
    let mut at = seeds.first().map_or(0, |seed| seed.minutes_ago);
    for seed in &seeds {
        if let Backend::Memory { clock, .. } = backend {
            clock.advance(Duration::from_secs((at - seed.minutes_ago) * 60));
        }
        at = seed.minutes_ago;
        let attempt =
            Attempt::parse(seed.ip, Some(seed.username), seed.user_agent, seed.path).unwrap();
        for _ in 0..seed.failures {
            engine.fail(&attempt).await.unwrap();
        }
    }
    match backend {
        Backend::Memory { clock, .. } => {
            clock.advance(Duration::from_secs(at * 60));
            lockout::Clock::wall(clock.as_ref())
        }
        Backend::Server(server) => {
            let now = UNIX_EPOCH
                + Duration::from_secs(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs(),
                );
            let mut connection = server.connection();
            for seed in &seeds {
                let latest = now - Duration::from_secs(seed.minutes_ago * 60);
                let secs = latest.duration_since(UNIX_EPOCH).unwrap().as_secs();
                let key = key_of("lockout", KeyKind::Attempt, &seed.tag());
                let _: () = redis::cmd("HSET")
                    .arg(&key)
                    .arg("l")
                    .arg(secs)
                    .query(&mut connection)
                    .unwrap();
            }
            now
        }
        Backend::Cluster(_) => unreachable!("these tests run on one server and in process"),
    }
}

fn view(order: Order) -> RecordView {
    RecordView {
        order,
        limit: 1000,
        ..RecordView::default()
    }
}

/// The tags of a view's records, in order.
async fn tags(engine: &Engine<AnyStore>, target: &Target, view: &RecordView) -> Vec<String> {
    engine
        .view(target, view, 10_000)
        .await
        .unwrap()
        .records
        .iter()
        .map(|record| record.identity.tag().to_string())
        .collect()
}

crate::on_backends!(
    [server, memory] views_sort_newest_first_or_by_failures,
    views_search_each_field_as_plain_text,
    views_filter_by_latest_failure_and_lock,
    offset_pages_hold_each_record_once,
    the_bound_limits_what_a_view_reads,
    a_records_events_are_those_naming_it,
    logs_filter_by_outcomes_text_and_time,
);

async fn views_sort_newest_first_or_by_failures(backend: Backend) {
    let engine = engine_of(&backend).await;
    let seeds = [
        seed("10.0.0.1", "old", 5, 50),
        seed("10.0.0.2", "newest", 1, 1),
        seed("10.0.0.3", "middle", 9, 20),
        seed("10.0.0.4", "tie-b", 3, 30),
        seed("10.0.0.5", "tie-a", 3, 30),
    ];
    make(&backend, &engine, &seeds).await;
    let tag = |i: usize| seeds[i].tag();
    let all = Target::All;
    assert_eq!(
        tags(&engine, &all, &view(Order::NewestFailure)).await,
        [tag(1), tag(2), tag(3), tag(4), tag(0)],
        "newest first; a tie goes by identity"
    );
    assert_eq!(
        tags(&engine, &all, &view(Order::OldestFailure)).await,
        [tag(0), tag(3), tag(4), tag(2), tag(1)]
    );
    assert_eq!(
        tags(&engine, &all, &view(Order::MostFailures)).await,
        [tag(2), tag(0), tag(3), tag(4), tag(1)]
    );
    assert_eq!(
        tags(&engine, &all, &view(Order::FewestFailures)).await,
        [tag(1), tag(3), tag(4), tag(0), tag(2)]
    );
}

async fn views_search_each_field_as_plain_text(backend: Backend) {
    let engine = engine_of(&backend).await;
    let mut seeds = [
        seed("203.0.113.77", "a*b", 1, 5),
        seed("10.0.0.2", "what?", 1, 4),
        seed("10.0.0.3", "[x]", 1, 3),
        seed("10.0.0.4", "back\\slash", 1, 2),
        seed("10.0.0.5", "plain", 1, 1),
        seed("10.0.0.6", "ümlaut-日本", 1, 1),
    ];
    seeds[4].user_agent = Some("Mozilla ÄÖ Firefox");
    seeds[4].path = Some("/Admin/Login/");
    make(&backend, &engine, &seeds).await;
    let tag = |i: usize| seeds[i].tag();
    let found = |q: &str| {
        let view = RecordView {
            search: Search::new(q).unwrap(),
            ..view(Order::NewestFailure)
        };
        let engine = &engine;
        async move {
            let mut tags = tags(engine, &Target::All, &view).await;
            tags.sort();
            tags
        }
    };
    assert_eq!(found("*").await, [tag(0)], "a star is a star, not a glob");
    assert_eq!(found("?").await, [tag(1)]);
    assert_eq!(found("[").await, [tag(2)]);
    assert_eq!(found("\\").await, [tag(3)]);
    assert_eq!(
        found("%2A").await,
        Vec::<String>::new(),
        "values, not their encoding"
    );
    assert_eq!(found("113.7").await, [tag(0)], "in the IP");
    assert_eq!(
        found("äö fire").await,
        [tag(4)],
        "in the user agent, any case"
    );
    assert_eq!(
        found("admin/login").await,
        [tag(4)],
        "in the path, any case"
    );
    assert_eq!(
        found("ÜMLAUT-日本").await,
        [tag(5)],
        "in the username, any case"
    );
    assert_eq!(found("nobody").await, Vec::<String>::new());
    let mut every: Vec<String> = (0..seeds.len()).map(tag).collect();
    every.sort();
    assert_eq!(found("").await, every, "empty text searches nothing");
}

async fn views_filter_by_latest_failure_and_lock(backend: Backend) {
    let engine = engine_of(&backend).await;
    let seeds = [
        seed("10.0.0.1", "hour-ago", 1, 60),
        seed("10.0.0.2", "ten-minutes", 1, 10),
        seed("10.0.0.3", "now", 1, 0),
    ];
    let now = make(&backend, &engine, &seeds).await;
    let minutes_ago = |minutes: u64| now - Duration::from_secs(minutes * 60);
    let within = |from: Option<u64>, to: Option<u64>| RecordView {
        last_failure: Period {
            from: from.map(minutes_ago),
            to: to.map(minutes_ago),
        },
        ..view(Order::NewestFailure)
    };
    let tag = |i: usize| seeds[i].tag();
    let all = Target::All;
    assert_eq!(
        tags(&engine, &all, &within(Some(10), None)).await,
        [tag(2), tag(1)],
        "from is inclusive"
    );
    assert_eq!(
        tags(&engine, &all, &within(None, Some(10))).await,
        [tag(0)],
        "to is exclusive"
    );
    assert_eq!(
        tags(&engine, &all, &within(Some(61), Some(9))).await,
        [tag(1), tag(0)]
    );
    // One record locked, by a stricter policy on the same store.
    let strict = backend.engine(policy(1, &[&["ip", "username"]])).await;
    let attempt = Attempt::parse("10.0.0.2", Some("ten-minutes"), None, None).unwrap();
    strict.fail(&attempt).await.unwrap();
    let locked = |locked| RecordView {
        locked: Some(locked),
        ..view(Order::OldestFailure)
    };
    assert_eq!(tags(&engine, &all, &locked(true)).await, [tag(1)]);
    assert_eq!(tags(&engine, &all, &locked(false)).await, [tag(0), tag(2)]);
}

async fn offset_pages_hold_each_record_once(backend: Backend) {
    let engine = engine_of(&backend).await;
    let ips: Vec<String> = (0..25).map(|i| format!("10.1.0.{i}")).collect();
    for (i, ip) in ips.iter().enumerate() {
        let attempt = Attempt::parse(ip, Some("victim"), None, None).unwrap();
        for _ in 0..=(i % 4) {
            engine.fail(&attempt).await.unwrap();
        }
    }
    for order in Order::NAMES.map(|(_, order)| order) {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut offset = 0;
        loop {
            let page = RecordView {
                offset,
                limit: 7,
                ..view(order)
            };
            let viewed = engine.view(&Target::All, &page, 10_000).await.unwrap();
            assert_eq!((viewed.total, viewed.complete), (25, true));
            sizes.push(viewed.records.len());
            seen.extend(
                viewed
                    .records
                    .into_iter()
                    .map(|r| r.identity.tag().to_string()),
            );
            offset += 7;
            if offset >= viewed.total {
                break;
            }
        }
        assert_eq!(sizes, [7, 7, 7, 4], "{order:?}: exact pages, none empty");
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!((seen.len(), unique.len()), (25, 25), "{order:?}: each once");
        let whole = tags(&engine, &Target::All, &view(order)).await;
        assert_eq!(seen, whole, "{order:?}: the pages are the whole view, cut");
    }
    let past = RecordView {
        offset: 25,
        ..view(Order::NewestFailure)
    };
    let viewed = engine.view(&Target::All, &past, 10_000).await.unwrap();
    assert_eq!((viewed.records.len(), viewed.total), (0, 25));
}

async fn the_bound_limits_what_a_view_reads(backend: Backend) {
    let engine = engine_of(&backend).await;
    for i in 0..300 {
        let attempt = Attempt::parse(
            &format!("10.2.{}.{}", i / 256, i % 256),
            Some("victim"),
            None,
            None,
        )
        .unwrap();
        engine.fail(&attempt).await.unwrap();
    }
    let newest = view(Order::NewestFailure);
    let cut = engine.view(&Target::All, &newest, 10).await.unwrap();
    assert!(!cut.complete, "300 records, 10 read");
    assert!(
        cut.scanned >= 10 && cut.scanned < 300,
        "read {} records",
        cut.scanned
    );
    assert_eq!(cut.total, cut.scanned, "the total is over the records read");
    let whole = engine.view(&Target::All, &newest, 1000).await.unwrap();
    assert_eq!(
        (whole.total, whole.complete, whole.scanned),
        (300, true, 300)
    );
    // An exact filter narrows the read: one attacker's records are all read, whatever the bound.
    let one = Target::Ips(vec!["10.2.1.7".parse().unwrap()]);
    let narrow = engine.view(&one, &newest, 10).await.unwrap();
    assert_eq!((narrow.total, narrow.complete), (1, true));
    assert_eq!(
        narrow.records[0].identity.tag(),
        "ip=10.2.1.7&username=victim"
    );
}

async fn a_records_events_are_those_naming_it(backend: Backend) {
    let engine = backend.engine(policy(1, &[&["ip"]])).await;
    // A reset of one IP is an event in that IP's stream, as its lockouts are: their order is
    // the stream's. (Events of different streams in one millisecond have no order between
    // them.)
    for ip in ["10.3.0.1", "10.3.0.2", "10.3.0.1"] {
        let attempt = Attempt::parse(ip, Some("x"), None, None).unwrap();
        engine.fail(&attempt).await.unwrap();
        let one = Target::Ips(vec![ip.parse().unwrap()]);
        engine.reset(&one, false, &mut |_| {}, "cli").await.unwrap();
    }
    let both = [
        Identity::of_fields(Some("10.3.0.1"), None, None).unwrap(),
        Identity::of_fields(Some("10.3.0.2"), None, None).unwrap(),
    ];
    for ip in ["10.3.0.1", "10.3.0.2"] {
        engine
            .fail(&Attempt::parse(ip, None, None, None).unwrap())
            .await
            .unwrap();
    }
    engine.remove(&both, "cli").await.unwrap();
    let (events, next) = engine
        .events_naming("ip=10.3.0.1", &EventCursor::default(), 100, 10_000)
        .await
        .unwrap();
    let mut seen: Vec<(&str, &str)> = events
        .iter()
        .map(|stored| (stored.event.kind.name(), stored.event.subject.as_str()))
        .collect();
    assert_eq!(
        seen[..4],
        [
            ("lockout_started", "ip=10.3.0.1"),
            ("lockout_reset", "ip=10.3.0.1"),
            ("lockout_started", "ip=10.3.0.1"),
            ("lockout_reset", "ip=10.3.0.1"),
        ]
    );
    seen[4..].sort();
    assert_eq!(
        seen[4..],
        [
            ("lockout_reset", "ip=10.3.0.1 ip=10.3.0.2"),
            ("lockout_started", "ip=10.3.0.1"),
        ],
        "a reset listing it is an event of it"
    );
    assert_eq!(next, None, "every event was read");
    let (first, next) = engine
        .events_naming("ip=10.3.0.1", &EventCursor::default(), 2, 10_000)
        .await
        .unwrap();
    assert_eq!(first, events[..2], "the limit");
    let (rest, _) = engine
        .events_naming(
            "ip=10.3.0.1",
            &next.expect("the limit stopped the read"),
            100,
            10_000,
        )
        .await
        .unwrap();
    assert_eq!(rest, events[2..], "next continues where the limit stopped");
    let (few, next) = engine
        .events_naming("ip=10.3.0.2", &EventCursor::default(), 100, 1)
        .await
        .unwrap();
    assert!(few.is_empty(), "the first event read is of 10.3.0.1");
    assert!(
        next.is_some(),
        "the bound stopped the read: next continues it"
    );
}

async fn logs_filter_by_outcomes_text_and_time(backend: Backend) {
    let engine = backend.engine(policy(2, &[&["ip", "username"]])).await;
    let mallory = Attempt::parse(
        "10.4.0.1",
        Some("Mallory*"),
        Some("curl/8 [bot]"),
        Some("/admin/"),
    )
    .unwrap();
    let alice = Attempt::parse("10.4.0.2", Some("alice"), Some("Firefox"), None).unwrap();
    for _ in 0..3 {
        engine.check(&mallory).await.unwrap();
        engine.fail(&mallory).await.unwrap();
        if let Backend::Memory { clock, .. } = &backend {
            clock.advance(Duration::from_secs(1));
        }
    }
    engine.fail(&alice).await.unwrap();
    engine.succeed(&alice).await.unwrap();
    let read = |filter: LogFilter| {
        let engine = &engine;
        async move { engine.logs(&filter, 1000).await.unwrap() }
    };
    let all = read(LogFilter::default()).await;
    let outcomes = |filter: LogFilter| async move {
        read(filter)
            .await
            .iter()
            .map(|entry| (entry.ip.to_string(), entry.outcome.name()))
            .collect::<Vec<_>>()
    };
    let failures = LogFilter {
        outcomes: vec![Outcome::Failure, Outcome::Refused],
        ..LogFilter::default()
    };
    let seen = outcomes(failures).await;
    assert!(
        seen.iter().all(|(_, outcome)| *outcome != "success"),
        "{seen:?}"
    );
    assert_eq!(seen.len(), all.len() - 1, "every entry but the success");
    let bot = LogFilter {
        search: Search::new("[BOT]").unwrap(),
        ..LogFilter::default()
    };
    let seen = outcomes(bot).await;
    assert!(!seen.is_empty() && seen.iter().all(|(ip, _)| ip == "10.4.0.1"));
    let star = LogFilter {
        search: Search::new("mallory*").unwrap(),
        ..LogFilter::default()
    };
    assert_eq!(
        outcomes(star).await.len(),
        seen.len(),
        "the username, any case"
    );
    let success = LogFilter {
        outcomes: vec![Outcome::Success],
        search: Search::new("10.4.0.2").unwrap(),
        ..LogFilter::default()
    };
    assert_eq!(
        outcomes(success).await,
        [("10.4.0.2".to_string(), "success")]
    );
    // Split at one entry's time: at or after it, and before it, are the whole log, apart.
    let at = all[all.len() / 2].time;
    let after = read(LogFilter {
        period: Period {
            from: Some(at),
            to: None,
        },
        ..LogFilter::default()
    })
    .await;
    let before = read(LogFilter {
        period: Period {
            from: None,
            to: Some(at),
        },
        ..LogFilter::default()
    })
    .await;
    assert!(after.iter().all(|entry| entry.time >= at));
    assert!(before.iter().all(|entry| entry.time < at));
    assert_eq!(after.len() + before.len(), all.len());
    assert!(!after.is_empty(), "the entry split at");
}

/// A value as a query string carries it.
fn percent(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn views_through_http_on_redis() {
    let redis = RedisServer::start();
    views_through_http(TestService::start(&redis, with_admin).await).await;
}

#[tokio::test]
async fn views_through_http_in_process() {
    views_through_http(TestService::start_with(with_admin).await).await;
}

/// The answers' shapes, exact pages, one record, its events, the log's pages.
async fn views_through_http(service: TestService) {
    let client = http_client();
    for i in 0..23 {
        let body = json!({"ip": format!("10.5.0.{i}"), "username": "victim", "user_agent": "Bot/1", "path": "/login/"});
        let response = client
            .post(service.at("/v1/failure"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let mut seen = HashSet::new();
    let mut offset = 0;
    loop {
        let (status, page) = admin(
            &client,
            Method::GET,
            service.at(&format!(
                "/v1/attempts?order=-last_failure&offset={offset}&limit=10"
            )),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(
            (page["total"].as_u64(), page["complete"].as_bool()),
            (Some(23), Some(true))
        );
        let records = page["attempts"].as_array().unwrap();
        assert_eq!(records.len(), 10.min(23 - offset), "{page}");
        for record in records {
            assert!(seen.insert(record["identity"].as_str().unwrap().to_string()));
        }
        offset += 10;
        if offset >= 23 {
            break;
        }
    }
    assert_eq!(seen.len(), 23);
    let (_, found) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?q=10.5.0.1&order=failures"),
    )
    .await;
    assert_eq!(found["total"], 11, "10.5.0.1 and 10.5.0.10 to 19: {found}");
    let (_, later) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?last_failure_from=2999-01-01T00:00:00%2B01:00"),
    )
    .await;
    assert_eq!(
        (later["total"].as_u64(), &later["attempts"]),
        (Some(0), &json!([]))
    );
    let (_, legacy) = admin(&client, Method::GET, service.at("/v1/attempts?limit=5")).await;
    assert!(
        legacy.get("next").is_some() && legacy.get("total").is_none(),
        "{legacy}"
    );

    let (status, one) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts/record?ip=10.5.0.3"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let record = &one["attempt"];
    assert_eq!(
        record["identity"], "ip=10.5.0.3",
        "Axes' default: one record per IP"
    );
    assert_eq!(
        (&record["failures"], &record["user_agent"], &record["path"]),
        (&json!(1), &json!("Bot/1"), &json!("/login/"))
    );
    let (status, none) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts/record?ip=10.5.0.3&username=victim"),
    )
    .await;
    assert_eq!(
        (status, &none["error"]),
        (StatusCode::NOT_FOUND, &json!("no such record"))
    );

    let (status, events) = admin(
        &client,
        Method::GET,
        service.at(&format!("/v1/events?subject={}", percent("ip=10.5.0.3"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    assert_eq!(events["events"], json!([]), "no lockout: no event");
    assert_eq!(events["next"], Value::Null);

    let mut logged = 0;
    let mut offset = 0;
    loop {
        let (status, page) = admin(
            &client,
            Method::GET,
            service.at(&format!(
                "/v1/logs?outcome=failure,refused&q=bot/&offset={offset}&limit=10"
            )),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let entries = page["logs"].as_array().unwrap().len();
        assert!(entries > 0, "a next page is never empty: {page}");
        logged += entries;
        offset += 10;
        if page["more"] == false {
            break;
        }
        assert_eq!(entries, 10);
    }
    assert_eq!(logged, 23);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn view_scan_limit_bounds_a_view_through_http() {
    let service = TestService::start_with(|config| {
        with_admin(config);
        config.view_scan_limit = 5;
    })
    .await;
    let client = http_client();
    for i in 0..12 {
        let body = json!({"ip": format!("10.6.0.{i}")});
        let response = client
            .post(service.at("/v1/failure"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, cut) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?order=-failures&limit=100"),
    )
    .await;
    assert_eq!(
        (&cut["total"], &cut["complete"], &cut["scanned"]),
        (&json!(5), &json!(false), &json!(5)),
        "{cut}"
    );
    assert_eq!(cut["attempts"].as_array().unwrap().len(), 5);
    let (_, one) = admin(
        &client,
        Method::GET,
        service.at("/v1/attempts?order=-failures&ip=10.6.0.11"),
    )
    .await;
    assert_eq!(
        (&one["total"], &one["complete"]),
        (&json!(1), &json!(true)),
        "{one}"
    );
    service.stop().await.unwrap();
}

/// Random values for the views' parameters: a 200, or a 4xx naming a parameter the query
/// holds; never a 5xx.
#[tokio::test]
async fn random_view_queries_get_an_answer_or_a_400_naming_the_parameter() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, with_admin).await;
    let client = http_client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let endpoints: [(&str, &[&str]); 4] = [
        (
            "/v1/attempts",
            &[
                "order",
                "q",
                "last_failure_from",
                "last_failure_to",
                "locked",
                "offset",
                "limit",
                "ip",
                "username",
            ],
        ),
        ("/v1/attempts/record", &["ip", "username", "user_agent"]),
        (
            "/v1/logs",
            &["outcome", "q", "from", "to", "offset", "limit", "ip"],
        ),
        ("/v1/events", &["subject", "since", "limit"]),
    ];
    let values = [
        "-last_failure",
        "failures",
        "newest",
        "",
        "*",
        "?",
        "[",
        "\\",
        "%",
        "日本",
        "true",
        "false",
        "0",
        "1",
        "1001",
        "10001",
        "-1",
        "99999999999999999999999",
        "2026-12-06T04:00:00Z",
        "2026-12-06T04:00:00+01:00",
        "2026-12-06",
        "yesterday",
        "failure,refused",
        "success,",
        "ip=10.0.0.1",
        "ip=10.0.0.1&username=a",
        "10.0.0.1",
        "1764380000000-0",
        "\u{0}",
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for round in 0..400 {
        let (path, parameters) = endpoints[round % endpoints.len()];
        let given: Vec<&str> = (0..rng.random_range(1..4))
            .map(|_| parameters[rng.random_range(0..parameters.len())])
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let query: Vec<String> = given
            .iter()
            .map(|name| {
                format!(
                    "{name}={}",
                    percent(values[rng.random_range(0..values.len())])
                )
            })
            .collect();
        let query = query.join("&");
        let (status, answer) =
            admin(&client, Method::GET, service.at(&format!("{path}?{query}"))).await;
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => assert_eq!(path, "/v1/attempts/record", "{query}"),
            StatusCode::BAD_REQUEST => {
                let error = answer["error"].as_str().unwrap();
                assert!(
                    given.iter().any(|name| error.contains(name))
                        || error.starts_with("a record is named by"),
                    "{path}?{query}: {error}"
                );
            }
            other => panic!("{path}?{query}: {other} {answer}"),
        }
    }
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "{statuses:?}"
    );
    service.stop().await.unwrap();
}
