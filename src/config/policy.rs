//! The `[policy]` table as written (and as a request's policy gives it), its combinations,
//! and its validation into a `Policy`.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bounded;
use crate::attempt::Field;
use crate::error::{Error, Result};
use crate::policy::{AccessLog, Backoff, Combination, IpList, Limits, Policy, Repeat, Spraying};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPolicy {
    failure_limit: NonZeroU32,
    #[serde(with = "humantime_serde")]
    cooloff: Duration,
    #[serde(with = "humantime_serde")]
    lockout_duration: Option<Duration>,
    lockout_parameters: Vec<RawCombination>,
    lock_out_at_failure: bool,
    reset_on_success: bool,
    reset_cooloff_on_failure_during_lockout: bool,
    never_lockout: OneOrMany,
    deny: OneOrMany,
    access_log: bool,
    #[serde(with = "humantime_serde")]
    access_log_retention: Duration,
    access_log_max_entries: NonZeroU64,
    events: bool,
    #[serde(with = "humantime_serde")]
    events_retention: Duration,
    events_max_entries: NonZeroU64,
    ipv6_prefix_length: u8,
    #[serde(with = "humantime_serde")]
    lockout_memory: Option<Duration>,
    lockout_backoff: f64,
    #[serde(with = "humantime_serde")]
    max_lockout_duration: Duration,
    observe: bool,
    spraying_limit: u32,
    #[serde(with = "humantime_serde")]
    spraying_window: Duration,
}

impl Default for RawPolicy {
    fn default() -> Self {
        let policy = Policy::default();
        RawPolicy {
            failure_limit: policy.failure_limit,
            cooloff: policy.cooloff,
            lockout_duration: None,
            lockout_parameters: vec![RawCombination::Fields(OneOrMany::One("ip".into()))],
            lock_out_at_failure: policy.lock_out_at_failure,
            reset_on_success: policy.reset_on_success,
            reset_cooloff_on_failure_during_lockout: policy.reset_cooloff_on_failure_during_lockout,
            never_lockout: OneOrMany::Many(Vec::new()),
            deny: OneOrMany::Many(Vec::new()),
            access_log: true,
            access_log_retention: policy.access_log.expect("on by default").retention,
            access_log_max_entries: policy.access_log.expect("on by default").max_entries,
            events: true,
            events_retention: policy.events.expect("on by default").retention,
            events_max_entries: policy.events.expect("on by default").max_entries,
            ipv6_prefix_length: policy.ipv6_prefix_length,
            lockout_memory: None,
            lockout_backoff: DEFAULT_BACKOFF,
            max_lockout_duration: DEFAULT_MAX_LOCKOUT,
            observe: policy.observe,
            spraying_limit: 0,
            spraying_window: DEFAULT_SPRAYING_WINDOW,
        }
    }
}

/// Repeat offenders' defaults: each lockout twice as long as the one before, at most a day.
const DEFAULT_BACKOFF: f64 = 2.0;
const DEFAULT_MAX_LOCKOUT: Duration = Duration::from_secs(24 * 3600);

/// Password spraying's window when only its limit is set.
const DEFAULT_SPRAYING_WINDOW: Duration = Duration::from_secs(3600);

/// The most distinct usernames a spraying limit counts: each IP's count keeps that many 8-byte
/// members (docs/design.md, "Password spraying": 944 bytes of Redis at 100).
const MAX_SPRAYING_LIMIT: u32 = 100;

/// A string or a list of strings: a lockout combination (`"ip"` or `["ip","username"]`), or an
/// IP list (a list, or one comma-separated string as environment variables give it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A combination as written: a field name, a list of them, or a table with the fields and
/// limits of its own (`{ fields = ["ip", "username"], failure_limit = 10, cooloff = "90d" }`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum RawCombination {
    Fields(OneOrMany),
    Table(Map<String, Value>),
}

/// The keys a combination's table may hold.
const COMBINATION_KEYS: [&str; 4] = ["fields", "failure_limit", "cooloff", "lockout_duration"];

