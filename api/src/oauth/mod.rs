//! Every tenant an OAuth 2.0 authorization server: `/t/{slug}/...`.
//!
//! - [`authorize`]: the authorization endpoint and its consent page (hosted pages, served
//!   with the pages' rules: see `pages`); [`hint`]: verifying an `id_token_hint`.
//! - [`metadata`]: discovery (RFC 8414 and OpenID Connect Discovery) and the JWKS.
//! - [`token`]: the token endpoint (client credentials, authorization code with PKCE, refresh
//!   token), RFC 9068 JWTs.
//! - [`id_token`]: people's access tokens, ID tokens and the claims of a person.
//! - [`userinfo`]: the OpenID Connect userinfo endpoint.
//! - [`introspection`]: introspection (RFC 7662) and revocation (RFC 7009).
//! - [`logout`]: RP-Initiated Logout 1.0 (a hosted page, routed with the pages).
//! - [`verify`]: recognising a presented access token by its signature, with a bounded cache.
//!
//! These endpoints read the in-memory [`Directory`](tessera_projections::Directory), never
//! the SQL read models, and speak OAuth's error format (`{"error", "error_description"}`, RFC
//! 6749 section 5.2) rather than the admin API's, for every error, including a body over the
//! limit (413), a method an endpoint does not serve (405) and a command that fails ([`error`]).
//! Every response of the token, introspection and revocation endpoints carries
//! `Cache-Control: no-store`.
//!
//! A client authenticates with `client_secret_basic` or `client_secret_post` (RFC 6749 section
//! 2.3.1), never both; a public client (no secret, PKCE required) names itself with
//! `client_id` alone (`none`), which only the token endpoint's people's grants and revocation
//! accept; a request with more than one `Authorization` header is
//! `invalid_request`. Its secret is compared with the stored keyed hash in constant time. A
//! client id that belongs to another tenant is not found, exactly like an unknown one.
//! A bare `client_id` only ever names a client registered as public: PKCE and the refresh
//! token itself bind its requests to it, and introspection and client credentials refuse it.

pub mod authorize;
mod error;
pub mod hint;
pub mod id_token;
pub mod introspection;
pub mod logout;
pub mod metadata;
pub mod tenant_claims;
pub mod token;
pub mod userinfo;
pub mod verify;

pub use error::{OAuthError, no_store};

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_domain::tenant::{Tenant, TenantState};
use tessera_event_schemas::events::ClientType;
use tessera_event_schemas::{Actor, ActorKind, Hash32};
use tessera_projections::ClientEntry;

use crate::extract::{MoreThanOneAuthorization, authorization};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/t/{slug}/.well-known/openid-configuration",
            get(metadata::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server/t/{slug}",
            get(metadata::authorization_server_metadata),
        )
        .route(
            "/t/{slug}/.well-known/oauth-authorization-server",
            get(metadata::authorization_server_metadata_under_issuer),
        )
        .route("/t/{slug}/.well-known/jwks.json", get(metadata::jwks))
        .route("/t/{slug}/oauth/token", post(token::token))
        .route(
            "/t/{slug}/oauth/introspect",
            post(introspection::introspect),
        )
        .route("/t/{slug}/oauth/revoke", post(introspection::revoke))
        .route(
            "/t/{slug}/oauth/userinfo",
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
        // A method an endpoint does not serve is answered in OAuth's form too.
        .method_not_allowed_fallback(|| async { OAuthError::method_not_allowed() })
}

/// The `{slug}` of `/t/{slug}/...`. A path that does not decode is OAuth's `invalid_request`,
/// not the admin API's error.
pub struct Slug(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Slug {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, OAuthError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(slug)) => Ok(Self(slug)),
            Err(rejection) => Err(OAuthError::invalid_request(rejection.body_text())),
        }
    }
}

