//! Offline rebuild: drop every read model and fold the whole log again.
//!
//! Used after a reducer change, a corrupt row, or to prove that the live projector and a
//! fresh replay agree ([`crate::ReadStore::snapshot`]). It shares the batch writer with the
//! live runtime, with much bigger batches, and reads the next batch from the log while the
//! current one is written. Its row cache writes behind (`RowCache::write_behind`): each batch
//! inserts its audit rows, but table rows wait in the cache until the whole log is folded (or
//! until the cache outgrows its bound), so a row is written about once per rebuild however
//! many batches change it. Until then the tables' stored checkpoints stay behind with their
//! rows, so the store is consistent after every commit. The reset leaves out the indexes that
//! only serve queries, and the rebuild creates them at the end (also when it stops early): one
//! sort over the rows instead of an index insert per row, and each index page written once.
//! The audit trail's index is built while the held-back table rows are written, since the two
//! touch different tables. (Splitting each read into concurrent ranges was tried and measured
//! no faster on two cores: the rebuild is CPU-bound there.)
//!
//! A SQLite store is rebuilt into a scratch file beside it, written without a WAL or syncs,
//! and swapped in once complete (`swap`): readers keep the old read models until then, and a
//! rebuild that fails leaves them as they were. A PostgreSQL store is reset and rebuilt in
//! place; since its tables start empty, the audit rows and each table's first settlement are
//! streamed with `COPY` (`write_postgres`). No runtime may be running on the same store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_event_log::EventLog;

use crate::cache::RowCache;
use crate::error::ProjectionError;
use crate::store::ReadStore;
use crate::swap;
use crate::tables::{Checkpoints, Projection};
use crate::write::{DecodedBatch, apply_batch};

/// Events per rebuild transaction. A crash mid-rebuild only means running it again. Table rows
/// are written once per rebuild whatever the batch size (write-behind), so what this sets is
/// how soon the writer starts (the first batch is read with nothing to overlap it) against
/// the cost of a commit. Sizes from 12,000 to 50,000 (and a first batch of 5,000 or 10,000
/// growing to 50,000) all measured within this machine's noise of each other (BENCHMARKS.md).
const REBUILD_BATCH: usize = 25_000;

/// What a rebuild did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildStats {
    /// Events folded (every event of the log, including those no read model uses).
    pub events: u64,
    pub elapsed: Duration,
}

/// Resets `store` and projects all of `log` into it. Stops with
/// [`ProjectionError::Undecodable`] at an event this build cannot decode, having applied
/// everything before it. On SQLite the store's file is replaced (see the module doc): every
/// clone of `store` sees the result, but a store opened on the same file elsewhere makes the
/// rebuild fail, with the read models as they were.
pub async fn rebuild(
    log: &dyn EventLog,
    store: &ReadStore,
) -> Result<RebuildStats, ProjectionError> {
    rebuild_in_batches(log, store, REBUILD_BATCH).await
}

/// [`rebuild`] with `batch_size` events per transaction (at least 1).
pub async fn rebuild_in_batches(
    log: &dyn EventLog,
    store: &ReadStore,
    batch_size: usize,
) -> Result<RebuildStats, ProjectionError> {
    let batch_size = batch_size.max(1);
    let started = Instant::now();
    let events = match store.sqlite_path() {
        Some(path) => {
            let scratch = swap::open_scratch(path, store.wal_limit())
                .await?
                .with_audit_retention(store.audit_retention().cloned());
            let folded = rebuild_into(log, &scratch, batch_size).await;
            match folded {
                // Up to an undecodable event is as far as any rebuild of this log gets.
                Ok(_) | Err(ProjectionError::Undecodable { .. }) => store.swap_in(scratch).await?,
                Err(_) => swap::discard(scratch).await,
            }
            folded?
        }
        None => rebuild_into(log, store, batch_size).await?,
    };
    Ok(RebuildStats {
        events,
        elapsed: started.elapsed(),
    })
}

