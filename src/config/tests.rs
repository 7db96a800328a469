//! The configuration's unit tests.

use std::num::NonZeroU32;

use serde_json::{Map, Value};

use super::*;
use crate::attempt::Field;
use crate::policy::{Backoff, Combination, Limits, Repeat};
use crate::store::redis::Topology;

#[test]
fn the_example_file_is_valid_and_holds_the_defaults() {
    let example = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lockout.example.toml"));
    let config = Config::load(Some(example), &Overrides::default()).unwrap();
    assert_eq!(config.policy, Policy::default());
    assert_eq!(config.admin, AdminConfig::default());
    assert_eq!(config.command_timeout, Duration::from_millis(250));
    assert_eq!(config.on_store_error, OnStoreError::Deny);
}

#[test]
fn debug_output_shows_no_secret() {
    let mut config = Config::load(None, &Overrides::default()).unwrap();
    config.admin.password = "hunter2".into();
    config.admin.token = "t0ken-hunter3".into();
    config.api_token = Some("hunter4".into());
    config.redis = Some(RedisEndpoint::server("redis://app:hunter5@10.0.0.5:6379"));
    let shown = format!("{config:?}");
    for secret in ["hunter2", "hunter3", "hunter4", "hunter5"] {
        assert!(!shown.contains(secret), "{secret}: {shown}");
    }
    assert!(shown.contains("redis://app:***@10.0.0.5:6379"), "{shown}");
}

fn apply(overrides: Value) -> Result<Policy> {
    let Value::Object(overrides) = overrides else {
        panic!("an object")
    };
    RequestPolicies::new(&Policy::default()).apply(&overrides)
}

#[test]
fn request_policies_override_the_base_key_by_key() {
    assert_eq!(apply(serde_json::json!({})).unwrap(), Policy::default());
    let policy = apply(serde_json::json!({
        "failure_limit": 10,
        "cooloff": "1500ms",
        "lockout_parameters": [["username", "ip_address"], "ip", "ip_address"],
    }))
    .unwrap();
    assert_eq!(policy.failure_limit.get(), 10);
    assert_eq!(policy.cooloff, Duration::from_millis(1500));
    assert_eq!(policy.lockout_duration, Duration::from_millis(1500));
    assert_eq!(
        policy.combinations,
        [
            Combination::new([Field::Ip, Field::Username]).unwrap(),
            Combination::new([Field::Ip]).unwrap()
        ]
    );
    assert_eq!(policy.never_lockout, Policy::default().never_lockout);
}

#[test]
fn request_policies_name_what_is_wrong() {
    for (overrides, message) in [
            (
                serde_json::json!({"cooloff": 5}),
                "policy.cooloff: invalid type: integer `5`, expected a duration",
            ),
            (
                serde_json::json!({"cooloff": "366d"}),
                "policy.cooloff: must be at most 365 days (every key lockout writes expires within a year)",
            ),
            (
                serde_json::json!({"failure_limit": 0}),
                "policy.failure_limit: invalid value: integer `0`, expected a nonzero u32",
            ),
            (
                serde_json::json!({"lockout_parameters": ["password"]}),
                "policy.lockout_parameters: unknown field \"password\" (expected \"ip\", \"username\" or \"user_agent\")",
            ),
        ] {
            let err = apply(overrides).unwrap_err();
            assert!(err.is_invalid_input());
            assert_eq!(err.to_string(), message);
        }
    let err = apply(serde_json::json!({"colloff": "1m"})).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("policy.colloff: not accepted in a request"),
        "{err}"
    );
}

/// The configuration of `toml`, or its error message.
fn load_toml(toml: &str) -> std::result::Result<Config, String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), toml).unwrap();
    Config::load(Some(file.path()), &Overrides::default()).map_err(|err| err.to_string())
}

