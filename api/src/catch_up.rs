//! Read-your-writes across nodes: before a node says "unknown" or "no", it catches up.
//!
//! Several nodes follow one PostgreSQL log, each a few milliseconds behind the others' commits
//! (`LISTEN`/`NOTIFY`, see `tessera_event_log::postgres::notify`). Within one node an append's
//! handler waits for its own position (`AppState::projected`), but a caller that writes through
//! node A and then reads through node B (a token issued on A introspected on B, a client
//! created on A used on B) can reach B before B has folded the write. So wherever an answer
//! depends on something that may simply not have arrived yet (an unknown tenant, client, API
//! key or signing key, a secret that does not match, a tenant that does not serve), the
//! handler calls [`AppState::catch_up`] on the miss and decides again: it reads the log's head
//! and waits, at most [`BOUND`], for the read models and the in-memory directories to reach
//! it. After the bound it answers from what it knows.
//!
//! The admin API's reads are covered as a whole by [`refetch_not_found`]: a `GET` under
//! `/v1/` answered 404 is answered again once the node has caught up.
//!
//! The hot path, a hit, never comes here: only misses and mismatches pay a round trip. Misses
//! can be many at once (a burst of bad tokens): concurrent callers share one head read
//! ([`HeadReads`]), so a flood costs the database one query at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tessera_event_log::{EventLog, LogError};

use crate::state::AppState;

/// The longest a request waits for its node to catch up with the log before answering from
/// what it knows.
pub const BOUND: Duration = Duration::from_secs(2);

/// Reads of the log's head shared between concurrent callers.
#[derive(Default)]
pub struct HeadReads {
    /// Completed reads, counted.
    done: AtomicU64,
    /// The head the last completed read found. Holding the lock is being the one reading.
    last: tokio::sync::Mutex<u64>,
    /// Catch-ups that found the node behind the head (for `/metrics`).
    behind: AtomicU64,
}

impl HeadReads {
    /// The log's head, as read by a read that began after this call did: what the caller must
    /// see is committed before the call, so an answer from a read that was already under way
    /// could miss it, and one that began later cannot.
    pub async fn fresh_head(&self, log: &dyn EventLog) -> Result<u64, LogError> {
        let arrived = self.done.load(Ordering::Acquire);
        let mut last = self.last.lock().await;
        // Reads run one at a time under the lock. The one that completed first after this
        // call arrived may have begun before it; the one after that began after it.
        if self.done.load(Ordering::Acquire) >= arrived + 2 {
            return Ok(*last);
        }
        let head = log.head_position().await?;
        *last = head;
        self.done.fetch_add(1, Ordering::Release);
        Ok(head)
    }

    /// How many catch-ups found this node behind the log (a measure of cross-node traffic
    /// that arrived before its writes did).
    pub fn behind(&self) -> u64 {
        self.behind.load(Ordering::Relaxed)
    }
}

impl AppState {
    /// Brings this node's read models and directories up to the log's head as of now, waiting
    /// at most [`BOUND`] (see the module documentation); the caller then decides again. A
    /// failed head read (the database is away) returns at once: the caller decides from what
    /// it knows. Deciding again is not skipped when this node was not behind, because the
    /// node may have caught up between the first decision and this call.
    pub async fn catch_up(&self) {
        let head = match self.head_reads.fresh_head(&*self.log).await {
            Ok(head) => head,
            Err(error) => {
                tracing::warn!(%error, "reading the log head to catch up failed");
                return;
            }
        };
        let behind = self.projections.projected_position() < head
            || self.directory.position() < head
            || self.sessions.position() < head
            || self.registry.position() < head;
        if !behind {
            return;
        }
        self.head_reads.behind.fetch_add(1, Ordering::Relaxed);
        let bound = BOUND.min(self.read_your_writes_timeout);
        let (read_models, directory, sessions, registry) = tokio::join!(
            self.projections.wait_for(head, bound),
            self.directory.wait_for(head, bound),
            self.sessions.wait_for(head, bound),
            self.registry.wait_for(head, bound),
        );
        if read_models
            .and(directory)
            .and(sessions)
            .and(registry)
            .is_err()
        {
            tracing::warn!(
                head,
                "this node did not catch up with the log within {bound:?}; answering from what it knows"
            );
        }
    }
}

/// Marks a request answered a second time by [`refetch_not_found`], so that what the first
/// attempt counted (an API key's use) is not counted twice.
#[derive(Clone, Copy, Debug)]
pub struct Refetched;

/// Middleware: an admin API read (a `GET` under `/v1/`) answered 404 is answered again once
/// this node has caught up with the log, because the resource may have been created through
/// another node a moment before. A read has no effect to repeat, except the count of the API
/// key's use, which the second attempt skips ([`Refetched`]). Other requests pass through.
pub async fn refetch_not_found(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET || !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let mut again = parts.clone();
    let response = next.clone().run(Request::from_parts(parts, body)).await;
    if response.status() != StatusCode::NOT_FOUND {
        return response;
    }
    state.catch_up().await;
    again.extensions.insert(Refetched);
    next.run(Request::from_parts(again, Body::empty())).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_event_log::{Backend, LogConfig, MemoryStore};

    use super::*;

    #[tokio::test]
    async fn a_head_read_that_began_before_the_caller_is_not_reused_but_a_later_one_is() {
        let log = tessera_event_log::open(LogConfig::new(Backend::Memory {
            store: MemoryStore::default(),
        }))
        .await
        .unwrap();
        let reads = Arc::new(HeadReads::default());
        assert_eq!(reads.fresh_head(&*log).await.unwrap(), 0);
        assert_eq!(reads.done.load(Ordering::Relaxed), 1);
        // A caller arriving now needs a read that begins after it: one more read, not the
        // cached one.
        assert_eq!(reads.fresh_head(&*log).await.unwrap(), 0);
        assert_eq!(reads.done.load(Ordering::Relaxed), 2);
    }
}
