//! `/v1/tenants`: provisioning, lifecycle, settings and signing keys.
//!
//! Every write goes through a command, waits until the read models reflect it (read-your-writes)
//! and answers from the read model. Request and response shapes are DTOs defined here and
//! converted by hand from domain and read-model types.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_commands::{ActivateTenant, CancelTenant, CommandError, CreateTenant, UpdateTenant};
use tessera_event_schemas::Date;
use tessera_event_schemas::events::{
    LockoutPolicyV1, PasswordPolicyV1, PublicJwkV1, SigningAlg, TenantKind, TenantSettingsV1,
    TenantStatus,
};
use tessera_projections::{SigningKeyStatus, SigningKeyView, TenantFilter, TenantView};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tenant_admin::{self, CreatedTenant};
use crate::auth::PlatformAdmin;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route(
            "/v1/tenants/{id}",
            get(get_tenant).patch(update_tenant).delete(archive_tenant),
        )
        .route("/v1/tenants/by-slug/{slug}", get(get_tenant_by_slug))
        .route("/v1/tenants/{id}/activate", post(activate_tenant))
        .route("/v1/tenants/{id}/cancel", post(cancel_tenant))
        .route("/v1/tenants/{id}/suspend", post(suspend_tenant))
        .route("/v1/tenants/{id}/reactivate", post(reactivate_tenant))
        .route(
            "/v1/tenants/{id}/settings",
            get(get_settings).put(put_settings),
        )
        .route("/v1/tenants/{id}/keys", get(list_keys))
        .route("/v1/tenants/{id}/keys/rotate", post(rotate_key))
        .route("/v1/tenants/{id}/keys/{kid}/retire", post(retire_key))
}

// ---------------------------------------------------------------------------------------------
// DTOs

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    pub min_length: u16,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_numbers: bool,
    pub require_special_chars: bool,
    pub password_history_count: u16,
    /// 0: passwords never expire.
    pub max_age_days: u16,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LockoutPolicy {
    pub max_attempts: u16,
    pub lockout_duration_minutes: u32,
    pub reset_after_minutes: u32,
}

/// Tenant security settings. On `PUT`, every field is required: the settings are replaced whole.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub session_timeout_minutes: u32,
    pub max_sessions_per_user: u16,
    pub require_mfa: bool,
    pub password_policy: PasswordPolicy,
    pub lockout_policy: LockoutPolicy,
    /// Email domains allowed to sign up; empty allows any. Also accepted as `allowed_domains`
    /// (seed 001's name) on input.
    #[serde(alias = "allowed_domains")]
    pub allowed_email_domains: Vec<String>,
}

impl From<&TenantSettingsV1> for Settings {
    fn from(s: &TenantSettingsV1) -> Self {
        let p = &s.password_policy;
        let l = &s.lockout_policy;
        Self {
            session_timeout_minutes: s.session_timeout_minutes,
            max_sessions_per_user: s.max_sessions_per_user,
            require_mfa: s.require_mfa,
            password_policy: PasswordPolicy {
                min_length: p.min_length,
                require_uppercase: p.require_uppercase,
                require_lowercase: p.require_lowercase,
                require_numbers: p.require_numbers,
                require_special_chars: p.require_special_chars,
                password_history_count: p.password_history_count,
                max_age_days: p.max_age_days,
            },
            lockout_policy: LockoutPolicy {
                max_attempts: l.max_attempts,
                lockout_duration_minutes: l.lockout_duration_minutes,
                reset_after_minutes: l.reset_after_minutes,
            },
            allowed_email_domains: s.allowed_email_domains.clone(),
        }
    }
}