/// The raw body of a form endpoint. A body over the server's limit is OAuth's 413, with
/// `no-store` like every other answer there, rather than axum's plain-text rejection.
pub struct FormBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, OAuthError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(OAuthError::payload_too_large())
            }
            Err(rejection) => Err(OAuthError::invalid_request(rejection.body_text())),
        }
    }
}

/// The issuer identifier of a tenant.
pub fn issuer(state: &AppState, slug: &str) -> String {
    format!("{}/t/{slug}", state.public_url)
}

/// The tenant behind `/t/{slug}`, if any.
pub fn tenant_of(state: &AppState, slug: &str) -> Result<Arc<TenantState>, OAuthError> {
    state
        .directory
        .tenant_by_slug(slug)
        .filter(|t| t.tenant.is_some())
        .ok_or_else(OAuthError::unknown_issuer)
}

/// [`tenant_of`], looking again once this node has caught up with the log when the slug is
/// unknown: the tenant may have just been created through another node (see
/// [`crate::catch_up`]).
pub async fn tenant_known(state: &AppState, slug: &str) -> Result<Arc<TenantState>, OAuthError> {
    if let Ok(tenant) = tenant_of(state, slug) {
        return Ok(tenant);
    }
    state.catch_up().await;
    tenant_of(state, slug)
}

/// An `application/x-www-form-urlencoded` body. A parameter sent twice is an error (RFC 6749
/// section 3.1), and so is a parameter without a value where one is needed (empty values are
/// treated as absent, as the RFC asks).
#[derive(Debug, Default)]
pub struct FormParams(HashMap<String, String>);

