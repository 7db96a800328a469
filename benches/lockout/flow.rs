//! A failed-login flow and its driver: policies, the clients' IPs, `drive`, a clean Redis.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use lockout::attempt::Field;
use lockout::keys::Keyspace;
use lockout::policy::Combination;
use lockout::{Engine, Policy, RedisOptions, RedisStore, Target};
use rand::Rng;

use crate::options::Options;
use crate::reach::Reach;
use crate::PREFIX;

pub(crate) fn policy(name: &str) -> Policy {
    let combinations = match name {
        "ip" => vec![Combination::new([Field::Ip]).unwrap()],
        _ => vec![
            Combination::new([Field::Ip, Field::Username]).unwrap(),
            Combination::new([Field::Ip]).unwrap(),
        ],
    };
    Policy {
        combinations,
        ..Policy::default()
    }
}

pub(crate) const POLICIES: [(&str, &str); 2] = [
    ("ip", r#"["ip"]"#),
    ("ip+username, ip", r#"[["ip","username"],"ip"]"#),
];

pub(crate) fn flood_ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(172, 16, (n >> 8) as u8, n as u8))
}

pub(crate) fn random_ip(rng: &mut impl Rng, ips: u32) -> IpAddr {
    let n = rng.random_range(0..ips);
    IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

/// One client's failed-login flow, repeated by `drive`.
pub(crate) trait Login: Send + 'static {
    fn login(&mut self, ip: IpAddr, user: u32) -> impl Future<Output = ()> + Send;
}

/// Runs `concurrency` clients made by `make`, each repeating its login until the time is up;
/// answers the logins done and each one's latency in µs.
pub(crate) async fn drive<L, F, Fut>(
    options: &Options,
    concurrency: usize,
    make: F,
) -> (u64, Vec<u32>)
where
    L: Login,
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
{
    let (ips, usernames, duration) = (options.ips, options.usernames, options.duration());
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(make().await);
    }
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let (ip, user) = {
                        let mut rng = rand::rng();
                        (random_ip(&mut rng, ips), rng.random_range(0..usernames))
                    };
                    let started = Instant::now();
                    client.login(ip, user).await;
                    latencies.push(started.elapsed().as_micros() as u32);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    (latencies.len() as u64, latencies)
}

pub(crate) async fn engine(reach: &Reach, policy: Policy) -> Engine<RedisStore> {
    let store = RedisStore::connect(
        &reach.endpoint,
        Keyspace::new(PREFIX).unwrap(),
        RedisOptions::default(),
    )
    .await
    .expect("Redis answers");
    Engine::new(store, policy)
}

pub(crate) async fn clean(reach: &Reach) {
    engine(reach, Policy::default())
        .await
        .reset(&Target::All, false, &mut |_| {}, "benchmark")
        .await
        .unwrap();
    let mut connection = reach.connection();
    let keys = lockout::keys::Keyspace::new(PREFIX).unwrap();
    let logs = (0..lockout::keys::SHARDS).map(|shard| keys.log_key(shard));
    let events = (0..lockout::keys::EVENT_SHARDS)
        .flat_map(|shard| [keys.events_key(shard), keys.lock_ends_key(shard)]);
    for key in logs.chain(events) {
        redis::cmd("UNLINK")
            .arg(key)
            .query::<()>(&mut connection)
            .unwrap();
    }
}
