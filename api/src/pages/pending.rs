//! Sign-ins waiting for a step before their session starts: a person whose password is right
//! but must change (temporary, or past the policy's maximum age); phase 3 adds second factors.
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
}

/// One sign-in waiting for its step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSignIn {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub step: Step,
    /// Where the flow goes once the session started.
    pub return_to: String,
    pub expires_at: Timestamp,
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
