//! The access token seed 002's frontend flow answers `POST /auth/callback` with: a person's
//! access token of the tenant's issuer, for the person who just signed in upstream.
//!
//! Every Tessera access token names a client, and is active only while that client is (RFC
//! 9068's `client_id`; introspection and userinfo check it). The frontend flow has no client
//! of its own in the request, so each tenant gets a built-in one, [`FRONTEND_CLIENT_ID`], the
//! way Keycloak gives every realm its `account` and `broker` clients: registered on the first
//! frontend sign-in (the client stream's expected version decides, so two servers at once
//! register it once), listed with the tenant's clients, and the tenant's admin can shorten its
//! token lifetime or deactivate it, which stops these tokens. It is a public client for the
//! authorization code grant whose only redirect URI is the tenant's account page: nobody holds
//! a secret for it, and a code sent through it would land on a Tessera page that ignores it.
//!
//! The token is what the tenant's code grant would issue for the same session: `iss` the
//! tenant's issuer, `aud` the issuer (as every Tessera access token; the tenant's own
//! userinfo and introspection accept it, another tenant's refuse it), `sub` the user, `sid`
//! the session just started, `auth_time` and `acr` of that session, scopes `openid email
//! profile` (what userinfo needs to answer the person's address and name), and the client's
//! lifetime (an hour by default). Its `token.issued` is durable before it is answered.

use tessera_commands::{RegisterClient, StartedSession};
use tessera_domain::oauth_client::GRANT_AUTHORIZATION_CODE;
use tessera_event_schemas::events::{ClientType, GrantType, OidcClientSettingsV1, TokenIssuedV2};
use tessera_event_schemas::{Actor, Timestamp};
use tessera_projections::ClientEntry;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::oauth::id_token::{self, PersonGrant, access_token_signer};
use crate::oauth::{client_actor, issuer};
use crate::state::AppState;

/// The id of each tenant's built-in client for seed 002's frontend flow.
pub const FRONTEND_CLIENT_ID: &str = "tessera-federation";

/// The scopes of a frontend token: enough for the tenant's userinfo to answer.
const SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// A minted, recorded access token.
pub struct FrontendToken {
    pub access_token: String,
    pub expires_in: u32,
    pub scope: String,
}

/// Mints and records the access token of the person `session` signed in at `tenant_id`.
pub async fn issue(
    state: &AppState,
    ctx: &RequestContext,
    tenant_id: Uuid,
    session: &StartedSession,
) -> Result<FrontendToken, ApiError> {
    let known = state
        .directory
        .tenant(tenant_id)
        .ok_or_else(|| ApiError::NotFound("tenant".to_owned()))?;
    let tenant = known
        .tenant
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("tenant".to_owned()))?;
    let client = frontend_client(state, ctx, tenant_id, &tenant.slug).await?;
    if !client.client.active {
        return Err(ApiError::Forbidden(format!(
            "the organisation has turned off access tokens for this sign-in (its client \
             {FRONTEND_CLIENT_ID} is deactivated); you are signed in to its pages"
        )));
    }
    let signer = access_token_signer(state, tenant).map_err(internal)?;
    let now = state.clock.now();
    // Whole seconds, as the token's `iat` carries it (the code grant does the same).
    let issued_at = Timestamp::from_micros(now.as_micros() / 1_000_000 * 1_000_000);
    let scopes: Vec<String> = SCOPES.iter().map(|scope| (*scope).to_owned()).collect();
    let issuer = issuer(state, &tenant.slug);
    let jti = state.ids.new_id();
    // `mint` also signs an ID token for the `openid` scope; the seed's answer has no place
    // for it, so it is dropped (one signature, on a sign-in, not on a hot path).
    let tokens = id_token::mint(
        state,
        &PersonGrant {
            tenant,
            client: &client,
            issuer: &issuer,
            user_id: session.user_id,
            session_id: session.session_id,
            scopes: &scopes,
            auth_time: session.auth_time,
            amr: &session.amr,
            acr: tessera_domain::authorization_code::acr(&session.amr),
            nonce: None,
            jti,
            issued_at,
            signer: &signer,
        },
    )
    .await
    .map_err(internal)?;
    // The person came through an authorization code exchange (the upstream's), which is the
    // grant the token's event names.
    state
        .commands
        .record_token_issued(
            ctx.metadata(client_actor(&client)),
            tenant_id,
            FRONTEND_CLIENT_ID,
            TokenIssuedV2 {
                jti,
                grant_type: GrantType::AuthorizationCode,
                scopes,
                audience: Vec::new(),
                kid: signer.kid().to_owned(),
                ttl_secs: tokens.expires_in,
            },
            now,
        )
        .await?;
    state.verifier.remember(
        tessera_crypto::token_hash(&tokens.access_token),
        tokens.verified,
    );
    Ok(FrontendToken {
        access_token: tokens.access_token,
        expires_in: tokens.expires_in,
        scope: tokens.scope,
    })
}

/// The tenant's built-in frontend client, registered now if it is not yet.
async fn frontend_client(
    state: &AppState,
    ctx: &RequestContext,
    tenant_id: Uuid,
    slug: &str,
) -> Result<std::sync::Arc<ClientEntry>, ApiError> {
    if let Some(client) = state.directory.client(tenant_id, FRONTEND_CLIENT_ID) {
        return Ok(client);
    }
    let registered = state
        .commands
        .register_builtin_client(
            ctx.metadata(Actor::system()),
            tenant_id,
            FRONTEND_CLIENT_ID,
            RegisterClient {
                name: "Federated sign-in (seed 002 frontend flow)".to_owned(),
                client_type: ClientType::Public,
                grant_types: vec![GRANT_AUTHORIZATION_CODE.to_owned()],
                redirect_uris: vec![format!("{}/account", issuer(state, slug))],
                allowed_scopes: SCOPES.iter().map(|scope| (*scope).to_owned()).collect(),
                access_token_ttl_secs: None,
                created_by: "tessera".to_owned(),
                oidc: OidcClientSettingsV1 {
                    require_consent: false,
                    ..OidcClientSettingsV1::default()
                },
            },
        )
        .await?;
    match registered {
        Some(position) => state
            .projected(position)
            .await
            .map_err(|error| ApiError::Unavailable(error.to_string()))?,
        // Registered before, perhaps through another server: this one catches up.
        None => state.catch_up().await,
    }
    state
        .directory
        .client(tenant_id, FRONTEND_CLIENT_ID)
        .ok_or_else(|| ApiError::Internal("the frontend client is not in the directory".into()))
}

fn internal(error: crate::oauth::OAuthError) -> ApiError {
    ApiError::Internal(format!("minting a frontend access token: {error:?}"))
}
