//! The Redis key layout (documented for other clients in `docs/keys.md`):
//!
//! - `<prefix>:attempt:{<shard>}<identity>`: hash with the identity's failure count and
//!   metadata;
//! - `<prefix>:lock:{<shard>}<identity>`: the identity's lock flag, alive for the lockout
//!   duration;
//! - `<prefix>:lockouts:{<shard>}<identity>`: how many lockouts the identity started, alive for
//!   the lockout memory (repeat offenders; absent when off);
//! - `<prefix>:would_lock:{<shard>}<identity>`: the identity's would-be lock in observe mode,
//!   alive for the lockout duration, refusing nothing;
//! - `<prefix>:spraying:{<shard>}ip=<ip>`, `<prefix>:spraying_lock:{<shard>}ip=<ip>`,
//!   `<prefix>:spraying_lockouts:{<shard>}ip=<ip>` and
//!   `<prefix>:spraying_would_lock:{<shard>}ip=<ip>`: an IP's password spraying (see
//!   `spraying`): the usernames its failures named, its lock, its lockout count and its
//!   would-be lock in observe mode, in the IP's shard;
//! - `<prefix>:log:{<shard>}`: the access log, a stream per shard;
//! - `<prefix>:events:<n>`: the events, in `EVENT_SHARDS` streams by IP;
//! - `<prefix>:lock_ends:<n>`: when each lock told as started will run out, in `EVENT_SHARDS`
//!   sets by identity;
//! - `<prefix>:lock_end_scopes`: the scopes with lock ends, by their latest;
//! - `<prefix>:devices:{<shard>}username=<username>`: when the username's device tokens were
//!   last revoked (see `devices`);
//! - `<prefix>:unlock:<id>`: an unlock token used (see `unlock`).
//!
//! `<shard>` is one of `SHARDS` Redis Cluster hash tags (see `shard_tag`), chosen by an
//! identity's first value (`ip=...` for every combination with the IP): the keys of an
//! attempt's identities that share it, and the attempt's access-log entry, are in one slot,
//! written by one script; the shards' slots are spread evenly over the slot space, so over a
//! cluster's primaries.
//!
//! A scope (a site sharing the service with others) has the same layout under
//! `<prefix>:scope:<name>`, apart from every other scope and from the unscoped keys.
//!
//! `<identity>` is the identity's tag (see `identity`): only `A-Z a-z 0-9 - . _ ~ % = &`, so no
//! value can contain a brace (the braces are the Redis Cluster hash tag) or a SCAN glob
//! character.

use crate::error::{Error, Result};
use crate::identity::{decode_identity, encode_value, Identity};
use crate::target::Target;

/// The fields of an attempt record hash, written by `scripts/fail.lua`. They are short because a
/// record is paid for once per tracked identity: with these names an IP's record stays in Redis'
/// smallest listpack allocation (docs/keys.md).
pub mod record_field {
    /// Failures counted (integer).
    pub const FAILURES: &str = "n";
    /// Time of the first failure, seconds since the Unix epoch (the recording process's clock).
    pub const FIRST: &str = "f";
    /// Time of the latest failure, likewise.
    pub const LAST: &str = "l";
    /// The latest user agent given.
    pub const USER_AGENT: &str = "ua";
    /// The latest login path given.
    pub const PATH: &str = "p";
}

/// Identities' keys and the access log are in this many shards, each one Redis Cluster slot.
pub const SHARDS: usize = 64;

/// Events and lock ends are in this many keys each.
pub const EVENT_SHARDS: usize = 16;

/// The hash tag of each shard: for shard `i`, `<i>.<k>` with the smallest `k` whose slot
/// (CRC16 mod 16384) is in the `i`-th of `SHARDS` equal parts of the slots, so that a
/// cluster's primaries, each serving a contiguous share of the slots, get an equal share of
/// the shards.
static SHARD_TAGS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    const SLOTS: usize = 16384;
    (0..SHARDS)
        .map(|shard| {
            let part = (shard * SLOTS / SHARDS)..((shard + 1) * SLOTS / SHARDS);
            (0..)
                .map(|k| format!("{shard}.{k}"))
                .find(|tag| part.contains(&slot_of(tag)))
                .expect("every part of the slots has a tag")
        })
        .collect()
});

/// The Redis Cluster slot of a hash tag's text: CRC16 (XMODEM) mod 16384.
fn slot_of(text: &str) -> usize {
    usize::from(crc16::State::<crc16::XMODEM>::calculate(text.as_bytes())) % 16384
}

