//! The secrets of federated sign-in (issue 19): the keyed hash that links an upstream identity
//! to a user, the sealed state a browser carries to the upstream and back, and the sealing of
//! an upstream client secret.
//!
//! - The subject hash is HMAC-SHA-256 under a sub-key of its own over the tenant, the
//!   provider's alias and the upstream `sub`, each length-prefixed so that no two triples
//!   share an input. It names the link's reservation stream without the upstream id in clear.
//! - The state is sealed with AES-256-GCM under a sub-key of its own (its AAD names the
//!   purpose): the browser cannot read it (it holds the PKCE verifier and the nonce, which must
//!   not travel in the URL in clear, or PKCE would protect nothing) nor forge or alter it.
//!   Its lifetime, tenant, browser binding and single use are checked by the API and the log.
//! - An upstream client secret is sealed under the platform's sealing key (the one that seals
//!   signing keys), with the tenant and alias in the AAD, so a sealed secret copied into
//!   another provider's event does not open.

use aws_lc_rs::aead::RandomizedNonceKey;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_event_schemas::Hash32;
use uuid::Uuid;

use crate::{CryptoError, open_with, seal_with};

const STATE_AAD: &[u8] = b"tessera/v1/federation/state";

/// The keys of federated sign-in, derived from the master key by [`crate::Crypto`].
pub struct FederationSecrets {
    pub(crate) subject_hash: hmac::Key,
    pub(crate) state: RandomizedNonceKey,
}

impl FederationSecrets {
    /// The keyed hash of an upstream identity: (tenant, alias, `sub`).
    pub fn subject_hash(&self, tenant_id: Uuid, alias: &str, subject: &str) -> Hash32 {
        let mut context = hmac::Context::with_key(&self.subject_hash);
        context.update(tenant_id.as_bytes());
        for part in [alias, subject] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        Hash32::from_slice(context.sign().as_ref()).unwrap_or_default()
    }

    /// Seals a state's bytes into a URL-safe string.
    pub fn seal_state(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        Ok(URL_SAFE_NO_PAD.encode(seal_with(&self.state, STATE_AAD, plaintext)?))
    }

    /// Opens what [`FederationSecrets::seal_state`] made; `None` for anything else.
    pub fn open_state(&self, state: &str) -> Option<Vec<u8>> {
        if state.len() > 8_192 {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(state).ok()?;
        open_with(&self.state, STATE_AAD, &sealed).ok()
    }
}

/// Whether two keyed hashes are equal, compared in constant time.
pub fn same_hash(a: &Hash32, b: &Hash32) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(&a.0, &b.0).is_ok()
}

/// The AAD an upstream client secret is sealed under: its tenant and alias.
pub fn client_secret_aad(tenant_id: Uuid, alias: &str) -> Vec<u8> {
    format!("tessera/v1/federation/client-secret/{tenant_id}/{alias}").into_bytes()
}

#[cfg(test)]
mod tests {
    use crate::{Crypto, MasterKey};

    use super::*;

    fn crypto() -> Crypto {
        Crypto::new(&MasterKey::from_bytes([9; 32])).unwrap()
    }

    #[test]
    fn a_sealed_state_opens_only_unaltered() {
        let crypto = crypto();
        let sealed = crypto.federation().seal_state(b"payload").unwrap();
        assert_eq!(crypto.federation().open_state(&sealed).unwrap(), b"payload");
        let mut altered = sealed.clone().into_bytes();
        altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(crypto.federation().open_state(&altered), None);
        let other = Crypto::new(&MasterKey::from_bytes([8; 32])).unwrap();
        assert_eq!(other.federation().open_state(&sealed), None);
    }

    #[test]
    fn subject_hashes_differ_by_tenant_alias_and_subject_and_cannot_be_shifted() {
        let federation = crypto();
        let f = federation.federation();
        let t = Uuid::from_u128(1);
        let base = f.subject_hash(t, "default", "alice");
        assert_eq!(base, f.subject_hash(t, "default", "alice"));
        assert_ne!(base, f.subject_hash(Uuid::from_u128(2), "default", "alice"));
        assert_ne!(base, f.subject_hash(t, "okta", "alice"));
        assert_ne!(f.subject_hash(t, "ab", "c"), f.subject_hash(t, "a", "bc"));
    }
}
