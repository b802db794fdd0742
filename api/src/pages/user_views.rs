//! The hosted pages' cache of user rows (`rm_users`), so that a signed-in page view reads no
//! SQL: the account page is shown on every visit, and one read through the store's connection
//! pool (a round trip to its worker thread) cost more than the rest of the page together.
//!
//! **Never stale past a change.** An entry remembers the projected position at which it was read;
//! it is used only while no event that changes a user row has been applied after that
//! position ([`ProjectionRuntime::users_changed_at`]). That mark is per store, not per user: any
//! user's change sends the next view of every cached user back to the store once, which is
//! cheap because such changes are rare next to page views (sign-ins and session uses change
//! sessions, not users). Read-your-writes holds as before: the projector moves the mark before
//! it publishes the position a write waits for. Nodes sharing a PostgreSQL read store each run
//! their own projector, so a node drops an entry once its own projector has passed the change
//! another node made: its usual lag behind the log, milliseconds.
//!
//! **Bounded**: at most [`CAPACITY`] users (a row is a few hundred bytes: ids, times, and the
//! sealed personal fields as the read model stores them, never opened ones). When full, an
//! arbitrary entry leaves, as in the personal key cache: a miss costs one read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tessera_projections::{ProjectionRuntime, ReadStore, UserView};
use uuid::Uuid;

use crate::error::ApiError;

/// Most users held.
pub const CAPACITY: usize = 10_000;

struct Cached {
    /// The projected position before the row was read.
    read_at: u64,
    view: Arc<UserView>,
}

/// User rows by `(tenant id, user id)` (see the module's doc).
#[derive(Default)]
pub struct UserViews {
    cache: Mutex<HashMap<(Uuid, Uuid), Cached>>,
}

impl UserViews {
    /// The user row of `(tenant_id, user_id)`, from memory when no user changed since it was
    /// read, else from `store`.
    pub async fn user(
        &self,
        projections: &ProjectionRuntime,
        store: &ReadStore,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<Arc<UserView>>, ApiError> {
        let key = (tenant_id, user_id);
        if let Some(view) = self.get(key, projections.users_changed_at()) {
            return Ok(Some(view));
        }
        let read_at = projections.projected_position();
        let Some(view) = store.user(tenant_id, user_id).await? else {
            return Ok(None);
        };
        let view = Arc::new(view);
        self.put(key, read_at, view.clone());
        Ok(Some(view))
    }

    /// The cached row of `key`, if it was read at or after `changed_at`.
    fn get(&self, key: (Uuid, Uuid), changed_at: u64) -> Option<Arc<UserView>> {
        self.lock()
            .get(&key)
            .filter(|cached| cached.read_at >= changed_at)
            .map(|cached| cached.view.clone())
    }

    fn put(&self, key: (Uuid, Uuid), read_at: u64, view: Arc<UserView>) {
        let mut cache = self.lock();
        if cache.len() >= CAPACITY
            && !cache.contains_key(&key)
            && let Some(evicted) = cache.keys().next().copied()
        {
            cache.remove(&evicted);
        }
        cache.insert(key, Cached { read_at, view });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, Uuid), Cached>> {
        // The map holds no invariant a panic could break.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use tessera_domain::user::UserStatus;
    use tessera_event_schemas::Timestamp;

    use super::*;

    fn view(user_id: Uuid) -> Arc<UserView> {
        Arc::new(UserView {
            user_id,
            tenant_id: Uuid::nil(),
            status: UserStatus::Active,
            email_hash: None,
            email: Some(b"sealed".to_vec()),
            email_verified: false,
            name: None,
            given_name: None,
            family_name: None,
            roles: Vec::new(),
            has_password: true,
            password_temporary: false,
            password_changed_at: None,
            created_at: Timestamp::from_micros(1),
            updated_at: Timestamp::from_micros(1),
        })
    }

    #[test]
    fn a_row_serves_until_a_user_changes_after_it_was_read() {
        let views = UserViews::default();
        let key = (Uuid::nil(), Uuid::from_u128(1));
        views.put(key, 10, view(key.1));
        assert!(views.get(key, 0).is_some());
        assert!(views.get(key, 10).is_some(), "a change the read saw");
        assert!(views.get(key, 11).is_none(), "a change after the read");
        assert!(views.get((Uuid::nil(), Uuid::from_u128(2)), 0).is_none());
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let views = UserViews::default();
        for n in 0..=CAPACITY as u128 {
            views.put(
                (Uuid::nil(), Uuid::from_u128(n)),
                1,
                view(Uuid::from_u128(n)),
            );
        }
        assert_eq!(views.lock().len(), CAPACITY);
        // Replacing a held row evicts nothing.
        let held = *views.lock().keys().next().unwrap();
        views.put(held, 2, view(held.1));
        assert_eq!(views.lock().len(), CAPACITY);
        assert!(views.get(held, 2).is_some());
    }
}
