//! The embedded backend: one SQLite file in WAL mode.
//!
//! A single writer connection, owned by the group-commit writer's thread, makes every write
//! serial, so commit order is position order without any locking of our own. Reads go through a
//! separate sqlx pool and see consistent WAL snapshots. Every batch's WAL is synced before any of
//! its appends is answered (by a sync thread, overlapping the next batch's writes: see
//! [`writer::SqliteWriter`]): an acknowledged append survives `kill -9` and power loss.
//!
//! sqlx creates the schema and serves the other reads. The hot paths drive SQLite directly
//! (rusqlite, on the same bundled SQLite): the writer and [`EventLog::read_all_bulk`] on threads
//! of their own, and [`EventLog::read_stream`] (what every command reads) inline on the caller's
//! thread: sqlx-sqlite hands every statement and every row to a worker thread and copies each
//! value on the way, which cost more CPU per event than SQLite's own work.
//! This module must not know about PostgreSQL.
//!
//! # Layout
//! - this file: [`SqliteLog`] and its reads (sqlx, and the bulk reader on rusqlite).
//! - `schema`: the tables and indexes of the storage format, and the migration of older files.
//! - [`writer`]: the writer thread and its connection, and the WAL sync thread.
//! - [`wal`]: keeping a WAL file within a bound ([`wal::WalBound`]), which the read store's
//!   SQLite file uses too.

mod schema;
pub mod wal;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use tessera_event_schemas::{RecordedEvent, Timestamp};
use uuid::Uuid;

use crate::codec::{self, event_columns, event_row};
use crate::group_commit::{CheckpointPolicy, GroupCommit};
use crate::{AppendError, AppendOutcome, Checkpoint, EventLog, LogConfig, LogError, StreamWrite};
use writer::{SqliteWriter, Unsynced};

/// The embedded event log.
pub struct SqliteLog {
    reads: SqlitePool,
    bulk: Arc<BulkReader>,
    commit: GroupCommit,
    checkpointer: tokio::task::JoinHandle<()>,
    unsynced: Arc<Unsynced>,
}

