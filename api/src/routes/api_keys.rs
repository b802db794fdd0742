//! `/v1/tenants/{id}/api-keys`: API keys for automation. The plaintext is returned once, at
//! creation; only its keyed hash is stored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_commands::IssueApiKey;
use tessera_event_schemas::Timestamp;
use tessera_projections::ApiKeyView;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageQuery;
use crate::auth::{KeyCheck, Principal, TenantAdmin, check_api_key};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::scopes;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{id}/api-keys",
            get(list_api_keys).post(create_api_key),
        )
        .route(
            "/v1/tenants/{id}/api-keys/{key_id}",
            get(get_api_key).delete(revoke_api_key),
        )
        .route(
            "/v1/tenants/{id}/api-keys/{key_id}/usage",
            get(api_key_usage),
        )
        .route("/v1/api-keys/verify", post(verify_api_key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    /// Tessera's scopes (`platform:admin`, on the system tenant's keys only; `tenant:admin`;
    /// `audit:write`) and the key's product's own, `product:{product}:{name}`; only scopes the
    /// calling key holds.
    #[serde(default)]
    pub scopes: Vec<String>,
    pub product: Option<String>,
    /// RFC 3339; the key stops working then.
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it by.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The last authenticated use (admin API call or successful verify), if any.
    pub last_used_at: Option<String>,
    pub use_count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyUsage {
    pub key_id: Uuid,
    /// Authenticated uses since the key was issued.
    pub use_count: u64,
    pub last_used_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    pub key: String,
}

/// The answer of `POST /v1/api-keys/verify`: `{"valid": false}` alone for any bad key.
#[derive(Serialize, ToSchema, Default)]
pub struct VerifyResponse {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub api_key: ApiKey,
    /// The key itself. Shown only in this response.
    pub plaintext: String,
    pub warning: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyPage {
    pub items: Vec<ApiKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Recorded uses plus those still counted in memory.
fn usage_of(state: &AppState, view: &ApiKeyView) -> (u64, Option<Timestamp>) {
    match state.usage.pending(view.tenant_id, view.key_id) {
        Some(pending) => (
            view.use_count + pending.uses,
            Some(
                view.last_used_at
                    .map_or(pending.last_used_at, |at| at.max(pending.last_used_at)),
            ),
        ),
        None => (view.use_count, view.last_used_at),
    }
}

pub(super) fn to_dto(state: &AppState, view: ApiKeyView) -> ApiKey {
    let (use_count, last_used_at) = usage_of(state, &view);
    ApiKey {
        last_used_at: last_used_at.map(|t| t.to_rfc3339()),
        use_count,
        id: view.key_id,
        tenant_id: view.tenant_id,
        name: view.name,
        prefix: view.prefix,
        scopes: view.scopes,
        product: view.product,
        created_by: view.created_by,
        created_at: view.created_at.to_rfc3339(),
        expires_at: view.expires_at.map(|t| t.to_rfc3339()),
        revoked_at: view.revoked_at.map(|t| t.to_rfc3339()),
    }
}

/// Creates an API key for the tenant. Needs `platform:admin`, or `tenant:admin` on this tenant.
/// A scope outside the catalogue is 400 naming it; one the calling key does not hold is 403
/// (see [`crate::scopes`]).
#[utoipa::path(post, path = "/v1/tenants/{id}/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 201, body = ApiKeyCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_api_key(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    let created_by = principal.name.clone();
    create(&state, &principal, tenant_id, &ctx, body, created_by).await
}

/// Issues a key for `tenant_id` (the caller's permission on it checked before): the scopes'
/// grant, the command, the read model at its position, the one answer with the plaintext.
/// Seed 003's `POST /v1/api-keys` shares it, with the `created_by` its body names.
pub(super) async fn create(
    state: &AppState,
    principal: &Principal,
    tenant_id: Uuid,
    ctx: &RequestContext,
    body: CreateApiKeyRequest,
    created_by: String,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    scopes::check_grant(principal, tenant_id, body.product.as_deref(), &body.scopes)?;
    let expires_at = super::parse_time("expires_at", body.expires_at.as_deref())?;
    let issued = state
        .commands
        .issue_api_key(
            ctx.metadata(principal.actor()),
            tenant_id,
            IssueApiKey {
                name: body.name,
                scopes: body.scopes,
                product: body.product,
                expires_at,
                created_by,
                key_id: None,
                plaintext: None,
            },
        )
        .await?;
    state.projected(issued.position).await?;
    let view = state
        .store
        .api_key(tenant_id, issued.key_id)
        .await?
        .ok_or_else(|| ApiError::Internal("issued key missing from read model".to_owned()))?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            api_key: to_dto(state, view),
            plaintext: issued.plaintext,
            warning: "Store this key now: it is shown only once and cannot be recovered.",
        }),
    ))
}

