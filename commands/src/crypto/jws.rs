//! Compact JWS (RFC 7515) signing of access tokens with a tenant's key.
//!
//! A [`JwsSigner`] holds one tenant key, unsealed and parsed once, and signs any number of
//! tokens with it. `jsonwebtoken::encode` would re-parse (and re-validate) the PKCS#8 key on
//! every call, which costs as much as the signature itself on the token endpoint's hot path;
//! the compact serialization is three base64url parts and a dot between each, so it is built
//! here directly on aws-lc-rs. Verification stays with `jsonwebtoken` (and any JOSE library).

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use tessera_event_schemas::events::SigningAlg;

use super::CryptoError;

/// The JOSE `typ` of an OAuth 2.0 access token in JWT form (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

enum Key {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// One parsed signing key and the protected header that goes with it.
pub struct JwsSigner {
    kid: String,
    alg: SigningAlg,
    key: Key,
    /// base64url of `{"alg":..,"typ":"at+jwt","kid":..}`, the same for every token.
    header_b64: String,
    rng: SystemRandom,
}

impl fmt::Debug for JwsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwsSigner")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

impl JwsSigner {
    /// Parses a PKCS#8 v1 private key of `alg`.
    pub fn new(alg: SigningAlg, kid: &str, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let key = match alg {
            SigningAlg::ES256 => Key::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| CryptoError::Failed("parsing a P-256 private key"))?,
            ),
            SigningAlg::EdDSA => Key::EdDsa(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                    .map_err(|_| CryptoError::Failed("parsing an Ed25519 private key"))?,
            ),
            SigningAlg::RS256 => Key::Rs256(
                RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|_| CryptoError::Failed("parsing an RSA private key"))?,
            ),
        };
        let header = serde_json::to_vec(&Header {
            alg: alg.as_str(),
            typ: ACCESS_TOKEN_TYP,
            kid,
        })
        .map_err(|_| CryptoError::Failed("encoding a JWS header"))?;
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            key,
            header_b64: URL_SAFE_NO_PAD.encode(header),
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// `header.claims.signature`, each part base64url without padding.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, CryptoError> {
        let claims =
            serde_json::to_vec(claims).map_err(|_| CryptoError::Failed("encoding JWT claims"))?;
        let mut token = String::with_capacity(self.header_b64.len() + claims.len() * 4 / 3 + 400);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.signature(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn signature(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.key {
            Key::Es256(pair) => pair
                .sign(&self.rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| CryptoError::Failed("ES256 signing")),
            Key::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Key::Rs256(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
                    .map_err(|_| CryptoError::Failed("RS256 signing"))?;
                Ok(signature)
            }
        }
    }
}
