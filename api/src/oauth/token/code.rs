//! The authorization code grant (RFC 6749 §4.1.3, PKCE per RFC 7636): a person's code becomes
//! their tokens.
//!
//! The code's command decides and records everything in one append (the redemption, the
//! access token's event, a refresh family when due); only then are the tokens signed, with
//! the id, time and key that append recorded. A code presented again revokes what it was
//! redeemed for (that append is durable and the directory told before the answer) and gets
//! `invalid_grant`.

use axum::response::Response;
use tessera_commands::{CodeRedemption, RedeemCode, RefreshPolicy};
use tessera_domain::oauth_client::GRANT_REFRESH_TOKEN;
use tessera_domain::tenant::Tenant;
use tessera_projections::ClientEntry;

use super::super::id_token::{self, PersonGrant, access_token_signer};
use super::super::{FormParams, OAuthError, client_actor, issuer};
use super::people_answer;
use crate::extract::RequestContext;
use crate::state::AppState;

/// Exchanges the request's `code` for the person's tokens.
pub(super) async fn exchange(
    state: &AppState,
    ctx: &RequestContext,
    tenant: &Tenant,
    client_entry: &ClientEntry,
    form: &FormParams,
) -> Result<Response, OAuthError> {
    let client = &client_entry.client;
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let code_verifier = form.get("code_verifier");
    if client.secret_hash.is_none() && code_verifier.is_none() {
        return Err(OAuthError::invalid_request(
            "a public client must send its PKCE code_verifier",
        ));
    }
    let signer = access_token_signer(state, tenant)?;
    let refresh = client
        .allows_grant(GRANT_REFRESH_TOKEN)
        .then_some(RefreshPolicy {
            without_offline_access: client.oidc.refresh_without_offline_access,
            ttl_secs: client.oidc.refresh_token_ttl_secs,
            idle_secs: client.oidc.refresh_token_idle_secs,
        });
    let (redemption, _) = state
        .commands
        .redeem_code(
            &ctx.metadata(client_actor(client_entry)),
            RedeemCode {
                tenant_id: tenant.id,
                client_id: &client.client_id,
                code,
                redirect_uri: form.get("redirect_uri"),
                code_verifier,
                access_token_ttl_secs: client.access_token_ttl_secs,
                kid: signer.kid(),
                refresh,
            },
        )
        .await?;
    let grant = match redemption {
        CodeRedemption::Issued(grant) => grant,
        CodeRedemption::Reused {
            jti, expires_at, ..
        } => {
            state.directory.note_revoked(jti, expires_at);
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; the tokens issued for it are revoked",
            ));
        }
    };
    let issuer = issuer(state, &tenant.slug);
    let code = &grant.code;
    let tokens = id_token::mint(
        state,
        &PersonGrant {
            tenant,
            client: client_entry,
            issuer: &issuer,
            user_id: code.user_id,
            session_id: code.session_id,
            scopes: &code.scopes,
            auth_time: code.auth_time,
            amr: &code.amr,
            acr: &code.acr,
            nonce: code.nonce.as_deref(),
            jti: grant.jti,
            issued_at: grant.issued_at,
            signer: &signer,
        },
    )
    .await?;
    Ok(people_answer(state, tokens, grant.refresh_token.as_deref()))
}
