//! `POST /t/{slug}/oauth/token`: the client credentials grant (RFC 6749 §4.4) here, the
//! authorization code grant ([`code`], RFC 6749 §4.1.3 with PKCE) and the refresh token grant
//! ([`refresh`], RFC 6749 §6), all issuing JWT access tokens (RFC 9068).
//!
//! Checks run in this order: a form body, an authenticated client (a public client names
//! itself with `client_id` alone, for the code and refresh grants only), a `grant_type`, a
//! tenant that serves, a known grant type, a grant the client is registered for, then the
//! grant's own parameters. A client's own token goes through three steps: [`decide`] what the
//! grant allows (pure), [`mint`] the token, [`record`] it; its hot path reads only the
//! directory. A person's grant is decided by a command on the log (the code's stream, the
//! refresh family's), whose append records the tokens before they are signed and returned. A
//! command error is answered in OAuth's form too (see `From<CommandError> for OAuthError`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_crypto::{self as crypto, Crypto, CryptoError, JwsSigner};
use tessera_domain::oauth_client::{
    GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, ScopeError,
    grant_scopes,
};
use tessera_domain::tenant::{Tenant, TenantKey};
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::{GrantType, TokenIssuedV2};
use tessera_projections::ClientEntry;
use uuid::Uuid;

use super::id_token::PeopleTokens;
use super::tenant_claims::TenantClaims;
use super::verify::{VerifiedToken, once_per_key};
use super::{ClientRequest, FormBody, OAuthError, Slug, client_actor, issuer, no_store};
use crate::extract::RequestContext;
use crate::state::AppState;

mod code;
mod refresh;

/// The claims of an access token (RFC 9068 section 2.2), plus the tenant.
#[derive(Serialize)]
pub struct AccessTokenClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub tenant_id: Uuid,
    /// A person's token only (ADR 0003): when and how they authenticated, in which session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    /// Issue 21's tenant claims (`tenant_slug`, `plan`, `products`, `tenant_status`, and a
    /// person's `org_roles`), as the client chose them.
    #[serde(flatten)]
    pub tenant_claims: TenantClaims<'a>,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u32,
    scope: &'a str,
}

/// Parsed signing keys by (tenant, kid), so that a key is unsealed and parsed once per
/// process rather than once per token.
#[derive(Default)]
pub struct Signers {
    keys: RwLock<HashMap<(Uuid, String), Arc<JwsSigner>>>,
}

impl std::fmt::Debug for Signers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signers").finish_non_exhaustive()
    }
}

impl Signers {
    pub fn get(
        &self,
        crypto: &Crypto,
        tenant_id: Uuid,
        key: &TenantKey,
    ) -> Result<Arc<JwsSigner>, CryptoError> {
        once_per_key(&self.keys, (tenant_id, key.kid.clone()), || {
            crypto.token_signer(tenant_id, &key.kid, key.alg, &key.sealed_private_key)
        })
    }
}

/// Token endpoint. Client authentication: `client_secret_basic` or `client_secret_post`; a
/// public client sends its `client_id` alone (code and refresh grants).
#[utoipa::path(post, path = "/t/{slug}/oauth/token", tag = "oauth",
    params(("slug" = String, Path, description = "tenant slug")),
    security(("client" = []), ()),
    request_body(content_type = "application/x-www-form-urlencoded", description = "grant_type=client_credentials[&scope=...], grant_type=authorization_code&code=...&redirect_uri=...[&code_verifier=...], grant_type=refresh_token&refresh_token=...[&scope=...]"),
    responses((status = 200, description = "access token"), (status = 400, description = "OAuth error"),
        (status = 401, description = "invalid_client")))]
