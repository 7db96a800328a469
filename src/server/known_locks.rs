//! The locks in force that this instance saw in Redis' answers, so that an outage with
//! `on_store_error = "local"` starts from them instead of from an empty store (see
//! `insurance`). Bounded: at most `BOUND` locks, those ending first dropped first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::identity::Identity;
use crate::keys::Keyspace;

/// Locks remembered at most (about 250 bytes each: some 25 MB when full).
pub const BOUND: usize = 100_000;

/// Each lock seen, by keyspace (its scope's) and identity, with when it ends.
#[derive(Default)]
pub struct KnownLocks {
    ends: HashMap<(Keyspace, Identity), Instant>,
}

/// A lock in force: its keyspace, its identity and how long it still lasts.
pub struct KnownLock {
    pub keys: Keyspace,
    pub identity: Identity,
    pub remaining: Duration,
}

impl KnownLocks {
    /// Remembers that `identities` of `keys` are locked until `ends` (a later end seen for
    /// one of them stands).
    pub fn remember(&mut self, keys: &Keyspace, identities: Vec<Identity>, ends: Instant) {
        for identity in identities {
            let key = (keys.clone(), identity);
            if let Some(known) = self.ends.get_mut(&key) {
                *known = (*known).max(ends);
                continue;
            }
            if self.ends.len() >= BOUND {
                self.make_room(ends);
            }
            if self.ends.len() < BOUND {
                self.ends.insert(key, ends);
            }
        }
    }

    /// Forgets the locks of `identities` of `keys` (they were cleared).
    pub fn forget(&mut self, keys: &Keyspace, identities: &[Identity]) {
        for identity in identities {
            self.ends.remove(&(keys.clone(), identity.clone()));
        }
    }

    /// The locks still in force at `now`; those ended are forgotten.
    pub fn in_force(&mut self, now: Instant) -> Vec<KnownLock> {
        self.ends.retain(|_, ends| *ends > now);
        self.ends
            .iter()
            .map(|((keys, identity), ends)| KnownLock {
                keys: keys.clone(),
                identity: identity.clone(),
                remaining: *ends - now,
            })
            .collect()
    }

    /// Full: drops the locks ended, then, if that freed nothing, the tenth ending first
    /// (unless they all end after `incoming`, which is then not kept). One pass per tenth of
    /// `BOUND` locks remembered.
    fn make_room(&mut self, incoming: Instant) {
        let now = Instant::now();
        self.ends.retain(|_, ends| *ends > now);
        if self.ends.len() < BOUND {
            return;
        }
        let mut ends: Vec<Instant> = self.ends.values().copied().collect();
        let (_, threshold, _) = ends.select_nth_unstable(BOUND / 10);
        let threshold = *threshold;
        if incoming <= threshold {
            return;
        }
        self.ends.retain(|_, ends| *ends > threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: usize) -> Identity {
        let tag = format!("ip=10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
        Identity::from_tag(&tag).unwrap()
    }

    #[test]
    fn full_it_drops_the_locks_ending_first() {
        let keys = Keyspace::new("lockout").unwrap();
        let mut known = KnownLocks::default();
        let now = Instant::now();
        let later = |n: usize| now + Duration::from_secs(60) + Duration::from_millis(n as u64);
        for n in 0..BOUND {
            known.remember(&keys, vec![ip(n)], later(n));
        }
        known.remember(&keys, vec![ip(BOUND)], later(BOUND));
        let kept = known.in_force(now);
        assert!(kept.len() <= BOUND && kept.len() > BOUND * 8 / 10);
        assert!(kept.iter().any(|lock| lock.identity == ip(BOUND)));
        assert!(!kept.iter().any(|lock| lock.identity == ip(0)));
    }

    #[test]
    fn locks_ended_are_forgotten_and_a_later_end_stands() {
        let keys = Keyspace::new("lockout").unwrap();
        let mut known = KnownLocks::default();
        let now = Instant::now();
        known.remember(&keys, vec![ip(1)], now + Duration::from_secs(5));
        known.remember(&keys, vec![ip(1)], now + Duration::from_secs(9));
        known.remember(&keys, vec![ip(2)], now + Duration::from_secs(1));
        let kept = known.in_force(now + Duration::from_secs(2));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].identity, ip(1));
        assert_eq!(kept[0].remaining, Duration::from_secs(7));
    }
}
