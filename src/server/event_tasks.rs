//! The service's work on events, in the background and never in a login's way: telling locks
//! that ran out (`lockout_expired`), and delivering events to webhooks.
//!
//! Every instance does both, lock ends in the unscoped keys and in every scope that has some
//! (`Store::lock_end_scopes`). Each lock end is told once (`Store::end_lockouts` takes it
//! atomically), and each event goes to one instance per webhook: the deliverers of a webhook
//! are a Redis consumer group on the events streams, so an event is claimed by whichever
//! instance asks first. An instance acknowledges an event once delivered (or given up on);
//! events an instance claimed and never acknowledged (it died) are taken over by another after
//! `STALE_CLAIM`, and may then arrive twice: receivers drop repeats by `Lockout-Event-Id`.
//!
//! A login only appends its event (and wakes the deliverers); what waits for a receiver is
//! held here, at most `IN_FLIGHT` events per webhook, the rest left in the store, where the
//! events' own bounds apply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::metrics::{DeliveryLabels, Metrics};
use crate::event::StoredEvent;
use crate::policy::AccessLog;
use crate::store::any::AnyStore;
use crate::store::{Claim, Store};
use crate::webhook::{self, Webhook};
use crate::wire;

/// How often lock ends are looked for (a lock's end is told within about this).
const LOCK_END_INTERVAL: Duration = Duration::from_secs(1);
/// Lock ends told per look and scope, at most (taken shard after shard in turn, see
/// `RedisStore`'s `end_lockouts`).
const LOCK_ENDS_PER_LOOK: usize = 1000;
/// Scopes whose lock ends one look tells, at most; the next look takes the next ones.
const SCOPES_PER_LOOK: usize = 1000;
/// How often a deliverer looks for events that no append here woke it for.
const CLAIM_INTERVAL: Duration = Duration::from_secs(1);
/// Events one webhook's deliverer holds at once (each being delivered or waiting to retry).
const IN_FLIGHT: usize = 256;
/// Attempts per event, the first retry after `FIRST_RETRY`, each next after twice as long.
const ATTEMPTS: u32 = 6;
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// How long a receiver has to answer one POST.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// After this, an event another instance claimed and never acknowledged is taken over: longer
/// than every attempt and wait of one event (`ATTEMPTS`, `FIRST_RETRY`, `DELIVERY_TIMEOUT`).
const STALE_CLAIM: Duration = Duration::from_secs(300);