impl RawCombination {
    /// The validated combination; `at` names it in errors (`policy.lockout_parameters[1]`).
    fn validate(&self, at: &str) -> Result<Combination> {
        let names = |fields: &OneOrMany| -> Result<Combination> {
            let fields = fields
                .items(None)
                .iter()
                .map(|name| Field::parse(name))
                .collect::<Result<Vec<_>>>()?;
            Combination::new(fields)
        };
        let table = match self {
            RawCombination::Fields(fields) => return names(fields),
            RawCombination::Table(table) => table,
        };
        if let Some(unknown) = table
            .keys()
            .find(|key| !COMBINATION_KEYS.contains(&key.as_str()))
        {
            return Err(Error::Config(format!(
                "{at}: unknown key {unknown:?} (expected {})",
                COMBINATION_KEYS.join(", ")
            )));
        }
        let fields = table.get("fields").ok_or_else(|| {
            Error::Config(format!(
                "{at}.fields: missing (the fields counted together)"
            ))
        })?;
        let fields: OneOrMany = serde_json::from_value(fields.clone()).map_err(|_| {
            Error::Config(format!(
                "{at}.fields: a field name or a list of field names"
            ))
        })?;
        let failure_limit = table
            .get("failure_limit")
            .map(|limit| {
                serde_json::from_value::<NonZeroU32>(limit.clone()).map_err(|_| {
                    Error::Config(format!(
                        "{at}.failure_limit: {limit} is not a whole number from 1"
                    ))
                })
            })
            .transpose()?;
        let duration = |key: &str| -> Result<Option<Duration>> {
            let Some(value) = table.get(key) else {
                return Ok(None);
            };
            let duration = value
                .as_str()
                .and_then(|text| humantime::parse_duration(text).ok())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{at}.{key}: {value} is not a duration such as \"90d\" or \"30m\""
                    ))
                })?;
            bounded(&format!("{at}.{key}"), duration).map(Some)
        };
        let limits = Limits {
            failure_limit,
            cooloff: duration("cooloff")?,
            lockout_duration: duration("lockout_duration")?,
        };
        Ok(names(&fields)?.with_limits(limits))
    }
}

impl From<&Combination> for RawCombination {
    fn from(combination: &Combination) -> Self {
        let fields = OneOrMany::Many(combination.names().into_iter().map(String::from).collect());
        let limits = combination.limits();
        if limits.is_empty() {
            return RawCombination::Fields(fields);
        }
        let mut table = Map::new();
        table.insert(
            "fields".into(),
            serde_json::to_value(fields).expect("a list of names"),
        );
        if let Some(limit) = limits.failure_limit {
            table.insert("failure_limit".into(), limit.get().into());
        }
        for (key, duration) in [
            ("cooloff", limits.cooloff),
            ("lockout_duration", limits.lockout_duration),
        ] {
            if let Some(duration) = duration {
                table.insert(
                    key.into(),
                    humantime::format_duration(duration).to_string().into(),
                );
            }
        }
        RawCombination::Table(table)
    }
}

