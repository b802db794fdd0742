//! LLM provider keys (issue 20, seed 002): a tenant's key for a provider on
//! `{tenant}/provider-key/{provider}`, the platform's default on the system tenant's stream of
//! the same name, and their resolution, audited on `{tenant}/provider-key-access/{provider}`.
//!
//! A key (with the optional endpoint settings some providers need) is sealed as one JSON
//! document by the vault's sealing layer under the owning tenant's key-encryption key (the
//! system tenant's for the platform's keys), with the stream as the secret's id, so that a
//! sealed key copied to another stream or tenant does not open. Only the sealed text, its key
//! version and the key's last four characters are recorded.
//!
//! A resolution reads the tenant's stream (and, only for a fallback, the platform's), lets the
//! domain's [`resolve`] choose, opens the chosen key, and appends `credential.accessed` with
//! expected version "any" before handing it out: an access is a fact, kept off the key's own
//! stream so that accesses never make a change of the key conflict.

use serde::{Deserialize, Serialize};
use tessera_domain::Aggregate;
use tessera_domain::provider_key::{
    self, ProviderKey, ProviderKeyCommand, ProviderKeyState, Source, Unresolved, resolve,
};
use tessera_event_schemas::events::{AccessedCredential, CredentialAccessedV1};
use tessera_event_schemas::{Event, EventMetadata, SYSTEM_TENANT_ID, Timestamp, streams};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::CommandService;
use super::engine::{Address, Kind, PAGE, decode};
use crate::CommandError;

impl Kind for ProviderKeyState {
    const KIND: &'static str = "provider_key";
}

impl Address<ProviderKeyState> {
    fn provider_key(tenant_id: Uuid, provider: &str) -> Self {
        Self::new(streams::provider_key(tenant_id, provider), provider)
    }
}

/// What is sealed: the key and the settings that go with it. Never logged (its `Debug` shows
/// only which settings are present).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ProviderSecret {
    pub api_key: String,
    /// The provider's base URL (Azure OpenAI's resource endpoint, a vLLM server, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Azure OpenAI's `api-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Azure OpenAI's deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
}

impl std::fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSecret")
            .field("endpoint", &self.endpoint)
            .field("api_version", &self.api_version)
            .field("deployment_name", &self.deployment_name)
            .finish_non_exhaustive()
    }
}

impl Drop for ProviderSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.api_key);
    }
}

/// What `GET` shows of a key: never the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderKeyInfo {
    pub last4: String,
    pub invalid: bool,
    pub key_version: u32,
    /// When the key was last set or marked invalid.
    pub updated_at: Timestamp,
}

/// A resolved key, in clear, and whose it is.
#[derive(Debug)]
pub struct ResolvedProviderKey {
    pub source: Source,
    pub secret: ProviderSecret,
    /// The position of the access's audit event.
    pub position: u64,
}

/// Why a resolution handed out nothing; nothing was appended.
#[derive(Debug)]
pub enum ResolveError {
    Unresolved(Unresolved),
    Command(CommandError),
}

impl From<CommandError> for ResolveError {
    fn from(error: CommandError) -> Self {
        ResolveError::Command(error)
    }
}

impl CommandService {
    /// Reads a provider key's stream: its state and when it was last set or marked invalid.
    async fn load_provider_key(
        &self,
        tenant_id: Uuid,
        provider: &str,
    ) -> Result<(ProviderKeyState, Option<Timestamp>), CommandError> {
        let stream = streams::provider_key(tenant_id, provider);
        let mut state = ProviderKeyState::default();
        let mut updated_at = None;
        let mut version = 0;
        loop {
            let page = self.log.read_stream(&stream, version, PAGE).await?;
            for recorded in &page {
                let event = decode(recorded)?;
                if matches!(
                    event,
                    Event::ProviderKeySet(_) | Event::ProviderKeyInvalidated(_)
                ) {
                    updated_at = Some(recorded.envelope.recorded_at);
                }
                state.evolve(&event);
                version = recorded.envelope.stream_version;
            }
            if page.len() < PAGE {
                return Ok((state, updated_at));
            }
        }
    }

    /// A provider key of `tenant_id` (the system tenant: the platform's), if set.
    pub async fn provider_key(
        &self,
        tenant_id: Uuid,
        provider: &str,
    ) -> Result<Option<ProviderKeyInfo>, CommandError> {
        provider_key::provider(provider)?;
        let (state, updated_at) = self.load_provider_key(tenant_id, provider).await?;
        Ok(state.key.map(|key| ProviderKeyInfo {
            last4: key.last4,
            invalid: key.invalid,
            key_version: key.key_version,
            updated_at: updated_at.unwrap_or_default(),
        }))
    }

