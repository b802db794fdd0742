//! WebAuthn ceremony state, kept on the server between a ceremony's start and its finish.
//!
//! A ceremony's state (its challenge, the policy it was started under, and for a registration
//! the user and the passkey's name) never leaves the process: the page carries only a random
//! id (256 bits), and the browser's response is checked against the state that id names. A
//! state is usable once (finishing takes it out, whatever the outcome), lives
//! [`CEREMONY_TTL`], and the store holds at most [`MAX_CEREMONIES`]: when full, the oldest
//! ceremonies make room, so a flood of starts costs bounded memory and can only abandon
//! ceremonies, never grow the process.
//!
//! State is per process: behind a load balancer, a ceremony must finish on the node that
//! started it (sticky sessions), or it fails like an expired one and the person tries again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::WebauthnPolicyV1;
use uuid::Uuid;
use webauthn_rs_core::proto::{AuthenticationState, RegistrationState};

use crate::CommandError;

/// How long a started ceremony can be finished (WebAuthn's own timeout is shorter).
pub const CEREMONY_TTL_SECS: i64 = 300;
const CEREMONY_TTL: i64 = CEREMONY_TTL_SECS * 1_000_000;
/// Ceremonies in progress one process keeps at most.
pub const MAX_CEREMONIES: usize = 10_000;

/// What a ceremony's finish needs from its start.
#[derive(Debug)]
pub(super) enum Ceremony {
    Registration {
        tenant_id: Uuid,
        user_id: Uuid,
        /// The passkey's name, checked, in clear until it is sealed at the finish.
        name: String,
        policy: WebauthnPolicyV1,
        state: Box<RegistrationState>,
    },
    SignIn {
        tenant_id: Uuid,
        state: Box<AuthenticationState>,
    },
}

struct Entry {
    expires_at: Timestamp,
    ceremony: Ceremony,
}

/// The ceremonies in progress in this process.
#[derive(Default)]
pub(crate) struct Ceremonies {
    inner: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    entries: HashMap<String, Entry>,
    /// Ids in the order they started, to evict the oldest; may name ids already taken.
    order: VecDeque<String>,
}

impl std::fmt::Debug for Ceremonies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremonies").finish_non_exhaustive()
    }
}

impl Ceremonies {
    /// Keeps `ceremony` until `now` plus the TTL and returns its id.
    pub(super) fn start(&self, now: Timestamp, ceremony: Ceremony) -> Result<String, CommandError> {
        let id = tessera_crypto::generate_secret()?;
        let mut store = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        store.purge(now);
        if store.order.len() > 2 * MAX_CEREMONIES {
            // Ids of finished ceremonies wait in the queue until they reach its front; drop
            // them when they pile up, so that the queue stays bounded too.
            let Store { entries, order } = &mut *store;
            order.retain(|id| entries.contains_key(id));
        }
        while store.entries.len() >= MAX_CEREMONIES {
            match store.order.pop_front() {
                Some(oldest) => {
                    store.entries.remove(&oldest);
                }
                None => break,
            }
        }
        store.order.push_back(id.clone());
        store.entries.insert(
            id.clone(),
            Entry {
                expires_at: Timestamp::from_micros(now.as_micros().saturating_add(CEREMONY_TTL)),
                ceremony,
            },
        );
        Ok(id)
    }

    /// Takes the ceremony `id` out, if it is there and not expired at `now`.
    pub(super) fn take(&self, id: &str, now: Timestamp) -> Option<Ceremony> {
        let mut store = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = store.entries.remove(id)?;
        (entry.expires_at > now).then_some(entry.ceremony)
    }

    /// Ceremonies in progress.
    pub(super) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }
}

impl Store {
    /// Drops expired ceremonies from the front of the queue (they expire in start order).
    fn purge(&mut self, now: Timestamp) {
        while let Some(oldest) = self.order.front() {
            match self.entries.get(oldest) {
                Some(entry) if entry.expires_at > now => break,
                Some(_) => {
                    let oldest = self.order.pop_front().unwrap_or_default();
                    self.entries.remove(&oldest);
                }
                None => {
                    self.order.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use webauthn_rs_core::WebauthnCore;

    use super::*;

    const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

    fn sign_in() -> Ceremony {
        let core = WebauthnCore::new_unsafe_experts_only(
            "Acme",
            "id.example",
            vec![url::Url::parse("https://id.example").unwrap()],
            std::time::Duration::from_secs(60),
            None,
            None,
        );
        let builder = core
            .new_challenge_authenticate_builder(Vec::new(), None)
            .unwrap_or_else(|_| {
                core.new_challenge_authenticate_builder(
                    Vec::new(),
                    Some(webauthn_rs_core::proto::UserVerificationPolicy::Required),
                )
                .unwrap()
            });
        let (_, state) = core.generate_challenge_authenticate(builder).unwrap();
        Ceremony::SignIn {
            tenant_id: Uuid::nil(),
            state: Box::new(state),
        }
    }

    #[test]
    fn a_ceremony_is_taken_once_and_not_after_its_time() {
        let ceremonies = Ceremonies::default();
        let id = ceremonies.start(NOW, sign_in()).unwrap();
        assert!(ceremonies.take(&id, NOW).is_some());
        assert!(ceremonies.take(&id, NOW).is_none());
        let id = ceremonies.start(NOW, sign_in()).unwrap();
        let late = Timestamp::from_micros(NOW.as_micros() + CEREMONY_TTL);
        assert!(ceremonies.take(&id, late).is_none());
        assert!(ceremonies.take("unknown", NOW).is_none());
    }

    #[test]
    fn the_store_is_bounded_and_makes_room_by_dropping_the_oldest() {
        let ceremonies = Ceremonies::default();
        let first = ceremonies.start(NOW, sign_in()).unwrap();
        let mut last = String::new();
        for _ in 0..MAX_CEREMONIES {
            last = ceremonies.start(NOW, sign_in()).unwrap();
        }
        assert_eq!(ceremonies.len(), MAX_CEREMONIES);
        assert!(
            ceremonies.take(&first, NOW).is_none(),
            "the oldest made room"
        );
        assert!(ceremonies.take(&last, NOW).is_some());
        // Expired ceremonies are purged when the next one starts.
        let later = Timestamp::from_micros(NOW.as_micros() + CEREMONY_TTL + 1);
        ceremonies.start(later, sign_in()).unwrap();
        assert_eq!(ceremonies.len(), 1);
    }
}
