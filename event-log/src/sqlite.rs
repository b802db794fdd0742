//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! A single writer connection, used only by the group-commit writer task, makes every write
//! serial, so commit order is position order without any locking of our own. Reads go through a
//! separate pool and see consistent WAL snapshots. `synchronous=FULL` syncs the WAL on every
//! commit: an acknowledged append survives `kill -9` and power loss.
//!
//! SQLite runs in-process, so round trips are cheap but not free (sqlx hands every statement to
//! a worker thread); a batch therefore uses multi-row statements whose row counts are powers of
//! two, which keeps the number of distinct statement texts (and cached prepared statements) small.
//! This module must not know about PostgreSQL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};
use tessera_event_schemas::{RecordedEvent, Timestamp};
use uuid::Uuid;

use crate::codec::{self, EventRow, event_columns, event_row};
use crate::group_commit::{
    BatchWriter, CheckpointPolicy, Committed, GroupCommit, LogHead, StoredEvent, StreamHead,
    batch_keys, plan_batch,
};
use crate::{AppendError, AppendOutcome, Checkpoint, EventLog, LogConfig, LogError, StreamWrite};

/// Rows per multi-row statement at most. 256 rows of 19 columns stay far below SQLite's limit of
/// 32766 bound parameters.
const MAX_ROWS_PER_STATEMENT: usize = 256;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        global_position INTEGER PRIMARY KEY,
        event_id BLOB NOT NULL UNIQUE,
        stream_id TEXT NOT NULL,
        stream_version INTEGER NOT NULL,
        tenant_id BLOB NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        actor_name TEXT,
        correlation_id TEXT NOT NULL,
        causation_id BLOB,
        source_ip TEXT,
        user_agent TEXT,
        payload BLOB NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL,
        log_hash BLOB NOT NULL,
        UNIQUE (stream_id, stream_version)
    )",
    "CREATE TABLE IF NOT EXISTS streams (
        stream_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        last_hash BLOB NOT NULL
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        position INTEGER NOT NULL,
        log_hash BLOB NOT NULL
    )",
    "INSERT OR IGNORE INTO log_head (id, position, log_hash) VALUES (1, 0, zeroblob(32))",
    "CREATE TABLE IF NOT EXISTS log_checkpoints (
        position INTEGER PRIMARY KEY,
        log_hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        signature BLOB NOT NULL
    )",
];

/// The embedded event log.
pub struct SqliteLog {
    reads: SqlitePool,
    bulk: Arc<BulkReader>,
    commit: GroupCommit,
    checkpointer: tokio::task::JoinHandle<()>,
}

