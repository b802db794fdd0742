//! The PostgreSQL backend, for deployments that run several server processes on one database.
//!
//! Within a process, appends go through the group-commit writer like the embedded backend.
//! Across processes, every batch transaction first locks the one row of `log_head`
//! (`SELECT ... FOR UPDATE`) and assigns positions from it, so batches from different processes
//! commit one after another and commit order is position order. Without that lock two
//! transactions could take positions 10 and 11 and commit as 11 then 10, and a reader that saw
//! 11 would skip 10 forever (the gap bug of sequence-based logs).
//!
//! A batch's events, stream heads and log head are written by one statement (`UNNEST` arrays
//! feeding data-modifying CTEs), because a round trip per row, or even per table, would cap
//! throughput far below what one fsync per batch allows.
//! `synchronous_commit` stays at its default (on). This module must not know about SQLite.
//!
//! The same statement notifies [`notify::CHANNEL`] with the new head, and every process
//! listens there ([`notify`]), so followers on other nodes wake within milliseconds of a
//! commit rather than at their next poll.

pub mod notify;
mod schema;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tessera_event_schemas::{RecordedEvent, Timestamp};
use uuid::Uuid;

use crate::codec::{self, EventRow, event_columns, event_row};
use crate::group_commit::{
    BatchError, BatchWriter, CheckpointPolicy, Committed, Durable, GroupCommit, LogHead,
    StoredEvent, StreamHead, batch_keys, plan_batch,
};
use crate::{AppendError, AppendOutcome, Checkpoint, EventLog, LogConfig, LogError, StreamWrite};

/// The PostgreSQL event log.
pub struct PostgresLog {
    reads: PgPool,
    commit: GroupCommit,
    /// The task listening for other processes' commits, unless turned off; aborted at close.
    listener: Option<tokio::task::AbortHandle>,
}

impl PostgresLog {
    /// Connects to `url` and creates the schema if it is missing.
    pub async fn open(url: &str, config: LogConfig) -> Result<Self, LogError> {
        let reads = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(unavailable)?;
        schema::prepare(&reads).await?;
        // The writer gets a pool of its own (of one connection) so that reads can never starve
        // it, and so that a broken connection is replaced on the next batch.
        //
        // Every writer statement is a keyed lookup or write, and sqlx keeps them prepared. A
        // prepared statement's generic plan is fixed when the table is still empty, where a
        // sequential scan looks cheapest and then stays cached while the table grows (measured:
        // 3 ms per idempotency lookup at 3,000 events, growing linearly). Disabling sequential
        // scans for this connection only makes the planner pick the indexes from the start.
        let writer_options = url
            .parse::<PgConnectOptions>()
            .map_err(unavailable)?
            .options([("enable_seqscan", "off")]);
        let writer = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(writer_options)
            .await
            .map_err(unavailable)?;
        let head = read_head(&reads).await?;
        let policy = CheckpointPolicy::new(&config);
        let commit = GroupCommit::start(
            PgWriter {
                pool: writer,
                policy,
            },
            head,
            config.max_batch,
        );
        let listener = config.listen.then(|| {
            tokio::spawn(notify::listen(url.to_owned(), commit.announcer())).abort_handle()
        });
        Ok(Self {
            reads,
            commit,
            listener,
        })
    }
}

