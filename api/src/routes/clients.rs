//! `/v1/tenants/{id}/clients`: OAuth clients of a tenant. A confidential client's secret is
//! returned once, at registration and at regeneration; only its keyed hash is stored.
//!
//! Clients are read from the in-memory OAuth directory, which is what the token endpoint
//! authenticates against, so an admin read after a write shows exactly what the authorization
//! server will do.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tessera_commands::RegisterClient;
use tessera_domain::oauth_client::{ClientChanges, GRANT_CLIENT_CREDENTIALS};
use tessera_event_schemas::events::ClientType;
use tessera_projections::ClientEntry;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageQuery;
use crate::auth::TenantAdmin;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{id}/clients",
            get(list_clients).post(register_client),
        )
        .route(
            "/v1/tenants/{id}/clients/{client_id}",
            get(get_client).put(update_client).delete(deactivate_client),
        )
        .route(
            "/v1/tenants/{id}/clients/{client_id}/secret",
            post(regenerate_secret),
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterClientRequest {
    pub name: String,
    /// `confidential` (default) or `public`.
    pub client_type: Option<String>,
    /// Default: `["client_credentials"]`.
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// 60 to 86400; default 3600.
    pub access_token_ttl_secs: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub allowed_scopes: Option<Vec<String>>,
    pub access_token_ttl_secs: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct Client {
    pub client_id: String,
    pub tenant_id: Uuid,
    pub name: String,
    /// `confidential` or `public`.
    pub client_type: &'static str,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub access_token_ttl_secs: u32,
    /// False once deactivated: it can no longer authenticate and its tokens are inactive.
    pub active: bool,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientWithSecret {
    pub client: Client,
    /// The client secret. Shown only in this response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub warning: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<Client>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

const SECRET_WARNING: &str =
    "Store this client secret now: it is shown only once and cannot be recovered.";

fn to_dto(entry: &ClientEntry) -> Client {
    let client = &entry.client;
    Client {
        client_id: client.client_id.clone(),
        tenant_id: entry.tenant_id,
        name: client.name.clone(),
        client_type: client.client_type.as_str(),
        grant_types: client.grant_types.clone(),
        redirect_uris: client.redirect_uris.clone(),
        allowed_scopes: client.allowed_scopes.clone(),
        access_token_ttl_secs: client.access_token_ttl_secs,
        active: client.active,
        created_by: client.created_by.clone(),
        created_at: entry.created_at.to_rfc3339(),
        updated_at: entry.updated_at.to_rfc3339(),
        deactivated_at: entry.deactivated_at.map(|t| t.to_rfc3339()),
    }
}

fn parse_client_type(text: Option<&str>) -> Result<ClientType, ApiError> {
    match text {
        None | Some("confidential") => Ok(ClientType::Confidential),
        Some("public") => Ok(ClientType::Public),
        Some(other) => Err(ApiError::validation(
            "client_type",
            format!("{other:?} is not confidential or public"),
        )),
    }
}

/// Waits for the directory to reflect `position`, then reads the client.
async fn read_back(
    state: &AppState,
    position: u64,
    tenant_id: Uuid,
    client_id: &str,
) -> Result<Client, ApiError> {
    state.projected(position).await?;
    state
        .directory
        .client(tenant_id, client_id)
        .map(|entry| to_dto(&entry))
        .ok_or_else(|| ApiError::NotFound(format!("client {client_id}")))
}

/// Registers an OAuth client. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/clients", tag = "clients", request_body = RegisterClientRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 201, body = ClientWithSecret), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn register_client(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RegisterClientRequest>,
) -> Result<(StatusCode, Json<ClientWithSecret>), ApiError> {
    let client_type = parse_client_type(body.client_type.as_deref())?;
    let registered = state
        .commands
        .register_client(
            ctx.metadata(principal.actor()),
            tenant_id,
            RegisterClient {
                name: body.name,
                client_type,
                grant_types: body
                    .grant_types
                    .unwrap_or_else(|| vec![GRANT_CLIENT_CREDENTIALS.to_owned()]),
                redirect_uris: body.redirect_uris,
                allowed_scopes: body.allowed_scopes,
                access_token_ttl_secs: body.access_token_ttl_secs,
                created_by: principal.name.clone(),
                oidc: Default::default(),
            },
        )
        .await?;
    let client = read_back(
        &state,
        registered.position,
        tenant_id,
        &registered.client_id,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ClientWithSecret {
            client,
            client_secret: registered.client_secret,
            warning: SECRET_WARNING,
        }),
    ))
}

/// Lists the tenant's clients by id, never their secrets. Needs `platform:admin`, or
/// `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/clients", tag = "clients",
    params(("id" = Uuid, Path, description = "tenant id"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = ClientPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_clients(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ClientPage>, ApiError> {
    let limit = super::page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| ApiError::validation("cursor", "is not a cursor this API returned"))
        })
        .transpose()?;
    let (items, more) = state
        .directory
        .clients_page(tenant_id, after.as_deref(), limit as usize);
    let next_cursor = more
        .then(|| items.last())
        .flatten()
        .map(|last| URL_SAFE_NO_PAD.encode(last.client.client_id.as_bytes()));
    Ok(Json(ClientPage {
        items: items.iter().map(|entry| to_dto(entry)).collect(),
        next_cursor,
    }))
}

/// Reads one client. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/clients/{client_id}", tag = "clients",
    params(("id" = Uuid, Path, description = "tenant id"), ("client_id" = String, Path, description = "client id")),
    responses((status = 200, body = Client), (status = 404, body = ErrorBody)))]
