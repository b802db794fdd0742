//! Disconnecting with revocation (issue 20): before a connection is removed, its tokens are
//! revoked at the provider's RFC 7009 endpoint, where the integration has one: the refresh
//! token first (which ends the grant at most providers), then the access token. A provider
//! that cannot be reached or refuses does not keep the connection here: it is removed all the
//! same, and the answer says the provider did not confirm (`revoked_at_provider: false`).

use tessera_commands::CommandError;
use tessera_event_schemas::streams;
use uuid::Uuid;

use super::tokens;
use crate::state::AppState;

/// What revocation at the provider came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The integration has no revocation endpoint (or the connection holds no token).
    NotSupported,
    /// The provider confirmed every token's revocation.
    Revoked,
    /// The provider could not be reached or refused.
    Failed,
}

impl Revocation {
    /// Its name in the removal's answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::NotSupported => "not_supported",
            Revocation::Revoked => "revoked",
            Revocation::Failed => "failed",
        }
    }

    /// What `credential.removed` records.
    pub fn confirmed(self) -> bool {
        self == Revocation::Revoked
    }
}

/// Revokes the connection's tokens at the provider, if it can (see the module doc). The
/// caller removes the connection whatever this answers.
pub async fn revoke_at_provider(
    state: &AppState,
    tenant_id: Uuid,
    integration: &str,
) -> Result<Revocation, CommandError> {
    let Some((credential, _)) = state
        .commands
        .credential_for_refresh(tenant_id, integration)
        .await?
    else {
        return Ok(Revocation::NotSupported);
    };
    let Some(app) = state.commands.oauth_app(tenant_id, integration).await? else {
        return Ok(Revocation::NotSupported);
    };
    if app.integration.revocation_url.is_none() {
        return Ok(Revocation::NotSupported);
    }
    let opened = state
        .commands
        .vault_open(
            tenant_id,
            &streams::credential(tenant_id, integration),
            &credential.sealed,
        )
        .await?;
    let Some(document) = tokens::read(&opened) else {
        return Ok(Revocation::NotSupported);
    };
    let mut outcome = Revocation::Revoked;
    let held = [
        (document.refresh_token.as_deref(), "refresh_token"),
        (document.access_token.as_deref(), "access_token"),
    ];
    for (token, hint) in held {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            continue;
        };
        if let Err(error) = state.connect.provider.revoke(&app, token, hint).await {
            tracing::warn!(%tenant_id, integration, hint, %error, "revocation at the provider failed");
            outcome = Revocation::Failed;
        }
    }
    Ok(outcome)
}