#[test]
fn webhooks_are_read_from_toml_and_checked_each_with_its_place() {
    let config = load_toml(
            "[[webhooks]]\nurl = \"https://hooks.example/lockout?token=t0k\"\nsecret = \"0123456789abcdef\"\n\n[[webhooks]]\nname = \"pager\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"fedcba9876543210\"\nevents = [\"lockout_started\"]\n",
        )
        .unwrap();
    let names: Vec<(&str, usize)> = config
        .webhooks
        .iter()
        .map(|w| (w.name.as_str(), w.events.len()))
        .collect();
    assert_eq!(names, [("hooks.example", 4), ("pager", 1)]);
    assert!(!format!("{config:?}").contains("t0k"));
    assert!(!format!("{config:?}").contains("0123456789abcdef"));
    let entry = |body: &str| format!("[[webhooks]]\n{body}\n");
    let good = "url = \"http://a.example/\"\nsecret = \"0123456789abcdef\"";
    for (toml, wanted) in [
        (
            entry("url = \"ftp://a.example/\"\nsecret = \"0123456789abcdef\""),
            "webhooks[0].url: must be an http:// or https:// URL",
        ),
        (
            entry("url = \"http://a.example/\"\nsecret = \"short\""),
            "webhooks[0].secret: must be at least 16 bytes",
        ),
        (
            entry(&format!("{good}\nevents = [\"lockout_ended\"]")),
            "webhooks[0].events: \"lockout_ended\" is no event kind",
        ),
        (
            format!("{}{}", entry(good), entry(good)),
            "webhooks[1].name: \"a.example\" is webhooks[0]'s name too",
        ),
        (
            format!("[policy]\nevents = false\n{}", entry(good)),
            "webhooks[0]: webhooks send events, and policy.events is false",
        ),
        (entry("url = \"http://a.example/\""), "webhooks"),
    ] {
        let error = load_toml(&toml).unwrap_err();
        assert!(error.contains(wanted), "{toml}: {error}");
        assert!(!error.contains("0123456789abcdef"), "{error}");
    }
}

#[test]
fn device_tokens_are_on_with_a_secret_of_16_bytes() {
    assert_eq!(load_toml("").unwrap().devices, None);
    let config = load_toml("[devices]\nsecret = \"0123456789abcdef\"\n").unwrap();
    let devices = config.devices.as_ref().unwrap();
    assert_eq!(devices.token_ttl, Duration::from_secs(90 * 24 * 3600));
    assert_eq!(devices.unlock_token_ttl, Duration::from_secs(3600));
    assert!(!format!("{config:?}").contains("0123456789abcdef"));
    let config =
        load_toml("[devices]\nsecret = \"0123456789abcdef\"\ntoken_ttl = \"30d\"\n").unwrap();
    assert_eq!(
        config.devices.unwrap().token_ttl,
        Duration::from_secs(30 * 24 * 3600)
    );
    for (toml, wanted) in [
        (
            "[devices]\nsecret = \"short-s3cret\"\n",
            "devices.secret: must be at least 16 bytes",
        ),
        (
            "[devices]\ntoken_ttl = \"400d\"\n",
            "devices.token_ttl: must be at most 365 days",
        ),
        ("[devices]\nttl = \"1d\"\n", "devices.ttl: unknown field"),
    ] {
        let error = load_toml(toml).unwrap_err();
        assert!(error.contains(wanted), "{toml}: {error}");
        assert!(!error.contains("short-s3cret"), "{error}");
    }
}

