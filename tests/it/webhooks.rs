//! Webhooks and lock ends: a receiver in the test (a local HTTP server) gets one signed POST
//! per event from two service instances sharing a Redis, a retry after answering 500, and only
//! the kinds it asked for; a lock that runs out is told once, one that is reset is not; the
//! consumer group underneath gives each event to one consumer, and takes over what a gone one
//! held.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use lockout::event::EventKind;
use lockout::secret::Secret;
use lockout::store::Claim;
use lockout::webhook::Webhook;
use lockout::{Attempt, Store, Target};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use serde_json::Value;
use sha2::Sha256;

use crate::support::http_client;
use crate::support::tls::TestCertificates;
use crate::support::{
    eventually, free_port, json_of, policy, text_of, Backend, RedisServer, ServeProcess,
    TestService,
};

const SECRET: &str = "a-webhook-secret-for-tests";

/// One POST the receiver had, and what it answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    id: String,
    pub kind: String,
    signature: String,
    body: Vec<u8>,
    answered: StatusCode,
}

#[derive(Default)]
struct Seen {
    deliveries: Vec<Delivery>,
    /// How many POSTs to answer 500 before answering 200.
    to_refuse: usize,
}

/// A webhook receiver on a free loopback port.
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers the first `to_refuse` POSTs 500, the others 204.
    pub async fn start(to_refuse: usize) -> Self {
        let (app, seen) = Self::app(to_refuse);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, seen, task }
    }

    /// The same over HTTPS, with `certs`' server certificate (for 127.0.0.1, signed by their
    /// CA); handshakes a client breaks off (it does not trust the certificate) are counted.
    pub async fn start_tls(certs: &TestCertificates, refused_handshakes: Arc<AtomicUsize>) -> Self {
        let (app, seen) = Self::app(0);
        lockout::tls::install_crypto_provider();
        let chain = CertificateDer::pem_file_iter(&certs.server_cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&certs.server_key).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (acceptor, app) = (acceptor.clone(), app.clone());
                let refused_handshakes = refused_handshakes.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        refused_handshakes.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(tls),
                            hyper_util::service::TowerToHyperService::new(app),
                        )
                        .await;
                });
            }
        });
        Receiver { url, seen, task }
    }

    fn app(to_refuse: usize) -> (Router, Arc<Mutex<Seen>>) {
        async fn hook(
            State(seen): State<Arc<Mutex<Seen>>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let header = |name: &str| {
                headers
                    .get(name)
                    .map_or(String::new(), |v| v.to_str().unwrap().to_string())
            };
            let mut seen = seen.lock().unwrap();
            let answered = if seen.to_refuse > 0 {
                seen.to_refuse -= 1;
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            };
            seen.deliveries.push(Delivery {
                id: header("lockout-event-id"),
                kind: header("lockout-event"),
                signature: header("lockout-signature"),
                body: body.to_vec(),
                answered,
            });
            answered
        }
        let seen = Arc::new(Mutex::new(Seen {
            to_refuse,
            ..Seen::default()
        }));
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(seen.clone());
        (app, seen)
    }

    fn webhook(&self, events: &[EventKind]) -> Webhook {
        Webhook {
            name: "test".into(),
            url: self.url.parse().unwrap(),
            secret: Secret::from(SECRET),
            events: events.to_vec(),
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().deliveries.clone()
    }

    /// The deliveries answered 2xx.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.answered.is_success())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The delivery's signature, checked as a receiver checks it (HMAC-SHA256 over
/// `<t>.<body>`, a timestamp near now); its body as JSON.
fn verified(delivery: &Delivery) -> Value {
    let (t, v1) = delivery
        .signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("a signature: {:?}", delivery.signature));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(t.parse().unwrap()) < 60, "timestamp {t}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&delivery.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "the signature of {}", delivery.id);
    serde_json::from_slice(&delivery.body).unwrap()
}

/// `lockout_webhook_deliveries_total` of `outcome`, on one instance.
async fn deliveries_counted(service: &TestService, outcome: &str) -> u64 {
    deliveries_counted_at(&service.at("/metrics"), outcome).await
}

