//! Group commit: one writer task per log folds concurrent appends into one transaction.
//!
//! Callers send their writes through a channel and wait on a oneshot reply. The writer task
//! drains up to `max_batch` pending appends, asks the backend's [`BatchWriter`] to write them in
//! one transaction with one commit (one fsync), and answers every caller only after that commit
//! returned. Validation and the assignment of versions, positions and hashes are backend-neutral
//! and live here, in [`plan_batch`]: a backend reads the current state inside its transaction,
//! calls it, and writes what it returns.
//!
//! This module knows no SQL and no particular database.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tessera_event_schemas::{Envelope, Hash32, RecordedEvent, Timestamp, hash};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::{
    AppendError, AppendOutcome, Checkpoint, CheckpointSigner, ExpectedVersion, StreamWrite,
};

/// The last committed position of the log and its chain hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogHead {
    pub position: u64,
    pub log_hash: Hash32,
}

/// A stream's current version and the hash of its last event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StreamHead {
    pub version: u64,
    pub last_hash: Hash32,
}

/// Where an already stored event sits, for idempotent retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub stream_id: String,
    pub stream_version: u64,
    pub global_position: u64,
}

/// What a batch writes, and each append's answer, computed before anything is written.
#[derive(Debug, Default)]
pub struct Plan {
    /// One answer per append, in the order the appends were given.
    pub results: Vec<Result<AppendOutcome, AppendError>>,
    /// The new events, in position order.
    pub events: Vec<RecordedEvent>,
    /// The final head of every stream the batch writes to.
    pub stream_heads: Vec<(String, StreamHead)>,
    /// The log head after the batch.
    pub head: LogHead,
    /// Checkpoints to store in the same transaction.
    pub checkpoints: Vec<Checkpoint>,
}

/// Checkpoint settings, taken from [`crate::LogConfig`].
#[derive(Clone)]
pub struct CheckpointPolicy {
    pub signer: Option<Arc<dyn CheckpointSigner>>,
    pub every: u64,
    /// The time checkpoints are stamped with.
    pub clock: LogClock,
}

impl CheckpointPolicy {
    pub fn new(config: &crate::LogConfig) -> Self {
        Self {
            signer: config.checkpoint_signer.clone(),
            every: config.checkpoint_every,
            clock: config.clock.clone(),
        }
    }
}

/// Stream ids and event ids a batch touches: what a backend must look up before planning.
pub fn batch_keys(appends: &[Vec<StreamWrite>]) -> (Vec<String>, Vec<Uuid>) {
    let mut streams = HashSet::new();
    let mut ids = HashSet::new();
    for writes in appends {
        for write in writes {
            streams.insert(write.stream_id.clone());
            ids.extend(write.events.iter().map(|event| event.event_id));
        }
    }
    (streams.into_iter().collect(), ids.into_iter().collect())
}

/// Validates each append in order against the stored state plus the appends before it in the
/// same batch, and assigns versions, positions and hashes to the accepted ones.
///
/// `streams` holds the stored heads of (at least) the batch's streams, absent meaning no stream;
/// `stored` holds the stored events among the batch's event ids. When `final_checkpoint` is set
/// a checkpoint of the resulting head is added (the log is closing). The policy's clock is read
/// only when the batch signs a checkpoint.
pub fn plan_batch(
    appends: &[Vec<StreamWrite>],
    head: LogHead,
    mut streams: HashMap<String, StreamHead>,
    mut stored: HashMap<Uuid, StoredEvent>,
    policy: &CheckpointPolicy,
    final_checkpoint: bool,
) -> Plan {
    let mut plan = Plan {
        head,
        ..Plan::default()
    };
    let mut touched: HashSet<String> = HashSet::new();
    for writes in appends {
        let result = plan_append(writes, &mut plan, &mut streams, &mut stored, &mut touched);
        plan.results.push(result);
    }
    plan.stream_heads = touched
        .into_iter()
        .filter_map(|id| streams.get(&id).map(|head| (id, *head)))
        .collect();

    if let Some(signer) = &policy.signer {
        let every = policy.every.max(1);
        let mut now = None;
        let mut sign = |position: u64, log_hash: Hash32| {
            let now = *now.get_or_insert_with(|| (policy.clock)());
            Checkpoint {
                position,
                log_hash,
                created_at: now,
                key_id: signer.key_id().to_owned(),
                signature: signer.sign(&hash::checkpoint_message(position, &log_hash, now)),
            }
        };
        // A checkpoint at every multiple of `every` the batch crossed, so checkpoint positions do
        // not depend on how appends happened to be batched.
        for event in &plan.events {
            let position = event.envelope.global_position;
            if position % every == 0 {
                plan.checkpoints
                    .push(sign(position, event.envelope.log_hash));
            }
        }
        let head = plan.head;
        if final_checkpoint
            && head.position > 0
            && plan.checkpoints.last().map(|c| c.position) != Some(head.position)
        {
            plan.checkpoints.push(sign(head.position, head.log_hash));
        }
    }
    plan
}

