//! A map whose entries are dropped once their own expiry has passed: the shape of everything
//! the OAuth directory keeps that grows with traffic rather than with administration.
//!
//! Revocations are one such map today; the links from authorization codes to the tokens they
//! produced and refresh-token families, which later grants add, are the next. Each entry carries
//! the moment after which it can no longer matter (a revoked token's expiry, a code's or a
//! family's), and [`Expiring::prune`] drops every entry whose moment has passed. So such a map
//! holds at most the entries whose expiry lies ahead of the newest event folded, plus those that
//! expired since the last sweep: its size follows the rate of the facts it records times their
//! lifetime, never the length of the log. It never forgets an entry early, which is what makes
//! that bound safe: a revocation lives exactly as long as the token it revokes.

use std::collections::HashMap;
use std::hash::Hash;

use tessera_event_schemas::Timestamp;

/// Entries of `V` by `K`, each with the time after which it is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expiring<K: Eq + Hash, V> {
    entries: HashMap<K, (V, Timestamp)>,
}

impl<K: Eq + Hash, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, V> Expiring<K, V> {
    /// Keeps `value` under `key` until `expires_at`. A key recorded again keeps the later of
    /// the two expiries, so folding an event twice (once noted ahead of the fold, once folded)
    /// changes nothing.
    pub(crate) fn insert(&mut self, key: K, value: V, expires_at: Timestamp) {
        let expires_at = match self.entries.get(&key) {
            Some((_, known)) => expires_at.max(*known),
            None => expires_at,
        };
        self.entries.insert(key, (value, expires_at));
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Drops every entry whose expiry is at or before `now`.
    pub(crate) fn prune(&mut self, now: Timestamp) {
        self.entries.retain(|_, (_, expires_at)| *expires_at > now);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every entry with its expiry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V, Timestamp)> {
        self.entries
            .iter()
            .map(|(key, (value, expires_at))| (key, value, *expires_at))
    }
}

impl<K: Eq + Hash, V> FromIterator<(K, V, Timestamp)> for Expiring<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V, Timestamp)>>(entries: I) -> Self {
        let mut map = Self::default();
        for (key, value, expires_at) in entries {
            map.insert(key, value, expires_at);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_micros(seconds * 1_000_000)
    }

    #[test]
    fn an_entry_lives_until_its_expiry_and_not_a_moment_longer() {
        let mut map = Expiring::default();
        map.insert(1, (), at(10));
        map.insert(2, (), at(20));
        map.prune(at(9));
        assert!(map.contains(&1) && map.contains(&2));
        map.prune(at(10));
        assert!(!map.contains(&1), "gone once its expiry is reached");
        assert!(map.contains(&2));
        map.prune(at(25));
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn recording_a_key_again_keeps_the_later_expiry() {
        let mut map = Expiring::default();
        map.insert("jti", (), at(20));
        map.insert("jti", (), at(10));
        map.prune(at(15));
        assert!(map.contains(&"jti"));
        let entries: Vec<_> = map.iter().map(|(k, _, expiry)| (*k, expiry)).collect();
        assert_eq!(entries, vec![("jti", at(20))]);
    }
}
