//! Seed 002's frontend flow of federated sign-in (issue 19), unchanged:
//! - `GET /auth/tenants`: the tenants with at least one provider (slug, name, and the display
//!   name of their `default` provider, else of their first by alias);
//! - `GET /auth/initiate?tenant={slug}[&provider={alias}]`: `{authorization_url, state}`, and
//!   the browser binding cookie the state is bound to. Beyond the seed, `provider` (or
//!   `alias`) names one of several providers; without it, `default`, else the tenant's only
//!   one;
//! - `POST /auth/callback {code, state}`: seed 002's `{access_token}` (an access token of the
//!   tenant's issuer for the person, see [`crate::federation::frontend_token`]), with
//!   `token_type`, `expires_in` and `scope` as RFC 6749 §5.1 names them, `user_id` and the
//!   tenant's slug beside it; and the tenant's session cookie set.
//!
//! Public (no API key): they are the sign-in itself. Errors are the API's JSON shape with the
//! correlation id (also the `x-correlation-id` header).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::identity_provider::DEFAULT_ALIAS;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestContext};
use crate::federation::{self, Failure, Finished};
use crate::pages::PageTenant;
use crate::pages::cookies;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/tenants", get(tenants))
        .route("/auth/initiate", get(initiate))
        .route("/auth/callback", post(callback))
}

#[derive(Serialize, ToSchema)]
pub struct FederatedTenant {
    pub slug: String,
    pub name: String,
    pub display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct FederatedTenants {
    pub tenants: Vec<FederatedTenant>,
}

/// The tenants that sign people in through an upstream provider (seed 002). Public.
#[utoipa::path(get, path = "/auth/tenants", tag = "federation", security(()),
    responses((status = 200, body = FederatedTenants)))]
