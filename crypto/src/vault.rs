//! The credential vault's keys (issue 20): per tenant, versioned key-encryption keys (KEKs),
//! and envelope encryption of each stored credential under a fresh data key (DEK).
//!
//! - Each tenant has KEK versions 1, 2, ...: 256 random bits each, kept in the event log's key
//!   table beside the per-person keys ([`crate::personal`]), sealed under a sub-key of the master
//!   key with the tenant and the version as AAD. A version's row id is [`kek_id`]: a UUID that
//!   no person id can be (see there), so the table needs no new column.
//! - A credential is sealed as `tsr:v{version}:{base64url(wrapped DEK || sealed payload)}`: a
//!   fresh DEK encrypts the payload (AAD: tenant and credential id), and the KEK of `version`
//!   wraps the DEK (AAD: tenant, version and credential id). The prefix names the version that
//!   opens it, as Vault's transit engine names its keys (`vault:v1:...`).
//! - [`VaultKeys::rewrap`] moves a credential to another version by unwrapping and wrapping its
//!   DEK: the payload is never decrypted, so a rewrap of many credentials never holds their
//!   secrets in clear.
//! - A minimum version refuses what older versions sealed, so that they can be retired (the
//!   transit engine's `min_decryption_version`); destroying every version of a tenant
//!   ([`VaultKeys::destroy`]) makes every credential it sealed unreadable for good, while the log,
//!   which holds only ciphertext, still verifies (crypto-shredding, at the tenant's level).
//!
//! Which versions exist, the newest and the minimum are facts on the log (the vault aggregate);
//! this module only keeps the key material and uses it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::aead::{AES_256_GCM, RandomizedNonceKey};
use aws_lc_rs::rand;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_event_log::KeyTable;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{Crypto, CryptoError, open_with, seal_with};

/// What every sealed credential starts with.
pub const PREFIX: &str = "tsr:v";

/// The high bits of a KEK's row id in the key table: version 7 UUIDs (every person id) have
/// version bits `0111`, these have `1111`, which no UUID generator produces, so the two kinds
/// of row can never collide.
const KEK_ID_TAG: u128 = 0x7661_756c_745f_f000_8000_0000_0000_0000;

/// The key-table row id of a tenant's KEK `version`.
pub fn kek_id(version: u32) -> Uuid {
    Uuid::from_u128(KEK_ID_TAG | u128::from(version))
}

/// The id a secret is sealed with (in its AAD), derived from the stream that holds it: the
/// first 16 bytes of SHA-256 over a domain label and the stream id, as a version 8 UUID. A
/// secret copied to another stream (another connection, another tenant) names another id
/// there, and so does not open.
pub fn secret_id(stream_id: &str) -> Uuid {
    let mut input = Vec::with_capacity(32 + stream_id.len());
    input.extend_from_slice(b"tessera/v1/vault-secret-id\0");
    input.extend_from_slice(stream_id.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A sealed credential's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub version: u32,
    body: &'a str,
}

impl<'a> Sealed<'a> {
    /// Reads `tsr:v{version}:{body}`; `None` for anything else.
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let (version, body) = rest.split_once(':')?;
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let version = version.parse().ok().filter(|v| *v > 0)?;
        Some(Self { version, body })
    }
}

/// Why a credential did not open.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("not a sealed credential")]
    Malformed,
    /// Sealed under a version below the tenant's minimum.
    #[error("sealed under key version {version}, below the minimum {minimum}")]
    Retired { version: u32, minimum: u32 },
    /// The version's key is not in the key table: never made, or destroyed.
    #[error("key version {0} is gone")]
    KeyGone(u32),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// One opened KEK. Never printed.
struct Kek {
    key: RandomizedNonceKey,
}

/// Makes, finds, uses and destroys tenants' KEKs in a key table. Cheap to share behind an
/// `Arc`; opened KEKs are cached (a tenant has a handful). A destroy drops them from this
/// process's cache; another process sharing a PostgreSQL log keeps its copy until it restarts,
/// which the vault's commands rule out by refusing every use of an offboarded tenant's vault
/// (a fact on the log) before they reach a key.
pub struct VaultKeys {
    crypto: Arc<Crypto>,
    table: Arc<dyn KeyTable>,
    cache: Mutex<HashMap<(Uuid, u32), Arc<Kek>>>,
}

impl fmt::Debug for VaultKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKeys").finish_non_exhaustive()
    }
}

fn table_error(error: tessera_event_log::LogError) -> CryptoError {
    CryptoError::KeyTable(error.to_string())
}

fn kek_aad(tenant_id: Uuid, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24);
    aad.extend_from_slice(b"kek");
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn dek_aad(tenant_id: Uuid, version: u32, credential_id: Uuid) -> Vec<u8> {
    let mut aad = kek_aad(tenant_id, version);
    aad.extend_from_slice(credential_id.as_bytes());
    aad
}

fn payload_aad(tenant_id: Uuid, credential_id: Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(35);
    aad.extend_from_slice(b"credential");
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.extend_from_slice(credential_id.as_bytes());
    aad
}

/// A wrapped DEK: 12 bytes of nonce, 32 of key, 16 of tag.
const WRAPPED_DEK_LEN: usize = 12 + 32 + 16;

