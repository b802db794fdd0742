//! The mapping between a [`RecordedEvent`] and the columns of the `events` table, shared by
//! both backends so that they store and read back exactly the same thing.
//!
//! Unsigned counters are stored as signed 64-bit integers (neither SQLite nor PostgreSQL has an
//! unsigned type); a value that does not fit is refused on the way in and reported as corrupt on
//! the way out, never wrapped.

use tessera_event_schemas::primitives::canonical_uuid;
use tessera_event_schemas::streams::{subject_of, tenant_of};
use tessera_event_schemas::{Actor, ActorKind, Envelope, Hash32, RecordedEvent, Timestamp};
use uuid::Uuid;

use crate::LogError;

/// The `events` columns in the order every backend selects and inserts them. `stream` is the
/// stream's key in `streams`, where its id is stored once (see [`StoredRow`] for the columns
/// that may be left to the stream id).
macro_rules! event_columns {
    () => {
        "global_position, event_id, stream, stream_version, tenant_id, event_type, \
         schema_version, recorded_at, actor_kind, actor_id, actor_uuid, actor_name, \
         correlation_id, correlation_uuid, causation_id, source_ip, user_agent, payload, \
         prev_hash, hash, log_hash"
    };
}
pub(crate) use event_columns;

/// Decodes one `events` row (any sqlx row type, selected with [`event_columns!`]) of the
/// stream `$stream_id` into a [`RecordedEvent`].
///
/// Columns are read by position, in [`event_columns!`] order: a by-name lookup per column per
/// row was a measurable share of a page read. Hashes and the actor kind are decoded as borrowed
/// slices, so the only allocations are the fields the [`RecordedEvent`] owns.
macro_rules! event_row {
    ($row:expr, $stream_id:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        (|| -> Result<$crate::codec::StoredRow<'_>, sqlx::Error> {
            Ok($crate::codec::StoredRow {
                global_position: row.try_get(0)?,
                event_id: row.try_get(1)?,
                stream_id: $stream_id,
                stream_version: row.try_get(3)?,
                tenant_id: row.try_get(4)?,
                event_type: row.try_get(5)?,
                schema_version: row.try_get(6)?,
                recorded_at: row.try_get(7)?,
                actor_kind: row.try_get(8)?,
                actor_id: row.try_get(9)?,
                actor_uuid: row.try_get(10)?,
                actor_name: row.try_get(11)?,
                correlation_id: row.try_get(12)?,
                correlation_uuid: row.try_get(13)?,
                causation_id: row.try_get(14)?,
                source_ip: row.try_get(15)?,
                user_agent: row.try_get(16)?,
                payload: row.try_get(17)?,
                prev_hash: row.try_get(18)?,
                hash: row.try_get(19)?,
                log_hash: row.try_get(20)?,
            })
        })()
        .map_err(|e| $crate::LogError::Corrupt(e.to_string()))
        .and_then($crate::codec::StoredRow::into_recorded)
    }};
}
pub(crate) use event_row;

/// One `events` row as read back: owned where the [`RecordedEvent`] keeps the value, borrowed
/// from the database row where it is only parsed or copied into a fixed-size array.
///
/// Three envelope fields may be stored in a shorter form (see [`CompactIds`]), each rebuilt
/// here exactly as it was appended: the tenant (`None`: the tenant leading the stream id), the
/// actor id (as text, as a UUID, or neither: the principal the stream id names) and the
/// correlation id (as text or as a UUID).
pub(crate) struct StoredRow<'r> {
    pub global_position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub tenant_id: Option<Uuid>,
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: i64,
    pub actor_kind: &'r str,
    pub actor_id: Option<String>,
    pub actor_uuid: Option<Uuid>,
    pub actor_name: Option<String>,
    pub correlation_id: Option<String>,
    pub correlation_uuid: Option<Uuid>,
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
        let tenant_id = match self.tenant_id {
            Some(tenant_id) => tenant_id,
            None => tenant_of(&self.stream_id).ok_or_else(|| corrupt("implied tenant_id"))?,
        };
        let actor_id = match (self.actor_id, self.actor_uuid) {
            (Some(text), None) => text,
            (None, Some(id)) => hyphenated(id),
            (None, None) => subject_of(&self.stream_id)
                .ok_or_else(|| corrupt("implied actor_id"))?
                .to_owned(),
            (Some(_), Some(_)) => return Err(corrupt("actor_id and actor_uuid both set")),
        };
        let correlation_id = match (self.correlation_id, self.correlation_uuid) {
            (Some(text), None) => text,
            (None, Some(id)) => hyphenated(id),
            _ => return Err(corrupt("correlation_id and correlation_uuid")),
        };
        let envelope = Envelope {
            event_id: self.event_id,
            stream_id: self.stream_id,
            stream_version: from_i64(self.stream_version)
                .ok_or_else(|| corrupt("stream_version"))?,
            global_position: from_i64(position).ok_or_else(|| corrupt("global_position"))?,
            tenant_id,
            event_type: self.event_type,
            schema_version: u16::try_from(self.schema_version)
                .map_err(|_| corrupt("schema_version"))?,
            recorded_at: Timestamp::from_micros(self.recorded_at),
            actor: Actor {
                kind: ActorKind::parse(self.actor_kind).ok_or_else(|| corrupt("actor_kind"))?,
                id: actor_id,
                name: self.actor_name,
            },
            correlation_id,
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

/// The shorter forms an envelope's ids are stored in, decided once here for both backends and
/// undone by [`StoredRow::into_recorded`]. None loses anything: each is chosen only when the
/// stored form gives back exactly the same value (text for text, the same UUID), and the
/// canonical hash layout, computed over the envelope, does not see them.
///
/// - `tenant_id`: `None` when it is the tenant leading the stream id (every event of
///   Tessera's own streams), 16 bytes otherwise.
/// - the actor id: neither column when it is the principal the stream id names (a token's
///   client, on `{tenant}/tokens/{client}`), 16 bytes when it is a UUID in its canonical
///   spelling (lowercase, hyphenated, as `Uuid` prints it), text otherwise (`tessera`).
/// - the correlation id: 16 bytes when it is a canonical UUID (as the server makes them up),
///   text otherwise (a caller's `X-Correlation-ID` in any other form).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CompactIds<'e> {
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<&'e str>,
    pub actor_uuid: Option<Uuid>,
    pub correlation_id: Option<&'e str>,
    pub correlation_uuid: Option<Uuid>,
}

