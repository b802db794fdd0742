//! Invitation events: a person asked to join a tenant with roles, one stream per invitation
//! (`{tenant}/invitation/{invitation}`).
//!
//! An invitee has no user yet, so the invitation is a person of its own for sealing: its
//! address, name and message are sealed under a data key whose person id is the invitation's
//! id (`PersonalKeys::create(tenant, invitation_id)`), with the field names of [`fields`].
//! Revoking an invitation destroys that key; erasing the user who accepted it destroys it too.
//! The link's token is 256 random bits behind the invitation's id
//! (`tessera_crypto::links`); only its keyed hash is recorded, compared in constant time.
//! Acceptance is decided once by the stream's expected version: the append that accepts
//! expects the version the token was checked at, so a second acceptance, a resend or a
//! revocation in between makes it fail and retry against the new state.
//! Frozen schema versions; see the note in `tenant.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::{Personal, Secret};

/// The names an invitation's personal fields are sealed under (part of each value's AAD).
pub mod fields {
    pub const EMAIL: &str = "email";
    pub const NAME: &str = "name";
    pub const MESSAGE: &str = "message";
}

/// `invitation.created` v1: an invitation with its first link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvitationCreatedV1 {
    /// The address invited, sealed under the invitation's data key (field `email`).
    pub email: Personal<Vec<u8>>,
    /// The tenant's keyed hash of the normalised address, as `user.created` records it: finds
    /// the user who already has the address (who then signs in before accepting).
    pub email_hash: Secret<Hash32>,
    /// A display name for the invitee (seed 003's `admin_name`), sealed (field `name`).
    pub name: Personal<Option<Vec<u8>>>,
    /// The roles the invitee gets on acceptance.
    pub roles: Vec<String>,
    /// The inviter's note shown in the mail and on the page, sealed (field `message`).
    pub message: Personal<Option<Vec<u8>>>,
    /// Keyed hash of the link's token.
    pub token_hash: Secret<Hash32>,
    /// The link stops working at this time (default: 7 days after creation).
    pub expires_at: Timestamp,
}

/// `invitation.resent` v1: a new link; the previous one stops working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvitationResentV1 {
    pub token_hash: Secret<Hash32>,
    /// The new link's end: the resend time plus the invitation's original validity.
    pub expires_at: Timestamp,
}

/// `invitation.accepted` v1: terminal. The invitee became (or already was) `user_id` and got
/// the invitation's roles, in the same append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvitationAcceptedV1 {
    pub user_id: Uuid,
    /// Whether the acceptance created the user (`false`: an existing user signed in and
    /// gained the roles).
    pub created_user: bool,
}

/// `invitation.revoked` v1: terminal. The link stops working; the invitation's data key was
/// destroyed just before, so its address, name and message are unreadable from then on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvitationRevokedV1 {}
