//! Starting an OAuth connect flow (issue 20, seed 004):
//! `GET /v1/tenants/{id}/integrations/{integration}/connect`, `tenant:admin` on the tenant or
//! `platform:admin`. It answers a redirect to the provider (302), or, for a caller that asks
//! for JSON (`Accept: application/json` or `?response=json`), seed 004's
//! `{"authorization_url", "state"}` (seed 004 spells the first `authorizationUrl`, which is
//! given too). See [`crate::connect`] for the state and the callback.

use axum::extract::State;
use axum::http::header::{ACCEPT, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::TenantAdmin;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/tenants/{id}/integrations/{integration}/connect",
        get(connect),
    )
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConnectQuery {
    /// `json` answers the URL as JSON instead of redirecting.
    pub response: Option<String>,
}

/// Where to send the person who consents at the provider.
#[derive(Serialize, ToSchema)]
pub struct ConnectStarted {
    pub authorization_url: String,
    /// Seed 004's spelling of `authorization_url`.
    #[serde(rename = "authorizationUrl")]
    pub authorization_url_seed: String,
    /// The sealed, single-use state (ten minutes).
    pub state: String,
}

fn wants_json(headers: &HeaderMap, query: &ConnectQuery) -> bool {
    query.response.as_deref() == Some("json")
        || headers
            .get(ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("application/json"))
}

/// Starts a connect flow: 302 to the provider, or the URL as JSON. Needs `tenant:admin` on the
/// tenant or `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/integrations/{integration}/connect", tag = "integrations",
    params(("id" = Uuid, Path, description = "tenant id"), ("integration" = String, Path, description = "integration name"), ConnectQuery),
    responses((status = 200, body = ConnectStarted), (status = 302), (status = 404, body = ErrorBody)))]
pub async fn connect(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, integration)): ApiPath<(Uuid, String)>,
    ApiQuery(query): ApiQuery<ConnectQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if query.response.as_deref().is_some_and(|r| r != "json") {
        return Err(ApiError::validation("response", "must be json when given"));
    }
    let started = crate::connect::start(
        &state,
        admin.tenant_id,
        &integration,
        &admin.principal.actor(),
    )
    .await?;
    if wants_json(&headers, &query) {
        return Ok(Json(ConnectStarted {
            authorization_url_seed: started.authorization_url.clone(),
            authorization_url: started.authorization_url,
            state: started.state,
        })
        .into_response());
    }
    let location = HeaderValue::from_str(&started.authorization_url)
        .map_err(|_| ApiError::Internal("an authorization URL that is no header".into()))?;
    Ok((StatusCode::FOUND, [(LOCATION, location)]).into_response())
}
