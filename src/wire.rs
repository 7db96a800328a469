//! The JSON shapes of the HTTP API (docs/api.md), shared by the CLI's `--json` and the HTTP API, so the
//! two can never drift apart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::attempt::parse_ip;
use crate::engine::{FailureCount, FailureReport, Lockout, Standing, Verdict};
use crate::event::{Event, EventCursor, EventKind, StoredEvent};
use crate::identity::Identity;
use crate::record::{AttemptRecord, LogEntry, Outcome, SprayingRecord};

/// A `check` or `failure` answer, written straight from the engine's values: a login builds
/// no `Value` tree. The fields are in alphabetical order, the order in which a `Value` object
/// writes its keys, so that the bytes are those `json!` wrote.
#[derive(Debug, Serialize)]
pub struct LoginAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<Vec<FailureCountAnswer>>,
    locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_by: Option<Vec<Vec<&'static str>>>,
    /// In observe mode, the refusal that was withheld (with `would_lock`).
    #[serde(skip_serializing_if = "Option::is_none")]
    observed: Option<Observed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// Absent from a verdict that allows; `null` for a lock without an end (deny list).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<Option<u64>>,
    /// `true` when observe mode withheld a refusal; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    would_lock: Option<bool>,
}

/// What an answer in observe mode would have said, had the policy refused:
/// `{"locked_by":[...],"reason":"lockout","retry_after_secs":N}`.
#[derive(Debug, Serialize)]
pub struct Observed {
    locked_by: Vec<Vec<&'static str>>,
    reason: &'static str,
    retry_after_secs: Option<u64>,
}

impl LoginAnswer {
    /// This answer, telling of `lockout` as the refusal observe mode withheld.
    fn withholding(self, lockout: &Lockout) -> Self {
        LoginAnswer {
            observed: Some(Observed {
                locked_by: lockout.locked_by.iter().map(|c| c.names()).collect(),
                reason: lockout.reason.name(),
                retry_after_secs: lockout.retry_after.map(seconds),
            }),
            would_lock: Some(true),
            ..self
        }
    }
}

/// A login endpoint's answer, marked `"degraded": true, "store": "local"` when the local store
/// answered it (see the service's insurance): a verdict with the policy's numbers, counted by
/// one instance. The answer's own keys sort between those two, so the object's keys stay in
/// alphabetical order (all but observe mode's `would_lock`, which comes before `store`).
#[derive(Debug, Serialize)]
pub struct Marked<T> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    degraded: bool,
    #[serde(flatten)]
    answer: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
}

/// `answer`, marked when `local` (see `Marked`).
pub fn marked<T: Serialize>(answer: T, local: bool) -> Marked<T> {
    Marked {
        degraded: local,
        answer,
        store: local.then_some("local"),
    }
}

/// `{"count":N,"parameters":["ip"]}`.
#[derive(Debug, Serialize)]
struct FailureCountAnswer {
    count: u64,
    parameters: Vec<&'static str>,
}

/// `{"locked":false}` or `{"locked":true,"reason":...,"retry_after_secs":...,"locked_by":[...]}`;
/// in observe mode `{"locked":false,"would_lock":true,"observed":{...}}` for a refusal withheld.
pub fn verdict(verdict: &Verdict) -> LoginAnswer {
    let mut answer = LoginAnswer {
        failures: None,
        locked: false,
        locked_by: None,
        observed: None,
        reason: None,
        retry_after_secs: None,
        would_lock: None,
    };
    match verdict {
        Verdict::Allowed => {}
        Verdict::Locked(lockout) => {
            answer.locked = true;
            answer.reason = Some(lockout.reason.name());
            answer.retry_after_secs = Some(lockout.retry_after.map(seconds));
            answer.locked_by = Some(lockout.locked_by.iter().map(|c| c.names()).collect());
        }
        Verdict::WouldLock(lockout) => answer = answer.withholding(lockout),
    }
    answer
}

/// A verdict with each identity's count: `{"locked":...,"failures":[...]}`.
pub fn standing(standing: &Standing) -> LoginAnswer {
    LoginAnswer {
        failures: Some(failure_counts(&standing.failures)),
        ..verdict(&standing.verdict)
    }
}