impl From<Settings> for TenantSettingsV1 {
    fn from(s: Settings) -> Self {
        let p = s.password_policy;
        let l = s.lockout_policy;
        Self {
            session_timeout_minutes: s.session_timeout_minutes,
            max_sessions_per_user: s.max_sessions_per_user,
            require_mfa: s.require_mfa,
            password_policy: PasswordPolicyV1 {
                min_length: p.min_length,
                require_uppercase: p.require_uppercase,
                require_lowercase: p.require_lowercase,
                require_numbers: p.require_numbers,
                require_special_chars: p.require_special_chars,
                password_history_count: p.password_history_count,
                max_age_days: p.max_age_days,
            },
            lockout_policy: LockoutPolicyV1 {
                max_attempts: l.max_attempts,
                lockout_duration_minutes: l.lockout_duration_minutes,
                reset_after_minutes: l.reset_after_minutes,
            },
            allowed_email_domains: s.allowed_email_domains,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// `^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`, unique across the platform, forever.
    pub slug: String,
    pub name: String,
    /// Defaults to `starter`.
    pub plan: Option<String>,
    /// `customer` (default; starts a 14-day trial) or `demo`.
    pub kind: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    pub settings: Option<Settings>,
    /// Free-form configuration object.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    pub sales_owner: Option<String>,
    /// `ES256` (default), `EdDSA` or `RS256`.
    pub signing_alg: Option<String>,
    /// Invites this address as the tenant's first `tenant:admin` (seed 003).
    pub admin_email: Option<String>,
    pub admin_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    pub name: Option<String>,
    pub domains: Option<Vec<String>>,
    pub plan: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    pub sales_owner: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub plan: Option<String>,
    /// `YYYY-MM-DD`.
    pub contract_start: Option<String>,
    /// `YYYY-MM-DD`.
    pub contract_end: Option<String>,
    pub erp_customer_id: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: Option<String>,
    /// Keep the tenant running until its contract ends, then freeze it.
    #[serde(default)]
    pub at_period_end: bool,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// `ES256`, `EdDSA` or `RS256`: the active key of that algorithm is replaced (or, when
    /// the tenant has none, the default key, whose algorithm then changes). Defaults to the
    /// default key's algorithm.
    pub alg: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PendingCancellation {
    pub reason: String,
    pub effective_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// `demo`, `trial`, `active`, `frozen` or `archived`.
    pub status: &'static str,
    /// `customer` or `demo`.
    pub kind: &'static str,
    pub plan: String,
    /// While suspended, every authentication and API call for the tenant is refused.
    pub suspended: bool,
    pub suspension_reason: Option<String>,
    pub domains: Vec<String>,
    pub settings: Settings,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub sales_owner: Option<String>,
    pub erp_customer_id: Option<String>,
    pub trial_ends_at: Option<String>,
    pub contract_start: Option<String>,
    pub contract_end: Option<String>,
    pub pending_cancellation: Option<PendingCancellation>,
    pub cancellation_reason: Option<String>,
    /// The key new tokens are signed with.
    pub active_kid: String,
    /// Ids of the keys published for verification (active and not yet retired).
    pub key_ids: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The tenant stream's version: increases with every change.
    pub version: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TenantPage {
    pub items: Vec<Tenant>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTenantsQuery {
    /// Filter by lifecycle status.
    pub status: Option<String>,
    /// Filter by suspension.
    pub suspended: Option<bool>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SigningKey {
    pub kid: String,
    pub alg: &'static str,
    /// `active`, `published` (verifies, no longer signs) or `retired`.
    pub status: &'static str,
    pub created_at: String,
    pub retired_at: Option<String>,
    /// The public key as a JWK (RFC 7517).
    #[schema(value_type = Object)]
    pub public_jwk: serde_json::Value,
}

fn kind_str(kind: TenantKind) -> &'static str {
    match kind {
        TenantKind::Customer => "customer",
        TenantKind::Demo => "demo",
    }
}

fn to_dto(view: TenantView, keys: &[SigningKeyView]) -> Tenant {
    Tenant {
        id: view.id,
        slug: view.slug,
        name: view.name,
        status: view.status.as_str(),
        kind: kind_str(view.kind),
        plan: view.plan,
        suspended: view.suspended,
        suspension_reason: view.suspension_reason,
        domains: view.domains,
        settings: Settings::from(&view.settings),
        config: view.config,
        sales_owner: view.sales_owner,
        erp_customer_id: view.erp_customer_id,
        trial_ends_at: view.trial_ends_at.map(|t| t.to_rfc3339()),
        contract_start: view.contract_start.map(|d| d.to_string()),
        contract_end: view.contract_end.map(|d| d.to_string()),
        pending_cancellation: view.pending_cancellation.map(|p| PendingCancellation {
            reason: p.reason,
            effective_at: p.effective_at.to_rfc3339(),
        }),
        cancellation_reason: view.cancellation_reason,
        active_kid: view.active_kid,
        key_ids: keys
            .iter()
            .filter(|k| k.status != SigningKeyStatus::Retired)
            .map(|k| k.kid.clone())
            .collect(),
        created_at: view.created_at.to_rfc3339(),
        updated_at: view.updated_at.to_rfc3339(),
        version: view.version,
    }
}

pub fn jwk_json(kid: &str, alg: SigningAlg, jwk: &PublicJwkV1) -> serde_json::Value {
    let mut value = match jwk {
        PublicJwkV1::Ec { x, y } => {
            serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y })
        }
        PublicJwkV1::Okp { x } => serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x }),
        PublicJwkV1::Rsa { n, e } => serde_json::json!({ "kty": "RSA", "n": n, "e": e }),
    };
    if let Some(map) = value.as_object_mut() {
        map.insert("kid".into(), kid.into());
        map.insert("alg".into(), alg.as_str().into());
        map.insert("use".into(), "sig".into());
    }
    value
}

fn key_dto(key: &SigningKeyView) -> SigningKey {
    SigningKey {
        kid: key.kid.clone(),
        alg: key.alg.as_str(),
        status: key.status.as_str(),
        created_at: key.created_at.to_rfc3339(),
        retired_at: key.retired_at.map(|t| t.to_rfc3339()),
        public_jwk: jwk_json(&key.kid, key.alg, &key.public_jwk),
    }
}

fn parse_alg(field: &str, text: Option<&str>) -> Result<Option<SigningAlg>, ApiError> {
    text.map(|t| {
        SigningAlg::parse(t)
            .ok_or_else(|| ApiError::validation(field, "must be ES256, EdDSA or RS256"))
    })
    .transpose()
}

fn parse_date(field: &str, text: Option<&str>) -> Result<Option<Date>, ApiError> {
    text.map(|t| Date::parse(t).ok_or_else(|| ApiError::validation(field, "must be YYYY-MM-DD")))
        .transpose()
}

fn config_text(config: Option<serde_json::Value>) -> Result<Option<String>, ApiError> {
    match config {
        None => Ok(None),
        Some(value @ serde_json::Value::Object(_)) => Ok(Some(value.to_string())),
        Some(_) => Err(ApiError::validation("config", "must be a JSON object")),
    }
}

/// Loads the tenant as the read model has it, with its keys: the answer of every write.
async fn tenant_response(state: &AppState, id: Uuid) -> Result<Tenant, ApiError> {
    let view = state
        .store
        .tenant(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant {id}")))?;
    let keys = state.store.signing_keys(id).await?;
    Ok(to_dto(view, &keys))
}

/// The answer of a tenant write: waits until the read models hold it, then reads it back.
async fn written(state: &AppState, id: Uuid, position: u64) -> Result<Json<Tenant>, ApiError> {
    state.projected(position).await?;
    Ok(Json(tenant_response(state, id).await?))
}

/// Names the tenant when a command finds no such tenant.
fn tenant_error(error: CommandError, id: Uuid) -> ApiError {
    match error {
        CommandError::NotFound { .. } => ApiError::NotFound(format!("tenant {id}")),
        other => other.into(),
    }
}

/// Reads fail with 404 for an unknown tenant rather than answering an empty list.
async fn existing(state: &AppState, id: Uuid) -> Result<(), ApiError> {
    match state.store.tenant(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("tenant {id}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Creates a tenant with its first signing key, and with `admin_email` invites its first
/// administrator ([`super::tenant_admin`]). Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenantRequest,
    responses((status = 201, body = CreatedTenant), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn create_tenant(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CreateTenantRequest>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    tenant_admin::check_request(body.admin_email.as_deref(), body.admin_name.as_deref())?;
    let kind = match body.kind.as_deref() {
        None | Some("customer") => TenantKind::Customer,
        Some("demo") => TenantKind::Demo,
        Some(_) => return Err(ApiError::validation("kind", "must be customer or demo")),
    };
    let input = CreateTenant {
        tenant_id: None,
        slug: body.slug,
        name: body.name,
        plan: body.plan,
        kind,
        domains: body.domains,
        settings: body.settings.map(Into::into),
        config_json: config_text(body.config)?,
        sales_owner: body.sales_owner,
        signing_alg: parse_alg("signing_alg", body.signing_alg.as_deref())?,
    };
    let created = state
        .commands
        .create_tenant(ctx.metadata(principal.actor()), input)
        .await?;
    state.projected(created.position).await?;
    let admin = tenant_admin::invite_first_admin(
        &state,
        ctx.metadata(principal.actor()),
        created.tenant_id,
        body.admin_email,
        body.admin_name,
    )
    .await?;
    let tenant = tenant_response(&state, created.tenant_id).await?;
    Ok((StatusCode::CREATED, Json(CreatedTenant::new(tenant, admin))))
}

/// Lists tenants, oldest first. Needs `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(
        ("status" = Option<String>, Query, description = "demo, trial, active, frozen or archived"),
        ("suspended" = Option<bool>, Query, description = "only suspended (true) or unsuspended (false) tenants"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = TenantPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_tenants(
    PlatformAdmin(_): PlatformAdmin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListTenantsQuery>,
) -> Result<Json<TenantPage>, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|s| {
            TenantStatus::parse(s).ok_or_else(|| {
                ApiError::validation("status", "must be demo, trial, active, frozen or archived")
            })
        })
        .transpose()?;
    let limit = super::page_limit(query.limit)?;
    let page = state
        .store
        .list_tenants(
            TenantFilter {
                status,
                suspended: query.suspended,
            },
            limit,
            query.cursor.as_deref(),
        )
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for view in page.items {
        let keys = state.store.signing_keys(view.id).await?;
        items.push(to_dto(view, &keys));
    }
    Ok(Json(TenantPage {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// Reads one tenant. Needs `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody)))]
pub async fn get_tenant(
    PlatformAdmin(_): PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(tenant_response(&state, id).await?))
}

/// Reads one tenant by slug. Needs `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/by-slug/{slug}", tag = "tenants",
    params(("slug" = String, Path, description = "tenant slug")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody)))]
pub async fn get_tenant_by_slug(
    PlatformAdmin(_): PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<Tenant>, ApiError> {
    let view = state
        .store
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant {slug}")))?;
    let keys = state.store.signing_keys(view.id).await?;
    Ok(Json(to_dto(view, &keys)))
}

/// Changes name, domains, plan, config or sales owner. Needs `platform:admin`.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", request_body = UpdateTenantRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_tenant(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateTenantRequest>,
) -> Result<Json<Tenant>, ApiError> {
    let input = UpdateTenant {
        name: body.name,
        domains: body.domains,
        plan: body.plan,
        config_json: config_text(body.config)?,
        sales_owner: body.sales_owner,
    };
    let done = state
        .commands
        .update_tenant(ctx.metadata(principal.actor()), id, input)
        .await
        .map_err(|e| tenant_error(e, id))?;
    written(&state, id, done.position).await
}

/// Archives the tenant (its data is kept, its slug stays reserved). Needs `platform:admin`.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn archive_tenant(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Tenant>, ApiError> {
    let done = state
        .commands
        .archive(ctx.metadata(principal.actor()), id)
        .await
        .map_err(|e| tenant_error(e, id))?;
    written(&state, id, done.position).await
}

/// Moves a demo, trial or frozen tenant to active. Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants/{id}/activate", tag = "tenants", request_body = ActivateRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn activate_tenant(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<ActivateRequest>>,
) -> Result<Json<Tenant>, ApiError> {
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    let input = ActivateTenant {
        plan: body.plan,
        contract_start: parse_date("contract_start", body.contract_start.as_deref())?,
        contract_end: parse_date("contract_end", body.contract_end.as_deref())?,
        erp_customer_id: body.erp_customer_id,
    };
    let done = state
        .commands
        .activate(ctx.metadata(principal.actor()), id, input)
        .await
        .map_err(|e| tenant_error(e, id))?;
    written(&state, id, done.position).await
}

/// Cancels: freezes now, or at the end of the contract with `at_period_end`. Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants/{id}/cancel", tag = "tenants", request_body = CancelRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_tenant(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<CancelRequest>>,
) -> Result<Json<Tenant>, ApiError> {
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    let input = CancelTenant {
        reason: body.reason.unwrap_or_else(|| "unspecified".to_owned()),
        at_period_end: body.at_period_end,
    };
    let done = state
        .commands
        .cancel(ctx.metadata(principal.actor()), id, input)
        .await
        .map_err(|e| tenant_error(e, id))?;
    written(&state, id, done.position).await
}

/// Suspends: blocks every authentication and API call for the tenant, keeps its data.
/// Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants/{id}/suspend", tag = "tenants", request_body = SuspendRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn suspend_tenant(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<SuspendRequest>>,
) -> Result<Json<Tenant>, ApiError> {
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    let done = state
        .commands
        .suspend(ctx.metadata(principal.actor()), id, body.reason)
        .await
        .map_err(|e| tenant_error(e, id))?;
    written(&state, id, done.position).await
}

/// Lifts a suspension; the tenant is exactly as before it. Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants/{id}/reactivate", tag = "tenants",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reactivate_tenant(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Tenant>, ApiError> {
    let done = state
        .commands
        .reactivate(ctx.metadata(principal.actor()), id)
        .await
        .map_err(|e| tenant_error(e, id))?;
    written(&state, id, done.position).await
}

