//! The live projector: follows the event log and keeps the read models current.
//!
//! Two tasks. The reader follows the log (`tessera_event_log::subscribe`) from the slowest
//! projection's checkpoint, decodes each batch, and hands it over a small bounded channel, so
//! reading and decoding overlap with writing. The writer applies batches through
//! `write::apply_batch`, one transaction each, and publishes the projected position on a
//! `watch` channel that [`ProjectionRuntime::wait_for`] waits on. Before publishing it, it
//! also moves forward the position of the last event that changed a user row
//! ([`ProjectionRuntime::users_changed_at`]), so that the API can keep user rows in memory and
//! read them again only after a change; and likewise of the last event that may change how a
//! presented API key authenticates ([`ProjectionRuntime::keys_changed_at`]: an API key issued or
//! revoked, any tenant event), so that the API can keep verified keys in memory.
//! While catching up, the writer merges the batches already queued into one transaction, which
//! lets coalescing fold many events per row write; at the head it commits each batch at once.
//!
//! Failures: an unreachable log is retried by the subscription's poll; a failing store write
//! is retried with capped exponential backoff, forever.
//! An event this build cannot decode stops projection just before it, with an error naming
//! its position (again at every start), because skipping it would silently corrupt read
//! models; `wait_for` beyond it then times out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tessera_event_log::EventLog;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cache::RowCache;
use crate::error::{ReadError, WaitTimeout};
use crate::store::ReadStore;
use crate::tables::Checkpoints;
use crate::tables::users::changes_a_user;
use crate::write::{DecodedBatch, apply_batch};

/// Events asked of the log per read. At the head a batch holds whatever arrived since the
/// last one, so this only bounds catch-up batches.
const READ_BATCH: usize = 2500;
/// Most events merged into one transaction while catching up: the more events a transaction
/// folds, the fewer times each row is written.
const MAX_MERGED: usize = 50_000;
/// About what one merged event adds to a SQLite WAL (its audit row and index entry, and a
/// share of the table rows, each page written once per transaction: measured 700-800 bytes
/// for token grants).
const WAL_BYTES_PER_EVENT: u64 = 1024;

/// The most events one transaction merges for `store`. A WAL can only be truncated between
/// transactions (see `write_sqlite`), so on SQLite a merged transaction is kept to about half
/// the WAL's bound: the WAL then passes its bound by at most that much while the projector
/// catches up, and by one live batch at the head. PostgreSQL has no such file.
fn merge_limit(store: &ReadStore) -> usize {
    if store.sqlite_path().is_none() {
        return MAX_MERGED;
    }
    let fits = store.wal_limit() / 2 / WAL_BYTES_PER_EVENT;
    usize::try_from(fits).map_or(MAX_MERGED, |fits| fits.clamp(READ_BATCH, MAX_MERGED))
}
/// Decoded batches the reader may run ahead of the writer (enough to fill a merged batch).
const QUEUE: usize = 20;
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A running projector. Dropping it also stops the tasks (at their next wait); `shutdown`
/// additionally waits until they have finished.
pub struct ProjectionRuntime {
    position: watch::Receiver<u64>,
    users_changed: Arc<AtomicU64>,
    keys_changed: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl ProjectionRuntime {
    /// Reads the stored checkpoints and starts projecting from the slowest of them.
    pub async fn start(log: Arc<dyn EventLog>, store: ReadStore) -> Result<Self, ReadError> {
        let checkpoints = store.checkpoints().await?;
        let (position_tx, position) = watch::channel(checkpoints.min());
        let (stop, stop_rx) = watch::channel(false);
        let (batches_tx, batches_rx) = mpsc::channel(QUEUE);
        let users_changed = Arc::new(AtomicU64::new(0));
        let keys_changed = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(read_loop(
            log,
            checkpoints.min(),
            batches_tx,
            stop_rx.clone(),
        ));
        let writer = tokio::spawn(write_loop(
            store,
            checkpoints,
            batches_rx,
            position_tx,
            Changes {
                users: users_changed.clone(),
                keys: keys_changed.clone(),
            },
            stop_rx,
        ));
        Ok(Self {
            position,
            users_changed,
            keys_changed,
            stop,
            reader,
            writer,
        })
    }

    /// The global position every read model has applied (inclusive).
    pub fn projected_position(&self) -> u64 {
        *self.position.borrow()
    }

    /// The global position of the last event applied that changed a user row (`rm_users`);
    /// 0 when none did since the start. A user row read when the projected position was `p` is
    /// current as long as this stays at most `p`: it moves forward before the projected
    /// position is published, so a read-your-writes wait that returns also sees it moved.
    pub fn users_changed_at(&self) -> u64 {
        self.users_changed.load(Ordering::Acquire)
    }

    /// The global position of the last event applied that may change how a presented API key
    /// authenticates: `api_key.issued` or `api_key.revoked`, or any event of a tenant's own
    /// stream (its status, suspension, archival); 0 when none did since the start. Moves
    /// forward before the projected position is published, as [`Self::users_changed_at`].
    pub fn keys_changed_at(&self) -> u64 {
        self.keys_changed.load(Ordering::Acquire)
    }

    /// A receiver of the projected position, for callers that want to follow it.
    pub fn watch_position(&self) -> watch::Receiver<u64> {
        self.position.clone()
    }

    /// Waits until every read model has applied `position` (read-your-writes after an
    /// append). Returns at once if it already has.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitTimeout> {
        let mut rx = self.position.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            // Timed out, or the writer has stopped for good (then waiting longer is pointless).
            Ok(Err(_)) | Err(_) => Err(WaitTimeout {
                wanted: position,
                projected: *self.position.borrow(),
            }),
        }
    }

    /// Stops both tasks. A batch already being written commits first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.reader.await {
            tracing::error!(%error, "projection reader task failed");
        }
        if let Err(error) = self.writer.await {
            tracing::error!(%error, "projection writer task failed");
        }
    }
}

struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(BACKOFF_START)
    }

    fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        wait
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_START;
    }
}

/// Sleeps for `wait` unless stop is requested first; returns whether to stop.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

async fn read_loop(
    log: Arc<dyn EventLog>,
    after: u64,
    batches: mpsc::Sender<DecodedBatch>,
    mut stop: watch::Receiver<bool>,
) {
    let events = tessera_event_log::subscribe(log, after, READ_BATCH);
    let mut events = std::pin::pin!(events);
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = stop.wait_for(|s| *s) => return,
        };
        let events = match next {
            Some(Ok(events)) => events,
            // The subscription waits a poll interval before its next read, so this does not spin.
            Some(Err(error)) => {
                tracing::warn!(%error, "reading the event log failed; retrying");
                continue;
            }
            None => return,
        };
        let batch = DecodedBatch::decode(events);
        let undecodable = batch.failure.is_some();
        if batches.send(batch).await.is_err() {
            return;
        }
        if undecodable {
            // The writer stops at that event; reading further would only fill memory.
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
    }
}

/// The position of the batch's last event that changes a user row, if any does.
fn last_user_change(batch: &DecodedBatch) -> Option<u64> {
    batch
        .events
        .iter()
        .zip(&batch.decoded)
        .filter(|(recorded, event)| changes_a_user(&recorded.envelope, event))
        .map(|(recorded, _)| recorded.envelope.global_position)
        .max()
}

/// Whether an event may change how a presented API key authenticates (see
/// [`ProjectionRuntime::keys_changed_at`]). Usage (`api_key.used`) changes only counts.
fn changes_key_auth(event_type: &str) -> bool {
    matches!(event_type, "api_key.issued" | "api_key.revoked") || event_type.starts_with("tenant.")
}

fn last_key_change(batch: &DecodedBatch) -> Option<u64> {
    batch
        .events
        .iter()
        .filter(|recorded| changes_key_auth(&recorded.envelope.event_type))
        .map(|recorded| recorded.envelope.global_position)
        .max()
}

/// The positions of the last changes the API caches depend on.
struct Changes {
    users: Arc<AtomicU64>,
    keys: Arc<AtomicU64>,
}

async fn write_loop(
    store: ReadStore,
    mut checkpoints: Checkpoints,
    mut batches: mpsc::Receiver<DecodedBatch>,
    position: watch::Sender<u64>,
    changes: Changes,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new();
    let mut cache = RowCache::new(checkpoints);
    let max_merged = merge_limit(&store);
    loop {
        let next = tokio::select! {
            next = batches.recv() => next,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(mut batch) = next else {
            return;
        };
        while batch.len() < max_merged && batch.failure.is_none() {
            match batches.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let batch = Arc::new(batch);
        loop {
            match apply_batch(&store, checkpoints, &batch, &mut cache).await {
                Ok(applied) => {
                    checkpoints = applied;
                    backoff.reset();
                    if let Some(at) = last_user_change(&batch) {
                        changes.users.fetch_max(at, Ordering::Release);
                    }
                    if let Some(at) = last_key_change(&batch) {
                        changes.keys.fetch_max(at, Ordering::Release);
                    }
                    position.send_replace(checkpoints.min());
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "writing read models failed; retrying the batch");
                    if sleep_or_stop(backoff.next(), &mut stop).await {
                        return;
                    }
                    // The failure may have hidden a commit that did happen (a connection lost
                    // during COMMIT); the stored checkpoints say which, so the retry neither
                    // re-applies nor skips. If they cannot be read, the next attempt fails too
                    // and we come back here.
                    if let Ok(stored) = store.checkpoints().await {
                        checkpoints = stored;
                    }
                }
            }
        }
        if let Some((at, error)) = &batch.failure {
            tracing::error!(
                position = at,
                %error,
                "undecodable event in the log: read models stop before it until a build \
                 that understands it is deployed"
            );
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
    }
}
