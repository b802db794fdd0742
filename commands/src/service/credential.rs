//! Connections to third-party services (issue 20, seed 004): `{tenant}/credential/{integration}`
//! and the accesses to them, `{tenant}/credential-access/{integration}`.
//!
//! The tokens or API key of a connection are one JSON document, [`CredentialSecret`], sealed
//! by the vault ([`CommandService::vault_seal`]) for the connection's stream before the command
//! is decided; the log holds only the sealed text. Access is a hot path: the connection is read
//! from a per-process fold caught up from the log (so a refresh appended by another node is
//! seen), opened, and its access recorded with expected version "any" on the access stream
//! (never on the connection's own, so accesses never make a refresh conflict).

use std::fmt;

use serde::{Deserialize, Serialize};
use tessera_domain::credential::{
    self, Credential, CredentialCommand, CredentialState, StoreCredential,
};
use tessera_event_schemas::events::{
    AccessedCredential, CredentialAccessedV1, CredentialKind, OAuthAppSource,
};
use tessera_event_schemas::{Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::{Address, Kind};
use crate::CommandError;

impl Kind for CredentialState {
    const KIND: &'static str = "credential";
}

impl Address<CredentialState> {
    pub(super) fn credential(tenant_id: Uuid, integration: &str) -> Self {
        Self::new(streams::credential(tenant_id, integration), integration)
    }
}

/// What a connection's sealed document holds: OAuth tokens, or an API key. Never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// `Bearer` unless the provider said otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialSecret(..)")
    }
}

/// Input of [`CommandService::store_credential`].
#[derive(Clone, Debug)]
pub struct StoreCredentialInput {
    pub kind: CredentialKind,
    pub secret: CredentialSecret,
    pub scopes: Vec<String>,
    /// When the access token expires; `None` when unknown (or an API key).
    pub expires_at: Option<Timestamp>,
    pub app: OAuthAppSource,
}

/// A connection as read for access, with the stream version it was read at (what a refresh
/// appends at).
#[derive(Clone, Debug)]
pub struct ReadCredential {
    pub credential: Credential,
    pub version: u64,
}

impl CommandService {
    /// Stores a connection (replacing what the stream held): the secret sealed under the
    /// tenant's vault, then `credential.stored`. The tenant must exist and be open.
    pub async fn store_credential(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        input: StoreCredentialInput,
    ) -> Result<u64, CommandError> {
        credential::integration(integration)?;
        let address = Address::credential(tenant_id, integration);
        let document = serde_json::to_vec(&input.secret)
            .map(zeroize::Zeroizing::new)
            .map_err(|error| CommandError::Internal(format!("credential document: {error}")))?;
        let (sealed, key_version) = self
            .vault_seal(tenant_id, &address.stream, &document)
            .await?;
        let refreshable = input.secret.refresh_token.is_some();
        let issued_at = self.clock.now();
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, "store a credential", &address, |_, _| {
                Ok((
                    CredentialCommand::Store(Box::new(StoreCredential {
                        kind: input.kind,
                        sealed: sealed.clone(),
                        key_version,
                        scopes: input.scopes.clone(),
                        issued_at,
                        expires_at: input.expires_at,
                        refreshable,
                        app: input.app,
                    })),
                    (),
                ))
            })
            .await?;
        Ok(position)
    }

    /// Removes a connection (`revoked_at_provider`: the provider confirmed the revocation).
    /// An absent or removed one is not found.
    pub async fn remove_credential(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        revoked_at_provider: bool,
    ) -> Result<u64, CommandError> {
        credential::integration(integration)?;
        let address = Address::credential(tenant_id, integration);
        let ((), position) = self
            .execute::<CredentialState, ()>(&meta, tenant_id, &address, |_| {
                Ok((
                    CredentialCommand::Remove {
                        revoked_at_provider,
                    },
                    (),
                ))
            })
            .await?;
        Ok(position)
    }

    /// The connection as recorded now (caught up from the log; see `fold_cache`), unless it
    /// was never stored or was removed.
    pub async fn read_credential(
        &self,
        tenant_id: Uuid,
        integration: &str,
    ) -> Result<Option<ReadCredential>, CommandError> {
        let stream = streams::credential(tenant_id, integration);
        let (state, version) = self
            .fold_cached(&self.credentials, &stream, |_: &CredentialState| false)
            .await?;
        Ok(state.present().map(|credential| ReadCredential {
            credential: credential.clone(),
            version,
        }))
    }

    /// Opens a connection's secret (refused when the tenant's vault is destroyed or the
    /// secret's key version is retired).
    pub async fn open_credential(
        &self,
        tenant_id: Uuid,
        integration: &str,
        credential: &Credential,
    ) -> Result<CredentialSecret, CommandError> {
        let stream = streams::credential(tenant_id, integration);
        let document = self
            .vault_open(tenant_id, &stream, &credential.sealed)
            .await?;
        serde_json::from_slice(&document)
            .map_err(|_| CommandError::Internal("a credential document is not JSON".into()))
    }

    /// Records, durably, that the key `api_key_id` read a connection in clear (`refreshed`:
    /// the access refreshed it first). Returns its position once it is durable: the caller
    /// answers only then.
    pub async fn record_credential_access(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        api_key_id: Uuid,
        refreshed: bool,
    ) -> Result<u64, CommandError> {
        self.record(
            meta,
            tenant_id,
            streams::credential_access(tenant_id, integration),
            Event::CredentialAccessed(CredentialAccessedV1 {
                api_key_id,
                name: integration.to_owned(),
                source: AccessedCredential::Integration,
                refreshed,
            }),
        )
        .await
    }
}

#[cfg(test)]
mod tests;
