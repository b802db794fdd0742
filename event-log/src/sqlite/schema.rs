//! The SQLite log's storage format: its tables and indexes, the format a file records
//! (`PRAGMA user_version`), and the migration of a file written in an older format.
//!
//! Format 2 (issue 24) stores a stream's id once, in `streams`, under an integer key that
//! `events` rows and their `(stream, stream_version)` index use; format 1 repeated the ~80
//! bytes of text in every row and again in that index. Format 2 rows may also leave ids to the
//! stream (see `codec::CompactIds`); rows migrated from format 1 keep theirs in full, which
//! reads back the same. A file records no format before 2 (`user_version` 0).
//!
//! [`prepare`] runs before anything else opens the file: it creates the tables of a new file,
//! or migrates an old one in a single transaction (so a crash leaves format 1 or format 2,
//! never a mix), with a log line before and after. This module must not know about PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::LogError;

/// The storage format this build writes and reads.
pub(super) const FORMAT: i64 = 2;

/// `streams` and `events` as format 2 lays them out, without their indexes ([`INDEXES`]), which
/// a migration builds after copying the rows.
const TABLES: &[&str] = &[
    // `key` is the rowid: the integer `events` rows refer to. Keys are never reused: streams
    // are never deleted.
    "CREATE TABLE IF NOT EXISTS streams (
        key INTEGER PRIMARY KEY,
        stream_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        last_hash BLOB NOT NULL
    )",
    // `tenant_id` NULL: the tenant leading the stream id. `actor_id` (text) or `actor_uuid`
    // (16 bytes), or neither: the principal the stream id names. `correlation_id` (text) or
    // `correlation_uuid` (16 bytes). See `codec::CompactIds`.
    "CREATE TABLE IF NOT EXISTS events (
        global_position INTEGER PRIMARY KEY,
        event_id BLOB NOT NULL,
        stream INTEGER NOT NULL,
        stream_version INTEGER NOT NULL,
        tenant_id BLOB,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT,
        actor_uuid BLOB,
        actor_name TEXT,
        correlation_id TEXT,
        correlation_uuid BLOB,
        causation_id BLOB,
        source_ip TEXT,
        user_agent TEXT,
        payload BLOB NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL,
        log_hash BLOB NOT NULL
    )",
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

/// The unique indexes of format 2: a stream by its id (the writer's lookup), an event by its id
/// (idempotent retries), and a stream's events by version (stream reads; and the guarantee
/// that a version is taken once).
const STREAMS_BY_ID: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS streams_by_id ON streams (stream_id)";
const INDEXES: &[&str] = &[
    STREAMS_BY_ID,
    "CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (event_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream, stream_version)",
];

/// Creates the tables of a new file, migrates a file of an older format, and refuses one of a
/// newer format. Runs on a connection of its own, in one `IMMEDIATE` transaction, so that two
/// processes opening the same file at once cannot both migrate it.
pub(super) fn prepare(path: &Path) -> Result<(), LogError> {
    let failed = |e: rusqlite::Error| {
        LogError::Unavailable(format!("preparing the log at {}: {e}", path.display()))
    };
    let mut connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    // Another process may be migrating the same file: wait for it rather than fail.
    connection
        .busy_timeout(Duration::from_secs(600))
        .map_err(failed)?;
    connection
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(failed)?;
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(failed)?;
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let format: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(failed)?;
    if format == FORMAT {
        return Ok(());
    }
    if format > FORMAT {
        return Err(LogError::Unavailable(format!(
            "the log at {} is in storage format {format}, written by a newer Tessera; this \
             build reads format {FORMAT}",
            path.display()
        )));
    }
    let migrated = if has_table(&tx, "events").map_err(failed)? {
        tracing::warn!(
            log = %path.display(),
            "the event log is in storage format 1: migrating it to format {FORMAT} (one transaction; \
             other processes wait)"
        );
        let started = Instant::now();
        let (streams, events) = migrate_from_1(&tx).map_err(failed)?;
        Some((streams, events, started))
    } else {
        create(&tx).map_err(failed)?;
        None
    };
    tx.pragma_update(None, "user_version", FORMAT)
        .map_err(failed)?;
    tx.commit().map_err(failed)?;
    if let Some((streams, events, started)) = migrated {
        // The migration rewrote every row into the WAL: fold it into the file and cut it now,
        // rather than leave it to the first append past the bound.
        connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(failed)?;
        tracing::warn!(
            log = %path.display(),
            streams,
            events,
            seconds = started.elapsed().as_secs_f64(),
            "migrated the event log to storage format {FORMAT}; the old rows' pages are free \
             pages of the file now, which new events reuse (VACUUM returns them to the disk)"
        );
    }
    Ok(())
}

fn has_table(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )
    .map(|count| count > 0)
}

fn create(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for statement in TABLES.iter().chain(INDEXES) {
        tx.execute_batch(statement)?;
    }
    Ok(())
}

/// Format 1 to 2: the old tables are renamed away, the new ones created and filled (streams
/// in id order, events in position order, each event's stream by key), the old ones dropped,
/// and the indexes built over the copied rows. Every value is copied as format 1 stored it.
/// Returns how many streams and events were copied.
fn migrate_from_1(tx: &Transaction<'_>) -> rusqlite::Result<(usize, usize)> {
    tx.execute_batch(
        "ALTER TABLE events RENAME TO events_format1;
         ALTER TABLE streams RENAME TO streams_format1;",
    )?;
    for statement in TABLES {
        tx.execute_batch(statement)?;
    }
    let streams = tx.execute(
        "INSERT INTO streams (stream_id, version, last_hash) \
         SELECT stream_id, version, last_hash FROM streams_format1 ORDER BY stream_id",
        [],
    )?;
    tx.execute_batch(STREAMS_BY_ID)?;
    // A LEFT JOIN, so that an event whose stream has no row (which format 1 never wrote) fails
    // the NOT NULL constraint on `stream` and the whole migration, instead of being dropped.
    let events = tx.execute(
        "INSERT INTO events (global_position, event_id, stream, stream_version, tenant_id, \
         event_type, schema_version, recorded_at, actor_kind, actor_id, actor_name, \
         correlation_id, causation_id, source_ip, user_agent, payload, prev_hash, hash, \
         log_hash) \
         SELECT e.global_position, e.event_id, s.key, e.stream_version, e.tenant_id, \
         e.event_type, e.schema_version, e.recorded_at, e.actor_kind, e.actor_id, \
         e.actor_name, e.correlation_id, e.causation_id, e.source_ip, e.user_agent, e.payload, \
         e.prev_hash, e.hash, e.log_hash \
         FROM events_format1 e LEFT JOIN streams s ON s.stream_id = e.stream_id \
         ORDER BY e.global_position",
        [],
    )?;
    tx.execute_batch(
        "DROP TABLE events_format1;
         DROP TABLE streams_format1;",
    )?;
    for statement in INDEXES {
        tx.execute_batch(statement)?;
    }
    Ok((streams, events))
}
