//! The secrets of OpenID Connect grants: authorization codes and refresh tokens.
//!
//! - A **code** is `base64url(code_id ‖ 32 random bytes)`: its first 16 bytes name its stream
//!   (`{tenant}/code/{code_id}`), the rest make it unguessable (256 bits). The log keeps only its
//!   keyed hash, compared in constant time.
//! - A **refresh token** is `trt_` and `base64url(family_id ‖ generation ‖ tag)`, where `tag` is
//!   HMAC-SHA-256, under a sub-key of the master key, of the tenant, the family and the
//!   generation. It names its family's stream and its generation, and only the server can make
//!   one. Because the server can make the family's current token again, a client that presents
//!   the token just rotated out, within the grace period, gets the current one back (the grace
//!   answer, "from the same family") instead of a second live successor. The log keeps each
//!   token's keyed hash (under another sub-key), which the family's rotation rules compare.

use aws_lc_rs::{hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_event_schemas::Hash32;
use uuid::Uuid;

use crate::CryptoError;

/// Refresh tokens start with this, so that secret scanners and people can tell them apart.
pub const REFRESH_TOKEN_PREFIX: &str = "trt_";

const CODE_RANDOM_BYTES: usize = 32;
const TAG_BYTES: usize = 32;

/// The keys of grant secrets, derived from the master key by [`crate::Crypto`].
pub struct GrantSecrets {
    pub(crate) code_hash: hmac::Key,
    pub(crate) refresh_hash: hmac::Key,
    pub(crate) refresh_tag: hmac::Key,
}

/// A refresh token's parts, once its tag verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshTokenId {
    pub family_id: Uuid,
    pub generation: u32,
}

impl GrantSecrets {
    /// A new authorization code for the stream of `code_id`.
    pub fn new_code(&self, code_id: Uuid) -> Result<String, CryptoError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 16 + CODE_RANDOM_BYTES]);
        bytes[..16].copy_from_slice(code_id.as_bytes());
        rand::fill(&mut bytes[16..]).map_err(|_| CryptoError::Failed("random generation"))?;
        Ok(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
    }

    /// The id a code names, if it has a code's shape. Says nothing about whether it is valid.
    pub fn code_id(code: &str) -> Option<Uuid> {
        let bytes = URL_SAFE_NO_PAD.decode(code).ok()?;
        if bytes.len() != 16 + CODE_RANDOM_BYTES {
            return None;
        }
        Uuid::from_slice(&bytes[..16]).ok()
    }

    /// The keyed hash of a code, as `authorization_code.issued` records it.
    pub fn code_hash(&self, code: &str) -> Hash32 {
        keyed(&self.code_hash, code)
    }

    /// Whether `code` is the one hashed to `hash`, in constant time.
    pub fn verify_code(&self, code: &str, hash: &Hash32) -> bool {
        hmac::verify(&self.code_hash, code.as_bytes(), &hash.0).is_ok()
    }

    /// The refresh token of `family_id`'s `generation` in `tenant_id`: the same every time.
    pub fn refresh_token(&self, tenant_id: Uuid, family_id: Uuid, generation: u32) -> String {
        let tag = self.tag(tenant_id, family_id, generation);
        let mut bytes = Vec::with_capacity(16 + 4 + TAG_BYTES);
        bytes.extend_from_slice(family_id.as_bytes());
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.extend_from_slice(tag.as_ref());
        format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The family and generation of a refresh token this server made for `tenant_id`; `None`
    /// for anything else (a token of another tenant, a forged or mangled one). The tag is
    /// compared in constant time.
    pub fn parse_refresh_token(&self, tenant_id: Uuid, token: &str) -> Option<RefreshTokenId> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.strip_prefix(REFRESH_TOKEN_PREFIX)?)
            .ok()?;
        if bytes.len() != 16 + 4 + TAG_BYTES {
            return None;
        }
        let family_id = Uuid::from_slice(&bytes[..16]).ok()?;
        let generation = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
        let mut message = [0u8; 16 + 16 + 4];
        message[..16].copy_from_slice(tenant_id.as_bytes());
        message[16..].copy_from_slice(&bytes[..20]);
        hmac::verify(&self.refresh_tag, &message, &bytes[20..])
            .is_ok()
            .then_some(RefreshTokenId {
                family_id,
                generation,
            })
    }

    /// The keyed hash of a refresh token, as `refresh_token.issued` and `.rotated` record it.
    pub fn refresh_token_hash(&self, token: &str) -> Hash32 {
        keyed(&self.refresh_hash, token)
    }

    /// Whether `token` is the one hashed to `hash`, in constant time.
    pub fn verify_refresh_token(&self, token: &str, hash: &Hash32) -> bool {
        hmac::verify(&self.refresh_hash, token.as_bytes(), &hash.0).is_ok()
    }

    fn tag(&self, tenant_id: Uuid, family_id: Uuid, generation: u32) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.refresh_tag);
        context.update(tenant_id.as_bytes());
        context.update(family_id.as_bytes());
        context.update(&generation.to_be_bytes());
        context.sign()
    }
}

/// The S256 transform of a PKCE code verifier: `base64url(SHA-256(verifier))`, without
/// padding (RFC 7636 §4.2), to compare with the challenge sent to the authorization endpoint.
pub fn pkce_s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn keyed(key: &hmac::Key, value: &str) -> Hash32 {
    Hash32::from_slice(hmac::sign(key, value.as_bytes()).as_ref()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Crypto, MasterKey};

    fn crypto_of(seed: u8) -> Crypto {
        Crypto::new(&MasterKey::from_bytes([seed; 32])).unwrap()
    }

    #[test]
    fn a_code_names_its_stream_and_only_its_hash_verifies_it() {
        let crypto = crypto_of(1);
        let grants = crypto.grants();
        let id = Uuid::from_u128(0xc0de);
        let code = grants.new_code(id).unwrap();
        assert_eq!(code.len(), 64);
        assert_eq!(GrantSecrets::code_id(&code), Some(id));
        let hash = grants.code_hash(&code);
        assert!(grants.verify_code(&code, &hash));
        let other = grants.new_code(id).unwrap();
        assert_ne!(other, code, "256 random bits follow the id");
        assert!(!grants.verify_code(&other, &hash));
        assert_eq!(GrantSecrets::code_id("short"), None);
    }

    #[test]
    fn the_s256_transform_is_rfc_7636s() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_refresh_token_is_made_again_the_same_and_verifies_only_for_its_tenant() {
        let crypto = crypto_of(1);
        let grants = crypto.grants();
        let (tenant, family) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let token = grants.refresh_token(tenant, family, 7);
        assert!(token.starts_with(REFRESH_TOKEN_PREFIX));
        assert_eq!(token, grants.refresh_token(tenant, family, 7));
        assert_ne!(token, grants.refresh_token(tenant, family, 8));
        assert_eq!(
            grants.parse_refresh_token(tenant, &token),
            Some(RefreshTokenId {
                family_id: family,
                generation: 7
            })
        );
        assert_eq!(grants.parse_refresh_token(Uuid::from_u128(3), &token), None);
        // Another master key's server made none of these.
        assert_eq!(
            crypto_of(2).grants().parse_refresh_token(tenant, &token),
            None
        );
        // A generation changed by hand no longer carries a valid tag.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token[4..]).unwrap();
        bytes[19] ^= 1;
        let forged = format!("trt_{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(grants.parse_refresh_token(tenant, &forged), None);
        let hash = grants.refresh_token_hash(&token);
        assert!(grants.verify_refresh_token(&token, &hash));
        assert!(!grants.verify_refresh_token(&forged, &hash));
    }
}
