//! LLM provider keys (issue 20, seed 002's tenant-specific credentials): a tenant's key per
//! provider, the platform's default keys, and their resolution for a service.
//!
//! - `PUT`/`GET`/`DELETE /v1/tenants/{id}/credentials/{provider}` (`tenant:admin` on the
//!   tenant or `platform:admin`), `GET /v1/tenants/{id}/credentials` (every provider);
//! - `PUT`/`GET`/`DELETE /v1/platform/credentials/{provider}` (`platform:admin`): the default
//!   a tenant without a key falls back to outside strict mode;
//! - `POST .../credentials/{provider}/invalidate`: the provider refused the key (a `vault:read`
//!   service of the tenant, or an administrator); setting a new key clears it;
//! - `POST /v1/tenants/{id}/credentials/{provider}/resolve` (`vault:read` on the key's own
//!   tenant): the key that applies, each answer an audited access.
//!
//! Seed 002's body (`{"api_key"}`), with the settings the providers without a public base URL
//! need (`endpoint`; Azure OpenAI's `api_version` and `deployment_name`). A key is never
//! returned by anything but `resolve`: `GET` shows whether one is set and its last four
//! characters. Providers are seed 002's seven; any other name is 400 naming them.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_commands::{CommandError, ProviderKeyInfo, ProviderSecret, ResolveError};
use tessera_domain::DomainError;
use tessera_domain::provider_key::{self, PROVIDERS, Source, Unresolved};
use tessera_event_schemas::SYSTEM_TENANT_ID;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{PlatformAdmin, Principal, TenantAdmin};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::scopes::{TENANT_ADMIN, VAULT_READ};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/credentials", get(list_tenant_keys))
        .route(
            "/v1/tenants/{id}/credentials/{provider}",
            put(put_tenant_key)
                .get(get_tenant_key)
                .delete(delete_tenant_key),
        )
        .route(
            "/v1/tenants/{id}/credentials/{provider}/invalidate",
            post(invalidate_tenant_key),
        )
        .route(
            "/v1/tenants/{id}/credentials/{provider}/resolve",
            post(resolve_key),
        )
        .route(
            "/v1/platform/credentials/{provider}",
            put(put_platform_key)
                .get(get_platform_key)
                .delete(delete_platform_key),
        )
        .route(
            "/v1/platform/credentials/{provider}/invalidate",
            post(invalidate_platform_key),
        )
}

/// Seed 002's key, with the settings some providers need.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderKeyRequest {
    /// The provider's API key (8 to 4,096 visible characters). Never returned by `GET`.
    pub api_key: String,
    /// The base URL of the provider's API: required for `azure` (the resource endpoint) and
    /// `vllm` (the server); https, or plain http on localhost.
    pub endpoint: Option<String>,
    /// Azure OpenAI's `api-version` (`azure` only).
    pub api_version: Option<String>,
    /// Azure OpenAI's deployment (`azure` only).
    pub deployment_name: Option<String>,
}

/// Whether a key is set, never the key.
#[derive(Serialize, ToSchema)]
pub struct ProviderKeyView {
    pub provider: String,
    pub set: bool,
    /// The key's last four characters, to tell keys apart.
    pub last4: Option<String>,
    /// The key was reported invalid and is handed out to no one until a new one is set.
    pub invalid: bool,
    /// When the key was last set or marked invalid (RFC 3339).
    pub updated_at: Option<String>,
}

/// Every provider's view, in seed 002's order.
#[derive(Serialize, ToSchema)]
pub struct ProviderKeyList {
    pub items: Vec<ProviderKeyView>,
}

/// The key that applies, in clear: answered with `Cache-Control: no-store`.
#[derive(Serialize, ToSchema)]
pub struct ResolvedKey {
    pub provider: String,
    pub api_key: String,
    /// `tenant`: the tenant's own key; `platform`: the platform's default (never in strict
    /// mode).
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
}

fn view(provider: &str, info: Option<ProviderKeyInfo>) -> ProviderKeyView {
    match info {
        Some(info) => ProviderKeyView {
            provider: provider.to_owned(),
            set: true,
            last4: Some(info.last4),
            invalid: info.invalid,
            updated_at: Some(info.updated_at.to_rfc3339()),
        },
        None => ProviderKeyView {
            provider: provider.to_owned(),
            set: false,
            last4: None,
            invalid: false,
            updated_at: None,
        },
    }
}

/// The provider of the path, one of seed 002's (400 naming them otherwise).
fn checked(provider: &str) -> Result<&str, ApiError> {
    provider_key::provider(provider)?;
    Ok(provider)
}

/// The owner's vault refuses only when it was destroyed (offboarding): gone for good, 410
/// rather than the 409 of a refused command.
fn vault_refusal(error: CommandError) -> ApiError {
    match ApiError::from(error) {
        ApiError::IllegalTransition(message) => ApiError::Gone(message),
        other => other,
    }
}

