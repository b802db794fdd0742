//! The two things the KurrentDB backend asks of a server, reading a stream from a revision and
//! appending with an expected stream state, behind a trait: implemented by the gRPC client, and
//! by [`MemoryKurrentDb`], an in-process stand-in with KurrentDB's rules for those two calls, on
//! which the event log's conformance suite runs this backend where no server can be installed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use kurrentdb::{
    AppendToStreamOptions, Client, CurrentRevision, EventData, ReadStreamOptions, StreamPosition,
    StreamState,
};
use uuid::Uuid;

/// An event as read from a KurrentDB stream.
#[derive(Clone, Debug)]
pub struct ServerEvent {
    /// Its revision in the stream (0 for the first).
    pub revision: u64,
    pub data: Vec<u8>,
    /// The custom metadata it was appended with.
    pub metadata: Vec<u8>,
}

/// An event to append.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
}

/// What the backend needs of a KurrentDB server.
#[async_trait]
pub trait LogServer: Send + Sync + 'static {
    /// Up to `limit` events of `stream` from revision `from` on, in order.
    /// `Err(ResourceNotFound)` when the stream does not exist.
    async fn read(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ServerEvent>, kurrentdb::Error>;

    /// Appends `events` to `stream` atomically if it is in state `expected`;
    /// `Err(WrongExpectedVersion)` otherwise.
    async fn append(
        &self,
        stream: &str,
        expected: StreamState,
        events: Vec<NewEvent>,
    ) -> Result<(), kurrentdb::Error>;
}

#[async_trait]
impl LogServer for Client {
    async fn read(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ServerEvent>, kurrentdb::Error> {
        let mut events = Vec::new();
        if limit == 0 {
            return Ok(events);
        }
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from))
            .max_count(limit);
        let mut read = self.read_stream(stream, &options).await?;
        while let Some(resolved) = read.next().await? {
            let recorded = resolved.get_original_event();
            events.push(ServerEvent {
                revision: recorded.revision,
                data: recorded.data.to_vec(),
                metadata: recorded.custom_metadata.to_vec(),
            });
        }
        Ok(events)
    }

    async fn append(
        &self,
        stream: &str,
        expected: StreamState,
        events: Vec<NewEvent>,
    ) -> Result<(), kurrentdb::Error> {
        let events: Vec<EventData> = events
            .into_iter()
            .map(|event| {
                EventData::binary(event.event_type, event.data.into())
                    .id(event.id)
                    .metadata(event.metadata.into())
            })
            .collect();
        let options = AppendToStreamOptions::default().stream_state(expected);
        self.append_to_stream(stream, &options, events)
            .await
            .map(|_| ())
    }
}

/// An in-process KurrentDB for the two calls of [`LogServer`], with the server's rules for
/// them: revisions from 0, appends atomic and checked against the expected stream state, reads
/// of a missing stream refused as not found. Clones share the streams, like several clients of
/// one server.
#[derive(Clone, Default)]
pub struct MemoryKurrentDb {
    streams: Arc<Mutex<HashMap<String, Vec<ServerEvent>>>>,
}

impl MemoryKurrentDb {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl LogServer for MemoryKurrentDb {
    async fn read(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ServerEvent>, kurrentdb::Error> {
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let events = streams
            .get(stream)
            .ok_or(kurrentdb::Error::ResourceNotFound)?;
        let skip = usize::try_from(from).unwrap_or(usize::MAX);
        Ok(events.iter().skip(skip).take(limit).cloned().collect())
    }

    async fn append(
        &self,
        stream: &str,
        expected: StreamState,
        events: Vec<NewEvent>,
    ) -> Result<(), kurrentdb::Error> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let current = streams
            .get(stream)
            .map(|events| events.len() as u64)
            .and_then(|len| len.checked_sub(1));
        let matches = match expected {
            StreamState::Any => true,
            StreamState::NoStream => current.is_none() && !streams.contains_key(stream),
            StreamState::StreamExists => streams.contains_key(stream),
            StreamState::StreamRevision(revision) => current == Some(revision),
        };
        if !matches {
            return Err(kurrentdb::Error::WrongExpectedVersion {
                expected,
                current: current.map_or(CurrentRevision::NoStream, CurrentRevision::Current),
            });
        }
        let stored = streams.entry(stream.to_owned()).or_default();
        for event in events {
            let revision = stored.len() as u64;
            stored.push(ServerEvent {
                revision,
                data: event.data,
                metadata: event.metadata,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_event(n: u128) -> NewEvent {
        NewEvent {
            id: Uuid::from_u128(n),
            event_type: "t".to_owned(),
            data: vec![n as u8],
            metadata: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_stand_in_keeps_kurrentdb_s_rules_for_expected_states_and_missing_streams() {
        let server = MemoryKurrentDb::new();
        assert!(matches!(
            server.read("s", 0, 10).await,
            Err(kurrentdb::Error::ResourceNotFound)
        ));
        server
            .append("s", StreamState::NoStream, vec![new_event(1), new_event(2)])
            .await
            .unwrap();
        let refused = server
            .append("s", StreamState::NoStream, vec![new_event(3)])
            .await
            .unwrap_err();
        assert!(matches!(
            refused,
            kurrentdb::Error::WrongExpectedVersion {
                current: CurrentRevision::Current(1),
                ..
            }
        ));
        assert!(
            server
                .append("s", StreamState::StreamRevision(0), vec![new_event(3)])
                .await
                .is_err()
        );
        server
            .append("s", StreamState::StreamRevision(1), vec![new_event(3)])
            .await
            .unwrap();
        let read = server.read("s", 1, 10).await.unwrap();
        assert_eq!(
            read.iter().map(|e| e.revision).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(read[1].data, vec![3]);
    }
}
