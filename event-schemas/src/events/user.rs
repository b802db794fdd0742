//! User events: the people of a tenant (one stream per user, `{tenant}/user/{user}`).
//!
//! Personal data never enters these events in clear: an email address and names are sealed
//! (AES-256-GCM, `nonce || ciphertext || tag`) under the user's own data key, which lives
//! outside the log and is destroyed when the user is erased, and they are typed
//! [`Personal`] so that no public form (audit summary, Kafka message, JSON Schema) carries even
//! the ciphertext. The keyed hash of the normalised address (uniqueness, exact lookups) and the
//! password hash are [`Secret`]. Frozen schema versions; see the note in `tenant.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::{Personal, Secret};

/// The names personal fields are sealed under: part of each value's AAD, so that a sealed
/// value copied into another field does not open.
pub mod fields {
    pub const EMAIL: &str = "email";
    pub const NAME: &str = "name";
    pub const GIVEN_NAME: &str = "given_name";
    pub const FAMILY_NAME: &str = "family_name";
}

/// `user.created` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserCreatedV1 {
    pub user_id: Uuid,
    /// The address as entered, sealed under the user's data key (field `email`).
    pub email: Personal<Vec<u8>>,
    /// HMAC-SHA-256, under a sub-key of the master key, of the tenant id and the trimmed,
    /// lower-cased address: the key of its uniqueness reservation.
    pub email_hash: Secret<Hash32>,
    pub email_verified: bool,
    /// Sealed (fields `name`, `given_name`, `family_name`); `None` when not given.
    pub name: Personal<Option<Vec<u8>>>,
    pub given_name: Personal<Option<Vec<u8>>>,
    pub family_name: Personal<Option<Vec<u8>>>,
    pub roles: Vec<String>,
}

/// `user.updated` v1: the names and roles as they now are. A name that did not change carries
/// its previous ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserUpdatedV1 {
    pub name: Personal<Option<Vec<u8>>>,
    pub given_name: Personal<Option<Vec<u8>>>,
    pub family_name: Personal<Option<Vec<u8>>>,
    pub roles: Vec<String>,
}

/// `user.email_changed` v1: a new address, which is unverified from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserEmailChangedV1 {
    pub email: Personal<Vec<u8>>,
    pub email_hash: Secret<Hash32>,
}

/// `user.disabled` v1: the user can no longer sign in; their sessions end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserDisabledV1 {}

/// `user.enabled` v1: lifts `user.disabled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserEnabledV1 {}

/// `user.password_set` v1: a new password, set by an administrator or by the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserPasswordSetV1 {
    /// The Argon2id PHC string (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`).
    pub password_hash: Secret<String>,
    /// The user must choose another password at their next sign-in.
    pub temporary: bool,
    /// When it was set: the start of its maximum age.
    pub set_at: Timestamp,
}

/// `user.erased` v1: terminal. The user's data key was destroyed just before this event, so
/// every personal value sealed in their events is unreadable; the email reservation is released
/// in the same append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserErasedV1 {}

/// `user.password_reset_requested` v1: a "forgot password" link was sent. The link works once,
/// until `expires_at` (30 minutes), and only while it is the user's latest reset link and no
/// password was set since: using it appends `user.password_set` (and the end of the user's
/// sessions) expecting the version it was checked at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserPasswordResetRequestedV1 {
    /// The link token's id (its first 16 bytes, `tessera_crypto::links`).
    pub link_id: Uuid,
    /// Keyed hash of the link's token.
    pub token_hash: Secret<Hash32>,
    pub expires_at: Timestamp,
}

/// `user.email_verification_requested` v1: a link that verifies the user's current address
/// was sent. It works once, until `expires_at`, and only for the address it was sent to (a
/// later `user.email_changed` voids it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserEmailVerificationRequestedV1 {
    pub link_id: Uuid,
    pub token_hash: Secret<Hash32>,
    pub expires_at: Timestamp,
}

/// `user.email_verified` v1: the user's current address is verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserEmailVerifiedV1 {
    /// The verification link followed; `None` when verified otherwise (an invitation accepted
    /// through a link sent to the address proves it too).
    pub link_id: Option<Uuid>,
}
