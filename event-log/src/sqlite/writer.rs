//! The SQLite log's writing side: the group-commit writer's thread, which owns the only
//! connection that writes, and the sync thread that makes each committed batch durable.
//!
//! See [`SqliteWriter`] for why both exist. This module must not know about PostgreSQL; the
//! rules of a batch come from [`plan_batch`], the row layout from `codec`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::wal::{WalBound, journal_size_limit, wal_path};
use crate::codec::{self, CompactIds, event_columns};
use crate::group_commit::{
    BatchError, BatchWriter, CheckpointPolicy, Committed, Durable, LogHead, Plan, StoredEvent,
    StreamHead, batch_keys, plan_batch,
};
use crate::{LogError, StreamWrite};

/// The first position of every batch this process has committed (or is committing) whose WAL
/// is not synced yet, oldest first. The writer registers a batch just before its commit; the
/// syncer removes it once synced, and never after a failed sync.
#[derive(Default)]
pub(super) struct Unsynced {
    firsts: Mutex<std::collections::VecDeque<u64>>,
}

impl Unsynced {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<u64>> {
        self.firsts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn first(&self) -> Option<u64> {
        self.lock().front().copied()
    }
}

/// The group-commit writer's side: a dedicated thread that owns the only connection that writes.
///
/// The connection is a plain SQLite connection (rusqlite, on the same bundled SQLite as sqlx)
/// driven from its own thread, so a whole batch (the log head, the stream and event-id lookups,
/// one prepared insert per event and per stream, the head update and the commit) runs in one
/// place. Through sqlx every statement was a round trip to the connection's worker thread with
/// every bound value copied on the way; a batch needed ten or more of them and multi-row
/// statements built per batch size. Here each statement is prepared once and stepped in place.
///
/// **Durability is pipelined.** The writer's connection commits with `synchronous=OFF`: the
/// commit writes the batch's WAL frames but does not wait for the disk. The batch then goes to
/// the [`Syncer`] thread, which `fdatasync`s the WAL file, once for every batch committed since
/// its last sync, and only then releases the batch (see `group_commit::Durable`): its callers are
/// answered and subscribers see it. Meanwhile the writer already commits the next batch, so one
/// batch's sync overlaps the next one's writes, where `synchronous=FULL` made every commit wait
/// for its own sync. An acknowledged append is on disk exactly as before: it survives `kill -9`
/// and power loss. Committed but not yet synced events are visible only to this connection's
/// transactions and to stream reads (a command deciding from one appends after it, so it becomes
/// durable no earlier); whole-log reads stop before them (see `SqliteLog::durable_only`).
pub(super) struct SqliteWriter {
    /// `None` once shut down.
    jobs: Option<std::sync::mpsc::Sender<WriteJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
    syncer: Option<std::thread::JoinHandle<()>>,
}

/// Releases committed batches once the WAL holding them is on stable storage.
///
/// Each request is one committed batch; a sync covers every batch committed before it started,
/// so batches that queue up during one sync share the next. A failed sync fails its batches and
/// every later one until the process restarts: after a failed `fsync` Linux may already have
/// dropped the dirty pages and cleared the error, so a later sync that "succeeds" proves nothing.
struct Syncer {
    /// `<log>-wal`, opened afresh for each sync so that it is always the live WAL file.
    wal: PathBuf,
    queue: std::sync::mpsc::Receiver<SyncRequest>,
    unsynced: Arc<Unsynced>,
}

/// One committed batch waiting for its sync.
struct SyncRequest {
    /// Whether the batch stored events (and so registered its first position in `Unsynced`).
    stored_events: bool,
    /// Answered with the sync's result.
    synced: tokio::sync::oneshot::Sender<Result<(), BatchError>>,
}
type SyncQueue = std::sync::mpsc::Sender<SyncRequest>;

impl Syncer {
    fn run(self) {
        let mut failed: Option<BatchError> = None;
        while let Ok(first) = self.queue.recv() {
            let mut batches = vec![first];
            batches.extend(self.queue.try_iter());
            let result = match &failed {
                Some(error) => Err(error.clone()),
                None => sync_data(&self.wal),
            };
            match &result {
                Ok(()) => {
                    let mut unsynced = self.unsynced.lock();
                    for _ in batches.iter().filter(|b| b.stored_events) {
                        unsynced.pop_front();
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "syncing the event log's WAL failed: appends now fail until restart");
                    failed = Some(error.clone());
                }
            }
            for batch in batches {
                let _ = batch.synced.send(result.clone());
            }
        }
    }
}

fn sync_data(path: &Path) -> Result<(), BatchError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_data())
        .map_err(|e| BatchError::Sync(format!("fdatasync {}: {e}", path.display())))
}

