//! One login attempt, normalised once (canonical IP, absent empty username, bounded lengths).

use std::net::IpAddr;

use crate::devices::Device;
use crate::error::{Error, Result};

/// An attempt field that can identify who is counted. The declaration order is the order of the
/// fields inside an identity (and so inside its Redis key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Ip,
    Username,
    UserAgent,
    /// The device a valid device token names (see `devices`): never configured, formed only
    /// with the username, in place of the combinations a device holder does not obey.
    Device,
}

impl Field {
    /// The name used in configuration, keys and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Field::Ip => "ip",
            Field::Username => "username",
            Field::UserAgent => "user_agent",
            Field::Device => "device",
        }
    }

    /// The field of a name as `name` writes it, `device` included (an identity's tag).
    pub fn named(name: &str) -> Option<Self> {
        [Field::Ip, Field::Username, Field::UserAgent, Field::Device]
            .into_iter()
            .find(|field| field.name() == name)
    }

    /// Parses a configured name; `ip_address` is Axes' name for `ip`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "ip" | "ip_address" => Ok(Field::Ip),
            "username" => Ok(Field::Username),
            "user_agent" => Ok(Field::UserAgent),
            other => Err(Error::Config(format!(
                "policy.lockout_parameters: unknown field {other:?} (expected \"ip\", \"username\" or \"user_agent\")"
            ))),
        }
    }
}

/// Longest username accepted, in characters (Axes' column width). Longer ones are refused, not
/// truncated: truncation would merge distinct users into one identity.
pub const MAX_USERNAME_CHARS: usize = 255;
/// User agents and paths are cut to this many characters, as Axes does.
pub const MAX_METADATA_CHARS: usize = 255;

/// A login attempt: who (`ip`, `username`, `user_agent`, the `device` of a valid device
/// token) and where (`path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub ip: IpAddr,
    pub username: Option<String>,
    pub user_agent: Option<String>,
    pub path: Option<String>,
    pub device: Option<Device>,
}

impl Attempt {
    /// An attempt from `ip` with no other field. The IP is canonicalised.
    pub fn from_ip(ip: IpAddr) -> Self {
        Attempt {
            ip: canonical_ip(ip),
            username: None,
            user_agent: None,
            path: None,
            device: None,
        }
    }

    /// Normalises the fields: the IP is canonicalised, an empty username or user agent is
    /// absent, an over-long username is refused, long user agents and paths are truncated.
    pub fn new(
        ip: IpAddr,
        username: Option<&str>,
        user_agent: Option<&str>,
        path: Option<&str>,
    ) -> Result<Self> {
        Ok(Attempt {
            username: username.map(parse_username).transpose()?.flatten(),
            user_agent: non_empty(user_agent).map(|ua| truncate(ua, MAX_METADATA_CHARS)),
            path: non_empty(path).map(|path| truncate(path, MAX_METADATA_CHARS)),
            ..Attempt::from_ip(ip)
        })
    }

    /// As `new`, parsing `ip` first (refusing an invalid one, naming it).
    pub fn parse(
        ip: &str,
        username: Option<&str>,
        user_agent: Option<&str>,
        path: Option<&str>,
    ) -> Result<Self> {
        Attempt::new(parse_ip(ip)?, username, user_agent, path)
    }

    /// The same attempt from `device` (a device token's, checked for its username: see
    /// `Devices::verify`); an attempt without a username has none.
    pub fn with_device(self, device: Option<Device>) -> Self {
        Attempt {
            device: device.filter(|_| self.username.is_some()),
            ..self
        }
    }

    /// The attempt's value of `field`, if it has one.
    pub fn value(&self, field: Field) -> Option<String> {
        match field {
            Field::Ip => Some(self.ip.to_string()),
            Field::Username => self.username.clone(),
            Field::UserAgent => self.user_agent.clone(),
            Field::Device => self.device.as_ref().map(|device| device.id.clone()),
        }
    }
}

/// IPv4-mapped IPv6 addresses become IPv4; IPv6 prints in its compressed form.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Parses and canonicalises an IP address, refusing anything else with a message naming it.
pub fn parse_ip(value: &str) -> Result<IpAddr> {
    if value.is_empty() {
        return Err(Error::invalid("ip: must not be empty"));
    }
    value
        .trim()
        .parse::<IpAddr>()
        .map(canonical_ip)
        .map_err(|_| Error::invalid(format!("ip: {value:?} is not a valid IP address")))
}

/// An empty username is absent (`Ok(None)`); an over-long one is refused.
pub fn parse_username(value: &str) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_USERNAME_CHARS {
        return Err(Error::invalid(format!(
            "username: longer than {MAX_USERNAME_CHARS} characters"
        )));
    }
    Ok(Some(value.to_string()))
}

/// A username that names records (a reset, a filter): unlike an attempt's, it must not be
/// empty (Axes' `axes_reset_username ""` would delete everything).
pub fn parse_named_username(value: &str) -> Result<String> {
    parse_username(value)?.ok_or_else(|| Error::invalid("username: must not be empty"))
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

pub(crate) fn truncate(value: &str, max_chars: usize) -> String {
    value.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_are_one_ip() {
        let a = Attempt::parse("::ffff:192.0.2.1", None, None, None).unwrap();
        assert_eq!(a.ip.to_string(), "192.0.2.1");
        let b =
            Attempt::parse("2001:0db8:0000:0000:0000:0000:0000:0001", None, None, None).unwrap();
        assert_eq!(b.ip.to_string(), "2001:db8::1");
    }

    #[test]
    fn invalid_ips_are_named() {
        let err = Attempt::parse("999.1.1.1", None, None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ip: \"999.1.1.1\" is not a valid IP address"
        );
    }

    #[test]
    fn an_empty_username_is_absent() {
        let a = Attempt::parse("192.0.2.1", Some(""), Some(""), None).unwrap();
        assert_eq!(a.username, None);
        assert_eq!(a.value(Field::Username), None);
    }

    #[test]
    fn metadata_is_truncated_usernames_are_not() {
        let long = "é".repeat(300);
        let a = Attempt::parse("192.0.2.1", None, Some(&long), Some(&long)).unwrap();
        assert_eq!(a.user_agent.unwrap().chars().count(), MAX_METADATA_CHARS);
        assert!(Attempt::parse("192.0.2.1", Some(&long), None, None).is_err());
    }
}
