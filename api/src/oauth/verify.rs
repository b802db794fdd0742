//! Recognising an access token when it is presented again (introspection, revocation), without
//! a server-side copy of it.
//!
//! A Tessera access token is a JWS signed with one of its tenant's keys, and it carries every
//! fact introspection answers with (RFC 9068 claims plus `tenant_id`). So a presented token is
//! verified, not looked up: its header must name an access token (`typ: at+jwt`) and a kid of
//! the tenant's ring that is not retired, with that key's algorithm; its signature must verify
//! under that key, and an ES256 one be in low-S form, the only one Tessera issues
//! ([`jws::is_low_s_es256`]: its high-S twin is the same token under another string, which
//! would be another entry of the cache); its `tenant_id` must be the tenant's and its `iss` the tenant's issuer path
//! (`.../t/{slug}`). The base URL in front of that path is deployment configuration, which may
//! change (and does, between test servers on port 0): the signature and `tenant_id` already
//! prove which tenant issued the token, and tokens that were known by their log entry used to
//! stay valid across such a change too. Whether the token is still active (expiry, revocation,
//! client, tenant, key) is not decided here but on every answer, by the caller.
//!
//! Verifying a signature costs tens of microseconds, far more than the rest of an
//! introspection, and resource servers introspect the same token over and over. So verified
//! tokens are kept in a [`TokenCache`] of fixed capacity, keyed by the SHA-256 of the compact
//! token, which the token endpoint also fills with each token it issues. A cache hit skips only
//! the signature: an entry is exactly what verifying that very string yielded. Parsed public
//! keys are kept per tenant and kid, for as long as the process runs: one per key of a tenant's
//! ring, since only kids found in the ring are parsed.
//!
//! # Memory
//! - [`TokenCache`]: at most [`TokenCache::CAPACITY`] tokens (about 350 bytes each, so about
//!   11 MiB when full), whatever the traffic.
//! - the public keys: one per signing key ever added to a tenant whose tokens were presented.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tessera_crypto::jws::{self, ACCESS_TOKEN_TYP};
use tessera_domain::tenant::{KeyStatus, Tenant, TenantKey};
use tessera_event_schemas::events::{PublicJwkV1, SigningAlg};
use tessera_event_schemas::{Hash32, Timestamp};
use uuid::Uuid;

/// What a valid access token says, as introspection answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub jti: Uuid,
    /// The space-separated scopes, as the token carries them.
    pub scope: String,
    pub audience: String,
    /// The key that signed it.
    pub kid: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// For a person's token (a code or refresh grant): who and how; `None` for a client's own.
    pub person: Option<Box<PersonFacts>>,
}

/// What a person's access token says about them (RFC 9068 §2.2 and ADR 0003): `sub` is the
/// user, with `auth_time`, `acr` and `sid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonFacts {
    pub user_id: Uuid,
    /// Seconds since the epoch, as the token carries it.
    pub auth_time: i64,
    pub acr: String,
    pub session_id: Uuid,
}

/// Verifies access tokens and remembers the ones it verified (see the module documentation).
#[derive(Default)]
pub struct Verifier {
    keys: RwLock<HashMap<(Uuid, String), Arc<PublicKey>>>,
    tokens: TokenCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

struct PublicKey {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    client_id: String,
    scope: String,
    jti: Uuid,
    iat: i64,
    exp: i64,
    tenant_id: Uuid,
    #[serde(default)]
    auth_time: Option<i64>,
    #[serde(default)]
    acr: Option<String>,
    #[serde(default)]
    sid: Option<Uuid>,
}

impl Claims {
    /// The person a token with `auth_time` and `sid` was issued for.
    fn person(&self) -> Option<Box<PersonFacts>> {
        Some(Box::new(PersonFacts {
            user_id: Uuid::parse_str(&self.sub).ok()?,
            auth_time: self.auth_time?,
            acr: self.acr.clone()?,
            session_id: self.sid?,
        }))
    }
}

impl Verifier {
    /// The token `token` is, if it is a genuine access token of `tenant`, whether or not it is
    /// still active; `token_hash` is its SHA-256 (`crypto::token_hash`).
    pub fn verify(
        &self,
        tenant: &Tenant,
        token: &str,
        token_hash: &Hash32,
    ) -> Option<Arc<VerifiedToken>> {
        if let Some(known) = self.tokens.get(token_hash) {
            return (known.tenant_id == tenant.id).then_some(known);
        }
        let verified = Arc::new(self.verify_signature(tenant, token)?);
        self.tokens.insert(*token_hash, verified.clone());
        Some(verified)
    }

