//! `POST /t/{slug}/oauth/introspect` (RFC 7662) and `POST /t/{slug}/oauth/revoke` (RFC 7009).
//!
//! A presented token is verified, not looked up ([`super::verify`]): the server keeps no copy of
//! the tokens it issued, so memory does not grow with them, and a token another node issued is
//! recognised exactly like one of this node's. It is active only if it belongs to this tenant,
//! has not expired, was not revoked, its client is still active, its signing key is not retired
//! and the tenant is not suspended, frozen or archived: checked on every answer, whether the
//! verification was cached or not.
//!
//! A people's access token also shows its person (`sub`, `auth_time`, `acr`, `sid`). A refresh
//! token (`trt_...`) is read from its family's stream, as the refresh grant reads it (active
//! while the family is neither revoked, expired nor ended and the token is its current one),
//! and only by the client it was issued to. Public clients, which cannot authenticate, do not
//! introspect.
//!
//! Revocation answers 200 for anything, as RFC 7009 asks, but only revokes a token of the
//! calling client; a refresh token's revocation ends its whole family
//! (`refresh_token.revoked {revoked}`). Its event is durable and the directory updated before it answers, so
//! introspection says inactive from then on. A command error is answered as the token endpoint
//! answers it (`From<CommandError> for OAuthError`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_crypto as crypto;
use tessera_crypto::grants::REFRESH_TOKEN_PREFIX;
use tessera_domain::tenant::{KeyStatus, Tenant, TenantState};
use tessera_event_schemas::events::TokenRevokedV1;
use tessera_projections::ClientEntry;
use uuid::Uuid;

use super::verify::VerifiedToken;
use super::{ClientRequest, FormBody, OAuthError, Slug, client_actor, issuer, no_store};
use crate::extract::RequestContext;
use crate::state::AppState;

/// An RFC 7662 response. Only `active` is present for an inactive token.
#[derive(Serialize, Default)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<Uuid>,
}

/// Introspection endpoint. The caller authenticates as any client of the same tenant.
#[utoipa::path(post, path = "/t/{slug}/oauth/introspect", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    security(("client" = [])),
    request_body(content_type = "application/x-www-form-urlencoded", description = "token=..."),
    responses((status = 200, description = "RFC 7662 response"), (status = 401, description = "invalid_client")))]
pub async fn introspect(
    State(state): State<AppState>,
    Slug(slug): Slug,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    match introspect_inner(&state, &slug, &headers, &body).await {
        Ok(response) => no_store(axum::Json(response).into_response()),
        Err(error) => error.into_response(),
    }
}

async fn introspect_inner(
    state: &AppState,
    slug: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Introspection, OAuthError> {
    let request = ClientRequest::parse(state, slug, headers, body).await?;
    if request.public {
        return Err(OAuthError::invalid_client(
            "a public client cannot authenticate to introspect",
        ));
    }
    let tenant = request
        .tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    let token = request
        .form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        return introspect_refresh_token(state, tenant, &request.client, token).await;
    }
    let Some((known, record)) = active_token(state, &request.tenant, token).await else {
        return Ok(Introspection::default());
    };
    let tenant = known.tenant.as_ref().unwrap_or(tenant);
    let person = record.person.as_deref();
    Ok(Introspection {
        active: true,
        scope: Some(record.scope.clone()),
        client_id: Some(record.client_id.clone()),
        sub: Some(person.map_or_else(
            || record.client_id.clone(),
            |person| person.user_id.to_string(),
        )),
        auth_time: person.map(|person| person.auth_time),
        acr: person.map(|person| person.acr.clone()),
        sid: person.map(|person| person.session_id),
        aud: Some(record.audience.clone()),
        iss: Some(issuer(state, &tenant.slug)),
        exp: Some(record.expires_at.as_micros() / 1_000_000),
        iat: Some(record.issued_at.as_micros() / 1_000_000),
        jti: Some(record.jti.to_string()),
        token_type: Some("Bearer"),
        tenant_id: Some(record.tenant_id),
    })
}

/// A refresh token of the calling client, read from its family.
async fn introspect_refresh_token(
    state: &AppState,
    tenant: &Tenant,
    client: &ClientEntry,
    token: &str,
) -> Result<Introspection, OAuthError> {
    let Some(status) = state
        .commands
        .refresh_token_status(tenant.id, token)
        .await?
    else {
        return Ok(Introspection::default());
    };
    let family = &status.family;
    let client_active = state
        .directory
        .client(tenant.id, &family.client_id)
        .is_some_and(|c| c.client.active);
    if !status.active
        || family.client_id != client.client.client_id
        || !client_active
        || !tenant.serves()
    {
        return Ok(Introspection::default());
    }
    Ok(Introspection {
        active: true,
        scope: Some(family.scopes.join(" ")),
        client_id: Some(family.client_id.clone()),
        sub: Some(family.user_id.to_string()),
        iss: Some(issuer(state, &tenant.slug)),
        exp: Some(family.expires_at.as_micros() / 1_000_000),
        token_type: Some("refresh_token"),
        tenant_id: Some(tenant.id),
        auth_time: Some(family.auth_time.as_micros() / 1_000_000),
        acr: Some(family.acr.clone()),
        sid: Some(family.session_id),
        ..Introspection::default()
    })
}

