//! Extractors that turn every malformed request into an [`ApiError`] with the standard JSON
//! shape, instead of axum's plain-text rejections.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use tessera_event_schemas::{Actor, EventMetadata};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// `Json<T>` whose rejections are [`ApiError`]s (400 naming the field, 413, 415).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// An optional JSON body: a request without a body (and without a content type) is `None`,
/// anything else must be valid JSON, so `POST /activate` works with or without `{}`.
impl<T, S> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let has_type = request
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE);
        let declared_empty = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0");
        if !has_type && declared_empty {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(request, state)
            .await
            .map(Some)
    }
}

/// `Path<T>` whose rejections are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` whose rejections are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A request carried more than one `Authorization` header.
#[derive(Debug)]
pub struct MoreThanOneAuthorization;

/// The credentials of the request's `Authorization` header when its scheme is `scheme`, trimmed
/// (`None` without the header, under another scheme, or when the value is not text).
///
/// The scheme matches in any case (RFC 9110 section 11.1: "case-insensitive"), so `Bearer`,
/// `bearer` and `BEARER` are one. A request with two or more `Authorization` headers is refused
/// rather than read by its first one: proxies and servers disagree on which one counts, and a
/// request must not authenticate as one caller to one of them and as another to the next.
pub fn authorization<'h>(
    headers: &'h HeaderMap,
    scheme: &str,
) -> Result<Option<&'h str>, MoreThanOneAuthorization> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(MoreThanOneAuthorization);
    }
    Ok(value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(name, _)| name.eq_ignore_ascii_case(scheme))
        .map(|(_, credentials)| credentials.trim()))
}

/// Where a request came from, for the events it causes.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The id of the command this request is (each request sends at most one), from the
    /// state's [`IdGen`](tessera_commands::IdGen).
    pub causation_id: Uuid,
}

impl RequestContext {
    /// Event metadata for a command caused by this request on behalf of `actor`.
    pub fn metadata(&self, actor: Actor) -> EventMetadata {
        EventMetadata {
            actor,
            correlation_id: crate::correlation::current(),
            causation_id: Some(self.causation_id),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let source_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect());
        Ok(Self {
            source_ip,
            user_agent,
            causation_id: state.ids.new_id(),
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_scheme_matches_in_any_case_and_the_credentials_are_trimmed() {
        for value in [
            "Bearer tsr_x",
            "bearer tsr_x",
            "BEARER tsr_x",
            "bEaReR  tsr_x ",
        ] {
            assert_eq!(
                authorization(&headers(&[value]), "bearer").unwrap(),
                Some("tsr_x"),
                "{value}"
            );
        }
        for value in ["Basic tsr_x", "Bearertsr_x", "Bearer"] {
            assert_eq!(
                authorization(&headers(&[value]), "bearer").unwrap(),
                None,
                "{value}"
            );
        }
        assert_eq!(authorization(&headers(&[]), "bearer").unwrap(), None);
    }

    #[test]
    fn two_authorization_headers_are_refused_whatever_their_schemes() {
        for pair in [
            ["Bearer a", "Bearer b"],
            ["Basic a", "Bearer b"],
            ["x", "y"],
        ] {
            assert!(
                authorization(&headers(&pair), "bearer").is_err(),
                "{pair:?}"
            );
        }
    }
}