/// Checkpoints the WAL from its own connection, so that the writer never does. SQLite's
/// automatic checkpoint runs inside the commit that crosses 1000 WAL pages: that commit then
/// also writes those pages into the database file and fsyncs it, and every append waiting on
/// the batch waits for that too (the p99 of the token endpoint showed it). A PASSIVE checkpoint
/// takes no lock writers or readers wait on; it copies what no reader still needs, so that the
/// writer's truncation past the bound (see `writer`) has little left to copy.
///
/// A PASSIVE checkpoint never shortens the file, though (see [`wal`]). Once writes pause (the
/// head has not moved for a whole period) a TRUNCATE checkpoint empties it, so that an idle
/// log keeps no WAL behind, whatever the load before. [`wal::Pacer`] decides which and when.
async fn checkpoint_wal(
    pool: SqlitePool,
    mut head: tokio::sync::watch::Receiver<u64>,
    mut pacer: wal::Pacer,
) {
    let mut ticker = tokio::time::interval(wal::Pacer::TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if pool.is_closed() {
            return;
        }
        let next = pacer.next(|| {
            let paused = !head.has_changed().unwrap_or(false);
            head.mark_unchanged();
            paused
        });
        let mode = match next {
            None => continue,
            Some(wal::Checkpoint::Passive) => "PRAGMA wal_checkpoint(PASSIVE)",
            Some(wal::Checkpoint::Truncate) => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        if let Err(error) = sqlx::query(mode).execute(&pool).await {
            tracing::debug!(%error, "WAL checkpoint skipped");
        }
    }
}

impl SqliteLog {
    /// Opens (creating if needed) the log file at `path`.
    pub async fn open(path: &Path, config: LogConfig) -> Result<Self, LogError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                LogError::Unavailable(format!("creating {}: {e}", parent.display()))
            })?;
        }
        // The format first, on a connection of its own, before any other opens the file.
        let prepared = path.to_owned();
        tokio::task::spawn_blocking(move || schema::prepare(&prepared))
            .await
            .map_err(|e| LogError::Unavailable(format!("preparing the log: {e}")))??;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL on these connections (schema creation, reads, the background WAL
            // checkpoint): a checkpoint then syncs the WAL before copying it into the database
            // and the database before the WAL may be reused. The writer's own connection syncs
            // through its sync thread instead (see `SqliteWriter`).
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let reads = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let head = read_head(&reads).await?;
        let policy = CheckpointPolicy::new(&config);
        let unsynced = Arc::new(Unsynced::default());
        let writer = SqliteWriter::start(path, policy, unsynced.clone(), config.wal_limit_bytes)?;
        let commit = GroupCommit::start(writer, head, config.max_batch);
        let pacer = wal::Pacer::new(path, config.wal_limit_bytes);
        let checkpointer = tokio::spawn(checkpoint_wal(reads.clone(), commit.watch_head(), pacer));
        Ok(Self {
            reads,
            bulk: Arc::new(BulkReader {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            commit,
            checkpointer,
            unsynced,
        })
    }

    /// `events` (in position order) without any this process has committed but not yet synced.
    /// The writer commits before it syncs (see `SqliteWriter`), so a read of the store may find
    /// the newest batches before they are on disk; whoever walks the log (projectors, the Kafka
    /// publisher) must never act on an event that a power cut could still take back. Events
    /// that other processes stored are left alone: a verifier must see everything on disk.
    fn durable_only(&self, mut events: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
        // Read after the store: a batch is registered before it commits, so one the read
        // found is either still registered here or already synced.
        if let Some(fence) = self.unsynced.first() {
            let durable = events.partition_point(|e| e.envelope.global_position < fence);
            events.truncate(durable);
        }
        events
    }
}

fn unavailable(error: sqlx::Error) -> LogError {
    LogError::Unavailable(error.to_string())
}

async fn read_head(pool: &SqlitePool) -> Result<u64, LogError> {
    let position: i64 = sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(unavailable)?;
    codec::stored_u64(position, "log head").map_err(LogError::Corrupt)
}

#[async_trait]
impl EventLog for SqliteLog {
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<AppendOutcome, AppendError> {
        self.commit.append(writes).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        // On the caller's thread, with a rusqlite connection of the bulk reader: a stream read
        // is a few indexed rows, microseconds from the page cache, and sqlx's handoff of each
        // statement and row to its worker thread cost more than SQLite's work (the context
        // switches were a third of a refresh grant's CPU, BENCHMARKS.md, issue 17).
        self.bulk.read_stream(stream_id, after_version, limit)
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        // The limit is bound as `CAST(? AS INTEGER)`, never a bare `LIMIT ?`: the bundled
        // SQLite (3.51) reads a bare bound limit while planning and then marks the prepared
        // statement expired whenever that parameter is bound again, so every read re-parsed and
        // re-planned its statement (measured: a sixth of all CPU in a read-heavy run). The cast
        // hides the value from the planner, so the cached statement is reused as is.
        // Each row's stream id comes from `streams` by key (its rowid): a lookup in a table of
        // one row per stream, on this path for short reads only (walks take `read_all_bulk`).
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            ", streams.stream_id FROM events JOIN streams ON streams.key = events.stream \
             WHERE global_position > ? ORDER BY global_position LIMIT CAST(? AS INTEGER)"
        ))
        .bind(codec::after(after_position))
        .bind(codec::limit(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(unavailable)?;
        Ok(self.durable_only(decode_events(&rows)?))
    }

    async fn read_all_bulk(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let bulk = self.bulk.clone();
        let events = tokio::task::spawn_blocking(move || bulk.read_all(after_position, limit))
            .await
            .map_err(|e| LogError::Unavailable(format!("bulk read task: {e}")))??;
        Ok(self.durable_only(events))
    }

    async fn head_position(&self) -> Result<u64, LogError> {
        let stored = read_head(&self.reads).await?;
        Ok(match self.unsynced.first() {
            Some(fence) => stored.min(fence - 1),
            None => stored,
        })
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commit.watch_head()
    }

    fn recent(&self, after_position: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        self.commit.recent(after_position, limit)
    }

    async fn checkpoints(&self, after_position: u64) -> Result<Vec<Checkpoint>, LogError> {
        let rows = sqlx::query(
            "SELECT position, log_hash, created_at, key_id, signature FROM log_checkpoints \
             WHERE position > ? ORDER BY position",
        )
        .bind(codec::after(after_position))
        .fetch_all(&self.reads)
        .await
        .map_err(unavailable)?;
        rows.iter().map(checkpoint_row).collect()
    }

    async fn ping(&self) -> Result<(), LogError> {
        sqlx::query("SELECT 1")
            .execute(&self.reads)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn close(&self) {
        self.commit.close().await;
        self.checkpointer.abort();
        // Leave a small WAL behind: everything committed is copied into the database file.
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.reads)
            .await
        {
            tracing::debug!(%error, "final WAL checkpoint skipped");
        }
        self.reads.close().await;
    }
}

/// Decodes a page of `events` rows, each followed by its stream id, into a vector sized up
/// front (collecting into a `Result` cannot know the length, and regrowing a page-sized vector
/// of events showed in profiles).
fn decode_events(rows: &[SqliteRow]) -> Result<Vec<RecordedEvent>, LogError> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let stream_id: String = row
            .try_get(STREAM_ID_COLUMN)
            .map_err(|e| LogError::Corrupt(e.to_string()))?;
        events.push(event_row!(row, stream_id)?);
    }
    Ok(events)
}

