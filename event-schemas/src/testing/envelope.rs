//! [`EnvelopeBuilder`]: an [`Envelope`] for tests, without spelling out its sixteen fields.

use uuid::Uuid;

use crate::envelope::{Actor, Envelope, EventMetadata, RecordedEvent};
use crate::events::Event;
use crate::primitives::{Hash32, Timestamp};

/// Builds an [`Envelope`] (or a [`RecordedEvent`]) for a test. Every field starts plain: nil
/// ids, an empty stream id, type and correlation id, version, position and schema version 1,
/// time 0, the system actor, no causation, IP or user agent, zero hashes. A test sets what it
/// is about.
#[derive(Clone, Debug)]
pub struct EnvelopeBuilder(Envelope);

impl Envelope {
    /// A builder for a test envelope (see [`EnvelopeBuilder`]).
    pub fn builder() -> EnvelopeBuilder {
        EnvelopeBuilder(Envelope {
            event_id: Uuid::nil(),
            stream_id: String::new(),
            stream_version: 1,
            global_position: 1,
            tenant_id: Uuid::nil(),
            event_type: String::new(),
            schema_version: 1,
            recorded_at: Timestamp::from_micros(0),
            actor: Actor::system(),
            correlation_id: String::new(),
            causation_id: None,
            source_ip: None,
            user_agent: None,
            prev_hash: Hash32::ZERO,
            hash: Hash32::ZERO,
            log_hash: Hash32::ZERO,
        })
    }
}

impl EnvelopeBuilder {
    pub fn event_id(mut self, event_id: Uuid) -> Self {
        self.0.event_id = event_id;
        self
    }

    pub fn stream(mut self, stream_id: impl Into<String>) -> Self {
        self.0.stream_id = stream_id.into();
        self
    }

    pub fn stream_version(mut self, stream_version: u64) -> Self {
        self.0.stream_version = stream_version;
        self
    }

    pub fn position(mut self, global_position: u64) -> Self {
        self.0.global_position = global_position;
        self
    }

    pub fn tenant(mut self, tenant_id: Uuid) -> Self {
        self.0.tenant_id = tenant_id;
        self
    }

    /// The type and schema version of `event`.
    pub fn event(self, event: &Event) -> Self {
        self.event_type(event.event_type(), event.schema_version())
    }

    pub fn event_type(mut self, event_type: impl Into<String>, schema_version: u16) -> Self {
        self.0.event_type = event_type.into();
        self.0.schema_version = schema_version;
        self
    }

    pub fn recorded_at(mut self, recorded_at: Timestamp) -> Self {
        self.0.recorded_at = recorded_at;
        self
    }

    pub fn actor(mut self, actor: Actor) -> Self {
        self.0.actor = actor;
        self
    }

    pub fn correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.0.correlation_id = correlation_id.into();
        self
    }

    pub fn source_ip(mut self, source_ip: impl Into<String>) -> Self {
        self.0.source_ip = Some(source_ip.into());
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.0.user_agent = Some(user_agent.into());
        self
    }

    /// The actor, correlation and causation ids, source IP and user agent of `metadata`.
    pub fn metadata(mut self, metadata: EventMetadata) -> Self {
        self.0.actor = metadata.actor;
        self.0.correlation_id = metadata.correlation_id;
        self.0.causation_id = metadata.causation_id;
        self.0.source_ip = metadata.source_ip;
        self.0.user_agent = metadata.user_agent;
        self
    }

    pub fn build(self) -> Envelope {
        self.0
    }

    /// `event` recorded under this envelope (whose type and schema version become `event`'s).
    pub fn recorded(self, event: &Event) -> RecordedEvent {
        RecordedEvent {
            envelope: self.event(event).build(),
            payload: event.encode(),
        }
    }
}