fn plan_append(
    writes: &[StreamWrite],
    plan: &mut Plan,
    streams: &mut HashMap<String, StreamHead>,
    stored: &mut HashMap<Uuid, StoredEvent>,
    touched: &mut HashSet<String>,
) -> Result<AppendOutcome, AppendError> {
    let total: usize = writes.iter().map(|write| write.events.len()).sum();
    if total == 0 {
        return Err(AppendError::Invalid(
            "an append needs at least one event".into(),
        ));
    }
    let mut seen = HashSet::with_capacity(total);
    for write in writes {
        if write.stream_id.is_empty() {
            return Err(AppendError::Invalid("empty stream id".into()));
        }
        for event in &write.events {
            if !seen.insert(event.event_id) {
                return Err(AppendError::Invalid(format!(
                    "event {} appears twice in one append",
                    event.event_id
                )));
            }
        }
    }

    // Idempotency comes before the version check: a retry of a committed append would
    // otherwise always conflict with itself.
    if let Some(outcome) = replayed_outcome(writes, stored, streams)? {
        return Ok(outcome);
    }

    // Stage into scratch copies so that a rejected append leaves the batch state untouched.
    let mut staged_heads: HashMap<&str, StreamHead> = HashMap::new();
    let mut new_events = Vec::with_capacity(total);
    let mut log = plan.head;
    let mut stream_versions = Vec::with_capacity(writes.len());
    for write in writes {
        let current = staged_heads
            .get(write.stream_id.as_str())
            .or_else(|| streams.get(&write.stream_id))
            .copied()
            .unwrap_or_default();
        let ok = match write.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.version == 0,
            ExpectedVersion::Exact(n) => current.version == n,
        };
        if !ok {
            return Err(AppendError::Conflict {
                stream_id: write.stream_id.clone(),
                expected: write.expected,
                actual: current.version,
            });
        }
        let mut stream = current;
        for proposed in &write.events {
            stream.version += 1;
            log.position += 1;
            let mut envelope = Envelope {
                event_id: proposed.event_id,
                stream_id: write.stream_id.clone(),
                stream_version: stream.version,
                global_position: log.position,
                tenant_id: proposed.tenant_id,
                event_type: proposed.event_type.to_owned(),
                schema_version: proposed.schema_version,
                recorded_at: proposed.recorded_at,
                actor: proposed.metadata.actor.clone(),
                correlation_id: proposed.metadata.correlation_id.clone(),
                causation_id: proposed.metadata.causation_id,
                source_ip: proposed.metadata.source_ip.clone(),
                user_agent: proposed.metadata.user_agent.clone(),
                prev_hash: stream.last_hash,
                hash: Hash32::ZERO,
                log_hash: Hash32::ZERO,
            };
            envelope.hash = hash::event_hash(&envelope, &proposed.payload);
            envelope.log_hash = hash::log_link(&log.log_hash, log.position, &envelope.hash);
            stream.last_hash = envelope.hash;
            log.log_hash = envelope.log_hash;
            new_events.push(RecordedEvent {
                envelope,
                payload: proposed.payload.clone(),
            });
        }
        staged_heads.insert(write.stream_id.as_str(), stream);
        stream_versions.push((write.stream_id.clone(), stream.version));
    }

    // Accepted: fold the staged state into the batch state.
    for (stream_id, head) in staged_heads {
        touched.insert(stream_id.to_owned());
        streams.insert(stream_id.to_owned(), head);
    }
    for event in &new_events {
        stored.insert(
            event.envelope.event_id,
            StoredEvent {
                stream_id: event.envelope.stream_id.clone(),
                stream_version: event.envelope.stream_version,
                global_position: event.envelope.global_position,
            },
        );
    }
    let outcome = AppendOutcome {
        first_position: plan.head.position + 1,
        last_position: log.position,
        stream_versions,
    };
    plan.head = log;
    plan.events.extend(new_events);
    Ok(outcome)
}

