//! A per-process cache of folded streams that is caught up from the log on every use: the
//! state and the version it was folded to are kept, and each use reads only the events after
//! that version (usually none: one indexed query that returns no row). What another node
//! appended is therefore seen at the next use, and a hot path does not fold a whole stream
//! again each time.
//!
//! Entries are dropped wholesale when the cache passes its bound, so that memory stays flat
//! however many streams are read; the next use of a dropped stream folds it again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tessera_domain::Aggregate;

use super::CommandService;
use super::engine::{PAGE, decode};
use crate::CommandError;

/// Folded streams by stream id, with the version each was folded to.
pub(super) struct FoldCache<A> {
    streams: Mutex<HashMap<String, (A, u64)>>,
    bound: usize,
}

impl<A: Aggregate + Clone> FoldCache<A> {
    pub fn new(bound: usize) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            bound,
        }
    }

    fn get(&self, stream_id: &str) -> Option<(A, u64)> {
        self.lock().get(stream_id).cloned()
    }

    fn put(&self, stream_id: &str, state: A, version: u64) {
        let mut streams = self.lock();
        if streams.len() >= self.bound && !streams.contains_key(stream_id) {
            streams.clear();
        }
        // Keep the newer of two concurrent reads.
        if streams
            .get(stream_id)
            .is_none_or(|(_, held)| *held < version)
        {
            streams.insert(stream_id.to_owned(), (state, version));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (A, u64)>> {
        // The map holds no invariant a panic could break.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CommandService {
    /// `stream_id` folded up to the log's current end, from `cache`; returns the state and its
    /// version (0: no stream). `done` says when a state can no longer change (a destroyed
    /// vault), so that no read is needed at all.
    pub(super) async fn fold_cached<A: Aggregate + Clone>(
        &self,
        cache: &FoldCache<A>,
        stream_id: &str,
        done: impl Fn(&A) -> bool,
    ) -> Result<(A, u64), CommandError> {
        let (mut state, mut version) = cache.get(stream_id).unwrap_or_default();
        if done(&state) {
            return Ok((state, version));
        }
        let before = version;
        loop {
            let page = self.log.read_stream(stream_id, version, PAGE).await?;
            for recorded in &page {
                state.evolve(&decode(recorded)?);
                version = recorded.envelope.stream_version;
            }
            if page.len() < PAGE {
                break;
            }
        }
        if version != before {
            cache.put(stream_id, state.clone(), version);
        }
        Ok((state, version))
    }
}