/// Where a joined page has each row's stream id: right after [`event_columns!`].
const STREAM_ID_COLUMN: usize = 21;

/// Serves [`EventLog::read_all_bulk`] through plain, read-only SQLite connections (rusqlite, on
/// the same bundled SQLite as sqlx) on blocking threads, instead of sqlx.
///
/// sqlx-sqlite hands every row from its worker thread to the caller through a channel and copies
/// every column into a separately allocated `sqlite3_value` first, then frees them on the
/// caller's thread: about 15 µs of CPU per event on the development machine, most of it in the
/// allocator, thread wake-ups and mutexes. Reading the columns in place where SQLite steps
/// costs about a tenth of that, which is what makes `tessera-replay verify` fast on large logs.
/// The rows decode through the same [`codec::StoredRow`] as `read_all`, so both return exactly
/// the same events. Idle connections are kept between calls (as many as were ever used at once)
/// so that the statement stays prepared, each with the stream ids it has looked up.
struct BulkReader {
    path: PathBuf,
    idle: Mutex<Vec<BulkConnection>>,
}

/// A bulk reader's connection and the stream ids it has resolved, by key.
///
/// A row names its stream by key; a walk over the log meets the same few streams again and
/// again (a client's tokens), so each id is read from `streams` once and then copied from
/// here, instead of joining `streams` for every row. A key never changes its stream (streams
/// are never deleted, and a reader sees only committed keys), so entries never go stale; the
/// map is emptied when it reaches [`MAX_STREAMS`] entries, which bounds its memory on
/// a log of many small streams (to about 8 MiB: ids are about 80 bytes). A walk over more
/// streams than that, interleaved, pays one indexed lookup per row, about what a join costs.
struct BulkConnection {
    connection: rusqlite::Connection,
    streams: HashMap<i64, String>,
}

/// Most stream ids a [`BulkConnection`] keeps: more than a rebuild meets in turn on a log of
/// tens of thousands of tenants (the catch-up benchmark walks 25,000 streams round after round,
/// and a smaller map, emptied every lap, missed on most rows).
const MAX_STREAMS: usize = 65_536;

/// The id of the stream with `key`, from `streams` (the map) or from the `streams` table.
fn stream_id(
    connection: &rusqlite::Connection,
    streams: &mut HashMap<i64, String>,
    key: i64,
) -> Result<String, LogError> {
    if let Some(stream_id) = streams.get(&key) {
        return Ok(stream_id.clone());
    }
    let stream_id: String = connection
        .prepare_cached("SELECT stream_id FROM streams WHERE key = ?1")
        .and_then(|mut statement| statement.query_row([key], |row| row.get(0)))
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => {
                LogError::Corrupt(format!("no stream has the key {key}"))
            }
            other => bulk_error(other),
        })?;
    if streams.len() >= MAX_STREAMS {
        streams.clear();
    }
    streams.insert(key, stream_id.clone());
    Ok(stream_id)
}

impl BulkReader {
    /// One stream's events after `after_version`, at most `limit` (see `read_stream`).
    fn read_stream(
        &self,
        stream_id: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let events = stream_page(&connection.connection, stream_id, after_version, limit);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
        events
    }

    fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut connection = match idle {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let events = bulk_page(&mut connection, after_position, limit);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
        events
    }

    fn connect(&self) -> Result<BulkConnection, LogError> {
        use rusqlite::OpenFlags;
        let connection = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(bulk_error)?;
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(bulk_error)?;
        Ok(BulkConnection {
            connection,
            streams: HashMap::new(),
        })
    }
}

