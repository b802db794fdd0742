//! The API keys recently looked up, in memory, so that an authenticated request (the claims
//! resolver's 30,000 a second, every admin call) reads no SQL for its key.
//!
//! An entry is a key's row and whether its tenant served, read when the read models were at
//! position `p`; it answers only while [`ProjectionRuntime::keys_changed_at`] is at most `p`,
//! that is until an API key is issued or revoked or any tenant event is projected, and then is
//! read again. A revocation therefore stops its key on the next request once the revocation's
//! write is projected (its handler waits for that before answering), as the SQL lookup did;
//! other nodes likewise within their projection lag. Expiry is judged on every use by the
//! clock, and the presented key is still compared with the row's hash in constant time. Only
//! keys found are kept, at most [`CAPACITY`], by keyed hash (never the key itself).
//!
//! [`ProjectionRuntime::keys_changed_at`]: tessera_projections::ProjectionRuntime::keys_changed_at

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tessera_event_schemas::Hash32;
use tessera_projections::ApiKeyView;

/// Keys held at most (a few hundred bytes each).
pub const CAPACITY: usize = 4_096;

/// A key's row and whether its tenant served, as read at `read_at`.
pub struct CachedKey {
    pub read_at: u64,
    pub view: Arc<ApiKeyView>,
    pub tenant_serves: bool,
}

#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<Hash32, CachedKey>>,
}

impl KeyCache {
    /// The key whose secret hashes to `hash`, if read at or after `changed_at`.
    pub fn get(&self, hash: &Hash32, changed_at: u64) -> Option<(Arc<ApiKeyView>, bool)> {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .filter(|cached| cached.read_at >= changed_at)
            .map(|cached| (cached.view.clone(), cached.tenant_serves))
    }

    pub fn put(&self, hash: Hash32, cached: CachedKey) {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= CAPACITY
            && !keys.contains_key(&hash)
            && let Some(evicted) = keys.keys().next().copied()
        {
            keys.remove(&evicted);
        }
        keys.insert(hash, cached);
    }
}