/// Reads the tenant's security settings. Needs `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/settings", tag = "tenants",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Settings), (status = 404, body = ErrorBody)))]
pub async fn get_settings(
    PlatformAdmin(_): PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Settings>, ApiError> {
    let view = state
        .store
        .tenant(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant {id}")))?;
    Ok(Json(Settings::from(&view.settings)))
}

/// Replaces the tenant's security settings. Needs `platform:admin`.
#[utoipa::path(put, path = "/v1/tenants/{id}/settings", tag = "tenants", request_body = Settings,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = Settings), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_settings(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Settings>,
) -> Result<Json<Settings>, ApiError> {
    let done = state
        .commands
        .change_settings(ctx.metadata(principal.actor()), id, body.into())
        .await
        .map_err(|e| tenant_error(e, id))?;
    state.projected(done.position).await?;
    let view = state
        .store
        .tenant(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant {id}")))?;
    Ok(Json(Settings::from(&view.settings)))
}

/// Lists the tenant's signing keys: public metadata only. Needs `platform:admin`.
#[utoipa::path(get, path = "/v1/tenants/{id}/keys", tag = "keys",
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 200, body = [SigningKey]), (status = 404, body = ErrorBody)))]
pub async fn list_keys(
    PlatformAdmin(_): PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<SigningKey>>, ApiError> {
    existing(&state, id).await?;
    let keys = state.store.signing_keys(id).await?;
    Ok(Json(keys.iter().map(key_dto).collect()))
}

/// Generates a new active signing key of the requested algorithm in place of the active key
/// of that algorithm (`{"alg": "RS256"}` rotates the ID token key, no body the default key);
/// the replaced key stays published until retired. Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants/{id}/keys/rotate", tag = "keys", request_body = RotateKeyRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 201, body = [SigningKey]), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rotate_key(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: Option<ApiJson<RotateKeyRequest>>,
) -> Result<(StatusCode, Json<Vec<SigningKey>>), ApiError> {
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    let alg = parse_alg("alg", body.alg.as_deref())?;
    let done = state
        .commands
        .rotate_signing_key(ctx.metadata(principal.actor()), id, alg)
        .await
        .map_err(|e| tenant_error(e, id))?;
    state.projected(done.position).await?;
    let keys = state.store.signing_keys(id).await?;
    Ok((
        StatusCode::CREATED,
        Json(keys.iter().map(key_dto).collect()),
    ))
}

/// Retires a published key: it leaves the JWKS. The active key cannot be retired.
/// Needs `platform:admin`.
#[utoipa::path(post, path = "/v1/tenants/{id}/keys/{kid}/retire", tag = "keys",
    params(("id" = Uuid, Path, description = "tenant id"), ("kid" = String, Path, description = "key id")),
    responses((status = 200, body = [SigningKey]), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retire_key(
    PlatformAdmin(principal): PlatformAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((id, kid)): ApiPath<(Uuid, String)>,
) -> Result<Json<Vec<SigningKey>>, ApiError> {
    let done = state
        .commands
        .retire_signing_key(ctx.metadata(principal.actor()), id, kid)
        .await
        .map_err(|e| tenant_error(e, id))?;
    state.projected(done.position).await?;
    let keys = state.store.signing_keys(id).await?;
    Ok(Json(keys.iter().map(key_dto).collect()))
}
