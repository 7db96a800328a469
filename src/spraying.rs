//! Password spraying: one IP failing with many usernames (docs/design.md, "Password spraying").
//! An IP's count is the set of the usernames its failures named within the window, each kept
//! as a 64-bit integer (`member`), so that Redis holds the set as an intset of 8 bytes per
//! username, at most the limit of them. The lock it earns is the IP's own, apart from its
//! combinations' locks, and events and lock ends name it `spraying:<the IP's tag>`.

use crate::attempt::Field;
use crate::identity::Identity;

/// What starts the subject of an IP's spraying lock (see `subject`).
const SUBJECT_PREFIX: &str = "spraying:";

/// The member of `username` in its IP's count: FNV-1a (64 bits) of its UTF-8 bytes, as a
/// signed integer. Part of the key layout (docs/keys.md): another client must compute the same.
pub fn member(username: &str) -> i64 {
    let hash = username
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The identity whose spraying keys count an attempt from `ip` (as counted): `ip=<ip>` alone.
pub fn identity(ip: &str) -> Identity {
    Identity::new(vec![(Field::Ip, ip.to_string())])
}

/// Whether `identity` is an IP alone, the only identity that has a spraying count and lock.
pub fn is_counted(identity: &Identity) -> bool {
    matches!(identity.values(), [(Field::Ip, _)])
}

/// How events and lock ends name the spraying lock of `ip` (an IP's identity):
/// `spraying:ip=203.0.113.9`.
pub fn subject(ip: &Identity) -> String {
    format!("{SUBJECT_PREFIX}{}", ip.tag())
}

/// The IP identity of a spraying lock's subject; `None` for any other subject.
pub fn of_subject(subject: &str) -> Option<Identity> {
    Identity::from_tag(subject.strip_prefix(SUBJECT_PREFIX)?).filter(is_counted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_fnv1a_64_and_subjects_go_both_ways() {
        // FNV-1a's published test vectors, as signed integers.
        assert_eq!(member(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(member("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_eq!(member("alice"), 5_803_779_529_149_266_183); // docs/keys.md's example
        let ip = identity("2001:db8::");
        assert_eq!(subject(&ip), "spraying:ip=2001%3Adb8%3A%3A");
        assert_eq!(of_subject(&subject(&ip)), Some(ip.clone()));
        assert_eq!(of_subject(ip.tag()), None);
        assert_eq!(of_subject("spraying:username=alice"), None);
        assert!(!is_counted(
            &Identity::from_tag("ip=10.0.0.1&username=a").unwrap()
        ));
    }
}