struct WriteJob {
    appends: Vec<Vec<StreamWrite>>,
    final_checkpoint: bool,
    reply: tokio::sync::oneshot::Sender<Result<Committed, BatchError>>,
}

impl SqliteWriter {
    /// Opens the writer's connection on `path` (whose schema exists) and starts its thread.
    ///
    /// After each commit the writer truncates the WAL if it has passed `wal_limit` bytes (see
    /// [`WalBound`]): between two of its own transactions nothing competes for the write lock,
    /// and the appends that arrive meanwhile wait for that one checkpoint, not for a busy
    /// handler's sleeps.
    pub(super) fn start(
        path: &Path,
        policy: CheckpointPolicy,
        unsynced: Arc<Unsynced>,
        wal_limit: u64,
    ) -> Result<Self, LogError> {
        let opening = |e: rusqlite::Error| {
            LogError::Unavailable(format!("opening the log writer on {}: {e}", path.display()))
        };
        let connection = open_writer(path, wal_limit).map_err(opening)?;
        let bound = WalBound::open(path, wal_limit).map_err(opening)?;
        let (syncs, sync_queue) = std::sync::mpsc::channel();
        let syncer = Syncer {
            wal: wal_path(path),
            queue: sync_queue,
            unsynced: unsynced.clone(),
        };
        let syncer = std::thread::Builder::new()
            .name("tessera-log-sync".into())
            .spawn(move || syncer.run())
            .map_err(|e| LogError::Unavailable(format!("starting the log syncer: {e}")))?;
        let (jobs, queue) = std::sync::mpsc::channel::<WriteJob>();
        let thread = std::thread::Builder::new()
            .name("tessera-log-writer".into())
            .spawn(move || {
                let mut connection = connection;
                for job in queue {
                    let result = write_batch(
                        &mut connection,
                        &job.appends,
                        job.final_checkpoint,
                        &policy,
                        &syncs,
                        &unsynced,
                    );
                    let committed = result.is_ok();
                    let _ = job.reply.send(result);
                    if committed {
                        bound.enforce("event log");
                    }
                }
                // Dropping `syncs` lets the syncer finish what is queued and stop.
            })
            .map_err(|e| LogError::Unavailable(format!("starting the log writer: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            syncer: Some(syncer),
        })
    }
}

/// The writer's connection. Its commits do not sync (`synchronous=OFF`); the `Syncer` syncs
/// the WAL before any append of a batch is answered, so an acknowledged append survives
/// `kill -9` and power loss.
fn open_writer(path: &Path, wal_limit: u64) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.set_prepared_statement_cache_capacity(32);
    // `journal_mode` answers with the mode it set, so it is queried rather than executed.
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the log must be in WAL mode, SQLite kept {mode}"
        )));
    }
    connection.execute_batch(
        // OFF: the commit does not wait for the disk; the `Syncer` syncs the WAL before any
        // append of the batch is answered (see `SqliteWriter`).
        "PRAGMA synchronous = OFF;
         -- Statement journals (undoing one statement on a constraint error) stay in memory; they
         -- play no part in crash recovery, the WAL does.
         PRAGMA temp_store = MEMORY;
         -- Checkpoints run in the background instead (see `checkpoint_wal`).
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    connection.execute_batch(&journal_size_limit(wal_limit))?;
    Ok(connection)
}

#[async_trait]
impl BatchWriter for SqliteWriter {
    async fn write_batch(
        &mut self,
        appends: Vec<Vec<StreamWrite>>,
        final_checkpoint: bool,
    ) -> Result<Committed, BatchError> {
        let stopped = BatchError::Stopped("writer");
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or(stopped.clone())?
            .send(WriteJob {
                appends,
                final_checkpoint,
                reply,
            })
            .map_err(|_| stopped.clone())?;
        answer.await.map_err(|_| stopped)?
    }

