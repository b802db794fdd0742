//! A tenant's vault (issue 20, ADR 0007): which key-encryption key versions exist, the newest
//! (what new secrets are sealed under), the minimum decryption version, the rewrap in progress,
//! and whether the tenant was offboarded (its keys destroyed).
//!
//! One stream per tenant, `{tenant}/vault`; the system tenant's vault seals the platform's own
//! secrets. Pure: the key material lives in the key table (`tessera_crypto::vault`), and the
//! command layer stores a version's key *before* this aggregate records it, so nothing on the
//! log ever names a version that could be lost. How many secrets remain below a version is a
//! read model's count, which arrives inside the command.
//!
//! # Rules
//! - Versions are 1, 2, ... without gaps: a new version is exactly the newest plus one.
//! - The minimum lies between 1 and the newest; it may not pass a version that still has
//!   secrets sealed below it unless forced (they would no longer open).
//! - A rewrap moves secrets to the newest version; asking again while one to the same version
//!   is recorded appends nothing (it resumes).
//! - A destroyed vault refuses everything, for good: destruction is the last event.

use tessera_event_schemas::events::{
    CredentialRewrappedV1, VaultDestroyedV1, VaultKeyAddedV1, VaultMinimumSetV1,
    VaultRewrapStartedV1,
};

use tessera_event_schemas::{Event, Secret};

use crate::{Aggregate, DomainError};

/// A tenant's vault as recorded. `Default` is a vault that has never sealed anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultState {
    /// The newest key version; 0 before the first (versions are `1..=newest`).
    pub newest: u32,
    /// Versions below this no longer open; 0 when no minimum was set.
    pub minimum: u32,
    /// The version of the last rewrap started and how many secrets were below it then.
    pub rewrap: Option<Rewrap>,
    /// The tenant was offboarded: every key version is destroyed.
    pub destroyed: bool,
}

/// A rewrap as recorded by `vault.rewrap_started`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrap {
    pub to_version: u32,
    pub total: u64,
}

impl VaultState {
    /// Every key version that exists (empty once destroyed).
    pub fn versions(&self) -> std::ops::RangeInclusive<u32> {
        // Destroyed: an empty range, nothing is left to open with.
        let newest = if self.destroyed { 0 } else { self.newest };
        1..=newest
    }

    /// Whether a secret sealed under `version` may be opened.
    pub fn opens(&self, version: u32) -> bool {
        !self.destroyed && version >= self.minimum.max(1) && version <= self.newest
    }

    /// The refusal of any use of a destroyed vault; `Ok` otherwise.
    pub fn require_usable(&self, action: &'static str) -> Result<(), DomainError> {
        if self.destroyed {
            Err(DomainError::IllegalTransition {
                from: "the tenant's vault was destroyed".into(),
                action,
            })
        } else {
            Ok(())
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultCommand {
    /// Records key version `version`, already stored in the key table (rotation, or the first
    /// key on first use). It must be the newest plus one.
    AddKey { version: u32 },
    /// Sets the minimum decryption version. `below` is how many secrets are still sealed
    /// under versions below `version` (the read model's count); more than none is refused
    /// unless `force`.
    SetMinimum {
        version: u32,
        below: u64,
        force: bool,
    },
    /// Starts moving every secret to the newest version; `total` is how many are below it.
    StartRewrap { total: u64 },
    /// Offboarding: the key versions were destroyed; records it.
    Destroy,
}

impl Aggregate for VaultState {
    type Command = VaultCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::VaultKeyAdded(e) => self.newest = self.newest.max(e.version),
            Event::VaultMinimumSet(e) => self.minimum = e.version,
            Event::VaultRewrapStarted(e) => {
                self.rewrap = Some(Rewrap {
                    to_version: e.to_version,
                    total: e.total,
                });
            }
            Event::VaultDestroyed(_) => self.destroyed = true,
            _ => {}
        }
    }

    fn decide(&self, command: VaultCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            VaultCommand::AddKey { version } => {
                self.require_usable("add a key version")?;
                if version != self.newest + 1 {
                    return Err(DomainError::Conflict(format!(
                        "key version {version} is not the next one ({})",
                        self.newest + 1
                    )));
                }
                Ok(vec![Event::VaultKeyAdded(VaultKeyAddedV1 { version })])
            }
            VaultCommand::SetMinimum {
                version,
                below,
                force,
            } => {
                self.require_usable("set the minimum version")?;
                if version == 0 || version > self.newest {
                    return Err(DomainError::invalid(
                        "version",
                        format!("must be a key version from 1 to {}", self.newest),
                    ));
                }
                if version == self.minimum {
                    return Ok(vec![]);
                }
                if below > 0 && !force {
                    return Err(DomainError::Conflict(format!(
                        "{below} secrets are still sealed below version {version}: rewrap \
                         them first, or force it to make them unreadable"
                    )));
                }
                Ok(vec![Event::VaultMinimumSet(VaultMinimumSetV1 { version })])
            }
            VaultCommand::StartRewrap { total } => {
                self.require_usable("rewrap")?;
                if self.newest == 0 {
                    return Err(DomainError::Conflict(
                        "the vault has no key version yet: nothing to rewrap".into(),
                    ));
                }
                if self
                    .rewrap
                    .is_some_and(|rewrap| rewrap.to_version == self.newest)
                {
                    return Ok(vec![]);
                }
                Ok(vec![Event::VaultRewrapStarted(VaultRewrapStartedV1 {
                    to_version: self.newest,
                    total,
                })])
            }
            VaultCommand::Destroy => {
                self.require_usable("destroy")?;
                Ok(vec![Event::VaultDestroyed(VaultDestroyedV1 {})])
            }
        }
    }
}