pub async fn token(
    State(state): State<AppState>,
    Slug(slug): Slug,
    ctx: RequestContext,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    match issue(&state, &slug, &ctx, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The endpoint in three steps, the shape every grant shares: decide what the grant allows,
/// mint the token, record it.
async fn issue(
    state: &AppState,
    slug: &str,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let request = ClientRequest::parse(state, slug, headers, body).await?;
    match decide(&request) {
        Ok(decided) => grant(state, ctx, &request, decided).await,
        // The client's scopes or grant types, or the tenant's status, may have changed through
        // another node a moment ago: decide again once this node has caught up.
        Err(error) if error.lag_may_explain() => {
            state.catch_up().await;
            let request = ClientRequest::parse(state, slug, headers, body).await?;
            let decided = decide(&request)?;
            grant(state, ctx, &request, decided).await
        }
        Err(error) => Err(error),
    }
}

/// The decided grant, carried out: a client's own token minted and recorded here, a person's
/// grant handed to its command.
async fn grant(
    state: &AppState,
    ctx: &RequestContext,
    request: &ClientRequest,
    decided: Decided<'_>,
) -> Result<Response, OAuthError> {
    let grant = match decided {
        Decided::Client(grant) => grant,
        Decided::Code(tenant, client) => {
            return code::exchange(state, ctx, tenant, client, &request.form).await;
        }
        Decided::Refresh(tenant, client) => {
            return refresh::exchange(state, ctx, tenant, client, &request.form).await;
        }
    };
    let minted = mint(state, grant)?;
    record(state, ctx, minted).await
}

/// Where [`decide`] sends a request: a client's own grant, decided here; a person's grant,
/// decided by its command.
enum Decided<'r> {
    Client(Grant<'r>),
    Code(&'r Tenant, &'r ClientEntry),
    Refresh(&'r Tenant, &'r ClientEntry),
}

/// What a grant allows, decided before anything is signed: which tenant's key signs a token
/// for which client, under which grant type, with which scopes. The authorization-code and
/// refresh-token grants will reach one of these too, from a code or a refresh token.
struct Grant<'r> {
    tenant: &'r Tenant,
    client: &'r ClientEntry,
    grant_type: &'static str,
    scopes: Vec<String>,
}

/// The decision on a grant, from the request alone: the tenant serves, the grant type is known
/// and registered for the client, and, for a client's own grant, the scope is allowed. A
/// public client (no secret) has only people's grants. Pure: no clock, no ids, no I/O.
fn decide(request: &ClientRequest) -> Result<Decided<'_>, OAuthError> {
    let tenant = request
        .tenant
        .tenant
        .as_ref()
        .ok_or_else(OAuthError::unknown_issuer)?;
    let (form, client) = (&request.form, &*request.client);
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    // A client named without a secret authenticated only for a person's grant: for anything
    // else it did not authenticate at all.
    if request.public && ![GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN].contains(&grant_type) {
        return Err(OAuthError::invalid_client(
            "client authentication failed: a public client has no grant of its own",
        ));
    }
    if !tenant.serves() {
        return Err(OAuthError::unauthorized_client(
            "the tenant is suspended, frozen or archived and issues no tokens",
        ));
    }
    let Some(grant_type) = [
        GRANT_CLIENT_CREDENTIALS,
        GRANT_AUTHORIZATION_CODE,
        GRANT_REFRESH_TOKEN,
    ]
    .into_iter()
    .find(|known| *known == grant_type) else {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant type {grant_type:?} is not supported"
        )));
    };
    if !client.client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "the client is not registered for the {grant_type} grant"
        )));
    }
    match grant_type {
        GRANT_AUTHORIZATION_CODE => return Ok(Decided::Code(tenant, client)),
        GRANT_REFRESH_TOKEN => return Ok(Decided::Refresh(tenant, client)),
        _ => {}
    }
    let scopes = grant_scopes(&client.client.allowed_scopes, form.get("scope")).map_err(
        |error| match error {
            ScopeError::Malformed(_) | ScopeError::NotAllowed(_) => {
                OAuthError::invalid_scope(error.to_string())
            }
        },
    )?;
    Ok(Decided::Client(Grant {
        tenant,
        client,
        grant_type,
        scopes,
    }))
}

/// A signed access token and the event that records it, for the grant's tenant and client.
struct Minted<'r> {
    tenant: &'r Tenant,
    client: &'r ClientEntry,
    access_token: String,
    /// The space-separated scopes, as the token and the response carry them.
    scope: String,
    issued: TokenIssuedV2,
    /// The time the token was minted with: its event's `recorded_at` (see `TokenIssuedV2`).
    minted_at: Timestamp,
    /// What this node's cache of verified tokens holds for the token once its event is durable.
    verified: VerifiedToken,
}

