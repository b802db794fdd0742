//! The credential vault's sealing layer (issue 20, ADR 0007): every part of the vault seals and
//! opens its secrets here, under the owning tenant's key-encryption keys (the platform's own
//! secrets under the system tenant's, [`SYSTEM_TENANT_ID`]).
//!
//! - [`CommandService::vault_seal`] seals a payload for the stream that will hold it, under the
//!   tenant's newest key version. On a tenant's first use it stores key version 1 in the key
//!   table and then appends `vault.key_added {1}` at the vault stream's expected version
//!   "no stream", so two nodes sealing at once agree on one first key.
//! - [`CommandService::vault_open`] opens it again, refusing a destroyed vault and versions
//!   below the minimum before any key is sought.
//! - [`CommandService::vault_rewrap_secret`] moves one secret to the newest version without
//!   opening its payload.
//!
//! A secret is bound to its stream: its AAD id is [`secret_id`] of the stream id, so a secret
//! copied to another stream or tenant does not open.
//!
//! The vault's state is read on every use, but incrementally: this process caches each
//! tenant's folded state and reads only the events after the version it holds (usually none),
//! so another node's offboarding is seen before the next use of a cached key.

use std::sync::Arc;

use tessera_crypto::VaultKeys;
use tessera_crypto::vault::{Sealed, VaultError, secret_id};
use tessera_domain::Aggregate as _;
use tessera_domain::DomainError;
use tessera_domain::vault::{VaultCommand, VaultState};
use tessera_event_schemas::{EventMetadata, streams};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::CommandService;
use super::engine::{Address, Kind, Plan};
use crate::CommandError;

#[cfg(doc)]
use tessera_event_schemas::SYSTEM_TENANT_ID;

impl Kind for VaultState {
    const KIND: &'static str = "vault";
}

impl Address<VaultState> {
    pub(super) fn vault(tenant_id: Uuid) -> Self {
        Self::new(streams::vault(tenant_id), tenant_id)
    }
}

/// A vault key error as the outcome a caller acts on.
fn vault_error(error: VaultError) -> CommandError {
    match error {
        VaultError::Retired { version, minimum } => {
            CommandError::Rejected(DomainError::Conflict(format!(
                "the secret is sealed under key version {version}, below the vault's minimum \
                 version {minimum}: it no longer opens"
            )))
        }
        VaultError::KeyGone(version) => {
            CommandError::Internal(format!("vault key version {version} is missing"))
        }
        VaultError::Malformed => CommandError::Internal("a malformed vault secret".into()),
        VaultError::Crypto(error) => error.into(),
    }
}

impl CommandService {
    /// The same service, able to seal and open vault secrets with `keys`. Without it (tools,
    /// tests of other aggregates) vault commands fail as internal errors.
    pub fn with_vault(mut self, keys: Arc<VaultKeys>) -> Self {
        self.vault_keys = Some(keys);
        self
    }

    pub(super) fn vault_keys(&self) -> Result<&VaultKeys, CommandError> {
        self.vault_keys
            .as_deref()
            .ok_or_else(|| CommandError::Internal("the vault's keys are not configured".into()))
    }

    /// The tenant's vault as recorded now (versions, newest, minimum, rewrap, destroyed). Reads
    /// only the events this process has not folded yet.
    pub async fn vault_state(&self, tenant_id: Uuid) -> Result<VaultState, CommandError> {
        // Destruction is final: nothing after it can change the answer.
        let (state, _) = self
            .fold_cached(
                &self.vaults,
                &streams::vault(tenant_id),
                |state: &VaultState| state.destroyed,
            )
            .await?;
        Ok(state)
    }

    /// Seals `payload` for the stream `stream_id` of `tenant_id` under the tenant's newest key
    /// version; returns the sealed text (`tsr:v{n}:...`) and `n`. Makes the tenant's first key
    /// on first use; refuses a destroyed vault.
    pub async fn vault_seal(
        &self,
        tenant_id: Uuid,
        stream_id: &str,
        payload: &[u8],
    ) -> Result<(String, u32), CommandError> {
        let keys = self.vault_keys()?;
        let mut state = self.vault_state(tenant_id).await?;
        state.require_usable("seal a secret")?;
        if state.newest == 0 {
            state = self.vault_first_key(tenant_id).await?;
        }
        let version = state.newest;
        let sealed = keys
            .seal(tenant_id, version, secret_id(stream_id), payload)
            .await
            .map_err(vault_error)?;
        Ok((sealed, version))
    }

    /// Opens what [`CommandService::vault_seal`] sealed for `stream_id`. Refuses a destroyed
    /// vault and a secret sealed under a version below the minimum.
    pub async fn vault_open(
        &self,
        tenant_id: Uuid,
        stream_id: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CommandError> {
        let keys = self.vault_keys()?;
        let state = self.vault_state(tenant_id).await?;
        state.require_usable("open a secret")?;
        keys.open(tenant_id, secret_id(stream_id), sealed, state.minimum)
            .await
            .map_err(vault_error)
    }

    /// `sealed` (held by `stream_id`) wrapped again under the tenant's newest key version,
    /// without opening its payload; `None` when it already is at the newest version. The
    /// caller appends the result (`credential.rewrapped`) at the version it read the secret at.
    pub async fn vault_rewrap_secret(
        &self,
        tenant_id: Uuid,
        stream_id: &str,
        sealed: &str,
    ) -> Result<Option<(String, u32)>, CommandError> {
        let keys = self.vault_keys()?;
        let state = self.vault_state(tenant_id).await?;
        state.require_usable("rewrap a secret")?;
        let version = Sealed::parse(sealed)
            .ok_or_else(|| vault_error(VaultError::Malformed))?
            .version;
        if version >= state.newest {
            return Ok(None);
        }
        let rewrapped = keys
            .rewrap(
                tenant_id,
                secret_id(stream_id),
                sealed,
                state.minimum,
                state.newest,
            )
            .await
            .map_err(vault_error)?;
        Ok(Some((rewrapped, state.newest)))
    }

    /// Stores key version 1 and records it, unless another request (here or on another node)
    /// did first; returns the vault as it then stands.
    async fn vault_first_key(&self, tenant_id: Uuid) -> Result<VaultState, CommandError> {
        let keys = self.vault_keys()?;
        let address = Address::<VaultState>::vault(tenant_id);
        let meta = EventMetadata::system(self.ids.new_id().to_string());
        let address = &address;
        let meta = &meta;
        self.run(&address.stream, move || async move {
            let loaded = self.load::<VaultState>(&address.stream).await?;
            let mut plan = Plan::new((), loaded.position);
            if loaded.state.newest == 0 {
                loaded.state.require_usable("seal a secret")?;
                // The key first: nothing on the log may name a version that could be lost.
                keys.create(tenant_id, 1).await?;
                let events = loaded
                    .state
                    .decide(VaultCommand::AddKey { version: 1 })
                    .map_err(|error| loaded.reject(error, address))?;
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    address.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
            }
            Ok(plan)
        })
        .await?;
        self.vault_state(tenant_id).await
    }
}

#[cfg(test)]
mod tests;
