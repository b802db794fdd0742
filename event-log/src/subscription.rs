//! Subscriptions: catch up on the log from a position, then follow it live, forever.
//!
//! A subscription reads `read_all_bulk` in batches until it is caught up, then waits for either a
//! head change or a poll interval. The head watch moves with this process's commits and, on
//! PostgreSQL, with every other process's too (`postgres::notify`: `LISTEN`/`NOTIFY`); the poll
//! is only the fallback for a notification lost with its connection. Because positions are dense and assigned
//! in commit order, "everything after the last position I saw" is never missing anything.
//!
//! At the head, the next events usually come from [`EventLog::recent`]: the writer's in-memory
//! tail of what this process just committed, handed over only when it holds the very next
//! position, so reading from memory or from the store yields exactly the same sequence.
//!
//! This module only uses the [`EventLog`] trait; it knows no backend.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tessera_event_schemas::RecordedEvent;
use tokio::sync::watch;

use crate::{EventLog, LogError};

/// How often a caught-up subscription looks for commits it was not told about.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

struct State {
    log: Arc<dyn EventLog>,
    position: u64,
    batch_size: usize,
    head: watch::Receiver<u64>,
    /// Set once the head watch is gone (the log closed); polling alone continues.
    watch_closed: bool,
    /// Whether the last read returned nothing (or failed), so the next one should wait first.
    idle: bool,
}

/// Batches of events after `after_position`, in order, each non-empty; errors are yielded and
/// the subscription carries on after a poll interval.
pub fn subscribe(
    log: Arc<dyn EventLog>,
    after_position: u64,
    batch_size: usize,
) -> impl Stream<Item = Result<Vec<RecordedEvent>, LogError>> + Send {
    let head = log.watch_head();
    let state = State {
        log,
        position: after_position,
        batch_size: batch_size.max(1),
        head,
        watch_closed: false,
        idle: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if state.idle {
                wait_for_news(&mut state).await;
            }
            // Mark the current head as seen before reading, so a commit that lands during the
            // read still wakes the next wait.
            state.head.borrow_and_update();
            let recent = state
                .log
                .recent(state.position, state.batch_size)
                .filter(|events| !events.is_empty());
            let read = match recent {
                Some(events) => Ok(events),
                None => {
                    state
                        .log
                        .read_all_bulk(state.position, state.batch_size)
                        .await
                }
            };
            match read {
                Ok(events) => match events.last() {
                    Some(last) => {
                        state.position = last.envelope.global_position;
                        state.idle = events.len() < state.batch_size;
                        return Some((Ok(events), state));
                    }
                    None => state.idle = true,
                },
                Err(error) => {
                    state.idle = true;
                    return Some((Err(error), state));
                }
            }
        }
    })
}

async fn wait_for_news(state: &mut State) {
    if state.watch_closed {
        tokio::time::sleep(POLL_INTERVAL).await;
        return;
    }
    tokio::select! {
        changed = state.head.changed() => {
            if changed.is_err() {
                state.watch_closed = true;
            }
        }
        () = tokio::time::sleep(POLL_INTERVAL) => {}
    }
}
