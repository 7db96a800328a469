//! Part 3b, under attack: checks of identities that are all locked, with and without the
//! lock cache.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lockout::{Attempt, Engine, RedisStore};

use crate::flow::{clean, drive, engine, flood_ip, policy, Login};
use crate::meter::Meter;
use crate::report::Row;
use crate::Bench;

/// A flood: checks of locked identities only (`user` picks the flooding IP).
pub(crate) struct FloodCheck(Arc<Engine<RedisStore>>, u32);

impl Login for FloodCheck {
    async fn login(&mut self, _: IpAddr, user: u32) {
        let attempt = Attempt::from_ip(flood_ip(user % self.1));
        assert!(self.0.check(&attempt).await.unwrap().is_locked());
    }
}

/// Part 3b.
pub(crate) async fn run(bench: &mut Bench, rows: &mut Vec<Row>) {
    let reference = bench.reference;
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    // 3b. Under attack: checks of identities that are all locked already (a credential-stuffing
    // flood from 1,000 addresses), without and with the lock cache.
    if options.runs("flood") {
        for cache in [false, true] {
            let engine = engine(reach, policy("ip")).await;
            let (engine, _tasks) = if cache {
                let (engine, tasks) = engine.with_lock_cache();
                while !engine.lock_cache_listening() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (engine, Some(tasks))
            } else {
                (engine, None)
            };
            let engine = Arc::new(engine);
            let flooders = 1_000u32;
            for n in 0..flooders {
                let attempt = Attempt::from_ip(flood_ip(n));
                for _ in 0..3 {
                    engine.fail(&attempt).await.unwrap();
                }
            }
            let meter = Meter::start(redis, std::process::id(), None);
            let (refused, latencies) = drive(options, 64, || {
                let engine = engine.clone();
                async move { FloodCheck(engine, flooders) }
            })
            .await;
            let what = format!(
                "flood: checks of 1,000 locked IPs, library, concurrency 64, lock cache {}",
                if cache { "on" } else { "off" }
            );
            let mut row = meter.finish(redis, what, refused, latencies, reference);
            row.unit = "refused/s";
            row.note = "Redis cmds per refused attempt".into();
            rows.push(row);
            clean(reach).await;
        }
    }
}
