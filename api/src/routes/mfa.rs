//! Second factors for administrators: a user's factors (`GET .../users/{user_id}/mfa`), their
//! reset (`POST .../users/{user_id}/reset-mfa`), and the tenant's WebAuthn policy
//! (`GET`/`PUT /v1/tenants/{id}/webauthn-policy`, seed 001's shape).
//!
//! Setting factors up and using them is the person's own doing, on the hosted pages, which call
//! the command service directly. A passkey's name is personal data, sealed in the read model
//! and opened here, at the edge, like a user's names. Every handler needs `platform:admin`, or
//! `tenant:admin` on the tenant; any other tenant, and any user of another tenant, is 404.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tessera_commands::MfaReset;
use tessera_domain::webauthn_policy::default_policy;
use tessera_event_schemas::events::{
    AttestationPreference, PASSKEY_NAME_FIELD, Requirement, WebauthnPolicyV1,
};
use tessera_projections::{MfaView, TotpStatus};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/users/{user_id}/mfa", get(get_mfa))
        .route(
            "/v1/tenants/{id}/users/{user_id}/reset-mfa",
            post(reset_mfa),
        )
        .route(
            "/v1/tenants/{id}/webauthn-policy",
            get(get_webauthn_policy).put(put_webauthn_policy),
        )
}

/// A user's second factors.
#[derive(Serialize, ToSchema)]
pub struct Mfa {
    pub user_id: Uuid,
    /// An authenticator app is set up or a passkey registered.
    pub has_second_factor: bool,
    /// The authenticator app: `none`, `pending` (set up but not confirmed by a code) or
    /// `enrolled`.
    pub totp: &'static str,
    pub totp_enrolled_at: Option<String>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
    pub passkeys: Vec<Passkey>,
}

#[derive(Serialize, ToSchema)]
pub struct Passkey {
    /// The credential id, base64url without padding (as WebAuthn spells it).
    pub id: String,
    /// The name its owner gave it; absent once the user is erased.
    pub name: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// The authenticator verified the user (PIN, biometric) when it was registered.
    pub user_verified: bool,
    /// The passkey may be synchronised between the owner's devices.
    pub synced: bool,
}

/// What a reset removed, the sessions it ended, and the factors left (none).
#[derive(Serialize, ToSchema)]
pub struct MfaResetResponse {
    pub removed: Removed,
    /// The user's sessions ended with the reset (none when it removed nothing).
    pub sessions_ended: usize,
    pub mfa: Mfa,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    /// An authenticator app (set up or pending).
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes: usize,
    pub passkeys: usize,
}

/// The tenant's WebAuthn policy (seed 001).
#[derive(Serialize, ToSchema)]
pub struct WebauthnPolicy {
    /// Passkeys can be registered and used.
    pub enabled: bool,
    /// `none`, `indirect` or `direct`.
    pub attestation_preference: &'static str,
    /// `required`, `preferred` or `discouraged`. With `required`, a passkey sign-in counts as
    /// multi-factor.
    pub user_verification: &'static str,
    /// `required`, `preferred` or `discouraged`: whether a passkey must be discoverable, which
    /// a sign-in without typing an address needs.
    pub resident_key: &'static str,
    /// When it was set; absent while the tenant has the default policy.
    pub updated_at: Option<String>,
}

/// A whole new policy: every field is required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnPolicyRequest {
    pub enabled: bool,
    /// `none`, `indirect` or `direct`.
    pub attestation_preference: String,
    /// `required`, `preferred` or `discouraged`.
    pub user_verification: String,
    /// `required`, `preferred` or `discouraged`.
    pub resident_key: String,
}

impl WebauthnPolicyRequest {
    fn policy(&self) -> Result<WebauthnPolicyV1, ApiError> {
        let requirement = |field: &str, value: &str| {
            Requirement::parse(value).ok_or_else(|| {
                ApiError::validation(field, "must be required, preferred or discouraged")
            })
        };
        Ok(WebauthnPolicyV1 {
            enabled: self.enabled,
            attestation_preference: AttestationPreference::parse(&self.attestation_preference)
                .ok_or_else(|| {
                    ApiError::validation(
                        "attestation_preference",
                        "must be none, indirect or direct",
                    )
                })?,
            user_verification: requirement("user_verification", &self.user_verification)?,
            resident_key: requirement("resident_key", &self.resident_key)?,
        })
    }
}

fn policy_dto(policy: &WebauthnPolicyV1, updated_at: Option<String>) -> WebauthnPolicy {
    WebauthnPolicy {
        enabled: policy.enabled,
        attestation_preference: policy.attestation_preference.as_str(),
        user_verification: policy.user_verification.as_str(),
        resident_key: policy.resident_key.as_str(),
        updated_at,
    }
}