pub async fn tenants(State(state): State<AppState>) -> Result<Json<FederatedTenants>, ApiError> {
    let mut tenants = Vec::new();
    for tenant_id in state.store.federating_tenants().await? {
        let Some(tenant) = state
            .directory
            .tenant(tenant_id)
            .and_then(|t| t.tenant.clone())
            .filter(|t| t.serves())
        else {
            continue;
        };
        let providers = state.store.identity_providers(tenant_id).await?;
        let Some(shown) = providers
            .iter()
            .find(|provider| provider.alias == DEFAULT_ALIAS)
            .or_else(|| providers.first())
        else {
            continue;
        };
        tenants.push(FederatedTenant {
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            display_name: shown.display_name.clone(),
        });
    }
    tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(Json(FederatedTenants { tenants }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitiateQuery {
    pub tenant: String,
    /// One of the tenant's providers by alias (beyond the seed); `alias` is the same.
    #[serde(alias = "alias")]
    pub provider: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Initiated {
    pub authorization_url: String,
    pub state: String,
}

fn not_configured() -> ApiError {
    ApiError::NotFound("Tenant not found or not configured for federation".to_owned())
}

/// Starts a federated sign-in at the tenant's provider (seed 002). Public.
#[utoipa::path(get, path = "/auth/initiate", tag = "federation", security(()),
    params(("tenant" = String, Query, description = "tenant slug"),
        ("provider" = Option<String>, Query, description = "provider alias (or `alias=`); default `default`, else the tenant's only provider")),
    responses((status = 200, body = Initiated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn initiate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<InitiateQuery>,
) -> Result<Response, ApiError> {
    let tenant = state
        .directory
        .tenant_by_slug(&query.tenant)
        .and_then(|t| t.tenant.clone())
        .filter(|t| t.serves())
        .ok_or_else(not_configured)?;
    let alias = match query.provider {
        Some(alias) => alias,
        None => default_alias(&state, tenant.id).await?,
    };
    let provider = state
        .commands
        .identity_provider(tenant.id, &alias)
        .await?
        .ok_or_else(not_configured)?;
    let started = federation::start(
        &state,
        &headers,
        tenant.id,
        &tenant.slug,
        &alias,
        &provider,
        None,
    )?;
    let mut response = Json(Initiated {
        authorization_url: started.authorization_url,
        state: started.state,
    })
    .into_response();
    if let Some(cookie) = started.cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The provider `/auth/initiate` starts without a `provider`: `default`, else the tenant's only
/// one; with several and no `default`, the caller must choose (400 naming them).
async fn default_alias(state: &AppState, tenant_id: uuid::Uuid) -> Result<String, ApiError> {
    let providers = state.store.identity_providers(tenant_id).await?;
    if providers.iter().any(|p| p.alias == DEFAULT_ALIAS) {
        return Ok(DEFAULT_ALIAS.to_owned());
    }
    match providers.as_slice() {
        [only] => Ok(only.alias.clone()),
        // None listed (yet): `default` gives the same 404 as before the read model.
        [] => Ok(DEFAULT_ALIAS.to_owned()),
        several => Err(ApiError::validation(
            "provider",
            format!(
                "this tenant has several identity providers; name one with provider= ({})",
                several
                    .iter()
                    .map(|p| p.alias.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackRequest {
    pub code: String,
    pub state: String,
    /// The tenant the frontend signs in to (its slug); a state of another tenant is refused.
    pub tenant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallbackAnswer {
    /// Seed 002's answer: a JWT of the tenant's issuer (`sub` the user, `aud` the issuer),
    /// which the tenant's userinfo and introspection accept.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u32,
    /// `openid email profile`.
    pub scope: String,
    pub user_id: uuid::Uuid,
    /// The tenant's slug.
    pub tenant: String,
}

/// Finishes a federated sign-in (seed 002): an access token for the person, and the session
/// cookie. Public.
#[utoipa::path(post, path = "/auth/callback", tag = "federation", request_body = CallbackRequest,
    security(()),
    responses((status = 200, body = CallbackAnswer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn callback(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CallbackRequest>,
) -> Result<Response, ApiError> {
    let at = match &body.tenant {
        Some(slug) => Some(
            state
                .directory
                .tenant_by_slug(slug)
                .and_then(|t| t.tenant.as_ref().map(|t| t.id))
                .ok_or_else(not_configured)?,
        ),
        None => None,
    };
    let finished = federation::finish(&state, &ctx, &headers, at, &body.state, &body.code, None)
        .await
        .map_err(|failure| match failure {
            Failure::Refused(refused) => {
                ApiError::Forbidden(format!("{}: {}", refused.title, refused.message))
            }
            Failure::Command(error) => error.into(),
        })?;
    let Finished::SignedIn {
        tenant_id, session, ..
    } = finished
    else {
        return Err(ApiError::Conflict(
            "an account with this email address exists: sign in to it on the hosted sign-in \
             page to link your identity provider"
                .to_owned(),
        ));
    };
    let frame_tenant = page_tenant(&state, tenant_id)?;
    crate::pages::login::note_started(&state, &frame_tenant, &ctx, &session);
    let token = federation::frontend_token::issue(&state, &ctx, tenant_id, &session).await?;
    let mut response = Json(CallbackAnswer {
        access_token: token.access_token,
        token_type: "Bearer",
        expires_in: token.expires_in,
        scope: token.scope,
        user_id: session.user_id,
        tenant: frame_tenant.slug().to_owned(),
    })
    .into_response();
    response.headers_mut().append(
        SET_COOKIE,
        cookies::set(
            &cookies::session_name(frame_tenant.slug(), state.secure_cookies),
            &session.token,
            state.secure_cookies,
        ),
    );
    // An answer with a token is never cached (RFC 6749 §5.1).
    Ok(crate::oauth::no_store(response))
}

fn page_tenant(state: &AppState, tenant_id: uuid::Uuid) -> Result<PageTenant, ApiError> {
    let tenant = state
        .directory
        .tenant(tenant_id)
        .and_then(|t| t.tenant.clone())
        .ok_or_else(not_configured)?;
    Ok(PageTenant {
        tenant_id,
        frame: crate::pages::Frame {
            tenant_name: tenant.name.clone(),
            slug: tenant.slug.clone(),
            base_path: crate::pages::base_path(&state.public_url).to_owned(),
        },
    })
}
