//! Part 3, the library's failed-login flow, on Redis and on the in-process store, and with
//! events and repeat offenders on and off.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lockout::policy::{Backoff, Repeat};
use lockout::{AnyStore, Attempt, Engine, MemoryStore, Store};

use crate::flow::{clean, drive, engine, policy, Login, POLICIES};
use crate::meter::Meter;
use crate::options::Options;
use crate::peers::Peer;
use crate::report::{versus_redis, Row};
use crate::Bench;

/// The library: check, then failure.
pub(crate) struct LibraryLogin<S>(Arc<Engine<S>>);

impl<S: Store + 'static> Login for LibraryLogin<S> {
    async fn login(&mut self, ip: IpAddr, user: u32) {
        let username = format!("user{user}");
        let attempt = Attempt::new(ip, Some(&username), None, None).unwrap();
        self.0.check(&attempt).await.unwrap();
        self.0.fail(&attempt).await.unwrap();
    }
}

/// The library's flow on `engine` with `concurrency` clients, measured: one row.
pub(crate) async fn library_row<S: Store + 'static>(
    options: &Options,
    redis: &mut redis::Connection,
    engine: Engine<S>,
    concurrency: usize,
    what: String,
    reference: f64,
) -> Row {
    let engine = Arc::new(engine);
    let meter = Meter::start(redis, std::process::id(), None);
    let (logins, latencies) = drive(options, concurrency, || {
        let engine = engine.clone();
        async move { LibraryLogin(engine) }
    })
    .await;
    meter.finish(redis, what, logins, latencies, reference)
}

/// Parts 3 and 3a: the library's flow, then with events and repeat offenders on and off.
pub(crate) async fn run(bench: &mut Bench, peer: &Peer, rows: &mut Vec<Row>) {
    let reference = bench.reference;
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    // 3. The library's flow.
    if options.runs("library") {
        for (name, _) in POLICIES {
            for &concurrency in &options.concurrency {
                let engine = engine(reach, policy(name)).await;
                let what = format!("library, policy {name}, concurrency {concurrency}");
                let mut row =
                    library_row(options, redis, engine, concurrency, what, reference).await;
                if name != "ip" {
                    peer.versus(&mut row); // the policy of the peer's recipe: IP, username and IP
                }
                let on_redis = row.rate;
                rows.push(row);
                clean(reach).await;

                let store = AnyStore::from(MemoryStore::new(options.identities as usize));
                let engine = Engine::new(store, policy(name));
                let what = format!(
                    "library on the in-process store, policy {name}, concurrency {concurrency}"
                );
                let row = library_row(options, redis, engine, concurrency, what, reference).await;
                rows.push(versus_redis(row, on_redis));
            }
        }
    }

    // 3a. The same flow with issue 14's features off (the Axes baseline: no events, no repeat
    // offenders), with events (the default), and with repeat offenders too, in the same run.
    if options.runs("library") {
        let concurrency = options
            .concurrency
            .iter()
            .copied()
            .filter(|&c| c <= 64)
            .max()
            .unwrap_or(1);
        let name = "ip+username, ip";
        let mut baseline = None;
        for (events, repeat) in [(false, false), (true, false), (true, true)] {
            let mut policy = policy(name);
            if !events {
                policy.events = None;
            }
            if repeat {
                policy.repeat = Some(Repeat {
                    memory: Duration::from_secs(7 * 24 * 3600),
                    backoff: Backoff(2.0),
                    max_lockout: Duration::from_secs(24 * 3600),
                });
            }
            let engine = engine(reach, policy).await;
            let on = |on: bool| if on { "on" } else { "off" };
            let what = format!(
                "library, policy {name}, concurrency {concurrency}, events {}, repeat offenders {}",
                on(events),
                on(repeat)
            );
            let mut row = library_row(options, redis, engine, concurrency, what, reference).await;
            let cost = row.redis_cpu.zip(row.rate).map(|(cpu, rate)| cpu / rate);
            match (baseline, cost) {
                (None, _) => baseline = cost,
                (Some(baseline), Some(cost)) => {
                    row.note = format!(
                        "{:.2}x the Redis CPU per login of both off",
                        cost / baseline
                    );
                }
                (Some(_), None) => {}
            }
            rows.push(row);
            clean(reach).await;
        }
    }
}
