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

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tessera_crypto::{Crypto, MasterKey};
    use tessera_domain::Aggregate;
    use tessera_domain::tenant::TenantState;
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::{Event, Timestamp};

    use super::*;

    const ISSUER: &str = "https://id.example/t/acme-corp";

    /// The sample tenant with a fresh key of `alg`, and a signer with that key.
    fn tenant_and_signer(alg: SigningAlg) -> (Tenant, tessera_crypto::JwsSigner) {
        let crypto = Crypto::new(&MasterKey::from_bytes([7; 32])).unwrap();
        let Some(Event::TenantCreated(mut created)) = samples::current().into_iter().next() else {
            panic!("the first sample is a tenant");
        };
        let key = crypto
            .generate_signing_key(
                alg,
                created.tenant_id,
                "k-hint".into(),
                Timestamp::from_micros(0),
            )
            .unwrap();
        created.signing_key = key.clone();
        let signer = crypto
            .token_signer(created.tenant_id, &key.kid, alg, &key.sealed_private_key)
            .unwrap();
        let state = TenantState::replay(&[Event::TenantCreated(created)]);
        (state.tenant.unwrap(), signer)
    }

    fn claims(iss: &str) -> serde_json::Value {
        // Expired an hour after the epoch: a hint's expiry is ignored.
        json!({"iss": iss, "sub": "user-1", "aud": "photos", "sid": "s-1", "exp": 3600, "iat": 0})
    }

    #[test]
    fn an_expired_hint_signed_with_the_tenants_key_verifies() {
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let (tenant, signer) = tenant_and_signer(alg);
            let token = signer.sign(&claims(ISSUER)).unwrap();
            let hint = verify(&tenant, ISSUER, &token).unwrap();
            assert_eq!(hint.sub, "user-1");
            assert_eq!(hint.sid.as_deref(), Some("s-1"));
            assert_eq!(hint.aud, vec!["photos"]);
        }
    }

    #[test]
    fn a_hint_of_another_issuer_key_or_content_does_not_verify() {
        let (tenant, signer) = tenant_and_signer(SigningAlg::ES256);
        let other_issuer = signer.sign(&claims("https://id.example/t/other")).unwrap();
        assert_eq!(verify(&tenant, ISSUER, &other_issuer), None);

        let (_, stranger) = tenant_and_signer(SigningAlg::ES256);
        let foreign = stranger.sign(&claims(ISSUER)).unwrap();
        assert_eq!(
            verify(&tenant, ISSUER, &foreign),
            None,
            "same kid, another key"
        );

        let token = signer.sign(&claims(ISSUER)).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let changed = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"iss": ISSUER, "sub": "user-2", "aud": "photos"})).unwrap(),
        );
        parts[1] = &changed;
        assert_eq!(verify(&tenant, ISSUER, &parts.join(".")), None);
        assert_eq!(verify(&tenant, ISSUER, "not a token"), None);
    }
}