    /// Sets a provider key of `tenant_id` (the system tenant: the platform's default), sealed
    /// under that tenant's vault. Clears an invalid mark.
    pub async fn set_provider_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        provider: &str,
        secret: &ProviderSecret,
    ) -> Result<u64, CommandError> {
        provider_key::provider(provider)?;
        let last4 = provider_key::check_api_key(&secret.api_key)?;
        provider_key::check_settings(
            provider,
            secret.endpoint.as_deref(),
            secret.api_version.as_deref(),
            secret.deployment_name.as_deref(),
        )?;
        let address = Address::provider_key(tenant_id, provider);
        let payload = Zeroizing::new(
            serde_json::to_vec(secret)
                .map_err(|error| CommandError::Internal(error.to_string()))?,
        );
        let (sealed, key_version) = self
            .vault_seal(tenant_id, &address.stream, &payload)
            .await?;
        let ((), position) = self
            .execute_in_open_tenant(&meta, tenant_id, "set a provider key", &address, |_, _| {
                Ok((
                    ProviderKeyCommand::Set {
                        sealed: sealed.clone(),
                        key_version,
                        last4: last4.clone(),
                    },
                    (),
                ))
            })
            .await?;
        Ok(position)
    }

    /// Marks a provider key invalid: it is handed out no more until a new one is set.
    pub async fn invalidate_provider_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        provider: &str,
    ) -> Result<u64, CommandError> {
        self.change_provider_key(meta, tenant_id, provider, ProviderKeyCommand::Invalidate)
            .await
    }

    /// Removes a provider key.
    pub async fn remove_provider_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        provider: &str,
    ) -> Result<u64, CommandError> {
        self.change_provider_key(meta, tenant_id, provider, ProviderKeyCommand::Remove)
            .await
    }

    async fn change_provider_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        provider: &str,
        command: ProviderKeyCommand,
    ) -> Result<u64, CommandError> {
        provider_key::provider(provider)?;
        let address = Address::provider_key(tenant_id, provider);
        let ((), position) = self
            .execute::<ProviderKeyState, ()>(&meta, tenant_id, &address, |_| {
                Ok((command.clone(), ()))
            })
            .await?;
        Ok(position)
    }

    /// The key a service of `tenant_id` holding `vault:read` (the API key `api_key_id`) gets
    /// for `provider`: the tenant's own, or outside `strict` mode the platform's when the
    /// tenant has none. The access is appended durably before the key is returned.
    pub async fn resolve_provider_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        provider: &str,
        api_key_id: Uuid,
        strict: bool,
    ) -> Result<ResolvedProviderKey, ResolveError> {
        provider_key::provider(provider).map_err(CommandError::from)?;
        let (tenant, _) = self.load_provider_key(tenant_id, provider).await?;
        let platform = if provider_key::needs_platform(&tenant, strict) {
            Some(self.load_provider_key(SYSTEM_TENANT_ID, provider).await?.0)
        } else {
            None
        };
        let (source, key) =
            resolve(&tenant, platform.as_ref(), strict).map_err(ResolveError::Unresolved)?;
        let owner = match source {
            Source::Tenant => tenant_id,
            Source::Platform => SYSTEM_TENANT_ID,
        };
        let secret = self.open_provider_key(owner, provider, key).await?;
        let accessed = Event::CredentialAccessed(CredentialAccessedV1 {
            api_key_id,
            name: provider.to_owned(),
            source: match source {
                Source::Tenant => AccessedCredential::TenantProviderKey,
                Source::Platform => AccessedCredential::PlatformProviderKey,
            },
            refreshed: false,
        });
        let position = self
            .record(
                meta,
                tenant_id,
                streams::provider_key_access(tenant_id, provider),
                accessed,
            )
            .await?;
        Ok(ResolvedProviderKey {
            source,
            secret,
            position,
        })
    }

    async fn open_provider_key(
        &self,
        owner: Uuid,
        provider: &str,
        key: &ProviderKey,
    ) -> Result<ProviderSecret, CommandError> {
        let stream = streams::provider_key(owner, provider);
        let plain = self.vault_open(owner, &stream, &key.sealed).await?;
        serde_json::from_slice(&plain).map_err(|_| {
            CommandError::Internal(format!("the sealed key on {stream} is not a key document"))
        })
    }
}

#[cfg(test)]
mod tests;
