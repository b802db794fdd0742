//! One LLM provider key (issue 20, seed 002's "tenant-specific credentials"): a tenant's key
//! for one provider on `{tenant}/provider-key/{provider}`, and the platform's default key for
//! it on the system tenant's stream of the same name. Set, marked invalid, rewrapped, removed;
//! and the rule that says which key a tenant's request gets, in strict mode and without it.
//!
//! A rewrap (`credential.rewrapped`, the vault's, decided on any secret holder's stream by
//! `vault::HeldSecret`) replaces the sealed key and its version and keeps everything else.
//!
//! Pure: the key arrives sealed (`tsr:v{n}:...`, sealed by the commands under the owning
//! tenant's vault), with its last four characters taken before sealing by [`check_api_key`].
//! This module never sees a key in clear except in that check.
//!
//! # Rules
//! - The provider is one of seed 002's: `openai`, `anthropic`, `azure`, `berget`, `mistral`,
//!   `ovhcloud`, `vllm`.
//! - A key is 8 to 4,096 visible ASCII characters: shorter, its last four characters would
//!   give most of it away. `azure` and `vllm` need an `endpoint` (they have no public base
//!   URL); Azure OpenAI's `api_version` and `deployment_name` are for `azure` only.
//! - Setting a key replaces whatever was set, and clears an invalid mark: it is always
//!   recorded, since a new key is sealed afresh.
//! - Marking a key invalid or removing it needs a key; marking an invalid key again changes
//!   nothing.
//! - Resolution ([`resolve`]): the tenant's key when it has one, an error when that key is
//!   marked invalid (never a fallback, in either mode); without a tenant key, strict mode is
//!   an error and otherwise the platform's key applies, unless it too is missing or invalid.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{
    ProviderKeyInvalidatedV1, ProviderKeyRemovedV1, ProviderKeySetV1,
};

use crate::{Aggregate, DomainError};

/// Seed 002's supported providers.
pub const PROVIDERS: [&str; 7] = [
    "openai",
    "anthropic",
    "azure",
    "berget",
    "mistral",
    "ovhcloud",
    "vllm",
];

/// The shortest key accepted (see the module's rules).
pub const MIN_KEY_LENGTH: usize = 8;
/// The longest key accepted.
pub const MAX_KEY_LENGTH: usize = 4_096;

/// Checks a provider name before it names a stream.
pub fn provider(value: &str) -> Result<(), DomainError> {
    if PROVIDERS.contains(&value) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "provider",
            format!("must be one of {}", PROVIDERS.join(", ")),
        ))
    }
}

/// Checks a key in clear before it is sealed, and returns its last four characters.
pub fn check_api_key(key: &str) -> Result<String, DomainError> {
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if !visible || !(MIN_KEY_LENGTH..=MAX_KEY_LENGTH).contains(&key.len()) {
        return Err(DomainError::invalid(
            "api_key",
            format!(
                "must be {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} visible ASCII characters, \
                 without spaces"
            ),
        ));
    }
    // Visible ASCII: every character is one byte, so this slice is on a boundary.
    Ok(key[key.len() - 4..].to_owned())
}

/// The providers that have no public base URL, so a key for them needs its `endpoint`.
pub const NEEDS_ENDPOINT: [&str; 2] = ["azure", "vllm"];

/// Checks the settings sealed with a key: `endpoint` an https URL (plain http only on
/// loopback), required for [`NEEDS_ENDPOINT`]'s providers; `api_version` and
/// `deployment_name` are Azure OpenAI's and only accepted for `azure`.
pub fn check_settings(
    provider: &str,
    endpoint: Option<&str>,
    api_version: Option<&str>,
    deployment_name: Option<&str>,
) -> Result<(), DomainError> {
    match endpoint {
        Some(url) => crate::identity_provider::endpoint("endpoint", url)?,
        None if NEEDS_ENDPOINT.contains(&provider) => {
            return Err(DomainError::invalid(
                "endpoint",
                format!("is required for {provider}: the base URL of its API"),
            ));
        }
        None => {}
    }
    for (field, value) in [
        ("api_version", api_version),
        ("deployment_name", deployment_name),
    ] {
        let Some(value) = value else { continue };
        if provider != "azure" {
            return Err(DomainError::invalid(field, "is only for azure"));
        }
        let ok = (1..=100).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(DomainError::invalid(
                field,
                "must be 1 to 100 letters, digits, '-', '_' or '.'",
            ));
        }
    }
    Ok(())
}

