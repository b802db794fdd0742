//! A tenant's upstream identity providers (issue 19): seed 002's
//! `PUT`/`GET`/`DELETE /v1/tenants/{id}/federation` (the provider `default`), and beside it
//! `/v1/tenants/{id}/identity-providers/{alias}` for more than one.
//!
//! Seed 002's field names and defaults. A `PUT` on a configured provider keeps what it leaves
//! out (the seed changes `allowed_domains` alone that way), the client secret included. Every
//! `PUT` fetches the discovery document (timeout, no redirects) and answers 400 naming the
//! problem: unreachable, issuer mismatch (Entra's `{tenantid}` template accepted), missing
//! endpoints. The client secret is sealed before it is recorded and never returned:
//! `client_secret_set` says whether there is one. Reading needs `tenant:admin` on the tenant
//! or `platform:admin`; changing needs `platform:admin` (seed 002's sysadmin), checked by the
//! [`ProviderAdmin`] extractor before the body is read, so a key without the right gets 403
//! (or 404 for another tenant) whatever its body says, never a 400 naming a field.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::put;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::identity_provider::{
    self, DEFAULT_ALIAS, DEFAULT_REDIRECT_PATH, IdentityProvider,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::TenantAdmin;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{id}/federation",
            put(put_default).get(get_default).delete(delete_default),
        )
        .route(
            "/v1/tenants/{id}/identity-providers/{alias}",
            put(put_alias).get(get_alias).delete(delete_alias),
        )
}

/// Seed 002's federation configuration. Required on first configuration: `provider`,
/// `canonical_public_origin`, `client_id`, `client_secret`, and `discovery_endpoint` or the
/// explicit endpoints (`authorization_endpoint`, `token_endpoint`, `jwks_uri`, with `issuer`).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FederationRequest {
    /// `entra_id`, `okta`, `auth0`, `mobilityguard` or `generic_oidc`.
    pub provider: Option<String>,
    /// What "Sign in with ..." says; default: the tenant's name.
    pub display_name: Option<String>,
    pub canonical_public_origin: Option<String>,
    pub discovery_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    /// The upstream's issuer, for explicit endpoints without discovery.
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Default `["openid", "email", "profile"]`.
    pub scopes: Option<Vec<String>>,
    /// Default `[]` (every domain).
    pub allowed_domains: Option<Vec<String>>,
    /// Default `{"email": "email"}`.
    pub claims_mapping: Option<BTreeMap<String, String>>,
    /// Default `/login/callback`.
    pub redirect_path: Option<String>,
    /// Take the upstream's address as verified without `email_verified` (Entra). Default false.
    pub trust_email: Option<bool>,
}

/// A provider as configured; never the secret.
#[derive(Serialize, ToSchema)]
pub struct FederationView {
    pub alias: String,
    pub provider: String,
    pub display_name: String,
    pub canonical_public_origin: String,
    pub redirect_path: String,
    /// `{canonical_public_origin}{redirect_path}`: what to register at the upstream.
    pub redirect_uri: String,
    pub discovery_endpoint: Option<String>,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub claims_mapping: BTreeMap<String, String>,
    pub trust_email: bool,
}

fn view(alias: &str, provider: IdentityProvider) -> FederationView {
    FederationView {
        alias: alias.to_owned(),
        redirect_uri: provider.redirect_uri(),
        client_secret_set: !provider.sealed_client_secret.is_empty(),
        provider: provider.provider,
        display_name: provider.display_name,
        canonical_public_origin: provider.canonical_public_origin,
        redirect_path: provider.redirect_path,
        discovery_endpoint: provider.discovery_endpoint,
        issuer: provider.issuer,
        authorization_endpoint: provider.authorization_endpoint,
        token_endpoint: provider.token_endpoint,
        jwks_uri: provider.jwks_uri,
        client_id: provider.client_id,
        scopes: provider.scopes,
        allowed_domains: provider.allowed_domains,
        claims_mapping: provider.claims_mapping,
        trust_email: provider.trust_email,
    }
}

/// A platform admin acting on the tenant `{id}` of the path: [`TenantAdmin`] (another tenant
/// is 404), then `platform:admin` (403). As an extractor it runs before the JSON body is
/// parsed, as README's Security section promises.
pub struct ProviderAdmin(TenantAdmin);

impl FromRequestParts<AppState> for ProviderAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = TenantAdmin::from_request_parts(parts, state).await?;
        admin.principal.require_platform_admin()?;
        Ok(Self(admin))
    }
}

