//! One integration the operator offers (issue 20, seed 004): a built-in provider (`notion`,
//! `github`, `google`, `slack`) or a `generic_oauth2` one, with the platform's OAuth app for it.
//!
//! One stream per integration, `{system}/integration/{integration}`. Pure: the client secret
//! arrives sealed (the system tenant's vault, `tsr:v...`), and the built-in catalogue
//! ([`catalogue`]) resolves a provider's URLs when it is defined.
//!
//! # Rules
//! - The integration's name is 1 to 64 characters of `a-z`, `0-9`, `_` and `-` (it names
//!   streams and the callback path).
//! - `provider` is a built-in. `generic_oauth2` needs `authorization_url` and `token_url`
//!   (`revocation_url` optional); a hosted provider takes none of them (its own are used).
//! - URLs are absolute https (plain http only on `localhost` and `127.0.0.1`, for tests and
//!   development), without a fragment.
//! - `client_id` is 1 to 255 characters; a first definition needs a client secret, a later one
//!   without a secret keeps the one recorded.
//! - `scopes` default to the provider's; each is an RFC 6749 scope token.
//! - Defining the same integration again with no new secret appends nothing; removing an
//!   absent one is not found.

pub mod catalogue;

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{IntegrationDefinedV1, IntegrationRemovedV1};

use crate::identity_provider::endpoint;
use crate::validate;
use crate::{Aggregate, DomainError};

/// An integration as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integration {
    pub provider: String,
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub client_id: String,
    /// The platform app's secret, sealed under the system tenant's vault.
    pub sealed_client_secret: String,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub refreshes: bool,
}

/// The integration's state: `None` when never defined or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrationState {
    pub integration: Option<Integration>,
}

/// What a `PUT` asks for, before the built-in catalogue resolves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Definition {
    pub provider: String,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub revocation_url: Option<String>,
    pub client_id: String,
    pub scopes: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntegrationCommand {
    /// Define or replace; `sealed_client_secret: None` keeps the recorded secret.
    Define {
        definition: Definition,
        sealed_client_secret: Option<String>,
    },
    Remove,
}

/// Checks an integration's name before it names a stream.
pub fn name(value: &str) -> Result<(), DomainError> {
    validate::identifier("integration", value)
}

/// An RFC 6749 scope token (section 3.3: printable ASCII but space, `"` and `\`), at most 256
/// characters: third-party scopes are often URLs (`https://www.googleapis.com/auth/drive`).
pub fn scope(field: &str, value: &str) -> Result<(), DomainError> {
    let ok = (1..=256).contains(&value.len())
        && value
            .bytes()
            .all(|c| (0x21..=0x7e).contains(&c) && c != b'"' && c != b'\\');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "each scope must be 1 to 256 printable characters without spaces, '\"' or '\\'",
        ))
    }
}

/// Checks a list of scopes (at most 100).
pub fn scopes(field: &str, values: &[String]) -> Result<(), DomainError> {
    if values.len() > 100 {
        return Err(DomainError::invalid(field, "at most 100 scopes"));
    }
    values.iter().try_for_each(|value| scope(field, value))
}

/// Checks an OAuth client id.
pub fn client_id(value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() || value.len() > 255 {
        return Err(DomainError::invalid(
            "client_id",
            "must be 1 to 255 characters",
        ));
    }
    Ok(())
}

/// Resolves a definition against the built-in catalogue and checks it; the secret is left
/// empty. The API calls it before anything is sealed, so that bad input seals nothing.
pub fn resolve(definition: &Definition) -> Result<Integration, DomainError> {
    let builtin = catalogue::builtin(&definition.provider).ok_or_else(|| {
        DomainError::invalid("provider", format!("must be one of {}", catalogue::names()))
    })?;
    let url = |field: &str, given: &Option<String>, builtin: Option<&str>| match builtin {
        Some(_) if given.is_some() => Err(DomainError::invalid(
            field,
            format!(
                "is fixed for {}; give it only for {}",
                definition.provider,
                catalogue::GENERIC
            ),
        )),
        Some(url) => Ok(Some(url.to_owned())),
        None => match given {
            Some(url) => endpoint(field, url).map(|()| Some(url.clone())),
            None => Ok(None),
        },
    };
    let generic = builtin.authorization_url.is_none();
    let authorization_url = url(
        "authorization_url",
        &definition.authorization_url,
        builtin.authorization_url,
    )?
    .ok_or_else(|| DomainError::invalid("authorization_url", "is required for generic_oauth2"))?;
    let token_url = url("token_url", &definition.token_url, builtin.token_url)?
        .ok_or_else(|| DomainError::invalid("token_url", "is required for generic_oauth2"))?;
    let revocation_url = if generic {
        url("revocation_url", &definition.revocation_url, None)?
    } else {
        url(
            "revocation_url",
            &definition.revocation_url,
            Some(builtin.revocation_url.unwrap_or_default()),
        )?
        .filter(|url| !url.is_empty())
    };
    client_id(&definition.client_id)?;
    let scopes = match &definition.scopes {
        Some(given) => given.clone(),
        None => builtin
            .default_scopes
            .iter()
            .map(|scope| (*scope).to_owned())
            .collect(),
    };
    self::scopes("scopes", &scopes)?;
    Ok(Integration {
        provider: builtin.provider.to_owned(),
        authorization_url,
        token_url,
        revocation_url,
        client_id: definition.client_id.clone(),
        sealed_client_secret: String::new(),
        scopes,
        pkce: builtin.pkce,
        refreshes: builtin.refreshes,
    })
}

impl Aggregate for IntegrationState {
    type Command = IntegrationCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::IntegrationDefined(e) => {
                self.integration = Some(Integration {
                    provider: e.provider.clone(),
                    authorization_url: e.authorization_url.clone(),
                    token_url: e.token_url.clone(),
                    revocation_url: e.revocation_url.clone(),
                    client_id: e.client_id.clone(),
                    sealed_client_secret: e.client_secret.expose().clone(),
                    scopes: e.scopes.clone(),
                    pkce: e.pkce,
                    refreshes: e.refreshes,
                });
            }
            Event::IntegrationRemoved(_) => self.integration = None,
            _ => {}
        }
    }

    fn decide(&self, command: IntegrationCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            IntegrationCommand::Define {
                definition,
                sealed_client_secret,
            } => {
                let mut next = resolve(&definition)?;
                let current = self.integration.as_ref();
                next.sealed_client_secret = match (sealed_client_secret, current) {
                    (Some(sealed), _) => sealed,
                    (None, Some(current)) => current.sealed_client_secret.clone(),
                    (None, None) => {
                        return Err(DomainError::invalid(
                            "client_secret",
                            "is required when the integration is first defined",
                        ));
                    }
                };
                if current == Some(&next) {
                    return Ok(vec![]);
                }
                Ok(vec![Event::IntegrationDefined(IntegrationDefinedV1 {
                    provider: next.provider,
                    authorization_url: next.authorization_url,
                    token_url: next.token_url,
                    revocation_url: next.revocation_url,
                    client_id: next.client_id,
                    client_secret: next.sealed_client_secret.into(),
                    scopes: next.scopes,
                    pkce: next.pkce,
                    refreshes: next.refreshes,
                })])
            }
            IntegrationCommand::Remove => match self.integration {
                Some(_) => Ok(vec![Event::IntegrationRemoved(IntegrationRemovedV1 {})]),
                None => Err(DomainError::NotFound),
            },
        }
    }
}

#[cfg(test)]
mod tests;
