//! People's consents, for administrators: the applications a user allowed, and revoking one.
//!
//! Consents are read from the log through the command service (a person's stream is small;
//! there is no read model). Every handler needs `platform:admin`, or `tenant:admin` on the
//! tenant; another tenant, a user of another tenant and a client the user did not allow are
//! all 404. Revoking a consent is what ends the refresh tokens the user granted that client
//! (ADR 0003's revocation horizon).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{id}/users/{user_id}/consents",
            get(list_consents),
        )
        .route(
            "/v1/tenants/{id}/users/{user_id}/consents/{client_id}",
            delete(revoke_consent),
        )
}

/// One application a user allowed.
#[derive(Serialize, ToSchema)]
pub struct Consent {
    pub client_id: String,
    /// The client's name; its id when the client is no longer registered.
    pub client_name: String,
    /// Every scope allowed, in the order first granted.
    pub scopes: Vec<String>,
    /// When the user last allowed it more scopes (RFC 3339).
    pub granted_at: String,
}

/// The user must exist in the tenant (erased ones included): else 404.
async fn require_user(state: &AppState, tenant_id: Uuid, user_id: Uuid) -> Result<(), ApiError> {
    match state.store.user(tenant_id, user_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("user {user_id}"))),
    }
}

/// The applications a user allowed, by client id. Needs `platform:admin`, or `tenant:admin`
/// on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/users/{user_id}/consents", tag = "consents",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = [Consent]), (status = 404, body = ErrorBody)))]
pub async fn list_consents(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Vec<Consent>>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    require_user(&state, tenant_id, user_id).await?;
    let consents = state.commands.list_consents(tenant_id, user_id).await?;
    Ok(Json(
        consents
            .into_iter()
            .map(|consent| Consent {
                client_name: state
                    .directory
                    .client(tenant_id, &consent.client_id)
                    .map_or_else(|| consent.client_id.clone(), |c| c.client.name.clone()),
                client_id: consent.client_id,
                scopes: consent.scopes,
                granted_at: consent.granted_at.to_rfc3339(),
            })
            .collect(),
    ))
}

/// Withdraws everything a user allowed a client; the client's refresh tokens for that user
/// stop working. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/users/{user_id}/consents/{client_id}", tag = "consents",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id"),
        ("client_id" = String, Path, description = "client id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_consent(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id, client_id)): ApiPath<(Uuid, Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    require_user(&state, tenant_id, user_id).await?;
    let outcome = state
        .commands
        .revoke_consent(
            ctx.metadata(principal.actor()),
            tenant_id,
            user_id,
            &client_id,
        )
        .await?;
    state.projected(outcome.position).await?;
    Ok(StatusCode::NO_CONTENT)
}