/// How often the background task copies the WAL into the database file.
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints the WAL from its own connection, so that the writer never does. SQLite's
/// automatic checkpoint runs inside the commit that crosses 1000 WAL pages: that commit then
/// also writes those pages into the database file and fsyncs it, and every append waiting on
/// the batch waits for that too (the p99 of the token endpoint showed it). A PASSIVE checkpoint
/// takes no lock writers or readers wait on; it copies what no reader still needs.
async fn checkpoint_wal(pool: SqlitePool) {
    let mut ticker = tokio::time::interval(WAL_CHECKPOINT_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
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
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // The writer keeps SQLite's temporary files in memory. A multi-row INSERT inside a
        // transaction needs a statement journal (to undo just that statement on a constraint
        // error); with the default file-backed temp store a batch-sized statement spills it to
        // a freshly created temp file, and creating, writing and deleting that file was the
        // largest kernel cost per batch. The statement journal plays no part in crash recovery
        // (the WAL does), so durability is unchanged.
        let writer_options = options
            .clone()
            .pragma("temp_store", "MEMORY")
            // Checkpoints run in the background instead (see `checkpoint_wal`).
            .pragma("wal_autocheckpoint", "0")
            // Lookups and inserts use a few dozen distinct statement texts (power-of-two row
            // counts, two key lists per lookup); keep all of them prepared.
            .statement_cache_capacity(256);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(writer_options)
            .await
            .map_err(unavailable)?;
        for statement in SCHEMA {
            sqlx::query(*statement)
                .execute(&writer)
                .await
                .map_err(unavailable)?;
        }
        let reads = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let head = read_head(&reads).await?;
        let policy = CheckpointPolicy {
            signer: config.checkpoint_signer.clone(),
            every: config.checkpoint_every,
        };
        let commit = GroupCommit::start(
            SqliteWriter {
                pool: writer,
                policy,
            },
            head,
            config.max_batch,
        );
        let checkpointer = tokio::spawn(checkpoint_wal(reads.clone()));
        Ok(Self {
            reads,
            bulk: Arc::new(BulkReader {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            commit,
            checkpointer,
        })
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
        // `CAST`: see `read_all`.
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream_id = ? AND stream_version > ? \
             ORDER BY stream_version LIMIT CAST(? AS INTEGER)"
        ))
        .bind(stream_id)
        .bind(codec::after(after_version))
        .bind(codec::limit(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(unavailable)?;
        decode_events(&rows)
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE global_position > ? \
             ORDER BY global_position LIMIT CAST(? AS INTEGER)"
        ))
        .bind(codec::after(after_position))
        .bind(codec::limit(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(unavailable)?;
        decode_events(&rows)
    }

    async fn read_all_bulk(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let bulk = self.bulk.clone();
        tokio::task::spawn_blocking(move || bulk.read_all(after_position, limit))
            .await
            .map_err(|e| LogError::Unavailable(format!("bulk read task: {e}")))?
    }

    async fn head_position(&self) -> Result<u64, LogError> {
        read_head(&self.reads).await
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

/// Decodes a page of `events` rows into a vector sized up front (collecting into a `Result`
/// cannot know the length, and regrowing a page-sized vector of events showed in profiles).
fn decode_events(rows: &[SqliteRow]) -> Result<Vec<RecordedEvent>, LogError> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        events.push(event_row!(row)?);
    }
    Ok(events)
}

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
/// so that the statement stays prepared.
struct BulkReader {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl BulkReader {
    fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let events = bulk_page(&connection, after_position, limit);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
        events
    }

    fn connect(&self) -> Result<rusqlite::Connection, LogError> {
        use rusqlite::OpenFlags;
        let connection = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(bulk_error)?;
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(bulk_error)?;
        Ok(connection)
    }
}

/// One page of events, as `read_all` selects them (`CAST`: see there).
fn bulk_page(
    connection: &rusqlite::Connection,
    after_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, LogError> {
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
        events.push(bulk_row(row).map_err(bulk_error)?.into_recorded()?);
    }
    Ok(events)
}

/// One `events` row, columns by position in [`event_columns!`] order, strings and blobs that
/// the event does not keep borrowed from SQLite's row.
fn bulk_row<'r>(row: &'r rusqlite::Row<'_>) -> rusqlite::Result<codec::StoredRow<'r>> {
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
        stream_id: row.get(2)?,
        stream_version: row.get(3)?,
        tenant_id: required(4)?,
        event_type: row.get(5)?,
        schema_version: row.get(6)?,
        recorded_at: row.get(7)?,
        actor_kind: row.get_ref(8)?.as_str()?,
        actor_id: row.get(9)?,
        actor_name: row.get(10)?,
        correlation_id: row.get(11)?,
        causation_id: uuid(12)?,
        source_ip: row.get(13)?,
        user_agent: row.get(14)?,
        payload: row.get(15)?,
        prev_hash: row.get_ref(16)?.as_blob()?,
        hash: row.get_ref(17)?.as_blob()?,
        log_hash: row.get_ref(18)?.as_blob()?,
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

/// The writer task's side: owns the only connection that writes.
struct SqliteWriter {
    pool: SqlitePool,
    policy: CheckpointPolicy,
}

#[async_trait]
impl BatchWriter for SqliteWriter {
    async fn write_batch(
        &mut self,
        appends: &[Vec<StreamWrite>],
        final_checkpoint: bool,
    ) -> Result<Committed, String> {
        // IMMEDIATE takes the write lock up front, so a second process opening the same file
        // waits (busy_timeout) instead of failing half-way through our batch.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| e.to_string())?;
        let head_row = sqlx::query("SELECT position, log_hash FROM log_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        let head = LogHead {
            position: codec::stored_u64(
                head_row.try_get("position").map_err(|e| e.to_string())?,
                "log head",
            )?,
            log_hash: codec::stored_hash(
                &head_row
                    .try_get::<Vec<u8>, _>("log_hash")
                    .map_err(|e| e.to_string())?,
                "log head hash",
            )?,
        };
        let (stream_ids, event_ids) = batch_keys(appends);
        let (streams, stored) = load_state(&mut tx, &stream_ids, &event_ids).await?;
        let mut plan = plan_batch(
            appends,
            head,
            streams,
            stored,
            &self.policy,
            final_checkpoint,
            crate::group_commit::now(),
        );

        let events = std::mem::take(&mut plan.events);
        let rows = events
            .iter()
            .cloned()
            .map(EventRow::from_recorded)
            .collect::<Result<Vec<_>, _>>()?;
        insert_events(&mut tx, rows).await?;
        upsert_streams(&mut tx, &plan.stream_heads).await?;
        if plan.head != head {
            sqlx::query("UPDATE log_head SET position = ?, log_hash = ? WHERE id = 1")
                .bind(codec::to_i64(plan.head.position)?)
                .bind(plan.head.log_hash.0.to_vec())
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        for checkpoint in &plan.checkpoints {
            sqlx::query(
                "INSERT OR IGNORE INTO log_checkpoints \
                 (position, log_hash, created_at, key_id, signature) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(codec::to_i64(checkpoint.position)?)
            .bind(checkpoint.log_hash.0.to_vec())
            .bind(checkpoint.created_at.as_micros())
            .bind(checkpoint.key_id.clone())
            .bind(checkpoint.signature.clone())
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(Committed {
            results: plan.results,
            head: plan.head,
            events,
        })
    }

    async fn shutdown(&mut self) {
        self.pool.close().await;
    }
}

/// Splits `n` rows into power-of-two chunks of at most [`MAX_ROWS_PER_STATEMENT`].
fn power_of_two_chunks(mut n: usize) -> Vec<usize> {
    let mut chunks = Vec::new();
    while n > 0 {
        let size = if n >= MAX_ROWS_PER_STATEMENT {
            MAX_ROWS_PER_STATEMENT
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        chunks.push(size);
        n -= size;
    }
    chunks
}

/// `(?, ?, ...), (...)`: `rows` groups of `columns` placeholders.
fn value_groups(rows: usize, columns: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    vec![group; rows].join(", ")
}

/// `?, ?, ...` for an `IN` list.
fn in_list(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Lookups pad their key lists to a power of two (repeating the last key, which changes nothing
/// in an `IN` list) so that only a handful of statement texts are ever prepared.
fn padded_chunks<T>(keys: &[T]) -> Vec<Vec<&T>> {
    keys.chunks(MAX_ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut padded: Vec<&T> = chunk.iter().collect();
            if let Some(last) = chunk.last() {
                padded.resize(chunk.len().next_power_of_two(), last);
            }
            padded
        })
        .collect()
}

/// Stream heads and already stored events of a batch. Both lookups share one statement per
/// chunk (a stream row has a NULL event id, an event row a non-NULL one), which halves the
/// round trips to the connection's worker thread.
async fn load_state(
    tx: &mut Transaction<'static, Sqlite>,
    stream_ids: &[String],
    event_ids: &[Uuid],
) -> Result<(HashMap<String, StreamHead>, HashMap<Uuid, StoredEvent>), String> {
    let mut heads = HashMap::with_capacity(stream_ids.len());
    let mut stored = HashMap::new();
    let stream_chunks = padded_chunks(stream_ids);
    let event_chunks = padded_chunks(event_ids);
    for i in 0..stream_chunks.len().max(event_chunks.len()) {
        let streams = stream_chunks.get(i).map_or(&[][..], Vec::as_slice);
        let events = event_chunks.get(i).map_or(&[][..], Vec::as_slice);
        // SQLite accepts an empty `IN ()` list, so one side may run out before the other.
        let sql = format!(
            "SELECT NULL, stream_id, version, last_hash, NULL FROM streams \
             WHERE stream_id IN ({}) \
             UNION ALL \
             SELECT event_id, stream_id, stream_version, NULL, global_position FROM events \
             WHERE event_id IN ({})",
            in_list(streams.len()),
            in_list(events.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in streams {
            query = query.bind(id.as_str());
        }
        for id in events {
            query = query.bind(**id);
        }
        for row in query
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| e.to_string())?
        {
            let event_id: Option<Uuid> = row.try_get(0).map_err(|e| e.to_string())?;
            let stream_id: String = row.try_get(1).map_err(|e| e.to_string())?;
            let version: i64 = row.try_get(2).map_err(|e| e.to_string())?;
            let version = codec::stored_u64(version, "stream version")?;
            match event_id {
                None => {
                    let last_hash: &[u8] = row.try_get(3).map_err(|e| e.to_string())?;
                    heads.insert(
                        stream_id,
                        StreamHead {
                            version,
                            last_hash: codec::stored_hash(last_hash, "stream hash")?,
                        },
                    );
                }
                Some(event_id) => {
                    let position: i64 = row.try_get(4).map_err(|e| e.to_string())?;
                    stored.insert(
                        event_id,
                        StoredEvent {
                            stream_id,
                            stream_version: version,
                            global_position: codec::stored_u64(position, "position")?,
                        },
                    );
                }
            }
        }
    }
    Ok((heads, stored))
}

async fn insert_events(
    tx: &mut Transaction<'static, Sqlite>,
    rows: Vec<EventRow>,
) -> Result<(), String> {
    let mut rows = rows.into_iter();
    for size in power_of_two_chunks(rows.len()) {
        let sql = format!(
            concat!("INSERT INTO events (", event_columns!(), ") VALUES {}"),
            value_groups(size, 19)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in rows.by_ref().take(size) {
            query = query
                .bind(row.global_position)
                .bind(row.event_id)
                .bind(row.stream_id)
                .bind(row.stream_version)
                .bind(row.tenant_id)
                .bind(row.event_type)
                .bind(row.schema_version)
                .bind(row.recorded_at)
                .bind(row.actor_kind)
                .bind(row.actor_id)
                .bind(row.actor_name)
                .bind(row.correlation_id)
                .bind(row.causation_id)
                .bind(row.source_ip)
                .bind(row.user_agent)
                .bind(row.payload)
                .bind(row.prev_hash.0.to_vec())
                .bind(row.hash.0.to_vec())
                .bind(row.log_hash.0.to_vec());
        }
        query.execute(&mut **tx).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn upsert_streams(
    tx: &mut Transaction<'static, Sqlite>,
    heads: &[(String, StreamHead)],
) -> Result<(), String> {
    let mut heads = heads.iter();
    for size in power_of_two_chunks(heads.len()) {
        let sql = format!(
            "INSERT INTO streams (stream_id, version, last_hash) VALUES {} \
             ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, \
             last_hash = excluded.last_hash",
            value_groups(size, 3)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, head) in heads.by_ref().take(size) {
            query = query
                .bind(id.clone())
                .bind(codec::to_i64(head.version)?)
                .bind(head.last_hash.0.to_vec());
        }
        query.execute(&mut **tx).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_that_add_up() {
        for n in [0, 1, 2, 3, 37, 64, 255, 256, 257, 1000] {
            let chunks = power_of_two_chunks(n);
            assert_eq!(chunks.iter().sum::<usize>(), n);
            assert!(
                chunks
                    .iter()
                    .all(|c| c.is_power_of_two() && *c <= MAX_ROWS_PER_STATEMENT)
            );
        }
    }
}
