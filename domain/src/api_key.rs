//! The API key aggregate: issue once, revoke once.
//!
//! One stream per key (`{tenant}/api-key/{key}`). The plaintext never reaches this crate: the
//! command carries only the keyed hash and a short prefix to recognise the key by. Whether the
//! owning tenant accepts new keys is checked by the handler with
//! [`crate::tenant::TenantState::require_open`]. Pure: no clock (`now` comes in the command).
//!
//! # Rules
//! - A key is issued once (else it already exists). Its name is 1 to 100 characters once
//!   trimmed; it has at most 50 distinct scopes, each 1 to 64 characters of `[a-z0-9:._-]`;
//!   the product, if any, is 1 to 64 characters of `[a-z0-9_-]`; an expiry must be in the
//!   future.
//! - Revoking an unknown key is not found; revoking a revoked key is a conflict.

use tessera_event_schemas::events::{ApiKeyIssuedV1, ApiKeyRevokedV1};
use tessera_event_schemas::{Event, Hash32, Timestamp};
use uuid::Uuid;

use crate::validate;
use crate::{Aggregate, DomainError};

/// An issued key, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub key_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub secret_hash: Hash32,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    pub revoked: bool,
    pub revoke_reason: Option<String>,
}

/// The API key aggregate's state. `Default` is a key that was never issued.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeyState {
    pub key: Option<ApiKey>,
}

/// Everything needed to issue a key; the secret is generated and hashed by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    pub key_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub secret_hash: Hash32,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    pub now: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiKeyCommand {
    Issue(Box<NewApiKey>),
    Revoke { reason: Option<String> },
}

impl Aggregate for ApiKeyState {
    type Command = ApiKeyCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::ApiKeyIssued(e) => {
                self.key = Some(ApiKey {
                    key_id: e.key_id,
                    name: e.name.clone(),
                    prefix: e.prefix.clone(),
                    secret_hash: *e.secret_hash.expose(),
                    scopes: e.scopes.clone(),
                    product: e.product.clone(),
                    expires_at: e.expires_at,
                    created_by: e.created_by.clone(),
                    revoked: false,
                    revoke_reason: None,
                });
            }
            Event::ApiKeyRevoked(e) => {
                if let Some(key) = self.key.as_mut() {
                    key.revoked = true;
                    key.revoke_reason.clone_from(&e.reason);
                }
            }
            _ => {}
        }
    }

    fn decide(&self, command: ApiKeyCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            ApiKeyCommand::Issue(new) => self.issue(*new),
            ApiKeyCommand::Revoke { reason } => self.revoke(reason),
        }
    }
}

impl ApiKeyState {
    fn issue(&self, new: NewApiKey) -> Result<Vec<Event>, DomainError> {
        if let Some(key) = &self.key {
            return Err(DomainError::AlreadyExists(format!(
                "api key {}",
                key.key_id
            )));
        }
        if new.key_id.is_nil() {
            return Err(DomainError::invalid("key_id", "must not be the nil UUID"));
        }
        let name = validate::display_text("name", &new.name, 100)?;
        if new.prefix.is_empty() || new.prefix.len() > 16 || !new.prefix.is_ascii() {
            return Err(DomainError::invalid(
                "prefix",
                "must be 1 to 16 ASCII characters",
            ));
        }
        if new.scopes.len() > validate::MAX_SCOPES {
            return Err(DomainError::invalid(
                "scopes",
                format!("at most {} scopes are allowed", validate::MAX_SCOPES),
            ));
        }
        for (index, scope) in new.scopes.iter().enumerate() {
            let field = format!("scopes[{index}]");
            validate::scope(&field, scope)?;
            if new.scopes[..index].contains(scope) {
                return Err(DomainError::invalid(
                    field,
                    format!("{scope:?} is listed twice"),
                ));
            }
        }
        if let Some(product) = &new.product {
            validate::identifier("product", product)?;
        }
        if new.expires_at.is_some_and(|at| at <= new.now) {
            return Err(DomainError::invalid("expires_at", "must be in the future"));
        }
        let created_by = validate::display_text("created_by", &new.created_by, 255)?;
        Ok(vec![Event::ApiKeyIssued(ApiKeyIssuedV1 {
            key_id: new.key_id,
            name,
            prefix: new.prefix,
            secret_hash: new.secret_hash.into(),
            scopes: new.scopes,
            product: new.product,
            expires_at: new.expires_at,
            created_by,
        })])
    }

