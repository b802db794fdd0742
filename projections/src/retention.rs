//! Audit read-model retention (`TESSERA_AUDIT_RETENTION_DAYS`): rows of `rm_audit` older than
//! the retention leave the table, a few thousand at a time, and a fold never brings them back.
//!
//! Only the read model forgets: the log keeps every event, so `tessera-replay` (history,
//! export) still answers for any period. Two places apply the retention:
//! - a background task ([`RetentionTask`]) deletes expired rows in small transactions with a
//!   pause between them, so that the projector (on SQLite the store's single writer, which runs
//!   the deletes between its own batches; on PostgreSQL concurrent inserts never wait for
//!   deletes) is held up for one small transaction at most;
//! - the fold skips the audit row of an event already older than the retention (a rebuild, a
//!   catch-up after a long stop), so that a rebuild does not bring expired rows back and a
//!   catch-up does not write rows only to delete them. The other read models fold every event.
//!
//! Age is judged by the event's `recorded_at` against the injected clock. The canonical
//! snapshot leaves out rows past the retention too (they are on their way out), so that a live
//! store and a rebuild of it compare equal whatever the sweep has reached.

use std::sync::Arc;
use std::time::Duration;

use tessera_event_schemas::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ReadError;
use crate::store::ReadStore;

/// Rows one sweep transaction deletes at most.
pub const SWEEP_BATCH: usize = 2_000;
/// The pause between two sweep transactions.
const SWEEP_PAUSE: Duration = Duration::from_millis(50);
/// The longest wait between two sweeps.
const SWEEP_EVERY_AT_MOST: Duration = Duration::from_secs(60);

/// The time the retention is judged at.
pub type RetentionClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How long audit rows are kept, and the clock their age is judged by.
#[derive(Clone)]
pub struct AuditRetention {
    max_age: Duration,
    clock: RetentionClock,
}

impl std::fmt::Debug for AuditRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditRetention")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl AuditRetention {
    pub fn new(max_age: Duration, clock: RetentionClock) -> Self {
        Self { max_age, clock }
    }

    /// The same retention judged at the fixed time `now`: for comparing two stores.
    pub fn at(&self, now: Timestamp) -> Self {
        Self::new(self.max_age, Arc::new(move || now))
    }

    /// The current time by this retention's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Rows recorded before this time are expired.
    pub fn cutoff(&self) -> Timestamp {
        let age = i64::try_from(self.max_age.as_micros()).unwrap_or(i64::MAX);
        Timestamp::from_micros(self.now().as_micros().saturating_sub(age))
    }

    /// How often the sweep runs: a quarter of the retention, at least every second and at most
    /// every minute (so a retention in seconds, for tests, sweeps every second).
    fn sweep_every(&self) -> Duration {
        (self.max_age / 4).clamp(Duration::from_secs(1), SWEEP_EVERY_AT_MOST)
    }
}

/// The task that sweeps expired audit rows out of a store.
pub struct RetentionTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RetentionTask {
    /// Sweeps `store` by its retention (see [`ReadStore::with_audit_retention`]) until stopped;
    /// `None` when the store keeps audit rows forever.
    pub fn start(store: ReadStore) -> Option<Self> {
        let retention = store.audit_retention()?.clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = sweep(&store, &retention, &mut stopped).await {
                    tracing::warn!(%error, "sweeping expired audit rows failed; retried later");
                }
                let wait = tokio::time::sleep(retention.sweep_every());
                tokio::select! {
                    _ = wait => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
            }
        });
        Some(Self { stop, task })
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "audit retention task failed");
        }
    }
}

/// Deletes every expired row, [`SWEEP_BATCH`] at a time with a pause between transactions,
/// until a transaction finds none (or stop is requested).
async fn sweep(
    store: &ReadStore,
    retention: &AuditRetention,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), ReadError> {
    let cutoff = retention.cutoff();
    let mut deleted = 0;
    loop {
        let batch = store.delete_expired_audit(cutoff, SWEEP_BATCH).await?;
        deleted += batch;
        if batch == 0 || *stopped.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_PAUSE) => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, before = %cutoff, "expired audit rows left the read model");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_clock_less_the_retention_and_sweeps_follow_its_length() {
        let now = Timestamp::from_micros(10_000_000_000);
        let days = AuditRetention::new(Duration::from_secs(2 * 86_400), Arc::new(move || now));
        assert_eq!(
            days.cutoff(),
            Timestamp::from_micros(10_000_000_000 - 2 * 86_400 * 1_000_000)
        );
        assert_eq!(days.sweep_every(), SWEEP_EVERY_AT_MOST);
        let seconds = days.at(now);
        assert_eq!(seconds.cutoff(), days.cutoff());
        let short = AuditRetention::new(Duration::from_secs(2), Arc::new(move || now));
        assert_eq!(short.sweep_every(), Duration::from_secs(1));
    }
}
