//! `POST /t/{slug}/oauth/introspect` (RFC 7662) and `POST /t/{slug}/oauth/revoke` (RFC 7009).
//!
//! A presented token is recognised by the SHA-256 of its compact form in the directory's index
//! of issued tokens, which this process fills before it hands a token out and which is
//! rebuilt from `token.issued` events at start. A token not in the index (signed by another
//! node that this one has not caught up with) is verified against the tenant's published keys
//! with `jsonwebtoken` instead. Either way it is active only if it belongs to this tenant, has
//! not expired, was not revoked, its client is still active, its signing key is not retired
//! and the tenant is not suspended, frozen or archived.
//!
//! Revocation answers 200 for anything, as RFC 7009 asks, but only revokes a token of the
//! calling client. Its event is durable and the directory updated before it answers, so
//! introspection says inactive from then on. A command error is answered as the token endpoint
//! answers it (`From<CommandError> for OAuthError`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tessera_crypto as crypto;
use tessera_domain::tenant::{KeyStatus, Tenant};
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::{PublicJwkV1, SigningAlg, TokenRevokedV1};
use tessera_projections::IssuedToken;
use uuid::Uuid;

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
}

/// Introspection endpoint. The caller authenticates as any client of the same tenant.
#[utoipa::path(post, path = "/t/{slug}/oauth/introspect", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "token=..."),
    responses((status = 200, description = "RFC 7662 response"), (status = 401, description = "invalid_client")))]
pub async fn introspect(
    State(state): State<AppState>,
    Slug(slug): Slug,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    match introspect_inner(&state, &slug, &headers, &body) {
        Ok(response) => no_store(axum::Json(response).into_response()),
        Err(error) => error.into_response(),
    }
}

fn introspect_inner(
    state: &AppState,
    slug: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Introspection, OAuthError> {
    let request = ClientRequest::parse(state, slug, headers, body)?;
    let tenant = request
        .tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    let token = request
        .form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let Some(record) = find_token(state, tenant, token) else {
        return Ok(Introspection::default());
    };
    if !is_active(state, tenant, &record) {
        return Ok(Introspection::default());
    }
    Ok(Introspection {
        active: true,
        scope: Some(record.scopes.join(" ")),
        client_id: Some(record.client_id.clone()),
        sub: Some(record.client_id.clone()),
        aud: record.audience.first().cloned(),
        iss: Some(issuer(state, &tenant.slug)),
        exp: Some(record.expires_at.as_micros() / 1_000_000),
        iat: Some(record.issued_at.as_micros() / 1_000_000),
        jti: Some(record.jti.to_string()),
        token_type: Some("Bearer"),
        tenant_id: Some(record.tenant_id),
    })
}

/// Revocation endpoint. Always 200 once the caller is authenticated.
#[utoipa::path(post, path = "/t/{slug}/oauth/revoke", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
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
    let request = ClientRequest::parse(state, slug, headers, body)?;
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

/// The issued token `token` is, if this tenant issued it.
fn find_token(state: &AppState, tenant: &Tenant, token: &str) -> Option<Arc<IssuedToken>> {
    if let Some(record) = state.directory.token(&crypto::token_hash(token)) {
        return (record.tenant_id == tenant.id).then_some(record);
    }
    verify_signature(state, tenant, token).map(Arc::new)
}

fn is_active(state: &AppState, tenant: &Tenant, record: &IssuedToken) -> bool {
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

#[derive(Deserialize)]
struct VerifiedClaims {
    client_id: String,
    scope: String,
    jti: Uuid,
    iat: i64,
    exp: i64,
    tenant_id: Uuid,
}

/// Verifies a token this process has not seen against the tenant's published keys. An ES256
/// signature must be in low-S form, the only one Tessera issues
/// ([`crypto::jws::is_low_s_es256`]): its high-S twin is the same token under another string.
fn verify_signature(state: &AppState, tenant: &Tenant, token: &str) -> Option<IssuedToken> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some(crypto::jws::ACCESS_TOKEN_TYP) {
        return None;
    }
    let key = tenant.key(header.kid.as_deref()?)?;
    if key.status == KeyStatus::Retired {
        return None;
    }
    let (decoding, algorithm) = match (&key.public_jwk, key.alg) {
        (PublicJwkV1::Ec { x, y }, SigningAlg::ES256) => {
            let (_, signature) = token.rsplit_once('.')?;
            let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
            if !crypto::jws::is_low_s_es256(&signature) {
                return None;
            }
            (
                DecodingKey::from_ec_components(x, y).ok()?,
                Algorithm::ES256,
            )
        }
        (PublicJwkV1::Okp { x }, SigningAlg::EdDSA) => {
            (DecodingKey::from_ed_components(x).ok()?, Algorithm::EdDSA)
        }
        (PublicJwkV1::Rsa { n, e }, SigningAlg::RS256) => (
            DecodingKey::from_rsa_components(n, e).ok()?,
            Algorithm::RS256,
        ),
        _ => return None,
    };
    let issuer = issuer(state, &tenant.slug);
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[&issuer]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<VerifiedClaims>(token, &decoding, &validation)
        .ok()?
        .claims;
    if claims.tenant_id != tenant.id {
        return None;
    }
    Some(IssuedToken {
        tenant_id: claims.tenant_id,
        client_id: claims.client_id,
        jti: claims.jti,
        scopes: claims.scope.split(' ').map(str::to_owned).collect(),
        audience: vec![issuer],
        kid: key.kid.clone(),
        issued_at: Timestamp::from_micros(claims.iat.saturating_mul(1_000_000)),
        expires_at: Timestamp::from_micros(claims.exp.saturating_mul(1_000_000)),
    })
}
