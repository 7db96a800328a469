//! The JSON shapes of the HTTP API (docs/api.md), shared by the CLI's `--json` and the HTTP API, so the
//! two can never drift apart.

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::engine::{FailureCount, FailureReport, Standing, Verdict};
use crate::record::{AttemptRecord, LogEntry};

/// `{"locked":false}` or `{"locked":true,"reason":...,"retry_after_secs":...,"locked_by":[...]}`.
pub fn verdict(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Allowed => json!({ "locked": false }),
        Verdict::Locked(lockout) => json!({
            "locked": true,
            "reason": lockout.reason.name(),
            "retry_after_secs": lockout.retry_after.map(seconds),
            "locked_by": lockout.locked_by.iter().map(|c| c.names()).collect::<Vec<_>>(),
        }),
    }
}

/// A verdict with each identity's count: `{"locked":...,"failures":[...]}`.
pub fn standing(standing: &Standing) -> Value {
    let mut value = verdict(&standing.verdict);
    value["failures"] = failure_counts(&standing.failures);
    value
}

/// `{"locked":bool,"retry_after_secs":N|null,"failures":[{"parameters":[...],"count":N}]}`.
pub fn failure(report: &FailureReport) -> Value {
    json!({
        "locked": report.locked,
        "retry_after_secs": report.retry_after.map(seconds),
        "failures": failure_counts(&report.failures),
    })
}

/// `[{"parameters":["ip"],"count":2},...]`.
fn failure_counts(failures: &[FailureCount]) -> Value {
    failures
        .iter()
        .map(|f| json!({ "parameters": f.combination.names(), "count": f.count }))
        .collect()
}

/// `{"reset":bool}`.
pub fn success(reset: bool) -> Value {
    json!({ "reset": reset })
}

/// `{"attempts":[...]}`.
pub fn attempts(records: &[AttemptRecord]) -> Value {
    json!({ "attempts": records.iter().map(attempt).collect::<Vec<_>>() })
}

fn attempt(record: &AttemptRecord) -> Value {
    let parameters: Map<String, Value> = record
        .identity
        .values()
        .iter()
        .map(|(field, value)| (field.name().to_string(), Value::from(value.as_str())))
        .collect();
    json!({
        "parameters": parameters,
        "failures": record.failures,
        "locked": record.is_locked(),
        "retry_after_secs": record.lock_remaining.map(seconds),
        "first_failure": record.first_failure.map(rfc3339),
        "last_failure": record.last_failure.map(rfc3339),
        "user_agent": record.user_agent,
        "path": record.path,
    })
}

/// `{"logs":[{"time","ip","username","user_agent","path","outcome"}]}`, newest first; an
/// entry that stands for several coalesced refusals also has `"count"`.
pub fn logs(entries: &[LogEntry]) -> Value {
    json!({ "logs": entries.iter().map(|entry| {
        let mut value = json!({
            "time": rfc3339(entry.time),
            "ip": entry.ip.to_string(),
            "username": entry.username,
            "user_agent": entry.user_agent,
            "path": entry.path,
            "outcome": entry.outcome.name(),
        });
        if entry.count > 1 {
            value["count"] = entry.count.into();
        }
        value
    }).collect::<Vec<_>>() })
}

/// `{"removed":N}`.
pub fn removed(count: u64) -> Value {
    json!({ "removed": count })
}

/// Whole seconds, rounded up: a client told 0 would retry while still locked.
pub fn seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
