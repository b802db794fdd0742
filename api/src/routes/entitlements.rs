//! Tenants' entitlements to catalog products (issue 21): seed 003's
//! `GET /v1/entitlements?tenant_id=`, and beside it `GET /v1/tenants/{id}/entitlements`,
//! `PUT` and `DELETE /v1/tenants/{id}/entitlements/{product}`. Reading needs `platform:admin`
//! or `tenant:admin` on the tenant; granting and revoking, which are commercial decisions,
//! `platform:admin`. Answers come from the in-memory registry, after the write's position.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_commands::{CommandError, GrantEntitlement};
use tessera_projections::EntitlementEntry;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Principal, TenantAdmin};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/entitlements", get(list_entitlements_by_query))
        .route("/v1/tenants/{id}/entitlements", get(list_entitlements))
        .route(
            "/v1/tenants/{id}/entitlements/{product}",
            put(grant_entitlement).delete(revoke_entitlement),
        )
}

/// Seed 003's `TenantProduct`, plus whether it is the self-served trial.
#[derive(Serialize, ToSchema)]
pub struct TenantProduct {
    pub tenant_id: Uuid,
    pub product: String,
    pub enabled: bool,
    /// The product's configuration for the tenant (a JSON object).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// RFC 3339; `null`: until revoked.
    pub expires_at: Option<String>,
    pub trial: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct EntitlementPage {
    pub items: Vec<TenantProduct>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantQuery {
    pub tenant_id: Option<String>,
}

/// `PUT /v1/tenants/{id}/entitlements/{product}`: the whole entitlement.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Default `true`.
    pub enabled: Option<bool>,
    /// A JSON object; default `{}`.
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Value>,
    /// RFC 3339, in the future; absent or `null`: until revoked.
    pub expires_at: Option<String>,
}

pub fn entitlement_dto(entry: EntitlementEntry) -> Result<TenantProduct, ApiError> {
    let config = serde_json::from_str(&entry.config_json)
        .map_err(|e| ApiError::Internal(format!("stored entitlement config: {e}")))?;
    Ok(TenantProduct {
        tenant_id: entry.tenant_id,
        product: entry.product,
        enabled: entry.enabled,
        config,
        expires_at: entry.expires_at.map(|t| t.to_rfc3339()),
        trial: entry.trial,
        created_at: entry.created_at.to_rfc3339(),
        updated_at: entry.updated_at.to_rfc3339(),
    })
}

/// A command's "not found" naming what is missing (`product x`, `tenant y`), so that a caller
/// can tell an unknown product from an unknown tenant.
pub fn named(error: CommandError) -> ApiError {
    match error {
        CommandError::NotFound { kind, id } => ApiError::NotFound(format!("{kind} {id}")),
        other => other.into(),
    }
}

fn page(state: &AppState, tenant_id: Uuid) -> Result<EntitlementPage, ApiError> {
    let items = state
        .registry
        .entitlements(tenant_id)
        .into_iter()
        .map(entitlement_dto)
        .collect::<Result<_, _>>()?;
    Ok(EntitlementPage { items })
}

/// Seed 003's listing: the tenant's entitlements in effect. Needs `platform:admin`, or
/// `tenant:admin` on the tenant; `tenant_id` is required (400 without, 404 unknown).
#[utoipa::path(get, path = "/v1/entitlements", tag = "entitlements",
    params(("tenant_id" = Uuid, Query, description = "tenant id")),
    responses((status = 200, body = EntitlementPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_entitlements_by_query(
    principal: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Json<EntitlementPage>, ApiError> {
    let tenant_id = super::seed_aliases::tenant_param(query.tenant_id.as_deref())?;
    principal.authorize_tenant(&state, tenant_id).await?;
    Ok(Json(page(&state, tenant_id)?))
}

/// The tenant's entitlements in effect, by product. Needs `platform:admin`, or `tenant:admin`
/// on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/entitlements", tag = "entitlements",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = EntitlementPage), (status = 404, body = ErrorBody)))]
pub async fn list_entitlements(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
) -> Result<Json<EntitlementPage>, ApiError> {
    Ok(Json(page(&state, tenant_id)?))
}

/// Sets the tenant's entitlement to a catalog product (grant or change). Needs
/// `platform:admin`.
#[utoipa::path(put, path = "/v1/tenants/{id}/entitlements/{product}", tag = "entitlements", request_body = GrantRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("product" = String, Path, description = "product key")),
    responses((status = 200, body = TenantProduct), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn grant_entitlement(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, product)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<GrantRequest>,
) -> Result<Json<TenantProduct>, ApiError> {
    principal.require_platform_admin()?;
    let expires_at = super::parse_time("expires_at", body.expires_at.as_deref())?;
    let grant = GrantEntitlement {
        enabled: body.enabled.unwrap_or(true),
        config_json: body
            .config
            .map_or_else(|| "{}".to_owned(), |config| config.to_string()),
        expires_at,
    };
    let done = state
        .commands
        .grant_entitlement(ctx.metadata(principal.actor()), tenant_id, &product, grant)
        .await
        .map_err(named)?;
    state.projected(done.position).await?;
    let entry = state
        .registry
        .entitlement(tenant_id, &product)
        .ok_or_else(|| {
            ApiError::Internal("granted entitlement missing from the registry".into())
        })?;
    Ok(Json(entitlement_dto(entry)?))
}

/// Revokes the tenant's entitlement: its product leaves the tenant's tokens from this answer
/// on. Needs `platform:admin`. 404 when none is in effect.
#[utoipa::path(delete, path = "/v1/tenants/{id}/entitlements/{product}", tag = "entitlements",
    params(("id" = Uuid, Path, description = "tenant id"), ("product" = String, Path, description = "product key")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_entitlement(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, product)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    principal.require_platform_admin()?;
    let done = state
        .commands
        .revoke_entitlement(ctx.metadata(principal.actor()), tenant_id, &product)
        .await
        .map_err(named)?;
    state.projected(done.position).await?;
    Ok(StatusCode::NO_CONTENT)
}
