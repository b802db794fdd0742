//! The integration catalogue (issue 20, seed 004): the operator's integrations
//! (`PUT`/`GET`/`DELETE /v1/integrations/{integration}`, `platform:admin`) and a tenant's own
//! OAuth app for one (`PUT`/`DELETE /v1/tenants/{id}/integrations/{integration}/app`,
//! `tenant:admin` on the tenant or `platform:admin`).
//!
//! Client secrets are sealed in the vault before they are recorded and never returned:
//! `client_secret_set` says whether there is one. A `PUT` without `client_secret` keeps the
//! recorded one. The redirect URI to register at the provider is
//! `{public URL}/oauth/callback/{integration}` (seed 004's callback path), shown as
//! `redirect_uri`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::integration::{Definition, Integration};
use tessera_domain::integration_app::IntegrationApp;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{PlatformAdmin, TenantAdmin};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/integrations/{integration}",
            put(put_integration)
                .get(get_integration)
                .delete(delete_integration),
        )
        .route(
            "/v1/tenants/{id}/integrations/{integration}/app",
            put(put_app).get(get_app).delete(delete_app),
        )
}

/// An integration's definition. `provider` is `notion`, `github`, `google`, `slack` or
/// `generic_oauth2`; only `generic_oauth2` takes the URLs (the others' are built in).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationRequest {
    pub provider: String,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub revocation_url: Option<String>,
    pub client_id: String,
    /// Required the first time; left out, the recorded secret stays.
    pub client_secret: Option<String>,
    /// Default: the provider's default scopes.
    pub scopes: Option<Vec<String>>,
}

/// An integration as defined; never its secret.
#[derive(Serialize, ToSchema)]
pub struct IntegrationView {
    pub integration: String,
    pub provider: String,
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    /// The provider takes PKCE (S256).
    pub pkce: bool,
    /// The provider issues refresh tokens, which Tessera uses before tokens expire.
    pub refreshes: bool,
    /// What to register at the provider: `{public URL}/oauth/callback/{integration}`.
    pub redirect_uri: String,
}

/// A tenant's own OAuth app for an integration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppRequest {
    pub client_id: String,
    /// Required the first time; left out, the recorded secret stays.
    pub client_secret: Option<String>,
    /// Scopes instead of the integration's; default: the integration's.
    pub scopes: Option<Vec<String>>,
}

/// A tenant's own app; never its secret.
#[derive(Serialize, ToSchema)]
pub struct AppView {
    pub integration: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Option<Vec<String>>,
    pub redirect_uri: String,
}

/// `{public URL}/oauth/callback/{integration}`.
pub fn redirect_uri(state: &AppState, integration: &str) -> String {
    format!("{}/oauth/callback/{integration}", state.public_url)
}

fn view(state: &AppState, name: &str, integration: Integration) -> IntegrationView {
    IntegrationView {
        integration: name.to_owned(),
        redirect_uri: redirect_uri(state, name),
        client_secret_set: !integration.sealed_client_secret.is_empty(),
        provider: integration.provider,
        authorization_url: integration.authorization_url,
        token_url: integration.token_url,
        revocation_url: integration.revocation_url,
        client_id: integration.client_id,
        scopes: integration.scopes,
        pkce: integration.pkce,
        refreshes: integration.refreshes,
    }
}

fn app_view(state: &AppState, name: &str, app: IntegrationApp) -> AppView {
    AppView {
        integration: name.to_owned(),
        redirect_uri: redirect_uri(state, name),
        client_secret_set: !app.sealed_client_secret.is_empty(),
        client_id: app.client_id,
        scopes: app.scopes,
    }
}

fn not_found(name: &str, what: &str) -> impl Fn(tessera_commands::CommandError) -> ApiError {
    let label = format!("{what} {name}");
    move |error| match error {
        tessera_commands::CommandError::NotFound { kind, id } => {
            ApiError::NotFound(format!("{kind} {id}"))
        }
        tessera_commands::CommandError::Rejected(tessera_domain::DomainError::NotFound) => {
            ApiError::NotFound(label.clone())
        }
        other => other.into(),
    }
}