/// The background tasks; they stop when this is dropped.
pub struct EventTasks {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for EventTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl EventTasks {
    /// Starts the lock-end sweeper and one deliverer per webhook, on `store`'s events within
    /// `bounds`; `appended` tells when this process appended events. Inside a tokio runtime.
    pub fn start(
        store: AnyStore,
        bounds: AccessLog,
        webhooks: &[Webhook],
        appended: watch::Sender<()>,
        metrics: &Metrics,
    ) -> Self {
        let mut tasks = vec![tokio::spawn(tell_lock_ends(
            store.clone(),
            bounds,
            appended.clone(),
            metrics.lockouts_expired_counter(),
        ))];
        if !webhooks.is_empty() {
            let client = webhook_client();
            let consumer = consumer_name();
            for webhook in webhooks {
                let deliverer = Deliverer {
                    store: store.clone(),
                    bounds,
                    webhook: Arc::new(webhook.clone()),
                    client: client.clone(),
                    consumer: consumer.clone(),
                    outcomes: metrics.deliveries(),
                };
                tasks.push(tokio::spawn(deliverer.run(appended.subscribe())));
            }
        }
        EventTasks { tasks }
    }
}

/// Each `LOCK_END_INTERVAL`, appends the events of locks that ran out. A failure (Redis away)
/// is logged when it starts and when it ends, not every second.
async fn tell_lock_ends(
    store: AnyStore,
    bounds: AccessLog,
    appended: watch::Sender<()>,
    expired: Counter,
) {
    let mut failing = false;
    let mut scopes_from = 0;
    let mut interval = tokio::time::interval(LOCK_END_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match end_lockouts_in_every_scope(&store, bounds, &mut scopes_from).await {
            Ok(ended) => {
                if failing {
                    tracing::info!("lock ends: told again");
                    failing = false;
                }
                if ended > 0 {
                    expired.inc_by(ended);
                    appended.send_replace(());
                }
            }
            Err(err) if !failing => {
                tracing::warn!(%err, "lock ends: cannot tell them (will retry each second)");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Tells the lock ends of the unscoped keys, then of up to `SCOPES_PER_LOOK` scopes from
/// `scopes_from` on (moved on for the next look); answers how many.
async fn end_lockouts_in_every_scope(
    store: &AnyStore,
    bounds: AccessLog,
    scopes_from: &mut usize,
) -> crate::error::Result<u64> {
    let mut ended = store.end_lockouts(bounds, LOCK_ENDS_PER_LOOK).await?;
    let scopes = store.lock_end_scopes(*scopes_from, SCOPES_PER_LOOK).await?;
    *scopes_from = if scopes.len() < SCOPES_PER_LOOK {
        0
    } else {
        *scopes_from + scopes.len()
    };
    for scope in scopes {
        // A name lockout did not write (the registry is in a shared Redis) is no scope.
        let Ok(keys) = store.keys().scoped(&scope) else {
            continue;
        };
        ended += store
            .with_keys(keys)
            .end_lockouts(bounds, LOCK_ENDS_PER_LOOK)
            .await?;
    }
    Ok(ended)
}

/// What became of one event for one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Failed,
}

impl Outcome {
    /// Its `outcome` label.
    fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
        }
    }
}

/// Delivers one webhook's events from this process.
struct Deliverer {
    store: AnyStore,
    bounds: AccessLog,
    webhook: Arc<Webhook>,
    client: reqwest::Client,
    consumer: String,
    outcomes: Family<DeliveryLabels, Counter>,
}

impl Deliverer {
    async fn run(self, mut appended: watch::Receiver<()>) {
        let group = self.webhook.group();
        let mut first = true;
        let mut failing = false;
        let mut next_tidy = Instant::now();
        let mut in_flight: JoinSet<(StoredEvent, Outcome)> = JoinSet::new();
        loop {
            let room = IN_FLIGHT - in_flight.len();
            if room > 0 {
                let tidy = Instant::now() >= next_tidy;
                let claim = Claim {
                    group: &group,
                    consumer: &self.consumer,
                    limit: room,
                    stale: STALE_CLAIM,
                    first,
                    bounds: self.bounds,
                    tidy,
                };
                match self.store.claim_events(claim).await {
                    Ok(claimed) => {
                        first = false;
                        if tidy {
                            next_tidy = Instant::now() + STALE_CLAIM;
                        }
                        if failing {
                            tracing::info!(
                                webhook = %self.webhook.name,
                                "webhook: claiming events again"
                            );
                            failing = false;
                        }
                        self.count("dropped", claimed.dropped);
                        let (wanted, unwanted): (Vec<_>, Vec<_>) = claimed
                            .events
                            .into_iter()
                            .partition(|stored| self.webhook.wants(stored.event.kind));
                        self.acknowledge(&group, &unwanted).await;
                        for stored in wanted {
                            in_flight.spawn(deliver(
                                self.client.clone(),
                                self.webhook.clone(),
                                stored,
                                self.outcomes.clone(),
                            ));
                        }
                    }
                    Err(err) if !failing => {
                        tracing::warn!(
                            webhook = %self.webhook.name,
                            %err,
                            "webhook: cannot claim events (will retry)"
                        );
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                Some(done) = in_flight.join_next() => {
                    let mut finished = vec![done];
                    while let Some(more) = in_flight.try_join_next() {
                        finished.push(more);
                    }
                    self.finish(&group, finished).await;
                }
                changed = appended.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(CLAIM_INTERVAL) => {}
            }
        }
    }

    /// Counts finished deliveries and acknowledges their events. A delivery whose task did
    /// not finish (it panicked) leaves its event claimed, to be taken over and delivered again.
    async fn finish(
        &self,
        group: &str,
        finished: Vec<Result<(StoredEvent, Outcome), tokio::task::JoinError>>,
    ) {
        let mut done = Vec::new();
        for (stored, outcome) in finished.into_iter().flatten() {
            self.count(outcome.name(), 1);
            done.push(stored);
        }
        self.acknowledge(group, &done).await;
    }

    fn count(&self, outcome: &'static str, count: u64) {
        if count > 0 {
            self.outcomes
                .get_or_create(&[
                    ("webhook", self.webhook.name.clone()),
                    ("outcome", outcome.to_string()),
                ])
                .inc_by(count);
        }
    }

    /// An acknowledgement that fails leaves the events claimed here: another instance takes
    /// them over after `STALE_CLAIM` and delivers them again.
    async fn acknowledge(&self, group: &str, events: &[StoredEvent]) {
        if events.is_empty() {
            return;
        }
        if let Err(err) = self.store.acknowledge_events(group, events).await {
            tracing::warn!(
                webhook = %self.webhook.name,
                %err,
                events = events.len(),
                "webhook: cannot acknowledge deliveries (they may be delivered again)"
            );
        }
    }
}

/// POSTs `stored` to `webhook` until a 2xx answer, at most `ATTEMPTS` times.
async fn deliver(
    client: reqwest::Client,
    webhook: Arc<Webhook>,
    stored: StoredEvent,
    outcomes: Family<DeliveryLabels, Counter>,
) -> (StoredEvent, Outcome) {
    let body = wire::event(&stored).to_string();
    let mut wait = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let answer = client
            .post(webhook.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                webhook::SIGNATURE_HEADER,
                webhook::signature(&webhook.secret, timestamp, body.as_bytes()),
            )
            .header(webhook::EVENT_ID_HEADER, &stored.id)
            .header(webhook::EVENT_KIND_HEADER, stored.event.kind.name())
            .body(body.clone())
            .send()
            .await;
        let problem = match answer {
            Ok(response) if response.status().is_success() => return (stored, Outcome::Delivered),
            Ok(response) => format!("answered {}", response.status()),
            // Without the URL, which may carry a token.
            Err(err) => err.without_url().to_string(),
        };
        if attempt == ATTEMPTS {
            tracing::warn!(
                webhook = %webhook.name,
                event = %stored.id,
                %problem,
                "webhook: delivery failed, given up after {ATTEMPTS} attempts"
            );
            break;
        }
        tracing::info!(
            webhook = %webhook.name,
            event = %stored.id,
            %problem,
            "webhook: delivery failed, retrying in {wait:?}"
        );
        outcomes
            .get_or_create(&[
                ("webhook", webhook.name.clone()),
                ("outcome", "retried".to_string()),
            ])
            .inc();
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    (stored, Outcome::Failed)
}

/// One client for every webhook: HTTPS with the system's roots (or `SSL_CERT_FILE`), no
/// redirects followed (a webhook's URL is where its events go, nowhere else).
fn webhook_client() -> reqwest::Client {
    crate::tls::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DELIVERY_TIMEOUT)
        .user_agent(concat!("lockout/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client of these settings builds")
}

/// This service within the webhooks' consumer groups: host, process ID, start time and the
/// service's number in the process, so that a restarted process is a new consumer (what the
/// old one held is taken over).
fn consumer_name() -> String {
    static SERVICES: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "lockout".into());
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let service = SERVICES.fetch_add(1, Ordering::Relaxed);
    format!("{host}-{}-{started}-{service}", std::process::id())
}