/// The original outcome when every event of `writes` is already stored exactly as this append
/// would have written it; `None` when none is stored; a mismatch error otherwise.
fn replayed_outcome(
    writes: &[StreamWrite],
    stored: &HashMap<Uuid, StoredEvent>,
    streams: &HashMap<String, StreamHead>,
) -> Result<Option<AppendOutcome>, AppendError> {
    let mut first_missing = None;
    let mut first_found = None;
    for write in writes {
        for event in &write.events {
            if stored.contains_key(&event.event_id) {
                first_found.get_or_insert(event.event_id);
            } else {
                first_missing.get_or_insert(event.event_id);
            }
        }
    }
    let Some(some_stored) = first_found else {
        return Ok(None);
    };
    if first_missing.is_some() {
        return Err(AppendError::IdempotencyMismatch {
            event_id: some_stored,
        });
    }

    // All stored: they must sit in the same streams, consecutively per stream, in the same
    // global order as this append lists them.
    let mut first_position = u64::MAX;
    let mut last_position = 0;
    let mut previous_position = 0;
    let mut stream_versions = Vec::with_capacity(writes.len());
    for write in writes {
        let mut previous_version: Option<u64> = None;
        for event in &write.events {
            let Some(at) = stored.get(&event.event_id) else {
                return Err(AppendError::IdempotencyMismatch {
                    event_id: event.event_id,
                });
            };
            let in_order = at.stream_id == write.stream_id
                && at.global_position > previous_position
                && previous_version.is_none_or(|v| at.stream_version == v + 1);
            if !in_order {
                return Err(AppendError::IdempotencyMismatch {
                    event_id: event.event_id,
                });
            }
            previous_position = at.global_position;
            previous_version = Some(at.stream_version);
            first_position = first_position.min(at.global_position);
            last_position = last_position.max(at.global_position);
        }
        // A write without events only checked a version; report the stream's current one.
        let version = previous_version
            .unwrap_or_else(|| streams.get(&write.stream_id).map_or(0, |head| head.version));
        stream_versions.push((write.stream_id.clone(), version));
    }
    Ok(Some(AppendOutcome {
        first_position,
        last_position,
        stream_versions,
    }))
}

/// The result of writing one batch.
pub struct Committed {
    pub results: Vec<Result<AppendOutcome, AppendError>>,
    pub head: LogHead,
    /// The events the batch stored, in position order, for the recent-events tail.
    pub events: Vec<RecordedEvent>,
    /// When the commit is on stable storage.
    pub durable: Durable,
}

/// Whether a committed batch is already durable, or will be once its backend's sync is done.
/// Nobody is answered, and no subscriber sees the batch, before it is durable.
pub enum Durable {
    /// The commit itself was durable (PostgreSQL: `synchronous_commit=on`).
    Now,
    /// The commit is visible to the writer's own connection but its WAL is still being synced
    /// (SQLite: see `sqlite::Syncer`); `Err` says why it never will be.
    Pending(oneshot::Receiver<Result<(), BatchError>>),
}

impl Durable {
    async fn wait(self) -> Result<(), BatchError> {
        match self {
            Durable::Now => Ok(()),
            Durable::Pending(synced) => synced.await.unwrap_or(Err(BatchError::Stopped("sync"))),
        }
    }
}

