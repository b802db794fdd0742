//! `/v1/tenants/{id}/invitations`: inviting people into a tenant with roles (seed 001's names:
//! `email`, `roles`, `message`, `expires_in`), listing them by status, resending links,
//! revoking; and seed 001's slug-less `POST /invite/{token}`, which accepts.
//!
//! Every handler but the accept needs `platform:admin`, or `tenant:admin` on the tenant; any
//! other tenant is 404. The invitation's address and name are sealed under its own data key in
//! the read model and opened here, at the edge; a revoked invitation has neither. `expired` is
//! no event: it is a pending invitation whose link's time has passed on the server's clock.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_commands::{CommandError, CreateInvitation, InvitationLink};
use tessera_domain::invitation::InvitationStatus;
use tessera_event_schemas::events::invitation::fields;
use tessera_projections::{InvitationFilter, InvitationView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::TenantAdmin;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{id}/invitations",
            get(list_invitations).post(create_invitation),
        )
        .route(
            "/v1/tenants/{id}/invitations/bulk-resend",
            post(bulk_resend),
        )
        .route(
            "/v1/tenants/{id}/invitations/{invitation_id}",
            get(get_invitation).delete(revoke_invitation),
        )
        .route(
            "/v1/tenants/{id}/invitations/{invitation_id}/resend",
            post(resend_invitation),
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    /// Must be at one of the tenant's `allowed_email_domains`, when it has any.
    pub email: String,
    /// The roles the invitee gets on acceptance, such as `user` or `tenant:admin`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A note shown in the mail and on the invitation page.
    pub message: Option<String>,
    /// A display name for the invitee.
    pub name: Option<String>,
    /// Seconds the link stays valid: 7 days when absent, at most 30 days.
    pub expires_in: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InvitationQuery {
    /// `pending`, `accepted`, `expired` or `revoked`.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkResendRequest {
    /// The invitations to resend; or
    pub ids: Option<Vec<Uuid>>,
    /// every invitation with this status (`pending` or `expired`).
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `pending`, `accepted`, `expired` or `revoked`.
    pub status: &'static str,
    /// Absent once revoked (its data key is destroyed).
    pub email: Option<String>,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub expires_at: String,
    /// The user who accepted it.
    pub accepted_user_id: Option<Uuid>,
    pub resent_count: u32,
    pub created_at: String,
    pub updated_at: String,
    /// The link, in the answer of a creation or a resend only: it is not kept in clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationPage {
    pub items: Vec<Invitation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What a bulk resend did with one invitation.
#[derive(Serialize, ToSchema)]
pub struct BulkResendResult {
    pub id: Uuid,
    /// `resent`, `not_found`, or `failed`.
    pub result: &'static str,
    /// Why not, for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResendReport {
    pub results: Vec<BulkResendResult>,
    pub resent: usize,
    pub failed: usize,
}

/// Most invitations one bulk resend handles.
const MAX_BULK: usize = 500;

/// The status a listing shows: a pending invitation past its expiry reads `expired`.
fn shown_status(state: &AppState, view: &InvitationView) -> &'static str {
    match view.status {
        InvitationStatus::Pending if state.clock.now() >= view.expires_at => "expired",
        other => other.as_str(),
    }
}

async fn to_dto(state: &AppState, view: InvitationView) -> Result<Invitation, ApiError> {
    let open = |field: &'static str, sealed: Option<Vec<u8>>| async move {
        match sealed {
            Some(sealed) => state
                .personal
                .open(view.tenant_id, view.invitation_id, field, &sealed)
                .await
                .map_err(|error| {
                    ApiError::Internal(format!("opening an invitation's {field}: {error}"))
                }),
            None => Ok(None),
        }
    };
    Ok(Invitation {
        id: view.invitation_id,
        tenant_id: view.tenant_id,
        status: shown_status(state, &view),
        email: open(fields::EMAIL, view.email.clone()).await?,
        name: open(fields::NAME, view.name.clone()).await?,
        roles: view.roles,
        expires_at: view.expires_at.to_rfc3339(),
        accepted_user_id: view.accepted_user_id,
        resent_count: view.resent_count,
        created_at: view.created_at.to_rfc3339(),
        updated_at: view.updated_at.to_rfc3339(),
        invite_url: None,
    })
}

