//! The lockout policy: which attempt fields are counted together, how many failures lock, how
//! long failures are remembered and locks last, and which addresses bypass or are always
//! refused. A `Policy` is validated once (see `config`) and cannot hold an invalid value.

use std::fmt;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use ipnet::IpNet;

use crate::attempt::{canonical_ip, Field};
use crate::error::{Error, Result};

/// Fields that are counted together (AND), with limits of their own where set. Sorted and
/// without repeats, so `["username","ip"]` and `["ip","username"]` are one and the same
/// combination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Combination {
    fields: Vec<Field>,
    limits: Limits,
}

/// What a combination sets for itself; each limit it leaves unset is the policy's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    pub failure_limit: Option<NonZeroU32>,
    pub cooloff: Option<Duration>,
    pub lockout_duration: Option<Duration>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

impl Combination {
    pub fn new(fields: impl IntoIterator<Item = Field>) -> Result<Self> {
        let mut fields: Vec<Field> = fields.into_iter().collect();
        fields.sort();
        fields.dedup();
        if fields.is_empty() {
            return Err(Error::Config(
                "policy.lockout_parameters: a combination needs at least one field".into(),
            ));
        }
        Ok(Combination {
            fields,
            limits: Limits::default(),
        })
    }

    /// The same fields, with `limits` instead of the policy's.
    pub fn with_limits(self, limits: Limits) -> Self {
        Combination { limits, ..self }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The field names, as the JSON answers list them.
    pub fn names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|field| field.name()).collect()
    }
}

impl fmt::Display for Combination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join("+"))
    }
}

/// A list of addresses and CIDR ranges, IPv4 and IPv6.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList(Vec<IpNet>);

impl IpList {
    /// Parses entries such as `10.0.0.0/8`, `2001:db8::/32` or a single address; `key` names
    /// the configuration key in the error.
    pub fn parse<S: AsRef<str>>(key: &str, entries: &[S]) -> Result<Self> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .map(|net| match net.addr() {
                        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                            let prefix = net.prefix_len().saturating_sub(96);
                            IpNet::new(canonical_ip(net.addr()), prefix).expect("prefix <= 32")
                        }
                        _ => net,
                    })
                    .or_else(|_| {
                        entry
                            .parse::<IpAddr>()
                            .map(|ip| IpNet::from(canonical_ip(ip)))
                    })
                    .map_err(|_| {
                        Error::Config(format!(
                            "{key}: {entry:?} is not an IP address or CIDR range"
                        ))
                    })
            })
            .collect::<Result<_>>()
            .map(IpList)
    }

    /// The entries, as the configuration writes them (`10.0.0.0/8`, `192.0.2.1/32`).
    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(IpNet::to_string)
    }

    /// `ip` must already be canonical (see `attempt::canonical_ip`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The validated policy the engine applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Failures of one identity after which it is locked (Axes `AXES_FAILURE_LIMIT`).
    pub failure_limit: NonZeroU32,
    /// How long failures are remembered after the latest one (Axes `AXES_COOLOFF_TIME`).
    pub cooloff: Duration,
    /// How long a lock flag lives after the failure that set or renewed it.
    pub lockout_duration: Duration,
    /// Locked when any combination is locked (OR across the list, AND inside one); each may
    /// set its own limits (see `Policy::limits_of`).
    pub combinations: Vec<Combination>,
    pub lock_out_at_failure: bool,
    pub reset_on_success: bool,
    pub reset_cooloff_on_failure_during_lockout: bool,
    /// Never locked, failures not counted.
    pub never_lockout: IpList,
    /// Always locked, nothing stored. Wins over `never_lockout`.
    pub deny: IpList,
    /// How long and how many access-log entries are kept; `None` when the access log is off.
    pub access_log: Option<AccessLog>,
    /// How long and how many events (lockouts started, resets) are kept, with the same kind
    /// of bounds as the access log; `None` when events are off.
    pub events: Option<AccessLog>,
    /// IPv6 clients are counted per network of this many bits (see `counted_ip`).
    pub ipv6_prefix_length: u8,
    /// Repeat offenders: each lockout an identity starts within the memory lasts longer than
    /// the one before. `None` (the default): every lockout lasts `lockout_duration`, as in Axes.
    pub repeat: Option<Repeat>,
    /// Observe mode: failures are counted and would-be locks kept apart from locks (see
    /// `FailureRule::observe`), and nothing is refused but by `deny`.
    pub observe: bool,
    /// Password spraying: an IP locked for naming too many usernames. `None` (the default): off.
    pub spraying: Option<Spraying>,
}

/// Password spraying (`[policy] spraying_limit`, `spraying_window`): an IP (an IPv6 network, as
/// `ipv6_prefix_length` counts it) whose failures name `limit` distinct usernames within
/// `window` of the first is locked for `lockout_duration` (repeat offenders apply), whatever
/// username it names next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spraying {
    pub limit: NonZeroU32,
    pub window: Duration,
}

