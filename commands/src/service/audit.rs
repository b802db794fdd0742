//! Audit entries products record about themselves (`audit.recorded`).
//!
//! Like issued tokens, an audit entry is a fact, not a decision: it is appended with expected
//! version "any" on the tenant's `{tenant}/audit` stream, without the per-stream queue. The
//! command checks the input's shape and that the tenant exists (from the log), nothing more.
//!
//! An entry must never pass for one of Tessera's own events: its action may not be the type of
//! an event Tessera records (`api_key.revoked`), and the actor it claims may not be of a kind
//! only Tessera authenticates (`system`, `api_key`, `client`).
//! Who appended it is the envelope's actor, which the request cannot set. Metadata fields named
//! like secrets ([`tessera_event_schemas::json::is_secret_field`]) are dropped before the entry
//! is appended: the log keeps no secret, and an appended event can never be taken back.

use tessera_domain::DomainError;
use tessera_domain::tenant::TenantState;
use tessera_event_schemas::events::AuditRecordedV1;
use tessera_event_schemas::{ActorKind, Event, EventMetadata, json, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::Kind;
use crate::CommandError;

/// Longest `action`.
pub const MAX_ACTION_LEN: usize = 128;
/// Longest of every other text field.
pub const MAX_FIELD_LEN: usize = 255;
/// Largest `metadata`, as compact JSON text.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Input of [`CommandService::record_audit`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordAudit {
    pub action: String,
    pub project_id: Option<Uuid>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub actor_type: Option<String>,
    pub target_id: Option<String>,
    pub target_type: Option<String>,
    pub target_name: Option<String>,
    pub product: Option<String>,
    /// Must be a JSON object (`None`: an empty one).
    pub metadata: Option<serde_json::Value>,
}

impl RecordAudit {
    /// Checks every field and builds the payload; the error names the first bad field.
    pub fn validate(self) -> Result<AuditRecordedV1, DomainError> {
        let action_ok = (1..=MAX_ACTION_LEN).contains(&self.action.len())
            && self.action.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b':' | b'-')
            });
        if !action_ok {
            return Err(DomainError::invalid(
                "action",
                format!("must be 1 to {MAX_ACTION_LEN} characters of a-z, 0-9, '.', '_', ':', '-'"),
            ));
        }
        if is_tessera_event_type(&self.action) {
            return Err(DomainError::invalid(
                "action",
                format!(
                    "{} is an event Tessera records itself; name the product's own action, \
                     such as invoice.paid",
                    self.action
                ),
            ));
        }
        for (field, value) in [
            ("actor_id", &self.actor_id),
            ("actor_name", &self.actor_name),
            ("actor_type", &self.actor_type),
            ("target_id", &self.target_id),
            ("target_type", &self.target_type),
            ("target_name", &self.target_name),
            ("product", &self.product),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FIELD_LEN)
            {
                return Err(DomainError::invalid(
                    field,
                    format!("must be at most {MAX_FIELD_LEN} characters"),
                ));
            }
        }
        if let Some(kind) = self
            .actor_type
            .as_deref()
            .filter(|k| is_reserved_actor_kind(k))
        {
            return Err(DomainError::invalid(
                "actor_type",
                format!(
                    "{kind:?} is a kind of actor only Tessera records; name whom the product says \
                     acted, such as user"
                ),
            ));
        }
        // A claimed actor is a kind and an id together, so that a claimed id can never be read
        // as the id of an actor of the appender's kind (an API key, say).
        match (&self.actor_type, &self.actor_id, &self.actor_name) {
            (Some(_), None, _) | (None, None, Some(_)) => {
                return Err(DomainError::invalid(
                    "actor_id",
                    "is required with actor_type or actor_name",
                ));
            }
            (None, Some(_), _) => {
                return Err(DomainError::invalid(
                    "actor_type",
                    "is required with actor_id",
                ));
            }
            _ => {}
        }
        let mut metadata = match self.metadata {
            None => serde_json::Value::Object(serde_json::Map::new()),
            Some(value @ serde_json::Value::Object(_)) => value,
            Some(_) => return Err(DomainError::invalid("metadata", "must be a JSON object")),
        };
        json::strip_secrets(&mut metadata);
        let metadata_json = serde_json::to_string(&metadata)
            .map_err(|e| DomainError::invalid("metadata", e.to_string()))?;
        if metadata_json.len() > MAX_METADATA_BYTES {
            return Err(DomainError::invalid(
                "metadata",
                format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
            ));
        }
        Ok(AuditRecordedV1 {
            action: self.action,
            project_id: self.project_id,
            actor_id: self.actor_id,
            actor_name: self.actor_name,
            actor_type: self.actor_type,
            target_id: self.target_id,
            target_type: self.target_type,
            target_name: self.target_name,
            product: self.product,
            metadata_json,
        })
    }
}

/// Whether `action` is the type of an event Tessera records itself (every type of the
/// registry, so a type added later is covered the day it is added).
fn is_tessera_event_type(action: &str) -> bool {
    Event::current_types()
        .iter()
        .any(|(event_type, _)| *event_type == action)
}

