//! `lockout ping`: connects with the configuration given and says, in one screen, what it
//! reached and whether everything lockout does there works: the scripts, each kind of command
//! (run for real on a probe identity in lockout's own scope `_ping`, whose keys expire within a
//! minute), and the reset channel. Exit status 0 only when everything works.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use serde_json::json;

use super::Output;
use crate::attempt::Attempt;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::policy::{AccessLog, Policy};
use crate::record::LogFilter;
use crate::store::endpoint::Topology;
use crate::store::redis::{RedisOptions, RedisStore};
use crate::store::{Claim, ResetNotice, Store};
use crate::target::Target;

/// The probe's scope: lockout's own (scopes starting with `_` are).
const PROBE_SCOPE: &str = "_ping";
/// TEST-NET-1: an address no client has.
const PROBE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// How long the probe's keys live.
const PROBE_TTL: Duration = Duration::from_secs(60);
/// How long to wait for the reset channel's subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One thing checked: its name, and what was found or what failed.
struct Step {
    name: &'static str,
    outcome: std::result::Result<String, String>,
}

impl Step {
    fn of(name: &'static str, outcome: Result<String>) -> Self {
        Step {
            name,
            outcome: outcome.map_err(|err| explain(&err)),
        }
    }
}

/// The error, with what to do about a permission the ACL lacks.
fn explain(err: &Error) -> String {
    if err.is_permission_denied() {
        format!("{err} (see the ACL in docs/deployment.md)")
    } else {
        err.to_string()
    }
}

pub(super) async fn ping(config: &Config, output: Output) -> Result<()> {
    let endpoint = super::redis_of(config)?;
    let keys = config.keys.scoped(PROBE_SCOPE)?;
    let store = RedisStore::open(endpoint, keys, RedisOptions::default()).await?;
    let kind = match endpoint.topology() {
        Topology::Server(_) => "server",
        Topology::Cluster(_) => "cluster",
        Topology::Sentinel { .. } => "Sentinel primary",
    };
    let tls = match (endpoint.uses_tls(), endpoint.tls().is_set()) {
        (false, _) => "no".to_string(),
        (true, false) => "yes (the system's CAs)".to_string(),
        (true, true) => format!("yes ({:?})", endpoint.tls()),
    };
    let mut steps = vec![Step::of(
        "reached",
        store.ping().await.map(drop).and(
            store
                .primaries()
                .await
                .map(|primaries| format!("{kind} {}", primaries.join(", "))),
        ),
    )];
    if steps[0].outcome.is_ok() {
        steps.push(Step {
            name: "version",
            outcome: Ok(match store.version().await {
                Ok(version) => format!("Redis {version}"),
                Err(err) => format!("unknown ({err})"),
            }),
        });
        steps.push(Step {
            name: "tls",
            outcome: Ok(tls),
        });
        steps.extend(probe(store).await);
    }
    let works = steps.iter().all(|step| step.outcome.is_ok());
    let missing: Vec<&str> = steps
        .iter()
        .filter(|step| step.outcome.is_err())
        .map(|step| step.name)
        .collect();
    output.print(
        json!({
            "target": endpoint.target().to_string(),
            "ok": works,
            "steps": steps.iter().map(|step| match &step.outcome {
                Ok(found) => json!({"name": step.name, "ok": true, "detail": found}),
                Err(failed) => json!({"name": step.name, "ok": false, "detail": failed}),
            }).collect::<Vec<_>>(),
        }),
        || {
            let mut lines = vec![format!("lockout ping: {}", endpoint.target())];
            lines.extend(steps.iter().map(|step| match &step.outcome {
                Ok(found) => format!("  {:<12}{found}", step.name),
                Err(failed) => format!("  {:<12}FAILED: {failed}", step.name),
            }));
            lines.push(if works {
                "everything lockout needs works".to_string()
            } else {
                format!("not working: {}", missing.join(", "))
            });
            lines.join("\n")
        },
    );
    if works {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "Redis does not allow everything lockout needs: {}",
            missing.join(", ")
        )))
    }
}