    /// Remembers a token this process has just issued (and recorded), so that its first
    /// introspection needs no signature verification.
    pub fn remember(&self, token_hash: Hash32, token: VerifiedToken) {
        self.tokens.insert(token_hash, Arc::new(token));
    }

    /// Tokens held by the cache.
    pub fn cached_tokens(&self) -> usize {
        self.tokens.len()
    }

    fn verify_signature(&self, tenant: &Tenant, token: &str) -> Option<VerifiedToken> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return None;
        }
        let key = tenant.key(header.kid.as_deref()?)?;
        if key.status == KeyStatus::Retired {
            return None;
        }
        let public = self.public_key(tenant.id, key)?;
        if public.algorithm == Algorithm::ES256 {
            let (_, signature) = token.rsplit_once('.')?;
            let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
            if !jws::is_low_s_es256(&signature) {
                return None;
            }
        }
        let mut validation = Validation::new(public.algorithm);
        // Expiry is judged with the server's clock by the caller, on every answer; `exp` must
        // be there all the same.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &public.decoding, &validation)
            .ok()?
            .claims;
        let own_issuer = claims
            .iss
            .strip_suffix(&tenant.slug)
            .is_some_and(|base| base.ends_with("/t/"));
        if claims.tenant_id != tenant.id || !own_issuer {
            return None;
        }
        let person = claims.person();
        Some(VerifiedToken {
            person,
            tenant_id: claims.tenant_id,
            client_id: claims.client_id,
            jti: claims.jti,
            scope: claims.scope,
            audience: claims.aud,
            kid: key.kid.clone(),
            issued_at: Timestamp::from_micros(claims.iat.saturating_mul(1_000_000)),
            expires_at: Timestamp::from_micros(claims.exp.saturating_mul(1_000_000)),
        })
    }

    /// The parsed public half of `key`, parsed once per process.
    fn public_key(&self, tenant_id: Uuid, key: &TenantKey) -> Option<Arc<PublicKey>> {
        let parse = || {
            let (decoding, algorithm) = match (&key.public_jwk, key.alg) {
                (PublicJwkV1::Ec { x, y }, SigningAlg::ES256) => {
                    (DecodingKey::from_ec_components(x, y)?, Algorithm::ES256)
                }
                (PublicJwkV1::Okp { x }, SigningAlg::EdDSA) => {
                    (DecodingKey::from_ed_components(x)?, Algorithm::EdDSA)
                }
                (PublicJwkV1::Rsa { n, e }, SigningAlg::RS256) => {
                    (DecodingKey::from_rsa_components(n, e)?, Algorithm::RS256)
                }
                _ => return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into()),
            };
            Ok::<_, jsonwebtoken::errors::Error>(PublicKey {
                decoding,
                algorithm,
            })
        };
        once_per_key(&self.keys, (tenant_id, key.kid.clone()), parse).ok()
    }
}

/// The value `keys` holds for `key`, made by `make` the first time: how a tenant key is parsed
/// once per process, for signing and for verifying. A key `make` cannot parse is not kept.
pub(crate) fn once_per_key<V, E>(
    keys: &RwLock<HashMap<(Uuid, String), Arc<V>>>,
    key: (Uuid, String),
    make: impl FnOnce() -> Result<V, E>,
) -> Result<Arc<V>, E> {
    if let Some(found) = keys
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Ok(found.clone());
    }
    let made = Arc::new(make()?);
    keys.write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, made.clone());
    Ok(made)
}