impl<'e> CompactIds<'e> {
    pub fn of(envelope: &'e Envelope) -> Self {
        let stream_id = envelope.stream_id.as_str();
        let tenant_id =
            (tenant_of(stream_id) != Some(envelope.tenant_id)).then_some(envelope.tenant_id);
        let actor = envelope.actor.id.as_str();
        let (actor_id, actor_uuid) = if subject_of(stream_id) == Some(actor) {
            (None, None)
        } else {
            text_or_uuid(actor)
        };
        let (correlation_id, correlation_uuid) = text_or_uuid(&envelope.correlation_id);
        Self {
            tenant_id,
            actor_id,
            actor_uuid,
            correlation_id,
            correlation_uuid,
        }
    }
}

/// `(None, Some(uuid))` for a UUID in its canonical spelling, `(Some(text), None)` otherwise.
fn text_or_uuid(text: &str) -> (Option<&str>, Option<Uuid>) {
    match canonical_uuid(text) {
        Some(id) => (None, Some(id)),
        None => (Some(text), None),
    }
}

/// A UUID in its canonical spelling.
fn hyphenated(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// One `events` row in storage types, as the PostgreSQL writer binds it (the stream by id: the
/// statement finds its key).
pub(crate) struct EventRow {
    pub global_position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub tenant_id: Option<Uuid>,
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: i64,
    pub actor_kind: &'static str,
    pub actor_id: Option<String>,
    pub actor_uuid: Option<Uuid>,
    pub actor_name: Option<String>,
    pub correlation_id: Option<String>,
    pub correlation_uuid: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub payload: Vec<u8>,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub log_hash: Hash32,
}

impl EventRow {
    /// The storage form of an event the group-commit planner produced.
    pub fn from_recorded(event: &RecordedEvent) -> Result<Self, String> {
        let e = &event.envelope;
        let ids = CompactIds::of(e);
        Ok(Self {
            global_position: to_i64(e.global_position)?,
            event_id: e.event_id,
            stream_id: e.stream_id.clone(),
            stream_version: to_i64(e.stream_version)?,
            tenant_id: ids.tenant_id,
            event_type: e.event_type.clone(),
            schema_version: i32::from(e.schema_version),
            recorded_at: e.recorded_at.as_micros(),
            actor_kind: e.actor.kind.as_str(),
            actor_id: ids.actor_id.map(str::to_owned),
            actor_uuid: ids.actor_uuid,
            actor_name: e.actor.name.clone(),
            correlation_id: ids.correlation_id.map(str::to_owned),
            correlation_uuid: ids.correlation_uuid,
            causation_id: e.causation_id,
            source_ip: e.source_ip.clone(),
            user_agent: e.user_agent.clone(),
            payload: event.payload.clone(),
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

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::streams;

    use super::*;

    const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    const OTHER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);
    const CLIENT: &str = "0193a000-0000-7000-8000-00000000c11e";

    fn envelope(stream_id: String, tenant_id: Uuid, actor_id: &str, correlation: &str) -> Envelope {
        let event = &samples::current()[0];
        Envelope::builder()
            .event_id(Uuid::from_u128(7))
            .stream(stream_id)
            .position(42)
            .tenant(tenant_id)
            .event(event)
            .recorded_at(Timestamp::from_micros(1_795_000_000_000_000))
            .actor(Actor {
                kind: ActorKind::Client,
                id: actor_id.to_owned(),
                name: None,
            })
            .correlation_id(correlation)
            .build()
    }

    /// The row a backend would store for `envelope`, read back through the one decoder.
    fn round_trip(envelope: &Envelope) -> Envelope {
        let ids = CompactIds::of(envelope);
        let row = StoredRow {
            global_position: to_i64(envelope.global_position).unwrap(),
            event_id: envelope.event_id,
            stream_id: envelope.stream_id.clone(),
            stream_version: to_i64(envelope.stream_version).unwrap(),
            tenant_id: ids.tenant_id,
            event_type: envelope.event_type.clone(),
            schema_version: i32::from(envelope.schema_version),
            recorded_at: envelope.recorded_at.as_micros(),
            actor_kind: envelope.actor.kind.as_str(),
            actor_id: ids.actor_id.map(str::to_owned),
            actor_uuid: ids.actor_uuid,
            actor_name: envelope.actor.name.clone(),
            correlation_id: ids.correlation_id.map(str::to_owned),
            correlation_uuid: ids.correlation_uuid,
            causation_id: envelope.causation_id,
            source_ip: envelope.source_ip.clone(),
            user_agent: envelope.user_agent.clone(),
            payload: Vec::new(),
            prev_hash: &envelope.prev_hash.0,
            hash: &envelope.hash.0,
            log_hash: &envelope.log_hash.0,
        };
        row.into_recorded().unwrap().envelope
    }

    #[test]
    fn a_token_event_leaves_its_tenant_and_client_to_the_stream_and_stores_uuids_as_bytes() {
        let correlation = "0193a000-0000-7000-8000-0000000000cc";
        let e = envelope(
            streams::client_tokens(TENANT, CLIENT),
            TENANT,
            CLIENT,
            correlation,
        );
        assert_eq!(
            CompactIds::of(&e),
            CompactIds {
                tenant_id: None,
                actor_id: None,
                actor_uuid: None,
                correlation_id: None,
                correlation_uuid: Uuid::parse_str(correlation).ok(),
            }
        );
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn ids_the_stream_does_not_imply_are_stored_as_they_are() {
        let upper = "0193A000-0000-7000-8000-0000000000CC";
        for (stream_id, tenant_id, actor_id, correlation) in [
            // Another tenant than the stream's, an actor that is not the stream's principal.
            (
                streams::client_tokens(TENANT, CLIENT),
                OTHER,
                "tessera",
                "corr-1",
            ),
            (
                streams::client_tokens(TENANT, CLIENT),
                TENANT,
                &*OTHER.to_string(),
                upper,
            ),
            // Other spellings of a UUID are text: only the canonical one is rebuilt from bytes.
            (
                streams::tenant(TENANT),
                TENANT,
                upper,
                "{0193a000-0000-7000-8000-0000000000cc}",
            ),
            (
                streams::tenant(TENANT),
                TENANT,
                "0193a00000007000800000000000c11e",
                "",
            ),
            // Streams that name no tenant or no principal (tests use such ids).
            ("a".to_owned(), TENANT, "", "x"),
            (format!("{TENANT}/tokens/"), TENANT, "", "x"),
            (
                streams::reservation("tenant-slug", "acme"),
                TENANT,
                "acme",
                "x",
            ),
        ] {
            let e = envelope(stream_id, tenant_id, actor_id, correlation);
            let ids = CompactIds::of(&e);
            assert_eq!(round_trip(&e), e, "{ids:?}");
        }
        let e = envelope(streams::audit(TENANT), OTHER, upper, upper);
        let ids = CompactIds::of(&e);
        assert_eq!(
            (ids.tenant_id, ids.actor_id, ids.correlation_id),
            (Some(OTHER), Some(upper), Some(upper))
        );
    }

    #[test]
    fn a_row_with_neither_form_of_its_correlation_id_is_corrupt() {
        let e = envelope(streams::tenant(TENANT), TENANT, "tessera", "x");
        let mut row_ids = CompactIds::of(&e);
        row_ids.correlation_id = None;
        let row = StoredRow {
            global_position: 1,
            event_id: e.event_id,
            stream_id: e.stream_id.clone(),
            stream_version: 1,
            tenant_id: row_ids.tenant_id,
            event_type: e.event_type.clone(),
            schema_version: 1,
            recorded_at: 0,
            actor_kind: "system",
            actor_id: row_ids.actor_id.map(str::to_owned),
            actor_uuid: None,
            actor_name: None,
            correlation_id: None,
            correlation_uuid: None,
            causation_id: None,
            source_ip: None,
            user_agent: None,
            payload: Vec::new(),
            prev_hash: &e.prev_hash.0,
            hash: &e.hash.0,
            log_hash: &e.log_hash.0,
        };
        assert!(matches!(row.into_recorded(), Err(LogError::Corrupt(_))));
    }
}
