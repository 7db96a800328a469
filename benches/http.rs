//! HTTP throughput of `lockout serve`, side by side with `redis-benchmark` running the engine's
//! own failure script on the same Redis, in the same run. Not a test: nothing is asserted.
//!
//!     cargo bench --bench http -- [--seconds 5] [--connections 64] [--ips 100000]
//!
//! It starts its own redis-server, a 3-primary Redis Cluster and `lockout serve` (release
//! builds) on free loopback ports, drives the failed-login flow (POST /v1/check, then POST
//! /v1/failure, random IPs, policy ["ip"]) over keep-alive connections against the single
//! Redis and then against the cluster, and prints logins/s, latency percentiles and the ratio to
//! the redis-benchmark reference.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

struct Options {
    seconds: u64,
    connections: usize,
    ips: u32,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 5,
        connections: 64,
        ips: 100_000,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = || pair[1].parse::<u64>().expect("a number after the option");
        match pair[0].as_str() {
            "--seconds" => options.seconds = value(),
            "--connections" => options.connections = value() as usize,
            "--ips" => options.ips = value() as u32,
            _ => {}
        }
    }
    options
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped, with the directory it may have written to.
struct Process(Child, Option<std::path::PathBuf>);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(dir) = &self.1 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// scripts/s of redis-benchmark running fail.lua with `pipeline` commands per round trip.
fn redis_benchmark(port: u16, sha: &str, ips: u32, pipeline: u32) -> f64 {
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            "50",
            "-n",
            "300000",
        ])
        .args(["-P", &pipeline.to_string(), "-r", &ips.to_string(), "--csv"])
        .args(["EVALSHA", sha, "2"])
        .args([
            "lockout:attempt:{ip=__rand_int__}",
            "lockout:lock:{ip=__rand_int__}",
        ])
        .args(["1800000", "1800000", "3", "1", "", ""])
        .output()
        .expect("redis-benchmark (package redis-tools) must be installed");
    let csv = String::from_utf8_lossy(&output.stdout);
    let line = csv
        .lines()
        .last()
        .expect("redis-benchmark printed its result");
    line.split(',')
        .nth(1)
        .and_then(|rps| rps.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no rps in {csv}"))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[index]) / 1000.0
}

/// A redis-server on a free port, killed when dropped.
fn start_redis(extra: &[&str]) -> (Process, u16) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("lockout-bench-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let process = Process(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed"),
        Some(dir),
    );
    wait_for_port(port);
    (process, port)
}

/// Three cluster-enabled servers joined by `redis-cli --cluster create`.
fn start_cluster() -> (Vec<Process>, Vec<u16>) {
    let (processes, ports): (Vec<Process>, Vec<u16>) = (0..3)
        .map(|_| {
            start_redis(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
        })
        .unzip();
    let addresses: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli must be installed");
    assert!(created.success());
    for port in &ports {
        let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_connection()
            .unwrap();
        while !redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut connection)
            .unwrap()
            .contains("cluster_state:ok")
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (processes, ports)
}

struct Flow {
    logins_per_second: f64,
    latencies: Vec<u32>,
}

/// `lockout serve` with `redis_args`, driven for the configured time.
fn run_service(redis_args: &[&str], options: &Options) -> Flow {
    let http_port = free_port();
    let _service = Process(
        Command::new(env!("CARGO_BIN_EXE_lockout"))
            .args(redis_args)
            .args(["serve", "--listen", &format!("127.0.0.1:{http_port}")])
            .env("LOCKOUT_LOG", "error")
            .spawn()
            .expect("the lockout binary"),
        None,
    );
    wait_for_port(http_port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (logins, mut latencies, elapsed) = runtime.block_on(drive(http_port, options));
    latencies.sort_unstable();
    Flow {
        logins_per_second: logins as f64 / elapsed.as_secs_f64(),
        latencies,
    }
}

fn main() {
    let options = options();
    let (_redis, redis_port) = start_redis(&[]);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let mut connection = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(include_str!("../scripts/fail.lua"))
        .query(&mut connection)
        .unwrap();
    let pipelined = redis_benchmark(redis_port, &sha, options.ips, 16);
    let unpipelined = redis_benchmark(redis_port, &sha, options.ips, 1);
    redis::cmd("FLUSHALL").query::<()>(&mut connection).unwrap();
    let single = run_service(&["--redis-url", &redis_url], &options);

    let (_cluster, cluster_ports) = start_cluster();
    let seeds: Vec<String> = cluster_ports
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect();
    let cluster = run_service(&["--redis-cluster", &seeds.join(",")], &options);

    println!(
        "lockout HTTP benchmark ({} cores, {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        redis_version(&mut connection)
    );
    println!("| what | rate | p50 | p99 | p99.9 |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| redis-benchmark EVALSHA fail.lua, 50 clients, pipeline 16 | {pipelined:.0} scripts/s | | | |");
    println!("| redis-benchmark EVALSHA fail.lua, 50 clients, no pipeline | {unpipelined:.0} scripts/s | | | |");
    for (what, flow) in [("one Redis", &single), ("3-primary cluster", &cluster)] {
        println!(
            "| lockout serve on {what}, {} keep-alive connections, check + failure | {:.0} logins/s ({:.0} requests/s) | {:.2} ms | {:.2} ms | {:.2} ms |",
            options.connections,
            flow.logins_per_second,
            flow.logins_per_second * 2.0,
            percentile(&flow.latencies, 0.50),
            percentile(&flow.latencies, 0.99),
            percentile(&flow.latencies, 0.999),
        );
    }
    println!(
        "ratio (one Redis): logins/s / redis-benchmark scripts/s = {:.3} (pipelined), {:.3} (no pipeline); cluster / one Redis = {:.2}",
        single.logins_per_second / pipelined,
        single.logins_per_second / unpipelined,
        cluster.logins_per_second / single.logins_per_second,
    );
}

fn redis_version(connection: &mut redis::Connection) -> String {
    let info: String = redis::cmd("INFO").arg("server").query(connection).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map_or("Redis ?".into(), |v| format!("Redis {}", v.trim()))
}

/// Each connection loops check + failure for a random IP until the time is up; answers the
/// logins done, every request's latency in µs, and the time taken.
async fn drive(port: u16, options: &Options) -> (u64, Vec<u32>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.connections)
        .build()
        .unwrap();
    let base = Arc::new(format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let workers: Vec<_> = (0..options.connections)
        .map(|_| {
            let client = client.clone();
            let base = base.clone();
            let ips = options.ips;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut logins = 0u64;
                while Instant::now() < deadline {
                    let n = rand::rng().random_range(0..ips);
                    let body = format!(
                        r#"{{"ip":"10.{}.{}.{}"}}"#,
                        n >> 16,
                        (n >> 8) & 255,
                        n & 255
                    );
                    for endpoint in ["/v1/check", "/v1/failure"] {
                        let sent = Instant::now();
                        let response = client
                            .post(format!("{base}{endpoint}"))
                            .body(body.clone())
                            .send()
                            .await
                            .expect("the service answers");
                        assert!(response.status().is_success());
                        response.bytes().await.unwrap();
                        latencies.push(sent.elapsed().as_micros() as u32);
                    }
                    logins += 1;
                }
                (logins, latencies)
            })
        })
        .collect();
    let mut logins = 0;
    let mut latencies = Vec::new();
    for worker in workers {
        let (n, l) = worker.await.unwrap();
        logins += n;
        latencies.extend(l);
    }
    (logins, latencies, started.elapsed())
}
