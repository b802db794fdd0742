//! Per-person data keys: how personal data is sealed before it reaches the log, and how a
//! person is erased from a log that never forgets (crypto-shredding).
//!
//! Every person gets a random 256-bit AES-GCM [`DataKey`]. Their personal fields (an email
//! address, names) enter events only as `nonce || ciphertext || tag` under that key, with the
//! AAD binding each value to its tenant, its person and its field, so that a sealed value copied
//! to another person or field does not open. The key itself is kept in the event log's key table
//! ([`tessera_event_log::KeyTable`]), sealed under a sub-key of the master key (AAD: tenant and
//! person), so that a copy of the table alone opens nothing. Destroying the row makes every
//! sealed value of that person, in the log, in read models and in backups taken afterwards,
//! unreadable for good.
//!
//! [`PersonalKeys`] keeps recently used keys in a bounded in-memory cache, because the API
//! opens personal fields for every user it shows. A destroy drops the key from this process's
//! cache; another process sharing a PostgreSQL log may keep it until it evicts it, which only
//! matters if it still holds the ciphertext (read models drop it on erasure).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::aead::{AES_256_GCM, RandomizedNonceKey};
use aws_lc_rs::rand;
use tessera_event_log::KeyTable;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{Crypto, CryptoError, open_with, seal_with};

/// Keys a [`PersonalKeys`] keeps in memory at most. A key is 32 bytes plus aws-lc's expanded
/// schedule (well under a kilobyte): the cache stays within a few megabytes.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// One person's data key, opened. Never printed.
pub struct DataKey {
    key: RandomizedNonceKey,
    tenant_id: Uuid,
    person_id: Uuid,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("tenant_id", &self.tenant_id)
            .field("person_id", &self.person_id)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    fn new(tenant_id: Uuid, person_id: Uuid, bytes: &[u8]) -> Result<Self, CryptoError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| CryptoError::Failed("aes-256-gcm data key"))?;
        Ok(Self {
            key,
            tenant_id,
            person_id,
        })
    }

    /// The AAD of `field`: tenant id, person id (16 bytes each), then the field's name.
    fn aad(&self, field: &str) -> Vec<u8> {
        let mut aad = person_aad(self.tenant_id, self.person_id);
        aad.extend_from_slice(field.as_bytes());
        aad
    }

    /// Seals the value of `field` (`email`, `name`, ...): `nonce || ciphertext || tag`.
    pub fn seal(&self, field: &str, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.key, &self.aad(field), plaintext.as_bytes())
    }

    /// Opens what [`DataKey::seal`] sealed for the same field.
    pub fn open(&self, field: &str, sealed: &[u8]) -> Result<String, CryptoError> {
        let bytes = Zeroizing::new(open_with(&self.key, &self.aad(field), sealed)?);
        String::from_utf8(bytes.to_vec()).map_err(|_| CryptoError::Unseal)
    }
}

fn person_aad(tenant_id: Uuid, person_id: Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(48);
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.extend_from_slice(person_id.as_bytes());
    aad
}

/// Creates, finds and destroys per-person data keys in a key table. Cheap to share behind an
/// `Arc`.
pub struct PersonalKeys {
    crypto: Arc<Crypto>,
    table: Arc<dyn KeyTable>,
    cache: Mutex<HashMap<(Uuid, Uuid), Arc<DataKey>>>,
    capacity: usize,
}

impl fmt::Debug for PersonalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonalKeys")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn table_error(error: tessera_event_log::LogError) -> CryptoError {
    CryptoError::KeyTable(error.to_string())
}

impl PersonalKeys {
    pub fn new(crypto: Arc<Crypto>, table: Arc<dyn KeyTable>) -> Self {
        Self::with_capacity(crypto, table, DEFAULT_CACHE_CAPACITY)
    }