async fn deliveries_counted_at(metrics_url: &str, outcome: &str) -> u64 {
    let metrics = text_of(http_client().get(metrics_url)).await;
    metrics
        .lines()
        .filter(|line| line.starts_with("lockout_webhook_deliveries_total{"))
        .filter(|line| line.contains(&format!("outcome=\"{outcome}\"")))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_event_once_signed_and_retry_after_a_500() {
    let redis = RedisServer::start();
    let receiver = Receiver::start(1).await;
    let configure = |config: &mut lockout::Config| {
        config.policy = lockout::Policy {
            lockout_duration: Duration::from_secs(3600),
            ..policy(2, &[&["ip"]])
        };
        config.policy.events = lockout::Policy::default().events;
        config.webhooks = vec![receiver.webhook(&EventKind::ALL)];
        config.admin.password = "s3cret".into();
    };
    let instances = [
        TestService::start(&redis, configure).await,
        TestService::start(&redis, configure).await,
    ];
    let client = http_client();
    for n in 0..6 {
        let instance = &instances[n % 2];
        instance.fail(&client, &format!("198.51.100.{n}"), 2).await;
    }
    let events = json_of(
        client
            .get(instances[0].at("/v1/events?limit=100"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    let ids: Vec<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 6, "{events}");
    eventually(
        Duration::from_secs(20),
        "every event delivered",
        async || receiver.accepted().len() >= ids.len(),
    )
    .await;
    // Both instances counted what they delivered: once the counts add up, no delivery is
    // still under way anywhere.
    eventually(Duration::from_secs(5), "deliveries counted", async || {
        deliveries_counted(&instances[0], "delivered").await
            + deliveries_counted(&instances[1], "delivered").await
            == 6
    })
    .await;
    let accepted = receiver.accepted();
    let mut delivered: Vec<String> = accepted.iter().map(|d| d.id.clone()).collect();
    delivered.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(delivered, expected, "one accepted POST per event");
    for delivery in &accepted {
        let body = verified(delivery);
        assert_eq!(body["id"], delivery.id.as_str());
        assert_eq!(body["kind"], "lockout_started");
        assert_eq!(delivery.kind, "lockout_started");
        let listed = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["id"] == body["id"])
            .unwrap();
        assert_eq!(&body, listed, "the body is the event as the API has it");
    }
    let all = receiver.deliveries();
    let refused: Vec<&Delivery> = all.iter().filter(|d| !d.answered.is_success()).collect();
    assert_eq!(refused.len(), 1);
    let retried = accepted.iter().find(|d| d.id == refused[0].id).unwrap();
    assert_eq!(
        retried.body, refused[0].body,
        "a retry sends the same event"
    );
    assert_eq!(all.len(), 7, "six events, one of them twice");
    let retries = deliveries_counted(&instances[0], "retried").await
        + deliveries_counted(&instances[1], "retried").await;
    assert_eq!(retries, 1);
}

/// A burst of events across the 16 streams in one round trip (many with the same stream ID in
/// different shards) is delivered with one `Lockout-Event-Id` per event: what receivers dedupe
/// by never repeats for two events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_across_shards_is_delivered_with_an_id_per_event() {
    const BURST: usize = 100;
    let redis = RedisServer::start();
    let receiver = Receiver::start(0).await;
    let service = TestService::start(&redis, |config| {
        config.policy = policy(2, &[&["ip"]]);
        config.webhooks = vec![receiver.webhook(&EventKind::ALL)];
    })
    .await;
    let client = http_client();
    // One delivery first: the webhook's consumer group exists, so the burst is all after it.
    service.fail(&client, "198.51.100.1", 2).await;
    eventually(
        Duration::from_secs(20),
        "the first event delivered",
        async || receiver.accepted().len() == 1,
    )
    .await;
    let engine = redis.engine(policy(2, &[&["ip"]])).await;
    let burst: Vec<lockout::event::Event> = (0..BURST)
        .map(|n| {
            let ip: std::net::IpAddr = format!("10.1.0.{n}").parse().unwrap();
            lockout::event::Event {
                kind: EventKind::LockoutStarted,
                ip: Some(ip),
                subject: format!("ip={ip}"),
                lockout: Some(Duration::from_secs(3600)),
                lockouts: None,
                by: None,
                removed: None,
                reason: None,
            }
        })
        .collect();
    let bounds = engine.policy().events.unwrap();
    engine.store().append_events(&burst, bounds).await.unwrap();
    let subject = |delivery: &Delivery| verified(delivery)["subject"].to_string();
    eventually(Duration::from_secs(20), "the burst delivered", async || {
        let subjects: std::collections::HashSet<String> =
            receiver.accepted().iter().map(subject).collect();
        subjects.len() == 1 + BURST
    })
    .await;
    // Each ID names one event (a delivery made twice repeats its ID with its event).
    let mut events_of_id: std::collections::HashMap<String, String> = Default::default();
    for delivery in receiver.accepted() {
        let event = subject(&delivery);
        let known = events_of_id
            .entry(delivery.id.clone())
            .or_insert(event.clone());
        assert_eq!(*known, event, "{} names two events", delivery.id);
    }
    assert_eq!(
        events_of_id.len(),
        1 + BURST,
        "an ID of its own for every event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_only_its_kinds_and_a_lock_that_runs_out_is_told() {
    let receiver = Receiver::start(0).await;
    let service = TestService::start_with(|config| {
        config.policy = lockout::Policy {
            lockout_duration: Duration::from_secs(1),
            ..policy(2, &[&["ip"]])
        };
        config.policy.events = lockout::Policy::default().events;
        config.webhooks = vec![receiver.webhook(&[EventKind::LockoutExpired])];
        config.admin.password = "s3cret".into();
    })
    .await;
    let client = http_client();
    service.fail(&client, "203.0.113.5", 2).await;
    eventually(Duration::from_secs(10), "the lock's end told", async || {
        !receiver.accepted().is_empty()
    })
    .await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let body = verified(&accepted[0]);
    assert_eq!(body["kind"], "lockout_expired");
    assert_eq!(body["subject"], "ip=203.0.113.5");
    assert_eq!(body["ip"], "203.0.113.5");
    let events = json_of(
        client
            .get(service.at("/v1/events"))
            .basic_auth("admin", Some("s3cret")),
    )
    .await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["lockout_started", "lockout_expired"]);
}

crate::on_all!(a_lock_that_runs_out_is_told_once_and_a_reset_one_never);

async fn a_lock_that_runs_out_is_told_once_and_a_reset_one_never(backend: Backend) {
    let engine = backend
        .engine(lockout::Policy {
            lockout_duration: Duration::from_secs(1),
            ..policy(1, &[&["ip"]])
        })
        .await;
    let bounds = engine.policy().events.unwrap();
    for ip in ["192.0.2.1", "192.0.2.2"] {
        let attempt = Attempt::parse(ip, None, None, None).unwrap();
        engine.fail(&attempt).await.unwrap();
    }
    engine
        .reset(
            &Target::Ips(vec!["192.0.2.2".parse().unwrap()]),
            false,
            &mut |_| {},
            "cli",
        )
        .await
        .unwrap();
    assert_eq!(engine.store().end_lockouts(bounds, 100).await.unwrap(), 0);
    // On Redis the lock's TTL runs out by itself; the in-process store's clock is moved.
    backend.advance(Duration::from_secs(1));
    let mut told = 0;
    eventually(Duration::from_secs(5), "the lock's end told", async || {
        // Two at once, as two instances would: one tells it.
        let (a, b) = tokio::join!(
            engine.store().end_lockouts(bounds, 100),
            engine.store().end_lockouts(bounds, 100)
        );
        told += a.unwrap() + b.unwrap();
        told > 0
    })
    .await;
    assert_eq!(told, 1);
    assert_eq!(engine.store().end_lockouts(bounds, 100).await.unwrap(), 0);
    let events = engine
        .events(&lockout::event::EventCursor::default(), 100)
        .await
        .unwrap();
    // Events of one millisecond in two shards come in either order.
    let mut seen: Vec<(&str, &str)> = events
        .iter()
        .map(|stored| (stored.event.kind.name(), stored.event.subject.as_str()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("lockout_expired", "ip=192.0.2.1"),
            ("lockout_reset", "ip=192.0.2.2"),
            ("lockout_started", "ip=192.0.2.1"),
            ("lockout_started", "ip=192.0.2.2"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_webhook_trusts_the_systems_roots_or_ssl_cert_file_and_nothing_else() {
    let certs = TestCertificates::make();
    let refused_handshakes = Arc::new(AtomicUsize::new(0));
    let receiver = Receiver::start_tls(&certs, refused_handshakes.clone()).await;
    let webhooks = json!([{"url": receiver.url, "secret": SECRET}]).to_string();
    let client = http_client();
    // First trusting a CA that signed nothing, then the receiver's.
    for (ca, trusted) in [(&certs.other_ca, false), (&certs.ca, true)] {
        let port = free_port();
        let serving = ServeProcess::start(
            &["--listen", &format!("127.0.0.1:{port}")],
            &[
                ("LOCKOUT_WEBHOOKS", webhooks.as_str()),
                ("LOCKOUT_POLICY_FAILURE_LIMIT", "1"),
                ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ],
            port,
        );
        let base = format!("http://127.0.0.1:{port}");
        let failure = client
            .post(format!("{base}/v1/failure"))
            .json(&json!({"ip": "203.0.113.77"}));
        assert_eq!(json_of(failure).await["locked"], true);
        let metrics = format!("{base}/metrics");
        if trusted {
            eventually(
                Duration::from_secs(10),
                "delivered over HTTPS",
                async || deliveries_counted_at(&metrics, "delivered").await == 1,
            )
            .await;
            let accepted = receiver.accepted();
            assert_eq!(accepted.len(), 1);
            assert_eq!(verified(&accepted[0])["kind"], "lockout_started");
        } else {
            eventually(Duration::from_secs(10), "a refused handshake", async || {
                deliveries_counted_at(&metrics, "retried").await >= 1
            })
            .await;
            assert!(refused_handshakes.load(Ordering::SeqCst) >= 1);
            assert!(receiver.deliveries().is_empty(), "no POST reached it");
        }
        serving.terminate();
    }
}

crate::on_both!(a_consumer_group_gives_each_event_once_and_takes_over_what_a_gone_one_held);

async fn a_consumer_group_gives_each_event_once_and_takes_over_what_a_gone_one_held(
    backend: Backend,
) {
    let engine = backend.engine(policy(1, &[&["ip"]])).await;
    let bounds = engine.policy().events.unwrap();
    let store = engine.store();
    let claim = |consumer, stale, first| Claim {
        group: "webhook:test",
        consumer,
        limit: 100,
        stale,
        first,
        bounds,
        tidy: true,
    };
    let lock_out = async |ip: &str| {
        let report = engine
            .fail(&Attempt::parse(ip, None, None, None).unwrap())
            .await
            .unwrap();
        assert!(report.locked);
    };
    let (long, short) = (Duration::from_secs(60), Duration::from_millis(1));
    lock_out("192.0.2.10").await;
    // A group made on a process's first claim starts after the newest event.
    let first = store.claim_events(claim("a", long, true)).await.unwrap();
    assert_eq!(first.events, []);
    lock_out("192.0.2.11").await;
    let held = store.claim_events(claim("a", long, false)).await.unwrap();
    let subjects: Vec<&str> = held
        .events
        .iter()
        .map(|e| e.event.subject.as_str())
        .collect();
    assert_eq!(subjects, ["ip=192.0.2.11"]);
    // Another consumer gets nothing while `a` holds it within `stale`...
    let other = store.claim_events(claim("b", long, false)).await.unwrap();
    assert_eq!(other.events, []);
    // ...and takes it over once `a` has held it unacknowledged for longer (its process gone).
    let mut taken = Vec::new();
    eventually(Duration::from_secs(5), "the event taken over", async || {
        taken = store
            .claim_events(claim("b", short, false))
            .await
            .unwrap()
            .events;
        !taken.is_empty()
    })
    .await;
    assert_eq!(taken, held.events);
    store
        .acknowledge_events("webhook:test", &taken)
        .await
        .unwrap();
    for consumer in ["a", "b"] {
        let left = store
            .claim_events(claim(consumer, short, false))
            .await
            .unwrap();
        assert_eq!(left.events, [], "{consumer}: acknowledged events are done");
    }
}

/// A lock in a scope that runs out is told in that scope's events, once, however many
/// instances sweep: every instance sweeps every scope that has lock ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_lock_that_runs_out_is_told_once() {
    let redis = RedisServer::start();
    let configure = |config: &mut lockout::config::Config| {
        config.policy = lockout::Policy {
            lockout_duration: Duration::from_secs(1),
            ..policy(2, &[&["ip"]])
        };
        config.policy.events = lockout::Policy::default().events;
        config.admin.password = "s3cret".into();
    };
    let on_redis = [
        TestService::start(&redis, configure).await,
        TestService::start(&redis, configure).await,
    ];
    let in_process = [TestService::start_with(configure).await];
    let client = http_client();
    for services in [&on_redis[..], &in_process[..]] {
        for _ in 0..2 {
            let failure = json!({"ip": "203.0.113.7", "scope": "site-a"});
            let answer = client.post(services[0].at("/v1/failure")).json(&failure);
            assert!(answer.send().await.unwrap().status().is_success());
        }
        let expired = async || {
            let events = json_of(
                client
                    .get(services[0].at("/v1/events?scope=site-a"))
                    .basic_auth("admin", Some("s3cret")),
            )
            .await;
            events["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|event| event["kind"] == "lockout_expired")
                .map(|event| event["subject"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        eventually(
            Duration::from_secs(10),
            "the scoped lock's end told",
            async || !expired().await.is_empty(),
        )
        .await;
        assert_eq!(expired().await, ["ip=203.0.113.7"]);
    }
    // Taken from its schedule: no instance can tell it again.
    let keys = redis.keys();
    assert!(
        !keys
            .iter()
            .any(|key| key.starts_with("lockout:scope:site-a:lock_ends:")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"lockout:lock_end_scopes".to_string()),
        "{keys:?}"
    );
}
