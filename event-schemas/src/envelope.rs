//! The envelope around every stored event, and the shapes events take on the way in and out.
//!
//! A command handler builds [`ProposedEvent`]s (payload already encoded, ids and time chosen by
//! the caller). The log assigns the stream version, the global position and the three hashes, and
//! hands back [`RecordedEvent`]s: an [`Envelope`] plus the payload bytes exactly as stored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::{DecodeError, Event};
use crate::primitives::{Hash32, Timestamp};

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub kind: ActorKind,
    /// The principal's id: an API key id, a client id, a user id, or `tessera` for the server.
    pub id: String,
    /// A human-readable name where one is known (an API key's name, a user's display name).
    pub name: Option<String>,
}

impl Actor {
    /// The server itself, acting on its own schedule (bootstrap, scheduled transitions).
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: "tessera".to_owned(),
            name: None,
        }
    }
}

/// The kinds of principal. Stored as a string column next to the payload; never reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    System,
    ApiKey,
    Client,
    User,
    Product,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::System => "system",
            ActorKind::ApiKey => "api_key",
            ActorKind::Client => "client",
            ActorKind::User => "user",
            ActorKind::Product => "product",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "system" => ActorKind::System,
            "api_key" => ActorKind::ApiKey,
            "client" => ActorKind::Client,
            "user" => ActorKind::User,
            "product" => ActorKind::Product,
            _ => return None,
        })
    }
}

/// Request context carried onto every event a command produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMetadata {
    pub actor: Actor,
    /// The caller's `X-Correlation-ID`, or one the server generated.
    pub correlation_id: String,
    /// The command (or event) that caused this one.
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl EventMetadata {
    /// Metadata for work the server does on its own behalf.
    pub fn system(correlation_id: impl Into<String>) -> Self {
        Self {
            actor: Actor::system(),
            correlation_id: correlation_id.into(),
            causation_id: None,
            source_ip: None,
            user_agent: None,
        }
    }
}

/// An event on its way into the log: everything but what the log assigns.
#[derive(Clone, Debug, PartialEq)]
pub struct ProposedEvent {
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: &'static str,
    pub schema_version: u16,
    pub recorded_at: Timestamp,
    pub metadata: EventMetadata,
    /// The postcard encoding of the payload.
    pub payload: Vec<u8>,
}

impl ProposedEvent {
    /// Encodes `event` and wraps it with the given identity, time and metadata.
    pub fn new(
        event: &Event,
        event_id: Uuid,
        tenant_id: Uuid,
        recorded_at: Timestamp,
        metadata: EventMetadata,
    ) -> Self {
        Self {
            event_id,
            tenant_id,
            event_type: event.event_type(),
            schema_version: event.schema_version(),
            recorded_at,
            metadata,
            payload: event.encode(),
        }
    }
}

/// Everything stored next to a payload. The log fills in position, version and hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: Uuid,
    pub stream_id: String,
    /// 1 for the first event of a stream.
    pub stream_version: u64,
    /// 1 for the first event of the log; dense and in commit order.
    pub global_position: u64,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: Timestamp,
    pub actor: Actor,
    pub correlation_id: String,
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The `hash` of the previous event in the same stream; zero for a stream's first event.
    pub prev_hash: Hash32,
    /// SHA-256 over this envelope (all fields above) and the payload bytes. See [`crate::hash`].
    pub hash: Hash32,
    /// Chains every event to the one before it in global order: proves nothing was deleted,
    /// inserted or reordered across streams.
    pub log_hash: Hash32,
}

/// An event as read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    pub envelope: Envelope,
    pub payload: Vec<u8>,
}

impl RecordedEvent {
    /// Decodes (and upcasts) the payload to the current version of its event type.
    pub fn decode(&self) -> Result<Event, DecodeError> {
        Event::decode(
            &self.envelope.event_type,
            self.envelope.schema_version,
            &self.payload,
        )
    }

    /// Recomputes this event's hash from its envelope and payload.
    pub fn computed_hash(&self) -> Hash32 {
        crate::hash::event_hash(&self.envelope, &self.payload)
    }
}
