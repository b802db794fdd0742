//! The KurrentDB backend (cargo feature `kurrentdb`), for operators who already run KurrentDB
//! (formerly EventStoreDB).
//!
//! The whole log is one KurrentDB stream (`tessera-log` unless configured), whose revision is
//! our global position minus one. So positions stay dense, a multi-stream append is one
//! KurrentDB append (atomic), and the hash chain is the stream's order. Each KurrentDB event
//! carries the payload as its data, the event id as its id, the type as its type, and the
//! whole envelope (postcard) as its metadata (see `translate`).
//!
//! Per-aggregate expected versions are checked here, by the same [`plan_batch`] as every other
//! backend, against an in-memory index of the log (each stream's head and positions, each event
//! id's place), caught up from KurrentDB before every batch. Each batch is appended with the
//! expected revision of the head it was planned on: when another node appended in between,
//! KurrentDB refuses it, and the writer catches up and plans again. So the rule "decided once,
//! in the append" holds across nodes without a lock.
//!
//! Checkpoints go to a second stream (`{stream}-checkpoints`), one event each, appended after
//! the batch that signed them: a crash between the two appends loses a signature, never an
//! event, and the next checkpoint covers the same chain.
//!
//! Costs, by construction (no KurrentDB server could be run where this was written, so none is
//! measured): the index holds every event's position and id in memory (about 100 bytes an
//! event); reading one aggregate's stream reads its events one revision run at a time (events of
//! one aggregate are rarely adjacent in the log, so about one round trip per event); every batch
//! costs one extra round trip to catch up. A KurrentDB append is limited in size (1 MiB by
//! default, `MaxAppendSize`): a batch larger than that fails as unavailable.
//!
//! The key table (per-person data keys, which must be destroyable) does not live in KurrentDB:
//! [`crate::keys::open`] refuses this backend.
//!
//! `server` puts the two server calls behind [`LogServer`], implemented by the gRPC client and
//! by [`MemoryKurrentDb`], the in-process stand-in the conformance suite runs this backend on.

mod server;
mod translate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use kurrentdb::{Client, ClientSettings, StreamState};
use tessera_event_schemas::RecordedEvent;
use uuid::Uuid;

use crate::group_commit::{
    BatchError, BatchWriter, CheckpointPolicy, Committed, Durable, GroupCommit, LogHead, Plan,
    StoredEvent, StreamHead, batch_keys, plan_batch,
};
use crate::{AppendError, AppendOutcome, Checkpoint, EventLog, LogConfig, LogError, StreamWrite};

pub use server::{LogServer, MemoryKurrentDb, NewEvent, ServerEvent};
pub use translate::{expected_state, position_of, revision_of};

/// The stream that holds the log, unless configured otherwise.
pub const DEFAULT_STREAM: &str = "tessera-log";
/// Events per read request while catching up or reading the log.
const READ_PAGE: usize = 1000;
/// How many times a batch is planned again after other nodes' appends before it gives up.
const MAX_REPLANS: usize = 64;

/// One aggregate stream's head and the global positions of its events (version `v` at index
/// `v - 1`).
#[derive(Default)]
struct StreamIndex {
    head: StreamHead,
    positions: Vec<u64>,
}

/// What this process knows of the log: everything up to `head`.
#[derive(Default)]
struct Index {
    head: LogHead,
    streams: HashMap<String, StreamIndex>,
    by_id: HashMap<Uuid, StoredEvent>,
}

impl Index {
    /// Adds `event` if it is the one right after the head. The writer and readers catching up
    /// may both come across the same new events; each is added once.
    fn add(&mut self, event: &RecordedEvent) {
        let envelope = &event.envelope;
        if envelope.global_position != self.head.position + 1 {
            return;
        }
        let stream = self.streams.entry(envelope.stream_id.clone()).or_default();
        stream.positions.push(envelope.global_position);
        stream.head = StreamHead {
            version: envelope.stream_version,
            last_hash: envelope.hash,
        };
        self.by_id.insert(
            envelope.event_id,
            StoredEvent {
                stream_id: envelope.stream_id.clone(),
                stream_version: envelope.stream_version,
                global_position: envelope.global_position,
            },
        );
        self.head = LogHead {
            position: envelope.global_position,
            log_hash: envelope.log_hash,
        };
    }
}

/// The client, the stream names and the index: shared by the log's readers and its writer.
struct Shared {
    client: Arc<dyn LogServer>,
    stream: String,
    checkpoint_stream: String,
    index: Mutex<Index>,
}