/// A missing key is a 404 that names it.
fn absent(tenant_id: Uuid, provider: &str) -> impl Fn(CommandError) -> ApiError {
    let what = if tenant_id == SYSTEM_TENANT_ID {
        format!("platform {provider} key")
    } else {
        format!("{provider} key of tenant {tenant_id}")
    };
    move |error| match error {
        CommandError::NotFound { .. } | CommandError::Rejected(DomainError::NotFound) => {
            ApiError::NotFound(what.clone())
        }
        other => other.into(),
    }
}

async fn put_key(
    state: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    tenant_id: Uuid,
    provider: &str,
    body: ProviderKeyRequest,
) -> Result<Json<ProviderKeyView>, ApiError> {
    let provider = checked(provider)?;
    let secret = ProviderSecret {
        api_key: body.api_key,
        endpoint: body.endpoint,
        api_version: body.api_version,
        deployment_name: body.deployment_name,
    };
    state
        .commands
        .set_provider_key(
            ctx.metadata(principal.actor()),
            tenant_id,
            provider,
            &secret,
        )
        .await
        .map_err(vault_refusal)?;
    get_key(state, tenant_id, provider).await
}

async fn get_key(
    state: &AppState,
    tenant_id: Uuid,
    provider: &str,
) -> Result<Json<ProviderKeyView>, ApiError> {
    let provider = checked(provider)?;
    let info = state.commands.provider_key(tenant_id, provider).await?;
    Ok(Json(view(provider, info)))
}

async fn delete_key(
    state: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    tenant_id: Uuid,
    provider: &str,
) -> Result<StatusCode, ApiError> {
    let provider = checked(provider)?;
    state
        .commands
        .remove_provider_key(ctx.metadata(principal.actor()), tenant_id, provider)
        .await
        .map_err(absent(tenant_id, provider))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn invalidate_key(
    state: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    tenant_id: Uuid,
    provider: &str,
) -> Result<Json<ProviderKeyView>, ApiError> {
    let provider = checked(provider)?;
    state
        .commands
        .invalidate_provider_key(ctx.metadata(principal.actor()), tenant_id, provider)
        .await
        .map_err(absent(tenant_id, provider))?;
    get_key(state, tenant_id, provider).await
}

/// Sets the tenant's key for `provider`, replacing any and clearing an invalid mark. Needs
/// `tenant:admin` on the tenant or `platform:admin`.
#[utoipa::path(put, path = "/v1/tenants/{id}/credentials/{provider}", tag = "provider-keys", request_body = ProviderKeyRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("provider" = String, Path, description = "openai, anthropic, azure, berget, mistral, ovhcloud or vllm")),
    responses((status = 200, body = ProviderKeyView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn put_tenant_key(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, provider)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<ProviderKeyRequest>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    put_key(
        &state,
        &ctx,
        &admin.principal,
        admin.tenant_id,
        &provider,
        body,
    )
    .await
}

/// Whether the tenant has a key for `provider`, and its last four characters; never the key.
/// Needs `tenant:admin` on the tenant or `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/credentials/{provider}", tag = "provider-keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("provider" = String, Path, description = "provider")),
    responses((status = 200, body = ProviderKeyView), (status = 404, body = ErrorBody)))]
pub async fn get_tenant_key(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, provider)): ApiPath<(Uuid, String)>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    get_key(&state, admin.tenant_id, &provider).await
}

/// The tenant's keys, one entry per provider (set or not); never a key. Needs `tenant:admin`
/// on the tenant or `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/credentials", tag = "provider-keys",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = ProviderKeyList), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_keys(
    admin: TenantAdmin,
    State(state): State<AppState>,
) -> Result<Json<ProviderKeyList>, ApiError> {
    let mut items = Vec::with_capacity(PROVIDERS.len());
    for provider in PROVIDERS {
        let info = state
            .commands
            .provider_key(admin.tenant_id, provider)
            .await?;
        items.push(view(provider, info));
    }
    Ok(Json(ProviderKeyList { items }))
}

/// Removes the tenant's key for `provider` (404 when none). Needs `tenant:admin` on the tenant
/// or `platform:admin`.
#[utoipa::path(delete, path = "/v1/tenants/{id}/credentials/{provider}", tag = "provider-keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("provider" = String, Path, description = "provider")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_tenant_key(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, provider)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    delete_key(&state, &ctx, &admin.principal, admin.tenant_id, &provider).await
}

/// Marks the tenant's key for `provider` invalid (the provider refused it): resolutions fail,
/// in either mode, until a new key is set. Needs `vault:read` or `tenant:admin` on the tenant,
/// or `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants/{id}/credentials/{provider}/invalidate", tag = "provider-keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("provider" = String, Path, description = "provider")),
    responses((status = 200, body = ProviderKeyView), (status = 404, body = ErrorBody)))]
pub async fn invalidate_tenant_key(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, provider)): ApiPath<(Uuid, String)>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    if !(principal.tenant_id == tenant_id && principal.has_scope(VAULT_READ)) {
        let own = principal.tenant_id == tenant_id;
        if own && !principal.has_scope(TENANT_ADMIN) {
            return Err(ApiError::Forbidden(format!(
                "this key lacks the {VAULT_READ} (or {TENANT_ADMIN}) scope"
            )));
        }
        principal.authorize_tenant(&state, tenant_id).await?;
    }
    invalidate_key(&state, &ctx, &principal, tenant_id, &provider).await
}

