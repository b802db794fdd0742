//! A tenant's vault keys (issue 20, ADR 0007): rotation, the minimum decryption version, the
//! rewrap of every secret the tenant holds, and offboarding.
//!
//! Every decision is the vault stream's expected version: a rotation stores the new version's
//! key first and then appends `vault.key_added` at the version read (two concurrent rotations
//! make two versions, one after the other, never two keys for one version); offboarding
//! destroys every key version and then appends `vault.destroyed`.
//!
//! A rewrap is per secret: [`CommandService::rewrap_secret`] reads the stream that holds one
//! (any holder: see `tessera_domain::vault::secret_change`), wraps its data key again under the
//! newest version without opening the payload, and appends `credential.rewrapped` at the
//! version read, so a concurrent refresh makes it read again. Which streams still hold a secret
//! below the newest version is the read model's answer, which the caller iterates; a restart
//! resumes from what it still lists.

use tessera_domain::Aggregate as _;
use tessera_domain::vault::{HeldSecret, RewrapSecret, VaultCommand, VaultState};
use tessera_event_schemas::EventMetadata;
use uuid::Uuid;

use super::CommandService;
use super::engine::{Address, Kind, Plan};
use crate::CommandError;

/// Any stream that holds a vault secret, for its rewrap.
impl Kind for HeldSecret {
    const KIND: &'static str = "secret";
}

impl CommandService {
    /// Adds a key version to the tenant's vault (the key stored first); returns it.
    pub async fn rotate_vault_key(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
    ) -> Result<(u32, u64), CommandError> {
        let keys = self.vault_keys()?;
        let address = Address::<VaultState>::vault(tenant_id);
        let (address, meta) = (&address, &meta);
        self.run(&address.stream, move || async move {
            let loaded = self.load::<VaultState>(&address.stream).await?;
            loaded.state.require_usable("rotate the vault key")?;
            let version = loaded.state.newest + 1;
            // The key first: nothing on the log may name a version that could be lost.
            keys.create(tenant_id, version).await?;
            let events = loaded
                .state
                .decide(VaultCommand::AddKey { version })
                .map_err(|error| loaded.reject(error, address))?;
            let mut plan = Plan::new(version, loaded.position);
            plan.push(self.write(
                meta,
                self.clock.now(),
                address.stream.clone(),
                loaded.expected(),
                tenant_id,
                events,
            ));
            Ok(plan)
        })
        .await
    }

    /// Sets the minimum decryption version; `below` is how many secrets the read model still
    /// counts under older versions (refused unless `force`).
    pub async fn set_vault_minimum(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        version: u32,
        below: u64,
        force: bool,
    ) -> Result<u64, CommandError> {
        let address = Address::<VaultState>::vault(tenant_id);
        let ((), position) = self
            .execute::<VaultState, ()>(&meta, tenant_id, &address, |_| {
                Ok((
                    VaultCommand::SetMinimum {
                        version,
                        below,
                        force,
                    },
                    (),
                ))
            })
            .await?;
        Ok(position)
    }

    /// Records the start of a rewrap to the newest version (`total` secrets below it); asking
    /// again while one to the same version is recorded appends nothing. Returns the vault.
    pub async fn start_vault_rewrap(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        total: u64,
    ) -> Result<(VaultState, u64), CommandError> {
        let address = Address::<VaultState>::vault(tenant_id);
        let ((), position) = self
            .execute::<VaultState, ()>(&meta, tenant_id, &address, |_| {
                Ok((VaultCommand::StartRewrap { total }, ()))
            })
            .await?;
        Ok((self.vault_state(tenant_id).await?, position))
    }

    /// Moves the secret `stream_id` holds to the tenant's newest key version without opening
    /// it; `false` when there was nothing to do (no secret, or already there).
    pub async fn rewrap_secret(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        stream_id: &str,
    ) -> Result<bool, CommandError> {
        let address = Address::<HeldSecret>::new(stream_id.to_owned(), stream_id);
        let (address, meta) = (&address, &meta);
        let (moved, _) = self
            .run(&address.stream, move || async move {
                let loaded = self.load::<HeldSecret>(&address.stream).await?;
                let mut plan = Plan::new(false, loaded.position);
                let Some((sealed, _)) = &loaded.state.sealed else {
                    return Ok(plan);
                };
                let Some((sealed, key_version)) = self
                    .vault_rewrap_secret(tenant_id, &address.stream, sealed)
                    .await?
                else {
                    return Ok(plan);
                };
                let events = loaded
                    .state
                    .decide(RewrapSecret {
                        sealed,
                        key_version,
                    })
                    .map_err(|error| loaded.reject(error, address))?;
                let moved = !events.is_empty();
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    address.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan.with_value(moved))
            })
            .await?;
        Ok(moved)
    }

    /// Offboards the tenant's vault: destroys every key version, then appends
    /// `vault.destroyed`. Everything the vault sealed is unreadable from then on, for good.
    pub async fn destroy_vault(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
    ) -> Result<u64, CommandError> {
        let keys = self.vault_keys()?;
        let address = Address::<VaultState>::vault(tenant_id);
        let (address, meta) = (&address, &meta);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let loaded = self.load::<VaultState>(&address.stream).await?;
                let events = loaded
                    .state
                    .decide(VaultCommand::Destroy)
                    .map_err(|error| loaded.reject(error, address))?;
                // The keys first: once `vault.destroyed` is on the log, nothing must remain
                // that could open what the vault sealed. A version made concurrently after
                // this read makes the append conflict, and the retry destroys it too.
                keys.destroy(tenant_id, loaded.state.newest).await?;
                let mut plan = Plan::new((), loaded.position);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    address.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(position)
    }
}
