//! The secrets of emailed links: invitations, password resets and address verifications.
//!
//! A link token is `base64url(link_id ‖ 32 random bytes)`, 64 characters that fit a URL path
//! segment. Its first 16 bytes name what it is for (an invitation's stream, or the id a
//! `user.password_reset_requested` records), the rest make it unguessable (256 bits). The log
//! keeps only its keyed hash (HMAC-SHA-256 under a sub-key of the master key), compared in
//! constant time.

use aws_lc_rs::{hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_event_schemas::Hash32;
use uuid::Uuid;

use crate::CryptoError;

const RANDOM_BYTES: usize = 32;

/// The key of link-token hashes, derived from the master key by [`crate::Crypto`].
pub struct LinkSecrets {
    pub(crate) hash: hmac::Key,
}

impl LinkSecrets {
    /// A new link token naming `link_id`.
    pub fn new_token(&self, link_id: Uuid) -> Result<String, CryptoError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 16 + RANDOM_BYTES]);
        bytes[..16].copy_from_slice(link_id.as_bytes());
        rand::fill(&mut bytes[16..]).map_err(|_| CryptoError::Failed("random generation"))?;
        Ok(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
    }

    /// The id a token names, if it has a link token's shape. Says nothing about whether it is
    /// valid: only [`LinkSecrets::verify`] against the recorded hash does.
    pub fn link_id(token: &str) -> Option<Uuid> {
        if token.len() != 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != 16 + RANDOM_BYTES {
            return None;
        }
        Uuid::from_slice(&bytes[..16]).ok()
    }

    /// The keyed hash of a token, as the events record it.
    pub fn hash(&self, token: &str) -> Hash32 {
        Hash32::from_slice(hmac::sign(&self.hash, token.as_bytes()).as_ref()).unwrap_or_default()
    }

    /// Whether `token` is the one hashed to `hash`, in constant time.
    pub fn verify(&self, token: &str, hash: &Hash32) -> bool {
        hmac::verify(&self.hash, token.as_bytes(), &hash.0).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Crypto, MasterKey};

    fn crypto_of(seed: u8) -> Crypto {
        Crypto::new(&MasterKey::from_bytes([seed; 32])).unwrap()
    }

    #[test]
    fn a_token_names_its_link_and_verifies_only_against_its_own_hash() {
        let crypto = crypto_of(1);
        let id = Uuid::from_u128(42);
        let token = crypto.links().new_token(id).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(LinkSecrets::link_id(&token), Some(id));
        let hash = crypto.links().hash(&token);
        assert!(crypto.links().verify(&token, &hash));
        let other = crypto.links().new_token(id).unwrap();
        assert_ne!(other, token);
        assert!(!crypto.links().verify(&other, &hash));
    }

    #[test]
    fn another_master_key_does_not_verify_the_hash() {
        let token = crypto_of(1).links().new_token(Uuid::from_u128(7)).unwrap();
        let hash = crypto_of(1).links().hash(&token);
        assert!(!crypto_of(2).links().verify(&token, &hash));
    }

    #[test]
    fn anything_without_a_token_shape_names_no_link() {
        assert_eq!(LinkSecrets::link_id(""), None);
        assert_eq!(LinkSecrets::link_id(&"A".repeat(63)), None);
        assert_eq!(LinkSecrets::link_id(&"*".repeat(64)), None);
    }
}
