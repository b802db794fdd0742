//! The PostgreSQL projector's writes: one batch, one transaction, on a native sqlx
//! PostgreSQL connection.
//!
//! The same steps as `write_sqlite` (plan, load what the row cache lacks, fold and encode
//! through `write::fold_and_encode`, write every changed row once, checkpoint, commit) and the
//! same statements and row encodings (each table's `TableWrite` and `cells`). Table rows go in
//! multi-row upserts and audit rows in multi-row inserts, except the rows a rebuild writes into
//! its emptied tables, which cannot conflict with anything: those are streamed with
//! `COPY ... FROM STDIN` in binary format. PostgreSQL then reads each value as it is, instead of
//! binding and evaluating a parameter per column, or scanning text for delimiters and escapes
//! (binary took about a quarter less of the server's time than text; BENCHMARKS.md).
//!
//! Its own pool rather than the store's `Any` pool: `Any` cannot `COPY`, and it re-encodes
//! every bound value on the way to the PostgreSQL driver. Reads keep going through the store's
//! `Any` pool.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use tessera_event_schemas::Timestamp;

use crate::cache::RowCache;
use crate::error::ReadError;
use crate::fold::Fold;
use crate::sql::{
    self, Cell, MAX_AUDIT_ROWS_PER_INSERT, MAX_KEYS_PER_QUERY, MAX_ROWS_PER_UPSERT, TableWrite,
};
use crate::store::Dialect;
use crate::tables::{
    Checkpoints, Registered, TableProjection, TableVisitor, audit_trail, visit_tables,
};
use crate::views::AuditRow;
use crate::write::{
    self, Applied, CHECKPOINT_TABLE, DecodedBatch, Missing, PIPELINE_FROM, Prepared, RowWrite,
    WRITES_AHEAD, fold_and_encode,
};

const DIALECT: Dialect = Dialect::Postgres;

/// The projector's connections to a PostgreSQL read-model database.
#[derive(Clone, Debug)]
pub(crate) struct PostgresApplier {
    pool: PgPool,
}

impl PostgresApplier {
    /// Connects to `url`. The projector (or a rebuild) is the store's single writer, so one
    /// connection is in use at a time; a second covers a reconnect.
    pub(crate) async fn connect(url: &str) -> Result<Self, ReadError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Applies the decoded part of `batch` on top of `checkpoints` in one transaction and
    /// returns the new checkpoints.
    ///
    /// A batch of [`PIPELINE_FROM`] events or more is folded and encoded on a blocking thread
    /// while this task sends the rows it hands over, so that folding overlaps with
    /// PostgreSQL's work on them.
    pub(crate) async fn apply(
        &self,
        checkpoints: Checkpoints,
        batch: &Arc<DecodedBatch>,
        cache: &mut RowCache,
        audit_since: Option<Timestamp>,
    ) -> Result<Checkpoints, ReadError> {
        let Some(mut prepared) = write::prepare(checkpoints, batch, cache, audit_since) else {
            return Ok(checkpoints);
        };
        let audit = if cache.audit_rows_are_new() {
            AuditWrites::Copy
        } else {
            AuditWrites::Insert
        };
        let mut tx = self.pool.begin().await?;
        load(&mut tx, &prepared.missing, &mut prepared.fold).await?;
        // As on SQLite, the cache takes the batch's rows before the commit; `apply_batch`
        // clears it if anything fails.
        let applied = if batch.decoded.len() >= PIPELINE_FROM {
            fold_beside(&mut tx, audit, prepared, batch, cache).await?
        } else {
            let mut writes = Vec::new();
            let applied = fold_and_encode(prepared, batch, cache, |rows| {
                writes.push(rows);
                Ok(())
            })?;
            store_all(&mut tx, audit, &mut Writes::Ready(writes.into_iter())).await?;
            applied
        };
        write_checkpoints(&mut tx, applied.stored).await?;
        tx.commit().await?;
        Ok(applied.next)
    }
}