    async fn shutdown(&mut self) {
        // Closing the queue ends the writer thread, which closes the connection and the
        // syncer's queue, which ends the syncer.
        self.jobs = None;
        let threads = [self.thread.take(), self.syncer.take()];
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads.into_iter().flatten() {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// A value that does not fit its column, as the group commit reports it.
fn data<T>(value: Result<T, String>) -> Result<T, BatchError> {
    value.map_err(BatchError::Data)
}

/// A writer's SQLite error, as the group commit reports it to every append of the batch.
fn sql(error: rusqlite::Error) -> BatchError {
    BatchError::Store(error.to_string())
}

/// One batch in one `BEGIN IMMEDIATE` transaction; returns after the commit (not yet synced:
/// the caller hands the batch to the `Syncer`) or with nothing written.
fn write_batch(
    connection: &mut rusqlite::Connection,
    appends: &[Vec<StreamWrite>],
    final_checkpoint: bool,
    policy: &CheckpointPolicy,
    syncs: &SyncQueue,
    unsynced: &Unsynced,
) -> Result<Committed, BatchError> {
    // IMMEDIATE takes the write lock up front, so a second process opening the same file
    // waits (busy_timeout) instead of failing half-way through our batch.
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)?;
    let head = tx
        .prepare_cached("SELECT position, log_hash FROM log_head WHERE id = 1")
        .and_then(|mut statement| {
            statement.query_row([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
        })
        .map_err(sql)?;
    let head = LogHead {
        position: codec::stored_u64(head.0, "log head").map_err(BatchError::Data)?,
        log_hash: codec::stored_hash(&head.1, "log head hash").map_err(BatchError::Data)?,
    };
    let (stream_ids, event_ids) = batch_keys(appends);
    let (streams, stored, mut keys) = load_state(&tx, &stream_ids, &event_ids)?;
    let plan = plan_batch(appends, head, streams, stored, policy, final_checkpoint);
    write_plan(&tx, &plan, head, &mut keys)?;
    // Registered before the commit makes the batch visible to readers (see `durable_only`).
    let stored_events = match plan.events.first() {
        Some(first) => {
            unsynced.lock().push_back(first.envelope.global_position);
            true
        }
        None => false,
    };
    if let Err(error) = tx.commit() {
        if stored_events {
            unsynced.lock().pop_back();
        }
        return Err(sql(error));
    }
    let (synced, durable) = tokio::sync::oneshot::channel();
    syncs
        .send(SyncRequest {
            stored_events,
            synced,
        })
        .map_err(|_| BatchError::Stopped("sync"))?;
    Ok(Committed {
        results: plan.results,
        head: plan.head,
        events: plan.events,
        durable: Durable::Pending(durable),
    })
}

/// The heads of a batch's streams and those of its events already stored, by id, and the keys
/// of its streams that exist.
type BatchState = (
    HashMap<String, StreamHead>,
    HashMap<Uuid, StoredEvent>,
    StreamKeys,
);

/// Streams' keys in `streams` (which `events` rows refer to), by stream id.
type StreamKeys = HashMap<String, i64>;

/// Stream heads (with their keys) and already stored events of a batch, one indexed lookup per
/// key. The heads are read in the batch's transaction anyway (another process may have moved
/// them), so a stream's key comes with its head at no extra cost.
fn load_state(
    tx: &rusqlite::Transaction<'_>,
    stream_ids: &[String],
    event_ids: &[Uuid],
) -> Result<BatchState, BatchError> {
    let mut heads = HashMap::with_capacity(stream_ids.len());
    let mut keys = HashMap::with_capacity(stream_ids.len());
    let mut by_stream = tx
        .prepare_cached("SELECT key, version, last_hash FROM streams WHERE stream_id = ?1")
        .map_err(sql)?;
    for stream_id in stream_ids {
        let mut rows = by_stream.query([stream_id]).map_err(sql)?;
        if let Some(row) = rows.next().map_err(sql)? {
            keys.insert(stream_id.clone(), row.get::<_, i64>(0).map_err(sql)?);
            let version = codec::stored_u64(row.get(1).map_err(sql)?, "stream version")
                .map_err(BatchError::Data)?;
            let last_hash = row.get_ref(2).and_then(|v| Ok(v.as_blob()?)).map_err(sql)?;
            heads.insert(
                stream_id.clone(),
                StreamHead {
                    version,
                    last_hash: codec::stored_hash(last_hash, "stream hash")
                        .map_err(BatchError::Data)?,
                },
            );
        }
    }
    let mut stored = HashMap::new();
    let mut by_event = tx
        .prepare_cached(
            "SELECT streams.stream_id, stream_version, global_position \
             FROM events JOIN streams ON streams.key = events.stream WHERE event_id = ?1",
        )
        .map_err(sql)?;
    for event_id in event_ids {
        let mut rows = by_event.query([&event_id.as_bytes()[..]]).map_err(sql)?;
        if let Some(row) = rows.next().map_err(sql)? {
            stored.insert(
                *event_id,
                StoredEvent {
                    stream_id: row.get(0).map_err(sql)?,
                    stream_version: codec::stored_u64(row.get(1).map_err(sql)?, "stream version")
                        .map_err(BatchError::Data)?,
                    global_position: codec::stored_u64(row.get(2).map_err(sql)?, "position")
                        .map_err(BatchError::Data)?,
                },
            );
        }
    }
    Ok((heads, stored, keys))
}

/// Writes what [`plan_batch`] decided: the stream heads (a new stream's row first, for its key),
/// the new events, the log head and any checkpoints. Events are bound straight from the
/// planner's copies, which then go to the group-commit tail unchanged.
fn write_plan(
    tx: &rusqlite::Transaction<'_>,
    plan: &Plan,
    head_before: LogHead,
    keys: &mut StreamKeys,
) -> Result<(), BatchError> {
    for (stream_id, head) in &plan.stream_heads {
        let version = data(codec::to_i64(head.version))?;
        if let Some(key) = keys.get(stream_id) {
            tx.prepare_cached("UPDATE streams SET version = ?2, last_hash = ?3 WHERE key = ?1")
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![key, version, &head.last_hash.0[..]])
                })
                .map_err(sql)?;
        } else {
            let key = tx
                .prepare_cached(
                    "INSERT INTO streams (stream_id, version, last_hash) VALUES (?1, ?2, ?3) \
                         RETURNING key",
                )
                .and_then(|mut statement| {
                    statement.query_row(
                        rusqlite::params![stream_id, version, &head.last_hash.0[..]],
                        |row| row.get::<_, i64>(0),
                    )
                })
                .map_err(sql)?;
            keys.insert(stream_id.clone(), key);
        }
    }
    let mut insert = tx
        .prepare_cached(concat!(
            "INSERT INTO events (",
            event_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18, ?19, ?20, ?21)"
        ))
        .map_err(sql)?;
    for event in &plan.events {
        let e = &event.envelope;
        let stream = keys.get(&e.stream_id).ok_or_else(|| {
            BatchError::Data(format!("stream {} has no key in this batch", e.stream_id))
        })?;
        let ids = CompactIds::of(e);
        insert
            .execute(rusqlite::params![
                data(codec::to_i64(e.global_position))?,
                &e.event_id.as_bytes()[..],
                stream,
                data(codec::to_i64(e.stream_version))?,
                blob(&ids.tenant_id),
                e.event_type,
                i32::from(e.schema_version),
                e.recorded_at.as_micros(),
                e.actor.kind.as_str(),
                ids.actor_id,
                blob(&ids.actor_uuid),
                e.actor.name,
                ids.correlation_id,
                blob(&ids.correlation_uuid),
                e.causation_id.as_ref().map(|id| &id.as_bytes()[..]),
                e.source_ip,
                e.user_agent,
                event.payload,
                &e.prev_hash.0[..],
                &e.hash.0[..],
                &e.log_hash.0[..],
            ])
            .map_err(sql)?;
    }
    if plan.head != head_before {
        let position = data(codec::to_i64(plan.head.position))?;
        tx.prepare_cached("UPDATE log_head SET position = ?1, log_hash = ?2 WHERE id = 1")
            .and_then(|mut statement| {
                statement.execute(rusqlite::params![position, &plan.head.log_hash.0[..]])
            })
            .map_err(sql)?;
    }
    for checkpoint in &plan.checkpoints {
        let position = data(codec::to_i64(checkpoint.position))?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO log_checkpoints \
             (position, log_hash, created_at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(rusqlite::params![
                position,
                &checkpoint.log_hash.0[..],
                checkpoint.created_at.as_micros(),
                checkpoint.key_id,
                checkpoint.signature,
            ])
        })
        .map_err(sql)?;
    }
    Ok(())
}

/// A nullable UUID column's value: its 16 bytes.
fn blob(id: &Option<Uuid>) -> Option<&[u8]> {
    id.as_ref().map(|id| &id.as_bytes()[..])
}
