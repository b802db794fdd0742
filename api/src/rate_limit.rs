//! Sign-in rate limits: at most N attempts per minute for one address at one source (seed 001:
//! 5 per 60 seconds), and a ceiling per source whatever the address (30 per minute by default).
//!
//! **Best effort, per node.** The counts live in this process's memory: several nodes each
//! allow the limit, and a restart forgets them. The durable protection of an account is its
//! lockout, decided on the log; this limit only keeps one source from making a server spend
//! its Argon2 budget, and makes password spraying slow.
//!
//! **Bounded.** Each key keeps the times of its allowed attempts within the window (at most
//! the limit). The map holds at most [`MAX_KEYS`] keys: when it is full, keys whose attempts
//! all left the window go first, then the keys that attempted least recently. A flood of more
//! distinct keys than that within one window therefore lets some keys start over; the lockout
//! still bounds guesses against any one account.
//!
//! Accounts are keyed by the keyed hash of the normalised address, never the address itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use tessera_event_schemas::{Hash32, Timestamp};

/// Most keys held at once.
pub const MAX_KEYS: usize = 100_000;
/// The window every limit counts over.
pub const WINDOW_MICROS: i64 = 60 * 1_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// One address (by keyed hash) from one source.
    Account(Hash32, String),
    /// One source, whatever the address.
    Source(String),
}

#[derive(Debug, Default)]
struct Window {
    /// Times of allowed attempts within the window, oldest first.
    attempts: VecDeque<i64>,
    /// Whether a refusal was already reported since the last allowed attempt (see
    /// [`Verdict::Limited`]).
    refused: bool,
}

impl Window {
    fn expire(&mut self, now: i64) {
        while self
            .attempts
            .front()
            .is_some_and(|at| now.saturating_sub(*at) >= WINDOW_MICROS)
        {
            self.attempts.pop_front();
        }
        if self.attempts.is_empty() {
            self.refused = false;
        }
    }

    fn last(&self) -> i64 {
        self.attempts.back().copied().unwrap_or(i64::MIN)
    }
}

/// What the limiter says about one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over a limit. `first` is true for the first refusal since the limit was reached, which
    /// the caller records on the log; later refusals are not recorded until an attempt is
    /// allowed again, so that a source hammering the form makes the log grow by at most one
    /// event per allowed attempt, never by one per request.
    Limited {
        first: bool,
    },
}

/// The sign-in limiter. Share it behind an `Arc`.
#[derive(Debug)]
pub struct SignInLimiter {
    per_account: usize,
    per_source: usize,
    windows: Mutex<HashMap<Key, Window>>,
}

impl SignInLimiter {
    /// At most `per_account` attempts per window for one address from one source and
    /// `per_source` from one source; 0 turns a limit off.
    pub fn new(per_account: u32, per_source: u32) -> Self {
        Self {
            per_account: per_account as usize,
            per_source: per_source as usize,
            windows: Mutex::default(),
        }
    }

    /// Counts an attempt for `account` from `source` at `now`, unless it is over a limit.
    pub fn check(&self, account: Hash32, source: &str, now: Timestamp) -> Verdict {
        let now = now.as_micros();
        let keys = [
            (Key::Account(account, source.to_owned()), self.per_account),
            (Key::Source(source.to_owned()), self.per_source),
        ];
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut over = None;
        for (key, limit) in &keys {
            if *limit == 0 {
                continue;
            }
            if let Some(window) = windows.get_mut(key) {
                window.expire(now);
                if window.attempts.len() >= *limit {
                    let first = !window.refused;
                    window.refused = true;
                    over = Some(over.unwrap_or(false) || first);
                }
            }
        }
        if let Some(first) = over {
            return Verdict::Limited { first };
        }
        for (key, limit) in keys {
            if limit == 0 {
                continue;
            }
            if !windows.contains_key(&key) && windows.len() >= MAX_KEYS {
                make_room(&mut windows, now);
            }
            let window = windows.entry(key).or_default();
            window.attempts.push_back(now);
            window.refused = false;
        }
        Verdict::Allowed
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Frees about a tenth of the map: expired keys first, then the least recently used.
fn make_room(windows: &mut HashMap<Key, Window>, now: i64) {
    windows.retain(|_, window| {
        window.expire(now);
        !window.attempts.is_empty()
    });
    if windows.len() < MAX_KEYS {
        return;
    }
    let mut last: Vec<i64> = windows.values().map(Window::last).collect();
    let cut = MAX_KEYS / 10;
    let (_, threshold, _) = last.select_nth_unstable(cut);
    let threshold = *threshold;
    windows.retain(|_, window| window.last() > threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + seconds * 1_000_000)
    }

    #[test]
    fn five_attempts_per_minute_per_address_and_source_then_one_recorded_refusal() {
        let limiter = SignInLimiter::new(5, 30);
        let ada = Hash32([1; 32]);
        for second in 0..5 {
            assert_eq!(limiter.check(ada, "10.0.0.1", at(second)), Verdict::Allowed);
        }
        assert_eq!(
            limiter.check(ada, "10.0.0.1", at(10)),
            Verdict::Limited { first: true }
        );
        assert_eq!(
            limiter.check(ada, "10.0.0.1", at(11)),
            Verdict::Limited { first: false }
        );
        // Another source, or another address, is counted apart.
        assert_eq!(limiter.check(ada, "10.0.0.2", at(11)), Verdict::Allowed);
        assert_eq!(
            limiter.check(Hash32([2; 32]), "10.0.0.1", at(11)),
            Verdict::Allowed
        );
        // A minute after the first attempt, one more is allowed; the next refusal is recorded
        // again.
        assert_eq!(limiter.check(ada, "10.0.0.1", at(60)), Verdict::Allowed);
        assert_eq!(
            limiter.check(ada, "10.0.0.1", at(60)),
            Verdict::Limited { first: true }
        );
        assert_eq!(
            limiter.check(ada, "10.0.0.1", at(60)),
            Verdict::Limited { first: false }
        );
    }

    #[test]
    fn a_source_has_a_ceiling_across_addresses() {
        let limiter = SignInLimiter::new(5, 3);
        for n in 0..3 {
            assert_eq!(
                limiter.check(Hash32([n; 32]), "10.0.0.1", at(0)),
                Verdict::Allowed
            );
        }
        assert_eq!(
            limiter.check(Hash32([9; 32]), "10.0.0.1", at(1)),
            Verdict::Limited { first: true }
        );
        assert_eq!(
            limiter.check(Hash32([9; 32]), "10.0.0.2", at(1)),
            Verdict::Allowed
        );
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limiter = SignInLimiter::new(0, 0);
        for _ in 0..100 {
            assert_eq!(
                limiter.check(Hash32([1; 32]), "10.0.0.1", at(0)),
                Verdict::Allowed
            );
        }
        assert!(limiter.is_empty());
    }

    #[test]
    fn the_map_stays_bounded_under_a_flood_of_keys() {
        let limiter = SignInLimiter::new(5, 0);
        for n in 0..(MAX_KEYS as u32 + 1000) {
            let mut account = [0u8; 32];
            account[..4].copy_from_slice(&n.to_le_bytes());
            limiter.check(Hash32(account), "10.0.0.1", at(i64::from(n) / 100_000));
        }
        assert!(limiter.len() <= MAX_KEYS, "{}", limiter.len());
    }
}
