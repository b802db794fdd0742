//! The SQLite projector's writes: one batch, one transaction, on a plain SQLite connection.
//!
//! The same steps as `write` (plan, load what the row cache lacks, fold and encode through
//! `write::fold_and_encode`, write every changed row once, checkpoint, commit) and the same
//! statements and row encodings (each table's `TableWrite` and `cells`), run synchronously on a
//! rusqlite connection with prepared single-row statements. Through sqlx-sqlite every statement
//! was a round trip to the connection's worker thread with every bound value copied on the way,
//! and that, not SQLite, was most of the cost of a read-model row; see BENCHMARKS.md. The connection lives behind a mutex only to be
//! shareable: the projector (or a rebuild) is the store's single writer, and calls
//! [`SqliteApplier::apply`] from a blocking thread.
//!
//! Reads keep going through the store's sqlx pool; WAL lets them run beside these writes.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, params_from_iter};
use tessera_event_log::sqlite::wal::{Checkpoint, Pacer, WalBound, journal_size_limit};
use tessera_event_schemas::Timestamp;

use crate::cache::RowCache;
use crate::error::ReadError;
use crate::fold::Fold;
use crate::sql::Cell;
use crate::store::{Dialect, SqliteMode};
use crate::tables::{
    Checkpoints, Registered, TableProjection, TableVisitor, audit_trail, visit_tables,
};
use crate::write::{
    self, Applied, CHECKPOINT_TABLE, DecodedBatch, Missing, PIPELINE_FROM, Prepared, RowWrite,
    WRITES_AHEAD, fold_and_encode,
};

/// The projector's connection to a SQLite read-model file.
pub(crate) struct SqliteApplier {
    writer: Mutex<Writer>,
    /// Copies the WAL into the database file (a scratch file: syncs it); stops when the
    /// applier is dropped.
    _checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteApplier").finish_non_exhaustive()
    }
}

/// The writing connection, and (live files only) the bound its WAL is kept within.
struct Writer {
    connection: Connection,
    bound: Option<WalBound>,
}

impl Writer {
    /// Truncates the WAL if the last commit took it past its bound. Between two of the
    /// projector's transactions nothing else competes for the write lock (see [`WalBound`]);
    /// the token endpoint never waits for the read models, so their truncation costs the hot
    /// paths nothing but the disk's time.
    fn bound_wal(&self) {
        if let Some(bound) = &self.bound {
            bound.enforce("read models");
        }
    }
}

