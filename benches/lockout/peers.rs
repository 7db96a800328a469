//! Part 2, the peer the goals are stated against (rate-limiter-flexible), and the protocol
//! every peer process speaks.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use crate::meter::Meter;
use crate::options::Options;
use crate::reach::{unlink_matching, Reach};
use crate::report::Row;
use crate::Bench;

/// rate-limiter-flexible's login recipe (`benches/peers/rlf_login.js`) against the same Redis,
/// driven like the library's flow: the peer of the performance goals, measured in the same run.
pub(crate) fn rate_limiter_flexible(
    options: &Options,
    reach: &Reach,
    redis: &mut redis::Connection,
    concurrency: usize,
    reference: f64,
) -> Row {
    let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers");
    if !std::path::Path::new(peers).join("node_modules").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix", peers])
            .stdout(Stdio::null())
            .status()
            .expect("npm (Node.js) must be installed to run rate-limiter-flexible side by side");
        assert!(status.success(), "npm ci in {peers} failed");
    }
    let (host, port) = reach.host_port();
    let mut node = Command::new("node");
    node.arg(format!("{peers}/rlf_login.js"))
        .args([
            host,
            port.to_string(),
            options.seconds.to_string(),
            concurrency.to_string(),
            options.ips.to_string(),
            options.usernames.to_string(),
        ])
        .envs(reach.peer_env());
    let what =
        format!("rate-limiter-flexible login recipe (Node, ioredis), concurrency {concurrency}");
    let (mut row, result) = measure_peer(node, "rlf_login.js", redis, None, what, reference);
    // Redis counts the commands of scripts too: the peer counts what it sent.
    let commands = result["commands"]
        .as_f64()
        .expect("rlf_login.js's commands")
        / logins_of(&result).max(1) as f64;
    row.commands_per_login = Some(commands);
    row.ratio = row.rate.map(|rate| rate * commands / reference);
    unlink_matching(reach, "lockout-bench-rlf:*");
    row
}

/// Runs a peer process (`command`, named `name`), which speaks this tool's protocol: it prints
/// `ready` once set up, runs when it reads a line, prints `{"latencies_us": [...], ...}`, and
/// exits when its stdin closes. Its CPU is the client's (with `service`'s, if any); the row,
/// and its JSON result.
pub(crate) fn measure_peer(
    mut command: Command,
    name: &str,
    redis: &mut redis::Connection,
    service: Option<u32>,
    what: String,
    reference: f64,
) -> (Row, serde_json::Value) {
    let mut peer = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{name} cannot start (is its runtime installed?): {err}"));
    let mut stdin = peer.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(peer.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{name} did not start");
    let meter = Meter::start(redis, peer.id(), service);
    writeln!(stdin, "go").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{name}: {err}: {line}"));
    let latencies: Vec<u32> = result["latencies_us"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}'s latencies"))
        .iter()
        .map(|us| u32::try_from(us.as_u64().unwrap()).unwrap_or(u32::MAX))
        .collect();
    let logins = latencies.len() as u64;
    let row = meter.finish(redis, what, logins, latencies, reference);
    drop(stdin);
    assert!(peer.wait().unwrap().success(), "{name} failed");
    (row, result)
}

/// How many logins a peer's result has latencies for.
pub(crate) fn logins_of(result: &serde_json::Value) -> usize {
    result["latencies_us"].as_array().map_or(0, Vec::len)
}

/// The peer's row, if it ran: what the rows the goals name compare with.
pub(crate) struct Peer(Option<Row>);

impl Peer {
    /// Notes on `row` its rate against the peer's, and the machine's CPU per login (the
    /// service's and Redis') against the peer's (its Node and Redis).
    pub(crate) fn versus(&self, row: &mut Row) {
        let Some(peer) = &self.0 else { return };
        let peer_cost = (|| Some((peer.client_cpu? + peer.redis_cpu?) / peer.rate?))();
        if let (Some(rate), Some(peer)) = (row.rate, peer.rate) {
            row.note = format!("{:.2}x rate-limiter-flexible", rate / peer);
            if let (Some(peer_cost), Some(service)) = (peer_cost, row.service_cpu) {
                let cost = (service + row.redis_cpu.unwrap_or(0.0)) / rate;
                row.note = format!("{}, CPU per login {:.2}x its", row.note, cost / peer_cost);
            }
        }
    }
}

/// Part 2: the peer, measured.
pub(crate) fn run(bench: &mut Bench, rows: &mut Vec<Row>) -> Peer {
    let reference = bench.reference;
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    Peer(options.runs("peer").then(|| {
        let row = rate_limiter_flexible(options, reach, redis, 64, reference);
        rows.push(row.clone());
        row
    }))
}
