//! The claims resolver (issue 21): `POST /v1/claims/resolve` and seed 003's path
//! `POST /v1/internal/keycloak/claims`, answering seed 003's `Claims` for a tenant (and a
//! person's roles when a user is named), and a client's choice of the tenant claims its tokens
//! carry (`/v1/tenants/{id}/clients/{client_id}/token-claims`).
//!
//! **Lookup order** (seed 003): `tenant_id`, `tenant_slug`, `user_attrs.tenant_id`,
//! `user_attrs.tenant_slug`. Each one given is tried in that order and the first that names a
//! tenant the caller may see wins, so a stale id with a good slug still resolves; a malformed
//! id is 400, none given 400, none found 404. Unknown fields are ignored, as an identity
//! provider's mapper may send more than the seed names.
//!
//! **From memory.** The tenant is the OAuth directory's, its products the registry's
//! precomputed list at the request's time; a named user's roles come from the bounded
//! user-view cache. Only the caller's API key is checked against the read models.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_domain::user::UserStatus;
use tessera_event_schemas::events::TenantClaimsChoice;
use utoipa::ToSchema;
use uuid::Uuid;

use super::entitlements::named;
use crate::auth::{Principal, TenantAdmin};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::scopes::TENANT_ADMIN;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/claims/resolve", post(resolve_claims))
        .route("/v1/internal/keycloak/claims", post(resolve_claims))
        .route(
            "/v1/tenants/{id}/clients/{client_id}/token-claims",
            get(get_token_claims).put(put_token_claims),
        )
}

/// Seed 003's resolver body, plus `user_id` (or `user_attrs.user_id`) to name a person.
#[derive(Deserialize, ToSchema)]
pub struct ResolveRequest {
    pub tenant_id: Option<String>,
    pub tenant_slug: Option<String>,
    /// An identity provider's user attributes; `tenant_id`, `tenant_slug` and `user_id` are
    /// read (a string, or the first string of a list).
    #[schema(value_type = Object)]
    pub user_attrs: Option<HashMap<String, Value>>,
    pub user_id: Option<String>,
}

/// Seed 003's `Claims`.
#[derive(Serialize, ToSchema)]
pub struct Claims {
    pub tenant_id: Uuid,
    pub tenant_slug: String,
    pub org_roles: Vec<String>,
    pub products: Vec<String>,
    pub plan: String,
    /// `demo`, `trial`, `active`, `frozen` or `archived`.
    pub tenant_status: &'static str,
}

/// A user attribute as one string.
fn attr<'a>(attrs: Option<&'a HashMap<String, Value>>, name: &str) -> Option<&'a str> {
    match attrs?.get(name)? {
        Value::String(text) => Some(text),
        Value::Array(items) => items.iter().find_map(Value::as_str),
        _ => None,
    }
}

fn uuid_field(field: &str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text.trim()).map_err(|_| ApiError::validation(field, "must be a UUID"))
}

