//! Offline rebuild: drop every read model and fold the whole log again.
//!
//! Used after a reducer change, a corrupt row, or to prove that the live projector and a
//! fresh replay agree ([`crate::ReadStore::snapshot`]). It shares the batch writer with the
//! live runtime, with much bigger batches (each row is written once per batch however many of
//! its events the batch folds), and reads the next batch from the log while the current one
//! is written. (Splitting each read into concurrent ranges was tried and measured no faster on
//! two cores: the rebuild is CPU-bound there.)
//! No runtime may be running on the same store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_event_log::EventLog;

use crate::error::ProjectionError;
use crate::reduce::Checkpoints;
use crate::store::ReadStore;
use crate::write::{DecodedBatch, RowCache, apply_batch};

/// Events per rebuild transaction. A crash mid-rebuild only means running it again.
const REBUILD_BATCH: usize = 50_000;

/// What a rebuild did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildStats {
    /// Events folded (every event of the log, including those no read model uses).
    pub events: u64,
    pub elapsed: Duration,
}

/// Resets `store` and projects all of `log` into it. Stops with
/// [`ProjectionError::Undecodable`] at an event this build cannot decode, having applied
/// everything before it.
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
    store.reset().await?;
    let mut checkpoints = Checkpoints::default();
    let mut cache = RowCache::new(checkpoints);
    let mut events: u64 = 0;
    let mut batch = Arc::new(DecodedBatch::decode(
        log.read_all_bulk(0, batch_size).await?,
    ));
    while batch.len() > 0 {
        let after = batch
            .events
            .last()
            .map_or(0, |e| e.envelope.global_position);
        let stop_here = batch.failure.is_some();
        let read_next = async {
            if stop_here {
                return Ok(Arc::new(DecodedBatch::decode(Vec::new())));
            }
            log.read_all_bulk(after, batch_size)
                .await
                .map(|events| Arc::new(DecodedBatch::decode(events)))
        };
        let (applied, next) = tokio::join!(
            apply_batch(store, checkpoints, &batch, &mut cache),
            read_next
        );
        checkpoints = applied?;
        events += batch.decoded.len() as u64;
        if let Some((position, source)) = &batch.failure {
            return Err(ProjectionError::Undecodable {
                position: *position,
                source: source.clone(),
            });
        }
        batch = next?;
    }
    Ok(RebuildStats {
        events,
        elapsed: started.elapsed(),
    })
}