    /// Keeps at most `capacity` opened keys in memory.
    pub fn with_capacity(crypto: Arc<Crypto>, table: Arc<dyn KeyTable>, capacity: usize) -> Self {
        Self {
            crypto,
            table,
            cache: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// A new random key for `(tenant_id, person_id)`, stored (durably) in the key table before
    /// it is returned, so that nothing is sealed under a key that could still be lost. If the
    /// person already has a key (a retried creation), that key is returned instead.
    pub async fn create(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
    ) -> Result<Arc<DataKey>, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(bytes.as_mut()).map_err(|_| CryptoError::Failed("random generation"))?;
        let aad = person_aad(tenant_id, person_id);
        let sealed = seal_with(&self.crypto.person_keys, &aad, bytes.as_ref())?;
        let stored = self
            .table
            .insert(tenant_id, person_id, &sealed)
            .await
            .map_err(table_error)?;
        self.open_and_cache(tenant_id, person_id, &stored)
    }

    /// The key of `(tenant_id, person_id)`, or `None` once it is destroyed (or was never made).
    pub async fn get(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
    ) -> Result<Option<Arc<DataKey>>, CryptoError> {
        if let Some(key) = self.lock().get(&(tenant_id, person_id)) {
            return Ok(Some(key.clone()));
        }
        match self
            .table
            .get(tenant_id, person_id)
            .await
            .map_err(table_error)?
        {
            Some(sealed) => self.open_and_cache(tenant_id, person_id, &sealed).map(Some),
            None => Ok(None),
        }
    }

    /// Destroys the key of `(tenant_id, person_id)`: every value sealed under it is unreadable
    /// from now on. Returns whether there was one.
    pub async fn destroy(&self, tenant_id: Uuid, person_id: Uuid) -> Result<bool, CryptoError> {
        self.lock().remove(&(tenant_id, person_id));
        let destroyed = self
            .table
            .destroy(tenant_id, person_id)
            .await
            .map_err(table_error)?;
        // A `get` that raced with the destroy may have cached the key again.
        self.lock().remove(&(tenant_id, person_id));
        Ok(destroyed)
    }

    /// Opens `field` of `(tenant_id, person_id)`; `None` when the person's key is gone.
    pub async fn open(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
        field: &str,
        sealed: &[u8],
    ) -> Result<Option<String>, CryptoError> {
        match self.get(tenant_id, person_id).await? {
            Some(key) => key.open(field, sealed).map(Some),
            None => Ok(None),
        }
    }

    fn open_and_cache(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
        sealed: &[u8],
    ) -> Result<Arc<DataKey>, CryptoError> {
        let aad = person_aad(tenant_id, person_id);
        let bytes = Zeroizing::new(open_with(&self.crypto.person_keys, &aad, sealed)?);
        let key = Arc::new(DataKey::new(tenant_id, person_id, &bytes)?);
        let mut cache = self.lock();
        if cache.len() >= self.capacity {
            // Any entry will do: a miss costs one indexed read of the key table, and keeping
            // no order makes a hit cost nothing but the lookup.
            if let Some(evicted) = cache.keys().next().copied() {
                cache.remove(&evicted);
            }
        }
        cache.insert((tenant_id, person_id), key.clone());
        Ok(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, Uuid), Arc<DataKey>>> {
        // The map holds no invariant a panic could break.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_log::{Backend, MemoryStore, keys};

    use super::*;
    use crate::MasterKey;

    const TENANT: Uuid = Uuid::from_u128(1);
    const ADA: Uuid = Uuid::from_u128(2);
    const BOB: Uuid = Uuid::from_u128(3);

    async fn personal(store: &MemoryStore, master: u8, capacity: usize) -> PersonalKeys {
        let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([master; 32])).unwrap());
        let table = keys::open(&Backend::Memory {
            store: store.clone(),
        })
        .await
        .unwrap();
        PersonalKeys::with_capacity(crypto, table, capacity)
    }

    #[tokio::test]
    async fn sealed_fields_open_with_the_persons_key_and_field_only() {
        let store = MemoryStore::default();
        let keys = personal(&store, 1, 10).await;
        let ada = keys.create(TENANT, ADA).await.unwrap();
        let bob = keys.create(TENANT, BOB).await.unwrap();
        let sealed = ada.seal("email", "ada@example.com").unwrap();
        assert_eq!(ada.open("email", &sealed).unwrap(), "ada@example.com");
        assert!(ada.open("name", &sealed).is_err());
        assert!(bob.open("email", &sealed).is_err());
        assert!(!sealed.windows(3).any(|w| w == b"ada"));
        // Another process on the same table (and master key) opens it too, with a small cache.
        let other = personal(&store, 1, 1).await;
        assert_eq!(
            other.open(TENANT, ADA, "email", &sealed).await.unwrap(),
            Some("ada@example.com".to_owned())
        );
        other.get(TENANT, BOB).await.unwrap().unwrap();
        // Under another master key the stored key does not open.
        assert!(
            personal(&store, 2, 10)
                .await
                .get(TENANT, ADA)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_retried_creation_keeps_the_first_key() {
        let store = MemoryStore::default();
        let keys = personal(&store, 1, 10).await;
        let sealed = keys
            .create(TENANT, ADA)
            .await
            .unwrap()
            .seal("name", "Ada")
            .unwrap();
        let again = personal(&store, 1, 10)
            .await
            .create(TENANT, ADA)
            .await
            .unwrap();
        assert_eq!(again.open("name", &sealed).unwrap(), "Ada");
    }

    #[tokio::test]
    async fn a_destroyed_key_opens_nothing_any_more() {
        let store = MemoryStore::default();
        let keys = personal(&store, 1, 10).await;
        let sealed = keys
            .create(TENANT, ADA)
            .await
            .unwrap()
            .seal("email", "ada@example.com")
            .unwrap();
        keys.create(TENANT, BOB).await.unwrap();
        assert!(keys.destroy(TENANT, ADA).await.unwrap());
        assert!(!keys.destroy(TENANT, ADA).await.unwrap());
        assert!(keys.get(TENANT, ADA).await.unwrap().is_none());
        assert_eq!(
            keys.open(TENANT, ADA, "email", &sealed).await.unwrap(),
            None
        );
        assert!(keys.get(TENANT, BOB).await.unwrap().is_some());
    }
}