impl SqliteApplier {
    /// Opens a connection on `path` and starts its checkpointer. The pragmas are the pool's
    /// for `mode` (see `store::SqliteMode`): live, WAL with `synchronous=NORMAL`, no automatic
    /// checkpoints and a WAL kept within `wal_limit` bytes; scratch, a journal in memory and no
    /// syncs. Both get a 64 MB page cache for catch-up transactions.
    pub(crate) fn open(path: &Path, mode: SqliteMode, wal_limit: u64) -> Result<Self, ReadError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.set_prepared_statement_cache_capacity(32);
        connection.execute_batch(match mode {
            SqliteMode::Live => "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
            SqliteMode::Scratch => "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;",
        })?;
        connection.execute_batch(
            "PRAGMA cache_size = -65536;
             -- Statement journals (undoing one statement on a constraint error) stay in memory.
             PRAGMA temp_store = MEMORY;
             -- Deleted and overwritten content is zeroed in the file (see `store::SqliteMode`).
             PRAGMA secure_delete = ON;",
        )?;
        let (checkpointer, bound) = match mode {
            SqliteMode::Live => {
                connection.execute_batch(&journal_size_limit(wal_limit))?;
                (
                    Checkpointer::start(path, wal_limit)?,
                    Some(WalBound::open(path, wal_limit)?),
                )
            }
            SqliteMode::Scratch => (Checkpointer::sync_scratch(path)?, None),
        };
        Ok(Self {
            writer: Mutex::new(Writer { connection, bound }),
            _checkpointer: checkpointer,
        })
    }

    /// The writer, locked. A panic while holding the lock leaves nothing half-written behind
    /// it: a transaction rolls back when dropped.
    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies the decoded part of `batch` on top of `checkpoints` in one transaction and
    /// returns the new checkpoints. Blocks: call it from a blocking thread.
    ///
    /// A batch of [`PIPELINE_FROM`] events or more (a catch-up, a rebuild) is folded and
    /// encoded on a second thread while this one stores the rows it has been handed: folding
    /// and SQLite then share the two cores instead of taking turns on one.
    pub(crate) fn apply(
        &self,
        checkpoints: Checkpoints,
        batch: &DecodedBatch,
        cache: &mut RowCache,
        audit_since: Option<Timestamp>,
    ) -> Result<Checkpoints, ReadError> {
        let Some(mut prepared) = write::prepare(checkpoints, batch, cache, audit_since) else {
            return Ok(checkpoints);
        };
        let mut writer = self.lock();
        let tx = writer
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        load(&tx, &prepared.missing, &mut prepared.fold)?;
        // The cache takes the batch's rows before the commit; if anything fails from here on,
        // `apply_batch` clears it, so it never outlives a batch that did not commit.
        let applied = if batch.decoded.len() >= PIPELINE_FROM {
            fold_beside(&tx, prepared, batch, cache)?
        } else {
            fold_and_encode(prepared, batch, cache, |rows| store_rows(&tx, rows))?
        };
        {
            let mut upsert = tx.prepare_cached(&CHECKPOINT_TABLE.upsert(Dialect::Sqlite, 1))?;
            for row in write::checkpoint_rows(applied.stored) {
                upsert.execute(params_from_iter(row))?;
            }
        }
        tx.commit()?;
        writer.bound_wal();
        Ok(applied.next)
    }

    /// Deletes expired audit rows in one transaction (see `audit_trail::DELETE_EXPIRED`), then
    /// keeps the WAL within its bound as after a batch.
    pub(crate) fn delete_expired_audit(&self, cutoff: i64, limit: i64) -> Result<usize, ReadError> {
        let mut writer = self.lock();
        let tx = writer
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = tx
            .prepare_cached(audit_trail::DELETE_EXPIRED)?
            .execute((cutoff, limit))?;
        tx.commit()?;
        writer.bound_wal();
        Ok(deleted)
    }

    /// Runs `statements` (`CREATE ... IF NOT EXISTS`) in one transaction.
    pub(crate) fn create_missing(&self, statements: &[String]) -> Result<(), ReadError> {
        let mut writer = self.lock();
        let tx = writer
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for statement in statements {
            tx.execute_batch(statement)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// [`fold_and_encode`] on a scoped thread while this one stores the rows it sends. A failed
/// statement stops the folding at its next hand-over (the channel closes); the caller's
/// transaction then rolls back as usual.
fn fold_beside(
    tx: &Transaction<'_>,
    prepared: Prepared,
    batch: &DecodedBatch,
    cache: &mut RowCache,
) -> Result<Applied, ReadError> {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(WRITES_AHEAD);
        let folder = std::thread::Builder::new()
            .name("tessera-rm-fold".into())
            .spawn_scoped(scope, move || {
                fold_and_encode(prepared, batch, cache, |rows| {
                    sender.send(rows).map_err(|_| write::writer_stopped())
                })
            })
            .map_err(|e| ReadError::Unavailable(format!("starting the folding thread: {e}")))?;
        // On an error the receiver is dropped here, which stops the folder.
        let stored = receiver
            .into_iter()
            .try_for_each(|rows| store_rows(tx, rows));
        let folded = folder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The writer's error, if any, is the cause; the folder's is then only "stopped".
        stored.and(folded)
    })
}

/// Runs one prepared single-row statement per row.
fn store_rows(tx: &Transaction<'_>, write: RowWrite) -> Result<(), ReadError> {
    match write {
        RowWrite::Audit(rows) => {
            let mut insert = tx.prepare_cached(&audit_trail::insert(Dialect::Sqlite, 1))?;
            for row in &rows {
                insert.execute(params_from_iter(audit_trail::cells(row)))?;
            }
            Ok(())
        }
        // One statement shape for both: an upsert that meets no conflict inserts.
        RowWrite::Upserts(table, rows) | RowWrite::Inserts(table, rows) => {
            execute_each(tx, &table.upsert(Dialect::Sqlite, 1), rows)
        }
        RowWrite::Deletes(table, rows) => execute_each(tx, &table.delete(Dialect::Sqlite), rows),
    }
}

