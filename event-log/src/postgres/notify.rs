//! Hearing of other processes' commits at once: PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Every batch the writer commits sends `NOTIFY tessera_log, '<new head position>'` from inside
//! its transaction (PostgreSQL delivers a notification only when, and only if, its transaction
//! commits, and in commit order). Each process listens on [`CHANNEL`] on a dedicated connection
//! and raises its head watch to the announced position, which wakes every subscription
//! (projections, the directories, the Kafka publisher) within milliseconds instead of a poll
//! interval.
//!
//! Notifications are an optimisation, never the source of truth: a subscription reads the
//! store for what follows its position, so a notification lost with a connection loses nothing
//! but time. When the listening connection breaks, this task connects again, listens again and
//! then wakes every subscription once, so that commits announced while it was away are read
//! without waiting for the subscriptions' poll interval (which stays the fallback).
//!
//! This module knows nothing of events, only positions.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::group_commit::HeadAnnouncer;

/// The channel every writer notifies and every process listens on.
pub const CHANNEL: &str = "tessera_log";

/// The first wait before connecting again after a failure; doubled up to [`RETRY_MAX`].
const RETRY_START: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Listens on [`CHANNEL`] forever (until the task is aborted), raising `head` to every
/// announced position.
pub async fn listen(url: String, head: HeadAnnouncer) {
    let mut retry = RETRY_START;
    loop {
        let mut listener = match connect(&url).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for event log commits; polling meanwhile");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        retry = RETRY_START;
        // Whatever was committed before this connection listened was not announced to it.
        head.wake();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match notification.payload().parse::<u64>() {
                    Ok(position) => head.raise(position),
                    // Not one of ours (someone else notified the channel): look anyway.
                    Err(_) => head.wake(),
                },
                // The connection was lost and sqlx has connected and listened again (its
                // `eager_reconnect`): what was announced in between is lost, so look.
                Ok(None) => {
                    tracing::info!("the event log's listen connection was re-established");
                    head.wake();
                }
                Err(error) => {
                    tracing::warn!(%error, "the event log's listen connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