/// Resets `store` and projects all of `log` into it; returns how many events it folded.
async fn rebuild_into(
    log: &dyn EventLog,
    store: &ReadStore,
    batch_size: usize,
) -> Result<u64, ProjectionError> {
    // Resetting the store and reading the log's first batch are independent.
    // A smaller first batch: nothing else runs while it is read.
    let first_size = (batch_size / 5).max(1);
    let (reset, first) = tokio::join!(store.reset(), read_batch(log, 0, first_size));
    reset?;
    let mut progress = Progress::default();
    let folded = progress
        .fold_log(log, store, first?, first_size, batch_size)
        .await;
    // Everything the log holds (up to an undecodable event, if any) is folded. The table rows
    // held back are written while the audit trail's lookup index is built: they touch
    // different tables, and on PostgreSQL each keeps a core busy. Then the other lookup
    // indexes that `reset` left out, built over all the rows at once; all of this also after a
    // failure, so that the store answers queries as fast as usual.
    let (settled, audit_indexed) = tokio::join!(
        progress.settle(store),
        store.create_missing(Some(Projection::Audit))
    );
    let indexed = store.create_missing(None).await;
    let events = folded?;
    settled?;
    audit_indexed?;
    indexed?;
    debug_assert_eq!(store.checkpoints().await.ok(), Some(progress.checkpoints));
    Ok(events)
}

async fn read_batch(
    log: &dyn EventLog,
    after: u64,
    batch_size: usize,
) -> Result<Arc<DecodedBatch>, ProjectionError> {
    let events = log.read_all_bulk(after, batch_size).await?;
    Ok(Arc::new(DecodedBatch::decode(events)))
}

/// How far a rebuild has got: the checkpoints its batches reached, and its write-behind cache.
struct Progress {
    checkpoints: Checkpoints,
    cache: RowCache,
}

impl Default for Progress {
    fn default() -> Self {
        let checkpoints = Checkpoints::default();
        Self {
            checkpoints,
            cache: RowCache::write_behind(checkpoints),
        }
    }
}

impl Progress {
    /// Applies `batch` and every batch after it in the log to the freshly reset `store`,
    /// reading each batch while the one before is written, and returns how many events it
    /// folded. The cache still holds table rows back afterwards ([`Progress::settle`]).
    async fn fold_log(
        &mut self,
        log: &dyn EventLog,
        store: &ReadStore,
        mut batch: Arc<DecodedBatch>,
        mut requested: usize,
        batch_size: usize,
    ) -> Result<u64, ProjectionError> {
        let mut events: u64 = 0;
        while batch.len() > 0 {
            let after = batch
                .events
                .last()
                .map_or(0, |e| e.envelope.global_position);
            // A short read is the log's end (for now).
            let stop_here = batch.failure.is_some() || batch.len() < requested;
            let read_next = async {
                if stop_here {
                    return Ok(Arc::new(DecodedBatch::decode(Vec::new())));
                }
                read_batch(log, after, batch_size).await
            };
            let (applied, next) = tokio::join!(
                apply_batch(store, self.checkpoints, &batch, &mut self.cache),
                read_next
            );
            self.checkpoints = applied?;
            events += batch.decoded.len() as u64;
            if let Some((position, source)) = &batch.failure {
                return Err(ProjectionError::Undecodable {
                    position: *position,
                    source: source.clone(),
                });
            }
            batch = next?;
            requested = batch_size;
        }
        Ok(events)
    }

    /// Writes the table rows the cache holds back, in a transaction without events.
    async fn settle(&mut self, store: &ReadStore) -> Result<(), ProjectionError> {
        if self.cache.holds_back() {
            self.cache.settle_with_next_batch();
            let nothing = Arc::new(DecodedBatch::decode(Vec::new()));
            self.checkpoints =
                apply_batch(store, self.checkpoints, &nothing, &mut self.cache).await?;
        }
        Ok(())
    }
}