/// `{"locked":bool,"retry_after_secs":N|null,"failures":[{"parameters":[...],"count":N}]}`,
/// and in observe mode `"would_lock":true,"observed":{...}` for a lock withheld.
pub fn failure(report: &FailureReport) -> LoginAnswer {
    let answer = LoginAnswer {
        locked: report.locked,
        retry_after_secs: Some(report.retry_after.map(seconds)),
        failures: Some(failure_counts(&report.failures)),
        ..verdict(&Verdict::Allowed)
    };
    match &report.would_lock {
        Some(lockout) => answer.withholding(lockout),
        None => answer,
    }
}

/// `[{"parameters":["ip"],"count":2},...]`.
fn failure_counts(failures: &[FailureCount]) -> Vec<FailureCountAnswer> {
    failures
        .iter()
        .map(|f| FailureCountAnswer {
            count: f.count,
            parameters: f.combination.names(),
        })
        .collect()
}

/// `{"reset":bool}`, and the `device_token` issued when device tokens are on, with how long
/// it is valid (`device_token_expires_in_secs`: a site's cookie lasts as long).
pub fn success(reset: bool, device_token: Option<(String, Duration)>) -> Value {
    let mut answer = json!({ "reset": reset });
    if let Some((token, valid_for)) = device_token {
        answer["device_token"] = token.into();
        answer["device_token_expires_in_secs"] = valid_for.as_secs().into();
    }
    answer
}

/// `{"attempts":[...]}`.
pub fn attempts(records: &[AttemptRecord]) -> Value {
    json!({ "attempts": records.iter().map(attempt).collect::<Vec<_>>() })
}

