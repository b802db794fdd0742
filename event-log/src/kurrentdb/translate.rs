//! The pure half of the KurrentDB backend: how global positions map to revisions of the one
//! KurrentDB stream, how the log head becomes the append's expected stream state, how an
//! envelope travels in an event's metadata and a checkpoint in an event of its own, and what
//! each client error means to the log. No I/O here, so every rule is unit-tested without a server.

use serde::{Deserialize, Serialize};
use tessera_event_schemas::{Envelope, Hash32, Timestamp};

use crate::group_commit::BatchError;
use crate::{Checkpoint, LogError};

/// The first byte of every metadata blob this backend writes: the layout's version, so that a
/// later layout can be told apart from this one.
const META_VERSION: u8 = 1;

/// The revision (0-based) of the KurrentDB event that holds global position `position`
/// (1-based). `None` for position 0, which holds nothing.
pub fn revision_of(position: u64) -> Option<u64> {
    position.checked_sub(1)
}

/// The global position held by the KurrentDB event at `revision`.
pub fn position_of(revision: u64) -> u64 {
    revision.saturating_add(1)
}

/// The stream state an append must find when this process believes the log ends at
/// `head_position`: no stream for an empty log, else the revision of the head. Another node's
/// append in between makes KurrentDB refuse ours, and the writer catches up and plans again.
pub fn expected_state(head_position: u64) -> kurrentdb::StreamState {
    match revision_of(head_position) {
        None => kurrentdb::StreamState::NoStream,
        Some(revision) => kurrentdb::StreamState::StreamRevision(revision),
    }
}

/// What an append's failure means to the writer.
#[derive(Debug)]
pub enum AppendFailure {
    /// The stream moved on since this process last read it (another node appended): catch up
    /// and plan the batch again.
    Retry,
    /// Anything else: the batch did not commit.
    Failed(BatchError),
}

pub fn append_failure(error: kurrentdb::Error) -> AppendFailure {
    match error {
        kurrentdb::Error::WrongExpectedVersion { .. } => AppendFailure::Retry,
        kurrentdb::Error::ResourceDeleted => AppendFailure::Failed(BatchError::Data(
            "the KurrentDB stream of the log was deleted".to_owned(),
        )),
        other => AppendFailure::Failed(BatchError::Store(format!("KurrentDB: {other}"))),
    }
}

/// A read's failure: `None` when the stream does not exist yet (an empty log), otherwise why
/// the log is unavailable.
pub fn read_failure(error: kurrentdb::Error) -> Option<LogError> {
    match error {
        kurrentdb::Error::ResourceNotFound => None,
        kurrentdb::Error::ResourceDeleted => Some(LogError::Corrupt(
            "the KurrentDB stream of the log was deleted".to_owned(),
        )),
        other => Some(LogError::Unavailable(format!("KurrentDB: {other}"))),
    }
}

/// A checkpoint as it is stored in KurrentDB, one event each on the checkpoint stream (the
/// log's own type has no serde form).
#[derive(Serialize, Deserialize)]
struct StoredCheckpoint {
    position: u64,
    log_hash: Hash32,
    created_at: Timestamp,
    key_id: String,
    signature: Vec<u8>,
}

fn versioned(value: &impl Serialize) -> Result<Vec<u8>, BatchError> {
    postcard::to_extend(value, vec![META_VERSION])
        .map_err(|error| BatchError::Data(format!("encoding for KurrentDB: {error}")))
}

/// An event's metadata: its whole envelope. KurrentDB keeps the payload as the event's data,
/// the event id as its id and the type as its type, but has no place for the rest.
pub fn encode_meta(envelope: &Envelope) -> Result<Vec<u8>, BatchError> {
    versioned(envelope)
}

/// A checkpoint event's data.
pub fn encode_checkpoint(checkpoint: &Checkpoint) -> Result<Vec<u8>, BatchError> {
    versioned(&StoredCheckpoint {
        position: checkpoint.position,
        log_hash: checkpoint.log_hash,
        created_at: checkpoint.created_at,
        key_id: checkpoint.key_id.clone(),
        signature: checkpoint.signature.clone(),
    })
}

/// Decodes a checkpoint event's data.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<Checkpoint, LogError> {
    let corrupt = |what: String| LogError::Corrupt(format!("KurrentDB checkpoint event: {what}"));
    let rest = match bytes.split_first() {
        Some((&META_VERSION, rest)) => rest,
        _ => {
            return Err(corrupt(
                "not a Tessera checkpoint of this layout".to_owned(),
            ));
        }
    };
    let c: StoredCheckpoint =
        postcard::from_bytes(rest).map_err(|error| corrupt(error.to_string()))?;
    Ok(Checkpoint {
        position: c.position,
        log_hash: c.log_hash,
        created_at: c.created_at,
        key_id: c.key_id,
        signature: c.signature,
    })
}