/// More patterns than this and one full scan, filtered here, is cheaper than one scan each.
const MAX_SCAN_PATTERNS: usize = 16;

/// How long a reset marker lives: longer than a lock cache's flush interval and a flush's
/// round trip.
pub const RESET_GUARD: std::time::Duration = std::time::Duration::from_secs(2);

/// The longest scope name.
pub const MAX_SCOPE_CHARS: usize = 64;

/// FNV-1a (32 bits) of `text`.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// What a key under the prefix holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Attempt,
    Lock,
    Lockouts,
    /// A lock set in observe mode (see `FailureRule::observe`).
    WouldLock,
    /// An IP's spraying count: a set of its usernames' members (see `spraying`).
    Spraying,
    /// An IP's spraying lock flag.
    SprayingLock,
    /// How many spraying lockouts an IP started (repeat offenders).
    SprayingLockouts,
    /// An IP's spraying lock set in observe mode (see `FailureRule::observe`).
    SprayingWouldLock,
}

impl KeyKind {
    const ALL: [KeyKind; 8] = [
        KeyKind::Attempt,
        KeyKind::Lock,
        KeyKind::Lockouts,
        KeyKind::WouldLock,
        KeyKind::Spraying,
        KeyKind::SprayingLock,
        KeyKind::SprayingLockouts,
        KeyKind::SprayingWouldLock,
    ];

    fn segment(self) -> &'static str {
        match self {
            KeyKind::Attempt => "attempt",
            KeyKind::Lock => "lock",
            KeyKind::Lockouts => "lockouts",
            KeyKind::WouldLock => "would_lock",
            KeyKind::Spraying => "spraying",
            KeyKind::SprayingLock => "spraying_lock",
            KeyKind::SprayingLockouts => "spraying_lockouts",
            KeyKind::SprayingWouldLock => "spraying_would_lock",
        }
    }

    /// Whether a key of this kind belongs to an IP's spraying rather than to its record.
    pub fn is_spraying(self) -> bool {
        matches!(
            self,
            KeyKind::Spraying
                | KeyKind::SprayingLock
                | KeyKind::SprayingLockouts
                | KeyKind::SprayingWouldLock
        )
    }
}

/// The keys of one deployment, under its prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyspace {
    prefix: String,
    /// For a scope's keyspace: the unscoped prefix.
    root: Option<String>,
}

