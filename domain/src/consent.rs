//! The consents aggregate: what one person allowed each client, on `{tenant}/consents/{user}`.
//!
//! A consent is a decision on the log (ADR 0003): `consent.granted` adds scopes to what a
//! client was allowed, `consent.revoked` withdraws all of them. Both are decided from the
//! stream's state, so two concurrent grants of the same scopes append one event between them
//! (the second, retried, finds them allowed and changes nothing).
//!
//! # Rules
//! - **Grant**: at least one scope; only the scopes not yet allowed are recorded; a grant of
//!   scopes all already allowed changes nothing.
//! - **Revoke**: only a client that has a consent (`NotFound` otherwise).

use std::collections::BTreeMap;

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{ConsentGrantedV1, ConsentRevokedV1};

use crate::{Aggregate, DomainError};

/// What one client was allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientConsent {
    /// The scopes allowed, in the order they were first granted.
    pub scopes: Vec<String>,
}

/// A person's consents, by client id. `Default` is a person who allowed nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentsState {
    pub clients: BTreeMap<String, ClientConsent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsentCommand {
    /// Allow `client_id` these scopes, in addition to what it was allowed before.
    Grant {
        client_id: String,
        scopes: Vec<String>,
    },
    /// Withdraw everything `client_id` was allowed.
    Revoke { client_id: String },
}

impl ConsentsState {
    /// The scopes of `requested` that `client_id` was not allowed yet, in the order requested.
    pub fn missing(&self, client_id: &str, requested: &[String]) -> Vec<String> {
        let allowed = self.clients.get(client_id);
        let mut missing: Vec<String> = Vec::new();
        for scope in requested {
            let known = allowed.is_some_and(|consent| consent.scopes.contains(scope));
            if !known && !missing.contains(scope) {
                missing.push(scope.clone());
            }
        }
        missing
    }
}

impl Aggregate for ConsentsState {
    type Command = ConsentCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::ConsentGranted(e) => {
                let consent = self.clients.entry(e.client_id.clone()).or_default();
                for scope in &e.scopes {
                    if !consent.scopes.contains(scope) {
                        consent.scopes.push(scope.clone());
                    }
                }
            }
            Event::ConsentRevoked(e) => {
                self.clients.remove(&e.client_id);
            }
            _ => {}
        }
    }

    fn decide(&self, command: ConsentCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            ConsentCommand::Grant { client_id, scopes } => {
                if scopes.is_empty() {
                    return Err(DomainError::invalid(
                        "scope",
                        "a consent allows at least one scope",
                    ));
                }
                let missing = self.missing(&client_id, &scopes);
                if missing.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![Event::ConsentGranted(ConsentGrantedV1 {
                    client_id,
                    scopes: missing,
                })])
            }
            ConsentCommand::Revoke { client_id } => {
                if !self.clients.contains_key(&client_id) {
                    return Err(DomainError::NotFound);
                }
                Ok(vec![Event::ConsentRevoked(ConsentRevokedV1 { client_id })])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn granted(client: &str, scopes: &[&str]) -> Event {
        Event::ConsentGranted(ConsentGrantedV1 {
            client_id: client.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn grant(client: &str, scopes: &[&str]) -> ConsentCommand {
        ConsentCommand::Grant {
            client_id: client.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_first_grant_records_every_scope() {
        let events = given::<ConsentsState>([])
            .when(grant("app", &["openid", "email"]))
            .unwrap();
        assert_eq!(events, vec![granted("app", &["openid", "email"])]);
    }

    #[test]
    fn a_grant_records_only_the_scopes_not_yet_allowed() {
        let events = given::<ConsentsState>([granted("app", &["openid"])])
            .when(grant("app", &["openid", "profile", "profile"]))
            .unwrap();
        assert_eq!(events, vec![granted("app", &["profile"])]);
    }

    #[test]
    fn a_grant_of_allowed_scopes_changes_nothing() {
        let events = given::<ConsentsState>([granted("app", &["openid", "email"])])
            .when(grant("app", &["email"]))
            .unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn a_grant_without_scopes_is_refused() {
        let error = given::<ConsentsState>([])
            .when(grant("app", &[]))
            .unwrap_err();
        assert!(matches!(error, DomainError::Validation { .. }));
    }

    #[test]
    fn consents_are_per_client() {
        let state = ConsentsState::replay(&[granted("a", &["openid"])]);
        assert_eq!(state.missing("b", &["openid".into()]), vec!["openid"]);
        assert!(state.missing("a", &["openid".into()]).is_empty());
    }

    #[test]
    fn revoking_a_client_forgets_its_scopes() {
        let history = [
            granted("app", &["openid"]),
            Event::ConsentRevoked(ConsentRevokedV1 {
                client_id: "app".into(),
            }),
        ];
        let state = ConsentsState::replay(&history);
        assert!(state.clients.is_empty());
        let events = given::<ConsentsState>(history)
            .when(grant("app", &["openid"]))
            .unwrap();
        assert_eq!(events, vec![granted("app", &["openid"])]);
    }

    #[test]
    fn revoking_a_client_without_a_consent_is_not_found() {
        let error = given::<ConsentsState>([granted("other", &["openid"])])
            .when(ConsentCommand::Revoke {
                client_id: "app".into(),
            })
            .unwrap_err();
        assert_eq!(error, DomainError::NotFound);
    }
}
