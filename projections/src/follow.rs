//! Following the log for an in-memory read model: the loop the OAuth directory and the session
//! directory share, from a position to the head and on, until told to stop.

use std::sync::Arc;

use futures::StreamExt;
use tessera_event_log::{EventLog, LogError};
use tessera_event_schemas::RecordedEvent;
use tokio::sync::watch;

/// How many events one read of the log returns.
const READ_BATCH: usize = 5000;

/// Reads `log` from `from` and hands each batch to `apply`, until `stop` turns true. A read
/// that fails is retried. An event `apply` cannot decode stops the fold before it (logged with
/// `name`): a model folded past an event it did not understand would answer wrongly.
pub(crate) async fn follow_log(
    log: Arc<dyn EventLog>,
    from: u64,
    name: &'static str,
    mut stop: watch::Receiver<bool>,
    mut apply: impl FnMut(&[RecordedEvent]) -> Result<(), (u64, String)>,
) {
    let events = tessera_event_log::subscribe(log, from, READ_BATCH);
    let mut events = std::pin::pin!(events);
    loop {
        let next: Option<Result<Vec<RecordedEvent>, LogError>> = tokio::select! {
            next = events.next() => next,
            _ = stop.wait_for(|s| *s) => return,
        };
        match next {
            Some(Ok(batch)) => {
                if let Err((position, error)) = apply(&batch) {
                    tracing::error!(
                        position,
                        %error,
                        "undecodable event in the log: the {name} stops before it"
                    );
                    let _ = stop.wait_for(|s| *s).await;
                    return;
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "reading the event log failed; retrying");
            }
            None => return,
        }
    }
}
