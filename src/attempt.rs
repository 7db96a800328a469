//! One login attempt, normalised once (canonical IP, absent empty username, bounded lengths),
//! and the identities it forms under a policy's combinations.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::keys;
use crate::policy::{Combination, Field};

/// Longest username accepted, in characters (Axes' column width). Longer ones are refused, not
/// truncated: truncation would merge distinct users into one identity.
pub const MAX_USERNAME_CHARS: usize = 255;
/// User agents and paths are cut to this many characters, as Axes does.
pub const MAX_METADATA_CHARS: usize = 255;

/// A login attempt: who (`ip`, `username`, `user_agent`) and where (`path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub ip: IpAddr,
    pub username: Option<String>,
    pub user_agent: Option<String>,
    pub path: Option<String>,
}

impl Attempt {
    /// An attempt from `ip` with no other field. The IP is canonicalised.
    pub fn from_ip(ip: IpAddr) -> Self {
        Attempt {
            ip: canonical_ip(ip),
            username: None,
            user_agent: None,
            path: None,
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

    fn value(&self, field: Field) -> Option<String> {
        match field {
            Field::Ip => Some(self.ip.to_string()),
            Field::Username => self.username.clone(),
            Field::UserAgent => self.user_agent.clone(),
        }
    }

    /// The identity this attempt forms for `combination`, or `None` when one of its fields is
    /// absent (an attempt without a username never forms a username identity).
    pub fn identity(&self, combination: &Combination) -> Option<Identity> {
        let values = combination
            .fields()
            .iter()
            .map(|&field| self.value(field).map(|value| (field, value)))
            .collect::<Option<Vec<_>>>()?;
        Some(Identity::new(values))
    }
}

/// One combination filled with one attempt's values, e.g. `ip=203.0.113.9&username=alice`.
/// Its `tag` is the encoded form used inside Redis keys (see `keys`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    values: Vec<(Field, String)>,
    tag: String,
}

impl Identity {
    /// `values` must be in field order without repeats.
    pub(crate) fn new(values: Vec<(Field, String)>) -> Self {
        let tag = keys::encode_identity(&values);
        Identity { values, tag }
    }

    pub fn values(&self) -> &[(Field, String)] {
        &self.values
    }

    pub fn value(&self, field: Field) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, value)| value.as_str())
    }

    /// The identity holding exactly these fields, as an attempt would form it (canonical IP,
    /// user agent cut to length), e.g. from a listed record's parameters. At least one field.
    pub fn of_fields(
        ip: Option<&str>,
        username: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Self> {
        let mut values = Vec::new();
        if let Some(ip) = ip {
            values.push((Field::Ip, parse_ip(ip)?.to_string()));
        }
        if let Some(username) = username {
            values.push((Field::Username, parse_named_username(username)?));
        }
        if let Some(user_agent) = user_agent {
            if user_agent.is_empty() {
                return Err(Error::invalid("user_agent: must not be empty"));
            }
            values.push((Field::UserAgent, truncate(user_agent, MAX_METADATA_CHARS)));
        }
        if values.is_empty() {
            return Err(Error::invalid(
                "a record is named by its ip, username or user_agent",
            ));
        }
        Ok(Identity::new(values))
    }

    /// The identity whose `tag` this is; `None` for anything `tag` never produces.
    pub fn from_tag(tag: &str) -> Option<Self> {
        keys::decode_identity(tag)
    }

    /// The encoded identity, as it stands between the braces of its keys.
    pub fn tag(&self) -> &str {
        &self.tag
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

fn truncate(value: &str, max_chars: usize) -> String {
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
    fn empty_username_forms_no_identity() {
        let a = Attempt::parse("192.0.2.1", Some(""), Some(""), None).unwrap();
        assert_eq!(a.username, None);
        let by_user = Combination::new([Field::Username]).unwrap();
        assert!(a.identity(&by_user).is_none());
    }

    #[test]
    fn metadata_is_truncated_usernames_are_not() {
        let long = "é".repeat(300);
        let a = Attempt::parse("192.0.2.1", None, Some(&long), Some(&long)).unwrap();
        assert_eq!(a.user_agent.unwrap().chars().count(), MAX_METADATA_CHARS);
        assert!(Attempt::parse("192.0.2.1", Some(&long), None, None).is_err());
    }
}