#[test]
fn combinations_may_set_limits_of_their_own() {
    let recipe = load_toml(
            "[policy]\nlockout_parameters = [\n  { fields = [\"ip\", \"username\"], failure_limit = 10, cooloff = \"90d\", lockout_duration = \"1h\" },\n  { fields = \"ip\", failure_limit = 100, cooloff = \"1d\" },\n  \"username\",\n]\n",
        )
        .unwrap();
    let limits: Vec<(Vec<&str>, Limits)> = recipe
        .policy
        .combinations
        .iter()
        .map(|combination| (combination.names(), *combination.limits()))
        .collect();
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(
        limits,
        [
            (
                vec!["ip", "username"],
                Limits {
                    failure_limit: NonZeroU32::new(10),
                    cooloff: Some(90 * day),
                    lockout_duration: Some(Duration::from_secs(3600)),
                }
            ),
            (
                vec!["ip"],
                Limits {
                    failure_limit: NonZeroU32::new(100),
                    cooloff: Some(day),
                    lockout_duration: None,
                }
            ),
            (vec!["username"], Limits::default()),
        ]
    );
    // A request's policy takes the same shape, and the configured one goes through JSON
    // unchanged.
    let requested = apply(serde_json::json!({
            "lockout_parameters": [{"fields": ["username", "ip"], "failure_limit": 10, "cooloff": "90d", "lockout_duration": "1h"}, {"fields": "ip", "failure_limit": 100, "cooloff": "1d"}, "username"],
        }))
        .unwrap();
    assert_eq!(requested.combinations, recipe.policy.combinations);
    assert_eq!(
        RequestPolicies::new(&recipe.policy)
            .apply(&Map::new())
            .unwrap(),
        recipe.policy
    );
    for (parameters, message) in [
            (
                serde_json::json!([{"fields": "ip", "limit": 3}]),
                "policy.lockout_parameters[0]: unknown key \"limit\" (expected fields, failure_limit, cooloff, lockout_duration)",
            ),
            (
                serde_json::json!([{"failure_limit": 3}]),
                "policy.lockout_parameters[0].fields: missing",
            ),
            (
                serde_json::json!(["ip", {"fields": "ip", "cooloff": "soon"}]),
                "policy.lockout_parameters[1].cooloff: \"soon\" is not a duration",
            ),
            (
                serde_json::json!([{"fields": "ip", "failure_limit": 0}]),
                "policy.lockout_parameters[0].failure_limit: 0 is not a whole number from 1",
            ),
            (
                serde_json::json!([{"fields": "ip", "lockout_duration": "400d"}]),
                "policy.lockout_parameters[0].lockout_duration: must be at most 365 days",
            ),
            (
                serde_json::json!(["ip", {"fields": ["ip_address"], "failure_limit": 5}]),
                "policy.lockout_parameters[1]: ip is named twice with different limits",
            ),
        ] {
            let err = apply(serde_json::json!({ "lockout_parameters": parameters }))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(message), "{err}");
        }
}

#[test]
fn repeat_offenders_are_off_unless_a_lockout_memory_is_set() {
    assert_eq!(load_toml("").unwrap().policy.repeat, None);
    let on = load_toml("[policy]\nlockout_memory = \"7d\"\n").unwrap();
    assert_eq!(
        on.policy.repeat,
        Some(Repeat {
            memory: Duration::from_secs(7 * 24 * 3600),
            backoff: Backoff(2.0),
            max_lockout: Duration::from_secs(24 * 3600),
        })
    );
    for (toml, message) in [
        (
            "[policy]\nlockout_memory = \"7d\"\nlockout_backoff = 0.5\n",
            "policy.lockout_backoff: 0.5 is not a factor from 1 to 100",
        ),
        (
            "[policy]\nlockout_memory = \"7d\"\ncooloff = \"2d\"\n",
            "policy.max_lockout_duration: 1day is shorter than lockout_duration (2days)",
        ),
        (
            "[policy]\nlockout_memory = \"400d\"\n",
            "policy.lockout_memory: must be at most 365 days",
        ),
    ] {
        let err = load_toml(toml).unwrap_err();
        assert!(err.contains(message), "{toml}: {err}");
    }
    // The operator's, not a request's; the configured one goes through JSON unchanged.
    let requested = apply(serde_json::json!({"lockout_memory": "1h", "lockout_backoff": 3}));
    assert!(requested
        .unwrap_err()
        .to_string()
        .contains("not accepted in a request"));
    assert_eq!(
        RequestPolicies::new(&on.policy).apply(&Map::new()).unwrap(),
        on.policy
    );
}