/// What an event says about the vault secret its stream holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretChange<'a> {
    /// The stream now holds this sealed secret, under this key version.
    Holds { sealed: &'a str, key_version: u32 },
    /// The stream no longer holds a secret.
    Gone,
}

/// The key version a sealed secret's text names (`tsr:v{n}:...`); 0 for anything else.
pub fn key_version_of(sealed: &str) -> u32 {
    sealed
        .strip_prefix("tsr:v")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(version, _)| version.parse().ok())
        .unwrap_or(0)
}

/// The sealed secret holders: every event that puts a vault secret on its stream or takes it
/// away (connections, tenants' OAuth apps, the operator's integrations, provider keys). A new
/// kind of holder adds its events here; the rewrap, its progress and the count per key version
/// (the read model `rm_vault_secrets`) then cover it, provided its aggregate folds
/// `credential.rewrapped` into the secret it holds.
pub fn secret_change(event: &Event) -> Option<SecretChange<'_>> {
    // The version recorded beside the secret where the event has one; else the one its
    // sealed text names.
    fn holds(sealed: &str, key_version: Option<u32>) -> SecretChange<'_> {
        SecretChange::Holds {
            sealed,
            key_version: key_version.unwrap_or_else(|| key_version_of(sealed)),
        }
    }

    match event {
        Event::CredentialStored(e) => Some(holds(e.sealed.expose(), Some(e.key_version))),
        Event::CredentialRefreshed(e) => Some(holds(e.sealed.expose(), Some(e.key_version))),
        Event::CredentialRewrapped(e) => Some(holds(e.sealed.expose(), Some(e.key_version))),
        Event::ProviderKeySet(e) => Some(holds(e.sealed.expose(), Some(e.key_version))),
        Event::IntegrationAppSet(e) => Some(holds(e.client_secret.expose(), None)),
        Event::IntegrationDefined(e) => Some(holds(e.client_secret.expose(), None)),
        Event::CredentialRemoved(_)
        | Event::ProviderKeyRemoved(_)
        | Event::IntegrationAppRemoved(_)
        | Event::IntegrationRemoved(_) => Some(SecretChange::Gone),
        _ => None,
    }
}

/// The secret one holder's stream holds, whatever kind of holder it is: what a rewrap reads
/// and moves on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldSecret {
    /// The sealed text and the key version it names; `None` when the stream holds none.
    pub sealed: Option<(String, u32)>,
}

/// A rewrap of the secret a stream holds: the same secret wrapped under `key_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrapSecret {
    pub sealed: String,
    pub key_version: u32,
}

impl Aggregate for HeldSecret {
    type Command = RewrapSecret;

    fn evolve(&mut self, event: &Event) {
        match secret_change(event) {
            Some(SecretChange::Holds {
                sealed,
                key_version,
            }) => self.sealed = Some((sealed.to_owned(), key_version)),
            Some(SecretChange::Gone) => self.sealed = None,
            None => {}
        }
    }

    /// Only forward: a secret already at (or past) the version appends nothing, so a rewrap
    /// that runs twice (a restart, another node) is harmless.
    fn decide(&self, command: RewrapSecret) -> Result<Vec<Event>, DomainError> {
        let (_, current) = self.sealed.as_ref().ok_or(DomainError::NotFound)?;
        if command.key_version <= *current {
            return Ok(vec![]);
        }
        if key_version_of(&command.sealed) != command.key_version {
            return Err(DomainError::invalid(
                "sealed",
                "must be sealed under the key version recorded beside it",
            ));
        }
        Ok(vec![Event::CredentialRewrapped(CredentialRewrappedV1 {
            sealed: Secret::new(command.sealed),
            key_version: command.key_version,
        })])
    }
}

#[cfg(test)]
mod tests;