/// Every kind of command lockout sends, for real, on the probe identity.
async fn probe(store: RedisStore) -> Vec<Step> {
    let mut steps = vec![Step::of(
        "scripts",
        store.load_scripts().await.map(|()| "loaded".into()),
    )];
    let subscribed = subscribe(&store).await;
    let probe_log = AccessLog {
        retention: PROBE_TTL,
        max_entries: std::num::NonZeroU64::MIN.saturating_add(99),
    };
    let policy = Policy {
        failure_limit: NonZeroU32::MIN,
        cooloff: PROBE_TTL,
        lockout_duration: PROBE_TTL,
        access_log: Some(probe_log),
        events: Some(probe_log),
        ..Policy::default()
    };
    let engine = Engine::new(store, policy);
    let attempt = Attempt {
        ip: PROBE_IP,
        username: Some("lockout-ping".into()),
        user_agent: None,
        path: None,
        device: None,
    };
    steps.push(Step::of(
        "failure",
        engine
            .fail(&attempt)
            .await
            .map(|report| format!("counted, locked: {}", report.locked)),
    ));
    steps.push(Step::of(
        "check",
        engine
            .check(&attempt)
            .await
            .map(|verdict| format!("locked: {}", verdict.is_locked())),
    ));
    steps.push(Step::of(
        "listing",
        engine
            .page(&Target::All, false, None, 10)
            .await
            .map(|page| format!("{} records", page.records.len())),
    ));
    steps.push(Step::of(
        "access log",
        engine
            .logs(&LogFilter::default(), 10)
            .await
            .map(|entries| format!("{} entries", entries.len())),
    ));
    steps.push(Step::of(
        "lock ends",
        engine
            .store()
            .end_lockouts(probe_log, 10)
            .await
            .map(|_| "a lock that runs out is told".into()),
    ));
    steps.push(Step::of(
        "webhooks",
        claim_and_acknowledge(engine.store(), probe_log).await,
    ));
    steps.push(Step::of(
        "reset",
        engine
            .reset(&Target::All, false, &mut |_| {}, "lockout ping")
            .await
            .map(|removed| format!("{removed} records removed")),
    ));
    steps.push(Step::of(
        "log trim",
        engine
            .reset_logs(Duration::ZERO)
            .await
            .map(|removed| format!("{removed} entries removed")),
    ));
    steps.push(Step::of(
        "publish",
        engine
            .store()
            .announce_nothing()
            .await
            .map(|()| "resets reach other processes' lock caches".into()),
    ));
    steps.push(Step::of("subscribe", subscribed));
    steps
}

/// Whether webhook deliverers can claim events (the probe's lockout) and acknowledge them.
async fn claim_and_acknowledge(store: &RedisStore, bounds: AccessLog) -> Result<String> {
    let group = format!("webhook:{PROBE_SCOPE}");
    let claim = Claim {
        group: &group,
        consumer: PROBE_SCOPE,
        limit: 10,
        stale: PROBE_TTL,
        first: false,
        bounds,
        tidy: true,
    };
    let claimed = store.claim_events(claim).await?;
    store.acknowledge_events(&group, &claimed.events).await?;
    Ok(format!("{} events claimed once", claimed.events.len()))
}

/// Whether the reset channel can be listened to.
async fn subscribe(store: &RedisStore) -> Result<String> {
    let (listening, heard) = tokio::sync::oneshot::channel();
    let listening = std::sync::Mutex::new(Some(listening));
    let on_notice = |notice| {
        if matches!(notice, ResetNotice::Listening) {
            if let Some(listening) = listening.lock().expect("not poisoned").take() {
                let _ = listening.send(());
            }
        }
    };
    let watch = store.watch_resets(&on_notice);
    tokio::select! {
        stopped = watch => Err(stopped.err().unwrap_or_else(|| {
            Error::Config("the reset channel closed".into())
        })),
        _ = heard => Ok("the lock cache can hear of resets".into()),
        () = tokio::time::sleep(SUBSCRIBE_TIMEOUT) => Err(Error::Config(format!(
            "no subscription to the reset channel within {SUBSCRIBE_TIMEOUT:?}"
        ))),
    }
}
