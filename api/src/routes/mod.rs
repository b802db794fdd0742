//! HTTP routes, one module per resource. Each handler's doc names the permission it needs, and
//! the permission check is its first extractor ([`PlatformAdmin`](crate::auth::PlatformAdmin),
//! [`TenantAdmin`](crate::auth::TenantAdmin)), or its first statement where the permission
//! depends on the query: either way it comes before the body is read, so that a caller
//! without the right cannot learn a route's schema from its validation errors.

pub mod api_keys;
pub mod audit;
pub mod catalog;
pub mod claims;
pub mod clients;
pub mod connect;
pub mod consents;
pub mod credential_refresh;
pub mod credentials;
pub mod entitlements;
pub mod federation;
pub mod federation_auth;
pub mod health;
pub mod integrations;
pub mod invitations;
pub mod mfa;
pub mod provider_keys;
pub mod seed_aliases;
pub mod sessions;
pub mod tenant_admin;
pub mod tenants;
pub mod users;
pub mod vault;

use serde::Deserialize;
use tessera_event_schemas::Timestamp;

use crate::error::ApiError;

/// `?limit=&cursor=` of a listing without filters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A listing's page size: 1 to 500, 50 when not given.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(50);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::validation("limit", "must be between 1 and 500"))
    }
}

/// An optional RFC 3339 time in the request, named `field` in the error.
pub fn parse_time(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        Timestamp::parse_rfc3339(t)
            .ok_or_else(|| ApiError::validation(field, "must be an RFC 3339 time"))
    })
    .transpose()
}