/// Why a backend did not commit a batch (nothing of it is stored), or why a committed batch
/// will never be durable. The group commit answers every append of the batch with
/// [`AppendError::Unavailable`] and this text; none of them is the caller's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The store failed a statement or the commit (unreachable, disk full, locked too long).
    #[error("{0}")]
    Store(String),
    /// A value read inside the transaction is corrupt, or one to write does not fit its column.
    #[error("{0}")]
    Data(String),
    /// A thread of the backend (`"writer"`, `"sync"`) is gone.
    #[error("the event log's {0} thread stopped")]
    Stopped(&'static str),
    /// The batch committed, but syncing it to stable storage failed.
    #[error("{0}")]
    Sync(String),
}

/// One backend's way of writing a batch: one transaction, one commit.
#[async_trait]
pub trait BatchWriter: Send + 'static {
    /// Writes `appends` in one transaction (reading the current state inside it and calling
    /// [`plan_batch`]), commits, and returns each append's answer and the new head. An `Err`
    /// means the transaction did not commit.
    async fn write_batch(
        &mut self,
        appends: Vec<Vec<StreamWrite>>,
        final_checkpoint: bool,
    ) -> Result<Committed, BatchError>;

    /// Releases connections once the writer stops.
    async fn shutdown(&mut self);
}

/// The time source of checkpoints (see [`crate::LogConfig::clock`]).
pub type LogClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock as a [`Timestamp`]: the default [`LogClock`], for whoever opens a log without
/// injecting a clock of its own (tools, tests). The server passes its injected clock instead.
#[allow(
    clippy::disallowed_methods,
    reason = "the one wall-clock read of the log: the default of an injectable clock"
)]
pub fn system_time() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_micros(micros)
}