    fn revoke(&self, reason: Option<String>) -> Result<Vec<Event>, DomainError> {
        let key = self.key.as_ref().ok_or(DomainError::NotFound)?;
        if key.revoked {
            return Err(DomainError::Conflict(format!(
                "api key {} is already revoked",
                key.key_id
            )));
        }
        let reason = reason
            .map(|text| validate::display_text("reason", &text, 1000))
            .transpose()?;
        Ok(vec![Event::ApiKeyRevoked(ApiKeyRevokedV1 { reason })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    const KEY: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00aa);
    const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

    fn new_key() -> NewApiKey {
        NewApiKey {
            key_id: KEY,
            name: " CI deploy ".into(),
            prefix: "tsr_abcdefgh".into(),
            secret_hash: Hash32([7; 32]),
            scopes: vec!["platform:admin".into(), "users.read".into()],
            product: Some("billing".into()),
            expires_at: Some(NOW.plus_seconds(3600)),
            created_by: "admin".into(),
            now: NOW,
        }
    }

    fn issued() -> Event {
        Event::ApiKeyIssued(ApiKeyIssuedV1 {
            key_id: KEY,
            name: "CI deploy".into(),
            prefix: "tsr_abcdefgh".into(),
            secret_hash: Hash32([7; 32]).into(),
            scopes: vec!["platform:admin".into(), "users.read".into()],
            product: Some("billing".into()),
            expires_at: Some(NOW.plus_seconds(3600)),
            created_by: "admin".into(),
        })
    }

    fn issue(new: NewApiKey) -> ApiKeyCommand {
        ApiKeyCommand::Issue(Box::new(new))
    }

    fn invalid_field(result: Result<Vec<Event>, DomainError>) -> Option<String> {
        match result {
            Err(DomainError::Validation { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn a_new_key_is_issued_with_a_trimmed_name() {
        assert_eq!(
            given::<ApiKeyState>([]).when(issue(new_key())),
            Ok(vec![issued()])
        );
    }

    #[test]
    fn a_key_is_issued_only_once() {
        assert!(matches!(
            given::<ApiKeyState>([issued()]).when(issue(new_key())),
            Err(DomainError::AlreadyExists(_))
        ));
    }

    #[test]
    fn invalid_issue_fields_are_named() {
        let state = given::<ApiKeyState>([]);
        let cases: Vec<(NewApiKey, &str)> = vec![
            (
                NewApiKey {
                    name: " ".into(),
                    ..new_key()
                },
                "name",
            ),
            (
                NewApiKey {
                    name: "x".repeat(101),
                    ..new_key()
                },
                "name",
            ),
            (
                NewApiKey {
                    scopes: vec!["ok".into(), "Not OK".into()],
                    ..new_key()
                },
                "scopes[1]",
            ),
            (
                NewApiKey {
                    scopes: vec!["a".into(), "a".into()],
                    ..new_key()
                },
                "scopes[1]",
            ),
            (
                NewApiKey {
                    scopes: (0..51).map(|i| format!("s{i}")).collect(),
                    ..new_key()
                },
                "scopes",
            ),
            (
                NewApiKey {
                    product: Some("Billing!".into()),
                    ..new_key()
                },
                "product",
            ),
            (
                NewApiKey {
                    expires_at: Some(NOW),
                    ..new_key()
                },
                "expires_at",
            ),
            (
                NewApiKey {
                    created_by: "".into(),
                    ..new_key()
                },
                "created_by",
            ),
        ];
        for (new, field) in cases {
            assert_eq!(
                invalid_field(state.when(issue(new))),
                Some(field.to_owned())
            );
        }
    }

    #[test]
    fn an_issued_key_is_revoked_once() {
        let revoked = Event::ApiKeyRevoked(ApiKeyRevokedV1 {
            reason: Some("leaked".into()),
        });
        assert_eq!(
            given::<ApiKeyState>([issued()]).when(ApiKeyCommand::Revoke {
                reason: Some("leaked".into())
            }),
            Ok(vec![revoked.clone()])
        );
        assert!(matches!(
            given::<ApiKeyState>([issued(), revoked]).when(ApiKeyCommand::Revoke { reason: None }),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn revoking_an_unknown_key_is_not_found() {
        assert_eq!(
            given::<ApiKeyState>([]).when(ApiKeyCommand::Revoke { reason: None }),
            Err(DomainError::NotFound)
        );
    }

    #[test]
    fn revocation_is_recorded_in_the_state() {
        let state = given::<ApiKeyState>([
            issued(),
            Event::ApiKeyRevoked(ApiKeyRevokedV1 { reason: None }),
        ])
        .state;
        assert_eq!(state.key.map(|key| key.revoked), Some(true));
    }
}
