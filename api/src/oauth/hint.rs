//! `id_token_hint`: an ID token this issuer signed earlier, presented back by a client (at the
//! authorization endpoint, and at logout) to say whom it expects to be signed in.
//!
//! The hint is verified with the tenant's published keys (RS256 or ES256, any key not
//! retired; ES256 in low-S form only, as every verifier of Tessera's tokens requires) and its
//! issuer; its expiry is ignored (OpenID Connect Core §3.1.2.1: an expired ID token is still a
//! good hint, and RP-Initiated Logout expects exactly that). Nothing else is trusted: the
//! caller compares `sub` (and `sid`) with the session it found.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tessera_crypto::jws;
use tessera_domain::tenant::{KeyStatus, Tenant};
use tessera_event_schemas::events::{PublicJwkV1, SigningAlg};

/// What a verified hint says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The user the token was issued for.
    pub sub: String,
    /// The session it was issued in, if it says.
    pub sid: Option<String>,
    /// The clients it was issued to.
    pub aud: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    sid: Option<String>,
}

/// The hint's claims, if `token` is an ID token of `tenant` signed by one of its keys that is
/// not retired and issued by `issuer`; `None` for anything else.
pub fn verify(tenant: &Tenant, issuer: &str, token: &str) -> Option<Hint> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = tenant.key(header.kid.as_deref()?)?;
    if key.status == KeyStatus::Retired {
        return None;
    }
    let (decoding, algorithm) = match (&key.public_jwk, key.alg) {
        (PublicJwkV1::Ec { x, y }, SigningAlg::ES256) => (
            DecodingKey::from_ec_components(x, y).ok()?,
            Algorithm::ES256,
        ),
        (PublicJwkV1::Rsa { n, e }, SigningAlg::RS256) => (
            DecodingKey::from_rsa_components(n, e).ok()?,
            Algorithm::RS256,
        ),
        _ => return None,
    };
    if header.alg != algorithm {
        return None;
    }
    if algorithm == Algorithm::ES256 {
        let (_, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !jws::is_low_s_es256(&signature) {
            return None;
        }
    }
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(token, &decoding, &validation)
        .ok()?
        .claims;
    if claims.iss != issuer {
        return None;
    }
    Some(Hint {
        sub: claims.sub,
        sid: claims.sid,
        aud: match claims.aud {
            Audience::One(one) => vec![one],
            Audience::Many(many) => many,
        },
    })
}
