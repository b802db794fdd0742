//! The tenant registry's commercial events (issue 21, ADR 0005): the product catalog, each
//! tenant's entitlements and trials, requests for products, and a client's choice of the
//! tenant claims its tokens carry.
//!
//! Streams: a product on `{system}/product/{key}` (its key is unique by its stream); a
//! tenant's entitlement to one product on `{tenant}/entitlement/{product}`, where "one trial
//! per tenant and product" and "expired once" are decided by the expected version; a
//! client's claims choice on its own stream, `{tenant}/oauth-client/{client_id}`. The product
//! key is the stream's and is not repeated in payloads.
//! Frozen schema versions; see the note in `tenant.rs`. Enums may gain variants at the end.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::primitives::Timestamp;

/// `product.defined` v1: a product enters the catalog (first time, or again after its
/// removal), with every field of seed 003's `CatalogEntry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductDefinedV1 {
    pub name: String,
    pub description: String,
    /// The plans a tenant must be on to start a trial; empty: any plan.
    pub plans_required: Vec<String>,
    pub demo_url: Option<String>,
    pub supports_trial: bool,
}

/// `product.updated` v1: a product's entry replaced as a whole (`PUT /v1/catalog/{key}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductUpdatedV1 {
    pub name: String,
    pub description: String,
    pub plans_required: Vec<String>,
    pub demo_url: Option<String>,
    pub supports_trial: bool,
}

/// `product.removed` v1: the product leaves the catalog. No token issued after it carries the
/// product, whatever tenants' entitlements say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductRemovedV1 {}

/// `product.requested` v1: a tenant asked for a product, for sales to follow up. A fact on
/// the entitlement's stream, appended with expected version "any".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductRequestedV1 {
    /// Who asked, as the caller said (seed 003 has no field for it; optional).
    pub requested_by: Option<String>,
}

/// `entitlement.granted` v1: the tenant's entitlement to the stream's product set as a whole
/// (`PUT /v1/tenants/{id}/entitlements/{product}`): first grant or change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EntitlementGrantedV1 {
    pub enabled: bool,
    /// The product's configuration for this tenant, a JSON object as text (postcard cannot
    /// hold arbitrary JSON).
    pub config_json: String,
    /// When it ends on its own (`entitlement.expired`); none: until revoked.
    pub expires_at: Option<Timestamp>,
}

/// `entitlement.trial_started` v1: a self-served trial: enabled, empty configuration, ending
/// at `expires_at` (14 days after it started). Appended once per tenant and product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EntitlementTrialStartedV1 {
    pub expires_at: Timestamp,
}

/// `entitlement.revoked` v1: the entitlement ends now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EntitlementRevokedV1 {}

/// `entitlement.expired` v1: the entitlement reached its `expires_at` (appended by the expiry
/// sweeper once, expecting the version that set that expiry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EntitlementExpiredV1 {
    /// The expiry that was reached.
    pub expires_at: Timestamp,
}

/// Which tenant claims a client's tokens carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantClaimsChoice {
    /// Every tenant claim (the default of a client that never chose).
    All,
    /// None: the tokens are as before issue 21.
    Off,
    /// Only these claim names (`tenant_id`, `tenant_slug`, `plan`, `products`,
    /// `tenant_status`, `org_roles`).
    Only(Vec<String>),
}

/// `oauth_client.token_claims_set` v1: the client's choice of tenant claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OAuthClientTokenClaimsSetV1 {
    pub tenant_claims: TenantClaimsChoice,
}
