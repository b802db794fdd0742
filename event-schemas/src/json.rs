//! The JSON form of a recorded event, for consumers outside Rust (Kafka, exports, the audit API).
//!
//! The envelope's fields appear at the top level, the payload under `data`, and the payload's
//! original postcard bytes are not included: `data` plus the envelope is what consumers read,
//! while exports that must be re-verified carry the raw payload separately.

use serde::Serialize;
use uuid::Uuid;

use crate::envelope::{Actor, RecordedEvent};
use crate::events::{DecodeError, Event};
use crate::primitives::{Hash32, Timestamp};

/// A recorded event as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct EventJson {
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub global_position: u64,
    pub tenant_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: Timestamp,
    pub actor: Actor,
    pub correlation_id: String,
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub log_hash: Hash32,
    pub data: serde_json::Value,
}

impl EventJson {
    pub fn from_recorded(recorded: &RecordedEvent) -> Result<Self, DecodeError> {
        let event = recorded.decode()?;
        Ok(Self::new(recorded, &event))
    }

    pub fn new(recorded: &RecordedEvent, event: &Event) -> Self {
        let e = &recorded.envelope;
        Self {
            event_id: e.event_id,
            stream_id: e.stream_id.clone(),
            stream_version: e.stream_version,
            global_position: e.global_position,
            tenant_id: e.tenant_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            recorded_at: e.recorded_at,
            actor: e.actor.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id,
            source_ip: e.source_ip.clone(),
            user_agent: e.user_agent.clone(),
            prev_hash: e.prev_hash,
            hash: e.hash,
            log_hash: e.log_hash,
            data: event.data_json(),
        }
    }
}

/// The file name under `event-schemas/schemas/` for an event type's JSON Schema.
pub fn schema_file_name(event_type: &str, schema_version: u16) -> String {
    format!("{event_type}.v{schema_version}.json")
}
