//! `/v1/tenants/{id}/users`: the people of a tenant, for administrators.
//!
//! The read model keeps personal fields sealed under each user's data key; this module opens
//! them for display with [`AppState::personal`] (the keys are cached in memory), and only
//! here, at the edge. An erased user reads as `status: erased`, without address or names.
//! Every handler needs `platform:admin`, or `tenant:admin` on the tenant; any other tenant,
//! and any user of another tenant, is 404.
//!
//! Sessions and lockout (`unlock`) are in `sessions.rs`, second factors (`mfa`, `reset-mfa`)
//! in `mfa.rs`, beside these routes under `/v1/tenants/{id}/users/{user_id}/...`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use tessera_commands::{CreateUser, UpdateUser};
use tessera_domain::user::UserStatus;
use tessera_event_schemas::events::user::fields;
use tessera_projections::{UserFilter, UserView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{id}/users", get(list_users).post(create_user))
        .route(
            "/v1/tenants/{id}/users/{user_id}",
            get(get_user).patch(update_user).delete(erase_user),
        )
        .route(
            "/v1/tenants/{id}/users/{user_id}/disable",
            post(disable_user),
        )
        .route("/v1/tenants/{id}/users/{user_id}/enable", post(enable_user))
        .route(
            "/v1/tenants/{id}/users/{user_id}/send-verification",
            post(send_verification),
        )
        .route(
            "/v1/tenants/{id}/users/{user_id}/password",
            post(set_password),
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Unique in the tenant, ignoring case and surrounding spaces; shown as entered. Must be
    /// at one of the tenant's `allowed_email_domains`, when it has any.
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Free strings such as `user`, `editor`, `tenant:admin`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A first password, checked against the tenant's password policy.
    pub password: Option<String>,
    /// With a password: it must be changed at the first sign-in.
    #[serde(default)]
    pub temporary: bool,
}

/// A partial update: absent fields stay, a name set to `null` is removed. A new address is
/// unverified.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub family_name: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
    pub email: Option<String>,
}

/// A field that is present, even as `null`, is `Some`: `null` then means "remove".
pub(crate) fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// Checked against the tenant's password policy: length, character classes, history, and
    /// how easy it is to guess.
    pub password: String,
    /// It must be changed at the next sign-in.
    #[serde(default)]
    pub temporary: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// `active`, `disabled` or `erased`.
    pub status: Option<String>,
    /// An exact address (case and surrounding spaces ignored).
    pub email: Option<String>,
    /// Users who have this role.
    pub role: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `active`, `disabled` or `erased`.
    pub status: &'static str,
    /// As entered. Absent once the user is erased.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub roles: Vec<String>,
    pub has_password: bool,
    /// The password must be changed at the next sign-in.
    pub password_temporary: bool,
    pub password_changed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The user as the admin API shows them, personal fields opened with their data key (absent
/// when the key is gone: the user is erased).
async fn to_dto(state: &AppState, view: UserView) -> Result<User, ApiError> {
    let open = |field: &'static str, sealed: Option<Vec<u8>>| async move {
        match sealed {
            Some(sealed) => state
                .personal
                .open(view.tenant_id, view.user_id, field, &sealed)
                .await
                .map_err(|error| ApiError::Internal(format!("opening a user's {field}: {error}"))),
            None => Ok(None),
        }
    };
    Ok(User {
        id: view.user_id,
        tenant_id: view.tenant_id,
        status: view.status.as_str(),
        email: open(fields::EMAIL, view.email).await?,
        email_verified: view.email_verified,
        name: open(fields::NAME, view.name).await?,
        given_name: open(fields::GIVEN_NAME, view.given_name).await?,
        family_name: open(fields::FAMILY_NAME, view.family_name).await?,
        roles: view.roles,
        has_password: view.has_password,
        password_temporary: view.password_temporary,
        password_changed_at: view.password_changed_at.map(|t| t.to_rfc3339()),
        created_at: view.created_at.to_rfc3339(),
        updated_at: view.updated_at.to_rfc3339(),
    })
}

/// The user after a write at `position`, once the read models hold it.
pub(crate) async fn written(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
    position: u64,
) -> Result<User, ApiError> {
    state.projected(position).await?;
    let view = state
        .store
        .user(tenant_id, user_id)
        .await?
        .ok_or_else(|| ApiError::Internal("written user missing from read model".to_owned()))?;
    to_dto(state, view).await
}

fn not_found(user_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("user {user_id}"))
}

