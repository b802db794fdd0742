//! Admin authentication: `Authorization: Bearer <api key>` (the scheme in any case; a request
//! with more than one `Authorization` header is 400).
//!
//! A key is looked up by its keyed hash (HMAC-SHA-256 under a key derived from the master key),
//! then compared in constant time. Missing or bad keys get 401; a key that lacks the right gets
//! 403; a key of a suspended, frozen or archived tenant gets 403 (`tenant_suspended`).
//! Tenant-scoped keys see other tenants as nonexistent (404), never as forbidden.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_event_schemas::{Actor, ActorKind, Hash32, SYSTEM_TENANT_ID};
use tessera_projections::ApiKeyView;
use uuid::Uuid;

use crate::catch_up::Refetched;
use crate::error::ApiError;
use crate::extract::{ApiPath, MoreThanOneAuthorization, authorization};
use crate::key_cache::CachedKey;
use crate::scopes::{PLATFORM_ADMIN, TENANT_ADMIN};
use crate::state::AppState;

/// The caller behind a valid API key.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    /// The product the key was issued for, if any.
    pub product: Option<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.tenant_id == SYSTEM_TENANT_ID && self.has_scope(PLATFORM_ADMIN)
    }

    /// Only the system tenant's platform admins manage other tenants.
    pub fn require_platform_admin(&self) -> Result<(), ApiError> {
        if self.is_platform_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this key lacks the {PLATFORM_ADMIN} scope"
            )))
        }
    }

    /// The caller may administer this tenant's clients and keys: platform admins any tenant's,
    /// a tenant-scoped key with `tenant:admin` its own. Any other tenant looks nonexistent
    /// (404), never forbidden, so that tenant ids cannot be probed.
    pub async fn authorize_tenant(
        &self,
        state: &AppState,
        tenant_id: Uuid,
    ) -> Result<(), ApiError> {
        let visible = self.is_platform_admin()
            || (self.tenant_id == tenant_id && self.has_scope(TENANT_ADMIN));
        if !visible {
            return Err(ApiError::NotFound(format!("tenant {tenant_id}")));
        }
        if state.store.tenant(tenant_id).await?.is_none() {
            // The tenant may have just been created through another node.
            state.catch_up().await;
            if state.store.tenant(tenant_id).await?.is_none() {
                return Err(ApiError::NotFound(format!("tenant {tenant_id}")));
            }
        }
        Ok(())
    }

    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::ApiKey,
            id: self.key_id.to_string(),
            name: Some(self.name.clone()),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = authorization(&parts.headers, "bearer")
            .map_err(|MoreThanOneAuthorization| {
                ApiError::BadRequest("send one Authorization header, not several".to_owned())
            })?
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        // A read answered again after catching up (`catch_up::refetch_not_found`) was
        // counted the first time.
        let count_use = parts.extensions.get::<Refetched>().is_none();
        let key = match check_api_key_counting(state, token, count_use).await? {
            KeyCheck::Usable(key) => *key,
            KeyCheck::Invalid => return Err(ApiError::Unauthenticated),
            KeyCheck::TenantBlocked => {
                return Err(ApiError::Forbidden(
                    "the key's tenant is suspended, frozen or archived".to_owned(),
                ));
            }
        };
        Ok(Principal {
            key_id: key.key_id,
            tenant_id: key.tenant_id,
            name: key.name,
            scopes: key.scopes,
            product: key.product,
        })
    }
}

/// A platform administrator (see [`Principal::require_platform_admin`]). As an extractor it
/// runs before the request body is read, so that a caller without the right learns nothing
/// from how its body would be parsed: it gets 401 or 403, never a 400 that names a field.
pub struct PlatformAdmin(pub Principal);

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        principal.require_platform_admin()?;
        Ok(Self(principal))
    }
}

/// A caller that may administer the tenant `{id}` of the path (see
/// [`Principal::authorize_tenant`]). Like [`PlatformAdmin`], it is checked before the body is
/// read: another tenant is 404 whatever the body says.
pub struct TenantAdmin {
    pub principal: Principal,
    pub tenant_id: Uuid,
}

/// The `{id}` of `/v1/tenants/{id}/...`; other path parameters are the handler's.
#[derive(serde::Deserialize)]
struct TenantPath {
    id: Uuid,
}

impl FromRequestParts<AppState> for TenantAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let ApiPath(TenantPath { id }) = ApiPath::from_request_parts(parts, state).await?;
        principal.authorize_tenant(state, id).await?;
        Ok(Self {
            principal,
            tenant_id: id,
        })
    }
}

/// What a presented API key is.
pub enum KeyCheck {
    /// Unknown, revoked or expired.
    Invalid,
    /// A good key of a suspended, frozen or archived tenant.
    TenantBlocked,
    Usable(Box<ApiKeyView>),
}

/// Looks a presented API key up by its keyed hash (in [`crate::key_cache`], else in the read
/// models), re-checks it in constant time, and checks that it is neither revoked nor expired
/// and that its tenant (other than the system tenant) serves. A usable key's use is counted.
///
/// A key that is not usable is checked again once this node has caught up with the log: it
/// may have just been issued, or its tenant reactivated, through another node (see
/// [`crate::catch_up`]). A usable key, the hot path, costs no more than the lookup.
pub async fn check_api_key(state: &AppState, plaintext: &str) -> Result<KeyCheck, ApiError> {
    check_api_key_counting(state, plaintext, true).await
}

/// [`check_api_key`], counting a usable key's use only if `count_use`.
async fn check_api_key_counting(
    state: &AppState,
    plaintext: &str,
    count_use: bool,
) -> Result<KeyCheck, ApiError> {
    let hash = state.crypto.secret_hash(plaintext);
    let first = check_api_key_now(state, plaintext, hash, count_use).await?;
    if matches!(first, KeyCheck::Usable(_)) {
        return Ok(first);
    }
    state.catch_up().await;
    check_api_key_now(state, plaintext, hash, count_use).await
}

/// [`check_api_key_counting`] with what this node knows now.
async fn check_api_key_now(
    state: &AppState,
    plaintext: &str,
    hash: Hash32,
    count_use: bool,
) -> Result<KeyCheck, ApiError> {
    let (key, tenant_serves) = match state
        .key_cache
        .get(&hash, state.projections.keys_changed_at())
    {
        Some(cached) => cached,
        None => {
            // The position before the reads: the rows are at least that current.
            let read_at = state.projections.projected_position();
            let Some(key) = state.store.api_key_by_hash(&hash).await? else {
                return Ok(KeyCheck::Invalid);
            };
            let tenant_serves = key.tenant_id == SYSTEM_TENANT_ID
                || state
                    .store
                    .tenant(key.tenant_id)
                    .await?
                    .is_some_and(|t| t.serves());
            let key = Arc::new(key);
            state.key_cache.put(
                hash,
                CachedKey {
                    read_at,
                    view: key.clone(),
                    tenant_serves,
                },
            );
            (key, tenant_serves)
        }
    };
    let now = state.clock.now();
    if !state.crypto.verify_secret(plaintext, &key.secret_hash)
        || key.revoked_at.is_some()
        || key.expires_at.is_some_and(|at| at <= now)
    {
        return Ok(KeyCheck::Invalid);
    }
    if !tenant_serves {
        return Ok(KeyCheck::TenantBlocked);
    }
    if count_use {
        state.usage.record(key.tenant_id, key.key_id, now);
    }
    Ok(KeyCheck::Usable(Box::new((*key).clone())))
}
