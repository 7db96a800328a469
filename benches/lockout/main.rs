//! The benchmark tool: lockout measured side by side with Redis itself, in one run. Not a test:
//! nothing is asserted.
//!
//!     cargo bench --bench lockout -- [--redis-url URL] [--seconds 5] [--json] [--tiny]
//!                                    [--only peer,library,flood,http,django,memory,resets]
//!                                    [--redis-sentinel URL,... --redis-sentinel-master NAME]
//!                                    [--redis-tls-ca FILE]
//!                                    [--redis-tls-cert FILE --redis-tls-key FILE]
//!
//! Against the Redis it is pointed at (by default a redis-server of its own on a free port; it
//! only ever touches keys under the `lockout-bench` prefix) it runs:
//!
//! 1. the reference: `redis-benchmark` running `fail.lua` as it was when the goals were set
//!    (`benches/reference/fail.lua`, a fixed copy) over 100,000 random IPs, pipelined and not;
//! 2. the peer the goals are stated against: rate-limiter-flexible's documented login recipe
//!    (Node, ioredis; `benches/peers`, installed with `npm ci` on first use) at concurrency 64;
//! 3. the library's failed-login flow (check, then failure) at concurrency 1, 64 and 512, for
//!    the policies `["ip"]` and `[["ip","username"], "ip"]`, over 100,000 random IPs and 10,000
//!    usernames, on Redis and then on the in-process store; and at concurrency 64 with events
//!    and repeat offenders off, then events on, then both on;
//! 4. the same flow through `lockout serve` over keep-alive HTTP, 64 and 512 connections, on
//!    Redis and on the in-process store, after the floor (a minimal hyper server answering a
//!    fixed JSON body, this tool run again, under the same load: each service row says its
//!    CPU per login against it, and against the peer's), then over a Unix socket (and, with
//!    its own Redis, once more on a 3-primary cluster of its own);
//! 5. a Django site's failed logins (one Python process, `benches/peers/django`, Django and
//!    django-axes from PyPI in a venv made on first use): through Axes' cache handler on the
//!    same Redis, then through the lockout_axes handler and `lockout serve`;
//! 6. Redis memory per tracked identity over 1,000,000 identities, next to a bare counter key,
//!    and the in-process store's (this process' RSS growth over as many identities);
//! 7. `reset --username X` and `reset --ip X` over 1,000,000 records, next to
//!    `redis-cli --scan --pattern ... | xargs redis-cli unlink`.
//!
//! For each flow: logins/s, p50/p99/p99.9 latency of a login (check + failure), Redis commands
//! the client sent per login (INFO commandstats), CPU of the client, of the service and of
//! redis-server (in cores), and the ratio to the reference (and, for the rows the goals name,
//! to the peer). A table, or JSON with `--json`.
//! `--tiny` runs every part briefly on small data, to keep the tool working (CI runs it so).
//!
//! The `--redis-*` options mean what lockout's configuration keys of the same names do
//! (docs/configuration.md), for every client the bench runs (the library, `lockout serve`,
//! redis-benchmark, redis-cli, the peer):
//!
//! - `--redis-url URL`: the server, `redis://[user:password@]host:port[/db]` (`rediss://`: TLS);
//! - `--redis-sentinel URL,URL,...`: Sentinels naming the primary, reached with the scheme,
//!   user, password and db of `--redis-url` (its host unused);
//! - `--redis-sentinel-master NAME`: the name the Sentinels monitor;
//! - `--redis-tls-ca FILE`: a PEM CA to trust for `rediss://` instead of the system's;
//! - `--redis-tls-cert FILE` and `--redis-tls-key FILE`: a PEM client certificate and its key.
//!
//! One module per part (reference, peers, library, flood, http, django, memory, resets), each
//! with its `run`; the rest is shared: options, reach (the measured Redis), processes, flow (the
//! load and its driver), meter and report.
//!
//! Redis' password reaches redis-cli and the peer in their environment, but redis-benchmark
//! (7.0) takes it only as `-a`, which `ps` shows to the machine's other users while it runs.

mod django;
mod flood;
mod flow;
mod http;
mod library;
mod memory;
mod meter;
mod options;
mod peers;
mod processes;
mod reach;
mod reference;
mod report;
mod resets;

use std::time::{SystemTime, UNIX_EPOCH};

use options::{Options, RedisFlags};
use reach::Reach;

/// The prefix of every key the bench writes.
pub(crate) const PREFIX: &str = "lockout-bench";

/// The load generator allocates as the `lockout` binary does: with mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What every part measures with.
pub(crate) struct Bench {
    pub(crate) options: Options,
    pub(crate) reach: Reach,
    /// redis-rs' sync connection to the measured Redis, for INFO and such.
    pub(crate) redis: redis::Connection,
    /// Whether the measured Redis is the bench's own (not one named by `--redis-*`).
    pub(crate) own_redis: bool,
    /// The reference `fail.lua`'s SHA, loaded.
    pub(crate) sha: String,
    /// The run's start, in Unix seconds, as `fail.lua` takes it.
    pub(crate) now: String,
    /// The reference's pipelined scripts/s (part 1), the yardstick of every row's ratio.
    pub(crate) reference: f64,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, n] = &args[..] {
        if flag == memory::IN_PROCESS_MEMORY {
            return memory::measure_in_process_memory(n.parse().expect("a number of identities"))
                .await;
        }
        if flag == http::FLOOR_SERVER {
            return http::floor_server(n.parse().expect("a port")).await;
        }
    }
    let options = Options::parse();
    let own = (!options.redis.name_a_redis()).then(|| processes::start_redis(&[]));
    let own_url = own
        .as_ref()
        .map(|(_, port)| format!("redis://127.0.0.1:{port}"));
    let reach = Reach::new(&RedisFlags {
        url: own_url.or(options.redis.url.clone()),
        ..options.redis.clone()
    })
    .await;
    let mut redis = reach.connection();
    let info: String = redis::cmd("INFO").arg("server").query(&mut redis).unwrap();
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim();
    // Which Redis, passwords hidden (the bench's own goes without saying).
    let at = match own {
        Some(_) => String::new(),
        None => format!(" at {}", reach.endpoint.target()),
    };
    let version = format!("Redis {version}{at}");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(reference::SCRIPT)
        .query(&mut redis)
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut bench = Bench {
        options,
        reach,
        redis,
        own_redis: own.is_some(),
        sha,
        now,
        reference: 0.0,
    };
    let mut rows = Vec::new();
    bench.reference = reference::run(&mut bench, &mut rows).await;
    let peer = peers::run(&mut bench, &mut rows);
    library::run(&mut bench, &peer, &mut rows).await;
    flood::run(&mut bench, &mut rows).await;
    http::run(&mut bench, &peer, &mut rows).await;
    django::run(&mut bench, &mut rows).await;
    memory::run(&mut bench, &mut rows).await;
    resets::run(&mut bench, &mut rows).await;
    report::print(&bench.options, &version, &rows);
}
