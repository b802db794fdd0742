//! A tenant's vault keys (issue 20, ADR 0007): `GET /v1/tenants/{id}/vault` (versions, minimum,
//! the count of secrets per version, the rewrap's progress), `POST .../vault/rotate`,
//! `POST .../vault/rewrap`, `PUT .../vault/minimum` and offboarding, `DELETE .../vault` with
//! `{"confirm": "<tenant slug>"}`.
//!
//! Platform admins, and tenant admins for their own tenant, may read, rotate, rewrap and set
//! the minimum; only a platform admin offboards. Counts come from `rm_vault_secrets` after this
//! node has caught up with the log, so that a rewrap's progress and the minimum's refusal see
//! every secret appended before the request.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::vault::VaultState;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{PlatformAdmin, TenantAdmin};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::state::AppState;
use crate::vault_rewrap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{id}/vault",
            get(get_vault).delete(destroy_vault),
        )
        .route("/v1/tenants/{id}/vault/rotate", post(rotate))
        .route("/v1/tenants/{id}/vault/rewrap", post(rewrap))
        .route("/v1/tenants/{id}/vault/minimum", put(set_minimum))
}

#[derive(Serialize, ToSchema)]
pub struct VersionCount {
    pub version: u32,
    /// Secrets sealed under this version.
    pub secrets: u64,
}

/// A rewrap's progress: `done + remaining = total` while it runs.
#[derive(Serialize, ToSchema)]
pub struct RewrapProgress {
    pub to_version: u32,
    pub total: u64,
    pub done: u64,
    /// Secrets still below `to_version`.
    pub remaining: u64,
}

#[derive(Serialize, ToSchema)]
pub struct VaultView {
    pub tenant_id: Uuid,
    /// The key versions that exist (none once destroyed).
    pub versions: Vec<u32>,
    /// What new secrets are sealed under; 0 before the first secret.
    pub newest: u32,
    /// Versions below it no longer open; 0 when none was set.
    pub minimum: u32,
    pub destroyed: bool,
    pub secrets_per_version: Vec<VersionCount>,
    /// The last rewrap started, if any.
    pub rewrap: Option<RewrapProgress>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MinimumRequest {
    pub version: u32,
    /// Retire the versions below even though secrets are still sealed under them (they will
    /// no longer open).
    #[serde(default)]
    pub force: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyRequest {
    /// The tenant's slug, typed again: offboarding cannot be undone.
    pub confirm: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Destroyed {
    pub tenant_id: Uuid,
    pub destroyed: bool,
    /// Key versions destroyed.
    pub versions_destroyed: u32,
}

/// The vault as recorded, with the read model's counts (caught up first).
async fn view(state: &AppState, tenant_id: Uuid, vault: VaultState) -> Result<VaultView, ApiError> {
    state.catch_up().await;
    let counts = state.store.vault_secret_counts(tenant_id).await?;
    let below = |version: u32| -> u64 {
        counts
            .iter()
            .filter(|(v, _)| *v < version)
            .map(|(_, n)| n)
            .sum()
    };
    let rewrap = vault.rewrap.map(|rewrap| {
        let remaining = below(rewrap.to_version);
        RewrapProgress {
            to_version: rewrap.to_version,
            total: rewrap.total.max(remaining),
            done: rewrap.total.saturating_sub(remaining),
            remaining,
        }
    });
    Ok(VaultView {
        tenant_id,
        versions: vault.versions().collect(),
        newest: vault.newest,
        minimum: vault.minimum,
        destroyed: vault.destroyed,
        secrets_per_version: counts
            .iter()
            .map(|(version, secrets)| VersionCount {
                version: *version,
                secrets: *secrets,
            })
            .collect(),
        rewrap,
    })
}

fn not_destroyed(vault: &VaultState) -> Result<(), ApiError> {
    if vault.destroyed {
        return Err(ApiError::Gone(
            "the tenant's vault was destroyed (offboarding)".into(),
        ));
    }
    Ok(())
}

/// The tenant's vault: key versions, minimum, secrets per version and the rewrap's progress.
/// Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/vault", tag = "vault",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = VaultView), (status = 404, body = ErrorBody)))]
pub async fn get_vault(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
) -> Result<Json<VaultView>, ApiError> {
    let vault = state.commands.vault_state(tenant_id).await?;
    Ok(Json(view(&state, tenant_id, vault).await?))
}

/// Adds a key version; new secrets are sealed under it, older versions still open. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/vault/rotate", tag = "vault",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 201, body = VaultView), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn rotate(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<(StatusCode, Json<VaultView>), ApiError> {
    not_destroyed(&state.commands.vault_state(tenant_id).await?)?;
    let (_, position) = state
        .commands
        .rotate_vault_key(ctx.metadata(principal.actor()), tenant_id)
        .await?;
    state.projected(position).await?;
    let vault = state.commands.vault_state(tenant_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, tenant_id, vault).await?),
    ))
}

