//! Reservation events: unique names (tenant slugs and domains, platform-wide; users' email
//! addresses, per tenant, as keyed hashes).
//!
//! A reservation stream's first event is appended with expected version "no stream" in the same
//! atomic append as the owner's event, so uniqueness is decided on the write side.
//! Frozen schema versions; see the note in `tenant.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationKind {
    TenantSlug,
    TenantDomain,
    // A user's email address within a tenant: the value is the hex of its keyed hash
    // (`user.created`'s `email_hash`), never the address, and the hash covers the tenant id.
    // (A plain comment: a doc comment would turn the schema's `enum` into a `oneOf`.)
    UserEmail,
    // An upstream identity linked to a user (issue 19): the value is the hex of the keyed hash
    // of the tenant, the provider's alias and the upstream `sub`.
    FederatedIdentity,
}

impl ReservationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationKind::TenantSlug => "tenant-slug",
            ReservationKind::TenantDomain => "tenant-domain",
            ReservationKind::UserEmail => "user-email",
            ReservationKind::FederatedIdentity => "federated-identity",
        }
    }
}

/// `reservation.claimed` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationClaimedV1 {
    pub kind: ReservationKind,
    pub value: String,
    pub owner: Uuid,
}

/// `reservation.released` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationReleasedV1 {
    pub owner: Uuid,
}