impl Shared {
    fn index(&self) -> MutexGuard<'_, Index> {
        // Every change to the index is applied whole under the lock.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Up to `limit` events with `global_position > after_position`, from KurrentDB.
    async fn read_from(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Position p + 1 is revision p.
        let read = match self.client.read(&self.stream, after_position, limit).await {
            Ok(read) => read,
            Err(error) => return translate::read_failure(error).map_or(Ok(Vec::new()), Err),
        };
        read.into_iter()
            .map(|event| {
                Ok(RecordedEvent {
                    envelope: translate::decode_meta(event.revision, &event.metadata)?,
                    payload: event.data,
                })
            })
            .collect()
    }

    /// Reads whatever other nodes appended since this process last looked into the index.
    async fn catch_up(&self) -> Result<(), LogError> {
        loop {
            let after = self.index().head.position;
            let events = self.read_from(after, READ_PAGE).await?;
            let mut index = self.index();
            for event in &events {
                index.add(event);
            }
            if events.len() < READ_PAGE {
                return Ok(());
            }
        }
    }
}

/// An event log on one KurrentDB stream.
pub struct KurrentDbLog {
    shared: Arc<Shared>,
    commit: GroupCommit,
}

impl KurrentDbLog {
    /// Connects to `url` (a KurrentDB connection string: `kurrentdb://host:2113?tls=false`,
    /// `esdb://...` and the other schemes the client accepts) and reads the log stream `stream`
    /// into the index. Must run inside a tokio runtime.
    pub async fn open(url: &str, stream: &str, config: LogConfig) -> Result<Self, LogError> {
        let settings: ClientSettings = url.parse().map_err(|error| {
            LogError::Unavailable(format!("KurrentDB connection string: {error}"))
        })?;
        let client = Client::new(settings)
            .map_err(|error| LogError::Unavailable(format!("KurrentDB client: {error}")))?;
        Self::open_on(Arc::new(client), stream, config).await
    }

    /// Opens the log on `server`: the client above, or a [`MemoryKurrentDb`] in tests.
    pub async fn open_on(
        server: Arc<dyn LogServer>,
        stream: &str,
        config: LogConfig,
    ) -> Result<Self, LogError> {
        let shared = Arc::new(Shared {
            client: server,
            stream: stream.to_owned(),
            checkpoint_stream: format!("{stream}-checkpoints"),
            index: Mutex::new(Index::default()),
        });
        shared.catch_up().await?;
        let head = shared.index().head.position;
        let writer = KurrentDbWriter {
            shared: shared.clone(),
            policy: CheckpointPolicy::new(&config),
        };
        Ok(Self {
            commit: GroupCommit::start(writer, head, config.max_batch),
            shared,
        })
    }
}

struct KurrentDbWriter {
    shared: Arc<Shared>,
    policy: CheckpointPolicy,
}

impl KurrentDbWriter {
    /// Plans `appends` on the index as it is now; also returns the head it planned on.
    fn plan(&self, appends: &[Vec<StreamWrite>], final_checkpoint: bool) -> (Plan, u64) {
        let index = self.shared.index();
        let (stream_ids, event_ids) = batch_keys(appends);
        let streams = stream_ids
            .into_iter()
            .filter_map(|id| Some((id.clone(), index.streams.get(&id)?.head)))
            .collect();
        let known = event_ids
            .into_iter()
            .filter_map(|id| Some((id, index.by_id.get(&id)?.clone())))
            .collect();
        let plan = plan_batch(
            appends,
            index.head,
            streams,
            known,
            &self.policy,
            final_checkpoint,
        );
        (plan, index.head.position)
    }

    async fn store_checkpoints(&self, checkpoints: &[Checkpoint]) {
        if checkpoints.is_empty() {
            return;
        }
        let mut events = Vec::with_capacity(checkpoints.len());
        for checkpoint in checkpoints {
            match translate::encode_checkpoint(checkpoint) {
                Ok(data) => events.push(NewEvent {
                    id: Uuid::from_u64_pair(checkpoint.position, 0),
                    event_type: "tessera.checkpoint".to_owned(),
                    data,
                    metadata: Vec::new(),
                }),
                Err(error) => {
                    tracing::warn!(%error, "a log checkpoint could not be encoded");
                    return;
                }
            }
        }
        if let Err(error) = self
            .shared
            .client
            .append(&self.shared.checkpoint_stream, StreamState::Any, events)
            .await
        {
            // The events are committed; a lost signature is covered by the next checkpoint.
            tracing::warn!(%error, "storing a log checkpoint in KurrentDB failed");
        }
    }
}