pub async fn get_client(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, client_id)): ApiPath<(Uuid, String)>,
) -> Result<Json<Client>, ApiError> {
    state
        .directory
        .client(tenant_id, &client_id)
        .map(|entry| Json(to_dto(&entry)))
        .ok_or_else(|| ApiError::NotFound(format!("client {client_id}")))
}

/// Changes a client's name, grant types, redirect URIs, scopes or token lifetime. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(put, path = "/v1/tenants/{id}/clients/{client_id}", tag = "clients", request_body = UpdateClientRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("client_id" = String, Path, description = "client id")),
    responses((status = 200, body = Client), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_client(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, client_id)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<UpdateClientRequest>,
) -> Result<Json<Client>, ApiError> {
    let done = state
        .commands
        .update_client(
            ctx.metadata(principal.actor()),
            tenant_id,
            &client_id,
            ClientChanges {
                name: body.name,
                grant_types: body.grant_types,
                redirect_uris: body.redirect_uris,
                allowed_scopes: body.allowed_scopes,
                access_token_ttl_secs: body.access_token_ttl_secs,
                ..ClientChanges::default()
            },
        )
        .await?;
    read_back(&state, done.position, tenant_id, &client_id)
        .await
        .map(Json)
}

/// Deactivates a client: it can no longer get tokens, and its tokens stop introspecting as
/// active. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/clients/{client_id}", tag = "clients",
    params(("id" = Uuid, Path, description = "tenant id"), ("client_id" = String, Path, description = "client id")),
    responses((status = 200, body = Client), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deactivate_client(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, client_id)): ApiPath<(Uuid, String)>,
) -> Result<Json<Client>, ApiError> {
    let done = state
        .commands
        .deactivate_client(ctx.metadata(principal.actor()), tenant_id, &client_id, None)
        .await?;
    read_back(&state, done.position, tenant_id, &client_id)
        .await
        .map(Json)
}

/// Generates a new client secret; the previous one stops working at once. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/clients/{client_id}/secret", tag = "clients",
    params(("id" = Uuid, Path, description = "tenant id"), ("client_id" = String, Path, description = "client id")),
    responses((status = 200, body = ClientWithSecret), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn regenerate_secret(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, client_id)): ApiPath<(Uuid, String)>,
) -> Result<Json<ClientWithSecret>, ApiError> {
    let regenerated = state
        .commands
        .regenerate_client_secret(ctx.metadata(principal.actor()), tenant_id, &client_id)
        .await?;
    let client = read_back(&state, regenerated.position, tenant_id, &client_id).await?;
    Ok(Json(ClientWithSecret {
        client,
        client_secret: Some(regenerated.client_secret),
        warning: SECRET_WARNING,
    }))
}