impl FormParams {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter {name} is repeated"
                )));
            }
        }
        Ok(Self(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The client credentials a request presents.
pub struct Credentials {
    pub client_id: String,
    /// `None`: a public client naming itself (`token_endpoint_auth_method: none`).
    secret: Option<String>,
}

impl Credentials {
    /// `client_secret_basic` or `client_secret_post`, never both; or a bare `client_id` (a
    /// public client, method `none`), which each endpoint then accepts or refuses.
    pub fn from_request(headers: &HeaderMap, form: &FormParams) -> Result<Self, OAuthError> {
        let basic = authorization(headers, "basic").map_err(|MoreThanOneAuthorization| {
            OAuthError::invalid_request("send one Authorization header, not several")
        })?;
        let posted_secret = form.get("client_secret");
        match basic {
            Some(encoded) => {
                if posted_secret.is_some() {
                    return Err(OAuthError::invalid_request(
                        "use one client authentication method, not both client_secret_basic and client_secret_post",
                    ));
                }
                let credentials = decode_basic(encoded).ok_or_else(|| {
                    OAuthError::invalid_client("malformed Basic authorization header")
                })?;
                if form
                    .get("client_id")
                    .is_some_and(|id| id != credentials.client_id)
                {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the authenticated client",
                    ));
                }
                Ok(credentials)
            }
            None => match (form.get("client_id"), posted_secret) {
                (Some(id), secret) => Ok(Self {
                    client_id: id.to_owned(),
                    secret: secret.map(str::to_owned),
                }),
                (None, _) => Err(OAuthError::invalid_client(
                    "client authentication is required",
                )),
            },
        }
    }

    /// The active client of `tenant` these credentials name: a confidential one whose secret
    /// matches, or a public one named without a secret; otherwise invalid_client.
    pub fn authenticate(
        &self,
        state: &AppState,
        tenant: &Tenant,
    ) -> Result<Arc<ClientEntry>, OAuthError> {
        let client = state.directory.client(tenant.id, &self.client_id);
        let Some(secret) = &self.secret else {
            return match client {
                Some(client)
                    if client.client.client_type == ClientType::Public && client.client.active =>
                {
                    Ok(client)
                }
                _ => Err(OAuthError::invalid_client("client authentication failed")),
            };
        };
        let hash = client.as_ref().and_then(|c| c.client.secret_hash);
        // Compare against something even for an unknown client, so that timing does not tell
        // which client ids exist.
        let matches = state
            .crypto
            .verify_secret(secret, &hash.unwrap_or(Hash32([0; 32])));
        match client {
            Some(client) if matches && hash.is_some() && client.client.active => Ok(client),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }
}

/// RFC 6749 section 2.3.1: `base64(urlencode(id) ":" urlencode(secret))`.
fn decode_basic(encoded: &str) -> Option<Credentials> {
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |part: &str| -> Option<String> {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let client_id = unescape(id).filter(|id| !id.is_empty())?;
    let secret = Some(unescape(secret).unwrap_or_default());
    Some(Credentials { client_id, secret })
}

/// The common first steps of the token, introspection and revocation endpoints: the tenant of
/// `/t/{slug}`, the form body, and the client that authenticated.
pub struct ClientRequest {
    /// Always a created tenant (`tenant_of` checks).
    pub tenant: Arc<TenantState>,
    pub form: FormParams,
    pub client: Arc<ClientEntry>,
    /// The client is public and named itself without a secret.
    pub public: bool,
}

impl ClientRequest {
    /// An unknown tenant, an unknown client or a secret that does not match is decided again
    /// once this node has caught up with the log: the tenant or client may have just been
    /// created, or the secret regenerated, through another node (see [`crate::catch_up`]).
    pub async fn parse(
        state: &AppState,
        slug: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, OAuthError> {
        let tenant_state = tenant_known(state, slug).await?;
        let form = FormParams::parse(headers, body)?;
        let credentials = Credentials::from_request(headers, &form)?;
        let authenticated = tenant_state
            .tenant
            .as_ref()
            .ok_or_else(OAuthError::unknown_issuer)
            .and_then(|tenant| credentials.authenticate(state, tenant));
        let (tenant_state, client) = match authenticated {
            Ok(client) => (tenant_state, client),
            Err(_) => {
                state.catch_up().await;
                let tenant_state = tenant_of(state, slug)?;
                let tenant = tenant_state
                    .tenant
                    .as_ref()
                    .ok_or_else(OAuthError::unknown_issuer)?;
                let client = credentials.authenticate(state, tenant)?;
                (tenant_state, client)
            }
        };
        Ok(Self {
            tenant: tenant_state,
            form,
            client,
            public: credentials.secret.is_none(),
        })
    }
}

/// The actor of events a client causes.
pub fn client_actor(client: &ClientEntry) -> Actor {
    Actor {
        kind: ActorKind::Client,
        id: client.client.client_id.clone(),
        name: Some(client.client.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let encoded = STANDARD.encode("my%3Aclient:s%2Bcret");
        let credentials = decode_basic(&encoded).unwrap();
        assert_eq!(credentials.client_id, "my:client");
        assert_eq!(credentials.secret.as_deref(), Some("s+cret"));
        assert!(decode_basic("not base64!").is_none());
        assert!(decode_basic(&STANDARD.encode("no-colon")).is_none());
    }

    #[test]
    fn repeated_form_parameters_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let form = FormParams::parse(&headers, b"grant_type=client_credentials&scope=a+b").unwrap();
        assert_eq!(form.get("scope"), Some("a b"));
        let repeated = FormParams::parse(&headers, b"scope=a&scope=b").unwrap_err();
        assert_eq!(repeated.code, "invalid_request");
        let json = FormParams::parse(&HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!(json.code, "invalid_request");
    }

    #[test]
    fn a_bare_client_id_names_a_public_client_and_no_client_id_is_no_client() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let form = FormParams::parse(&headers, b"grant_type=refresh_token&client_id=spa").unwrap();
        let credentials = Credentials::from_request(&headers, &form).unwrap();
        assert_eq!(credentials.client_id, "spa");
        assert!(credentials.secret.is_none());
        let form = FormParams::parse(&headers, b"grant_type=refresh_token").unwrap();
        let refused = Credentials::from_request(&headers, &form).err().unwrap();
        assert_eq!(refused.code, "invalid_client");
    }
}