impl Keyspace {
    /// The prefix may hold `A-Z a-z 0-9 _ - . : /` only, so it never needs escaping in a SCAN
    /// pattern and never forms a hash tag.
    pub fn new(prefix: &str) -> Result<Self> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.:/".contains(c);
        if prefix.is_empty() || !prefix.chars().all(allowed) {
            return Err(Error::Config(format!(
                "prefix: {prefix:?} must be non-empty and use only letters, digits and _ - . : /"
            )));
        }
        Ok(Keyspace {
            prefix: prefix.to_string(),
            root: None,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The scope of the service's own admin logins, apart from the logins it protects (a login
    /// user named `admin` is not the admin). Scopes starting with `_` are lockout's own.
    pub const ADMIN_LOGINS: &'static str = "_admin";

    /// The keyspace of scope `name` (1 to 64 of `A-Z a-z 0-9 _ . -`), a caller-given value.
    pub fn scoped(&self, name: &str) -> Result<Keyspace> {
        if !Self::is_scope_name(name) {
            return Err(Error::invalid(format!(
                "scope: {name:?} must be 1 to {MAX_SCOPE_CHARS} letters, digits, _ . or -"
            )));
        }
        Ok(Keyspace {
            prefix: format!("{}:scope:{name}", self.prefix),
            root: Some(self.prefix.clone()),
        })
    }

    /// Whether `name` is 1 to 64 of `A-Z a-z 0-9 _ . -`, as a scope's name must be.
    pub fn is_scope_name(name: &str) -> bool {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        !name.is_empty() && name.len() <= MAX_SCOPE_CHARS && name.chars().all(allowed)
    }

    /// The scope's name, for a scope's keyspace (see `scoped`).
    pub fn scope(&self) -> Option<&str> {
        let root = self.root.as_deref()?;
        self.prefix.strip_prefix(root)?.strip_prefix(":scope:")
    }

    /// The scopes of this keyspace (or of the one it is a scope of) that have lock ends to
    /// tell: a sorted set of scope names by the latest end scheduled in each, ms since the
    /// Unix epoch, so that every instance sweeps every scope's lock ends (see
    /// `lock_ends_key`).
    pub fn lock_end_scopes_key(&self) -> String {
        format!(
            "{}:lock_end_scopes",
            self.root.as_deref().unwrap_or(&self.prefix)
        )
    }

    pub fn key(&self, kind: KeyKind, identity: &Identity) -> String {
        let tag = identity.tag();
        format!(
            "{}:{}:{{{}}}{tag}",
            self.prefix,
            kind.segment(),
            Self::shard_tag(Self::shard_of_tag(tag))
        )
    }

    /// The hash tag of `shard` (see `SHARD_TAGS`).
    pub fn shard_tag(shard: usize) -> &'static str {
        &SHARD_TAGS[shard]
    }

    /// The shard of an identity's tag: of its first value (`ip=203.0.113.9` in
    /// `ip=203.0.113.9&username=alice`), FNV-1a (32 bits) modulo `SHARDS`.
    pub fn shard_of_tag(tag: &str) -> usize {
        let first = tag.split('&').next().unwrap_or(tag);
        fnv1a(first) as usize % SHARDS
    }

    /// The marker a reset leaves for `RESET_GUARD` on an identity it deleted (same hash tag as
    /// its keys): refusals a lock cache counted before the reset and records after it are
    /// dropped while it lives (`scripts/fail.lua`), so that they cannot lock it again. Not an
    /// attempt record: `parse` does not know it.
    pub fn reset_marker(&self, tag: &str) -> String {
        let shard = Self::shard_tag(Self::shard_of_tag(tag));
        format!("{}:reset:{{{shard}}}{tag}", self.prefix)
    }

    /// When the device tokens of `username` were last revoked, ms since the Unix epoch (see
    /// `devices`): in the slot of the username's identity (`username=<username>`) and of its
    /// devices' (`username=<username>&device=<id>`). Not an attempt record: `parse` does not
    /// know it.
    pub fn devices_revoked_key(&self, username: &str) -> String {
        let tag = format!("username={}", encode_value(username));
        let shard = Self::shard_tag(Self::shard_of_tag(&tag));
        format!("{}:devices:{{{shard}}}{tag}", self.prefix)
    }

    /// An unlock token used (see `unlock`), by its ID (`A-Z a-z 0-9 - _` only: no hash tag,
    /// no glob). Not an attempt record: `parse` does not know it.
    pub fn unlock_key(&self, id: &str) -> String {
        format!("{}:unlock:{id}", self.prefix)
    }

    /// The pub/sub channel on which resets name the identities they deleted (tags, one per
    /// line), so that every process's lock cache forgets them.
    pub fn reset_channel(&self) -> String {
        format!("{}:resets", self.prefix)
    }

    /// The events stream of `shard` (see `event_shard`; resets of no one IP go to shard 0).
    pub fn events_key(&self, shard: usize) -> String {
        format!("{}:events:{shard}", self.prefix)
    }

    /// The access log of `shard`: in the shard's slot, so that a failure's script appends
    /// its entry along with its identities of that shard.
    pub fn log_key(&self, shard: usize) -> String {
        format!("{}:log:{{{}}}", self.prefix, Self::shard_tag(shard))
    }

    /// The scheduled lock ends of `shard` (see `lock_end_shard`): a sorted set of identity
    /// tags by the end of their lock, ms since the Unix epoch, so that a lock that runs out is
    /// told as an event once (`lockout_expired`).
    pub fn lock_ends_key(&self, shard: usize) -> String {
        format!("{}:lock_ends:{shard}", self.prefix)
    }

    /// The access-log shard of `ip` (canonical): the shard of the identities whose first
    /// value it is (`ip=<ip>`). Part of the key layout: another client must compute the same.
    pub fn log_shard(ip: std::net::IpAddr) -> usize {
        Self::shard_of_tag(&format!("ip={}", encode_value(&ip.to_string())))
    }

    /// The events shard of `ip`: FNV-1a (32 bits) of its text, modulo `EVENT_SHARDS`.
    pub fn event_shard(ip: std::net::IpAddr) -> usize {
        fnv1a(&ip.to_string()) as usize % EVENT_SHARDS
    }

    /// The lock-ends shard of an identity's tag, by the same hash as `event_shard`.
    pub fn lock_end_shard(tag: &str) -> usize {
        fnv1a(tag) as usize % EVENT_SHARDS
    }

    /// Recognises an attempt, lock, lockout-count or would-be lock key of this keyspace, or an
    /// IP's spraying key; anything else is `None`.
    pub fn parse(&self, key: &str) -> Option<(KeyKind, Identity)> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix(':')?;
        let (segment, braced) = rest.split_once(':')?;
        let kind = KeyKind::ALL
            .into_iter()
            .find(|kind| kind.segment() == segment)?;
        let (shard, tag) = braced.strip_prefix('{')?.split_once('}')?;
        let identity = decode_identity(tag)?;
        (shard == Self::shard_tag(Self::shard_of_tag(tag))).then_some((kind, identity))
    }