/// Starts moving every secret of the tenant below the newest key version to it, without
/// opening any; answers the progress at once (202) while it runs in the background. Asking
/// again answers the progress of the one running. Needs `platform:admin`, or `tenant:admin`
/// on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/vault/rewrap", tag = "vault",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 202, body = VaultView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn rewrap(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<(StatusCode, Json<VaultView>), ApiError> {
    let vault = state.commands.vault_state(tenant_id).await?;
    not_destroyed(&vault)?;
    state.catch_up().await;
    let total: u64 = state
        .store
        .vault_secret_counts(tenant_id)
        .await?
        .iter()
        .filter(|(version, _)| *version < vault.newest)
        .map(|(_, secrets)| secrets)
        .sum();
    let meta = ctx.metadata(principal.actor());
    let (vault, position) = state
        .commands
        .start_vault_rewrap(meta.clone(), tenant_id, total)
        .await?;
    state.projected(position).await?;
    vault_rewrap::spawn(state.clone(), tenant_id, meta);
    Ok((
        StatusCode::ACCEPTED,
        Json(view(&state, tenant_id, vault).await?),
    ))
}

/// Sets the minimum decryption version: older versions no longer open. Refused (409) while
/// secrets remain below it, unless `force`. Needs `platform:admin`, or `tenant:admin` on this
/// tenant.
#[utoipa::path(put, path = "/v1/tenants/{id}/vault/minimum", tag = "vault", request_body = MinimumRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = VaultView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn set_minimum(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<MinimumRequest>,
) -> Result<Json<VaultView>, ApiError> {
    not_destroyed(&state.commands.vault_state(tenant_id).await?)?;
    state.catch_up().await;
    let below: u64 = state
        .store
        .vault_secret_counts(tenant_id)
        .await?
        .iter()
        .filter(|(version, _)| *version < body.version)
        .map(|(_, secrets)| secrets)
        .sum();
    let position = state
        .commands
        .set_vault_minimum(
            ctx.metadata(principal.actor()),
            tenant_id,
            body.version,
            below,
            body.force,
        )
        .await?;
    state.projected(position).await?;
    let vault = state.commands.vault_state(tenant_id).await?;
    Ok(Json(view(&state, tenant_id, vault).await?))
}

/// Offboarding: destroys every key version of the tenant's vault, then records it. Every
/// secret of the tenant is unreadable from then on, for good; the log still verifies. The
/// body must confirm the tenant's slug (`{"confirm": "acme"}`): a missing or wrong one is 400
/// and changes nothing. Needs `platform:admin`.
#[utoipa::path(delete, path = "/v1/tenants/{id}/vault", tag = "vault", request_body = DestroyRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Destroyed), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn destroy_vault(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(tenant_id): ApiPath<Uuid>,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Json<Destroyed>, ApiError> {
    let tenant = match state.store.tenant(tenant_id).await? {
        Some(tenant) => tenant,
        None => {
            state.catch_up().await;
            state
                .store
                .tenant(tenant_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("tenant {tenant_id}")))?
        }
    };
    let request: DestroyRequest = if body.is_empty() {
        DestroyRequest { confirm: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::BadRequest(format!("malformed JSON: {error}")))?
    };
    match request.confirm.as_deref() {
        Some(confirm) if confirm == tenant.slug => {}
        Some(_) => {
            return Err(ApiError::validation(
                "confirm",
                "does not match the tenant's slug: nothing was destroyed",
            ));
        }
        None => {
            return Err(ApiError::validation(
                "confirm",
                "is required: the tenant's slug, to confirm that its vault is destroyed for good",
            ));
        }
    }
    let vault = state.commands.vault_state(tenant_id).await?;
    not_destroyed(&vault)?;
    let position = state
        .commands
        .destroy_vault(ctx.metadata(principal.actor()), tenant_id)
        .await?;
    state.projected(position).await?;
    Ok(Json(Destroyed {
        tenant_id,
        destroyed: true,
        versions_destroyed: vault.newest,
    }))
}
