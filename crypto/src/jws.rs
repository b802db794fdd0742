//! Compact JWS (RFC 7515) signing of access tokens with a tenant's key.
//!
//! A [`JwsSigner`] holds one tenant key, unsealed and parsed once, and signs any number of
//! tokens with it. `jsonwebtoken::encode` would re-parse (and re-validate) the PKCS#8 key on
//! every call, which costs as much as the signature itself on the token endpoint's hot path;
//! the compact serialization is three base64url parts and a dot between each, so it is built
//! here directly on aws-lc-rs. Verification stays with `jsonwebtoken` (and any JOSE library).
//!
//! ES256 signatures are issued in low-S form only (see [`is_low_s_es256`]): an ECDSA signature
//! `(r, s)` stays valid as `(r, n - s)`, so without a canonical form one token would have two
//! strings that both verify, and anything keyed on the token string (the directory's index,
//! a cache, an allow-list) would see them as two tokens.

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
        self.sign_with_header(&self.header_b64, claims)
    }

    /// Like [`JwsSigner::sign`], with another JOSE `typ` than an access token's: an ID token's
    /// `JWT`, a logout token's `logout+jwt`. A token of one kind then never verifies as
    /// another (an ID token presented as an access token is refused for its `typ`).
    pub fn sign_with_typ<C: Serialize>(
        &self,
        typ: &str,
        claims: &C,
    ) -> Result<String, CryptoError> {
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            typ,
            kid: &self.kid,
        })
        .map_err(|_| CryptoError::Failed("encoding a JWS header"))?;
        self.sign_with_header(&URL_SAFE_NO_PAD.encode(header), claims)
    }

    fn sign_with_header<C: Serialize>(
        &self,
        header_b64: &str,
        claims: &C,
    ) -> Result<String, CryptoError> {
        let claims =
            serde_json::to_vec(claims).map_err(|_| CryptoError::Failed("encoding JWT claims"))?;
        let mut token = String::with_capacity(header_b64.len() + claims.len() * 4 / 3 + 400);
        token.push_str(header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.signature(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn signature(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.key {
            Key::Es256(pair) => {
                let mut signature = pair
                    .sign(&self.rng, message)
                    .map(|sig| sig.as_ref().to_vec())
                    .map_err(|_| CryptoError::Failed("ES256 signing"))?;
                to_low_s_es256(&mut signature)?;
                Ok(signature)
            }
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

/// `at_hash` (OpenID Connect Core §3.1.3.6): the base64url of the left half of the hash of
/// the access token's ASCII octets, with the hash of the ID token's `alg` (SHA-256 for RS256
/// and ES256; SHA-512 for EdDSA with Ed25519, as OpenID Connect's registry of `alg` values
/// pairs it).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let algorithm = match alg {
        SigningAlg::ES256 | SigningAlg::RS256 => &aws_lc_rs::digest::SHA256,
        SigningAlg::EdDSA => &aws_lc_rs::digest::SHA512,
    };
    let hash = aws_lc_rs::digest::digest(algorithm, access_token.as_bytes());
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// The order `n` of the P-256 group, big-endian (SEC 2 v2 section 2.4.2, FIPS 186-4 D.1.2.3).
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `floor(n / 2)` for the P-256 order `n`: the largest `s` of a low-S signature.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether a JWS ES256 signature (`r || s`, 32 bytes each, RFC 7518 section 3.4) is in low-S
/// form: `0 < s <= n/2`.
///
/// ECDSA signatures are malleable: if `(r, s)` verifies (SEC 1 v2 section 4.1.4), so does
/// `(r, n - s)`. Bitcoin made the smaller of the two the only valid one (BIP 62, BIP 146
/// "LOW_S"); Tessera does the same for its access tokens, issuing only low-S signatures and
/// refusing high-S ones wherever it verifies a token, so that every token has exactly one
/// string. Anything but 64 bytes is not a P-256 JWS signature and is refused as well.
pub fn is_low_s_es256(signature: &[u8]) -> bool {
    match signature.get(32..64) {
        Some(s) if signature.len() == 64 => {
            s.iter().any(|&byte| byte != 0) && s <= P256_HALF_ORDER.as_slice()
        }
        _ => false,
    }
}

/// Replaces `s` by `n - s` when `s > n/2`, which keeps the signature valid (see
/// [`is_low_s_es256`]).
fn to_low_s_es256(signature: &mut [u8]) -> Result<(), CryptoError> {
    let s = signature
        .get_mut(32..64)
        .filter(|s| s.len() == 32)
        .ok_or(CryptoError::Failed(
            "ES256 signing: unexpected signature length",
        ))?;
    if *s > P256_HALF_ORDER[..] {
        // Big-endian subtraction n - s with borrow; s < n, so it does not underflow.
        let mut borrow = false;
        for (byte, order) in s.iter_mut().zip(P256_ORDER).rev() {
            let (difference, under) = order.overflowing_sub(*byte);
            let (difference, under_again) = difference.overflowing_sub(u8::from(borrow));
            *byte = difference;
            borrow = under || under_again;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `s` as a 64-byte signature with `r = 1`.
    fn with_s(s: [u8; 32]) -> Vec<u8> {
        let mut signature = vec![0; 31];
        signature.push(1);
        signature.extend_from_slice(&s);
        signature
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_algs_hash() {
        // OpenID Connect Core §A.3's access token and its at_hash (RS256).
        assert_eq!(
            at_hash(
                SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlg::EdDSA, "t").len(), 43);
    }

    #[test]
    fn half_the_order_is_the_largest_low_s() {
        assert!(is_low_s_es256(&with_s(P256_HALF_ORDER)));
        let mut above = P256_HALF_ORDER;
        above[31] += 1;
        assert!(!is_low_s_es256(&with_s(above)));
        assert!(!is_low_s_es256(&with_s([0; 32])), "s = 0 is never valid");
        assert!(!is_low_s_es256(&[0; 63]));
        assert!(!is_low_s_es256(&[1; 65]));
    }

    #[test]
    fn a_high_s_becomes_n_minus_s_and_a_low_s_stays() {
        // n - 1 (the largest s) becomes 1; n/2 + 1 becomes n/2 (n is odd).
        let mut largest = P256_ORDER;
        largest[31] -= 1;
        let mut signature = with_s(largest);
        to_low_s_es256(&mut signature).unwrap();
        let mut one = [0; 32];
        one[31] = 1;
        assert_eq!(signature[32..], one);
        let mut above_half = P256_HALF_ORDER;
        above_half[31] += 1;
        let mut signature = with_s(above_half);
        to_low_s_es256(&mut signature).unwrap();
        assert_eq!(signature[32..], P256_HALF_ORDER);
        let mut low = with_s(P256_HALF_ORDER);
        to_low_s_es256(&mut low).unwrap();
        assert_eq!(low[32..], P256_HALF_ORDER);
    }
}
