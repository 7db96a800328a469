//! The JSON shapes of the HTTP API (docs/api.md), shared by the CLI's `--json` and the HTTP API, so the
//! two can never drift apart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::attempt::parse_ip;
use crate::engine::{FailureCount, FailureReport, Standing, Verdict};
use crate::event::{Event, EventKind, StoredEvent};
use crate::identity::Identity;
use crate::record::{AttemptRecord, LogEntry, Outcome};

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
        "lockouts": record.lockouts,
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

/// The records of an `attempts` answer, as the service had them (lock times to the second).
pub fn parse_attempts(answer: Value) -> Result<Vec<AttemptRecord>, String> {
    #[derive(Deserialize)]
    struct Attempts {
        attempts: Vec<Attempt>,
    }
    #[derive(Deserialize)]
    struct Attempt {
        parameters: HashMap<String, String>,
        failures: u64,
        retry_after_secs: Option<u64>,
        first_failure: Option<String>,
        last_failure: Option<String>,
        user_agent: Option<String>,
        path: Option<String>,
        #[serde(default)]
        lockouts: u64,
    }
    let Attempts { attempts } = serde_json::from_value(answer).map_err(|err| err.to_string())?;
    attempts
        .into_iter()
        .map(|attempt| {
            let value = |name: &str| attempt.parameters.get(name).map(String::as_str);
            Ok(AttemptRecord {
                identity: Identity::of_fields(value("ip"), value("username"), value("user_agent"))
                    .map_err(|err| err.to_string())?,
                failures: attempt.failures,
                first_failure: attempt
                    .first_failure
                    .as_deref()
                    .map(parse_time)
                    .transpose()?,
                last_failure: attempt
                    .last_failure
                    .as_deref()
                    .map(parse_time)
                    .transpose()?,
                user_agent: attempt.user_agent,
                path: attempt.path,
                lockouts: attempt.lockouts,
                lock_remaining: attempt.retry_after_secs.map(Duration::from_secs),
            })
        })
        .collect()
}

/// The entries of a `logs` answer.
pub fn parse_logs(answer: Value) -> Result<Vec<LogEntry>, String> {
    #[derive(Deserialize)]
    struct Logs {
        logs: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        time: String,
        ip: String,
        username: Option<String>,
        user_agent: Option<String>,
        path: Option<String>,
        outcome: String,
        #[serde(default = "one")]
        count: u64,
    }
    fn one() -> u64 {
        1
    }
    let Logs { logs } = serde_json::from_value(answer).map_err(|err| err.to_string())?;
    logs.into_iter()
        .map(|entry| {
            Ok(LogEntry {
                time: parse_time(&entry.time)?,
                ip: parse_ip(&entry.ip).map_err(|err| err.to_string())?,
                username: entry.username,
                user_agent: entry.user_agent,
                path: entry.path,
                outcome: Outcome::parse(&entry.outcome)
                    .ok_or_else(|| format!("outcome: {:?} is none of lockout's", entry.outcome))?,
                count: entry.count,
            })
        })
        .collect()
}

/// The `removed` count of a reset's answer.
pub fn parse_removed(answer: &Value) -> Result<u64, String> {
    answer["removed"]
        .as_u64()
        .ok_or_else(|| format!("no removed count in {answer}"))
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text).map_err(|err| format!("{text:?}: {err}"))
}

/// `{"events":[{"id","time","kind","subject","ip"?,"lockout_secs"?,"lockouts"?,"by"?,"removed"?}]}`,
/// oldest first.
pub fn events(events: &[StoredEvent]) -> Value {
    json!({ "events": events.iter().map(event).collect::<Vec<_>>() })
}

/// One event of `events`: `{"id","time","kind","subject",...}`, absent fields left out.
pub fn event(stored: &StoredEvent) -> Value {
    let event = &stored.event;
    let mut value = json!({
        "id": stored.id,
        "time": rfc3339(stored.time),
        "kind": event.kind.name(),
        "subject": event.subject,
    });
    let optional = [
        ("ip", event.ip.map(|ip| Value::from(ip.to_string()))),
        (
            "lockout_secs",
            event.lockout.map(|d| Value::from(seconds(d))),
        ),
        ("lockouts", event.lockouts.map(Value::from)),
        ("by", event.by.clone().map(Value::from)),
        ("removed", event.removed.map(Value::from)),
    ];
    for (name, field) in optional {
        if let Some(field) = field {
            value[name] = field;
        }
    }
    value
}

/// The events of an `events` answer, as the service had them (lockouts to the second).
pub fn parse_events(answer: Value) -> Result<Vec<StoredEvent>, String> {
    #[derive(Deserialize)]
    struct Events {
        events: Vec<Stored>,
    }
    #[derive(Deserialize)]
    struct Stored {
        id: String,
        time: String,
        kind: String,
        subject: String,
        ip: Option<IpAddr>,
        lockout_secs: Option<u64>,
        lockouts: Option<u64>,
        by: Option<String>,
        removed: Option<u64>,
    }
    let Events { events } = serde_json::from_value(answer).map_err(|err| err.to_string())?;
    events
        .into_iter()
        .map(|stored| {
            Ok(StoredEvent {
                time: parse_time(&stored.time)?,
                event: Event {
                    kind: EventKind::parse(&stored.kind)
                        .ok_or_else(|| format!("event kind {:?}", stored.kind))?,
                    ip: stored.ip,
                    subject: stored.subject,
                    lockout: stored.lockout_secs.map(Duration::from_secs),
                    lockouts: stored.lockouts,
                    by: stored.by,
                    removed: stored.removed,
                },
                id: stored.id,
            })
        })
        .collect()
}
