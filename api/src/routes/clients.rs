//! `/v1/tenants/{id}/clients`: OAuth clients of a tenant. A confidential client's secret is
//! returned once, at registration and at regeneration; only its keyed hash is stored.
//!
//! Seed 001's shape is accepted too: `scopes` is an alias of `allowed_scopes` (naming both is a
//! 400); `name`, `client_type`, `grant_types` and `redirect_uris` are already ours. The OpenID
//! Connect settings default to [`OidcClientSettingsV1::default`] when registration leaves them
//! out.
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
use tessera_event_schemas::events::{ClientType, OidcClientSettingsV1, SigningAlg};
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
    /// `confidential` (default) or `public` (no secret; PKCE required at authorization).
    pub client_type: Option<String>,
    /// Default: `["client_credentials"]`.
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Option<Vec<String>>,
    /// Seed 001's name for `allowed_scopes`; give one of the two, not both.
    pub scopes: Option<Vec<String>>,
    /// 60 to 86400; default 3600.
    pub access_token_ttl_secs: Option<u32>,
    /// Where RP-Initiated Logout may return to, matched exactly. Default: none.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Whether people are asked to allow the client its scopes. Default: true.
    pub require_consent: Option<bool>,
    /// Absolute lifetime of a refresh-token family, 300 to 31536000. Default: 2592000 (30 days).
    pub refresh_token_ttl_secs: Option<u32>,
    /// Idle timeout of a refresh-token family, 60 up to `refresh_token_ttl_secs`. Default:
    /// 1209600 (14 days).
    pub refresh_token_idle_secs: Option<u32>,
    /// Issue a refresh token on every code exchange, not only with `offline_access`. Default:
    /// false.
    pub refresh_without_offline_access: Option<bool>,
    /// `RS256` (default) or `ES256`.
    pub id_token_signed_response_alg: Option<String>,
    /// Back-Channel Logout 1.0: https (or loopback http), no fragment. Default: none.
    pub backchannel_logout_uri: Option<String>,
}

/// A partial update: absent fields stay; `backchannel_logout_uri: null` removes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub allowed_scopes: Option<Vec<String>>,
    /// Seed 001's name for `allowed_scopes`; give one of the two, not both.
    pub scopes: Option<Vec<String>>,
    pub access_token_ttl_secs: Option<u32>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub require_consent: Option<bool>,
    pub refresh_token_ttl_secs: Option<u32>,
    pub refresh_token_idle_secs: Option<u32>,
    pub refresh_without_offline_access: Option<bool>,
    /// `RS256` or `ES256`.
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default, deserialize_with = "super::users::present")]
    #[schema(value_type = Option<String>)]
    pub backchannel_logout_uri: Option<Option<String>>,
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
    pub post_logout_redirect_uris: Vec<String>,
    pub require_consent: bool,
    pub refresh_token_ttl_secs: u32,
    pub refresh_token_idle_secs: u32,
    pub refresh_without_offline_access: bool,
    /// `RS256` or `ES256`.
    pub id_token_signed_response_alg: &'static str,
    /// `token_endpoint_auth_method` in RFC 7591's terms: `client_secret_basic` (a
    /// confidential client; `client_secret_post` works too) or `none` (a public client).
    pub token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
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
        post_logout_redirect_uris: client.oidc.post_logout_redirect_uris.clone(),
        require_consent: client.oidc.require_consent,
        refresh_token_ttl_secs: client.oidc.refresh_token_ttl_secs,
        refresh_token_idle_secs: client.oidc.refresh_token_idle_secs,
        refresh_without_offline_access: client.oidc.refresh_without_offline_access,
        id_token_signed_response_alg: client.oidc.id_token_signed_response_alg.as_str(),
        token_endpoint_auth_method: match client.client_type {
            ClientType::Confidential => "client_secret_basic",
            ClientType::Public => "none",
        },
        backchannel_logout_uri: client.oidc.backchannel_logout_uri.clone(),
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

/// `allowed_scopes`, or seed 001's `scopes`; never both.
fn scopes(
    allowed_scopes: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ApiError> {
    match (allowed_scopes, scopes) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "scopes",
            "give allowed_scopes or its alias scopes, not both",
        )),
        (allowed, alias) => Ok(allowed.or(alias)),
    }
}

/// An ID token algorithm by name (the domain decides which are allowed).
fn parse_alg(text: Option<&str>) -> Result<Option<SigningAlg>, ApiError> {
    text.map(|name| {
        SigningAlg::parse(name).ok_or_else(|| {
            ApiError::validation(
                "id_token_signed_response_alg",
                format!("{name:?} is not RS256 or ES256"),
            )
        })
    })
    .transpose()
}

/// The OpenID Connect settings of a registration: each field given, else the default's.
fn oidc_settings(body: &RegisterClientRequest) -> Result<OidcClientSettingsV1, ApiError> {
    let default = OidcClientSettingsV1::default();
    Ok(OidcClientSettingsV1 {
        post_logout_redirect_uris: body
            .post_logout_redirect_uris
            .clone()
            .unwrap_or(default.post_logout_redirect_uris),
        require_consent: body.require_consent.unwrap_or(default.require_consent),
        refresh_token_ttl_secs: body
            .refresh_token_ttl_secs
            .unwrap_or(default.refresh_token_ttl_secs),
        refresh_token_idle_secs: body
            .refresh_token_idle_secs
            .unwrap_or(default.refresh_token_idle_secs),
        refresh_without_offline_access: body
            .refresh_without_offline_access
            .unwrap_or(default.refresh_without_offline_access),
        id_token_signed_response_alg: parse_alg(body.id_token_signed_response_alg.as_deref())?
            .unwrap_or(default.id_token_signed_response_alg),
        backchannel_logout_uri: body
            .backchannel_logout_uri
            .clone()
            .or(default.backchannel_logout_uri),
    })
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
    let oidc = oidc_settings(&body)?;
    let allowed_scopes = scopes(body.allowed_scopes, body.scopes)?.unwrap_or_default();
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
                allowed_scopes,
                access_token_ttl_secs: body.access_token_ttl_secs,
                created_by: principal.name.clone(),
                oidc,
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

/// Changes a client's name, grant types, redirect URIs, scopes, token lifetime or OpenID
/// Connect settings. Needs
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
    let changes = ClientChanges {
        id_token_signed_response_alg: parse_alg(body.id_token_signed_response_alg.as_deref())?,
        allowed_scopes: scopes(body.allowed_scopes, body.scopes)?,
        name: body.name,
        grant_types: body.grant_types,
        redirect_uris: body.redirect_uris,
        access_token_ttl_secs: body.access_token_ttl_secs,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        require_consent: body.require_consent,
        refresh_token_ttl_secs: body.refresh_token_ttl_secs,
        refresh_token_idle_secs: body.refresh_token_idle_secs,
        refresh_without_offline_access: body.refresh_without_offline_access,
        backchannel_logout_uri: body.backchannel_logout_uri,
    };
    let done = state
        .commands
        .update_client(
            ctx.metadata(principal.actor()),
            tenant_id,
            &client_id,
            changes,
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
