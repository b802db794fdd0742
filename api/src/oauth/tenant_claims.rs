//! The tenant claims of issue 21 in tokens: seed 003's `Claims` (`tenant_id`, `tenant_slug`,
//! `plan`, `products`, `tenant_status`, and `org_roles` for people) in access tokens and ID
//! tokens, less what the client turned off (`oauth_client.token_claims_set`).
//!
//! Cheap by construction, since token issuance is a measured hot path: the tenant's slug, plan
//! and status are the directory's tenant, already in hand; its `products` are the registry's
//! precomputed list (one read lock and an `Arc` clone, recomputed only when an entitlement or
//! the catalog changes), asked with the token's time so that an entitlement past its expiry is
//! left out before the sweeper records it; the client's choice comes in the same lock.
//! An access token always keeps its `tenant_id` (RFC 9068 claims of Tessera's own, which the
//! verifier requires): a client's choice applies to it only in ID tokens.

use serde::ser::{Serialize, SerializeMap, Serializer};
use std::sync::Arc;
use tessera_domain::tenant::Tenant;
use tessera_event_schemas::Timestamp;
use tessera_projections::TenantProducts;

use crate::state::AppState;

const TENANT_ID: u8 = 1;
const TENANT_SLUG: u8 = 1 << 1;
const PLAN: u8 = 1 << 2;
const PRODUCTS: u8 = 1 << 3;
const TENANT_STATUS: u8 = 1 << 4;
const ORG_ROLES: u8 = 1 << 5;

/// The tenant claims one token carries; serialized flattened into the token's claims.
pub struct TenantClaims<'a> {
    tenant: &'a Tenant,
    products: Arc<TenantProducts>,
    mask: u8,
    now: Timestamp,
    /// A person's roles (people's tokens only).
    roles: Option<&'a [String]>,
    /// Whether `tenant_id` is written here (ID tokens) or by the token itself (access tokens).
    with_tenant_id: bool,
}

impl<'a> TenantClaims<'a> {
    /// The claims of `tenant`'s tokens for `client_id`, at `now`.
    pub fn new(state: &AppState, tenant: &'a Tenant, client_id: &str, now: Timestamp) -> Self {
        let (products, mask) = state.registry.for_token(tenant.id, client_id);
        Self {
            tenant,
            products,
            mask,
            now,
            roles: None,
            with_tenant_id: false,
        }
    }

    /// The same claims for a person with these roles.
    pub fn with_roles(mut self, roles: &'a [String]) -> Self {
        self.roles = Some(roles);
        self
    }

    /// The same claims as an ID token carries them, `tenant_id` included when chosen.
    pub fn for_id_token(&self) -> TenantClaims<'a> {
        TenantClaims {
            tenant: self.tenant,
            products: self.products.clone(),
            mask: self.mask,
            now: self.now,
            roles: self.roles,
            with_tenant_id: true,
        }
    }

    fn has(&self, claim: u8) -> bool {
        self.mask & claim != 0
    }
}

/// A tenant's `products` at a time, as a JSON array of keys.
struct Products<'a>(&'a TenantProducts, Timestamp);

impl Serialize for Products<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.at(self.1))
    }
}

impl Serialize for TenantClaims<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if self.with_tenant_id && self.has(TENANT_ID) {
            map.serialize_entry("tenant_id", &self.tenant.id)?;
        }
        if self.has(TENANT_SLUG) {
            map.serialize_entry("tenant_slug", &self.tenant.slug)?;
        }
        if self.has(PLAN) {
            map.serialize_entry("plan", &self.tenant.plan)?;
        }
        if self.has(PRODUCTS) {
            map.serialize_entry("products", &Products(&self.products, self.now))?;
        }
        if self.has(TENANT_STATUS) {
            map.serialize_entry("tenant_status", self.tenant.status.as_str())?;
        }
        if let Some(roles) = self.roles.filter(|_| self.has(ORG_ROLES)) {
            map.serialize_entry("org_roles", roles)?;
        }
        map.end()
    }
}
