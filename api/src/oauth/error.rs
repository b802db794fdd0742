//! OAuth's error responses (RFC 6749 section 5.2): `{"error", "error_description"}` with
//! `Cache-Control: no-store`, for every failure of the tenant endpoints, including those of the
//! request's shape (a body too large, a method not allowed) and command errors.

use axum::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_commands::CommandError;
use tessera_domain::DomainError;

use crate::correlation;

/// An OAuth error response (RFC 6749 section 5.2).
#[derive(Debug)]
pub struct OAuthError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) description: String,
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

    /// Whether a change made through another node, not yet folded here, could explain this
    /// refusal of a client's request: a scope or a grant type added to the client, a tenant
    /// reactivated (see [`crate::catch_up`]).
    pub fn lag_may_explain(&self) -> bool {
        matches!(self.code, "invalid_scope" | "unauthorized_client")
    }

    /// 413: the body is over the server's limit (`server::BODY_LIMIT_BYTES`). RFC 6749 has
    /// no code of its own for this, and the request is malformed for the endpoint.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!(
                "the request body exceeds {} KiB",
                crate::server::BODY_LIMIT_BYTES / 1024
            ),
        )
    }

    /// 405: the endpoint does not serve this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "the endpoint does not serve this HTTP method",
        )
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

/// A command's refusal as the token, introspection and revocation endpoints answer it: OAuth's
/// JSON error (RFC 6749 section 5.2) with `Cache-Control: no-store`, like every error here.
///
/// - `Unavailable`: 503 `temporarily_unavailable`; nothing was issued, the client may retry.
/// - `Concurrency`: 503 `temporarily_unavailable` as well. OAuth has no 409, and contention on
///   a grant's streams (two redemptions of one refresh family racing) is transient: a retry
///   either succeeds or meets the grant's real state, which is then `invalid_grant`.
/// - `Internal`: 500 `server_error`, with a generic description; the cause is logged.
/// - `NotFound`: a missing tenant is the unknown issuer (404), a missing client is
///   `invalid_client` (401, exactly as a failed authentication, so as not to tell which client
///   ids exist), and anything else the grant names (a code, a refresh token) is `invalid_grant`.
/// - `Rejected`: a malformed parameter is `invalid_request`; any other rule the domain applies
///   (already used, revoked, conflicting, not allowed in the current state) means the grant is
///   not valid, `invalid_grant`.
impl From<CommandError> for OAuthError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Unavailable(_) | CommandError::Concurrency => {
                OAuthError::unavailable(error)
            }
            CommandError::Internal(_) => OAuthError::server_error(error),
            CommandError::NotFound { kind: "tenant", .. } => OAuthError::unknown_issuer(),
            CommandError::NotFound {
                kind: "oauth_client",
                ..
            } => OAuthError::invalid_client("client authentication failed"),
            CommandError::NotFound { .. } => OAuthError::invalid_grant(error.to_string()),
            CommandError::Rejected(DomainError::Validation { field, message }) => {
                OAuthError::invalid_request(format!("invalid {field}: {message}"))
            }
            CommandError::Rejected(rule) => OAuthError::invalid_grant(rule.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status, OAuth error code and `Cache-Control` of the response `error` becomes.
    async fn answer(error: CommandError) -> (StatusCode, String, Option<String>) {
        let response = OAuthError::from(error).into_response();
        let status = response.status();
        let cache = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, json["error"].as_str().unwrap().to_owned(), cache)
    }

    fn no_store() -> Option<String> {
        Some("no-store".to_owned())
    }

    #[tokio::test]
    async fn an_unreachable_log_is_temporarily_unavailable() {
        assert_eq!(
            answer(CommandError::Unavailable("down".into())).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable".into(),
                no_store()
            )
        );
    }

    #[tokio::test]
    async fn persistent_contention_is_temporarily_unavailable_rather_than_a_conflict() {
        assert_eq!(
            answer(CommandError::Concurrency).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable".into(),
                no_store()
            )
        );
    }

    #[tokio::test]
    async fn an_internal_failure_is_a_server_error_without_its_cause() {
        let response = OAuthError::from(CommandError::Internal("secret detail".into()));
        assert!(!response.description.contains("secret detail"));
        assert_eq!(
            answer(CommandError::Internal("corrupt event".into())).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error".into(),
                no_store()
            )
        );
    }

    #[tokio::test]
    async fn a_missing_tenant_client_or_grant_reads_as_oauth_says() {
        assert_eq!(
            answer(CommandError::not_found("tenant", "t-1")).await,
            (StatusCode::NOT_FOUND, "not_found".into(), no_store())
        );
        assert_eq!(
            answer(CommandError::not_found("oauth_client", "c-1")).await,
            (
                StatusCode::UNAUTHORIZED,
                "invalid_client".into(),
                no_store()
            )
        );
        assert_eq!(
            answer(CommandError::not_found("refresh_family", "f-1")).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into(), no_store())
        );
    }

    #[tokio::test]
    async fn a_refused_rule_is_an_invalid_request_or_an_invalid_grant() {
        assert_eq!(
            answer(CommandError::Rejected(DomainError::invalid(
                "scope",
                "malformed"
            )))
            .await,
            (
                StatusCode::BAD_REQUEST,
                "invalid_request".into(),
                no_store()
            )
        );
        for rule in [
            DomainError::AlreadyExists("code".into()),
            DomainError::Conflict("the refresh token was already used".into()),
            DomainError::IllegalTransition {
                from: "revoked".into(),
                action: "refresh",
            },
            DomainError::NotFound,
        ] {
            assert_eq!(
                answer(CommandError::Rejected(rule)).await,
                (StatusCode::BAD_REQUEST, "invalid_grant".into(), no_store())
            );
        }
    }
}
