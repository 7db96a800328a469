//! What a flow costs: Redis commands and CPU, processes' CPU, latency percentiles.

use std::time::Instant;

use crate::report::Row;

/// A connection of redis-rs' sync client, for INFO, SCAN and such.
pub(crate) fn redis_connection(client: redis::RedisResult<redis::Client>) -> redis::Connection {
    client
        .and_then(|client| client.get_connection())
        .expect("Redis answers")
}

/// A field of INFO as a number.
pub(crate) fn info_field(connection: &mut redis::Connection, section: &str, name: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg(section).query(connection).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Commands a client sent (not those scripts ran inside): EVALSHA, PTTL, HGET.
pub(crate) fn client_commands(connection: &mut redis::Connection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(connection)
        .unwrap();
    ["evalsha", "pttl", "hget"]
        .iter()
        .filter_map(|name| {
            info.lines()
                .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:calls=")))
                .and_then(|rest| rest.split(',').next()?.parse::<f64>().ok())
        })
        .sum()
}

pub(crate) fn redis_cpu_seconds(connection: &mut redis::Connection) -> f64 {
    info_field(connection, "cpu", "used_cpu_user") + info_field(connection, "cpu", "used_cpu_sys")
}

/// CPU seconds a process has used (user + system), from /proc.
pub(crate) fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime 11, stime 12; USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// The flow's counters read before and after a run.
pub(crate) struct Meter {
    pub(crate) started: Instant,
    pub(crate) commands: f64,
    pub(crate) redis_cpu: f64,
    pub(crate) client_cpu: (u32, f64),
    pub(crate) service_cpu: Option<(u32, f64)>,
}

impl Meter {
    /// Starts measuring a flow driven by process `client` (this one, or a peer's).
    pub(crate) fn start(redis: &mut redis::Connection, client: u32, service: Option<u32>) -> Self {
        Meter {
            started: Instant::now(),
            commands: client_commands(redis),
            redis_cpu: redis_cpu_seconds(redis),
            client_cpu: (client, process_cpu_seconds(client)),
            service_cpu: service.map(|pid| (pid, process_cpu_seconds(pid))),
        }
    }

    pub(crate) fn finish(
        self,
        redis: &mut redis::Connection,
        what: String,
        logins: u64,
        mut latencies: Vec<u32>,
        reference: f64,
    ) -> Row {
        let seconds = self.started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let rate = logins as f64 / seconds;
        let commands = (client_commands(redis) - self.commands) / logins.max(1) as f64;
        Row {
            what,
            rate: Some(rate),
            unit: "logins/s",
            p50_ms: Some(percentile(&latencies, 0.50)),
            p99_ms: Some(percentile(&latencies, 0.99)),
            p999_ms: Some(percentile(&latencies, 0.999)),
            commands_per_login: Some(commands),
            client_cpu: Some(
                (process_cpu_seconds(self.client_cpu.0) - self.client_cpu.1) / seconds,
            ),
            service_cpu: self
                .service_cpu
                .map(|(pid, before)| (process_cpu_seconds(pid) - before) / seconds),
            redis_cpu: Some((redis_cpu_seconds(redis) - self.redis_cpu) / seconds),
            ratio: Some(rate * commands / reference),
            note: String::new(),
        }
    }
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[index]) / 1000.0
}