/// Shards of the cache, so that concurrent introspections and issuances rarely meet on a lock.
const SHARDS: usize = 16;
/// Tokens per generation of a shard.
const GENERATION: usize = 1024;

/// Verified tokens by the SHA-256 of their compact form, at most [`TokenCache::CAPACITY`].
///
/// Each shard holds two generations: new entries go into the current one, and once it is full
/// it becomes the previous one, replacing (and dropping) the old previous one. So eviction costs
/// nothing per entry, a token stays at least one generation, and a token evicted while still in
/// use is simply verified (and cached) again. Keys are SHA-256 digests, which a client cannot
/// steer into one shard.
#[derive(Default)]
pub struct TokenCache {
    shards: [RwLock<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    current: HashMap<Hash32, Arc<VerifiedToken>>,
    previous: HashMap<Hash32, Arc<VerifiedToken>>,
}

impl TokenCache {
    /// The most tokens the cache holds.
    pub const CAPACITY: usize = SHARDS * GENERATION * 2;

    fn shard(&self, hash: &Hash32) -> &RwLock<Shard> {
        &self.shards[usize::from(hash.0[0]) % SHARDS]
    }

    pub fn get(&self, hash: &Hash32) -> Option<Arc<VerifiedToken>> {
        let shard = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .current
            .get(hash)
            .or_else(|| shard.previous.get(hash))
            .cloned()
    }

    pub fn insert(&self, hash: Hash32, token: Arc<VerifiedToken>) {
        let mut shard = self
            .shard(&hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let retired = if shard.current.len() >= GENERATION && !shard.current.contains_key(&hash) {
            let full = std::mem::replace(&mut shard.current, HashMap::with_capacity(GENERATION));
            Some(std::mem::replace(&mut shard.previous, full))
        } else {
            None
        };
        shard.current.insert(hash, token);
        drop(shard);
        // The old generation is freed outside the lock.
        drop(retired);
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
                shard.current.len() + shard.previous.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(n: u32) -> (Hash32, Arc<VerifiedToken>) {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&n.to_le_bytes());
        let token = VerifiedToken {
            tenant_id: Uuid::from_u128(1),
            client_id: "c".into(),
            jti: Uuid::from_u128(u128::from(n)),
            scope: String::new(),
            audience: "a".into(),
            kid: "k".into(),
            issued_at: Timestamp::from_micros(0),
            expires_at: Timestamp::from_micros(1),
            person: None,
        };
        (Hash32(hash), Arc::new(token))
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = TokenCache::default();
        for n in 0..(TokenCache::CAPACITY as u32 * 3) {
            let (hash, token) = token(n);
            cache.insert(hash, token);
            assert!(cache.len() <= TokenCache::CAPACITY);
        }
        assert!(cache.len() > TokenCache::CAPACITY / 2);
    }

    #[test]
    fn a_token_just_inserted_is_found_until_two_generations_pass_it() {
        let cache = TokenCache::default();
        let (hash, first) = token(0);
        cache.insert(hash, first.clone());
        assert_eq!(cache.get(&hash), Some(first.clone()));
        // Fill the same shard (first byte 0) with one generation: the first token moves to the
        // previous generation and is still found.
        for n in 1..=GENERATION as u32 {
            let (mut other, token) = token(n * 256 * SHARDS as u32);
            other.0[0] = 0;
            cache.insert(other, token);
        }
        assert_eq!(cache.get(&hash), Some(first));
    }

    #[test]
    fn inserting_a_known_token_again_does_not_start_a_generation() {
        let cache = TokenCache::default();
        for n in 0..GENERATION as u32 {
            let (mut hash, token) = token(n << 8);
            hash.0[0] = 3;
            cache.insert(hash, token);
        }
        let (mut hash, again) = token(0);
        hash.0[0] = 3;
        cache.insert(hash, again);
        let shard = cache.shard(&hash).read().unwrap();
        assert_eq!((shard.current.len(), shard.previous.len()), (GENERATION, 0));
    }
}