/// How a batch writes its audit rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuditWrites {
    /// Multi-row inserts that skip a row already there (see `audit_trail::insert`).
    Insert,
    /// `COPY`: every row is new to the table (a rebuild's).
    Copy,
}

/// [`fold_and_encode`] on a blocking thread while this task sends the rows it hands over. A
/// failed statement closes the channel, which stops the folding at its next hand-over.
async fn fold_beside(
    tx: &mut Transaction<'static, Postgres>,
    audit: AuditWrites,
    prepared: Prepared,
    batch: &Arc<DecodedBatch>,
    cache: &mut RowCache,
) -> Result<Applied, ReadError> {
    let (sender, receiver) = tokio::sync::mpsc::channel(WRITES_AHEAD);
    let batch = Arc::clone(batch);
    let mut owned = std::mem::take(cache);
    let folder = tokio::task::spawn_blocking(move || {
        let folded = fold_and_encode(prepared, &batch, &mut owned, |rows| {
            sender
                .blocking_send(rows)
                .map_err(|_| write::writer_stopped())
        });
        (owned, folded)
    });
    let mut writes = Writes::Channel(receiver);
    let stored = store_all(tx, audit, &mut writes).await;
    // On an error this stops the folder at its next hand-over.
    drop(writes);
    let (owned, folded) = folder.await.map_err(|error| {
        ReadError::Unavailable(format!("the read-model folding task failed: {error}"))
    })?;
    *cache = owned;
    // The writer's error, if any, is the cause; the folder's is then only "stopped".
    stored.and(folded)
}

/// The writes a batch's fold hands over: as it folds, or all at once for a small batch.
enum Writes {
    Channel(tokio::sync::mpsc::Receiver<RowWrite>),
    Ready(std::vec::IntoIter<RowWrite>),
}

impl Writes {
    async fn next(&mut self) -> Option<RowWrite> {
        match self {
            Writes::Channel(receiver) => receiver.recv().await,
            Writes::Ready(writes) => writes.next(),
        }
    }
}

/// Writes everything `writes` hands over, in order, except that a `COPY` takes in the writes
/// right after it that go into the same table.
async fn store_all(
    tx: &mut PgConnection,
    audit: AuditWrites,
    writes: &mut Writes,
) -> Result<(), ReadError> {
    let mut pending = writes.next().await;
    while let Some(write) = pending.take() {
        if let Some(target) = copy_target(&write, audit) {
            pending = copy(tx, target, write, audit, writes).await?;
            continue;
        }
        match write {
            RowWrite::Audit(rows) => insert_audit(tx, &rows).await?,
            RowWrite::Upserts(table, rows) | RowWrite::Inserts(table, rows) => {
                let lengths = sql::chunk_lengths(rows.len(), MAX_ROWS_PER_UPSERT);
                let mut rows = rows.iter();
                for length in lengths {
                    let sql = table.upsert(DIALECT, length);
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for cell in rows.by_ref().take(length).flatten() {
                        query = bind(query, cell);
                    }
                    query.execute(&mut *tx).await?;
                }
            }
            RowWrite::Deletes(table, rows) => {
                let delete = table.delete(DIALECT);
                for row in &rows {
                    let mut query = sqlx::query(AssertSqlSafe(delete.clone()));
                    for cell in row {
                        query = bind(query, cell);
                    }
                    query.execute(&mut *tx).await?;
                }
            }
        }
        pending = writes.next().await;
    }
    Ok(())
}

/// A table that a `COPY` writes.
#[derive(Clone, Copy)]
enum CopyTarget {
    Audit,
    Table(&'static TableWrite),
}

impl CopyTarget {
    fn table(self) -> &'static str {
        match self {
            CopyTarget::Audit => audit_trail::TABLE,
            CopyTarget::Table(table) => table.table,
        }
    }

    fn statement(self) -> String {
        match self {
            CopyTarget::Audit => audit_trail::copy_statement(),
            CopyTarget::Table(table) => format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                table.table,
                table.column_list()
            ),
        }
    }
}

