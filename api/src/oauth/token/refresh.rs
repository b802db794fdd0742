//! The refresh token grant (RFC 6749 §6) on refresh-token families (ADR 0003): the family's
//! command rotates it (or answers from the grace period, or revokes it on reuse) and records
//! the new access token in the same append; the tokens are signed afterwards. With `openid`,
//! a new ID token comes along (without `nonce`, OpenID Connect Core §12.2).

use axum::response::Response;
use tessera_commands::{CommandError, RefreshRequest};
use tessera_domain::DomainError;
use tessera_domain::tenant::Tenant;
use tessera_projections::ClientEntry;

use super::super::id_token::{self, PersonGrant, access_token_signer};
use super::super::{FormParams, OAuthError, client_actor, issuer};
use super::people_answer;
use crate::extract::RequestContext;
use crate::state::AppState;

/// Exchanges the request's `refresh_token` for new tokens.
pub(super) async fn exchange(
    state: &AppState,
    ctx: &RequestContext,
    tenant: &Tenant,
    client_entry: &ClientEntry,
    form: &FormParams,
) -> Result<Response, OAuthError> {
    let client = &client_entry.client;
    let token = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let scopes: Option<Vec<String>> = form.get("scope").map(|scope| {
        scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let signer = access_token_signer(state, tenant)?;
    let (refreshed, _) = state
        .commands
        .refresh(
            &ctx.metadata(client_actor(client_entry)),
            RefreshRequest {
                tenant_id: tenant.id,
                client_id: &client.client_id,
                token,
                scopes: scopes.as_deref(),
                grace_secs: state.refresh_grace_secs,
                access_token_ttl_secs: client.access_token_ttl_secs,
                kid: signer.kid(),
            },
        )
        .await
        .map_err(|error| match error {
            CommandError::Rejected(DomainError::Validation { field, message })
                if field == "scope" =>
            {
                OAuthError::invalid_scope(message)
            }
            other => OAuthError::from(other),
        })?;
    let issuer = issuer(state, &tenant.slug);
    let family = &refreshed.family;
    let tokens = id_token::mint(
        state,
        &PersonGrant {
            tenant,
            client: client_entry,
            issuer: &issuer,
            user_id: family.user_id,
            session_id: family.session_id,
            scopes: &refreshed.scopes,
            auth_time: family.auth_time,
            amr: &family.amr,
            acr: &family.acr,
            nonce: None,
            jti: refreshed.jti,
            issued_at: refreshed.issued_at,
            signer: &signer,
        },
    )
    .await?;
    Ok(people_answer(state, tokens, Some(&refreshed.refresh_token)))
}