/// Whether `url` has the origin (scheme, host, port) of this server's public URL: the
/// callbacks Tessera itself serves.
fn same_origin(url: &str, public_url: &str) -> bool {
    match (reqwest::Url::parse(url), reqwest::Url::parse(public_url)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// The route prefix a colliding path is under, as the refusal names it.
fn canonical_prefix(path: &str) -> String {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    format!("/{first}")
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::validation(field, format!("{field} is required")))
}

/// The configuration a `PUT` asks for: the body over what is configured, with the upstream's
/// discovery document fetched and checked.
async fn merged(
    state: &AppState,
    tenant_id: Uuid,
    current: Option<IdentityProvider>,
    body: FederationRequest,
) -> Result<IdentityProvider, ApiError> {
    let keep = |value: Option<String>, from: fn(&IdentityProvider) -> &String| {
        value.or_else(|| current.as_ref().map(|c| from(c).clone()))
    };
    let discovery_endpoint = body
        .discovery_endpoint
        .clone()
        .or_else(|| current.as_ref().and_then(|c| c.discovery_endpoint.clone()))
        .filter(|url| !url.is_empty());
    let discovered =
        match &discovery_endpoint {
            Some(url) => {
                identity_provider::endpoint("discovery_endpoint", url)?;
                Some(state.upstream.discover(url).await.map_err(|error| {
                    ApiError::validation("discovery_endpoint", error.to_string())
                })?)
            }
            None => None,
        };
    let pick = |explicit: Option<String>,
                found: Option<String>,
                from: fn(&IdentityProvider) -> &String| {
        explicit.or(found).or_else(|| {
            // Without discovery, an endpoint left out keeps the one configured.
            discovery_endpoint
                .is_none()
                .then(|| current.as_ref().map(|c| from(c).clone()))
                .flatten()
        })
    };
    let d = discovered.clone();
    let authorization_endpoint = pick(
        body.authorization_endpoint,
        d.as_ref().and_then(|d| d.authorization_endpoint.clone()),
        |c| &c.authorization_endpoint,
    );
    let token_endpoint = pick(
        body.token_endpoint,
        d.as_ref().and_then(|d| d.token_endpoint.clone()),
        |c| &c.token_endpoint,
    );
    let jwks_uri = pick(
        body.jwks_uri,
        d.as_ref().and_then(|d| d.jwks_uri.clone()),
        |c| &c.jwks_uri,
    );
    let missing: Vec<&str> = [
        ("authorization_endpoint", &authorization_endpoint),
        ("token_endpoint", &token_endpoint),
        ("jwks_uri", &jwks_uri),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_none())
    .map(|(name, _)| name)
    .collect();
    if !missing.is_empty() {
        return Err(ApiError::validation(
            missing[0],
            format!(
                "missing endpoints: {} (give discovery_endpoint, or each endpoint explicitly)",
                missing.join(", ")
            ),
        ));
    }
    let issuer = body
        .issuer
        .or(d.map(|d| d.issuer))
        .or_else(|| current.as_ref().map(|c| c.issuer.clone()));
    let tenant_name = state
        .directory
        .tenant(tenant_id)
        .and_then(|t| t.tenant.as_ref().map(|t| t.name.clone()))
        .unwrap_or_default();
    Ok(IdentityProvider {
        provider: required(keep(body.provider, |c| &c.provider), "provider")?,
        display_name: keep(body.display_name, |c| &c.display_name).unwrap_or(tenant_name),
        canonical_public_origin: required(
            keep(body.canonical_public_origin, |c| &c.canonical_public_origin),
            "canonical_public_origin",
        )?,
        redirect_path: keep(body.redirect_path, |c| &c.redirect_path)
            .unwrap_or_else(|| DEFAULT_REDIRECT_PATH.to_owned()),
        discovery_endpoint,
        issuer: required(issuer, "issuer")?,
        authorization_endpoint: authorization_endpoint.unwrap_or_default(),
        token_endpoint: token_endpoint.unwrap_or_default(),
        jwks_uri: jwks_uri.unwrap_or_default(),
        client_id: required(keep(body.client_id, |c| &c.client_id), "client_id")?,
        sealed_client_secret: Vec::new(),
        scopes: body
            .scopes
            .or_else(|| current.as_ref().map(|c| c.scopes.clone()))
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]),
        allowed_domains: body
            .allowed_domains
            .or_else(|| current.as_ref().map(|c| c.allowed_domains.clone()))
            .unwrap_or_default(),
        claims_mapping: body
            .claims_mapping
            .or_else(|| current.as_ref().map(|c| c.claims_mapping.clone()))
            .unwrap_or_default(),
        trust_email: body
            .trust_email
            .or_else(|| current.as_ref().map(|c| c.trust_email))
            .unwrap_or(false),
        previous_redirect_uri: None,
        previous_until: None,
    })
}

