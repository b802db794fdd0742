//! Discovery documents and the JWKS of each tenant's issuer.
//!
//! The metadata lists only what is implemented. The JWKS holds the active key and every
//! rotated-out key not yet retired, and may be cached for five minutes, so a rotation reaches
//! relying parties within minutes while they refetch at most once per five.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_domain::tenant::KeyStatus;
use utoipa::ToSchema;

use super::{OAuthError, Slug, issuer, tenant_of};
use crate::routes::tenants::jwk_json;
use crate::state::AppState;

/// How long relying parties may cache the JWKS.
pub const JWKS_MAX_AGE_SECS: u32 = 300;

/// Authorization server metadata (RFC 8414); also served as the OpenID configuration.
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// No authorization endpoint yet, so no response types.
    pub response_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
}

fn server_metadata(state: &AppState, slug: &str) -> Result<ServerMetadata, OAuthError> {
    let tenant = tenant_of(state, slug)?;
    let tenant = tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    let issuer = issuer(state, &tenant.slug);
    let auth_methods = vec!["client_secret_basic", "client_secret_post"];
    Ok(ServerMetadata {
        token_endpoint: format!("{issuer}/oauth/token"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        issuer,
        grant_types_supported: vec!["client_credentials"],
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        response_types_supported: Vec::new(),
        token_endpoint_auth_signing_alg_values_supported: Vec::new(),
    })
}

/// RFC 8414 authorization server metadata of the tenant's issuer. Public.
#[utoipa::path(get, path = "/t/{slug}/.well-known/oauth-authorization-server", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    responses((status = 200, body = ServerMetadata), (status = 404)))]
pub async fn authorization_server_metadata(
    State(state): State<AppState>,
    Slug(slug): Slug,
) -> Result<Json<ServerMetadata>, OAuthError> {
    server_metadata(&state, &slug).map(Json)
}

/// OpenID Connect discovery document of the tenant's issuer (the same metadata). Public.
#[utoipa::path(get, path = "/t/{slug}/.well-known/openid-configuration", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    responses((status = 200, body = ServerMetadata), (status = 404)))]
pub async fn openid_configuration(
    State(state): State<AppState>,
    Slug(slug): Slug,
) -> Result<Json<ServerMetadata>, OAuthError> {
    server_metadata(&state, &slug).map(Json)
}

/// The tenant's public signing keys (RFC 7517): the active one and those rotated out but not
/// retired. Public; cacheable for five minutes.
#[utoipa::path(get, path = "/t/{slug}/.well-known/jwks.json", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    responses((status = 200, description = "JWK Set"), (status = 404)))]
pub async fn jwks(State(state): State<AppState>, Slug(slug): Slug) -> Result<Response, OAuthError> {
    let tenant = tenant_of(&state, &slug)?;
    let tenant = tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    // Newest first: the active key leads.
    let keys: Vec<serde_json::Value> = tenant
        .keys
        .iter()
        .rev()
        .filter(|key| key.status != KeyStatus::Retired)
        .map(|key| jwk_json(&key.kid, key.alg, &key.public_jwk))
        .collect();
    let mut response = Json(serde_json::json!({ "keys": keys })).into_response();
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}"))
            .unwrap_or(HeaderValue::from_static("no-cache")),
    );
    Ok(response)
}
