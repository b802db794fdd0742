//! Discovery documents and the JWKS of each tenant's issuer.
//!
//! The metadata lists what issue 17 implements (the authorization code flow with PKCE, ID
//! tokens in RS256 or ES256, userinfo, refresh tokens, RP-Initiated and Back-Channel Logout),
//! served at the OpenID configuration's path, at RFC 8414's (`/.well-known/
//! oauth-authorization-server/t/{slug}`) and, as before, under the issuer's path. The JWKS
//! holds the active keys (one per algorithm) and every rotated-out key not yet retired, and may be cached for five minutes, so a rotation reaches
//! relying parties within minutes while they refetch at most once per five.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_domain::tenant::{KeyStatus, TenantKey};
use utoipa::ToSchema;

use super::{OAuthError, Slug, issuer, tenant_known};
use crate::routes::tenants::jwk_json;
use crate::state::AppState;

/// How long relying parties may cache the JWKS.
pub const JWKS_MAX_AGE_SECS: u32 = 300;

/// Authorization server metadata (RFC 8414); also served as the OpenID configuration
/// (OpenID Connect Discovery 1.0 §3), so it holds the members of both.
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    /// RP-Initiated Logout 1.0.
    pub end_session_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub acr_values_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    /// OpenID Connect Discovery's defaults for these two are `false` and `true`: the second
    /// must be said, since `request_uri` is refused.
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub claims_parameter_supported: bool,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub backchannel_logout_supported: bool,
    /// Logout tokens carry the session's `sid`.
    pub backchannel_logout_session_supported: bool,
}

/// The scopes of OpenID Connect that the server gives meaning to; a client's own scopes are
/// its own business and not listed.
const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// The claims an ID token or userinfo can carry (ADR 0003).
const CLAIMS: [&str; 17] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "name",
    "given_name",
    "family_name",
    "email",
    "email_verified",
];

async fn server_metadata(state: &AppState, slug: &str) -> Result<ServerMetadata, OAuthError> {
    let tenant = tenant_known(state, slug).await?;
    let tenant = tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    let issuer = issuer(state, &tenant.slug);
    let auth_methods = vec!["client_secret_basic", "client_secret_post"];
    Ok(ServerMetadata {
        authorization_endpoint: format!("{issuer}/oauth/authorize"),
        token_endpoint: format!("{issuer}/oauth/token"),
        userinfo_endpoint: format!("{issuer}/oauth/userinfo"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        end_session_endpoint: format!("{issuer}/oauth/logout"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        issuer,
        scopes_supported: SCOPES.to_vec(),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: vec!["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec!["RS256", "ES256"],
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        code_challenge_methods_supported: vec!["S256"],
        claims_supported: CLAIMS.to_vec(),
        acr_values_supported: vec!["1", "2"],
        prompt_values_supported: vec!["none", "login", "consent"],
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        claims_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
    })
}

/// RFC 8414 authorization server metadata of the tenant's issuer, where RFC 8414 §3.1 puts
/// it: the well-known segment inserted before the issuer's path. Public.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server/t/{slug}", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    security(()),
    responses((status = 200, body = ServerMetadata), (status = 404)))]
pub async fn authorization_server_metadata(
    State(state): State<AppState>,
    Slug(slug): Slug,
) -> Result<Json<ServerMetadata>, OAuthError> {
    server_metadata(&state, &slug).await.map(Json)
}

/// The same metadata under the issuer's path, where it was served first (and where clients
/// that append the well-known segment to the issuer look). Public.
#[utoipa::path(get, path = "/t/{slug}/.well-known/oauth-authorization-server", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    security(()),
    responses((status = 200, body = ServerMetadata), (status = 404)))]
pub async fn authorization_server_metadata_under_issuer(
    State(state): State<AppState>,
    Slug(slug): Slug,
) -> Result<Json<ServerMetadata>, OAuthError> {
    server_metadata(&state, &slug).await.map(Json)
}

/// OpenID Connect discovery document of the tenant's issuer (the same metadata). Public.
#[utoipa::path(get, path = "/t/{slug}/.well-known/openid-configuration", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    security(()),
    responses((status = 200, body = ServerMetadata), (status = 404)))]
pub async fn openid_configuration(
    State(state): State<AppState>,
    Slug(slug): Slug,
) -> Result<Json<ServerMetadata>, OAuthError> {
    server_metadata(&state, &slug).await.map(Json)
}

/// The tenant's public signing keys (RFC 7517): the active one and those rotated out but not
/// retired. Public; cacheable for five minutes.
#[utoipa::path(get, path = "/t/{slug}/.well-known/jwks.json", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    security(()),
    responses((status = 200, description = "JWK Set"), (status = 404)))]
pub async fn jwks(State(state): State<AppState>, Slug(slug): Slug) -> Result<Response, OAuthError> {
    let tenant = tenant_known(&state, &slug).await?;
    let tenant = tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    // The default key leads, then the other active keys (RS256 for ID tokens), then those
    // rotated out, newest first: relying parties that take the first key of an algorithm
    // take the one that signs.
    let rank = |key: &TenantKey| match key.status {
        _ if key.kid == tenant.active_kid => 0,
        KeyStatus::Active => 1,
        _ => 2,
    };
    let mut published: Vec<&TenantKey> = tenant
        .keys
        .iter()
        .rev()
        .filter(|key| key.status != KeyStatus::Retired)
        .collect();
    published.sort_by_key(|key| rank(key));
    let keys: Vec<serde_json::Value> = published
        .into_iter()
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