enum Request {
    Append {
        writes: Vec<StreamWrite>,
        reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// Events this process committed most recently, so that subscribers at the head (the
/// projectors) get new events from memory instead of reading back what was just written.
/// Bounded; a subscriber that falls further behind reads from the store as before.
#[derive(Default)]
struct Tail {
    events: VecDeque<RecordedEvent>,
}

/// How many recently committed events the tail keeps.
pub const TAIL_CAPACITY: usize = 16_384;

impl Tail {
    fn push(&mut self, events: Vec<RecordedEvent>) {
        for event in events {
            if self.events.len() == TAIL_CAPACITY {
                self.events.pop_front();
            }
            self.events.push_back(event);
        }
    }

    /// The events right after `after_position`, if the tail holds the very next one, up to
    /// `limit` and up to the first gap (positions committed by another process).
    fn after(&self, after_position: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        let wanted = after_position.checked_add(1)?;
        let start = self
            .events
            .binary_search_by_key(&wanted, |e| e.envelope.global_position)
            .ok()?;
        let mut out = Vec::with_capacity(limit.min(self.events.len() - start));
        for (next, event) in (wanted..).zip(self.events.range(start..)) {
            if out.len() == limit || event.envelope.global_position != next {
                break;
            }
            out.push(event.clone());
        }
        Some(out)
    }
}

/// The head watch's sending side, shared by the writer (this process's commits) and a backend
/// that hears of other processes' commits (PostgreSQL's `LISTEN`). The watch only moves
/// forward: a notification may announce a later head before this process's own earlier batch
/// is acknowledged, and subscribers must not be told the head went back.
#[derive(Clone)]
pub struct HeadAnnouncer(Arc<watch::Sender<u64>>);

impl HeadAnnouncer {
    /// Moves the head to `position` if that is later, waking the subscribers.
    pub fn raise(&self, position: u64) {
        self.0.send_if_modified(|current| {
            let later = position > *current;
            if later {
                *current = position;
            }
            later
        });
    }

    /// Wakes every subscriber without moving the head: commits may have been missed (a lost
    /// `LISTEN` connection), so each should look at the store again.
    pub fn wake(&self) {
        self.0.send_modify(|_| {});
    }
}

/// The handle appends go through; owns the writer task.
pub struct GroupCommit {
    requests: mpsc::Sender<Request>,
    head: HeadAnnouncer,
    closed: AtomicBool,
    tail: Arc<Mutex<Tail>>,
}

impl GroupCommit {
    /// Starts the writer task. `head` is the log's head position at open.
    pub fn start(writer: impl BatchWriter, head: u64, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        // Bounded, so that a slow disk pushes back on callers instead of queueing without limit.
        let (requests, receiver) = mpsc::channel(max_batch.saturating_mul(4));
        let head = HeadAnnouncer(Arc::new(watch::channel(head).0));
        let tail = Arc::new(Mutex::new(Tail::default()));
        tokio::spawn(run_writer(
            writer,
            receiver,
            head.clone(),
            tail.clone(),
            max_batch,
        ));
        Self {
            requests,
            head,
            closed: AtomicBool::new(false),
            tail,
        }
    }

    /// Recently committed events after `after_position` (see [`crate::EventLog::recent`]).
    pub fn recent(&self, after_position: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        self.tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .after(after_position, limit)
    }

    /// Appends through the writer task; returns once the batch holding it has committed.
    pub async fn append(&self, writes: Vec<StreamWrite>) -> Result<AppendOutcome, AppendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Unavailable("the event log is closed".into()));
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Append { writes, reply })
            .await
            .map_err(|_| AppendError::Unavailable("the event log is closed".into()))?;
        answer
            .await
            .map_err(|_| AppendError::Unavailable("the event log writer stopped".into()))?
    }

    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.0.subscribe()
    }

    /// A handle that moves the head watch for commits this process did not make (see
    /// [`HeadAnnouncer`]).
    pub fn announcer(&self) -> HeadAnnouncer {
        self.head.clone()
    }

    /// Stops accepting appends, flushes the pending ones, writes the final checkpoint and waits
    /// for the writer to stop. Calling it again does nothing.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (reply, done) = oneshot::channel();
        if self.requests.send(Request::Close { reply }).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn run_writer(
    mut writer: impl BatchWriter,
    mut requests: mpsc::Receiver<Request>,
    head: HeadAnnouncer,
    tail: Arc<Mutex<Tail>>,
    max_batch: usize,
) {
    // Committed batches wait for durability here, in commit order, while the writer goes on
    // with the next batch: a backend that syncs after committing (SQLite) overlaps one batch's
    // sync with the next one's writes.
    let (acks, pending_acks) = mpsc::unbounded_channel();
    let acknowledger = tokio::spawn(acknowledge(pending_acks, head, tail));
    let mut pending = Vec::with_capacity(max_batch);
    let mut close_reply = None;
    while close_reply.is_none() {
        pending.clear();
        if requests.recv_many(&mut pending, max_batch).await == 0 {
            break;
        }
        // Callers answered by the previous commit are about to send their next append. Yield
        // while the queue keeps growing so they make this batch instead of waiting a whole
        // commit for the next one (without this, batches alternate between full and tiny).
        while pending.len() < max_batch {
            tokio::task::yield_now().await;
            let before = pending.len();
            while pending.len() < max_batch {
                match requests.try_recv() {
                    Ok(request) => pending.push(request),
                    Err(_) => break,
                }
            }
            if pending.len() == before {
                break;
            }
        }
        let mut appends = Vec::with_capacity(pending.len());
        let mut replies = Vec::with_capacity(pending.len());
        for request in pending.drain(..) {
            match request {
                Request::Append { writes, reply } if close_reply.is_none() => {
                    appends.push(writes);
                    replies.push(reply);
                }
                Request::Append { reply, .. } => {
                    let _ = reply.send(Err(AppendError::Unavailable(
                        "the event log is closed".into(),
                    )));
                }
                Request::Close { reply } => close_reply = Some(reply),
            }
        }
        if appends.is_empty() && close_reply.is_none() {
            continue;
        }
        let count = appends.len();
        match writer.write_batch(appends, close_reply.is_some()).await {
            Ok(committed) => {
                // Only fails if the acknowledger is gone, and then its receiver dropped the
                // replies, which answers their callers with an error.
                let _ = acks.send((committed, replies));
            }
            Err(error) => {
                tracing::error!(%error, appends = count, "event log batch failed to commit");
                let error = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Unavailable(error.clone())));
                }
            }
        }
    }
    // Every committed batch is answered (durable or failed) before the writer stops.
    drop(acks);
    if let Err(error) = acknowledger.await {
        tracing::error!(%error, "event log acknowledger task failed");
    }
    // Anything still queued after close is refused; dropping the receiver answers it.
    requests.close();
    while let Ok(request) = requests.try_recv() {
        match request {
            Request::Append { reply, .. } => {
                let _ = reply.send(Err(AppendError::Unavailable(
                    "the event log is closed".into(),
                )));
            }
            Request::Close { reply } => {
                let _ = reply.send(());
            }
        }
    }
    writer.shutdown().await;
    if let Some(reply) = close_reply {
        let _ = reply.send(());
    }
}

