//! A new tenant's first administrator (seed 003): `POST /v1/tenants` with `admin_email` (and
//! `admin_name`) invites that person with the role `tenant:admin` once the tenant exists, and
//! the creation's answer carries the link (`invite_url`) beside the tenant's fields.
//!
//! The tenant stands whatever happens to the invitation (seed 003's rule for its
//! identity-provider step): when it cannot be made, `tenant.admin_invite_failed` records why,
//! in words without the address, and the answer carries `admin_invite_error` instead of the
//! link. An operator then invites again through the invitations API.

use serde::Serialize;
use tessera_commands::{CommandError, CreateInvitation};
use tessera_domain::DomainError;
use tessera_event_schemas::EventMetadata;
use utoipa::ToSchema;
use uuid::Uuid;

use super::tenants::Tenant;
use crate::error::ApiError;
use crate::scopes::TENANT_ADMIN;
use crate::state::AppState;

/// The answer of a tenant's creation: the tenant's own fields, and with `admin_email` either
/// the first administrator's link or why there is none.
#[derive(Serialize, ToSchema)]
pub struct CreatedTenant {
    #[serde(flatten)]
    pub tenant: Tenant,
    /// The first administrator's invitation link (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_url: Option<String>,
    /// The first administrator's invitation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_invitation_id: Option<Uuid>,
    /// Why the first administrator could not be invited (the tenant was created anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_invite_error: Option<String>,
}

/// The first administrator's invitation, or why there is none.
pub enum FirstAdmin {
    None,
    Invited {
        invitation_id: Uuid,
        invite_url: String,
    },
    Failed(String),
}

impl CreatedTenant {
    pub fn new(tenant: Tenant, admin: FirstAdmin) -> Self {
        let (invite_url, admin_invitation_id, admin_invite_error) = match admin {
            FirstAdmin::None => (None, None, None),
            FirstAdmin::Invited {
                invitation_id,
                invite_url,
            } => (Some(invite_url), Some(invitation_id), None),
            FirstAdmin::Failed(reason) => (None, None, Some(reason)),
        };
        Self {
            tenant,
            invite_url,
            admin_invitation_id,
            admin_invite_error,
        }
    }
}

/// `admin_name` without `admin_email` names nobody: refused before anything is created.
pub fn check_request(admin_email: Option<&str>, admin_name: Option<&str>) -> Result<(), ApiError> {
    if admin_email.is_none() && admin_name.is_some() {
        return Err(ApiError::validation(
            "admin_name",
            "needs admin_email: the name is the invited administrator's",
        ));
    }
    Ok(())
}

/// Invites the new tenant's first administrator, or records why it could not. Only an
/// unavailable log or an internal failure is an error: a refused invitation is an answer.
pub async fn invite_first_admin(
    state: &AppState,
    meta: EventMetadata,
    tenant_id: Uuid,
    admin_email: Option<String>,
    admin_name: Option<String>,
) -> Result<FirstAdmin, ApiError> {
    let Some(email) = admin_email else {
        return Ok(FirstAdmin::None);
    };
    let outcome = state
        .commands
        .create_invitation(
            meta.clone(),
            tenant_id,
            CreateInvitation {
                email,
                name: admin_name,
                roles: vec![TENANT_ADMIN.to_owned()],
                message: None,
                expires_in: None,
                public_url: state.public_url.to_string(),
            },
        )
        .await;
    let reason = match outcome {
        Ok(link) => {
            state.projected(link.position).await?;
            return Ok(FirstAdmin::Invited {
                invitation_id: link.invitation_id,
                invite_url: link.invite_url,
            });
        }
        Err(CommandError::Rejected(DomainError::Validation { field, message })) => {
            let field = if field == "email" {
                "admin_email".to_owned()
            } else {
                format!("admin_{field}")
            };
            format!("{field} {message}")
        }
        Err(CommandError::Rejected(other)) => other.to_string(),
        Err(CommandError::Internal(cause)) => {
            tracing::error!(%tenant_id, %cause, "inviting a new tenant's first administrator");
            "the invitation could not be made (internal error)".to_owned()
        }
        Err(other) => return Err(other.into()),
    };
    let recorded = state
        .commands
        .record_admin_invite_failed(meta, tenant_id, reason.clone())
        .await?;
    state.projected(recorded.position).await?;
    Ok(FirstAdmin::Failed(reason))
}