impl OneOrMany {
    pub(super) fn items(&self, separator: Option<char>) -> Vec<String> {
        match self {
            OneOrMany::One(one) => match separator {
                Some(separator) => one
                    .split(separator)
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(String::from)
                    .collect(),
                None => vec![one.clone()],
            },
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

impl RawPolicy {
    /// Repeat offenders, when `lockout_memory` is set: the backoff a factor from 1 to 100, the
    /// longest lockout no shorter than `lockout_duration`.
    fn repeat(&self, lockout_duration: Duration) -> Result<Option<Repeat>> {
        let Some(memory) = self.lockout_memory else {
            return Ok(None);
        };
        let memory = bounded("policy.lockout_memory", memory)?;
        if !(1.0..=100.0).contains(&self.lockout_backoff) {
            return Err(Error::Config(format!(
                "policy.lockout_backoff: {} is not a factor from 1 to 100",
                self.lockout_backoff
            )));
        }
        let max_lockout = bounded("policy.max_lockout_duration", self.max_lockout_duration)?;
        if max_lockout < lockout_duration {
            return Err(Error::Config(format!(
                "policy.max_lockout_duration: {} is shorter than lockout_duration ({})",
                humantime::format_duration(max_lockout),
                humantime::format_duration(lockout_duration)
            )));
        }
        Ok(Some(Repeat {
            memory,
            backoff: Backoff(self.lockout_backoff),
            max_lockout,
        }))
    }

    /// Password spraying, when `spraying_limit` is not 0: from 2 to `MAX_SPRAYING_LIMIT`
    /// usernames within a window of at most 365 days (checked even while off).
    fn spraying(&self) -> Result<Option<Spraying>> {
        let window = bounded("policy.spraying_window", self.spraying_window)?;
        let Some(limit) = NonZeroU32::new(self.spraying_limit) else {
            return Ok(None);
        };
        if !(2..=MAX_SPRAYING_LIMIT).contains(&limit.get()) {
            return Err(Error::Config(format!(
                "policy.spraying_limit: {limit} is not 0 (off) or from 2 to {MAX_SPRAYING_LIMIT}"
            )));
        }
        Ok(Some(Spraying { limit, window }))
    }

    pub(super) fn validate(self) -> Result<Policy> {
        let cooloff = bounded("policy.cooloff", self.cooloff)?;
        let lockout_duration = bounded(
            "policy.lockout_duration",
            self.lockout_duration.unwrap_or(cooloff),
        )?;
        let access_log_retention =
            bounded("policy.access_log_retention", self.access_log_retention)?;
        if !(1..=128).contains(&self.ipv6_prefix_length) {
            return Err(Error::Config(format!(
                "policy.ipv6_prefix_length: {} is not from 1 to 128",
                self.ipv6_prefix_length
            )));
        }
        if self.lockout_parameters.is_empty() {
            return Err(Error::Config(
                "policy.lockout_parameters: needs at least one combination".into(),
            ));
        }
        let mut combinations: Vec<Combination> = Vec::new();
        for (index, combination) in self.lockout_parameters.iter().enumerate() {
            let at = format!("policy.lockout_parameters[{index}]");
            let combination = combination.validate(&at)?;
            // `["ip", "ip_address"]` names one combination twice: counted once; with other
            // limits it would be two counts of one identity.
            match combinations
                .iter()
                .find(|known| known.fields() == combination.fields())
            {
                Some(known) if *known == combination => {}
                Some(_) => {
                    return Err(Error::Config(format!(
                        "{at}: {combination} is named twice with different limits"
                    )))
                }
                None => combinations.push(combination),
            }
        }
        Ok(Policy {
            failure_limit: self.failure_limit,
            cooloff,
            lockout_duration,
            combinations,
            lock_out_at_failure: self.lock_out_at_failure,
            reset_on_success: self.reset_on_success,
            reset_cooloff_on_failure_during_lockout: self.reset_cooloff_on_failure_during_lockout,
            never_lockout: IpList::parse(
                "policy.never_lockout",
                &self.never_lockout.items(Some(',')),
            )?,
            deny: IpList::parse("policy.deny", &self.deny.items(Some(',')))?,
            access_log: self.access_log.then_some(AccessLog {
                retention: access_log_retention,
                max_entries: self.access_log_max_entries,
            }),
            events: self.events.then_some(AccessLog {
                retention: bounded("policy.events_retention", self.events_retention)?,
                max_entries: self.events_max_entries,
            }),
            ipv6_prefix_length: self.ipv6_prefix_length,
            repeat: self.repeat(lockout_duration)?,
            observe: self.observe,
            spraying: self.spraying()?,
        })
    }
}

impl From<&Policy> for RawPolicy {
    fn from(policy: &Policy) -> Self {
        let names = |list: &IpList| OneOrMany::Many(list.entries().collect());
        // Bounds that are off keep the defaults' numbers, as an unset key does.
        let defaults = RawPolicy::default();
        let access_log = policy.access_log.unwrap_or(AccessLog {
            retention: defaults.access_log_retention,
            max_entries: defaults.access_log_max_entries,
        });
        let events = policy.events.unwrap_or(AccessLog {
            retention: defaults.events_retention,
            max_entries: defaults.events_max_entries,
        });
        RawPolicy {
            failure_limit: policy.failure_limit,
            cooloff: policy.cooloff,
            lockout_duration: Some(policy.lockout_duration),
            lockout_parameters: policy
                .combinations
                .iter()
                .map(RawCombination::from)
                .collect(),
            lock_out_at_failure: policy.lock_out_at_failure,
            reset_on_success: policy.reset_on_success,
            reset_cooloff_on_failure_during_lockout: policy.reset_cooloff_on_failure_during_lockout,
            never_lockout: names(&policy.never_lockout),
            deny: names(&policy.deny),
            access_log: policy.access_log.is_some(),
            access_log_retention: access_log.retention,
            access_log_max_entries: access_log.max_entries,
            events: policy.events.is_some(),
            events_retention: events.retention,
            events_max_entries: events.max_entries,
            ipv6_prefix_length: policy.ipv6_prefix_length,
            lockout_memory: policy.repeat.map(|repeat| repeat.memory),
            lockout_backoff: policy
                .repeat
                .map_or(DEFAULT_BACKOFF, |repeat| repeat.backoff.0),
            max_lockout_duration: policy
                .repeat
                .map_or(DEFAULT_MAX_LOCKOUT, |repeat| repeat.max_lockout),
            observe: policy.observe,
            spraying_limit: policy.spraying.map_or(0, |spraying| spraying.limit.get()),
            spraying_window: policy
                .spraying
                .map_or(DEFAULT_SPRAYING_WINDOW, |spraying| spraying.window),
        }
    }
}

/// The `[policy]` keys a request may set (docs/api.md). The others would let any holder of
/// the API token weaken the service for its own requests: `never_lockout` switches lockout
/// off, `access_log` and `events` hide its logins, `ipv6_prefix_length` lets it rotate
/// addresses; they are the operator's, in the configuration file. `observe` refuses nothing,
/// but only for the requests that send it, as a looser `failure_limit` would. A site's Django
/// sends its spraying keys with each request (its `LOCKOUT_POLICY`), within the
/// configuration's bounds.
const REQUEST_KEYS: [&str; 13] = [
    "failure_limit",
    "cooloff",
    "lockout_duration",
    "lockout_parameters",
    "lock_out_at_failure",
    "reset_on_success",
    "reset_cooloff_on_failure_during_lockout",
    "deny",
    "access_log_retention",
    "access_log_max_entries",
    "observe",
    "spraying_limit",
    "spraying_window",
];

/// Policies given with requests (the `[policy]` keys as a JSON object), over a base policy
/// whose values the keys left out keep.
#[derive(Debug, Clone)]
pub struct RequestPolicies {
    base: Map<String, Value>,
    /// The configured access-log bounds, which a request may lower, not raise.
    access_log: Option<AccessLog>,
}

impl RequestPolicies {
    pub fn new(base_policy: &Policy) -> Self {
        let base = match serde_json::to_value(RawPolicy::from(base_policy)) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("RawPolicy serializes to a JSON object"),
        };
        RequestPolicies {
            base,
            access_log: base_policy.access_log,
        }
    }

    /// The base policy with `overrides` applied and validated; errors name the key
    /// (`policy.cooloff: ...`). A request that sets `cooloff` and not `lockout_duration` gets
    /// locks as long as its cool-off, as a configuration file would. Only `REQUEST_KEYS`
    /// are accepted, and access-log bounds at most the configured ones.
    pub fn apply(&self, overrides: &Map<String, Value>) -> Result<Policy> {
        if let Some(key) = overrides
            .keys()
            .find(|key| !REQUEST_KEYS.contains(&key.as_str()))
        {
            return Err(Error::invalid(format!(
                "policy.{key}: not accepted in a request (a request may set {}); set it in the \
                 configuration",
                REQUEST_KEYS.join(", ")
            )));
        }
        let mut merged = self.base.clone();
        if overrides.contains_key("cooloff") && !overrides.contains_key("lockout_duration") {
            merged.insert("lockout_duration".into(), Value::Null);
        }
        merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let raw: RawPolicy = serde_path_to_error::deserialize(Value::Object(merged))
            .map_err(|err| Error::invalid(format!("policy.{}: {}", err.path(), err.inner())))?;
        let policy = raw.validate().map_err(|err| match err {
            Error::Config(message) => Error::InvalidInput(message),
            other => other,
        })?;
        if let (Some(asked), Some(configured)) = (policy.access_log, self.access_log) {
            if asked.retention > configured.retention {
                return Err(Error::invalid(format!(
                    "policy.access_log_retention: at most the configured {} in a request",
                    humantime::format_duration(configured.retention)
                )));
            }
            if asked.max_entries > configured.max_entries {
                return Err(Error::invalid(format!(
                    "policy.access_log_max_entries: at most the configured {} in a request",
                    configured.max_entries
                )));
            }
        }
        Ok(policy)
    }
}