/// Revocation endpoint. Always 200 once the caller is authenticated.
#[utoipa::path(post, path = "/t/{slug}/oauth/revoke", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    security(("client" = [])),
    request_body(content_type = "application/x-www-form-urlencoded", description = "token=..."),
    responses((status = 200, description = "revoked, or nothing to revoke"), (status = 401, description = "invalid_client")))]
pub async fn revoke(
    State(state): State<AppState>,
    Slug(slug): Slug,
    ctx: RequestContext,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    match revoke_inner(&state, &slug, &ctx, &headers, &body).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(error) => error.into_response(),
    }
}

async fn revoke_inner(
    state: &AppState,
    slug: &str,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), OAuthError> {
    let request = ClientRequest::parse(state, slug, headers, body).await?;
    let tenant = request
        .tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    let (form, client) = (&request.form, &request.client);
    if !tenant.serves() {
        return Err(OAuthError::unauthorized_client(
            "the tenant is suspended, frozen or archived",
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        state
            .commands
            .revoke_refresh_token(
                &ctx.metadata(client_actor(client)),
                tenant.id,
                &client.client.client_id,
                token,
            )
            .await?;
        return Ok(());
    }
    let Some(record) = find_token(state, tenant, token) else {
        return Ok(());
    };
    let now = state.clock.now();
    let own = record.client_id == client.client.client_id && record.tenant_id == tenant.id;
    if !own || record.expires_at <= now || state.directory.is_revoked(&record.jti) {
        return Ok(());
    }
    state
        .commands
        .record_token_revoked(
            ctx.metadata(client_actor(client)),
            tenant.id,
            TokenRevokedV1 {
                jti: record.jti,
                client_id: record.client_id.clone(),
                expires_at: record.expires_at,
            },
        )
        .await?;
    state.directory.note_revoked(record.jti, record.expires_at);
    Ok(())
}

/// The access token `token` is, if it is a genuine one of this tenant.
fn find_token(state: &AppState, tenant: &Tenant, token: &str) -> Option<Arc<VerifiedToken>> {
    state
        .verifier
        .verify(tenant, token, &crypto::token_hash(token))
}

/// The active access token `token` is, with the tenant as this node knows it when deciding.
///
/// A token this node does not recognise or does not find active for a reason its lag could
/// explain (a signing key, a client or a tenant state another node has just written) is judged
/// again once the node has caught up with the log (see [`crate::catch_up`]), so a token issued
/// through another node a moment ago is never answered inactive. Only what no later event can
/// undo (expiry by the token's own claim, a revocation, a retired key) is final at once, so
/// a resource server re-presenting such a token costs nothing more than before.
pub(super) async fn active_token(
    state: &AppState,
    tenant_state: &Arc<TenantState>,
    token: &str,
) -> Option<(Arc<TenantState>, Arc<VerifiedToken>)> {
    let tenant = tenant_state.tenant.as_ref()?;
    if let Some(record) = find_token(state, tenant, token) {
        if is_active(state, tenant, &record) {
            return Some((tenant_state.clone(), record));
        }
        if inactive_for_good(state, tenant, &record) {
            return None;
        }
    }
    state.catch_up().await;
    let known = state.directory.tenant(tenant.id)?;
    let tenant = known.tenant.as_ref()?;
    let record = find_token(state, tenant, token)?;
    is_active(state, tenant, &record).then_some((known.clone(), record))
}

/// Whether `record` is inactive for a reason no event this node has yet to fold could change.
fn inactive_for_good(state: &AppState, tenant: &Tenant, record: &VerifiedToken) -> bool {
    let retired = tenant
        .key(&record.kid)
        .is_some_and(|key| key.status == KeyStatus::Retired);
    record.expires_at <= state.clock.now() || state.directory.is_revoked(&record.jti) || retired
}

pub(super) fn is_active(state: &AppState, tenant: &Tenant, record: &VerifiedToken) -> bool {
    let now = state.clock.now();
    let client_active = state
        .directory
        .client(tenant.id, &record.client_id)
        .is_some_and(|c| c.client.active);
    let key_published = tenant
        .key(&record.kid)
        .is_some_and(|key| key.status != KeyStatus::Retired);
    record.tenant_id == tenant.id
        && record.expires_at > now
        && client_active
        && key_published
        && tenant.serves()
        && !state.directory.is_revoked(&record.jti)
}