impl VaultKeys {
    pub fn new(crypto: Arc<Crypto>, table: Arc<dyn KeyTable>) -> Self {
        Self {
            crypto,
            table,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Makes KEK `version` of `tenant_id`, stored durably before it is returned. A retried
    /// creation keeps the first key.
    pub async fn create(&self, tenant_id: Uuid, version: u32) -> Result<(), CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(bytes.as_mut()).map_err(|_| CryptoError::Failed("random generation"))?;
        let sealed = seal_with(
            &self.crypto.vault_keys,
            &kek_aad(tenant_id, version),
            bytes.as_ref(),
        )?;
        let stored = self
            .table
            .insert(tenant_id, kek_id(version), &sealed)
            .await
            .map_err(table_error)?;
        self.open_and_cache(tenant_id, version, &stored)?;
        Ok(())
    }

    /// Destroys KEK versions `1..=newest` of `tenant_id`: everything they sealed is unreadable
    /// from now on. Returns how many there were.
    pub async fn destroy(&self, tenant_id: Uuid, newest: u32) -> Result<u32, CryptoError> {
        let mut destroyed = 0;
        for version in 1..=newest {
            self.lock().remove(&(tenant_id, version));
            if self
                .table
                .destroy(tenant_id, kek_id(version))
                .await
                .map_err(table_error)?
            {
                destroyed += 1;
            }
            self.lock().remove(&(tenant_id, version));
        }
        Ok(destroyed)
    }

    /// Seals `payload` (a token set, an API key) of credential `credential_id` under KEK
    /// `version` of `tenant_id`.
    pub async fn seal(
        &self,
        tenant_id: Uuid,
        version: u32,
        credential_id: Uuid,
        payload: &[u8],
    ) -> Result<String, VaultError> {
        let kek = self.kek(tenant_id, version).await?;
        let mut dek_bytes = Zeroizing::new([0u8; 32]);
        rand::fill(dek_bytes.as_mut()).map_err(|_| CryptoError::Failed("random generation"))?;
        let dek = RandomizedNonceKey::new(&AES_256_GCM, dek_bytes.as_ref())
            .map_err(|_| CryptoError::Failed("aes-256-gcm data key"))?;
        let mut body = seal_with(
            &kek.key,
            &dek_aad(tenant_id, version, credential_id),
            dek_bytes.as_ref(),
        )?;
        body.extend(seal_with(
            &dek,
            &payload_aad(tenant_id, credential_id),
            payload,
        )?);
        Ok(format!(
            "{PREFIX}{version}:{}",
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    /// Opens what [`VaultKeys::seal`] sealed for the same tenant and credential, refusing
    /// versions below `minimum`.
    pub async fn open(
        &self,
        tenant_id: Uuid,
        credential_id: Uuid,
        sealed: &str,
        minimum: u32,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (dek, payload) = self
            .unwrap_dek(tenant_id, credential_id, sealed, minimum)
            .await?;
        let dek = RandomizedNonceKey::new(&AES_256_GCM, dek.as_ref())
            .map_err(|_| CryptoError::Failed("aes-256-gcm data key"))?;
        Ok(Zeroizing::new(open_with(
            &dek,
            &payload_aad(tenant_id, credential_id),
            &payload,
        )?))
    }

    /// The same credential sealed under KEK `to` instead: its DEK unwrapped and wrapped again,
    /// its payload untouched (never decrypted).
    pub async fn rewrap(
        &self,
        tenant_id: Uuid,
        credential_id: Uuid,
        sealed: &str,
        minimum: u32,
        to: u32,
    ) -> Result<String, VaultError> {
        let (dek, payload) = self
            .unwrap_dek(tenant_id, credential_id, sealed, minimum)
            .await?;
        let kek = self.kek(tenant_id, to).await?;
        let mut body = seal_with(
            &kek.key,
            &dek_aad(tenant_id, to, credential_id),
            dek.as_ref(),
        )?;
        body.extend_from_slice(&payload);
        Ok(format!("{PREFIX}{to}:{}", URL_SAFE_NO_PAD.encode(body)))
    }

    /// The opened DEK and the sealed payload of `sealed`.
    async fn unwrap_dek(
        &self,
        tenant_id: Uuid,
        credential_id: Uuid,
        sealed: &str,
        minimum: u32,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), VaultError> {
        let parsed = Sealed::parse(sealed).ok_or(VaultError::Malformed)?;
        if parsed.version < minimum {
            return Err(VaultError::Retired {
                version: parsed.version,
                minimum,
            });
        }
        let body = URL_SAFE_NO_PAD
            .decode(parsed.body)
            .map_err(|_| VaultError::Malformed)?;
        if body.len() < WRAPPED_DEK_LEN {
            return Err(VaultError::Malformed);
        }
        let (wrapped, payload) = body.split_at(WRAPPED_DEK_LEN);
        let kek = self.kek(tenant_id, parsed.version).await?;
        let dek = Zeroizing::new(open_with(
            &kek.key,
            &dek_aad(tenant_id, parsed.version, credential_id),
            wrapped,
        )?);
        Ok((dek, payload.to_vec()))
    }

    async fn kek(&self, tenant_id: Uuid, version: u32) -> Result<Arc<Kek>, VaultError> {
        if let Some(kek) = self.lock().get(&(tenant_id, version)) {
            return Ok(kek.clone());
        }
        match self
            .table
            .get(tenant_id, kek_id(version))
            .await
            .map_err(table_error)?
        {
            Some(sealed) => Ok(self.open_and_cache(tenant_id, version, &sealed)?),
            None => Err(VaultError::KeyGone(version)),
        }
    }

    fn open_and_cache(
        &self,
        tenant_id: Uuid,
        version: u32,
        sealed: &[u8],
    ) -> Result<Arc<Kek>, CryptoError> {
        let bytes = Zeroizing::new(open_with(
            &self.crypto.vault_keys,
            &kek_aad(tenant_id, version),
            sealed,
        )?);
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| CryptoError::Failed("aes-256-gcm key-encryption key"))?;
        let kek = Arc::new(Kek { key });
        self.lock().insert((tenant_id, version), kek.clone());
        Ok(kek)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, u32), Arc<Kek>>> {
        // The map holds no invariant a panic could break.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
