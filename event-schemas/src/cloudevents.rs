//! The CloudEvents 1.0 form of a recorded event (JSON event format, structured mode): what the
//! Kafka audit topics carry.
//!
//! | attribute | value |
//! |---|---|
//! | `id` | the event id (a UUIDv7), unique across the log: consumers deduplicate on it |
//! | `source` | `urn:tessera:tenant:{tenant id}` |
//! | `type` | `io.tessera.` + the event type, e.g. `io.tessera.tenant.created` |
//! | `subject` | the stream id, e.g. `{tenant}/oauth-client/{client}` |
//! | `time` | when the log recorded the event (RFC 3339, UTC) |
//! | `datacontenttype` | `application/json` |
//! | `dataschema` | `urn:tessera:schema:{type}.v{n}`: `event-schemas/schemas/{type}.v{n}.json` |
//! | `data` | the payload's public JSON form ([`crate::json::public_data`]) |
//!
//! Extensions (lowercase alphanumeric names, as the specification requires): `position` (the
//! global position) and `streamversion`, as decimal strings because CloudEvents integers are
//! 32-bit; `tenantid`, `correlationid`, `causationid` (when there is one), `actorkind` and
//! `actorid`.

use serde::Serialize;
use uuid::Uuid;

use crate::envelope::RecordedEvent;
use crate::events::Event;
use crate::json::public_data;

/// Prefix of every CloudEvents `type` Tessera emits.
pub const TYPE_PREFIX: &str = "io.tessera.";

/// One event in the CloudEvents JSON format.
#[derive(Clone, Debug, Serialize)]
pub struct CloudEvent<'a> {
    pub specversion: &'static str,
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: &'a str,
    pub time: String,
    pub datacontenttype: &'static str,
    pub dataschema: String,
    pub position: String,
    pub streamversion: String,
    pub tenantid: Uuid,
    pub correlationid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causationid: Option<Uuid>,
    pub actorkind: &'static str,
    pub actorid: &'a str,
    pub data: serde_json::Value,
}

impl<'a> CloudEvent<'a> {
    /// `event` is `recorded`'s decoded payload.
    pub fn new(recorded: &'a RecordedEvent, event: &Event) -> Self {
        let e = &recorded.envelope;
        Self {
            specversion: "1.0",
            id: e.event_id,
            source: format!("urn:tessera:tenant:{}", e.tenant_id),
            event_type: format!("{TYPE_PREFIX}{}", e.event_type),
            subject: &e.stream_id,
            time: e.recorded_at.to_rfc3339(),
            datacontenttype: "application/json",
            dataschema: format!("urn:tessera:schema:{}.v{}", e.event_type, e.schema_version),
            position: e.global_position.to_string(),
            streamversion: e.stream_version.to_string(),
            tenantid: e.tenant_id,
            correlationid: &e.correlation_id,
            causationid: e.causation_id,
            actorkind: e.actor.kind.as_str(),
            actorid: &e.actor.id,
            data: public_data(event),
        }
    }

    /// The structured-mode message value.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Plain structs and a JSON value: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::events::samples;
    use crate::primitives::Timestamp;

    fn recorded(event: &Event) -> RecordedEvent {
        Envelope::builder()
            .event_id(Uuid::from_u128(7))
            .stream("t/tenant")
            .stream_version(3)
            .position(5_000_000_000)
            .tenant(Uuid::from_u128(9))
            .recorded_at(Timestamp::parse_rfc3339("2026-03-14T14:03:00Z").unwrap())
            .correlation_id("corr-1")
            .recorded(event)
    }

    #[test]
    fn carries_the_required_attributes_and_the_position_as_an_extension() {
        let event = samples::current().remove(0);
        let recorded = recorded(&event);
        let json: serde_json::Value =
            serde_json::from_slice(&CloudEvent::new(&recorded, &event).to_json_bytes()).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["id"], Uuid::from_u128(7).to_string());
        assert_eq!(json["type"], "io.tessera.tenant.created");
        assert_eq!(
            json["source"],
            format!("urn:tessera:tenant:{}", Uuid::from_u128(9))
        );
        assert_eq!(json["subject"], "t/tenant");
        assert!(
            json["time"]
                .as_str()
                .unwrap()
                .starts_with("2026-03-14T14:03:00")
        );
        assert_eq!(json["dataschema"], "urn:tessera:schema:tenant.created.v1");
        // Beyond 32 bits, hence a string.
        assert_eq!(json["position"], "5000000000");
        assert_eq!(json["streamversion"], "3");
        assert!(json.get("causationid").is_none());
        assert_eq!(json["data"], public_data(&event));
    }

    #[test]
    fn never_carries_key_material_or_secret_hashes() {
        for event in samples::current() {
            let recorded = recorded(&event);
            let text =
                String::from_utf8(CloudEvent::new(&recorded, &event).to_json_bytes()).unwrap();
            for field in ["sealed_private_key", "secret_hash", "token_hash"] {
                assert!(
                    !text.contains(field),
                    "{} leaks {field}: {text}",
                    event.event_type()
                );
            }
        }
    }
}
