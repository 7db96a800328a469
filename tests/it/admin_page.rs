//! The admin page: every route over HTTP (auth, CSRF, escaping, filters, paging, deletions)
//! and, in a real headless Chromium, the operator's path: log in, filter, tick two rows,
//! delete them, and find exactly those two gone from Redis.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::support::http_client;
use crate::support::{free_port, policy, RedisServer, TestService};

const PAGE: &str = "/dj-ad-admin/";

async fn service(redis: &RedisServer) -> TestService {
    TestService::start(redis, |c| {
        c.admin.password = "s3cret".into();
        c.policy = policy(3, &[&["ip", "username"]]);
    })
    .await
}

async fn fail(client: &Client, service: &TestService, ip: &str, username: &str) {
    let body = json!({"ip": ip, "username": username, "user_agent": "Mozilla/5.0 <test>", "path": "/login"});
    let response = client
        .post(service.at("/v1/failure"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// GET as the admin: (status, body).
async fn get(client: &Client, url: String) -> (StatusCode, String) {
    let response = client
        .get(url)
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// POST a form as the admin: (status, Location header, body).
async fn post_form(
    client: &Client,
    url: String,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = client
        .post(url)
        .basic_auth("admin", Some("s3cret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .map_or(String::new(), |value| value.to_str().unwrap().to_string());
    (response.status(), location, response.text().await.unwrap())
}

fn no_redirects() -> Client {
    lockout::tls::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first `name="<name>" value="..."` in a page.
fn form_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

/// The row checkboxes' values (identity tags), in page order.
fn tags(page: &str) -> Vec<String> {
    page.split("name=\"tag\" value=\"")
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .unwrap()
                .replace("&#38;", "&")
                .replace("&amp;", "&")
        })
        .collect()
}

#[tokio::test]
async fn no_admin_password_no_admin_page() {
    let redis = RedisServer::start();
    let service = TestService::start(&redis, |_| {}).await;
    let (status, _) = get(&http_client(), service.at(PAGE)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_needs_the_admin_credentials_and_sends_safe_headers() {
    let redis = RedisServer::start();
    let service = service(&redis).await;
    let client = no_redirects();
    let response = client.get(service.at(PAGE)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let response = client
        .get(service.at(PAGE))
        .basic_auth("admin", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = client
        .get(service.at(PAGE))
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let (status, location, _) = {
        let response = client
            .get(service.at("/dj-ad-admin"))
            .basic_auth("admin", Some("s3cret"))
            .send()
            .await
            .unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_string();
        (response.status(), location, ())
    };
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::PERMANENT_REDIRECT, PAGE)
    );
    let (status, css) = get(&client, service.at("/dj-ad-admin/admin.css")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("table"));
}

#[tokio::test]
async fn records_are_listed_escaped_with_their_status() {
    let redis = RedisServer::start();
    let service = service(&redis).await;
    let client = http_client();
    let evil = "<script>alert(1)</script>";
    for _ in 0..3 {
        fail(&client, &service, "10.0.0.1", evil).await;
    }
    fail(&client, &service, "10.0.0.2", "bob").await;
    let (status, page) = get(&client, service.at(PAGE)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains(evil), "the username is escaped");
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
    assert!(page.contains("Mozilla/5.0 &#60;test&#62;"));
    assert!(page.contains("Locked out, 30 min left"), "{page}");
    assert!(page.contains("2 attempts remaining"), "{page}");
    assert!(page.contains("/login"));

    let (_, logs) = get(&client, service.at("/dj-ad-admin/logs")).await;
    assert!(!logs.contains(evil));
    assert_eq!(
        logs.matches("<td class=\"locked\">failure</td>").count(),
        4,
        "{logs}"
    );
    let (_, bob) = get(
        &client,
        service.at("/dj-ad-admin/logs?username=bob&outcome=failure"),
    )
    .await;
    assert_eq!(bob.matches("<td>bob</td>").count(), 1);
    assert!(!bob.contains("&#60;script"));
    let (_, none) = get(&client, service.at("/dj-ad-admin/logs?outcome=success")).await;
    assert!(none.contains("No entries."));
    let (status, bad) = get(
        &client,
        service.at("/dj-ad-admin/logs?ip=nope&outcome=maybe"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(bad.contains("class=\"error\""), "{bad}");
}

#[tokio::test]
async fn filters_exact_prefix_and_locked_only() {
    let redis = RedisServer::start();
    let service = service(&redis).await;
    let client = http_client();
    for (ip, username) in [
        ("10.0.0.1", "alice"),
        ("10.0.0.12", "alicia"),
        ("10.1.0.1", "bob"),
    ] {
        fail(&client, &service, ip, username).await;
    }
    for _ in 0..2 {
        fail(&client, &service, "10.1.0.1", "bob").await;
    }
    let rows = |query: &'static str| {
        let client = client.clone();
        let url = service.at(&format!("{PAGE}?{query}"));
        async move {
            let (status, page) = get(&client, url).await;
            assert_eq!(status, StatusCode::OK);
            let mut tags = tags(&page);
            tags.sort();
            tags
        }
    };
    assert_eq!(rows("ip=10.0.0.1").await, ["ip=10.0.0.1&username=alice"]);
    assert_eq!(rows("ip=10.0.0&match=prefix").await.len(), 2);
    assert_eq!(rows("username=ali&match=prefix").await.len(), 2);
    assert_eq!(rows("username=ali").await.len(), 0, "exact by default");
    assert_eq!(
        rows("ip=10.0&username=alici&match=prefix").await,
        ["ip=10.0.0.12&username=alicia"]
    );
    assert_eq!(rows("locked=true").await, ["ip=10.1.0.1&username=bob"]);
    let (status, page) = get(&client, service.at(&format!("{PAGE}?ip=999.1.1.1"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("ip: &#34;999.1.1.1&#34; is not a valid IP address"),
        "{page}"
    );
}

#[tokio::test]
async fn pages_walk_every_record_once() {
    let redis = RedisServer::start();
    let service = service(&redis).await;
    let engine = redis.engine(policy(3, &[&["ip", "username"]])).await;
    for n in 0..130 {
        let attempt = lockout::Attempt::parse(
            &format!("10.0.{}.{}", n / 200, n % 200),
            Some("user"),
            None,
            None,
        )
        .unwrap();
        engine.fail(&attempt).await.unwrap();
    }
    let client = http_client();
    let mut seen = HashSet::new();
    let mut url = service.at(PAGE);
    let mut pages = 0;
    loop {
        let (_, page) = get(&client, url.clone()).await;
        pages += 1;
        for tag in tags(&page) {
            assert!(seen.insert(tag.clone()), "{tag} shown twice");
        }
        let Some(start) = page
            .find("rel=\"next\"")
            .and_then(|end| page[..end].rfind("href=\""))
        else {
            break;
        };
        let href = page[start + 6..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        url = service.at(&href);
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen.len(), 130);
    assert!(pages >= 2, "about 50 per page: {pages} pages");
}

#[tokio::test]
async fn deleting_needs_the_csrf_token_and_removes_exactly_the_selection() {
    let redis = RedisServer::start();
    let service = service(&redis).await;
    let client = no_redirects();
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        fail(&client, &service, ip, "alice").await;
    }
    let (_, page) = get(&client, service.at(PAGE)).await;
    let csrf = form_value(&page, "csrf");
    let delete = service.at("/dj-ad-admin/attempts/delete");
    let (a, b) = ("ip=10.0.0.1&username=alice", "ip=10.0.0.2&username=alice");
    for form in [vec![("tag", a)], vec![("tag", a), ("csrf", "wrong")]] {
        let (status, _, body) = post_form(&client, delete.clone(), &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("CSRF"));
    }
    assert_eq!(
        tags(&get(&client, service.at(PAGE)).await.1).len(),
        3,
        "nothing deleted"
    );

    let (status, location, _) = post_form(
        &client,
        delete.clone(),
        &[("csrf", &csrf), ("tag", a), ("tag", b)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("{PAGE}?removed=2"));
    let (_, page) = get(&client, service.at(&location)).await;
    assert!(page.contains("2 attempt records removed."));
    assert_eq!(tags(&page), ["ip=10.0.0.3&username=alice"]);
    let (status, _, body) = post_form(
        &client,
        delete,
        &[("csrf", &csrf), ("tag", "ip=10.0.0.1}{*")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn forms_hold_across_instances_and_restarts() {
    let redis = RedisServer::start();
    let first = service(&redis).await;
    let client = no_redirects();
    for ip in ["10.0.0.1", "10.0.0.2"] {
        fail(&client, &first, ip, "alice").await;
    }
    let (_, page) = get(&client, first.at(PAGE)).await;
    let csrf = form_value(&page, "csrf");
    first.stop().await.unwrap();
    // A load balancer sends the form to another instance, started after the page was served.
    let second = service(&redis).await;
    let (status, location, body) = post_form(
        &client,
        second.at("/dj-ad-admin/attempts/delete"),
        &[("csrf", &csrf), ("tag", "ip=10.0.0.1&username=alice")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, format!("{PAGE}?removed=1"));
    // Another admin password makes other tokens.
    let other = TestService::start(&redis, |c| c.admin.password = "0ther".into()).await;
    let other_page = client
        .get(other.at(PAGE))
        .basic_auth("admin", Some("0ther"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(form_value(&other_page, "csrf"), csrf);
}

#[tokio::test]
async fn delete_all_matching_asks_first() {
    let redis = RedisServer::start();
    let service = service(&redis).await;
    let client = no_redirects();
    for (ip, username) in [
        ("10.0.0.1", "alice"),
        ("10.0.0.2", "alice"),
        ("10.0.0.3", "bob"),
    ] {
        fail(&client, &service, ip, username).await;
    }
    let (_, page) = get(&client, service.at(PAGE)).await;
    let csrf = form_value(&page, "csrf");
    let url = service.at("/dj-ad-admin/attempts/delete-matching");
    let filters = [
        ("csrf", csrf.as_str()),
        ("ip", ""),
        ("username", "alice"),
        ("match", "exact"),
    ];
    let (status, _, confirm) = post_form(&client, url.clone(), &filters).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Delete 2 attempt records?"), "{confirm}");
    assert!(confirm.contains("whose username is alice"));
    assert_eq!(
        tags(&get(&client, service.at(PAGE)).await.1).len(),
        3,
        "nothing deleted yet"
    );

    let (status, _, _) = post_form(
        &client,
        url.clone(),
        &[("username", "alice"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the confirmation needs the token too"
    );
    let mut confirmed = filters.to_vec();
    confirmed.push(("confirm", "yes"));
    let (status, location, _) = post_form(&client, url, &confirmed).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/dj-ad-admin/?removed=2")
    );
    assert_eq!(
        tags(&get(&client, service.at(PAGE)).await.1),
        ["ip=10.0.0.3&username=bob"]
    );
}

/// Waits until the browser shows a page whose address contains `part`: the page a click
/// navigated to (WebDriver's click returns before that page has loaded).
async fn arrived(browser: &fantoccini::Client, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = browser.current_url().await.unwrap();
        let ready = browser
            .execute("return document.readyState", vec![])
            .await
            .unwrap();
        if url.as_str().contains(part) && ready == "complete" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the browser never reached {part}: at {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// chromedriver on a free port, stopped when dropped.
struct ChromeDriver(Child, u16);

impl ChromeDriver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (.ci/run installs chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver(child, port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_unlocks_two_records_in_a_real_browser() {
    use fantoccini::{ClientBuilder, Locator};

    let redis = RedisServer::start();
    let service = service(&redis).await;
    let api = http_client();
    let people = [
        ("203.0.113.7", "alice"),
        ("203.0.113.8", "alice.smith"),
        ("198.51.100.4", "alina"),
        ("192.0.2.10", "bob"),
    ];
    for (ip, username) in people {
        for _ in 0..3 {
            fail(&api, &service, ip, username).await;
        }
    }
    fail(&api, &service, "192.0.2.11", "carol").await;

    let driver = ChromeDriver::start();
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,720",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("chromedriver starts a headless Chromium session");

    // Log in: HTTP Basic credentials in the URL of the first navigation.
    let address = service.url.trim_start_matches("http://");
    browser
        .goto(&format!("http://admin:s3cret@{address}{PAGE}"))
        .await
        .unwrap();
    let heading = browser
        .find(Locator::Css("main h2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Access attempts");
    assert_eq!(
        browser
            .find_all(Locator::Css("input[name=tag]"))
            .await
            .unwrap()
            .len(),
        5
    );
    // docs/admin.png is rewritten only when asked: a test run writes nothing in docs/.
    if std::env::var_os("LOCKOUT_SCREENSHOTS").is_some_and(|value| value == "1") {
        let screenshot = browser.screenshot().await.unwrap();
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/admin.png"),
            &screenshot,
        )
        .unwrap();
    }

    // Filter: usernames starting with "ali".
    browser
        .find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("ali")
        .await
        .unwrap();
    browser
        .find(Locator::Css("select[name=match] option[value=prefix]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css("form.filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // A click that submits a form does not wait for the next page: wait for its address.
    arrived(&browser, "username=ali").await;
    let boxes = browser
        .find_all(Locator::Css("input[name=tag]"))
        .await
        .unwrap();
    assert_eq!(boxes.len(), 3, "alice, alice.smith and alina");

    // Tick two rows and delete them.
    let mut chosen = Vec::new();
    for checkbox in &boxes[..2] {
        chosen.push(checkbox.attr("value").await.unwrap().unwrap());
        checkbox.click().await.unwrap();
    }
    browser
        .find(Locator::Css("button[value=delete]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrived(&browser, "removed=2").await;
    let flash = browser
        .find(Locator::Css("p.flash"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(flash, "2 attempt records removed.");

    // In Redis: exactly those two are gone.
    let left: HashSet<String> = redis
        .engine(policy(3, &[&["ip", "username"]]))
        .await
        .list(&lockout::Target::All, false)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.identity.tag().to_string())
        .collect();
    assert_eq!(left.len(), 3);
    for tag in &chosen {
        assert!(!left.contains(tag), "{tag} is still there");
    }
    browser.close().await.unwrap();
}