/// A user's factors as the admin API shows them, passkey names opened with the user's data key.
async fn to_dto(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
    view: Option<MfaView>,
) -> Result<Mfa, ApiError> {
    let Some(view) = view else {
        return Ok(Mfa {
            user_id,
            has_second_factor: false,
            totp: TotpStatus::None.as_str(),
            totp_enrolled_at: None,
            recovery_codes_left: 0,
            passkeys: Vec::new(),
        });
    };
    let mut passkeys = Vec::with_capacity(view.passkeys.len());
    for passkey in &view.passkeys {
        let name = state
            .personal
            .open(tenant_id, user_id, PASSKEY_NAME_FIELD, &passkey.name)
            .await
            .map_err(|error| ApiError::Internal(format!("opening a passkey's name: {error}")))?;
        passkeys.push(Passkey {
            id: URL_SAFE_NO_PAD.encode(&passkey.credential_id),
            name,
            created_at: passkey.created_at.to_rfc3339(),
            last_used_at: passkey.last_used_at.map(|t| t.to_rfc3339()),
            user_verified: passkey.user_verified,
            synced: passkey.backup_eligible,
        });
    }
    Ok(Mfa {
        user_id,
        has_second_factor: view.totp == TotpStatus::Enrolled || !passkeys.is_empty(),
        totp: view.totp.as_str(),
        totp_enrolled_at: view.totp_enrolled_at.map(|t| t.to_rfc3339()),
        recovery_codes_left: view.recovery_codes_left,
        passkeys,
    })
}

/// The factors of a user of the tenant; 404 for anyone else.
async fn mfa_of(state: &AppState, tenant_id: Uuid, user_id: Uuid) -> Result<Mfa, ApiError> {
    if state.store.user(tenant_id, user_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("user {user_id}")));
    }
    let view = state.store.user_mfa(tenant_id, user_id).await?;
    to_dto(state, tenant_id, user_id, view).await
}

/// A user's second factors: authenticator app, recovery codes left, passkeys. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/users/{user_id}/mfa", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = Mfa), (status = 404, body = ErrorBody)))]
pub async fn get_mfa(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Mfa>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    Ok(Json(mfa_of(&state, tenant_id, user_id).await?))
}

/// Removes every second factor of a user (authenticator app, recovery codes, passkeys), for
/// one who lost them, and ends their sessions in the same append; they set up new factors at
/// their next sign-in if the tenant requires MFA.
/// Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/users/{user_id}/reset-mfa", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = MfaResetResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn reset_mfa(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<MfaResetResponse>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let MfaReset {
        totp,
        recovery_codes,
        passkeys,
        sessions_ended,
        position,
    } = state
        .commands
        .reset_mfa(ctx.metadata(principal.actor()), tenant_id, user_id)
        .await?;
    state.projected(position).await?;
    Ok(Json(MfaResetResponse {
        removed: Removed {
            totp,
            recovery_codes,
            passkeys,
        },
        sessions_ended,
        mfa: mfa_of(&state, tenant_id, user_id).await?,
    }))
}

/// The tenant's WebAuthn policy (the default until one is set). Needs `platform:admin`, or
/// `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/webauthn-policy", tag = "tenants",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = WebauthnPolicy), (status = 404, body = ErrorBody)))]
pub async fn get_webauthn_policy(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(tenant_id): ApiPath<Uuid>,
) -> Result<Json<WebauthnPolicy>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    Ok(Json(match state.store.webauthn_policy(tenant_id).await? {
        Some(view) => policy_dto(&view.policy, Some(view.updated_at.to_rfc3339())),
        None => policy_dto(&default_policy(), None),
    }))
}

/// Replaces the tenant's WebAuthn policy; passkey ceremonies follow it from their next start.
/// Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(put, path = "/v1/tenants/{id}/webauthn-policy", tag = "tenants",
    request_body = WebauthnPolicyRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = WebauthnPolicy), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_webauthn_policy(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(tenant_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<WebauthnPolicyRequest>,
) -> Result<Json<WebauthnPolicy>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let policy = body.policy()?;
    let outcome = state
        .commands
        .set_webauthn_policy(ctx.metadata(principal.actor()), tenant_id, policy.clone())
        .await?;
    state.projected(outcome.position).await?;
    let updated_at = state
        .store
        .webauthn_policy(tenant_id)
        .await?
        .map(|view| view.updated_at.to_rfc3339());
    Ok(Json(policy_dto(&policy, updated_at)))
}