#[test]
fn without_a_redis_the_store_is_in_process() {
    for toml in ["", "redis_url = \"memory://\"\n"] {
        assert!(load_toml(toml).unwrap().redis.is_none(), "{toml}");
    }
    let server = load_toml("redis_url = \"redis://10.0.0.5:6379\"\n").unwrap();
    assert!(server.redis.is_some());
    for (toml, message) in [
            (
                "on_store_error = \"local\"\n",
                "on_store_error: \"local\" counts in the process while Redis is away, and no Redis is set",
            ),
            (
                "redis_tls_ca = \"/etc/ca.pem\"\n",
                "redis_tls_ca, redis_tls_cert, redis_tls_key: set, but no Redis is",
            ),
            ("memory_max_identities = 0\n", "memory_max_identities: must be at least 1"),
            ("memory_max_log_entries = 0\n", "memory_max_log_entries: must be at least 1"),
            ("memory_max_bytes = 1000\n", "memory_max_bytes: must be at least 1048576"),
            ("view_scan_limit = 0\n", "view_scan_limit: from 1 to 10000000 records"),
            ("view_scan_limit = 10000001\n", "view_scan_limit: from 1 to 10000000 records"),
        ] {
            let err = load_toml(toml).unwrap_err();
            assert!(err.contains(message), "{toml}: {err}");
        }
    let insured = load_toml(
            "redis_url = \"redis://10.0.0.5:6379\"\non_store_error = \"local\"\ncommand_timeout = \"250ms\"\n",
        )
        .unwrap();
    assert_eq!(insured.login_redis_timeout(), Duration::from_millis(200));
}

#[test]
fn redis_topologies_and_tls_files_are_checked_at_load() {
    let sentinel = load_toml(
            "redis_url = \"rediss://app:pw@ignored/2\"\nredis_sentinel = \"redis://s1:26379,redis://s2:26379\"\nredis_sentinel_master = \"main\"\n",
        )
        .unwrap();
    let sentinel = sentinel.redis.expect("Sentinels set");
    // No Debug on Topology: its URLs hold passwords.
    assert!(
        sentinel.topology()
            == &Topology::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                master: "main".into(),
                node_url: "rediss://app:pw@ignored/2".into(),
            }
    );
    assert!(sentinel.uses_tls());
    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "not a certificate").unwrap();
    let not_pem = not_pem.path().display().to_string();
    for (toml, message) in [
            (
                "redis_sentinel = [\"redis://s1:26379\"]\n".to_string(),
                "redis_sentinel_master: required with redis_sentinel",
            ),
            (
                "redis_sentinel_master = \"main\"\n".to_string(),
                "redis_sentinel_master: set without redis_sentinel",
            ),
            (
                "redis_cluster = [\"redis://a:1\"]\nredis_sentinel = [\"redis://s:2\"]\nredis_sentinel_master = \"m\"\n".to_string(),
                "redis_cluster and redis_sentinel: give one of them",
            ),
            (
                "redis_url = \"rediss://h:1\"\nredis_tls_ca = \"/nonexistent/ca.pem\"\n".to_string(),
                "redis_tls_ca: cannot read \"/nonexistent/ca.pem\"",
            ),
            (
                format!("redis_url = \"rediss://h:1\"\nredis_tls_ca = {not_pem:?}\n"),
                "redis_tls_ca: no PEM certificate in the file",
            ),
            (
                format!("redis_url = \"rediss://h:1\"\nredis_tls_cert = {not_pem:?}\n"),
                "redis_tls_cert and redis_tls_key: give both",
            ),
        ] {
            let err = load_toml(&toml).unwrap_err();
            assert!(err.contains(message), "{toml}: {err}");
        }
}

#[test]
fn durations_under_a_millisecond_are_refused_at_load() {
    for (toml, key) in [
        ("[policy]\ncooloff = \"500us\"\n", "policy.cooloff"),
        (
            "[policy]\nlockout_memory = \"999us\"\n",
            "policy.lockout_memory",
        ),
    ] {
        let err = load_toml(toml).unwrap_err();
        assert!(
            err.contains(&format!("{key}: must be at least 1ms")),
            "{toml}: {err}"
        );
    }
}

#[test]
fn durations_over_a_year_are_refused_at_load() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "[policy]\nlockout_duration = \"400d\"\n").unwrap();
    let err = Config::load(Some(file.path()), &Overrides::default()).unwrap_err();
    assert_eq!(
            err.to_string(),
            "invalid configuration: policy.lockout_duration: must be at most 365 days (every key lockout writes expires within a year)"
        );
}