type Replies = Vec<oneshot::Sender<Result<AppendOutcome, AppendError>>>;

/// Answers each committed batch once it is durable, in commit order, and only then shows it to
/// subscribers (tail and head). A batch that cannot be made durable is answered with an error
/// and never shown; its events may still be in the store (they committed), which is why a
/// backend that fails to sync fails every later batch too, until the process restarts and the
/// store's own recovery decides what survived.
async fn acknowledge(
    mut batches: mpsc::UnboundedReceiver<(Committed, Replies)>,
    head: HeadAnnouncer,
    tail: Arc<Mutex<Tail>>,
) {
    while let Some((committed, replies)) = batches.recv().await {
        let Committed {
            results,
            head: new_head,
            events,
            durable,
        } = committed;
        match durable.wait().await {
            Ok(()) => {
                // Into the tail before the head moves, so a woken subscriber finds them.
                tail.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(events);
                head.raise(new_head.position);
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, appends = replies.len(), "event log batch committed but is not durable");
                let error = format!("the event log could not make the append durable: {error}");
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Unavailable(error.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::{Envelope, RecordedEvent};
    use uuid::Uuid;

    use super::{TAIL_CAPACITY, Tail};

    fn at(position: u64) -> RecordedEvent {
        RecordedEvent {
            envelope: Envelope::builder()
                .event_id(Uuid::from_u128(u128::from(position)))
                .stream("s")
                .stream_version(position)
                .position(position)
                .event_type("t", 1)
                .build(),
            payload: Vec::new(),
        }
    }

    fn positions(events: Option<Vec<RecordedEvent>>) -> Option<Vec<u64>> {
        events.map(|e| e.iter().map(|e| e.envelope.global_position).collect())
    }

    #[test]
    fn the_tail_hands_out_only_the_contiguous_run_right_after_a_position() {
        let mut tail = Tail::default();
        tail.push((1..=5).map(at).collect());
        // Positions 6 and 7 were committed by another process: a gap in our tail.
        tail.push((8..=9).map(at).collect());
        assert_eq!(positions(tail.after(0, 100)), Some(vec![1, 2, 3, 4, 5]));
        assert_eq!(positions(tail.after(2, 2)), Some(vec![3, 4]));
        assert_eq!(positions(tail.after(4, 100)), Some(vec![5]));
        // The next position is not held: the caller must read the store.
        assert_eq!(positions(tail.after(5, 100)), None);
        assert_eq!(positions(tail.after(7, 100)), Some(vec![8, 9]));
        assert_eq!(positions(tail.after(9, 100)), None);
    }

    #[test]
    fn the_tail_forgets_the_oldest_events_beyond_its_capacity() {
        let mut tail = Tail::default();
        let total = TAIL_CAPACITY as u64 + 10;
        tail.push((1..=total).map(at).collect());
        assert_eq!(tail.events.len(), TAIL_CAPACITY);
        assert_eq!(positions(tail.after(0, 10)), None);
        assert_eq!(positions(tail.after(10, 1)), Some(vec![11]));
    }
}
