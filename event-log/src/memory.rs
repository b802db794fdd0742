//! The in-memory backend, for tests: the same group commit, batch planner, tail and head watch
//! as the SQL backends, over a store that is a few maps behind a mutex.
//!
//! Every rule of an append (expected versions, idempotent retries, positions, hashes,
//! checkpoints) comes from [`plan_batch`], exactly as on SQLite and PostgreSQL, so a test that
//! runs commands against this log sees the answers a real one gives; the conformance suite
//! holds it to that. Commits are durable at once (there is no disk), and the store outlives a
//! [`MemoryLog`]: opening another one on the same [`MemoryStore`] is a restart.
//!
//! This module must not know about SQL.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tessera_event_schemas::RecordedEvent;
use uuid::Uuid;

use crate::group_commit::{
    BatchError, BatchWriter, CheckpointPolicy, Committed, Durable, GroupCommit, LogHead, Plan,
    StoredEvent, StreamHead, batch_keys, plan_batch,
};
use crate::keys::MemoryKeys;
use crate::{AppendError, AppendOutcome, Checkpoint, EventLog, LogConfig, LogError, StreamWrite};

/// What a [`MemoryLog`] stores. Clones share it.
#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Stored>>);

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("head", &self.lock().head.position)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Stored> {
        // Every change is applied whole under the lock, so a panic elsewhere leaves it
        // consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the rows of this store's key table.
    pub(crate) fn with_keys<R>(&self, f: impl FnOnce(&mut MemoryKeys) -> R) -> R {
        f(&mut self.lock().keys)
    }
}

#[derive(Default)]
struct Stored {
    /// Event at position `p` is at index `p - 1`.
    events: Vec<RecordedEvent>,
    streams: HashMap<String, Stream>,
    by_id: HashMap<Uuid, StoredEvent>,
    head: LogHead,
    checkpoints: Vec<Checkpoint>,
    /// The key table's rows (see [`crate::keys::MemoryKeyTable`]).
    keys: MemoryKeys,
}

/// A stream's head and the positions of its events (version `v` at index `v - 1`).
#[derive(Default)]
struct Stream {
    head: StreamHead,
    positions: Vec<u64>,
}

impl Stored {
    fn apply(&mut self, plan: &Plan) {
        for event in &plan.events {
            let envelope = &event.envelope;
            self.streams
                .entry(envelope.stream_id.clone())
                .or_default()
                .positions
                .push(envelope.global_position);
            self.by_id.insert(
                envelope.event_id,
                StoredEvent {
                    stream_id: envelope.stream_id.clone(),
                    stream_version: envelope.stream_version,
                    global_position: envelope.global_position,
                },
            );
            self.events.push(event.clone());
        }
        for (stream_id, head) in &plan.stream_heads {
            self.streams.entry(stream_id.clone()).or_default().head = *head;
        }
        self.head = plan.head;
        for checkpoint in &plan.checkpoints {
            if self
                .checkpoints
                .last()
                .is_none_or(|last| last.position < checkpoint.position)
            {
                self.checkpoints.push(checkpoint.clone());
            }
        }
    }

    fn event_at(&self, position: u64) -> Option<&RecordedEvent> {
        let index = usize::try_from(position.checked_sub(1)?).ok()?;
        self.events.get(index)
    }
}

/// The in-memory event log.
pub struct MemoryLog {
    store: MemoryStore,
    commit: GroupCommit,
}

impl MemoryLog {
    /// Opens a log on `store`, continuing whatever it holds. Must run inside a tokio runtime
    /// (the group commit's writer is a task).
    pub fn open(store: MemoryStore, config: &LogConfig) -> Self {
        let head = store.lock().head.position;
        let writer = MemoryWriter {
            store: store.clone(),
            policy: CheckpointPolicy::new(config),
        };
        Self {
            commit: GroupCommit::start(writer, head, config.max_batch),
            store,
        }
    }
}

struct MemoryWriter {
    store: MemoryStore,
    policy: CheckpointPolicy,
}

#[async_trait]
impl BatchWriter for MemoryWriter {
    async fn write_batch(
        &mut self,
        appends: Vec<Vec<StreamWrite>>,
        final_checkpoint: bool,
    ) -> Result<Committed, BatchError> {
        let mut stored = self.store.lock();
        let (stream_ids, event_ids) = batch_keys(&appends);
        let streams = stream_ids
            .into_iter()
            .filter_map(|id| {
                let head = stored.streams.get(&id)?.head;
                Some((id, head))
            })
            .collect();
        let known = event_ids
            .into_iter()
            .filter_map(|id| Some((id, stored.by_id.get(&id)?.clone())))
            .collect();
        let plan = plan_batch(
            &appends,
            stored.head,
            streams,
            known,
            &self.policy,
            final_checkpoint,
        );
        stored.apply(&plan);
        Ok(Committed {
            results: plan.results,
            head: plan.head,
            events: plan.events,
            durable: Durable::Now,
        })
    }

    async fn shutdown(&mut self) {}
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<AppendOutcome, AppendError> {
        self.commit.append(writes).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let stored = self.store.lock();
        let Some(stream) = stored.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let skip = usize::try_from(after_version).unwrap_or(usize::MAX);
        Ok(stream
            .positions
            .iter()
            .skip(skip)
            .take(limit)
            .filter_map(|&position| stored.event_at(position).cloned())
            .collect())
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let stored = self.store.lock();
        let skip = usize::try_from(after_position).unwrap_or(usize::MAX);
        Ok(stored
            .events
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn head_position(&self) -> Result<u64, LogError> {
        Ok(self.store.lock().head.position)
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commit.watch_head()
    }

    fn recent(&self, after_position: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        self.commit.recent(after_position, limit)
    }

    async fn checkpoints(&self, after_position: u64) -> Result<Vec<Checkpoint>, LogError> {
        Ok(self
            .store
            .lock()
            .checkpoints
            .iter()
            .filter(|checkpoint| checkpoint.position > after_position)
            .cloned()
            .collect())
    }

    async fn ping(&self) -> Result<(), LogError> {
        Ok(())
    }

    async fn close(&self) {
        self.commit.close().await;
    }
}
