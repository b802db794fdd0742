//! The PostgreSQL log's storage format: its tables, the format the database records
//! (`log_format`), and the migration of a database written in an older format.
//!
//! Format 2 (issue 24) stores a stream's id once, in `streams`, under an integer key that
//! `events` rows and their `(stream, stream_version)` constraint use, where format 1 repeated
//! the text in every row and its index; and it may leave ids to the stream or store them as
//! UUIDs (see `codec::CompactIds`: a second column where a value may be either). Rows migrated
//! from format 1 keep their ids as text, which reads back the same. A database records no
//! format before 2.
//!
//! [`prepare`] runs under an advisory lock, in one transaction, so that processes opening the
//! same database at once neither race on the catalog nor both migrate. This module must not
//! know about SQLite.

use std::time::Instant;

use sqlx::{PgPool, Postgres, Transaction};

use crate::LogError;

/// The storage format this build writes and reads.
const FORMAT: i32 = 2;

/// Serialises schema creation and migration between processes opening the same database at
/// once (`CREATE TABLE IF NOT EXISTS` alone can race on the catalog). An arbitrary constant.
const SCHEMA_LOCK_KEY: i64 = 0x7465_7373_6572_6131;

/// `streams` and `events` of format 2 under the given names, without constraints: a migration
/// fills them first and adds the constraints ([`constraints`]) over the copied rows.
fn tables(streams: &str, events: &str) -> [String; 2] {
    [
        // `key` is the integer `events` rows refer to; streams are never deleted.
        format!(
            "CREATE TABLE {streams} (
                key BIGINT GENERATED ALWAYS AS IDENTITY,
                stream_id TEXT NOT NULL,
                version BIGINT NOT NULL,
                last_hash BYTEA NOT NULL
            )"
        ),
        // `tenant_id` NULL: the tenant leading the stream id. `actor_id` (text) or
        // `actor_uuid`, or neither: the principal the stream id names. `correlation_id` (text)
        // or `correlation_uuid`.
        format!(
            "CREATE TABLE {events} (
                global_position BIGINT NOT NULL,
                event_id UUID NOT NULL,
                stream BIGINT NOT NULL,
                stream_version BIGINT NOT NULL,
                tenant_id UUID,
                event_type TEXT NOT NULL,
                schema_version INTEGER NOT NULL,
                recorded_at BIGINT NOT NULL,
                actor_kind TEXT NOT NULL,
                actor_id TEXT,
                actor_uuid UUID,
                actor_name TEXT,
                correlation_id TEXT,
                correlation_uuid UUID,
                causation_id UUID,
                source_ip TEXT,
                user_agent TEXT,
                payload BYTEA NOT NULL,
                prev_hash BYTEA NOT NULL,
                hash BYTEA NOT NULL,
                log_hash BYTEA NOT NULL
            )"
        ),
    ]
}

/// The keys and unique constraints of format 2's `streams` and `events`.
const CONSTRAINTS: &[&str] = &[
    "ALTER TABLE streams ADD PRIMARY KEY (key), ADD UNIQUE (stream_id)",
    "ALTER TABLE events ADD PRIMARY KEY (global_position), ADD UNIQUE (event_id), \
     ADD UNIQUE (stream, stream_version)",
];

/// The tables every format has in the same shape.
const SHARED: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        position BIGINT NOT NULL,
        log_hash BYTEA NOT NULL
    )",
    "INSERT INTO log_head (id, position, log_hash) VALUES (1, 0, '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
        ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS log_checkpoints (
        position BIGINT PRIMARY KEY,
        log_hash BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        key_id TEXT NOT NULL,
        signature BYTEA NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS log_format (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )",
];

fn unavailable(error: sqlx::Error) -> LogError {
    LogError::Unavailable(error.to_string())
}

