//! Every tenant an OAuth 2.0 authorization server: `/t/{slug}/...`.
//!
//! - [`metadata`]: discovery (RFC 8414 and OpenID Connect Discovery) and the JWKS.
//! - [`token`]: the token endpoint (RFC 6749 section 4.4, client credentials), RFC 9068 JWTs.
//! - [`introspection`]: introspection (RFC 7662) and revocation (RFC 7009).
//! - [`verify`]: recognising a presented access token by its signature, with a bounded cache.
//!
//! These endpoints read the in-memory [`Directory`](tessera_projections::Directory), never
//! the SQL read models, and speak OAuth's error format (`{"error", "error_description"}`, RFC
//! 6749 section 5.2) rather than the admin API's. Every response of the token, introspection
//! and revocation endpoints carries `Cache-Control: no-store`.
//!
//! A client authenticates with `client_secret_basic` or `client_secret_post` (RFC 6749 section
//! 2.3.1), never both. Its secret is compared with the stored keyed hash in constant time. A
//! client id that belongs to another tenant is not found, exactly like an unknown one.

pub mod introspection;
pub mod metadata;
pub mod token;
pub mod verify;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use tessera_domain::tenant::{Tenant, TenantState};
use tessera_event_schemas::{Actor, ActorKind, Hash32};
use tessera_projections::ClientEntry;

use crate::correlation;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/t/{slug}/.well-known/openid-configuration",
            get(metadata::openid_configuration),
        )
        .route(
            "/t/{slug}/.well-known/oauth-authorization-server",
            get(metadata::authorization_server_metadata),
        )
        .route("/t/{slug}/.well-known/jwks.json", get(metadata::jwks))
        .route("/t/{slug}/oauth/token", post(token::token))
        .route(
            "/t/{slug}/oauth/introspect",
            post(introspection::introspect),
        )
        .route("/t/{slug}/oauth/revoke", post(introspection::revoke))
}

/// An OAuth error response (RFC 6749 section 5.2).
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    error: &'static str,
    error_description: &'a str,
    correlation_id: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 with a `WWW-Authenticate` challenge (RFC 6749 section 5.2).
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub fn unknown_issuer() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no tenant has this issuer",
        )
    }

    /// The event log could not record the grant; nothing was issued.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "an OAuth request could not be recorded");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the server cannot record the request right now; retry later",
        )
    }

    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "an OAuth request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.code,
            error_description: &self.description,
            correlation_id: correlation::current(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            );
        }
        no_store(response)
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 section 5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
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
    secret: String,
}

impl Credentials {
    /// `client_secret_basic` or `client_secret_post`, never both.
    pub fn from_request(headers: &HeaderMap, form: &FormParams) -> Result<Self, OAuthError> {
        let basic = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
            });
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
                (Some(id), Some(secret)) => Ok(Self {
                    client_id: id.to_owned(),
                    secret: secret.to_owned(),
                }),
                _ => Err(OAuthError::invalid_client(
                    "client authentication is required",
                )),
            },
        }
    }

    /// The active, confidential client of `tenant` these credentials name, or invalid_client.
    pub fn authenticate(
        &self,
        state: &AppState,
        tenant: &Tenant,
    ) -> Result<Arc<ClientEntry>, OAuthError> {
        let client = state.directory.client(tenant.id, &self.client_id);
        let hash = client.as_ref().and_then(|c| c.client.secret_hash);
        // Compare against something even for an unknown client, so that timing does not tell
        // which client ids exist.
        let matches = state
            .crypto
            .verify_secret(&self.secret, &hash.unwrap_or(Hash32([0; 32])));
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
    let secret = unescape(secret).unwrap_or_default();
    Some(Credentials { client_id, secret })
}

/// The common first steps of the token, introspection and revocation endpoints: the tenant of
/// `/t/{slug}`, the form body, and the client that authenticated.
pub struct ClientRequest {
    /// Always a created tenant (`tenant_of` checks).
    pub tenant: Arc<TenantState>,
    pub form: FormParams,
    pub client: Arc<ClientEntry>,
}

impl ClientRequest {
    pub fn parse(
        state: &AppState,
        slug: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, OAuthError> {
        let tenant_state = tenant_of(state, slug)?;
        let form = FormParams::parse(headers, body)?;
        let tenant = tenant_state
            .tenant
            .as_ref()
            .ok_or_else(OAuthError::unknown_issuer)?;
        let client = Credentials::from_request(headers, &form)?.authenticate(state, tenant)?;
        Ok(Self {
            tenant: tenant_state,
            form,
            client,
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
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let encoded = STANDARD.encode("my%3Aclient:s%2Bcret");
        let credentials = decode_basic(&encoded).unwrap();
        assert_eq!(credentials.client_id, "my:client");
        assert_eq!(credentials.secret, "s+cret");
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
}