/// Whether `kind` names, in any case or word style (`API-Key`, `apiKey`), a kind of actor only
/// Tessera authenticates: the system itself, an API key, an OAuth client.
fn is_reserved_actor_kind(kind: &str) -> bool {
    let style_free = |text: &str| -> String {
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let kind = style_free(kind);
    [ActorKind::System, ActorKind::ApiKey, ActorKind::Client]
        .iter()
        .any(|reserved| style_free(reserved.as_str()) == kind)
}

impl CommandService {
    /// Validates `input` and appends it as `audit.recorded` on `{tenant}/audit`. Returns the
    /// event's global position once it is durable. A tenant that does not exist is
    /// [`CommandError::NotFound`]; nothing is appended on any error.
    pub async fn record_audit(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: RecordAudit,
    ) -> Result<u64, CommandError> {
        let payload = input.validate()?;
        if self.load_tenant(tenant_id).await?.tenant.is_none() {
            return Err(CommandError::not_found(TenantState::KIND, tenant_id));
        }
        self.record(
            meta,
            tenant_id,
            streams::audit(tenant_id),
            Event::AuditRecorded(payload),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> RecordAudit {
        RecordAudit {
            action: "invoice.paid".into(),
            metadata: Some(serde_json::json!({"amount": 12})),
            ..RecordAudit::default()
        }
    }

    fn field_of(input: RecordAudit) -> Option<String> {
        match input.validate() {
            Err(DomainError::Validation { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn a_valid_entry_keeps_its_metadata_as_json_text() {
        let payload = valid().validate().unwrap();
        assert_eq!(payload.metadata_json, r#"{"amount":12}"#);
        let empty = RecordAudit {
            metadata: None,
            ..valid()
        };
        assert_eq!(empty.validate().unwrap().metadata_json, "{}");
    }

    #[test]
    fn an_entry_cannot_pass_for_one_of_tessera_s_own_events() {
        for action in [
            "api_key.revoked",
            "tenant.suspended",
            "token.issued",
            "oauth_client.registered",
            "reservation.claimed",
            "audit.recorded",
        ] {
            let input = RecordAudit {
                action: action.into(),
                ..valid()
            };
            assert_eq!(field_of(input).as_deref(), Some("action"), "{action}");
        }
        for action in [
            "invoice.paid",
            "tenants.exported",
            "api_keys.listed",
            "user.login",
        ] {
            let input = RecordAudit {
                action: action.into(),
                ..valid()
            };
            assert!(input.validate().is_ok(), "{action}");
        }
        for kind in [
            "system", "SYSTEM", " System ", "api_key", "API-Key", "apiKey", "client",
        ] {
            let input = RecordAudit {
                actor_id: Some("tessera".into()),
                actor_type: Some(kind.into()),
                ..valid()
            };
            assert_eq!(field_of(input).as_deref(), Some("actor_type"), "{kind}");
        }
        let user = RecordAudit {
            actor_id: Some("user-7".into()),
            actor_type: Some("user".into()),
            actor_name: Some("Ada".into()),
            ..valid()
        };
        assert!(user.validate().is_ok());
    }

    #[test]
    fn a_claimed_actor_is_a_kind_and_an_id_together() {
        let claim = |actor_type: Option<&str>, actor_id: Option<&str>, actor_name: Option<&str>| {
            field_of(RecordAudit {
                actor_type: actor_type.map(str::to_owned),
                actor_id: actor_id.map(str::to_owned),
                actor_name: actor_name.map(str::to_owned),
                ..valid()
            })
        };
        assert_eq!(
            claim(None, Some("u-1"), None).as_deref(),
            Some("actor_type")
        );
        assert_eq!(claim(Some("user"), None, None).as_deref(), Some("actor_id"));
        assert_eq!(claim(None, None, Some("Ada")).as_deref(), Some("actor_id"));
        assert_eq!(claim(None, None, None), None);
        assert_eq!(claim(Some("user"), Some("u-1"), None), None);
    }

    #[test]
    fn metadata_loses_its_secret_fields_before_it_is_recorded() {
        let input = RecordAudit {
            metadata: Some(serde_json::json!({
                "amount": 12,
                "apiKey": "tsr_x",
                "headers": [{"Authorization": "Bearer x", "accept": "*/*"}],
                "token_type": "Bearer",
            })),
            ..valid()
        };
        assert_eq!(
            input.validate().unwrap().metadata_json,
            r#"{"amount":12,"headers":[{"accept":"*/*"}],"token_type":"Bearer"}"#
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        for action in ["", "Invoice.Paid", "a b", "é", &"a".repeat(129)] {
            let input = RecordAudit {
                action: action.into(),
                ..valid()
            };
            assert_eq!(field_of(input).as_deref(), Some("action"), "{action:?}");
        }
        assert!(
            RecordAudit {
                action: "a".repeat(128),
                ..valid()
            }
            .validate()
            .is_ok()
        );
        let long = Some("x".repeat(256));
        assert_eq!(
            field_of(RecordAudit {
                target_name: long.clone(),
                ..valid()
            })
            .as_deref(),
            Some("target_name")
        );
        assert_eq!(
            field_of(RecordAudit {
                product: long,
                ..valid()
            })
            .as_deref(),
            Some("product")
        );
        assert_eq!(
            field_of(RecordAudit {
                metadata: Some(serde_json::json!([1, 2])),
                ..valid()
            })
            .as_deref(),
            Some("metadata")
        );
        assert_eq!(
            field_of(RecordAudit {
                metadata: Some(serde_json::json!({"blob": "x".repeat(16 * 1024)})),
                ..valid()
            })
            .as_deref(),
            Some("metadata")
        );
    }
}