impl Drop for PostgresLog {
    fn drop(&mut self) {
        // A log dropped without `close` must not keep listening (and a connection) forever.
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

fn unavailable(error: sqlx::Error) -> LogError {
    LogError::Unavailable(error.to_string())
}

async fn read_head(pool: &PgPool) -> Result<u64, LogError> {
    let position: i64 = sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(unavailable)?;
    codec::stored_u64(position, "log head").map_err(LogError::Corrupt)
}

#[async_trait]
impl EventLog for PostgresLog {
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<AppendOutcome, AppendError> {
        self.commit.append(writes).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream = (SELECT key FROM streams WHERE stream_id = $1) \
             AND stream_version > $2 ORDER BY stream_version LIMIT $3"
        ))
        .bind(stream_id)
        .bind(codec::after(after_version))
        .bind(codec::limit(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(unavailable)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(event_row!(row, stream_id.to_owned())?);
        }
        Ok(events)
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        // Each row's stream id from `streams`, by key: one join for the page.
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            ", streams.stream_id FROM events JOIN streams ON streams.key = events.stream \
             WHERE global_position > $1 ORDER BY global_position LIMIT $2"
        ))
        .bind(codec::after(after_position))
        .bind(codec::limit(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(unavailable)?;
        decode_events(&rows)
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
             WHERE position > $1 ORDER BY position",
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
        if let Some(listener) = &self.listener {
            listener.abort();
        }
        self.commit.close().await;
        self.reads.close().await;
    }
}

/// Decodes a page of `events` rows, each followed by its stream id, into a vector sized up
/// front (collecting into a `Result` cannot know the length, and regrowing a page-sized vector
/// of events showed in profiles).
fn decode_events(rows: &[PgRow]) -> Result<Vec<RecordedEvent>, LogError> {
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

fn checkpoint_row(row: &PgRow) -> Result<Checkpoint, LogError> {
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

struct PgWriter {
    pool: PgPool,
    policy: CheckpointPolicy,
}

/// A writer's database error, as the group commit reports it to every append of the batch.
fn db(error: sqlx::Error) -> BatchError {
    BatchError::Store(error.to_string())
}

/// A value that does not fit its column (or a stored one that is corrupt).
fn data<T>(value: Result<T, String>) -> Result<T, BatchError> {
    value.map_err(BatchError::Data)
}

#[async_trait]
impl BatchWriter for PgWriter {
    async fn write_batch(
        &mut self,
        appends: Vec<Vec<StreamWrite>>,
        final_checkpoint: bool,
    ) -> Result<Committed, BatchError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The cross-process serialisation point: see the module doc.
        let head_row =
            sqlx::query("SELECT position, log_hash FROM log_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let head = LogHead {
            position: data(codec::stored_u64(
                head_row.try_get("position").map_err(db)?,
                "log head",
            ))?,
            log_hash: data(codec::stored_hash(
                &head_row.try_get::<Vec<u8>, _>("log_hash").map_err(db)?,
                "log head hash",
            ))?,
        };
        let (stream_ids, event_ids) = batch_keys(&appends);
        let (streams, stored) = load_state(&mut tx, &stream_ids, &event_ids).await?;
        let mut plan = plan_batch(
            &appends,
            head,
            streams,
            stored,
            &self.policy,
            final_checkpoint,
        );

        let events = std::mem::take(&mut plan.events);
        if !events.is_empty() {
            let rows = events
                .iter()
                .map(EventRow::from_recorded)
                .collect::<Result<Vec<_>, _>>()
                .map_err(BatchError::Data)?;
            write_events(&mut tx, rows, &plan.stream_heads, plan.head).await?;
        }
        if !plan.checkpoints.is_empty() {
            insert_checkpoints(&mut tx, &plan.checkpoints).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Committed {
            results: plan.results,
            head: plan.head,
            events,
            durable: Durable::Now,
        })
    }

    async fn shutdown(&mut self) {
        self.pool.close().await;
    }
}

/// Stream heads and already stored events of a batch, in one round trip.
async fn load_state(
    tx: &mut Transaction<'static, Postgres>,
    stream_ids: &[String],
    event_ids: &[Uuid],
) -> Result<(HashMap<String, StreamHead>, HashMap<Uuid, StoredEvent>), BatchError> {
    // Both lookups share one statement: a stream row has a NULL event_id, an event row a
    // non-NULL one.
    let rows = sqlx::query(
        "SELECT NULL::uuid AS event_id, stream_id, version, last_hash, NULL::bigint AS position
           FROM streams WHERE stream_id = ANY($1)
         UNION ALL
         SELECT event_id, streams.stream_id, stream_version, NULL::bytea, global_position
           FROM events JOIN streams ON streams.key = events.stream
          WHERE event_id = ANY($2)",
    )
    .bind(stream_ids)
    .bind(event_ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    let mut streams = HashMap::with_capacity(stream_ids.len());
    let mut stored = HashMap::new();
    for row in rows {
        let event_id: Option<Uuid> = row.try_get("event_id").map_err(db)?;
        let stream_id: String = row.try_get("stream_id").map_err(db)?;
        let version: i64 = row.try_get("version").map_err(db)?;
        let version = data(codec::stored_u64(version, "stream version"))?;
        match event_id {
            None => {
                let last_hash: Vec<u8> = row.try_get("last_hash").map_err(db)?;
                streams.insert(
                    stream_id,
                    StreamHead {
                        version,
                        last_hash: data(codec::stored_hash(&last_hash, "stream hash"))?,
                    },
                );
            }
            Some(event_id) => {
                let position: Option<i64> = row.try_get("position").map_err(db)?;
                stored.insert(
                    event_id,
                    StoredEvent {
                        stream_id,
                        stream_version: version,
                        global_position: data(codec::stored_u64(
                            position.unwrap_or(-1),
                            "position",
                        ))?,
                    },
                );
            }
        }
    }
    Ok((streams, stored))
}

/// Upserts a batch's stream heads, inserts its events (each with its stream's key, which the
/// upsert returns), moves the log head and announces it on [`notify::CHANNEL`] (delivered at
/// commit), in one statement (data-modifying CTEs) so the batch costs one round trip instead
/// of four.
async fn write_events(
    tx: &mut Transaction<'static, Postgres>,
    rows: Vec<EventRow>,
    heads: &[(String, StreamHead)],
    head: LogHead,
) -> Result<(), BatchError> {
    let head_ids: Vec<&str> = heads.iter().map(|(id, _)| id.as_str()).collect();
    let head_versions = heads
        .iter()
        .map(|(_, head)| codec::to_i64(head.version))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BatchError::Data)?;
    let head_hashes: Vec<Vec<u8>> = heads.iter().map(|(_, h)| h.last_hash.0.to_vec()).collect();
    let n = rows.len();
    let mut global_position = Vec::with_capacity(n);
    let mut event_id = Vec::with_capacity(n);
    let mut stream_id = Vec::with_capacity(n);
    let mut stream_version = Vec::with_capacity(n);
    let mut tenant_id = Vec::with_capacity(n);
    let mut event_type = Vec::with_capacity(n);
    let mut schema_version = Vec::with_capacity(n);
    let mut recorded_at = Vec::with_capacity(n);
    let mut actor_kind = Vec::with_capacity(n);
    let mut actor_id = Vec::with_capacity(n);
    let mut actor_uuid = Vec::with_capacity(n);
    let mut actor_name = Vec::with_capacity(n);
    let mut correlation_id = Vec::with_capacity(n);
    let mut correlation_uuid = Vec::with_capacity(n);
    let mut causation_id = Vec::with_capacity(n);
    let mut source_ip = Vec::with_capacity(n);
    let mut user_agent = Vec::with_capacity(n);
    let mut payload = Vec::with_capacity(n);
    let mut prev_hash = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut log_hash = Vec::with_capacity(n);
    for row in rows {
        global_position.push(row.global_position);
        event_id.push(row.event_id);
        stream_id.push(row.stream_id);
        stream_version.push(row.stream_version);
        tenant_id.push(row.tenant_id);
        event_type.push(row.event_type);
        schema_version.push(row.schema_version);
        recorded_at.push(row.recorded_at);
        actor_kind.push(row.actor_kind);
        actor_id.push(row.actor_id);
        actor_uuid.push(row.actor_uuid);
        actor_name.push(row.actor_name);
        correlation_id.push(row.correlation_id);
        correlation_uuid.push(row.correlation_uuid);
        causation_id.push(row.causation_id);
        source_ip.push(row.source_ip);
        user_agent.push(row.user_agent);
        payload.push(row.payload);
        prev_hash.push(row.prev_hash.0.to_vec());
        hash.push(row.hash.0.to_vec());
        log_hash.push(row.log_hash.0.to_vec());
    }
    // Every stream an event goes to has a head in the batch; the LEFT JOIN makes one that had
    // not fail the insert (NOT NULL `stream`) rather than drop the event.
    sqlx::query(concat!(
        "WITH heads AS (INSERT INTO streams (stream_id, version, last_hash) \
         SELECT * FROM UNNEST($22::text[], $23::bigint[], $24::bytea[]) \
         ON CONFLICT (stream_id) DO UPDATE \
         SET version = EXCLUDED.version, last_hash = EXCLUDED.last_hash \
         RETURNING key, stream_id), \
         new_events AS (INSERT INTO events (",
        event_columns!(),
        ") SELECT e.global_position, e.event_id, heads.key, e.stream_version, e.tenant_id, \
         e.event_type, e.schema_version, e.recorded_at, e.actor_kind, e.actor_id, \
         e.actor_uuid, e.actor_name, e.correlation_id, e.correlation_uuid, e.causation_id, \
         e.source_ip, e.user_agent, e.payload, e.prev_hash, e.hash, e.log_hash \
         FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::uuid[], \
         $6::text[], $7::integer[], $8::bigint[], $9::text[], $10::text[], $11::uuid[], \
         $12::text[], $13::text[], $14::uuid[], $15::uuid[], $16::text[], $17::text[], \
         $18::bytea[], $19::bytea[], $20::bytea[], $21::bytea[]) \
         AS e (global_position, event_id, stream_id, stream_version, tenant_id, event_type, \
         schema_version, recorded_at, actor_kind, actor_id, actor_uuid, actor_name, \
         correlation_id, correlation_uuid, causation_id, source_ip, user_agent, payload, \
         prev_hash, hash, log_hash) \
         LEFT JOIN heads ON heads.stream_id = e.stream_id) \
         UPDATE log_head SET position = $25, log_hash = $26 WHERE id = 1 \
         RETURNING pg_notify('tessera_log', position::text)"
    ))
    .bind(global_position)
    .bind(event_id)
    .bind(stream_id)
    .bind(stream_version)
    .bind(tenant_id)
    .bind(event_type)
    .bind(schema_version)
    .bind(recorded_at)
    .bind(actor_kind)
    .bind(actor_id)
    .bind(actor_uuid)
    .bind(actor_name)
    .bind(correlation_id)
    .bind(correlation_uuid)
    .bind(causation_id)
    .bind(source_ip)
    .bind(user_agent)
    .bind(payload)
    .bind(prev_hash)
    .bind(hash)
    .bind(log_hash)
    .bind(head_ids)
    .bind(head_versions)
    .bind(head_hashes)
    .bind(data(codec::to_i64(head.position))?)
    .bind(head.log_hash.0.to_vec())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

async fn insert_checkpoints(
    tx: &mut Transaction<'static, Postgres>,
    checkpoints: &[Checkpoint],
) -> Result<(), BatchError> {
    let positions = checkpoints
        .iter()
        .map(|c| codec::to_i64(c.position))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BatchError::Data)?;
    let hashes: Vec<Vec<u8>> = checkpoints.iter().map(|c| c.log_hash.0.to_vec()).collect();
    let created: Vec<i64> = checkpoints
        .iter()
        .map(|c| c.created_at.as_micros())
        .collect();
    let keys: Vec<&str> = checkpoints.iter().map(|c| c.key_id.as_str()).collect();
    let signatures: Vec<&[u8]> = checkpoints.iter().map(|c| c.signature.as_slice()).collect();
    sqlx::query(
        "INSERT INTO log_checkpoints (position, log_hash, created_at, key_id, signature)
         SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bigint[], $4::text[], $5::bytea[])
         ON CONFLICT (position) DO NOTHING",
    )
    .bind(positions)
    .bind(hashes)
    .bind(created)
    .bind(keys)
    .bind(signatures)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}