/// Creates the tables of a new database, migrates one of an older format, and refuses one of
/// a newer format.
pub(super) async fn prepare(pool: &PgPool) -> Result<(), LogError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    let had_events = has_table(&mut tx, "events").await?;
    for statement in SHARED {
        sqlx::query(*statement)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    let format: Option<i32> = sqlx::query_scalar("SELECT version FROM log_format WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
    match format {
        Some(FORMAT) => return tx.commit().await.map_err(unavailable),
        Some(newer) if newer > FORMAT => {
            return Err(LogError::Unavailable(format!(
                "the log's database is in storage format {newer}, written by a newer Tessera; \
                 this build reads format {FORMAT}"
            )));
        }
        _ if had_events => {
            tracing::warn!(
                "the event log is in storage format 1: migrating it to format {FORMAT} (one \
                 transaction; other processes wait)"
            );
            let started = Instant::now();
            let (streams, events) = migrate_from_1(&mut tx).await?;
            tracing::warn!(
                streams,
                events,
                seconds = started.elapsed().as_secs_f64(),
                "migrated the event log to storage format {FORMAT}"
            );
        }
        _ => {
            for statement in tables("streams", "events") {
                execute(&mut tx, &statement).await?;
            }
            for statement in CONSTRAINTS {
                execute(&mut tx, statement).await?;
            }
        }
    }
    sqlx::query(
        "INSERT INTO log_format (id, version) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
    )
    .bind(FORMAT)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)
}

async fn execute(
    tx: &mut Transaction<'static, Postgres>,
    statement: &str,
) -> Result<u64, LogError> {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut **tx)
        .await
        .map(|done| done.rows_affected())
        .map_err(unavailable)
}

async fn has_table(tx: &mut Transaction<'static, Postgres>, name: &str) -> Result<bool, LogError> {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() AND tablename = $1)",
    )
    .bind(name)
    .fetch_one(&mut **tx)
    .await
    .map_err(unavailable)
}

/// Format 1 to 2, copy and swap in the same transaction: the new tables are filled (streams
/// in id order, events in position order, each event's stream by key), the old ones dropped,
/// the new ones renamed into place and their constraints added over the copied rows. Every
/// value is copied as format 1 stored it. Returns how many streams and events were copied.
async fn migrate_from_1(tx: &mut Transaction<'static, Postgres>) -> Result<(u64, u64), LogError> {
    for statement in tables("streams_format2", "events_format2") {
        execute(tx, &statement).await?;
    }
    let streams = execute(
        tx,
        "INSERT INTO streams_format2 (stream_id, version, last_hash) \
         SELECT stream_id, version, last_hash FROM streams ORDER BY stream_id",
    )
    .await?;
    execute(
        tx,
        "CREATE UNIQUE INDEX streams_format2_by_id ON streams_format2 (stream_id)",
    )
    .await?;
    // A LEFT JOIN, so that an event whose stream has no row (which format 1 never wrote) fails
    // the NOT NULL constraint on `stream` and the whole migration, instead of being dropped.
    let events = execute(
        tx,
        "INSERT INTO events_format2 (global_position, event_id, stream, stream_version, \
         tenant_id, event_type, schema_version, recorded_at, actor_kind, actor_id, actor_name, \
         correlation_id, causation_id, source_ip, user_agent, payload, prev_hash, hash, \
         log_hash) \
         SELECT e.global_position, e.event_id, s.key, e.stream_version, e.tenant_id, \
         e.event_type, e.schema_version, e.recorded_at, e.actor_kind, e.actor_id, \
         e.actor_name, e.correlation_id, e.causation_id, e.source_ip, e.user_agent, e.payload, \
         e.prev_hash, e.hash, e.log_hash \
         FROM events e LEFT JOIN streams_format2 s ON s.stream_id = e.stream_id \
         ORDER BY e.global_position",
    )
    .await?;
    for statement in [
        "DROP INDEX streams_format2_by_id",
        "DROP TABLE events",
        "DROP TABLE streams",
        "ALTER TABLE streams_format2 RENAME TO streams",
        "ALTER TABLE events_format2 RENAME TO events",
    ] {
        execute(tx, statement).await?;
    }
    for statement in CONSTRAINTS {
        execute(tx, statement).await?;
    }
    Ok((streams, events))
}