/// Decodes the metadata of the KurrentDB event at `revision`, and checks that it is the event
/// of global position `revision + 1`: an event written by anything but this backend, or out of
/// place, is corruption, not something to skip.
pub fn decode_meta(revision: u64, bytes: &[u8]) -> Result<Envelope, LogError> {
    let corrupt = |what: String| {
        LogError::Corrupt(format!(
            "KurrentDB event at revision {revision} of the log stream: {what}"
        ))
    };
    let Some((&version, rest)) = bytes.split_first() else {
        return Err(corrupt("no Tessera envelope in its metadata".to_owned()));
    };
    if version != META_VERSION {
        return Err(corrupt(format!(
            "envelope layout {version}, this build reads {META_VERSION}"
        )));
    }
    let envelope: Envelope =
        postcard::from_bytes(rest).map_err(|error| corrupt(error.to_string()))?;
    if envelope.global_position != position_of(revision) {
        return Err(corrupt(format!(
            "it holds global position {}, expected {}",
            envelope.global_position,
            position_of(revision)
        )));
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurrentdb::{CurrentRevision, StreamState};
    use tessera_event_schemas::{Actor, ActorKind};
    use uuid::Uuid;

    fn envelope(position: u64) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(7),
            stream_id: "t/tenant/1".to_owned(),
            stream_version: 3,
            global_position: position,
            tenant_id: Uuid::from_u128(1),
            event_type: "tenant.created".to_owned(),
            schema_version: 1,
            recorded_at: Timestamp::from_micros(1_800_000_000_000_000),
            actor: Actor {
                kind: ActorKind::User,
                id: "u".to_owned(),
                name: None,
            },
            correlation_id: "c".to_owned(),
            causation_id: Some(Uuid::from_u128(9)),
            source_ip: None,
            user_agent: Some("ua".to_owned()),
            prev_hash: Hash32::default(),
            hash: Hash32::default(),
            log_hash: Hash32::default(),
        }
    }

    #[test]
    fn positions_and_revisions_are_one_apart_and_position_zero_has_no_revision() {
        assert_eq!(revision_of(0), None);
        assert_eq!(revision_of(1), Some(0));
        assert_eq!(revision_of(1_000), Some(999));
        assert_eq!(position_of(0), 1);
        assert_eq!(position_of(999), 1_000);
        for position in [1, 2, 77, u64::MAX] {
            assert_eq!(revision_of(position).map(position_of), Some(position));
        }
    }

    #[test]
    fn an_empty_log_expects_no_stream_and_a_log_at_n_expects_revision_n_minus_one() {
        assert_eq!(expected_state(0), StreamState::NoStream);
        assert_eq!(expected_state(1), StreamState::StreamRevision(0));
        assert_eq!(expected_state(42), StreamState::StreamRevision(41));
    }

    #[test]
    fn a_wrong_expected_version_means_catch_up_and_plan_again() {
        let moved = kurrentdb::Error::WrongExpectedVersion {
            expected: StreamState::StreamRevision(4),
            current: CurrentRevision::Current(6),
        };
        assert!(matches!(append_failure(moved), AppendFailure::Retry));
    }

    #[test]
    fn other_append_failures_fail_the_batch_and_say_why() {
        match append_failure(kurrentdb::Error::DeadlineExceeded) {
            AppendFailure::Failed(BatchError::Store(message)) => {
                assert!(message.contains("Deadline exceeded"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            append_failure(kurrentdb::Error::ResourceDeleted),
            AppendFailure::Failed(BatchError::Data(_))
        ));
        assert!(matches!(
            append_failure(kurrentdb::Error::AccessDenied),
            AppendFailure::Failed(BatchError::Store(_))
        ));
    }

    #[test]
    fn a_missing_stream_reads_as_an_empty_log_and_other_read_failures_as_unavailable() {
        assert!(read_failure(kurrentdb::Error::ResourceNotFound).is_none());
        assert!(matches!(
            read_failure(kurrentdb::Error::ConnectionClosed),
            Some(LogError::Unavailable(_))
        ));
        assert!(matches!(
            read_failure(kurrentdb::Error::ResourceDeleted),
            Some(LogError::Corrupt(_))
        ));
    }

    #[test]
    fn the_envelope_round_trips_through_the_metadata_and_a_checkpoint_through_its_event() {
        let bytes = encode_meta(&envelope(5)).unwrap();
        assert_eq!(bytes[0], META_VERSION);
        assert_eq!(decode_meta(4, &bytes).unwrap(), envelope(5));
        let checkpoint = Checkpoint {
            position: 5,
            log_hash: Hash32::default(),
            created_at: Timestamp::from_micros(5),
            key_id: "k1".to_owned(),
            signature: vec![1, 2, 3],
        };
        let bytes = encode_checkpoint(&checkpoint).unwrap();
        assert_eq!(decode_checkpoint(&bytes).unwrap(), checkpoint);
        assert!(matches!(decode_checkpoint(b"x"), Err(LogError::Corrupt(_))));
    }

    #[test]
    fn an_event_out_of_place_or_not_written_by_tessera_is_corruption_naming_its_revision() {
        let bytes = encode_meta(&envelope(5)).unwrap();
        let misplaced = decode_meta(9, &bytes).unwrap_err();
        assert!(
            matches!(&misplaced, LogError::Corrupt(m) if m.contains("revision 9") && m.contains("expected 10")),
            "{misplaced:?}"
        );
        assert!(matches!(decode_meta(0, b""), Err(LogError::Corrupt(_))));
        assert!(matches!(
            decode_meta(0, b"{\"json\": true}"),
            Err(LogError::Corrupt(_))
        ));
        let mut later = bytes.clone();
        later[0] = META_VERSION + 1;
        assert!(
            matches!(decode_meta(4, &later), Err(LogError::Corrupt(m)) if m.contains("layout"))
        );
    }
}
