//! People's sessions and lockout, for administrators: a user's active sessions, ending them
//! (one, or all of a user's), and lifting a password lockout.
//!
//! Sessions are read from the in-memory session directory (active ones only: ended and idle
//! sessions are gone), ended on the log. Every handler needs `platform:admin`, or
//! `tenant:admin` on the tenant; another tenant, a user of another tenant and a session of
//! another tenant are all 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use tessera_event_schemas::events::SessionEndReason;
use tessera_projections::SessionEntry;
use utoipa::ToSchema;
use uuid::Uuid;

use super::users::{User, written};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{id}/users/{user_id}/sessions",
            get(list_sessions).delete(end_user_sessions),
        )
        .route(
            "/v1/tenants/{id}/sessions/{session_id}",
            delete(end_session),
        )
        .route("/v1/tenants/{id}/users/{user_id}/unlock", post(unlock_user))
}

/// One active session.
#[derive(Serialize, ToSchema)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    /// Authentication methods (RFC 8176), e.g. `["pwd"]`.
    pub amr: Vec<String>,
    /// When the person authenticated (OpenID Connect's `auth_time`).
    pub auth_time: String,
    pub last_seen_at: String,
    /// The address and user agent the session started from.
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<Session>,
}

fn to_dto(entry: &SessionEntry) -> Session {
    Session {
        id: entry.session_id,
        user_id: entry.user_id,
        amr: entry.amr.clone(),
        auth_time: entry.auth_time.to_rfc3339(),
        last_seen_at: entry.last_seen().to_rfc3339(),
        source_ip: entry.source_ip.clone(),
        user_agent: entry.user_agent.clone(),
    }
}

/// The user must exist in the tenant (erased ones included): else 404.
pub(super) async fn require_user(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<(), ApiError> {
    match state.store.user(tenant_id, user_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("user {user_id}"))),
    }
}

/// A user's active sessions, oldest first. Needs `platform:admin`, or `tenant:admin` on this
/// tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/users/{user_id}/sessions", tag = "sessions",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = SessionList), (status = 404, body = ErrorBody)))]
pub async fn list_sessions(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<SessionList>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    require_user(&state, tenant_id, user_id).await?;
    let items = state
        .sessions
        .user_sessions(tenant_id, user_id, state.clock.now())
        .iter()
        .map(|entry| to_dto(entry))
        .collect();
    Ok(Json(SessionList { items }))
}

/// Ends every active session of a user ("sign out everywhere"). Needs `platform:admin`, or
/// `tenant:admin` on this tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/users/{user_id}/sessions", tag = "sessions",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn end_user_sessions(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    require_user(&state, tenant_id, user_id).await?;
    let outcome = state
        .commands
        .end_user_sessions(
            ctx.metadata(principal.actor()),
            tenant_id,
            user_id,
            SessionEndReason::Revoked,
        )
        .await?;
    state.projected(outcome.position).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends one session. Needs `platform:admin`, or `tenant:admin` on this tenant; a session of
/// another tenant, or one that is no longer active, is 404.
#[utoipa::path(delete, path = "/v1/tenants/{id}/sessions/{session_id}", tag = "sessions",
    params(("id" = Uuid, Path, description = "tenant id"), ("session_id" = Uuid, Path, description = "session id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, session_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let session = state
        .sessions
        .session(tenant_id, session_id, state.clock.now())
        .ok_or_else(|| ApiError::NotFound(format!("session {session_id}")))?;
    let outcome = state
        .commands
        .end_session(
            ctx.metadata(principal.actor()),
            tenant_id,
            session.user_id,
            session_id,
            SessionEndReason::Revoked,
        )
        .await?;
    state.projected(outcome.position).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a user's password lockout and forgets their failed attempts. Needs `platform:admin`,
/// or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/users/{user_id}/unlock", tag = "sessions",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn unlock_user(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<User>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    require_user(&state, tenant_id, user_id).await?;
    let outcome = state
        .commands
        .unlock_user(ctx.metadata(principal.actor()), tenant_id, user_id)
        .await?;
    Ok(Json(
        written(&state, tenant_id, user_id, outcome.position).await?,
    ))
}