/// One page of events, as `read_all` selects them (`CAST`: see there), each row's stream id
/// from the connection's map ([`BulkConnection`]).
fn bulk_page(
    bulk: &mut BulkConnection,
    after_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, LogError> {
    let BulkConnection {
        connection,
        streams,
    } = bulk;
    let connection: &rusqlite::Connection = connection;
    let mut statement = connection
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE global_position > ?1 \
             ORDER BY global_position LIMIT CAST(?2 AS INTEGER)"
        ))
        .map_err(bulk_error)?;
    let mut rows = statement
        .query((codec::after(after_position), codec::limit(limit)))
        .map_err(bulk_error)?;
    // Sized up front, as in `decode_events`; a huge limit must not reserve a huge vector.
    let mut events = Vec::with_capacity(limit.min(16_384));
    while let Some(row) = rows.next().map_err(bulk_error)? {
        let key: i64 = row.get(2).map_err(bulk_error)?;
        let stream_id = stream_id(connection, streams, key)?;
        events.push(
            bulk_row(row, stream_id)
                .map_err(bulk_error)?
                .into_recorded()?,
        );
    }
    Ok(events)
}

/// One page of a stream's events, as the sqlx path selected them (`CAST`: see `read_all`); the
/// stream's key is looked up once, by the statement.
fn stream_page(
    connection: &rusqlite::Connection,
    stream_id: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, LogError> {
    let mut statement = connection
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream = (SELECT key FROM streams WHERE stream_id = ?1) \
             AND stream_version > ?2 ORDER BY stream_version LIMIT CAST(?3 AS INTEGER)"
        ))
        .map_err(bulk_error)?;
    let mut rows = statement
        .query((stream_id, codec::after(after_version), codec::limit(limit)))
        .map_err(bulk_error)?;
    let mut events = Vec::with_capacity(limit.min(64));
    while let Some(row) = rows.next().map_err(bulk_error)? {
        events.push(
            bulk_row(row, stream_id.to_owned())
                .map_err(bulk_error)?
                .into_recorded()?,
        );
    }
    Ok(events)
}

/// One `events` row of the stream `stream_id`, columns by position in [`event_columns!`]
/// order, strings and blobs that the event does not keep borrowed from SQLite's row.
fn bulk_row<'r>(
    row: &'r rusqlite::Row<'_>,
    stream_id: String,
) -> rusqlite::Result<codec::StoredRow<'r>> {
    let uuid = |index: usize| -> rusqlite::Result<Option<Uuid>> {
        match row.get_ref(index)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            value => Uuid::from_slice(value.as_blob()?).map(Some).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    index,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            }),
        }
    };
    let required = |index: usize| -> rusqlite::Result<Uuid> {
        uuid(index)?.ok_or(rusqlite::Error::InvalidColumnType(
            index,
            "uuid".to_owned(),
            rusqlite::types::Type::Null,
        ))
    };
    Ok(codec::StoredRow {
        global_position: row.get(0)?,
        event_id: required(1)?,
        stream_id,
        stream_version: row.get(3)?,
        tenant_id: uuid(4)?,
        event_type: row.get(5)?,
        schema_version: row.get(6)?,
        recorded_at: row.get(7)?,
        actor_kind: row.get_ref(8)?.as_str()?,
        actor_id: row.get(9)?,
        actor_uuid: uuid(10)?,
        actor_name: row.get(11)?,
        correlation_id: row.get(12)?,
        correlation_uuid: uuid(13)?,
        causation_id: uuid(14)?,
        source_ip: row.get(15)?,
        user_agent: row.get(16)?,
        payload: row.get(17)?,
        prev_hash: row.get_ref(18)?.as_blob()?,
        hash: row.get_ref(19)?.as_blob()?,
        log_hash: row.get_ref(20)?.as_blob()?,
    })
}

/// A row that does not decode is corrupt; anything else means the store could not be read.
fn bulk_error(error: rusqlite::Error) -> LogError {
    use rusqlite::Error as E;
    match error {
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..) => LogError::Corrupt(error.to_string()),
        other => LogError::Unavailable(other.to_string()),
    }
}

fn checkpoint_row(row: &SqliteRow) -> Result<Checkpoint, LogError> {
    let corrupt = |e: String| LogError::Corrupt(e);
    let position: i64 = row
        .try_get("position")
        .map_err(|e| corrupt(e.to_string()))?;
    let log_hash: Vec<u8> = row
        .try_get("log_hash")
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(Checkpoint {
        position: codec::stored_u64(position, "checkpoint position").map_err(corrupt)?,
        log_hash: codec::stored_hash(&log_hash, "checkpoint hash").map_err(corrupt)?,
        created_at: Timestamp::from_micros(
            row.try_get("created_at")
                .map_err(|e| corrupt(e.to_string()))?,
        ),
        key_id: row.try_get("key_id").map_err(|e| corrupt(e.to_string()))?,
        signature: row
            .try_get("signature")
            .map_err(|e| corrupt(e.to_string()))?,
    })
}
