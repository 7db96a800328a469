//! `LOCKOUT_*` environment variables as configuration keys, and errors that name the
//! variable a bad value came from.

use figment::providers::{Env, Serialized};
use serde_json::{Map, Value};

use crate::error::Error;

/// Keys whose values are text whatever they look like: figment reads `LOCKOUT_ADMIN_PASSWORD=
/// 123456` as a number (and `0123` as 123), so these are taken from the environment as written.
const TEXT_KEYS: [&str; 13] = [
    "redis_url",
    "redis_sentinel_master",
    "redis_tls_ca",
    "redis_tls_cert",
    "redis_tls_key",
    "prefix",
    "listen",
    "api_token",
    "admin.path",
    "admin.username",
    "admin.password",
    "admin.token",
    "devices.secret",
];

/// The Django integration's settings that are not the service's (`LOCKOUT_URL`,
/// `LOCKOUT_TIMEOUT`, `LOCKOUT_ON_ERROR`, `LOCKOUT_SCOPE`), as `environment` sees them: one env
/// file may serve the site's container and the service's. (`LOCKOUT_API_TOKEN` and
/// `LOCKOUT_ADMIN_TOKEN` are the same secrets on both sides: `api_token`, `admin.token`.)
const DJANGO_SETTINGS: [&str; 4] = ["url", "timeout", "on_error", "scope"];

/// `LOCKOUT_POLICY_FAILURE_LIMIT` is `policy.failure_limit`, `LOCKOUT_ADMIN_PASSWORD` is
/// `admin.password`, `LOCKOUT_DEVICES_SECRET` is `devices.secret`; `LOCKOUT_CONFIG`, `LOCKOUT_LOG` and `LOCKOUT_SERVER` (the CLI's
/// `--server`) are not configuration keys, and neither are the Django integration's
/// `DJANGO_SETTINGS` nor the variables Kubernetes makes for a Service named `lockout`
/// (`LOCKOUT_PORT`, `LOCKOUT_PORT_8080_TCP_ADDR`, `LOCKOUT_SERVICE_HOST`, ...). Any other
/// `LOCKOUT_` variable must name a key: a typo is an error. `TEXT_KEYS` come from
/// `text_environment`.
pub(super) fn environment() -> Env {
    Env::prefixed("LOCKOUT_").filter_map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        let kubernetes = key == "port"
            || key.starts_with("port_")
            || key == "service_host"
            || key == "service_port"
            || key.starts_with("service_port_");
        let not_a_key = ["config", "log", "server"].contains(&key.as_str())
            || DJANGO_SETTINGS.contains(&key.as_str());
        if kubernetes || not_a_key {
            return None;
        }
        let path = config_path(&key);
        (!TEXT_KEYS.contains(&path.as_str())).then(|| path.into())
    })
}

/// The `TEXT_KEYS` set in the environment, each exactly as written.
pub(super) fn text_environment() -> Serialized<Map<String, Value>> {
    let mut values = Map::new();
    for key in TEXT_KEYS {
        if let Ok(value) = std::env::var(environment_variable(key)) {
            let (section, name) = key
                .split_once('.')
                .map_or((None, key), |(s, n)| (Some(s), n));
            let table = match section {
                Some(section) => values
                    .entry(section)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("a section is a table"),
                None => &mut values,
            };
            table.insert(name.to_string(), Value::String(value));
        }
    }
    Serialized::defaults(values)
}

/// `JSON_KEYS` set in the environment as JSON, which figment's own parsing of environment
/// values does not read (`[{"fields": ["ip"], "failure_limit": 10}]`): the same shapes as in a
/// request's policy (and as `[[webhooks]]` in TOML). A value that is not JSON is left to figment (`ip`, `[ip, username]`).
pub(super) fn json_environment() -> Serialized<Map<String, Value>> {
    let mut values = Map::new();
    for key in JSON_KEYS {
        let Ok(text) = std::env::var(environment_variable(key)) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match key.split_once('.') {
            Some((section, name)) => values
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("a section is a table")
                .insert(name.to_string(), value),
            None => values.insert(key.to_string(), value),
        };
    }
    Serialized::defaults(values)
}

/// Keys whose environment values may be JSON (see `json_environment`).
const JSON_KEYS: [&str; 3] = ["policy.lockout_parameters", "webhooks", "api_tokens"];

/// `policy_failure_limit` is `policy.failure_limit`.
fn config_path(key: &str) -> String {
    for section in ["policy", "admin", "devices"] {
        if let Some(rest) = key.strip_prefix(section).and_then(|k| k.strip_prefix('_')) {
            return format!("{section}.{rest}");
        }
    }
    key.to_string()
}

/// `admin.password` is `LOCKOUT_ADMIN_PASSWORD`.
fn environment_variable(key: &str) -> String {
    format!("LOCKOUT_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// One line naming the key, the problem and where the value came from.
pub(super) fn describe(errors: figment::Error) -> Error {
    let Some(error) = errors.into_iter().next() else {
        return Error::Config("unreadable configuration".into());
    };
    let key = error.path.join(".");
    let origin = match &error.metadata {
        Some(metadata) if metadata.name.contains("environment") => {
            format!(" (environment variable {})", environment_variable(&key))
        }
        Some(metadata) => metadata.source.as_ref().map_or_else(
            || format!(" ({})", metadata.name),
            |source| format!(" (in {source})"),
        ),
        None => String::new(),
    };
    let kind = if SECRET_KEYS.iter().any(|secret| key.starts_with(secret)) {
        without_value(&error.kind)
    } else {
        error.kind.to_string()
    };
    Error::Config(format!("{key}: {kind}{origin}"))
}

/// Keys whose values (or parts of them) are secrets, which an error never shows.
const SECRET_KEYS: [&str; 6] = [
    "api_token",
    "api_tokens",
    "admin.password",
    "admin.token",
    "webhooks",
    "devices.secret",
];

/// What is wrong with a secret's value, without the value.
fn without_value(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("invalid {}, expected {expected}", actual_type(actual))
        }
        Kind::Unsupported(actual) => format!("unsupported {}", actual_type(actual)),
        Kind::Message(_) => "invalid value".into(),
        kind => kind.to_string(),
    }
}

/// A value's type, as figment names it, without the value (`a string`, not `string "x"`).
fn actual_type(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "integer",
        Actual::Float(_) => "float",
        Actual::Char(_) | Actual::Str(_) => "string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "unit value",
        Actual::Option => "option",
        Actual::NewtypeStruct => "newtype struct",
        Actual::Seq => "sequence",
        Actual::Map => "map",
        Actual::Enum => "enum",
        Actual::UnitVariant => "unit variant",
        Actual::NewtypeVariant => "newtype variant",
        Actual::TupleVariant => "tuple variant",
        Actual::StructVariant => "struct variant",
        Actual::Other(_) => "value",
    }
}