/// Creates a user. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/users", tag = "users", request_body = CreateUserRequest,
    params(("id" = Uuid, Path, description = "tenant id")),
    responses((status = 201, body = User), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(tenant_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let created = state
        .commands
        .create_user(
            ctx.metadata(principal.actor()),
            tenant_id,
            CreateUser {
                user_id: None,
                email: body.email,
                email_verified: body.email_verified,
                name: body.name,
                given_name: body.given_name,
                family_name: body.family_name,
                roles: body.roles,
                password: body.password,
                temporary: body.temporary,
            },
        )
        .await?;
    let user = written(&state, tenant_id, created.user_id, created.position).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Lists the tenant's users in creation order, erased ones included. Needs `platform:admin`,
/// or `tenant:admin` on this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/users", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), UserQuery),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_users(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(tenant_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<UserPage>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let limit = super::page_limit(query.limit)?;
    let status = query
        .status
        .as_deref()
        .map(|text| {
            UserStatus::parse(text)
                .ok_or_else(|| ApiError::validation("status", "must be active, disabled or erased"))
        })
        .transpose()?;
    let filter = UserFilter {
        status,
        email_hash: query
            .email
            .as_deref()
            .map(|email| state.commands.email_hash(tenant_id, email)),
        role: query.role,
    };
    let page = state
        .store
        .list_users(tenant_id, &filter, limit, query.cursor.as_deref())
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for view in page.items {
        items.push(to_dto(&state, view).await?);
    }
    Ok(Json(UserPage {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// One user; an erased one shows as such. Needs `platform:admin`, or `tenant:admin` on this
/// tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/users/{user_id}", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<User>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let view = state
        .store
        .user(tenant_id, user_id)
        .await?
        .ok_or_else(|| not_found(user_id))?;
    Ok(Json(to_dto(&state, view).await?))
}

/// Changes names, roles or the address (which becomes unverified). Needs `platform:admin`, or
/// `tenant:admin` on this tenant.
#[utoipa::path(patch, path = "/v1/tenants/{id}/users/{user_id}", tag = "users", request_body = UpdateUserRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = User), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_user(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<Json<User>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let outcome = state
        .commands
        .update_user(
            ctx.metadata(principal.actor()),
            tenant_id,
            user_id,
            UpdateUser {
                name: body.name,
                given_name: body.given_name,
                family_name: body.family_name,
                roles: body.roles,
                email: body.email,
            },
        )
        .await?;
    Ok(Json(
        written(&state, tenant_id, user_id, outcome.position).await?,
    ))
}

/// Erases a user: destroys their data key, so that nothing personal of theirs can be read
/// anywhere any more, and records `user.erased`; their address becomes free. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/users/{user_id}", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn erase_user(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let outcome = state
        .commands
        .erase_user(ctx.metadata(principal.actor()), tenant_id, user_id)
        .await?;
    state.projected(outcome.position).await?;
    // The invitations the person accepted hold their address under keys of their own
    // (ADR 0004): destroy those too. The read model is current up to the erasure, which
    // comes after any acceptance of theirs.
    let accepted = state
        .store
        .invitations_accepted_by(tenant_id, user_id)
        .await?;
    state
        .commands
        .forget_invitations(tenant_id, &accepted)
        .await?;
    // The read models have dropped the sealed fields (and the passkey names); leave no copy
    // of them in their files.
    state.store.scrub(&["rm_users", "rm_mfa"]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a user: they can no longer sign in. Needs `platform:admin`, or `tenant:admin` on
/// this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/users/{user_id}/disable", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disable_user(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<User>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let outcome = state
        .commands
        .disable_user(ctx.metadata(principal.actor()), tenant_id, user_id)
        .await?;
    Ok(Json(
        written(&state, tenant_id, user_id, outcome.position).await?,
    ))
}

/// Sends the user a new link verifying their current address (Keycloak's "send verify
/// email"); the previous link stops working. 202: the mail is queued. Needs `platform:admin`,
/// or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/users/{user_id}/send-verification", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn send_verification(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let outcome = state
        .commands
        .send_email_verification(ctx.metadata(principal.actor()), tenant_id, user_id)
        .await?;
    state.projected(outcome.position).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Enables a disabled user. Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/users/{user_id}/enable", tag = "users",
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn enable_user(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<User>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let outcome = state
        .commands
        .enable_user(ctx.metadata(principal.actor()), tenant_id, user_id)
        .await?;
    Ok(Json(
        written(&state, tenant_id, user_id, outcome.position).await?,
    ))
}

/// Sets a user's password, checked against the tenant's password policy (400 names the rule).
/// Needs `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/users/{user_id}/password", tag = "users", request_body = SetPasswordRequest,
    params(("id" = Uuid, Path, description = "tenant id"), ("user_id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = User), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_password(
    principal: Principal,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<SetPasswordRequest>,
) -> Result<Json<User>, ApiError> {
    principal.authorize_tenant(&state, tenant_id).await?;
    let outcome = state
        .commands
        .set_user_password(
            ctx.metadata(principal.actor()),
            tenant_id,
            user_id,
            &body.password,
            body.temporary,
        )
        .await?;
    Ok(Json(
        written(&state, tenant_id, user_id, outcome.position).await?,
    ))
}
