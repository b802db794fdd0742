//! Sign-ins waiting for a step before their session starts: a person whose password is right
//! but must change (temporary, or past the policy's maximum age), a second factor to prove, or
//! one to set up (the tenant requires it).
//!
//! The browser holds a random 256-bit value in the tenant's pending cookie; this store keeps,
//! by its keyed hash, who proved what and where the flow goes next, for [`TTL_SECS`]. It is
//! in memory, on purpose: a step is minutes long, and losing it to a restart only means
//! signing in again (behind several nodes, the step must reach the node that started it).
//! It holds at most [`MAX_PENDING`] entries; when full, expired ones go first, then those
//! closest to expiry.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tessera_event_schemas::{Hash32, Timestamp};
use uuid::Uuid;

/// How long a pending sign-in waits for its step.
pub const TTL_SECS: i64 = 10 * 60;
/// Most pending sign-ins held at once.
pub const MAX_PENDING: usize = 10_000;

/// What a pending sign-in waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A new password.
    ChangePassword,
    /// A code of the user's authenticator app, or one of their recovery codes.
    SecondFactor,
    /// Setting up an authenticator app (the tenant requires a second factor).
    EnrollSecondFactor,
}

/// Wrong codes a pending sign-in may send before it is forgotten (and the person must give
/// their password again): with the password's own limits, this bounds guessing a code.
pub const MAX_CODE_FAILURES: u8 = 5;

/// One sign-in waiting for its step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSignIn {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub step: Step,
    /// Where the flow goes once the session started.
    pub return_to: String,
    pub expires_at: Timestamp,
    /// Wrong codes sent so far.
    pub failures: u8,
}

/// The store. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct PendingSignIns {
    entries: Mutex<HashMap<Hash32, PendingSignIn>>,
}

impl PendingSignIns {
    /// Keeps `pending` under the keyed hash of its cookie value.
    pub fn insert(&self, cookie_hash: Hash32, pending: PendingSignIn, now: Timestamp) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_PENDING {
            entries.retain(|_, p| p.expires_at > now);
        }
        if entries.len() >= MAX_PENDING {
            let soonest = entries
                .iter()
                .min_by_key(|(_, p)| p.expires_at)
                .map(|(hash, _)| *hash);
            if let Some(hash) = soonest {
                entries.remove(&hash);
            }
        }
        entries.insert(cookie_hash, pending);
    }

    /// The pending sign-in of `tenant_id` under `cookie_hash`, if it has not expired.
    pub fn get(
        &self,
        cookie_hash: &Hash32,
        tenant_id: Uuid,
        now: Timestamp,
    ) -> Option<PendingSignIn> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(cookie_hash)
            .filter(|p| p.tenant_id == tenant_id && p.expires_at > now)
            .cloned()
    }

    /// Moves a pending sign-in on to its next `step` (a new password done, a second factor
    /// follows), keeping its expiry.
    pub fn advance(&self, cookie_hash: &Hash32, step: Step) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pending) = entries.get_mut(cookie_hash) {
            pending.step = step;
        }
    }

    /// Counts a wrong code; the sign-in is forgotten at [`MAX_CODE_FAILURES`]. Whether it is
    /// still pending.
    pub fn fail(&self, cookie_hash: &Hash32) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pending) = entries.get_mut(cookie_hash) else {
            return false;
        };
        pending.failures = pending.failures.saturating_add(1);
        if pending.failures >= MAX_CODE_FAILURES {
            entries.remove(cookie_hash);
            return false;
        }
        true
    }

    /// Forgets a pending sign-in (its step is done).
    pub fn remove(&self, cookie_hash: &Hash32) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cookie_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_is_found_in_its_tenant_until_it_expires() {
        let store = PendingSignIns::default();
        let now = Timestamp::from_micros(1_000_000_000);
        let pending = PendingSignIn {
            tenant_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            step: Step::ChangePassword,
            return_to: "/t/acme/account".into(),
            expires_at: now.plus_seconds(TTL_SECS),
            failures: 0,
        };
        store.insert(Hash32([1; 32]), pending.clone(), now);
        assert_eq!(
            store.get(&Hash32([1; 32]), Uuid::from_u128(1), now),
            Some(pending)
        );
        assert_eq!(store.get(&Hash32([1; 32]), Uuid::from_u128(3), now), None);
        assert_eq!(
            store.get(
                &Hash32([1; 32]),
                Uuid::from_u128(1),
                now.plus_seconds(TTL_SECS)
            ),
            None
        );
        store.remove(&Hash32([1; 32]));
        assert_eq!(store.get(&Hash32([1; 32]), Uuid::from_u128(1), now), None);
    }
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_is_forgotten_after_too_many_wrong_codes() {
        let store = PendingSignIns::default();
        let now = Timestamp::from_micros(1_000_000_000);
        let pending = PendingSignIn {
            tenant_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            step: Step::ChangePassword,
            return_to: "/t/acme/account".into(),
            expires_at: now.plus_seconds(TTL_SECS),
            failures: 0,
        };
        store.insert(Hash32([1; 32]), pending, now);
        store.advance(&Hash32([1; 32]), Step::SecondFactor);
        let found = store.get(&Hash32([1; 32]), Uuid::from_u128(1), now);
        assert_eq!(found.map(|p| p.step), Some(Step::SecondFactor));
        for _ in 1..MAX_CODE_FAILURES {
            assert!(store.fail(&Hash32([1; 32])));
        }
        assert!(!store.fail(&Hash32([1; 32])));
        assert_eq!(store.get(&Hash32([1; 32]), Uuid::from_u128(1), now), None);
    }
}