/// The invitation after a write that made `link`, once the read models hold it, with the link.
pub(crate) async fn written(
    state: &AppState,
    tenant_id: Uuid,
    link: InvitationLink,
) -> Result<Invitation, ApiError> {
    state.projected(link.position).await?;
    let view = state
        .store
        .invitation(tenant_id, link.invitation_id)
        .await?
        .ok_or_else(|| ApiError::Internal("written invitation missing from read model".into()))?;
    let mut dto = to_dto(state, view).await?;
    dto.invite_url = Some(link.invite_url);
    Ok(dto)
}

fn not_found(invitation_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("invitation {invitation_id}"))
}

/// A command error on invitation `id`: a missing invitation is 404 naming it.
fn command_error(id: Uuid, error: CommandError) -> ApiError {
    match error {
        CommandError::NotFound { .. } => not_found(id),
        other => other.into(),
    }
}

/// Invites a person. Needs `platform:admin`, or `tenant:admin` on this tenant. Appends the
/// invitation and its mail in one append; answers the invitation with its `invite_url` (shown
/// once).
#[utoipa::path(post, path = "/v1/tenants/{id}/invitations", tag = "invitations",
    request_body = CreateInvitationRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 201, body = Invitation), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_invitation(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CreateInvitationRequest>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let tenant_id = admin.tenant_id;
    let link = state
        .commands
        .create_invitation(
            ctx.metadata(admin.principal.actor()),
            tenant_id,
            CreateInvitation {
                email: body.email,
                name: body.name,
                roles: body.roles,
                message: body.message,
                expires_in: body.expires_in,
                public_url: state.public_url.to_string(),
            },
        )
        .await?;
    let invitation = written(&state, tenant_id, link).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Lists the tenant's invitations in creation order, narrowed by status. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/invitations", tag = "invitations",
    params(("id" = Uuid, Path, description = "tenant id"), InvitationQuery),
    responses((status = 200, body = InvitationPage), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_invitations(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<InvitationQuery>,
) -> Result<Json<InvitationPage>, ApiError> {
    let limit = super::page_limit(query.limit)?;
    let filter = parse_filter(query.status.as_deref())?;
    let page = state
        .store
        .list_invitations(
            admin.tenant_id,
            filter,
            state.clock.now(),
            limit,
            query.cursor.as_deref(),
        )
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for view in page.items {
        items.push(to_dto(&state, view).await?);
    }
    Ok(Json(InvitationPage {
        items,
        next_cursor: page.next_cursor,
    }))
}

fn parse_filter(status: Option<&str>) -> Result<InvitationFilter, ApiError> {
    Ok(match status {
        None => InvitationFilter::All,
        Some("pending") => InvitationFilter::Pending,
        Some("accepted") => InvitationFilter::Accepted,
        Some("expired") => InvitationFilter::Expired,
        Some("revoked") => InvitationFilter::Revoked,
        Some(_) => {
            return Err(ApiError::validation(
                "status",
                "must be pending, accepted, expired or revoked",
            ));
        }
    })
}

/// One invitation. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/invitations/{invitation_id}", tag = "invitations",
    params(("id" = Uuid, Path, description = "tenant id"),
        ("invitation_id" = Uuid, Path, description = "invitation id")),
    responses((status = 200, body = Invitation), (status = 404, body = ErrorBody)))]