/// One record of `attempts`, with its identity's tag.
pub fn attempt(record: &AttemptRecord) -> Value {
    let parameters: Map<String, Value> = record
        .identity
        .values()
        .iter()
        .map(|(field, value)| (field.name().to_string(), Value::from(value.as_str())))
        .collect();
    json!({
        "identity": record.identity.tag(),
        "parameters": parameters,
        "failures": record.failures,
        "locked": record.is_locked(),
        "retry_after_secs": record.lock_remaining.map(seconds),
        "would_lock": record.would_lock_remaining.is_some(),
        "would_lock_secs": record.would_lock_remaining.map(seconds),
        "first_failure": record.first_failure.map(rfc3339),
        "last_failure": record.last_failure.map(rfc3339),
        "user_agent": record.user_agent,
        "path": record.path,
        "lockouts": record.lockouts,
        "spraying": record.spraying.map(|spraying| json!({
            "usernames": spraying.usernames,
            "locked": spraying.lock_remaining.is_some(),
            "retry_after_secs": spraying.lock_remaining.map(seconds),
            "would_lock": spraying.would_lock_remaining.is_some(),
            "would_lock_secs": spraying.would_lock_remaining.map(seconds),
            "lockouts": spraying.lockouts,
        })),
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

/// `{"revoked":true}`: device tokens revoked.
pub fn revoked() -> Value {
    json!({ "revoked": true })
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
        #[serde(default)]
        would_lock_secs: Option<u64>,
        first_failure: Option<String>,
        last_failure: Option<String>,
        user_agent: Option<String>,
        path: Option<String>,
        #[serde(default)]
        lockouts: u64,
        #[serde(default)]
        spraying: Option<Spraying>,
    }
    #[derive(Deserialize)]
    struct Spraying {
        usernames: u64,
        retry_after_secs: Option<u64>,
        #[serde(default)]
        would_lock_secs: Option<u64>,
        lockouts: u64,
    }
    let Attempts { attempts } = serde_json::from_value(answer).map_err(|err| err.to_string())?;
    attempts
        .into_iter()
        .map(|attempt| {
            let value = |name: &str| attempt.parameters.get(name).map(String::as_str);
            Ok(AttemptRecord {
                identity: Identity::of_fields(value("ip"), value("username"), value("user_agent"))
                    .and_then(|identity| identity.with_device(value("device")))
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
                would_lock_remaining: attempt.would_lock_secs.map(Duration::from_secs),
                spraying: attempt.spraying.map(|spraying| SprayingRecord {
                    usernames: spraying.usernames,
                    lock_remaining: spraying.retry_after_secs.map(Duration::from_secs),
                    would_lock_remaining: spraying.would_lock_secs.map(Duration::from_secs),
                    lockouts: spraying.lockouts,
                }),
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

/// `{"events":[{"id","time","kind","subject","ip"?,"lockout_secs"?,"lockouts"?,"by"?,"removed"?,
/// "reason"?}],
/// "next":cursor}`, oldest first; `next` is where the following page starts.
pub fn events(events: &[StoredEvent], next: &EventCursor) -> Value {
    json!({
        "events": events.iter().map(event).collect::<Vec<_>>(),
        "next": next.to_string(),
    })
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
        ("reason", event.reason.clone().map(Value::from)),
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
        reason: Option<String>,
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
                    reason: stored.reason,
                },
                id: stored.id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::Field;
    use crate::engine::{LockReason, Lockout};
    use crate::policy::Combination;

    fn written(answer: impl serde::Serialize) -> String {
        serde_json::to_string(&answer).unwrap()
    }

    /// The login answers are written from structs now; their bytes are still those of the
    /// `json!` objects they replaced (keys in alphabetical order), marked or not.
    #[test]
    fn login_answers_keep_their_bytes() {
        let by_ip = Combination::new([Field::Ip]).unwrap();
        let by_pair = Combination::new([Field::Ip, Field::Username]).unwrap();
        let locked = Verdict::Locked(Lockout {
            reason: LockReason::Lockout,
            retry_after: Some(Duration::from_millis(1500)),
            locked_by: vec![by_pair.clone()],
            started: Vec::new(),
            spraying_started: false,
        });
        let deny_listed = Verdict::Locked(Lockout {
            reason: LockReason::DenyList,
            retry_after: None,
            locked_by: Vec::new(),
            started: Vec::new(),
            spraying_started: false,
        });
        let counts = vec![
            FailureCount {
                combination: by_pair,
                count: 3,
            },
            FailureCount {
                combination: by_ip,
                count: 5,
            },
        ];
        let report = FailureReport {
            locked: false,
            retry_after: None,
            failures: counts.clone(),
            started: Vec::new(),
            locked_by: Vec::new(),
            would_lock: None,
            spraying_started: false,
        };
        let read = Standing {
            verdict: locked.clone(),
            failures: counts,
        };
        let counted = json!([
            { "parameters": ["ip", "username"], "count": 3 },
            { "parameters": ["ip"], "count": 5 },
        ]);
        for (answer, old) in [
            (
                written(verdict(&Verdict::Allowed)),
                json!({ "locked": false }),
            ),
            (
                written(verdict(&locked)),
                json!({
                    "locked": true,
                    "reason": "lockout",
                    "retry_after_secs": 2,
                    "locked_by": [["ip", "username"]],
                }),
            ),
            (
                written(marked(verdict(&deny_listed), true)),
                json!({
                    "locked": true,
                    "reason": "deny_list",
                    "retry_after_secs": null,
                    "locked_by": [],
                    "degraded": true,
                    "store": "local",
                }),
            ),
            (
                written(marked(failure(&report), false)),
                json!({
                    "locked": false,
                    "retry_after_secs": null,
                    "failures": counted,
                }),
            ),
            (
                written(standing(&read)),
                json!({
                    "locked": true,
                    "reason": "lockout",
                    "retry_after_secs": 2,
                    "locked_by": [["ip", "username"]],
                    "failures": counted,
                }),
            ),
            (
                written(marked(success(true, None), true)),
                json!({ "reset": true, "degraded": true, "store": "local" }),
            ),
        ] {
            assert_eq!(answer, old.to_string());
        }
    }

    /// Observe mode keeps an unaware client's answer the allowed one and adds what would have
    /// been apart, locally counted or not.
    #[test]
    fn observe_answers_add_what_would_have_been() {
        let by_ip = Combination::new([Field::Ip]).unwrap();
        let withheld = Lockout {
            reason: LockReason::Lockout,
            retry_after: Some(Duration::from_secs(1800)),
            locked_by: vec![by_ip.clone()],
            started: vec![by_ip.clone()],
            spraying_started: false,
        };
        let report = FailureReport {
            locked: false,
            retry_after: None,
            failures: vec![FailureCount {
                combination: by_ip,
                count: 3,
            }],
            started: Vec::new(),
            locked_by: Vec::new(),
            would_lock: Some(withheld.clone()),
            spraying_started: false,
        };
        let observed = json!({
            "locked_by": [["ip"]],
            "reason": "lockout",
            "retry_after_secs": 1800,
        });
        assert_eq!(
            written(verdict(&Verdict::WouldLock(withheld))),
            json!({ "locked": false, "observed": observed, "would_lock": true }).to_string()
        );
        assert_eq!(
            written(marked(failure(&report), true)),
            r#"{"degraded":true,"failures":[{"count":3,"parameters":["ip"]}],"locked":false,"#
                .to_string()
                + &format!(r#""observed":{observed},"retry_after_secs":null,"would_lock":true,"#)
                + r#""store":"local"}"#
        );
    }
}