/// Lists the tenant's API keys, never their secrets. Needs `platform:admin`, or `tenant:admin`
/// on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys", tag = "api-keys",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = ApiKeyPage), (status = 404, body = ErrorBody)))]
pub async fn list_api_keys(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ApiKeyPage>, ApiError> {
    let limit = super::page_limit(query.limit)?;
    let page = state
        .store
        .list_api_keys(tenant_id, limit, query.cursor.as_deref())
        .await?;
    Ok(Json(ApiKeyPage {
        items: page
            .items
            .into_iter()
            .map(|view| to_dto(&state, view))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Reads one API key. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys/{key_id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("key_id" = Uuid, Path, description = "key id")),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
pub async fn get_api_key(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, key_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<ApiKey>, ApiError> {
    let view = state
        .store
        .api_key(tenant_id, key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("api key {key_id}")))?;
    Ok(Json(to_dto(&state, view)))
}

/// Revokes an API key; it stops working at once. Needs `platform:admin`, or `tenant:admin` on
/// this tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/api-keys/{key_id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("key_id" = Uuid, Path, description = "key id")),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke_api_key(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, key_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<ApiKey>, ApiError> {
    let done = state
        .commands
        .revoke_api_key(ctx.metadata(principal.actor()), tenant_id, key_id)
        .await?;
    state.projected(done.position).await?;
    let view = state
        .store
        .api_key(tenant_id, key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("api key {key_id}")))?;
    Ok(Json(to_dto(&state, view)))
}

/// Usage statistics of one API key: how many authenticated uses, and the last. Exact while the
/// server runs; see `usage` for what a crash can lose. Needs `platform:admin`, or
/// `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys/{key_id}/usage", tag = "api-keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("key_id" = Uuid, Path, description = "key id")),
    responses((status = 200, body = ApiKeyUsage), (status = 404, body = ErrorBody)))]
pub async fn api_key_usage(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, key_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<ApiKeyUsage>, ApiError> {
    let view = state
        .store
        .api_key(tenant_id, key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("api key {key_id}")))?;
    let (use_count, last_used_at) = usage_of(&state, &view);
    Ok(Json(ApiKeyUsage {
        key_id,
        use_count,
        last_used_at: last_used_at.map(|t| t.to_rfc3339()),
    }))
}

/// Verifies an API key for a product that received it. No authentication; always 200:
/// `{"valid": false}` for an unknown, revoked or expired key, or one of a suspended, frozen or
/// archived tenant. A successful verification counts as a use of the key.
#[utoipa::path(post, path = "/v1/api-keys/verify", tag = "api-keys", request_body = VerifyRequest,
    security(()),
    responses((status = 200, body = VerifyResponse), (status = 400, body = ErrorBody)))]
pub async fn verify_api_key(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let key = body.key.trim();
    if key.is_empty() || key.len() > 512 {
        return Ok(Json(VerifyResponse::default()));
    }
    let KeyCheck::Usable(view) = check_api_key(&state, key).await? else {
        return Ok(Json(VerifyResponse::default()));
    };
    Ok(Json(VerifyResponse {
        valid: true,
        tenant_id: Some(view.tenant_id),
        key_id: Some(view.key_id),
        product: view.product,
        scopes: Some(view.scopes),
        expires_at: view.expires_at.map(|t| t.to_rfc3339()),
    }))
}