/// Defines (or replaces) an integration. Needs `platform:admin`.
#[utoipa::path(put, path = "/v1/integrations/{integration}", tag = "integrations", request_body = IntegrationRequest,
    params(("integration" = String, Path, description = "integration name")),
    responses((status = 200, body = IntegrationView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_integration(
    PlatformAdmin(admin): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<IntegrationRequest>,
) -> Result<Json<IntegrationView>, ApiError> {
    let definition = Definition {
        provider: body.provider,
        authorization_url: body.authorization_url,
        token_url: body.token_url,
        revocation_url: body.revocation_url,
        client_id: body.client_id,
        scopes: body.scopes,
    };
    if body.client_secret.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::validation(
            "client_secret",
            "must not be empty; leave it out to keep the recorded one",
        ));
    }
    state
        .commands
        .define_integration(
            ctx.metadata(admin.actor()),
            &name,
            definition,
            body.client_secret.as_deref(),
        )
        .await?;
    let integration = state
        .commands
        .integration(&name)
        .await?
        .ok_or_else(|| ApiError::Internal("defined integration missing".into()))?;
    Ok(Json(view(&state, &name, integration)))
}

/// An integration, without its secret. Needs `platform:admin`.
#[utoipa::path(get, path = "/v1/integrations/{integration}", tag = "integrations",
    params(("integration" = String, Path, description = "integration name")),
    responses((status = 200, body = IntegrationView), (status = 404, body = ErrorBody)))]
pub async fn get_integration(
    PlatformAdmin(_): PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<IntegrationView>, ApiError> {
    let integration = state
        .commands
        .integration(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("integration {name}")))?;
    Ok(Json(view(&state, &name, integration)))
}

/// Removes an integration: no new connect flow starts; connections stay. Needs
/// `platform:admin`.
#[utoipa::path(delete, path = "/v1/integrations/{integration}", tag = "integrations",
    params(("integration" = String, Path, description = "integration name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_integration(
    PlatformAdmin(admin): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .commands
        .remove_integration(ctx.metadata(admin.actor()), &name)
        .await
        .map_err(not_found(&name, "integration"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the tenant's own OAuth app for an integration (sealed under the tenant's vault).
/// Needs `tenant:admin` on the tenant or `platform:admin`.
#[utoipa::path(put, path = "/v1/tenants/{id}/integrations/{integration}/app", tag = "integrations", request_body = AppRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("integration" = String, Path, description = "integration name")),
    responses((status = 200, body = AppView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_app(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, name)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<AppRequest>,
) -> Result<Json<AppView>, ApiError> {
    if body.client_secret.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::validation(
            "client_secret",
            "must not be empty; leave it out to keep the recorded one",
        ));
    }
    state
        .commands
        .set_integration_app(
            ctx.metadata(admin.principal.actor()),
            admin.tenant_id,
            &name,
            &body.client_id,
            body.client_secret.as_deref(),
            body.scopes,
        )
        .await
        .map_err(not_found(&name, "integration"))?;
    let app = state
        .commands
        .integration_app(admin.tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::Internal("set app missing".into()))?;
    Ok(Json(app_view(&state, &name, app)))
}

/// The tenant's own OAuth app, without its secret. Needs `tenant:admin` on the tenant or
/// `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/integrations/{integration}/app", tag = "integrations",
    params(("id" = Uuid, Path, description = "tenant id"), ("integration" = String, Path, description = "integration name")),
    responses((status = 200, body = AppView), (status = 404, body = ErrorBody)))]
pub async fn get_app(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, name)): ApiPath<(Uuid, String)>,
) -> Result<Json<AppView>, ApiError> {
    let app = state
        .commands
        .integration_app(tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("integration app {name}")))?;
    Ok(Json(app_view(&state, &name, app)))
}

/// Removes the tenant's own app: the tenant is back on the platform's. Needs `tenant:admin` on
/// the tenant or `platform:admin`.
#[utoipa::path(delete, path = "/v1/tenants/{id}/integrations/{integration}/app", tag = "integrations",
    params(("id" = Uuid, Path, description = "tenant id"), ("integration" = String, Path, description = "integration name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_app(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, name)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .commands
        .remove_integration_app(
            ctx.metadata(admin.principal.actor()),
            admin.tenant_id,
            &name,
        )
        .await
        .map_err(not_found(&name, "integration app"))?;
    Ok(StatusCode::NO_CONTENT)
}
