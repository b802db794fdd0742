//! A connection's refresh, decided by its stream's expected version (issue 20, ADR 0007).
//!
//! The API's refresher reads the connection at version `v`
//! ([`CommandService::credential_for_refresh`]), calls the provider, and appends what came of
//! it expecting exactly `v`: `credential.refreshed` with the new tokens sealed
//! ([`CommandService::record_refreshed`]), or `credential.refresh_failed` with its backoff
//! (and `credential.needs_reauth` after repeated `invalid_grant`, the domain's rule;
//! [`CommandService::record_refresh_failed`]). Neither retries: a conflict means another node
//! (or another caller here) acted on the connection first, and the answer is
//! [`RefreshAppend::Lost`], after which the caller reads the winner's tokens instead. So of
//! any number of nodes refreshing one connection at once, exactly one refresh is recorded.

use tessera_domain::Aggregate;
use tessera_domain::credential::{
    Credential, CredentialCommand, CredentialState, RefreshCredential,
};
use tessera_event_log::{AppendError, ExpectedVersion};
use tessera_event_schemas::events::RefreshFailure;
use tessera_event_schemas::{EventMetadata, Timestamp, streams};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::CommandService;
use crate::CommandError;

/// New tokens from the provider, before they are sealed.
pub struct RefreshedTokens {
    /// The JSON token document (the old refresh token kept when no new one came).
    pub document: Zeroizing<Vec<u8>>,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub refreshable: bool,
}

/// What an append at the version read came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshAppend {
    /// Appended; the global position of its last event.
    Appended(u64),
    /// The connection changed since it was read (another refresh won, it was removed or
    /// stored again): nothing was appended.
    Lost,
}

impl CommandService {
    /// The connection of `integration` and the version it was read at, unless it was never
    /// stored or was removed.
    pub async fn credential_for_refresh(
        &self,
        tenant_id: Uuid,
        integration: &str,
    ) -> Result<Option<(Credential, u64)>, CommandError> {
        tessera_domain::credential::integration(integration)?;
        let loaded = self
            .load::<CredentialState>(&streams::credential(tenant_id, integration))
            .await?;
        Ok(loaded
            .state
            .present()
            .cloned()
            .map(|credential| (credential, loaded.version)))
    }

    /// Records new tokens, sealed under the tenant's vault, at `read_version` exactly.
    pub async fn record_refreshed(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        read_version: u64,
        tokens: RefreshedTokens,
    ) -> Result<RefreshAppend, CommandError> {
        let stream = streams::credential(tenant_id, integration);
        let (sealed, key_version) = self
            .vault_seal(tenant_id, &stream, &tokens.document)
            .await?;
        self.append_at(
            meta,
            tenant_id,
            integration,
            read_version,
            CredentialCommand::Refresh(Box::new(RefreshCredential {
                sealed,
                key_version,
                scopes: tokens.scopes,
                issued_at: tokens.issued_at,
                expires_at: tokens.expires_at,
                refreshable: tokens.refreshable,
            })),
        )
        .await
    }

    /// Records a failed refresh at `read_version` exactly: its backoff, and `needs_reauth`
    /// when the domain says the grant is gone.
    pub async fn record_refresh_failed(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        read_version: u64,
        reason: RefreshFailure,
    ) -> Result<RefreshAppend, CommandError> {
        let now = self.clock.now();
        self.append_at(
            meta,
            tenant_id,
            integration,
            read_version,
            CredentialCommand::RefreshFailed { reason, now },
        )
        .await
    }

    async fn append_at(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        read_version: u64,
        command: CredentialCommand,
    ) -> Result<RefreshAppend, CommandError> {
        let stream = streams::credential(tenant_id, integration);
        let loaded = self.load::<CredentialState>(&stream).await?;
        if loaded.version != read_version {
            return Ok(RefreshAppend::Lost);
        }
        let events = loaded.state.decide(command).map_err(|error| match error {
            tessera_domain::DomainError::NotFound => CommandError::NotFound {
                kind: "credential",
                id: integration.to_owned(),
            },
            other => CommandError::Rejected(other),
        })?;
        let write = self.write(
            &meta,
            self.clock.now(),
            stream,
            ExpectedVersion::Exact(read_version),
            tenant_id,
            events,
        );
        match self.log.append(vec![write]).await {
            Ok(outcome) => Ok(RefreshAppend::Appended(outcome.last_position)),
            Err(AppendError::Conflict { .. }) => Ok(RefreshAppend::Lost),
            Err(other) => Err(other.into()),
        }
    }
}

#[cfg(test)]
mod tests;