    /// SCAN patterns covering every key of `kind` (or of every kind) that `target` may select
    /// (and maybe more: callers filter with `Target::matches`).
    pub fn scan_patterns(&self, target: &Target, kind: Option<KeyKind>) -> Vec<String> {
        let p = &format!("{}:{}", self.prefix, kind.map_or("*", KeyKind::segment));
        // An IP's keys are in its shard: the pattern names it. Percent-encoding keeps
        // prefixes: the encoding of a prefix is a prefix of the encoding. A value may continue
        // past what a pattern names (`ip=10.0.0.12` for `ip=10.0.0.1`): callers filter.
        let shard_of_ip = |ip: &std::net::IpAddr| Self::shard_tag(Self::log_shard(*ip));
        let by_ip = |ips: &[std::net::IpAddr]| -> Vec<String> {
            ips.iter()
                .map(|ip| {
                    let value = encode_value(&ip.to_string());
                    format!("{p}:{{{}}}ip={value}*", shard_of_ip(ip))
                })
                .collect()
        };
        let by_username = |usernames: &[String]| -> Vec<String> {
            usernames
                .iter()
                .map(|u| format!("{p}:*[}}&]username={}*", encode_value(u)))
                .collect()
        };
        let patterns: Vec<String> = match target {
            Target::All => vec![],
            Target::Ips(ips) => by_ip(ips),
            Target::Usernames(usernames) => by_username(usernames),
            Target::Either { ips, usernames } => {
                let mut patterns = by_ip(ips);
                patterns.extend(by_username(usernames));
                patterns
            }
            Target::Pairs { ips, usernames } => ips
                .iter()
                .flat_map(|ip| {
                    usernames.iter().map(move |u| {
                        format!(
                            "{p}:{{{}}}ip={}&username={}*",
                            shard_of_ip(ip),
                            encode_value(&ip.to_string()),
                            encode_value(u)
                        )
                    })
                })
                .collect(),
            Target::Prefixes { ip, username } => match (ip, username) {
                (None, None) => vec![],
                (Some(ip), None) => vec![format!("{p}:{{*}}ip={}*", encode_value(ip))],
                (None, Some(u)) => vec![format!("{p}:*[}}&]username={}*", encode_value(u))],
                (Some(ip), Some(u)) => vec![format!(
                    "{p}:{{*}}ip={}*&username={}*",
                    encode_value(ip),
                    encode_value(u)
                )],
            },
        };
        if patterns.is_empty() || patterns.len() > MAX_SCAN_PATTERNS {
            vec![format!("{p}:{{*")]
        } else {
            patterns
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::Attempt;
    use crate::attempt::Field;
    use crate::policy::Combination;

    fn identity(ip: &str, username: &str) -> Identity {
        let attempt = Attempt::parse(ip, Some(username), None, None).unwrap();
        Identity::of(
            &attempt,
            &Combination::new([Field::Ip, Field::Username]).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn keys_encode_awkward_values_and_parse_back() {
        let keys = Keyspace::new("lockout").unwrap();
        let id = identity("2001:db8::1", "a*?[]\\{}&=: %é");
        let key = keys.key(KeyKind::Lock, &id);
        assert_eq!(
            key,
            "lockout:lock:{38.13}ip=2001%3Adb8%3A%3A1&username=a%2A%3F%5B%5D%5C%7B%7D%26%3D%3A%20%25%C3%A9"
        );
        assert_eq!(keys.parse(&key), Some((KeyKind::Lock, id.clone())));
        let would_lock = keys.key(KeyKind::WouldLock, &id);
        assert_eq!(
            would_lock,
            key.replacen("lockout:lock:", "lockout:would_lock:", 1)
        );
        assert_eq!(keys.parse(&would_lock), Some((KeyKind::WouldLock, id)));
    }

    #[test]
    fn foreign_keys_are_not_parsed() {
        let keys = Keyspace::new("lockout").unwrap();
        for key in [
            "lockout:log:3",
            "lockout:log:{0.178}",
            "lockout:lock:{ip=1.2.3.4}",
            "lockout:lock:{0.178}ip=10.0.0.1",
            "lockout:other:{31.71}ip=10.0.0.1",
            "lockout:lock:{ip=1.2.3.4",
            "lockout:lock:{username=a&ip=1.2.3.4}",
            "lockout:lock:{ip=1.2.3.4&ip=1.2.3.5}",
            "lockout:lock:{ip=%41}",
            "lockoutx:lock:{ip=1.2.3.4}",
        ] {
            assert_eq!(keys.parse(key), None, "{key}");
        }
    }

    #[test]
    fn an_identitys_keys_share_a_slot_for_every_combination() {
        use redis::cluster_routing::Slot;
        let keys = Keyspace::new("lockout").unwrap();
        let attempt =
            Attempt::parse("2001:db8::7", Some("{a}*&=:"), Some("Mozilla {x}"), None).unwrap();
        for fields in [
            &[Field::Ip][..],
            &[Field::Username],
            &[Field::UserAgent],
            &[Field::Ip, Field::Username],
            &[Field::Username, Field::UserAgent],
            &[Field::Ip, Field::Username, Field::UserAgent],
        ] {
            let identity =
                Identity::of(&attempt, &Combination::new(fields.iter().copied()).unwrap()).unwrap();
            let attempt_key = keys.key(KeyKind::Attempt, &identity);
            let lock_key = keys.key(KeyKind::Lock, &identity);
            assert_eq!(
                Slot::for_key(&attempt_key),
                Slot::for_key(&lock_key),
                "{attempt_key}"
            );
        }
        // The identities whose first value is the IP, and the IP's access log: one slot.
        let log = Slot::for_key(keys.log_key(Keyspace::log_shard(attempt.ip)));
        for fields in [
            &[Field::Ip][..],
            &[Field::Ip, Field::Username],
            &[Field::Ip, Field::Username, Field::UserAgent],
        ] {
            let identity =
                Identity::of(&attempt, &Combination::new(fields.iter().copied()).unwrap()).unwrap();
            let key = keys.key(KeyKind::Lockouts, &identity);
            assert_eq!(Slot::for_key(&key), log, "{key}");
        }
    }

    #[test]
    fn log_shards_are_stable_and_spread() {
        assert_eq!(
            Keyspace::log_shard("203.0.113.9".parse().unwrap()),
            Keyspace::log_shard(
                "::ffff:203.0.113.9"
                    .parse::<std::net::IpAddr>()
                    .map(crate::attempt::canonical_ip)
                    .unwrap()
            )
        );
        let used: std::collections::HashSet<usize> = (0..2000u16)
            .map(|n| {
                let [high, low] = n.to_be_bytes();
                Keyspace::log_shard(std::net::IpAddr::from([10, 0, high, low]))
            })
            .collect();
        assert_eq!(used.len(), SHARDS);
    }

    #[test]
    fn the_shards_slots_spread_evenly_over_a_clusters_primaries() {
        let slots: Vec<usize> = (0..SHARDS)
            .map(|shard| slot_of(Keyspace::shard_tag(shard)))
            .collect();
        assert!(slots.windows(2).all(|pair| pair[0] < pair[1]), "{slots:?}");
        // Primaries serving equal contiguous ranges of the slots, as a new cluster's do.
        for primaries in [3, 6] {
            let mut shards = vec![0; primaries];
            for slot in &slots {
                shards[slot * primaries / 16384] += 1;
            }
            let (fewest, most) = (shards.iter().min(), shards.iter().max());
            assert!(
                most.unwrap() - fewest.unwrap() <= 1,
                "{primaries}: {shards:?}"
            );
        }
        assert_eq!(Keyspace::shard_tag(0), "0.178");
    }

    #[test]
    fn scoped_keys_are_apart_from_unscoped_ones() {
        let keys = Keyspace::new("lockout").unwrap();
        let site = keys.scoped("climweb.prod-1").unwrap();
        let id = identity("10.0.0.1", "alice");
        let key = site.key(KeyKind::Attempt, &id);
        assert_eq!(
            key,
            "lockout:scope:climweb.prod-1:attempt:{31.71}ip=10.0.0.1&username=alice"
        );
        assert_eq!(keys.parse(&key), None);
        assert_eq!(site.parse(&key), Some((KeyKind::Attempt, id)));
        for bad in ["", "a b", "a:b", "{a}", "a*", &"x".repeat(65)] {
            assert!(keys.scoped(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_are_restricted() {
        assert!(Keyspace::new("app:lockout").is_ok());
        assert!(Keyspace::new("").is_err());
        assert!(Keyspace::new("a*").is_err());
        assert!(Keyspace::new("{a}").is_err());
    }
}
