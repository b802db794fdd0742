//! A tenant's own OAuth app for an integration (issue 20): used instead of the platform's for
//! the tenant's connect flows and refreshes.
//!
//! One stream per (tenant, integration), `{tenant}/integration-app/{integration}`. Pure: the
//! client secret arrives sealed under the tenant's vault; whether the integration exists is
//! checked by the command, which reads its stream.
//!
//! # Rules
//! - `client_id` is 1 to 255 characters; a first app needs a client secret, a later one without
//!   a secret keeps the one recorded.
//! - `scopes`, when given, replace the integration's (RFC 6749 scope tokens).
//! - Setting the same app again with no new secret appends nothing; removing an absent one is
//!   not found.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{IntegrationAppRemovedV1, IntegrationAppSetV1};

use crate::integration;
use crate::{Aggregate, DomainError};

/// A tenant's app as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrationApp {
    pub client_id: String,
    /// Sealed under the tenant's vault.
    pub sealed_client_secret: String,
    pub scopes: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrationAppState {
    pub app: Option<IntegrationApp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntegrationAppCommand {
    /// Set or replace; `sealed_client_secret: None` keeps the recorded secret.
    Set {
        client_id: String,
        sealed_client_secret: Option<String>,
        scopes: Option<Vec<String>>,
    },
    Remove,
}

/// Checks an app's fields; the API calls it before anything is sealed.
pub fn check(client_id: &str, scopes: Option<&[String]>) -> Result<(), DomainError> {
    integration::client_id(client_id)?;
    scopes.map_or(Ok(()), |scopes| integration::scopes("scopes", scopes))
}

impl Aggregate for IntegrationAppState {
    type Command = IntegrationAppCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::IntegrationAppSet(e) => {
                self.app = Some(IntegrationApp {
                    client_id: e.client_id.clone(),
                    sealed_client_secret: e.client_secret.expose().clone(),
                    scopes: e.scopes.clone(),
                });
            }
            Event::IntegrationAppRemoved(_) => self.app = None,
            // A rewrap of the app's secret (vault-core) replaces only the sealed text.
            Event::CredentialRewrapped(e) => {
                if let Some(app) = &mut self.app {
                    app.sealed_client_secret = e.sealed.expose().clone();
                }
            }
            _ => {}
        }
    }

    fn decide(&self, command: IntegrationAppCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            IntegrationAppCommand::Set {
                client_id,
                sealed_client_secret,
                scopes,
            } => {
                check(&client_id, scopes.as_deref())?;
                let current = self.app.as_ref();
                let sealed = match (sealed_client_secret, current) {
                    (Some(sealed), _) => sealed,
                    (None, Some(current)) => current.sealed_client_secret.clone(),
                    (None, None) => {
                        return Err(DomainError::invalid(
                            "client_secret",
                            "is required when the app is first set",
                        ));
                    }
                };
                let next = IntegrationApp {
                    client_id,
                    sealed_client_secret: sealed,
                    scopes,
                };
                if current == Some(&next) {
                    return Ok(vec![]);
                }
                Ok(vec![Event::IntegrationAppSet(IntegrationAppSetV1 {
                    client_id: next.client_id,
                    client_secret: next.sealed_client_secret.into(),
                    scopes: next.scopes,
                })])
            }
            IntegrationAppCommand::Remove => match self.app {
                Some(_) => Ok(vec![Event::IntegrationAppRemoved(
                    IntegrationAppRemovedV1 {},
                )]),
                None => Err(DomainError::NotFound),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(secret: Option<&str>) -> IntegrationAppCommand {
        IntegrationAppCommand::Set {
            client_id: "tenant-app".into(),
            sealed_client_secret: secret.map(str::to_owned),
            scopes: None,
        }
    }

    #[test]
    fn a_first_app_needs_a_secret_and_a_later_one_keeps_it() {
        let state = IntegrationAppState::default();
        assert!(matches!(
            state.decide(set(None)),
            Err(DomainError::Validation { field, .. }) if field == "client_secret"
        ));
        let first = state.decide(set(Some("tsr:v1:a"))).unwrap();
        let state = IntegrationAppState::replay(&first);
        assert!(state.decide(set(None)).unwrap().is_empty());
        let app = state.app.unwrap();
        assert_eq!(app.sealed_client_secret, "tsr:v1:a");
    }

    #[test]
    fn removing_an_absent_app_is_not_found_and_bad_scopes_are_refused() {
        let state = IntegrationAppState::default();
        assert_eq!(
            state.decide(IntegrationAppCommand::Remove),
            Err(DomainError::NotFound)
        );
        let refused = state.decide(IntegrationAppCommand::Set {
            client_id: "app".into(),
            sealed_client_secret: Some("tsr:v1:a".into()),
            scopes: Some(vec!["has space".into()]),
        });
        assert!(matches!(refused, Err(DomainError::Validation { .. })));
    }
}