async fn put_provider(
    ProviderAdmin(admin): ProviderAdmin,
    state: AppState,
    ctx: RequestContext,
    alias: &str,
    body: FederationRequest,
) -> Result<Json<FederationView>, ApiError> {
    identity_provider::alias(alias)?;
    let tenant_id = admin.tenant_id;
    let current = state.commands.identity_provider(tenant_id, alias).await?;
    let secret = body.client_secret.clone().filter(|s| !s.is_empty());
    if current.is_none() && secret.is_none() {
        return Err(ApiError::validation(
            "client_secret",
            "client_secret is required",
        ));
    }
    let config = merged(&state, tenant_id, current, body).await?;
    if same_origin(&config.canonical_public_origin, &state.public_url)
        && crate::federation::collides_with_own_routes(&config.redirect_path)
    {
        return Err(ApiError::validation(
            "redirect_path",
            format!(
                "{} is under one of Tessera's own routes on this server ({}); choose another \
                 path, such as {DEFAULT_REDIRECT_PATH}",
                config.redirect_path,
                canonical_prefix(&config.redirect_path)
            ),
        ));
    }
    let position = state
        .commands
        .configure_identity_provider(
            ctx.metadata(admin.principal.actor()),
            tenant_id,
            alias,
            config,
            secret.as_deref(),
            state.federation.redirect_grace_seconds,
        )
        .await
        .map_err(super::entitlements::named)?;
    // Read-your-writes: the sign-in page lists the tenant's providers from the read model.
    state.projected(position).await?;
    let provider = state
        .commands
        .identity_provider(tenant_id, alias)
        .await?
        .ok_or_else(|| ApiError::Internal("configured provider missing".into()))?;
    Ok(Json(view(alias, provider)))
}

async fn get_provider(
    state: &AppState,
    tenant_id: Uuid,
    alias: &str,
) -> Result<Json<FederationView>, ApiError> {
    identity_provider::alias(alias)?;
    let provider = state
        .commands
        .identity_provider(tenant_id, alias)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("identity provider {alias}")))?;
    Ok(Json(view(alias, provider)))
}

async fn delete_provider(
    ProviderAdmin(admin): ProviderAdmin,
    state: AppState,
    ctx: RequestContext,
    alias: &str,
) -> Result<StatusCode, ApiError> {
    identity_provider::alias(alias)?;
    let position = state
        .commands
        .remove_identity_provider(
            ctx.metadata(admin.principal.actor()),
            admin.tenant_id,
            alias,
        )
        .await
        .map_err(|error| match error {
            tessera_commands::CommandError::NotFound { .. }
            | tessera_commands::CommandError::Rejected(tessera_domain::DomainError::NotFound) => {
                ApiError::NotFound(format!("identity provider {alias}"))
            }
            other => other.into(),
        })?;
    state.projected(position).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Seed 002's `PUT .../federation`: configures the tenant's provider (`default`). Needs
/// `platform:admin`.
#[utoipa::path(put, path = "/v1/tenants/{id}/federation", tag = "federation", request_body = FederationRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = FederationView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_default(
    admin: ProviderAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<FederationRequest>,
) -> Result<Json<FederationView>, ApiError> {
    put_provider(admin, state, ctx, DEFAULT_ALIAS, body).await
}

/// The tenant's provider (`default`), without its secret. Needs `tenant:admin` or
/// `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/federation", tag = "federation",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = FederationView), (status = 404, body = ErrorBody)))]
pub async fn get_default(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
) -> Result<Json<FederationView>, ApiError> {
    get_provider(&state, tenant_id, DEFAULT_ALIAS).await
}

/// Removes the tenant's provider (`default`). Needs `platform:admin`.
#[utoipa::path(delete, path = "/v1/tenants/{id}/federation", tag = "federation",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_default(
    admin: ProviderAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<StatusCode, ApiError> {
    delete_provider(admin, state, ctx, DEFAULT_ALIAS).await
}

/// Configures one of the tenant's providers by alias. Needs `platform:admin`.
#[utoipa::path(put, path = "/v1/tenants/{id}/identity-providers/{alias}", tag = "federation", request_body = FederationRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("alias" = String, Path, description = "provider alias")),
    responses((status = 200, body = FederationView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_alias(
    admin: ProviderAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, alias)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<FederationRequest>,
) -> Result<Json<FederationView>, ApiError> {
    put_provider(admin, state, ctx, &alias, body).await
}

/// One of the tenant's providers by alias. Needs `tenant:admin` or `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/identity-providers/{alias}", tag = "federation",
    params(("id" = Uuid, Path, description = "tenant id"), ("alias" = String, Path, description = "provider alias")),
    responses((status = 200, body = FederationView), (status = 404, body = ErrorBody)))]
pub async fn get_alias(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, alias)): ApiPath<(Uuid, String)>,
) -> Result<Json<FederationView>, ApiError> {
    get_provider(&state, tenant_id, &alias).await
}

/// Removes one of the tenant's providers. Needs `platform:admin`.
#[utoipa::path(delete, path = "/v1/tenants/{id}/identity-providers/{alias}", tag = "federation",
    params(("id" = Uuid, Path, description = "tenant id"), ("alias" = String, Path, description = "provider alias")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_alias(
    admin: ProviderAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, alias)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    delete_provider(admin, state, ctx, &alias).await
}