#[async_trait]
impl BatchWriter for KurrentDbWriter {
    async fn write_batch(
        &mut self,
        appends: Vec<Vec<StreamWrite>>,
        final_checkpoint: bool,
    ) -> Result<Committed, BatchError> {
        for _ in 0..MAX_REPLANS {
            self.shared
                .catch_up()
                .await
                .map_err(|error| BatchError::Store(error.to_string()))?;
            let (plan, planned_on) = self.plan(&appends, final_checkpoint);
            if !plan.events.is_empty() {
                let mut events = Vec::with_capacity(plan.events.len());
                for event in &plan.events {
                    events.push(NewEvent {
                        id: event.envelope.event_id,
                        event_type: event.envelope.event_type.clone(),
                        data: event.payload.clone(),
                        metadata: translate::encode_meta(&event.envelope)?,
                    });
                }
                let appended = self
                    .shared
                    .client
                    .append(
                        &self.shared.stream,
                        translate::expected_state(planned_on),
                        events,
                    )
                    .await;
                match appended.map_err(translate::append_failure) {
                    Ok(_) => {}
                    Err(translate::AppendFailure::Retry) => continue,
                    Err(translate::AppendFailure::Failed(error)) => return Err(error),
                }
                let mut index = self.shared.index();
                for event in &plan.events {
                    index.add(event);
                }
            }
            self.store_checkpoints(&plan.checkpoints).await;
            return Ok(Committed {
                results: plan.results,
                head: plan.head,
                events: plan.events,
                durable: Durable::Now,
            });
        }
        Err(BatchError::Store(format!(
            "KurrentDB: the log stream moved on {MAX_REPLANS} times while this batch was planned"
        )))
    }

    async fn shutdown(&mut self) {}
}

#[async_trait]
impl EventLog for KurrentDbLog {
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<AppendOutcome, AppendError> {
        self.commit.append(writes).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.shared.catch_up().await?;
        let positions: Vec<u64> = {
            let index = self.shared.index();
            let Some(stream) = index.streams.get(stream_id) else {
                return Ok(Vec::new());
            };
            let skip = usize::try_from(after_version).unwrap_or(usize::MAX);
            stream
                .positions
                .iter()
                .skip(skip)
                .take(limit)
                .copied()
                .collect()
        };
        // Adjacent positions are read in one request.
        let mut events = Vec::with_capacity(positions.len());
        let mut start = 0;
        while start < positions.len() {
            let mut end = start + 1;
            while end < positions.len() && positions[end] == positions[end - 1] + 1 {
                end += 1;
            }
            let run = self
                .shared
                .read_from(positions[start] - 1, end - start)
                .await?;
            if run.len() != end - start {
                return Err(LogError::Corrupt(format!(
                    "KurrentDB: positions {}..={} of stream {stream_id} are missing",
                    positions[start],
                    positions[end - 1]
                )));
            }
            events.extend(run);
            start = end;
        }
        Ok(events)
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let mut events = Vec::new();
        while events.len() < limit {
            let after = after_position + events.len() as u64;
            let page = self
                .shared
                .read_from(after, (limit - events.len()).min(READ_PAGE))
                .await?;
            let done = page.len() < (limit - events.len()).min(READ_PAGE);
            events.extend(page);
            if done {
                break;
            }
        }
        Ok(events)
    }

    async fn head_position(&self) -> Result<u64, LogError> {
        self.shared.catch_up().await?;
        Ok(self.shared.index().head.position)
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commit.watch_head()
    }

    fn recent(&self, after_position: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        self.commit.recent(after_position, limit)
    }

    async fn checkpoints(&self, after_position: u64) -> Result<Vec<Checkpoint>, LogError> {
        let read = match self
            .shared
            .client
            .read(&self.shared.checkpoint_stream, 0, usize::MAX)
            .await
        {
            Ok(read) => read,
            Err(error) => return translate::read_failure(error).map_or(Ok(Vec::new()), Err),
        };
        let mut checkpoints = Vec::new();
        for event in read {
            let checkpoint = translate::decode_checkpoint(&event.data)?;
            if checkpoint.position > after_position {
                checkpoints.push(checkpoint);
            }
        }
        // Nodes append their checkpoints independently: one per position, in position order.
        checkpoints.sort_by_key(|c| c.position);
        checkpoints.dedup_by_key(|c| c.position);
        Ok(checkpoints)
    }

    async fn ping(&self) -> Result<(), LogError> {
        match self.shared.client.read(&self.shared.stream, 0, 1).await {
            Ok(_) => Ok(()),
            Err(error) => translate::read_failure(error).map_or(Ok(()), Err),
        }
    }

    async fn close(&self) {
        self.commit.close().await;
    }
}
