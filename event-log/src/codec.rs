//! The mapping between a [`RecordedEvent`] and the columns of the `events` table, shared by
//! both backends so that they store and read back exactly the same thing.
//!
//! Unsigned counters are stored as signed 64-bit integers (neither SQLite nor PostgreSQL has an
//! unsigned type); a value that does not fit is refused on the way in and reported as corrupt on
//! the way out, never wrapped.

use tessera_event_schemas::{Actor, ActorKind, Envelope, Hash32, RecordedEvent, Timestamp};
use uuid::Uuid;

use crate::LogError;

/// The `events` columns in the order every backend selects them.
macro_rules! event_columns {
    () => {
        "global_position, event_id, stream_id, stream_version, tenant_id, event_type, \
         schema_version, recorded_at, actor_kind, actor_id, actor_name, correlation_id, \
         causation_id, source_ip, user_agent, payload, prev_hash, hash, log_hash"
    };
}
pub(crate) use event_columns;

/// Decodes one `events` row (any sqlx row type, selected with [`event_columns!`]) into a
/// [`RecordedEvent`].
///
/// Columns are read by position, in [`event_columns!`] order: a by-name lookup per column per
/// row was a measurable share of a page read. Hashes and the actor kind are decoded as borrowed
/// slices, so the only allocations are the fields the [`RecordedEvent`] owns.
macro_rules! event_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        (|| -> Result<$crate::codec::StoredRow<'_>, sqlx::Error> {
            Ok($crate::codec::StoredRow {
                global_position: row.try_get(0)?,
                event_id: row.try_get(1)?,
                stream_id: row.try_get(2)?,
                stream_version: row.try_get(3)?,
                tenant_id: row.try_get(4)?,
                event_type: row.try_get(5)?,
                schema_version: row.try_get(6)?,
                recorded_at: row.try_get(7)?,
                actor_kind: row.try_get(8)?,
                actor_id: row.try_get(9)?,
                actor_name: row.try_get(10)?,
                correlation_id: row.try_get(11)?,
                causation_id: row.try_get(12)?,
                source_ip: row.try_get(13)?,
                user_agent: row.try_get(14)?,
                payload: row.try_get(15)?,
                prev_hash: row.try_get(16)?,
                hash: row.try_get(17)?,
                log_hash: row.try_get(18)?,
            })
        })()
        .map_err(|e| $crate::LogError::Corrupt(e.to_string()))
        .and_then($crate::codec::StoredRow::into_recorded)
    }};
}
pub(crate) use event_row;

/// One `events` row as read back: owned where the [`RecordedEvent`] keeps the value, borrowed
/// from the database row where it is only parsed or copied into a fixed-size array.
pub(crate) struct StoredRow<'r> {
    pub global_position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: i64,
    pub actor_kind: &'r str,
    pub actor_id: String,
    pub actor_name: Option<String>,
    pub correlation_id: String,
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub payload: Vec<u8>,
    pub prev_hash: &'r [u8],
    pub hash: &'r [u8],
    pub log_hash: &'r [u8],
}

impl StoredRow<'_> {
    pub fn into_recorded(self) -> Result<RecordedEvent, LogError> {
        let position = self.global_position;
        let corrupt = |what: &str| LogError::Corrupt(format!("event at {position}: bad {what}"));
        let envelope = Envelope {
            event_id: self.event_id,
            stream_id: self.stream_id,
            stream_version: from_i64(self.stream_version)
                .ok_or_else(|| corrupt("stream_version"))?,
            global_position: from_i64(position).ok_or_else(|| corrupt("global_position"))?,
            tenant_id: self.tenant_id,
            event_type: self.event_type,
            schema_version: u16::try_from(self.schema_version)
                .map_err(|_| corrupt("schema_version"))?,
            recorded_at: Timestamp::from_micros(self.recorded_at),
            actor: Actor {
                kind: ActorKind::parse(self.actor_kind).ok_or_else(|| corrupt("actor_kind"))?,
                id: self.actor_id,
                name: self.actor_name,
            },
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            source_ip: self.source_ip,
            user_agent: self.user_agent,
            prev_hash: Hash32::from_slice(self.prev_hash).ok_or_else(|| corrupt("prev_hash"))?,
            hash: Hash32::from_slice(self.hash).ok_or_else(|| corrupt("hash"))?,
            log_hash: Hash32::from_slice(self.log_hash).ok_or_else(|| corrupt("log_hash"))?,
        };
        Ok(RecordedEvent {
            envelope,
            payload: self.payload,
        })
    }
}

/// One `events` row in storage types, as the write path binds it.
pub(crate) struct EventRow {
    pub global_position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: i64,
    pub actor_kind: &'static str,
    pub actor_id: String,
    pub actor_name: Option<String>,
    pub correlation_id: String,
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub payload: Vec<u8>,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub log_hash: Hash32,
}

impl EventRow {
    /// The storage form of an event the group-commit planner produced. Takes the event by value:
    /// the planner's copy is not needed after the write, and moving its strings and payload
    /// avoids copying every byte of the batch once more.
    pub fn from_recorded(event: RecordedEvent) -> Result<Self, String> {
        let RecordedEvent {
            envelope: e,
            payload,
        } = event;
        Ok(Self {
            global_position: to_i64(e.global_position)?,
            event_id: e.event_id,
            stream_id: e.stream_id,
            stream_version: to_i64(e.stream_version)?,
            tenant_id: e.tenant_id,
            event_type: e.event_type,
            schema_version: i32::from(e.schema_version),
            recorded_at: e.recorded_at.as_micros(),
            actor_kind: e.actor.kind.as_str(),
            actor_id: e.actor.id,
            actor_name: e.actor.name,
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
            payload,
            prev_hash: e.prev_hash,
            hash: e.hash,
            log_hash: e.log_hash,
        })
    }
}

pub(crate) fn to_i64(value: u64) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{value} does not fit a signed 64-bit column"))
}

pub(crate) fn from_i64(value: i64) -> Option<u64> {
    u64::try_from(value).ok()
}

/// A stored counter as `u64`, or a corruption error naming it.
pub(crate) fn stored_u64(value: i64, what: &str) -> Result<u64, String> {
    from_i64(value).ok_or_else(|| format!("stored {what} {value} is negative"))
}

/// A stored 32-byte hash, or a corruption error naming it.
pub(crate) fn stored_hash(bytes: &[u8], what: &str) -> Result<Hash32, String> {
    Hash32::from_slice(bytes).ok_or_else(|| format!("stored {what} is not 32 bytes"))
}

/// A limit as an SQL `LIMIT` value.
pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// An offset (`after_*`) as an SQL value; anything beyond `i64::MAX` matches nothing anyway.
pub(crate) fn after(after: u64) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX)
}
