//! Sign-in and session events: every attempt to sign in as a person, and the sessions a
//! successful one starts.
//!
//! All of one user's sign-ins and sessions live on one stream, `{tenant}/sessions/{user}`, so
//! that what must be decided once (a lockout after too many failures, the oldest session evicted
//! beyond the tenant's limit) is decided by that stream's expected version. An attempt for an
//! address that belongs to nobody is recorded on the tenant's `{tenant}/sign-ins` stream,
//! without any trace of the address typed (not even a keyed hash: it may be a typo of someone's
//! address, or the address of someone who is no user).
//!
//! Payloads carry ids, reasons and times only: the source address and user agent of an attempt
//! are the envelope's, and a session's cookie value is only ever stored as its keyed hash
//! ([`Secret`]). Frozen schema versions; see the note in `tenant.rs`. Enums may gain variants
//! at the end (phase 3 adds second factors).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::Secret;

// Enum variants carry plain comments: a doc comment would turn a schema's `enum` into a
// `oneOf`.

/// How a person proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    // An address and a password.
    Password,
}

/// Why a sign-in attempt failed. The person is always told the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignInFailure {
    // The password did not match (counts towards a lockout).
    WrongPassword,
    // No user of the tenant has this address (recorded on the tenant's sign-ins stream).
    UnknownAddress,
    // The user is disabled.
    Disabled,
    // Password sign-in is locked after too many failures.
    Locked,
    // The user has no password.
    NoPassword,
    // Too many attempts from this source for this address, or from this source at all.
    RateLimited,
}

impl SignInFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInFailure::WrongPassword => "wrong_password",
            SignInFailure::UnknownAddress => "unknown_address",
            SignInFailure::Disabled => "disabled",
            SignInFailure::Locked => "locked",
            SignInFailure::NoPassword => "no_password",
            SignInFailure::RateLimited => "rate_limited",
        }
    }
}

/// What a person must do before a verified sign-in becomes a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignInStep {
    // Choose a new password: the current one is temporary or past the policy's maximum age.
    ChangePassword,
    // Prove a second factor the user has (an authenticator app code, a recovery code).
    SecondFactor,
    // Set up a second factor: the tenant requires one and the user has none yet.
    EnrollSecondFactor,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    // The person signed out (of this session, or of another one from their account page).
    SignedOut,
    // An administrator ended it.
    Revoked,
    // A newer session pushed it past the tenant's `max_sessions_per_user`.
    Evicted,
    // It was idle for longer than the tenant's `session_timeout_minutes`.
    Expired,
    // The user was disabled.
    UserDisabled,
    // The user was erased.
    UserErased,
    // The person changed their own password (their other sessions end).
    PasswordChanged,
    // An administrator set the user's password.
    PasswordReset,
}

impl SessionEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEndReason::SignedOut => "signed_out",
            SessionEndReason::Revoked => "revoked",
            SessionEndReason::Evicted => "evicted",
            SessionEndReason::Expired => "expired",
            SessionEndReason::UserDisabled => "user_disabled",
            SessionEndReason::UserErased => "user_erased",
            SessionEndReason::PasswordChanged => "password_changed",
            SessionEndReason::PasswordReset => "password_reset",
        }
    }
}

/// `sign_in.succeeded` v1: the person proved who they are. With `session_id`, a session started
/// in the same append; with `pending_step`, none did yet (the person must first do that step).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignInSucceededV1 {
    pub method: SignInMethod,
    pub session_id: Option<Uuid>,
    pub pending_step: Option<SignInStep>,
    pub at: Timestamp,
}

/// `sign_in.failed` v1: an attempt that did not sign anyone in. On a user's stream it concerns
/// that user; on the tenant's sign-ins stream, an address no user has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignInFailedV1 {
    pub method: SignInMethod,
    pub reason: SignInFailure,
    pub at: Timestamp,
    /// Set when this failure locked password sign-in: until when.
    pub locked_until: Option<Timestamp>,
}

/// `sign_in.unlocked` v1: an administrator lifted a lockout (and forgot the failures counted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignInUnlockedV1 {}

/// `session.started` v1: a person is signed in, in one browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionStartedV1 {
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// HMAC-SHA-256, under a sub-key of the master key, of the cookie's 256-bit random value:
    /// how a presented cookie finds its session. The value itself is never stored.
    pub token_hash: Secret<Hash32>,
    /// Authentication methods (RFC 8176 names: `pwd`, ...), as an OpenID Connect `amr`.
    pub amr: Vec<String>,
    /// When the person authenticated (OpenID Connect's `auth_time`); also the session's start.
    pub auth_time: Timestamp,
}

/// When one session was last used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionSeenAtV1 {
    pub session_id: Uuid,
    pub last_seen_at: Timestamp,
}

/// `session.seen` v1: sessions of the user were used since the last such event. Recorded in
/// aggregate (one event per user and flush interval, not one per request), so that idle
/// timeouts survive a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionSeenV1 {
    pub sessions: Vec<SessionSeenAtV1>,
}

/// `session.ended` v1: the session's cookie no longer signs anyone in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionEndedV1 {
    pub session_id: Uuid,
    pub reason: SessionEndReason,
}
