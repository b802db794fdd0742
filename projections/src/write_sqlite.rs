//! The SQLite projector's writes: one batch, one transaction, on a plain SQLite connection.
//!
//! The same steps as `write` (plan, load what the row cache lacks, fold, write every changed
//! row once, checkpoint, commit) and the same statements and row encodings (`TableWrite`, the
//! `*_cells` functions), run synchronously on a rusqlite connection with prepared single-row
//! statements. Through sqlx-sqlite every statement was a round trip to the connection's worker
//! thread with every bound value copied on the way, and that, not SQLite, was most of the cost
//! of a read-model row; see BENCHMARKS.md. The connection lives behind a mutex only to be
//! shareable: the projector (or a rebuild) is the store's single writer, and calls
//! [`SqliteApplier::apply`] from a blocking thread.
//!
//! Reads keep going through the store's sqlx pool; WAL lets them run beside these writes.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, params_from_iter};

use crate::error::ReadError;
use crate::reduce::{Changes, Checkpoints, Fold};
use crate::store::{self, Dialect};
use crate::write::{
    self, API_KEYS, CHECKPOINT_TABLE, Cell, DecodedBatch, Missing, RowCache, SIGNING_KEYS, TENANTS,
    TableWrite,
};

/// The projector's connection to a SQLite read-model file.
pub(crate) struct SqliteApplier {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteApplier").finish_non_exhaustive()
    }
}

impl SqliteApplier {
    /// Opens a connection on `path`, whose tables the store has already created. The pragmas
    /// are the pool's (see `ReadStore::open_sqlite`): WAL, `synchronous=NORMAL`, a 64 MB page
    /// cache for catch-up transactions.
    pub(crate) fn open(path: &Path) -> Result<Self, ReadError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.set_prepared_statement_cache_capacity(32);
        connection.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA cache_size = -65536;
             -- Statement journals (undoing one statement on a constraint error) stay in memory.
             PRAGMA temp_store = MEMORY;",
        )?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// Applies the decoded part of `batch` on top of `checkpoints` in one transaction and
    /// returns the new checkpoints. Blocks: call it from a blocking thread.
    pub(crate) fn apply(
        &self,
        checkpoints: Checkpoints,
        batch: &DecodedBatch,
        cache: &mut RowCache,
    ) -> Result<Checkpoints, ReadError> {
        let Some(mut prepared) = write::prepare(checkpoints, batch, cache) else {
            return Ok(checkpoints);
        };
        // A panic while holding the lock leaves nothing half-written behind it: the
        // transaction rolls back when dropped.
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        load(&tx, &prepared.missing, &mut prepared.fold)?;
        let (next, plan, changes) = prepared.fold(batch);

        write_table(
            &tx,
            &TENANTS,
            &changes.tenants,
            write::tenant_cells,
            write::tenant_key_cells,
        )?;
        write_table(
            &tx,
            &SIGNING_KEYS,
            &changes.signing_keys,
            write::signing_key_cells,
            write::signing_key_key_cells,
        )?;
        write_table(
            &tx,
            &API_KEYS,
            &changes.api_keys,
            write::api_key_cells,
            write::api_key_key_cells,
        )?;
        {
            let mut insert = tx.prepare_cached(&write::audit_insert(Dialect::Sqlite, 1))?;
            for row in &changes.audit {
                insert.execute(params_from_iter(write::audit_cells(row)?))?;
            }
            let mut upsert = tx.prepare_cached(&CHECKPOINT_TABLE.upsert(Dialect::Sqlite, 1))?;
            for row in write::checkpoint_rows(next) {
                upsert.execute(params_from_iter(row))?;
            }
        }
        tx.commit()?;
        drop(connection);
        cache.absorb(changes, &plan.signing_key_tenants);
        Ok(next)
    }
}

/// Loads the rows the cache could not answer for into `fold`, one key at a time: a prepared
/// point lookup costs less than building `IN (...)` lists here.
fn load(tx: &Transaction<'_>, missing: &Missing, fold: &mut Fold) -> Result<(), ReadError> {
    let mut select = tx.prepare_cached(&format!("{} = ?", write::SELECT_TENANTS))?;
    for id in &missing.tenants {
        let mut rows = select.query([id])?;
        while let Some(row) = rows.next()? {
            fold.seed_tenant(store::tenant_from_row(row)?);
        }
    }
    let mut select = tx.prepare_cached(&format!("{} = ?", write::SELECT_SIGNING_KEYS))?;
    for tenant in &missing.key_ring_tenants {
        let mut rows = select.query([tenant])?;
        while let Some(row) = rows.next()? {
            let (tenant_id, key) = store::signing_key_from_row(row)?;
            fold.seed_signing_key(tenant_id, key);
        }
    }
    let mut select = tx.prepare_cached(&format!("{} = ?", write::select_api_keys()))?;
    for id in &missing.api_keys {
        let mut rows = select.query([id])?;
        while let Some(row) = rows.next()? {
            fold.seed_api_key(store::api_key_from_row(row)?);
        }
    }
    Ok(())
}

/// Upserts and deletes one table's changes, a prepared statement per row.
fn write_table<K, R>(
    tx: &Transaction<'_>,
    table: &TableWrite,
    changes: &Changes<K, R>,
    cells: impl Fn(&K, &R) -> Result<Vec<Cell>, ReadError>,
    key_cells: impl Fn(&K) -> Vec<Cell>,
) -> Result<(), ReadError> {
    if !changes.upserts.is_empty() {
        let mut upsert = tx.prepare_cached(&table.upsert(Dialect::Sqlite, 1))?;
        for (key, row) in &changes.upserts {
            upsert.execute(params_from_iter(cells(key, row)?))?;
        }
    }
    if !changes.deletes.is_empty() {
        let mut delete = tx.prepare_cached(&table.delete(Dialect::Sqlite))?;
        for key in &changes.deletes {
            delete.execute(params_from_iter(key_cells(key)))?;
        }
    }
    Ok(())
}
