//! What people grant applications (OpenID Connect): authorization codes, consents and
//! refresh-token families.
//!
//! Each thing that must happen once has a stream of its own, so that "once" is decided by the
//! stream's expected version, on every node sharing the log:
//! - `{tenant}/code/{code}`: an authorization code, issued at version 1 and redeemed by the one
//!   append that expects version 1; a second redemption finds version 2 and records the reuse.
//! - `{tenant}/consents/{user}`: the scopes a person allowed each client, and revocations.
//! - `{tenant}/refresh/{family}`: a refresh-token family, opened by a code exchange, rotated
//!   once per generation (the append that expects the version read), ended once.
//!
//! No secret is stored in clear: a code and a refresh token are kept as keyed hashes
//! ([`Secret`]). Payloads carry ids, scopes and times; personal data stays on the user's stream.
//! Frozen schema versions; see the note in `tenant.rs`. Enums may gain variants at the end.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::Secret;

/// `authorization_code.issued` v1: a code handed to a client through the person's browser.
/// Valid until `expires_at` (60 seconds), for one redemption by `client_id` with the same
/// `redirect_uri` and, when `code_challenge` is set, the PKCE verifier that hashes to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthorizationCodeIssuedV1 {
    /// Keyed hash (HMAC-SHA-256 under a sub-key of the master key) of the whole code.
    pub code_hash: Secret<Hash32>,
    pub client_id: String,
    pub user_id: Uuid,
    /// The session the person was signed in with (the ID token's `sid`).
    pub session_id: Uuid,
    /// As sent to the authorization endpoint; the token request must send it again, equal.
    pub redirect_uri: String,
    /// The scopes granted, in the order requested.
    pub scopes: Vec<String>,
    /// PKCE (RFC 7636): the S256 challenge, base64url; `None` when the client sent none.
    pub code_challenge: Option<String>,
    /// The OpenID Connect `nonce` to put in the ID token, as the client sent it.
    pub nonce: Option<String>,
    /// When the person authenticated, and how (`auth_time`, `amr`, `acr` of the ID token).
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    pub expires_at: Timestamp,
}

/// `authorization_code.redeemed` v1: the code was exchanged; `jti` is the access token issued
/// for it, `refresh_family` the refresh-token family it opened, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthorizationCodeRedeemedV1 {
    pub jti: Uuid,
    /// The access token's lifetime, so that its revocation can say when it expires.
    pub access_token_ttl_secs: u32,
    pub refresh_family: Option<Uuid>,
}

/// `authorization_code.reused` v1: a redeemed code was presented again (RFC 6749 §4.1.2). The
/// same append revokes what it was redeemed for (`token.revoked` for the access token,
/// `refresh_token.revoked` for the family).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthorizationCodeReusedV1 {}

/// `consent.granted` v1: the person allowed `client_id` these scopes, in addition to any
/// allowed before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConsentGrantedV1 {
    pub client_id: String,
    /// Only the scopes newly allowed.
    pub scopes: Vec<String>,
}

/// `consent.revoked` v1: the person (or an administrator) withdrew every scope allowed to
/// `client_id`. Refresh-token families of that client and person opened before it stop
/// working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConsentRevokedV1 {
    pub client_id: String,
}

/// `refresh_token.issued` v1: a refresh-token family opened, with its first token
/// (generation 0). The family is what a code exchange granted; every later token of it is a
/// rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefreshTokenIssuedV1 {
    pub client_id: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub scopes: Vec<String>,
    /// Granted with `offline_access`: the family outlives the session it was opened in.
    pub offline: bool,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    /// Keyed hash of the family's first token.
    pub token_hash: Secret<Hash32>,
    /// Absolute end of the family, whatever its use.
    pub expires_at: Timestamp,
    /// The family ends once unused for this long.
    pub idle_secs: u32,
}

/// `refresh_token.rotated` v1: the family's current token was exchanged; `generation` is the
/// new current token's, and the one before it stays usable for the grace period only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefreshTokenRotatedV1 {
    pub generation: u32,
    /// Keyed hash of the new current token.
    pub token_hash: Secret<Hash32>,
    /// The access token issued with it.
    pub jti: Uuid,
}

/// Why a refresh-token family ended before its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefreshRevocationReason {
    // The client revoked a token of the family (RFC 7009).
    Revoked,
    // A rotated-out token was presented again, outside the grace period.
    ReuseDetected,
    // The code that opened the family was presented again.
    CodeReused,
    // An administrator or the person ended it.
    Ended,
}

impl RefreshRevocationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshRevocationReason::Revoked => "revoked",
            RefreshRevocationReason::ReuseDetected => "reuse_detected",
            RefreshRevocationReason::CodeReused => "code_reused",
            RefreshRevocationReason::Ended => "ended",
        }
    }
}

/// `refresh_token.revoked` v1: every token of the family stopped working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefreshTokenRevokedV1 {
    pub reason: RefreshRevocationReason,
}
