//! The one error type of the HTTP layer, and the JSON shape every error response has:
//! `{"error": code, "message": ..., "correlation_id": ...}`.
//!
//! Codes are stable and machine-readable. 5xx bodies are generic; their cause is logged once,
//! with the correlation id. No client mistake maps to a 5xx.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_commands::CommandError;
use tessera_domain::DomainError;
use tessera_projections::ReadError;
use utoipa::ToSchema;

use crate::correlation;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    IllegalTransition(String),
    /// The resource existed and is gone for good (an offboarded tenant's vault).
    #[error("{0}")]
    Gone(String),
    #[error("request body exceeds the limit")]
    PayloadTooLarge,
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `conflict`.
    pub error: &'static str,
    pub message: String,
    /// Field that failed validation, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub correlation_id: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Validation { .. } => (StatusCode::BAD_REQUEST, "validation_failed"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::IllegalTransition(_) => (StatusCode::CONFLICT, "illegal_transition"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let correlation_id = correlation::current();
        let message = match &self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(%correlation_id, error = %cause, "request failed");
                if matches!(self, ApiError::Internal(_)) {
                    "internal error".to_owned()
                } else {
                    "service temporarily unavailable".to_owned()
                }
            }
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code,
                message,
                field,
                correlation_id,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\""),
            );
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Validation { field, message } => ApiError::Validation {
                field: field.to_string(),
                message,
            },
            DomainError::AlreadyExists(what) => {
                ApiError::Conflict(format!("{what} already exists"))
            }
            DomainError::IllegalTransition { .. } => ApiError::IllegalTransition(error.to_string()),
            DomainError::NotFound => ApiError::NotFound("resource".to_owned()),
            DomainError::Conflict(message) => ApiError::Conflict(message),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(domain) => domain.into(),
            CommandError::NotFound { .. } => ApiError::NotFound("resource".to_owned()),
            CommandError::Concurrency => {
                ApiError::Conflict("too many concurrent changes; retry".to_owned())
            }
            CommandError::Unavailable(cause) => ApiError::Unavailable(cause),
            CommandError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::InvalidCursor => {
                ApiError::validation("cursor", "is not a cursor this API returned")
            }
            ReadError::Corrupt(cause) => ApiError::Internal(cause),
            ReadError::Unavailable(cause) => ApiError::Unavailable(cause),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(ref inner)
                if inner.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::PayloadTooLarge
            }
            JsonRejection::JsonDataError(err) => {
                // The body text names the failing field path, e.g. `settings.require_mfa: ...`.
                let text = err.body_text();
                let detail = text
                    .split_once(": ")
                    .map_or(text.as_str(), |(_, rest)| rest)
                    .to_owned();
                let field = detail
                    .split_once(": ")
                    .map(|(path, _)| path.to_owned())
                    .filter(|path| !path.contains(' '))
                    .unwrap_or_else(|| "body".to_owned());
                ApiError::Validation {
                    field,
                    message: detail,
                }
            }
            JsonRejection::JsonSyntaxError(err) => {
                ApiError::BadRequest(format!("malformed JSON: {}", err.body_text()))
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::validation("path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::validation("query", rejection.body_text())
    }
}