/// A key as recorded (sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderKey {
    /// The vault's text form, `tsr:v{key_version}:...`.
    pub sealed: String,
    pub key_version: u32,
    pub last4: String,
    /// Reported invalid since it was set: handed out to no one.
    pub invalid: bool,
}

/// One provider key's state: `key` is `None` when never set or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderKeyState {
    pub key: Option<ProviderKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderKeyCommand {
    /// Sets the key (sealed by the caller under the owning tenant's vault).
    Set {
        sealed: String,
        key_version: u32,
        last4: String,
    },
    /// The provider refused the key: hand it out no more until a new one is set.
    Invalidate,
    Remove,
}

impl Aggregate for ProviderKeyState {
    type Command = ProviderKeyCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::ProviderKeySet(e) => {
                self.key = Some(ProviderKey {
                    sealed: e.sealed.expose().clone(),
                    key_version: e.key_version,
                    last4: e.last4.clone(),
                    invalid: false,
                });
            }
            Event::ProviderKeyInvalidated(_) => {
                if let Some(key) = &mut self.key {
                    key.invalid = true;
                }
            }
            Event::CredentialRewrapped(e) => {
                if let Some(key) = &mut self.key {
                    key.sealed = e.sealed.expose().clone();
                    key.key_version = e.key_version;
                }
            }
            Event::ProviderKeyRemoved(_) => self.key = None,
            _ => {}
        }
    }

    fn decide(&self, command: ProviderKeyCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            ProviderKeyCommand::Set {
                sealed,
                key_version,
                last4,
            } => {
                if last4.len() != 4 {
                    return Err(DomainError::invalid(
                        "api_key",
                        "the last four characters are four characters",
                    ));
                }
                Ok(vec![Event::ProviderKeySet(ProviderKeySetV1 {
                    sealed: sealed.into(),
                    key_version,
                    last4,
                })])
            }
            ProviderKeyCommand::Invalidate => match &self.key {
                None => Err(DomainError::NotFound),
                Some(key) if key.invalid => Ok(vec![]),
                Some(_) => Ok(vec![Event::ProviderKeyInvalidated(
                    ProviderKeyInvalidatedV1 {},
                )]),
            },
            ProviderKeyCommand::Remove => match self.key {
                Some(_) => Ok(vec![Event::ProviderKeyRemoved(ProviderKeyRemovedV1 {})]),
                None => Err(DomainError::NotFound),
            },
        }
    }
}

/// Whose key a resolution hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Tenant,
    Platform,
}

/// Why a resolution hands out no key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// The tenant's own key is marked invalid (either mode: never a fallback).
    TenantKeyInvalid,
    /// Strict mode, and the tenant has no key.
    TenantKeyRequired,
    /// No tenant key, and no usable platform key (none set, or it is marked invalid).
    NoKey { platform_invalid: bool },
}

/// Whether [`resolve`] needs the platform's key: only a tenant without a key of its own, outside
/// strict mode, falls back (so the hot path reads one stream when the tenant has a key).
pub fn needs_platform(tenant: &ProviderKeyState, strict: bool) -> bool {
    tenant.key.is_none() && !strict
}

/// Which key a tenant's request for a provider gets (see the module's rules). `platform` is
/// the platform's key state, read only when [`needs_platform`] says so.
pub fn resolve<'a>(
    tenant: &'a ProviderKeyState,
    platform: Option<&'a ProviderKeyState>,
    strict: bool,
) -> Result<(Source, &'a ProviderKey), Unresolved> {
    match &tenant.key {
        Some(key) if key.invalid => Err(Unresolved::TenantKeyInvalid),
        Some(key) => Ok((Source::Tenant, key)),
        None if strict => Err(Unresolved::TenantKeyRequired),
        None => match platform.and_then(|state| state.key.as_ref()) {
            Some(key) if key.invalid => Err(Unresolved::NoKey {
                platform_invalid: true,
            }),
            Some(key) => Ok((Source::Platform, key)),
            None => Err(Unresolved::NoKey {
                platform_invalid: false,
            }),
        },
    }
}

#[cfg(test)]
mod tests;