pub async fn get_invitation(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, invitation_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Invitation>, ApiError> {
    let view = state
        .store
        .invitation(admin.tenant_id, invitation_id)
        .await?
        .ok_or_else(|| not_found(invitation_id))?;
    Ok(Json(to_dto(&state, view).await?))
}

/// Sends a new link for a pending (or expired) invitation; the old link stops working. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/invitations/{invitation_id}/resend",
    tag = "invitations",
    params(("id" = Uuid, Path, description = "tenant id"),
        ("invitation_id" = Uuid, Path, description = "invitation id")),
    responses((status = 200, body = Invitation), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn resend_invitation(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, invitation_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Invitation>, ApiError> {
    let tenant_id = admin.tenant_id;
    let link = state
        .commands
        .resend_invitation(
            ctx.metadata(admin.principal.actor()),
            tenant_id,
            invitation_id,
            &state.public_url,
        )
        .await
        .map_err(|error| command_error(invitation_id, error))?;
    Ok(Json(written(&state, tenant_id, link).await?))
}

/// Resends the invitations named by `ids`, or every invitation with `status` (`pending` or
/// `expired`), and reports per invitation what happened. Needs `platform:admin`, or
/// `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/invitations/bulk-resend", tag = "invitations",
    request_body = BulkResendRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = BulkResendReport), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn bulk_resend(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<BulkResendRequest>,
) -> Result<Json<BulkResendReport>, ApiError> {
    let tenant_id = admin.tenant_id;
    let ids = match (body.ids, body.status.as_deref()) {
        (Some(ids), None) => ids,
        (None, Some(status @ ("pending" | "expired"))) => {
            let filter = parse_filter(Some(status))?;
            let mut ids = Vec::new();
            let mut cursor = None;
            loop {
                let page = state
                    .store
                    .list_invitations(tenant_id, filter, state.clock.now(), 500, cursor.as_deref())
                    .await?;
                ids.extend(page.items.iter().map(|view| view.invitation_id));
                match page.next_cursor {
                    Some(next) if ids.len() < MAX_BULK => cursor = Some(next),
                    _ => break,
                }
            }
            ids
        }
        (None, Some(_)) => {
            return Err(ApiError::validation("status", "must be pending or expired"));
        }
        _ => {
            return Err(ApiError::validation(
                "ids",
                "give either ids or status, not both and not neither",
            ));
        }
    };
    if ids.len() > MAX_BULK {
        return Err(ApiError::validation(
            "ids",
            format!("at most {MAX_BULK} invitations at a time"),
        ));
    }
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = state
            .commands
            .resend_invitation(
                ctx.metadata(admin.principal.actor()),
                tenant_id,
                id,
                &state.public_url,
            )
            .await;
        results.push(match outcome {
            Ok(link) => BulkResendResult {
                id,
                result: "resent",
                error: None,
                expires_at: Some(link.expires_at.to_rfc3339()),
            },
            Err(CommandError::NotFound { .. }) => BulkResendResult {
                id,
                result: "not_found",
                error: Some(format!("invitation {id} not found")),
                expires_at: None,
            },
            Err(CommandError::Rejected(error)) => BulkResendResult {
                id,
                result: "failed",
                error: Some(error.to_string()),
                expires_at: None,
            },
            Err(other) => return Err(other.into()),
        });
    }
    let resent = results.iter().filter(|r| r.result == "resent").count();
    Ok(Json(BulkResendReport {
        failed: results.len() - resent,
        resent,
        results,
    }))
}

/// Revokes a pending (or expired) invitation: its link stops working and its address is
/// forgotten. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/invitations/{invitation_id}",
    tag = "invitations",
    params(("id" = Uuid, Path, description = "tenant id"),
        ("invitation_id" = Uuid, Path, description = "invitation id")),
    responses((status = 200, body = Invitation), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn revoke_invitation(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, invitation_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Invitation>, ApiError> {
    let tenant_id = admin.tenant_id;
    let outcome = state
        .commands
        .revoke_invitation(
            ctx.metadata(admin.principal.actor()),
            tenant_id,
            invitation_id,
        )
        .await
        .map_err(|error| command_error(invitation_id, error))?;
    state.projected(outcome.position).await?;
    let view = state
        .store
        .invitation(tenant_id, invitation_id)
        .await?
        .ok_or_else(|| not_found(invitation_id))?;
    Ok(Json(to_dto(&state, view).await?))
}