/// Where `write` can be copied to: anywhere its rows are all new.
fn copy_target(write: &RowWrite, audit: AuditWrites) -> Option<CopyTarget> {
    match write {
        RowWrite::Audit(_) if audit == AuditWrites::Copy => Some(CopyTarget::Audit),
        RowWrite::Inserts(table, _) => Some(CopyTarget::Table(table)),
        _ => None,
    }
}

async fn insert_audit(tx: &mut PgConnection, rows: &[AuditRow]) -> Result<(), ReadError> {
    for chunk in sql::chunks(rows, MAX_AUDIT_ROWS_PER_INSERT) {
        let cells: Vec<Cell<'_>> = chunk.iter().flat_map(audit_trail::cells).collect();
        let mut query = sqlx::query(AssertSqlSafe(audit_trail::insert(DIALECT, chunk.len())));
        for cell in &cells {
            query = bind(query, cell);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Streams `write`, and each write `writes` hands over right after it into the same table,
/// in one `COPY` into `target`. Returns the first write that goes elsewhere, if any.
async fn copy(
    tx: &mut PgConnection,
    target: CopyTarget,
    write: RowWrite,
    audit: AuditWrites,
    writes: &mut Writes,
) -> Result<Option<RowWrite>, ReadError> {
    let mut copy = tx.copy_in_raw(&target.statement()).await?;
    let mut data = COPY_HEADER.to_vec();
    let mut write = write;
    let after = loop {
        copy_rows(&write, &mut data);
        copy.send(data.as_slice()).await?;
        data.clear();
        match writes.next().await {
            Some(next)
                if copy_target(&next, audit).map(CopyTarget::table) == Some(target.table()) =>
            {
                write = next;
            }
            other => break other,
        }
    };
    copy.send(COPY_TRAILER.as_slice()).await?;
    copy.finish().await?;
    Ok(after)
}

/// The start of `COPY`'s binary format: its signature, no flags, no header extension.
const COPY_HEADER: [u8; 19] = *b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end of `COPY`'s binary format: a field count of -1.
const COPY_TRAILER: [u8; 2] = (-1_i16).to_be_bytes();

/// Appends the rows of a write that [`copy_target`] accepts in `COPY`'s binary format.
fn copy_rows(write: &RowWrite, out: &mut Vec<u8>) {
    match write {
        RowWrite::Audit(rows) => {
            for row in rows {
                copy_row(&audit_trail::cells(row), out);
            }
        }
        RowWrite::Inserts(_, rows) => {
            for row in rows {
                copy_row(row, out);
            }
        }
        // Never copied.
        RowWrite::Upserts(..) | RowWrite::Deletes(..) => {}
    }
}

/// Appends a row in `COPY`'s binary format: the number of columns, then each value as its
/// length (-1 for NULL) and its bytes as PostgreSQL's binary send function writes them: text as
/// it is, BIGINT as 8 bytes big-endian, BOOLEAN as one byte; a `Cell::Uuid` as its text (an id
/// column is TEXT here). Every `Cell::Int` column is a BIGINT (see each table's DDL).
fn copy_row(cells: &[Cell<'_>], out: &mut Vec<u8>) {
    // Rows have at most 18 columns.
    let columns = i16::try_from(cells.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&columns.to_be_bytes());
    for cell in cells {
        match cell {
            Cell::Text(Some(text)) => copy_value(text.as_bytes(), out),
            Cell::Int(Some(value)) => copy_value(&value.to_be_bytes(), out),
            Cell::Flag(value) => copy_value(&[u8::from(*value)], out),
            Cell::Uuid(Some(id)) => {
                let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                copy_value(id.hyphenated().encode_lower(&mut text).as_bytes(), out);
            }
            Cell::Text(None) | Cell::Int(None) | Cell::Uuid(None) => {
                out.extend_from_slice(&(-1_i32).to_be_bytes());
            }
        }
    }
}

fn copy_value(bytes: &[u8], out: &mut Vec<u8>) {
    // A read-model value is far below PostgreSQL's 1 GB limit on a field.
    let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    cell: &'q Cell<'_>,
) -> Query<'q, Postgres, PgArguments> {
    match cell {
        Cell::Text(value) => query.bind(value.as_deref()),
        Cell::Int(value) => query.bind(*value),
        Cell::Flag(value) => query.bind(*value),
        // An id column is TEXT on PostgreSQL (`Dialect::id_type`).
        Cell::Uuid(value) => query.bind(value.map(|id| id.hyphenated().to_string())),
    }
}

/// Loads the rows the cache could not answer for into `fold`: the queries of every table
/// first, then each table's rows decoded and seeded, in the same registry order.
async fn load(tx: &mut PgConnection, missing: &Missing, fold: &mut Fold) -> Result<(), ReadError> {
    struct Queries<'a>(&'a Missing, Vec<(&'static str, &'a [String])>);
    impl TableVisitor for Queries<'_> {
        type Error = std::convert::Infallible;
        fn visit<T: Registered>(&mut self) -> Result<(), Self::Error> {
            self.1.push((T::SELECT, T::of(&self.0.groups)));
            Ok(())
        }
    }
    let mut queries = Queries(missing, Vec::new());
    let Ok(()) = visit_tables(&mut queries);
    let mut fetched = Vec::with_capacity(queries.1.len());
    for (select, groups) in queries.1 {
        fetched.push(fetch_in(tx, select, groups).await?);
    }

    struct Seed<'a>(std::vec::IntoIter<Vec<PgRow>>, &'a mut Fold);
    impl TableVisitor for Seed<'_> {
        type Error = ReadError;
        fn visit<T: Registered>(&mut self) -> Result<(), ReadError> {
            for row in self.0.next().unwrap_or_default() {
                let (key, row) = <T as TableProjection>::from_row(&row)?;
                self.1.seed::<T>(key, row);
            }
            Ok(())
        }
    }
    visit_tables(&mut Seed(fetched.into_iter(), fold))
}

