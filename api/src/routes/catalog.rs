//! `/v1/catalog`: seed 003's product catalog (issue 21). Listing needs any valid API key;
//! defining and removing products (`PUT`/`DELETE /v1/catalog/{key}`, which the seed lacks) need
//! `platform:admin`. A tenant's request for a product (`POST /v1/catalog/request`, 202, for
//! sales to follow up) and its self-served 14-day trial (`POST /v1/catalog/trial-request`, 201)
//! need `platform:admin` or `tenant:admin` on the tenant named in the body.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::product::Product;
use tessera_projections::CatalogEntry;
use utoipa::ToSchema;
use uuid::Uuid;

use super::entitlements::{TenantProduct, entitlement_dto, named};
use crate::auth::{PlatformAdmin, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/catalog", get(list_catalog))
        .route("/v1/catalog/{key}", put(put_product).delete(remove_product))
        .route("/v1/catalog/request", post(request_product))
        .route("/v1/catalog/trial-request", post(request_trial))
}

/// Seed 003's `CatalogEntry`, with the times the catalog changed it.
#[derive(Serialize, ToSchema)]
pub struct CatalogEntryDto {
    pub key: String,
    pub name: String,
    pub description: String,
    pub plans_required: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_url: Option<String>,
    pub supports_trial: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogPage {
    pub items: Vec<CatalogEntryDto>,
}

/// `PUT /v1/catalog/{key}`: the whole entry (seed 003's `CatalogEntry`; `key`, if sent, must be
/// the path's).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProductRequest {
    pub key: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The plans a tenant must be on for a trial; empty: any plan.
    #[serde(default)]
    pub plans_required: Vec<String>,
    pub demo_url: Option<String>,
    #[serde(default)]
    pub supports_trial: bool,
}

/// Seed 003's `CatalogRequest`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogRequest {
    pub tenant_id: Uuid,
    pub product: String,
    /// Who asked (free text, e.g. a user id of the product), recorded for sales.
    pub requested_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub tenant_id: Uuid,
    pub product: String,
}

fn dto(entry: CatalogEntry) -> CatalogEntryDto {
    CatalogEntryDto {
        key: entry.key,
        name: entry.name,
        description: entry.description,
        plans_required: entry.plans_required,
        demo_url: entry.demo_url,
        supports_trial: entry.supports_trial,
        created_at: entry.created_at.to_rfc3339(),
        updated_at: entry.updated_at.to_rfc3339(),
    }
}

/// Lists the catalog, by key. Needs any valid API key.
#[utoipa::path(get, path = "/v1/catalog", tag = "catalog",
    responses((status = 200, body = CatalogPage), (status = 401, body = ErrorBody)))]
pub async fn list_catalog(
    _caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<CatalogPage>, ApiError> {
    Ok(Json(CatalogPage {
        items: state.registry.catalog().into_iter().map(dto).collect(),
    }))
}

/// Defines or replaces a product. Needs `platform:admin`. 201 when it was absent, 200 when it
/// was replaced (or unchanged).
#[utoipa::path(put, path = "/v1/catalog/{key}", tag = "catalog", request_body = PutProductRequest,
    params(("key" = String, Path, description = "product key: 1 to 64 of a-z, 0-9, '_', '-'")),
    responses((status = 200, body = CatalogEntryDto), (status = 201, body = CatalogEntryDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_product(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<PutProductRequest>,
) -> Result<(StatusCode, Json<CatalogEntryDto>), ApiError> {
    if body.key.as_ref().is_some_and(|k| *k != key) {
        return Err(ApiError::validation("key", "must be the key of the path"));
    }
    let existed = state.registry.product(&key).is_some();
    let done = state
        .commands
        .put_product(
            ctx.metadata(principal.actor()),
            &key,
            Product {
                name: body.name,
                description: body.description,
                plans_required: body.plans_required,
                demo_url: body.demo_url,
                supports_trial: body.supports_trial,
            },
        )
        .await?;
    state.projected(done.position).await?;
    let entry = state
        .registry
        .product(&key)
        .ok_or_else(|| ApiError::Internal("defined product missing from the registry".into()))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(dto(entry))))
}

/// Removes a product from the catalog: from this answer on, no token carries it (tenants'
/// entitlements to it stay, out of effect). Needs `platform:admin`.
#[utoipa::path(delete, path = "/v1/catalog/{key}", tag = "catalog",
    params(("key" = String, Path, description = "product key")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_product(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let done = state
        .commands
        .remove_product(ctx.metadata(principal.actor()), &key)
        .await
        .map_err(named)?;
    state.projected(done.position).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records a tenant's request for a product (`product.requested`), for sales to follow up:
/// 202. An unknown tenant or product is 404. Needs `platform:admin`, or `tenant:admin` on the
/// tenant.
#[utoipa::path(post, path = "/v1/catalog/request", tag = "catalog", request_body = CatalogRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn request_product(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CatalogRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    principal.authorize_tenant(&state, body.tenant_id).await?;
    if body
        .requested_by
        .as_ref()
        .is_some_and(|by| by.chars().count() > 255)
    {
        return Err(ApiError::validation(
            "requested_by",
            "must be at most 255 characters",
        ));
    }
    let done = state
        .commands
        .request_product(
            ctx.metadata(principal.actor()),
            body.tenant_id,
            &body.product,
            body.requested_by,
        )
        .await
        .map_err(named)?;
    state.projected(done.position).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "requested",
            tenant_id: body.tenant_id,
            product: body.product,
        }),
    ))
}

/// Starts the tenant's 14-day trial of a product: 201 with the entitlement (seed 003's
/// `TenantProduct`). A product without trials is 400; a plan outside `plans_required`, a
/// second trial or a product already entitled is 409; an unknown tenant or product 404. Needs
/// `platform:admin`, or `tenant:admin` on the tenant.
#[utoipa::path(post, path = "/v1/catalog/trial-request", tag = "catalog", request_body = CatalogRequest,
    responses((status = 201, body = TenantProduct), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn request_trial(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CatalogRequest>,
) -> Result<(StatusCode, Json<TenantProduct>), ApiError> {
    principal.authorize_tenant(&state, body.tenant_id).await?;
    let done = state
        .commands
        .start_trial(
            ctx.metadata(principal.actor()),
            body.tenant_id,
            &body.product,
        )
        .await
        .map_err(named)?;
    state.projected(done.position).await?;
    let entry = state
        .registry
        .entitlement(body.tenant_id, &body.product)
        .ok_or_else(|| ApiError::Internal("started trial missing from the registry".into()))?;
    Ok((StatusCode::CREATED, Json(entitlement_dto(entry)?)))
}
