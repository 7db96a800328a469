//! The report: its rows, and the table or JSON they are printed as.

use serde::Serialize;

use crate::options::Options;

/// One line of the report.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Row {
    pub(crate) what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rate: Option<f64>,
    pub(crate) unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p999_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) commands_per_login: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) service_cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis_cpu: Option<f64>,
    /// logins/s x commands per login / the reference's pipelined scripts/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ratio: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) note: String,
}

/// `row` of a flow on the in-process store, its note saying how it compares to the same flow
/// on Redis (`on_redis` logins/s) in this run.
pub(crate) fn versus_redis(mut row: Row, on_redis: Option<f64>) -> Row {
    row.ratio = None;
    if let (Some(rate), Some(on_redis)) = (row.rate, on_redis) {
        row.note = format!("{:.2}x the same on Redis", rate / on_redis);
    }
    row
}

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu})")
}

/// Prints the rows: a table, or JSON with `--json`.
pub(crate) fn print(options: &Options, version: &str, rows: &[Row]) {
    if options.json {
        let report = serde_json::json!({
            "machine": machine(),
            "redis": version,
            "seconds_per_flow": options.seconds,
            "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
        return;
    }
    println!(
        "lockout benchmark: {}, {version}, {} s per flow",
        machine(),
        options.seconds
    );
    println!();
    println!("| what | rate | p50 ms | p99 ms | p99.9 ms | Redis cmds/login | CPU client | CPU service | CPU redis | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let number = |value: Option<f64>, digits: usize| {
        value.map_or(String::new(), |v| format!("{v:.digits$}"))
    };
    for row in rows {
        let rate = row
            .rate
            .map_or(String::new(), |rate| format!("{rate:.2} {}", row.unit));
        let rate = if row.unit.ends_with("/s") {
            row.rate
                .map_or(rate.clone(), |r| format!("{r:.0} {}", row.unit))
        } else {
            rate
        };
        let ratio = number(row.ratio, 2);
        let ratio = if row.note.is_empty() {
            ratio
        } else {
            format!("{ratio} ({})", row.note)
        };
        println!(
            "| {} | {rate} | {} | {} | {} | {} | {} | {} | {} | {ratio} |",
            row.what,
            number(row.p50_ms, 2),
            number(row.p99_ms, 2),
            number(row.p999_ms, 2),
            number(row.commands_per_login, 2),
            number(row.client_cpu, 2),
            number(row.service_cpu, 2),
            number(row.redis_cpu, 2),
        );
    }
}