/// Runs `{select} IN (...)` over `ids`, a bounded number of keys per statement.
async fn fetch_in(
    tx: &mut PgConnection,
    select: &str,
    ids: &[String],
) -> Result<Vec<PgRow>, ReadError> {
    let mut rows = Vec::new();
    for chunk in sql::chunks(ids, MAX_KEYS_PER_QUERY) {
        let sql = format!(
            "{select} IN ({})",
            sql::placeholders(DIALECT, 1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.as_str());
        }
        rows.extend(query.fetch_all(&mut *tx).await?);
    }
    Ok(rows)
}

async fn write_checkpoints(
    tx: &mut PgConnection,
    checkpoints: Checkpoints,
) -> Result<(), ReadError> {
    let rows = write::checkpoint_rows(checkpoints);
    let sql = CHECKPOINT_TABLE.upsert(DIALECT, rows.len());
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for cell in rows.iter().flatten() {
        query = bind(query, cell);
    }
    query.execute(&mut *tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_use_postgres_binary_format() {
        let mut out = Vec::new();
        let row = [
            Cell::Text(Some("ünï\t\\".into())),
            Cell::Text(None),
            Cell::Int(Some(-2)),
            Cell::Int(None),
            Cell::Flag(true),
        ];
        copy_row(&row, &mut out);
        let mut expected = vec![0, 5];
        expected.extend_from_slice(&[0, 0, 0, 7]);
        expected.extend_from_slice("ünï\t\\".as_bytes());
        expected.extend_from_slice(&[0xff; 4]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        expected.extend_from_slice(&[0xff; 4]);
        expected.extend_from_slice(&[0, 0, 0, 1, 1]);
        assert_eq!(out, expected);
        assert_eq!(&COPY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(COPY_TRAILER, [0xff, 0xff]);
    }
}
