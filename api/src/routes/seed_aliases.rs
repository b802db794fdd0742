//! Seed 003's API-key paths, as thin aliases over `/v1/tenants/{id}/api-keys` (issue 21), for
//! products written against the Tenant Registry: the tenant comes in the query or the body
//! instead of the path, and the same permission applies (`platform:admin`, or `tenant:admin`
//! on that tenant; any other tenant is 404).
//!
//! | seed 003 | ours |
//! |---|---|
//! | `GET /v1/api-keys?tenant_id=` | `GET /v1/tenants/{id}/api-keys` |
//! | `POST /v1/api-keys` `{tenant_id, name, product, scopes, created_by}` | `POST /v1/tenants/{id}/api-keys` |
//! | `DELETE /v1/api-keys/{id}` (204) | `DELETE /v1/tenants/{id}/api-keys/{key_id}` |
//! | `POST /v1/internal/api-keys/verify` | `POST /v1/api-keys/verify` |

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::api_keys::{self, ApiKeyCreated, ApiKeyPage, CreateApiKeyRequest, to_dto};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/api-keys",
            get(list_api_keys_by_query).post(create_api_key_by_body),
        )
        .route("/v1/api-keys/{id}", delete(revoke_api_key_by_id))
        .route(
            "/v1/internal/api-keys/verify",
            post(api_keys::verify_api_key),
        )
}

/// A required `tenant_id` query parameter: 400 when missing or not a UUID.
pub fn tenant_param(text: Option<&str>) -> Result<Uuid, ApiError> {
    let text = text.ok_or_else(|| ApiError::validation("tenant_id", "is required"))?;
    Uuid::parse_str(text).map_err(|_| ApiError::validation("tenant_id", "must be a UUID"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    pub tenant_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Seed 003's `APIKeyCreate`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedApiKeyCreate {
    pub tenant_id: Uuid,
    pub name: String,
    pub product: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Who the product says created it; the caller's key name when absent. The event's actor
    /// is the calling key whatever this says.
    pub created_by: Option<String>,
    pub expires_at: Option<String>,
}

/// Seed 003's listing of a tenant's keys (never their secrets). Needs `platform:admin`, or
/// `tenant:admin` on the tenant. Up to `limit` (default 50, at most 500) a page, with
/// `next_cursor` when there are more.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys",
    params(("tenant_id" = Uuid, Query, description = "tenant id")),
    responses((status = 200, body = ApiKeyPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_api_keys_by_query(
    principal: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<KeysQuery>,
) -> Result<Json<ApiKeyPage>, ApiError> {
    let tenant_id = tenant_param(query.tenant_id.as_deref())?;
    principal.authorize_tenant(&state, tenant_id).await?;
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

/// Seed 003's key creation: 201 with `{api_key, plaintext, warning}`, the plaintext once.
/// Needs `platform:admin`, or `tenant:admin` on the tenant of the body.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = SeedApiKeyCreate,
    responses((status = 201, body = ApiKeyCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_api_key_by_body(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<SeedApiKeyCreate>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    principal.authorize_tenant(&state, body.tenant_id).await?;
    let created_by = match body.created_by {
        Some(by) if by.trim().is_empty() || by.chars().count() > 255 => {
            return Err(ApiError::validation(
                "created_by",
                "must be 1 to 255 characters",
            ));
        }
        Some(by) => by,
        None => principal.name.clone(),
    };
    let request = CreateApiKeyRequest {
        name: body.name,
        scopes: body.scopes,
        product: body.product,
        expires_at: body.expires_at,
    };
    api_keys::create(
        &state,
        &principal,
        body.tenant_id,
        &ctx,
        request,
        created_by,
    )
    .await
}

/// Seed 003's revocation by key id alone: 204. Needs `platform:admin`, or `tenant:admin` on
/// the key's tenant; a key of another tenant is 404, like an unknown one.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "key id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke_api_key_by_id(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(key_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::NotFound(format!("api key {key_id}"));
    let key = state
        .store
        .api_key_by_id(key_id)
        .await?
        .ok_or_else(not_found)?;
    principal
        .authorize_tenant(&state, key.tenant_id)
        .await
        .map_err(|_| not_found())?;
    let done = state
        .commands
        .revoke_api_key(ctx.metadata(principal.actor()), key.tenant_id, key_id)
        .await?;
    state.projected(done.position).await?;
    Ok(StatusCode::NO_CONTENT)
}