/// Signs the grant's access token with the tenant's active key. The time and the token id come
/// from the injected clock and id source.
fn mint<'r>(state: &AppState, grant: Grant<'r>) -> Result<Minted<'r>, OAuthError> {
    let Grant {
        tenant,
        client,
        grant_type,
        scopes,
    } = grant;
    let key = tenant
        .active_key()
        .ok_or_else(|| OAuthError::server_error("the tenant has no active signing key"))?;
    let signer = state
        .signers
        .get(&state.crypto, tenant.id, key)
        .map_err(OAuthError::server_error)?;

    let issuer = issuer(state, &tenant.slug);
    let now = state.clock.now();
    let ttl = client.client.access_token_ttl_secs;
    let issued_at = Timestamp::from_micros(now.as_micros() / 1_000_000 * 1_000_000);
    let expires_at = Timestamp::from_micros(issued_at.as_micros() + i64::from(ttl) * 1_000_000);
    let jti = state.ids.new_id();
    let scope = scopes.join(" ");
    let client_id = client.client.client_id.as_str();
    let access_token = signer
        .sign(&AccessTokenClaims {
            iss: &issuer,
            sub: client_id,
            aud: &issuer,
            client_id,
            scope: &scope,
            jti: jti.to_string(),
            iat: issued_at.as_micros() / 1_000_000,
            exp: expires_at.as_micros() / 1_000_000,
            tenant_id: tenant.id,
            auth_time: None,
            acr: None,
            sid: None,
            tenant_claims: TenantClaims::new(state, tenant, client_id, now),
        })
        .map_err(OAuthError::server_error)?;
    let grant_type = GrantType::parse(grant_type)
        .ok_or_else(|| OAuthError::server_error("a grant type the token event cannot name"))?;
    let verified = VerifiedToken {
        tenant_id: tenant.id,
        client_id: client_id.to_owned(),
        jti,
        scope: scope.clone(),
        audience: issuer,
        kid: signer.kid().to_owned(),
        issued_at,
        expires_at,
        person: None,
    };
    // The issuer is the token's only audience, which v2 records as no audience at all; the
    // client and both times come from the event's stream and envelope.
    let issued = TokenIssuedV2 {
        jti,
        grant_type,
        scopes,
        audience: Vec::new(),
        kid: verified.kid.clone(),
        ttl_secs: ttl,
    };
    Ok(Minted {
        tenant,
        client,
        access_token,
        scope,
        issued,
        minted_at: now,
        verified,
    })
}

/// Makes the token's `token.issued` event durable, hands the token to this node's cache of
/// verified tokens (so that its first introspection needs no signature check), and only then
/// answers with it.
async fn record(
    state: &AppState,
    ctx: &RequestContext,
    minted: Minted<'_>,
) -> Result<Response, OAuthError> {
    let Minted {
        tenant,
        client,
        access_token,
        scope,
        issued,
        minted_at,
        verified,
    } = minted;
    state
        .commands
        .record_token_issued(
            ctx.metadata(client_actor(client)),
            tenant.id,
            &verified.client_id,
            issued,
            minted_at,
        )
        .await?;
    state
        .verifier
        .remember(crypto::token_hash(&access_token), verified);
    Ok(no_store(
        axum::Json(TokenResponse {
            access_token: &access_token,
            token_type: "Bearer",
            expires_in: client.client.access_token_ttl_secs,
            scope: &scope,
        })
        .into_response(),
    ))
}

/// A person's token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Serialize)]
struct PeopleTokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u32,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

/// Answers a person's grant with its signed tokens, once this node's cache of verified
/// tokens holds the access token (its event is already durable).
fn people_answer(state: &AppState, tokens: PeopleTokens, refresh_token: Option<&str>) -> Response {
    let PeopleTokens {
        access_token,
        id_token,
        scope,
        expires_in,
        verified,
    } = tokens;
    state
        .verifier
        .remember(crypto::token_hash(&access_token), verified);
    no_store(
        axum::Json(PeopleTokenResponse {
            access_token: &access_token,
            token_type: "Bearer",
            expires_in,
            scope: &scope,
            id_token: id_token.as_deref(),
            refresh_token,
        })
        .into_response(),
    )
}