/// The key that applies to the tenant for `provider`: its own, or (outside strict mode,
/// `TESSERA_TENANT_CREDENTIALS_STRICT`) the platform's when it has none. An invalid tenant
/// key is 409 `provider_key_invalid` in either mode; no key that applies is 404
/// `provider_key_not_set`; a destroyed vault 410. Each answer is recorded
/// (`credential.accessed`) before it is sent. Needs `vault:read` on the key's own tenant (any
/// other tenant is 404).
#[utoipa::path(post, path = "/v1/tenants/{id}/credentials/{provider}/resolve", tag = "provider-keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("provider" = String, Path, description = "provider")),
    responses((status = 200, body = ResolvedKey), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn resolve_key(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, provider)): ApiPath<(Uuid, String)>,
) -> Result<Response, ApiError> {
    if principal.tenant_id != tenant_id {
        return Err(ApiError::NotFound(format!("tenant {tenant_id}")));
    }
    if !principal.has_scope(VAULT_READ) {
        return Err(ApiError::Forbidden(format!(
            "this key lacks the {VAULT_READ} scope"
        )));
    }
    let provider = checked(&provider)?;
    let resolved = state
        .commands
        .resolve_provider_key(
            ctx.metadata(principal.actor()),
            tenant_id,
            provider,
            principal.key_id,
            state.tenant_credentials_strict,
        )
        .await
        .map_err(|error| match error {
            ResolveError::Unresolved(why) => unresolved(provider, why),
            ResolveError::Command(error) => vault_refusal(error),
        })?;
    let secret = &resolved.secret;
    let body = ResolvedKey {
        provider: provider.to_owned(),
        api_key: secret.api_key.clone(),
        source: match resolved.source {
            Source::Tenant => "tenant",
            Source::Platform => "platform",
        }
        .to_owned(),
        endpoint: secret.endpoint.clone(),
        api_version: secret.api_version.clone(),
        deployment_name: secret.deployment_name.clone(),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Why no key applies, said so that the operator knows what to set.
fn unresolved(provider: &str, why: Unresolved) -> ApiError {
    let (status, code, message) = match why {
        Unresolved::TenantKeyInvalid => (
            StatusCode::CONFLICT,
            "provider_key_invalid",
            format!(
                "the tenant's {provider} key was reported invalid; set a new one (the platform's \
                 key is never used instead)"
            ),
        ),
        Unresolved::TenantKeyRequired => (
            StatusCode::NOT_FOUND,
            "provider_key_not_set",
            format!(
                "the tenant has no {provider} key, and strict mode never falls back to the \
                 platform's"
            ),
        ),
        Unresolved::NoKey { platform_invalid } => (
            StatusCode::NOT_FOUND,
            "provider_key_not_set",
            if platform_invalid {
                format!("the tenant has no {provider} key, and the platform's was reported invalid")
            } else {
                format!("neither the tenant nor the platform has a {provider} key")
            },
        ),
    };
    ApiError::Refused {
        status,
        code,
        message,
    }
}

/// Sets the platform's default key for `provider`, sealed under the system tenant's vault.
/// Needs `platform:admin`.
#[utoipa::path(put, path = "/v1/platform/credentials/{provider}", tag = "provider-keys", request_body = ProviderKeyRequest,
    params(("provider" = String, Path, description = "provider")),
    responses((status = 200, body = ProviderKeyView), (status = 400, body = ErrorBody)))]
pub async fn put_platform_key(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(provider): ApiPath<String>,
    ApiJson(body): ApiJson<ProviderKeyRequest>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    put_key(&state, &ctx, &principal, SYSTEM_TENANT_ID, &provider, body).await
}

/// Whether the platform has a default key for `provider`; never the key. Needs
/// `platform:admin`.
#[utoipa::path(get, path = "/v1/platform/credentials/{provider}", tag = "provider-keys",
    params(("provider" = String, Path, description = "provider")),
    responses((status = 200, body = ProviderKeyView)))]
pub async fn get_platform_key(
    PlatformAdmin(_): PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    get_key(&state, SYSTEM_TENANT_ID, &provider).await
}

/// Removes the platform's default key for `provider` (404 when none). Needs `platform:admin`.
#[utoipa::path(delete, path = "/v1/platform/credentials/{provider}", tag = "provider-keys",
    params(("provider" = String, Path, description = "provider")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_platform_key(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(provider): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    delete_key(&state, &ctx, &principal, SYSTEM_TENANT_ID, &provider).await
}

/// Marks the platform's default key for `provider` invalid: no tenant falls back to it until
/// a new one is set. Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/platform/credentials/{provider}/invalidate", tag = "provider-keys",
    params(("provider" = String, Path, description = "provider")),
    responses((status = 200, body = ProviderKeyView), (status = 404, body = ErrorBody)))]
pub async fn invalidate_platform_key(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(provider): ApiPath<String>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    invalidate_key(&state, &ctx, &principal, SYSTEM_TENANT_ID, &provider).await
}