fn execute_each(
    tx: &Transaction<'_>,
    sql: &str,
    rows: Vec<Vec<Cell<'_>>>,
) -> Result<(), ReadError> {
    let mut statement = tx.prepare_cached(sql)?;
    for row in rows {
        statement.execute(params_from_iter(row))?;
    }
    Ok(())
}

/// Loads the rows the cache could not answer for into `fold`, one group at a time: a prepared
/// point lookup costs less than building `IN (...)` lists here.
fn load(tx: &Transaction<'_>, missing: &Missing, fold: &mut Fold) -> Result<(), ReadError> {
    struct Load<'a, 'c> {
        tx: &'a Transaction<'c>,
        missing: &'a Missing,
        fold: &'a mut Fold,
    }
    impl TableVisitor for Load<'_, '_> {
        type Error = ReadError;
        fn visit<T: Registered>(&mut self) -> Result<(), ReadError> {
            let groups = T::of(&self.missing.groups);
            if groups.is_empty() {
                return Ok(());
            }
            let mut select = self.tx.prepare_cached(&format!("{} = ?", T::SELECT))?;
            for group in groups {
                let mut rows = select.query([group])?;
                while let Some(row) = rows.next()? {
                    let (key, row) = <T as TableProjection>::from_row(row)?;
                    self.fold.seed::<T>(key, row);
                }
            }
            Ok(())
        }
    }
    visit_tables(&mut Load { tx, missing, fold })
}

/// How often a scratch file's [`Checkpointer`] writes it to disk.
const SCRATCH_SYNC_EVERY: Duration = Duration::from_millis(200);

/// A thread that checkpoints the read models' WAL from a connection of its own, so that the
/// writer never does. SQLite's automatic checkpoint runs inside the commit that crosses 1000
/// WAL pages, and with `synchronous=NORMAL` that commit then also fsyncs the WAL and the
/// database file: a large catch-up batch spent most of its commit there, and a live batch
/// (which a write request waits for) could stall behind it. A PASSIVE checkpoint takes no lock
/// that the writer or readers wait on. The event log does the same for its own file.
///
/// A PASSIVE checkpoint never shortens the WAL (see [`WalBound`]): the writer truncates it
/// past its bound, and this thread truncates it once writes pause (no commit since the last
/// period), so that an idle store keeps no WAL behind whatever the load before.
struct Checkpointer {
    /// Dropped to stop the thread.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, wal_limit: u64) -> Result<Self, ReadError> {
        let bound = WalBound::open(path, wal_limit)?;
        let mut seen = bound.data_version()?;
        let mut pacer = Pacer::new(path, wal_limit);
        Self::every(Pacer::TICK, "tessera-rm-ckpt", move || {
            let next = pacer.next(|| {
                let version = bound.data_version();
                let paused = version.as_ref().is_ok_and(|v| *v == seen);
                if let Ok(version) = version {
                    seen = version;
                }
                paused
            });
            let checkpoint = match next {
                None => return,
                Some(Checkpoint::Passive) => bound.passive(),
                Some(Checkpoint::Truncate) => bound.truncate(),
            };
            if let Err(error) = checkpoint {
                tracing::debug!(%error, "read-model WAL checkpoint skipped");
            }
        })
    }

    /// A scratch file's equivalent: it is written without syncs, so a thread writes it to
    /// disk as it grows, and syncing the finished file before the swap has little left to do.
    fn sync_scratch(path: &Path) -> Result<Self, ReadError> {
        let file = std::fs::File::open(path)
            .map_err(|e| ReadError::Unavailable(format!("opening {}: {e}", path.display())))?;
        Self::every(SCRATCH_SYNC_EVERY, "tessera-rm-sync", move || {
            if let Err(error) = file.sync_data() {
                tracing::debug!(%error, "scratch read-model sync skipped");
            }
        })
    }

    fn every(
        period: Duration,
        name: &str,
        mut work: impl FnMut() + Send + 'static,
    ) -> Result<Self, ReadError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(period)
                {
                    work();
                }
            })
            .map_err(|e| ReadError::Unavailable(format!("starting {name}: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