/// How lockouts lengthen (`[policy] lockout_memory`, `lockout_backoff`,
/// `max_lockout_duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    /// How long a lockout is remembered.
    pub memory: Duration,
    /// The n-th remembered lockout lasts the lockout duration times `backoff`^(n-1)...
    pub backoff: Backoff,
    /// ...and at most this.
    pub max_lockout: Duration,
}

/// A factor of at least 1 (validated by the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Backoff(pub f64);

impl PartialEq for Backoff {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Backoff {}

/// The access log's bounds: entries older than `retention` go, and beyond `max_entries` the
/// oldest go (approximately: Redis trims whole stream nodes), so that strangers cannot fill
/// Redis with failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessLog {
    pub retention: Duration,
    pub max_entries: NonZeroU64,
}

impl Default for Policy {
    /// Django Axes' defaults, with Axes' 30-minute cool-off as used by Climweb.
    fn default() -> Self {
        let cooloff = Duration::from_secs(30 * 60);
        Policy {
            failure_limit: NonZeroU32::new(3).expect("non-zero"),
            cooloff,
            lockout_duration: cooloff,
            combinations: vec![Combination::new([Field::Ip]).expect("one field")],
            lock_out_at_failure: true,
            reset_on_success: false,
            reset_cooloff_on_failure_during_lockout: true,
            never_lockout: IpList::default(),
            deny: IpList::default(),
            access_log: Some(AccessLog {
                retention: Duration::from_secs(30 * 24 * 3600),
                max_entries: NonZeroU64::new(1_000_000).expect("non-zero"),
            }),
            events: Some(AccessLog {
                retention: Duration::from_secs(30 * 24 * 3600),
                max_entries: NonZeroU64::new(100_000).expect("non-zero"),
            }),
            ipv6_prefix_length: 64,
            repeat: None,
            observe: false,
            spraying: None,
        }
    }
}

impl Policy {
    /// The failure limit of the combination of `fields` (an identity's): its own, else the
    /// policy's.
    pub fn failure_limit_of(&self, fields: &[Field]) -> NonZeroU32 {
        self.combinations
            .iter()
            .find(|combination| combination.fields() == fields)
            .and_then(|combination| combination.limits().failure_limit)
            .unwrap_or(self.failure_limit)
    }

    /// The address an attempt from `ip` (canonical) is counted as: an IPv6 client by the first
    /// address of its network of `ipv6_prefix_length` bits (a provider hands each customer a
    /// /64, so a client that walks through its addresses stays one identity); IPv4 as it is.
    pub fn counted_ip(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) if self.ipv6_prefix_length < 128 => {
                let mask = u128::MAX << (128 - u32::from(self.ipv6_prefix_length));
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            ip => ip,
        }
    }

    /// The longest a record may live under this policy: the longest of its combinations'
    /// cool-offs and lockouts (with repeat offenders, the longest lockout).
    pub fn longest_record_life(&self) -> Duration {
        let longest_lockout = |own: Option<Duration>| {
            let first = own.unwrap_or(self.lockout_duration);
            self.repeat
                .map_or(first, |repeat| repeat.max_lockout.max(first))
        };
        self.combinations
            .iter()
            .map(Combination::limits)
            .map(|own| {
                own.cooloff
                    .unwrap_or(self.cooloff)
                    .max(longest_lockout(own.lockout_duration))
            })
            .fold(self.cooloff.max(longest_lockout(None)), Duration::max)
    }

    /// One line for start-up logs and `--help`-style summaries.
    pub fn summary(&self) -> String {
        let combinations: Vec<String> = self.combinations.iter().map(|c| c.to_string()).collect();
        let mut summary = format!(
            "lock after {} failures of any of [{}], cool-off {}, lockout {}",
            self.failure_limit,
            combinations.join(", "),
            humantime::format_duration(self.cooloff),
            humantime::format_duration(self.lockout_duration),
        );
        if let Some(spraying) = self.spraying {
            summary.push_str(&format!(
                "; an IP naming {} usernames within {} locked for spraying",
                spraying.limit,
                humantime::format_duration(spraying.window)
            ));
        }
        if self.observe {
            format!("observe mode, nothing refused but by deny: would {summary}")
        } else {
            summary
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_ignore_field_order() {
        let a = Combination::new([Field::Username, Field::Ip]).unwrap();
        let b = Combination::new([Field::Ip, Field::Username, Field::Ip]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.names(), ["ip", "username"]);
    }

    #[test]
    fn ip_lists_take_addresses_ranges_and_mapped_forms() {
        let list = IpList::parse(
            "policy.deny",
            &["10.0.0.0/8", "2001:db8::1", "::ffff:192.0.2.0/120"],
        )
        .unwrap();
        assert!(list.contains("10.200.3.4".parse().unwrap()));
        assert!(list.contains("2001:db8::1".parse().unwrap()));
        assert!(list.contains("192.0.2.77".parse().unwrap()));
        assert!(!list.contains("11.0.0.1".parse().unwrap()));
        let err = IpList::parse("policy.deny", &["10.0.0.0/33"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: policy.deny: \"10.0.0.0/33\" is not an IP address or CIDR range"
        );
    }
}
