//! Federation events (issue 19): a tenant's upstream identity providers and the sign-ins that
//! come through them.
//!
//! Streams: one identity provider per `{tenant}/identity-provider/{alias}` (seed 002's single
//! provider is the alias `default`); one federated sign-in per
//! `{tenant}/federated-sign-in/{state}`, whose first event is appended with expected version
//! "no stream", so that a state is used once however many servers receive it. The link of an
//! upstream identity to a user is a reservation (`federated-identity`, valued by the keyed hash
//! of tenant, alias and the upstream `sub`), claimed in the same append as the user's creation
//! or as the link's own event, so two first sign-ins of one person make one user.
//!
//! No address, name or upstream subject is recorded in clear: the sign-in events carry the
//! provider's alias, ids and reasons; the correlation id is the envelope's, as for every event.
//! The upstream client secret is sealed (AES-256-GCM under the platform's sealing sub-key)
//! before it is appended. Frozen schema versions; see the note in `tenant.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::Secret;

/// `federation.configured` v1: an identity provider set as a whole (first time or replaced).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationConfiguredV1 {
    /// Seed 002's kind: `entra_id`, `okta`, `auth0`, `mobilityguard` or `generic_oidc`.
    pub provider: String,
    /// What "Sign in with {display_name}" says on the hosted sign-in page.
    pub display_name: String,
    /// The externally reachable origin the upstream sends people back to.
    pub canonical_public_origin: String,
    /// The callback's path under that origin (default `/login/callback`).
    pub redirect_path: String,
    pub discovery_endpoint: Option<String>,
    /// The upstream's issuer, as its discovery document (or the configuration) named it; an
    /// Entra multi-tenant issuer keeps its `{tenantid}` template.
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub client_id: String,
    /// The upstream client secret, sealed (`nonce || ciphertext || tag`).
    pub client_secret: Secret<Vec<u8>>,
    pub scopes: Vec<String>,
    /// Email domains allowed to sign in, lower-cased; empty allows every domain.
    pub allowed_domains: Vec<String>,
    /// Our claim name to the upstream's (`email` → `preferred_email`).
    pub claims_mapping: BTreeMap<String, String>,
    /// Take the upstream's address as verified without an `email_verified` claim (Entra).
    pub trust_email: bool,
    /// The redirect URI this configuration replaced, still accepted until `previous_until`
    /// so that sign-ins in flight finish (`OIDC_REDIRECT_GRACE_PERIOD_SECONDS`).
    pub previous_redirect_uri: Option<String>,
    pub previous_until: Option<Timestamp>,
}

/// `federation.removed` v1: the provider is gone; its sign-ins in flight are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationRemovedV1 {}

/// `federation.signed_in` v1: the upstream vouched for a person, who is `user_id` here. A
/// session follows in the next append (as after an invitation's acceptance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationSignedInV1 {
    pub alias: String,
    pub user_id: Uuid,
    /// The sign-in provisioned the user just in time.
    pub created_user: bool,
}

/// `federation.linked` v1: an upstream identity now signs `user_id` in. Appended with the
/// reservation of `subject_hash` (the keyed hash of tenant, alias and upstream `sub`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationLinkedV1 {
    pub alias: String,
    pub user_id: Uuid,
    pub subject_hash: Secret<Hash32>,
}

/// `federation.link_requested` v1: the upstream's verified address belongs to an account that
/// no upstream identity is linked to; the person must sign in to it before the link is made.
/// The link is then made once, at this stream's version 1, for that user, from the browser
/// that came back from the upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationLinkRequestedV1 {
    pub alias: String,
    pub user_id: Uuid,
    /// The keyed hash of the upstream identity to link (as `federation.linked` records it).
    pub subject_hash: Secret<Hash32>,
    /// The keyed hash of the browser binding cookie of the sign-in.
    pub browser_hash: Secret<Hash32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FederationRefusal {
    // The address's domain is not among the provider's `allowed_domains`.
    EmailDomain,
    // The upstream did not say the address is verified, and the provider does not trust it.
    EmailUnverified,
    // The state was forged, expired, replayed, of another tenant or browser.
    BadState,
    // The upstream failed: unreachable, an error answer, a token that does not validate.
    Upstream,
    // The person's account here cannot sign in (disabled or erased).
    AccountUnusable,
}

/// `federation.refused` v1: a federated sign-in refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationRefusedV1 {
    pub alias: String,
    pub reason: FederationRefusal,
}