/// Resolves a tenant's claims (seed 003's order; see the module doc). Needs `platform:admin`,
/// or `tenant:admin` on the tenant resolved (another tenant is not found).
#[utoipa::path(post, path = "/v1/claims/resolve", tag = "claims", request_body = ResolveRequest,
    responses((status = 200, body = Claims), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn resolve_claims(
    principal: Principal,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResolveRequest>,
) -> Result<Json<Claims>, ApiError> {
    let attrs = body.user_attrs.as_ref();
    let candidates = [
        ("tenant_id", body.tenant_id.as_deref(), true),
        ("tenant_slug", body.tenant_slug.as_deref(), false),
        ("user_attrs.tenant_id", attr(attrs, "tenant_id"), true),
        ("user_attrs.tenant_slug", attr(attrs, "tenant_slug"), false),
    ];
    if candidates.iter().all(|(_, value, _)| value.is_none()) {
        return Err(ApiError::validation(
            "tenant_id",
            "name the tenant: tenant_id, tenant_slug, user_attrs.tenant_id or user_attrs.tenant_slug",
        ));
    }
    let visible = |tenant_id: Uuid| {
        principal.is_platform_admin()
            || (principal.tenant_id == tenant_id && principal.has_scope(TENANT_ADMIN))
    };
    let mut found = None;
    for (field, value, is_id) in candidates {
        let Some(value) = value else { continue };
        let state_of = if is_id {
            state.directory.tenant(uuid_field(field, value)?)
        } else {
            state.directory.tenant_by_slug(value.trim())
        };
        if let Some(tenant) = state_of.and_then(|s| s.tenant.clone().filter(|t| visible(t.id))) {
            found = Some(tenant);
            break;
        }
    }
    let tenant = found.ok_or_else(|| ApiError::NotFound("tenant".to_owned()))?;
    let user = match body.user_id.as_deref().or(attr(attrs, "user_id")) {
        Some(text) => Some(uuid_field("user_id", text)?),
        None => None,
    };
    let org_roles = match user {
        Some(user_id) => {
            let view = state
                .user_views
                .user(&state.projections, &state.store, tenant.id, user_id)
                .await?
                .filter(|view| view.status != UserStatus::Erased)
                .ok_or_else(|| ApiError::NotFound(format!("user {user_id}")))?;
            view.roles.clone()
        }
        None => Vec::new(),
    };
    let now = state.clock.now();
    let products = state.registry.tenant_products(tenant.id);
    Ok(Json(Claims {
        tenant_id: tenant.id,
        tenant_slug: tenant.slug.clone(),
        org_roles,
        products: products.at(now).map(str::to_owned).collect(),
        plan: tenant.plan.clone(),
        tenant_status: tenant.status.as_str(),
    }))
}

/// `"all"`, `"off"`, or the list of claim names to keep.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ClaimsChoiceDto {
    Word(String),
    Names(Vec<String>),
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenClaimsBody {
    /// `"all"` (the default), `"off"`, or a list of `tenant_id`, `tenant_slug`, `plan`,
    /// `products`, `tenant_status`, `org_roles`. An access token keeps `tenant_id` whatever
    /// the choice.
    pub tenant_claims: ClaimsChoiceDto,
}

fn to_dto(choice: TenantClaimsChoice) -> TokenClaimsBody {
    TokenClaimsBody {
        tenant_claims: match choice {
            TenantClaimsChoice::All => ClaimsChoiceDto::Word("all".into()),
            TenantClaimsChoice::Off => ClaimsChoiceDto::Word("off".into()),
            TenantClaimsChoice::Only(names) => ClaimsChoiceDto::Names(names),
        },
    }
}

/// The tenant claims a client's tokens carry. Needs `platform:admin`, or `tenant:admin` on
/// this tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}/clients/{client_id}/token-claims", tag = "clients",
    params(("id" = Uuid, Path, description = "tenant id"), ("client_id" = String, Path, description = "client id")),
    responses((status = 200, body = TokenClaimsBody), (status = 404, body = ErrorBody)))]
pub async fn get_token_claims(
    TenantAdmin { tenant_id, .. }: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((_, client_id)): ApiPath<(Uuid, String)>,
) -> Result<Json<TokenClaimsBody>, ApiError> {
    if state.directory.client(tenant_id, &client_id).is_none() {
        return Err(ApiError::NotFound(format!("oauth_client {client_id}")));
    }
    Ok(Json(to_dto(
        state.registry.client_claims(tenant_id, &client_id),
    )))
}

/// Chooses the tenant claims a client's tokens carry, from its next token on. Needs
/// `platform:admin`, or `tenant:admin` on this tenant.
#[utoipa::path(put, path = "/v1/tenants/{id}/clients/{client_id}/token-claims", tag = "clients", request_body = TokenClaimsBody,
    params(("id" = Uuid, Path, description = "tenant id"), ("client_id" = String, Path, description = "client id")),
    responses((status = 200, body = TokenClaimsBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_token_claims(
    TenantAdmin {
        principal,
        tenant_id,
    }: TenantAdmin,
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath((_, client_id)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<TokenClaimsBody>,
) -> Result<Json<TokenClaimsBody>, ApiError> {
    let choice = match body.tenant_claims {
        ClaimsChoiceDto::Word(word) if word == "all" => TenantClaimsChoice::All,
        ClaimsChoiceDto::Word(word) if word == "off" => TenantClaimsChoice::Off,
        ClaimsChoiceDto::Word(_) => {
            return Err(ApiError::validation(
                "tenant_claims",
                "must be \"all\", \"off\" or a list of claim names",
            ));
        }
        ClaimsChoiceDto::Names(names) => TenantClaimsChoice::Only(names),
    };
    let done = state
        .commands
        .set_client_token_claims(
            ctx.metadata(principal.actor()),
            tenant_id,
            &client_id,
            choice,
        )
        .await
        .map_err(named)?;
    state.projected(done.position).await?;
    Ok(Json(to_dto(
        state.registry.client_claims(tenant_id, &client_id),
    )))
}
