//! `GET`/`POST /t/{slug}/oauth/userinfo` (OpenID Connect Core §5.3): the claims of the person
//! a people's access token with `openid` was issued for, following its scopes (`sub` always).
//!
//! The token comes in a Bearer `Authorization` header or, on POST, an `access_token` form
//! field (RFC 6750 §2.1, §2.2), never both. Errors follow RFC 6750 §3: 401 with
//! `WWW-Authenticate: Bearer` (and `error="invalid_token"` when a token was presented), 403
//! `insufficient_scope` without `openid`, 400 `invalid_request` for a malformed request;
//! every answer is `no-store`.
//!
//! The fast path reads no SQL and verifies no signature: the token is found in the cache of
//! verified tokens (filled as the token endpoint issues), its activity checked against the
//! directory, the person's row taken from the bounded user-view cache and their fields opened
//! with the cached data key.

use axum::extract::State;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;

use super::id_token::{OPENID, PersonClaims, person_claims};
use super::introspection::active_token;
use super::{FormBody, FormParams, Slug, no_store, tenant_known};
use crate::correlation;
use crate::extract::authorization;
use crate::state::AppState;

#[derive(Serialize)]
struct UserInfo {
    sub: Uuid,
    #[serde(flatten)]
    claims: PersonClaims,
}

/// An RFC 6750 error.
struct BearerError {
    status: StatusCode,
    /// `None` when no token was presented (RFC 6750 §3.1: no error code then).
    code: Option<&'static str>,
    description: &'static str,
}

impl BearerError {
    fn no_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: None,
            description: "a Bearer access token is required",
        }
    }

    fn invalid_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: Some("invalid_token"),
            description: "the access token is invalid, expired or revoked, or not a person's",
        }
    }

    fn invalid_request(description: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: Some("invalid_request"),
            description,
        }
    }

    fn server_error(cause: super::OAuthError) -> Self {
        tracing::error!(error = ?cause, "userinfo could not read the person's claims");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Some("server_error"),
            description: "internal error",
        }
    }

    fn insufficient_scope() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: Some("insufficient_scope"),
            description: "the access token was not issued with the openid scope",
        }
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let challenge = match self.code {
            Some(code) => format!(
                "Bearer realm=\"tessera\", error=\"{code}\", error_description=\"{}\"",
                self.description
            ),
            None => "Bearer realm=\"tessera\"".to_owned(),
        };
        let body = serde_json::json!({
            "error": self.code.unwrap_or("invalid_request"),
            "error_description": self.description,
            "correlation_id": correlation::current(),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        no_store(response)
    }
}

/// Userinfo by GET: the token in the `Authorization` header. Permission: a person's access
/// token with `openid`.
#[utoipa::path(get, path = "/t/{slug}/oauth/userinfo", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    responses((status = 200, description = "the person's claims"), (status = 401, description = "invalid_token"),
        (status = 403, description = "insufficient_scope")))]
pub async fn userinfo_get(
    State(state): State<AppState>,
    Slug(slug): Slug,
    headers: HeaderMap,
) -> Response {
    answer(&state, &slug, &headers, None).await
}

/// Userinfo by POST: the token in the `Authorization` header or an `access_token` form field.
/// Permission: a person's access token with `openid`.
#[utoipa::path(post, path = "/t/{slug}/oauth/userinfo", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    responses((status = 200, description = "the person's claims"), (status = 401, description = "invalid_token"),
        (status = 403, description = "insufficient_scope")))]
pub async fn userinfo_post(
    State(state): State<AppState>,
    Slug(slug): Slug,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    answer(&state, &slug, &headers, Some(&body)).await
}

async fn answer(
    state: &AppState,
    slug: &str,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Response {
    match userinfo(state, slug, headers, body).await {
        Ok(info) => no_store(axum::Json(info).into_response()),
        Err(error) => error.into_response(),
    }
}

async fn userinfo(
    state: &AppState,
    slug: &str,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Result<UserInfo, BearerError> {
    let tenant_state = tenant_known(state, slug)
        .await
        .map_err(|_| BearerError::invalid_token())?;
    let header = authorization(headers, "bearer")
        .map_err(|_| BearerError::invalid_request("send one Authorization header, not several"))?;
    let form = match body {
        Some(body) if !body.is_empty() => Some(
            FormParams::parse(headers, body)
                .map_err(|_| BearerError::invalid_request("the body must be a form"))?,
        ),
        _ => None,
    };
    let field = form.as_ref().and_then(|form| form.get("access_token"));
    let token = match (header, field) {
        (Some(_), Some(_)) => {
            return Err(BearerError::invalid_request(
                "send the access token one way, not in the header and the body",
            ));
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return Err(BearerError::no_token()),
    };
    let (tenant_state, verified) = active_token(state, &tenant_state, token)
        .await
        .ok_or_else(BearerError::invalid_token)?;
    let tenant = tenant_state
        .tenant
        .as_ref()
        .ok_or_else(BearerError::invalid_token)?;
    let person = verified
        .person
        .as_ref()
        .ok_or_else(BearerError::invalid_token)?;
    let scopes: Vec<String> = verified.scope.split(' ').map(str::to_owned).collect();
    if !scopes.iter().any(|scope| scope == OPENID) {
        return Err(BearerError::insufficient_scope());
    }
    let claims = person_claims(state, tenant.id, person.user_id, &scopes)
        .await
        .map_err(BearerError::server_error)?
        .ok_or_else(BearerError::invalid_token)?;
    Ok(UserInfo {
        sub: person.user_id,
        claims,
    })
}
