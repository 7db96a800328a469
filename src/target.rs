//! Which attempt records an operator means: all of them, those of some IPs, of some usernames,
//! or of IP+username pairs. Built once from the command line or a query string.

use std::net::IpAddr;

use crate::attempt::Field;
use crate::attempt::{parse_ip, parse_named_username};
use crate::error::Result;
use crate::identity::Identity;

/// A selection of attempt records, for listing and resetting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    All,
    /// Records whose identity holds one of these IPs.
    Ips(Vec<IpAddr>),
    /// Records whose identity holds one of these usernames.
    Usernames(Vec<String>),
    /// Records whose identity holds one of the IPs AND one of the usernames.
    Pairs {
        ips: Vec<IpAddr>,
        usernames: Vec<String>,
    },
    /// Records whose identity holds one of the IPs OR one of the usernames (Django Axes'
    /// `reset_attempts(ip_or_username=True)`).
    Either {
        ips: Vec<IpAddr>,
        usernames: Vec<String>,
    },
    /// Records whose IP text starts with `ip` and whose username starts with `username` (an
    /// absent prefix matches anything, a record without that field too); the admin page's
    /// search boxes.
    Prefixes {
        ip: Option<String>,
        username: Option<String>,
    },
}

impl Target {
    /// What the target selects, for an event: `all`, `ip=10.0.0.1`, `username=alice`,
    /// `ip=10.0.0.1 and username=alice`, `ip=10.0.0.1 or username=alice`, `ip^=10.0.`.
    pub fn describe(&self) -> String {
        let values = |name: &str, values: Vec<String>| -> String {
            values
                .iter()
                .map(|value| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let ips = |ips: &[IpAddr]| values("ip", ips.iter().map(IpAddr::to_string).collect());
        let names = |names: &[String]| values("username", names.to_vec());
        match self {
            Target::All => "all".into(),
            Target::Ips(list) => ips(list),
            Target::Usernames(list) => names(list),
            Target::Pairs { ips: a, usernames } => format!("{} and {}", ips(a), names(usernames)),
            Target::Either { ips: a, usernames } => format!("{} or {}", ips(a), names(usernames)),
            Target::Prefixes { ip, username } => [("ip^=", ip), ("username^=", username)]
                .iter()
                .filter_map(|(name, value)| Some(format!("{name}{}", value.as_deref()?)))
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }

    /// The one IP the target names, if it names exactly one (an event's shard).
    pub fn one_ip(&self) -> Option<IpAddr> {
        match self {
            Target::Ips(ips) | Target::Pairs { ips, .. } if ips.len() == 1 => Some(ips[0]),
            _ => None,
        }
    }

    /// The usernames all of whose records the target selects (a reset of them revokes their
    /// device tokens too: see `devices`).
    pub fn usernames(&self) -> &[String] {
        match self {
            Target::Usernames(usernames) | Target::Either { usernames, .. } => usernames,
            _ => &[],
        }
    }

    /// The records matching every given filter; no filter at all means every record.
    /// IPs must be canonical and usernames non-empty (see `attempt::parse_ip`, `parse_username`).
    pub fn matching(ips: Vec<IpAddr>, usernames: Vec<String>) -> Self {
        match (ips.is_empty(), usernames.is_empty()) {
            (true, true) => Target::All,
            (false, true) => Target::Ips(ips),
            (true, false) => Target::Usernames(usernames),
            (false, false) => Target::Pairs { ips, usernames },
        }
    }

    /// The records of an IP, a username or the pair, as text gives them (a query string, a
    /// form): each value given must be a valid IP or a non-empty username.
    pub fn exact(ip: Option<&str>, username: Option<&str>) -> Result<Self> {
        let (ips, usernames) = parse_exact(ip, username)?;
        Ok(Target::matching(ips, usernames))
    }

    /// As `exact`, but with both an IP and a username given, the records holding either.
    pub fn exact_either(ip: Option<&str>, username: Option<&str>) -> Result<Self> {
        let (ips, usernames) = parse_exact(ip, username)?;
        if ips.is_empty() || usernames.is_empty() {
            return Ok(Target::matching(ips, usernames));
        }
        Ok(Target::Either { ips, usernames })
    }

    /// The same selection with every IP replaced by the address it is counted as (see
    /// `Policy::counted_ip`), so that `--ip 2001:db8::5` finds the record of its /64.
    pub fn counted(&self, counted_ip: impl Fn(IpAddr) -> IpAddr) -> Target {
        let ips = |ips: &[IpAddr]| ips.iter().map(|&ip| counted_ip(ip)).collect();
        match self {
            Target::Ips(list) => Target::Ips(ips(list)),
            Target::Pairs {
                ips: list,
                usernames,
            } => Target::Pairs {
                ips: ips(list),
                usernames: usernames.clone(),
            },
            Target::Either {
                ips: list,
                usernames,
            } => Target::Either {
                ips: ips(list),
                usernames: usernames.clone(),
            },
            other => other.clone(),
        }
    }

    /// Exact test of one record's identity (scan patterns only narrow the search).
    pub fn matches(&self, identity: &Identity) -> bool {
        let ip_in = |ips: &[IpAddr]| {
            identity
                .value(Field::Ip)
                .is_some_and(|value| ips.iter().any(|ip| ip.to_string() == value))
        };
        let username_in = |usernames: &[String]| {
            identity
                .value(Field::Username)
                .is_some_and(|value| usernames.iter().any(|u| u == value))
        };
        match self {
            Target::All => true,
            Target::Ips(ips) => ip_in(ips),
            Target::Usernames(usernames) => username_in(usernames),
            Target::Pairs { ips, usernames } => ip_in(ips) && username_in(usernames),
            Target::Either { ips, usernames } => ip_in(ips) || username_in(usernames),
            Target::Prefixes { ip, username } => {
                let starts = |field, prefix: &Option<String>| {
                    prefix.as_deref().is_none_or(|prefix| {
                        identity
                            .value(field)
                            .is_some_and(|value| value.starts_with(prefix))
                    })
                };
                starts(Field::Ip, ip) && starts(Field::Username, username)
            }
        }
    }
}

fn parse_exact(ip: Option<&str>, username: Option<&str>) -> Result<(Vec<IpAddr>, Vec<String>)> {
    let ips = ip.map(parse_ip).transpose()?.into_iter().collect();
    let usernames = username
        .map(parse_named_username)
        .transpose()?
        .into_iter()
        .collect();
    Ok((ips, usernames))
}
