//! The session directory: an in-memory read model of the people signed in, by the keyed hash of
//! their session cookie, for the hosted pages and (next) OpenID Connect authorization, which
//! look a session up on every request.
//!
//! A start restores its last snapshot ([`snapshot`]) and folds only the log after it, as the
//! OAuth directory does, then follows the log live; it reads only `session.*` events and the
//! tenants' idle timeouts (`tenant.created`, `tenant.settings_changed`), skipping every other
//! event before decoding it. It holds what a request needs: the session's tenant, user, `amr`, `auth_time`, the
//! address and user agent it started from (the envelope's), and when it was last used.
//!
//! **Bounds.** Only active sessions are held: a session leaves at `session.ended`, and as soon
//! as it has been idle for its tenant's `session_timeout_minutes` (judged on lookups by the
//! caller's clock, and swept by the time of the newest event folded, so that a replay at start
//! forgets what the live run forgot). A user has at most `max_sessions_per_user` active sessions
//! (the write side evicts beyond), so memory is bounded by the people signed in within one idle
//! timeout, at most `max_sessions_per_user` each, a few hundred bytes per session.
//!
//! **Last use.** A lookup moves the session's last use forward in memory (an atomic, no lock
//! taken for writing); [`SessionDirectory::unrecorded_use`] lists what the log does not know yet,
//! for the API to record in aggregate (`session.seen`, one event per user and flush interval).
//! Folding `session.seen` moves both forward. A crash loses the uses since the last flush: a
//! session may then expire up to one flush interval early.
//!
//! **Read-your-writes.** The sign-in and sign-out pages record into it directly
//! ([`SessionDirectory::note_started`], [`SessionDirectory::note_ended`]) right after their
//! events are durable, so a new cookie works and an ended one stops at once; folding the same
//! event later changes nothing. Every fold is idempotent, which is also what lets a snapshot
//! hold such notes. A session's cookie hash is secret-like: it stays in memory and in the
//! directory's snapshots (mode 0600 beside the read models), never in a read model or a
//! message; it is a keyed hash of 256 random bits, from which no cookie can be made.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tessera_event_log::EventLog;
use tessera_event_schemas::{Event, Hash32, RecordedEvent, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::directory::DirectorySnapshots;
use crate::error::WaitTimeout;

pub mod snapshot;

/// Events asked of the log per read while following it.
/// How often (in log time) idle sessions are swept out.
const PRUNE_EVERY_MICROS: i64 = 60 * 1_000_000;
/// The idle timeout of a tenant whose settings were not folded (never, in a consistent log).
const DEFAULT_TIMEOUT_MICROS: i64 = 60 * 60 * 1_000_000;

/// One active session.
#[derive(Debug)]
pub struct SessionEntry {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// Authentication methods (RFC 8176), as OpenID Connect's `amr`.
    pub amr: Vec<String>,
    /// When the person authenticated: OpenID Connect's `auth_time`, and the session's start.
    pub auth_time: Timestamp,
    /// The address and user agent the session started from (its `session.started` envelope).
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Microseconds of the last use, in memory.
    last_seen: AtomicI64,
    /// Microseconds of the last use the log knows (`session.seen`, or the start).
    recorded_seen: AtomicI64,
}

impl SessionEntry {
    pub fn new(
        session_id: Uuid,
        tenant_id: Uuid,
        user_id: Uuid,
        amr: Vec<String>,
        auth_time: Timestamp,
        source_ip: Option<String>,
        user_agent: Option<String>,
    ) -> Self {
        Self {
            session_id,
            tenant_id,
            user_id,
            amr,
            auth_time,
            source_ip,
            user_agent,
            last_seen: AtomicI64::new(auth_time.as_micros()),
            recorded_seen: AtomicI64::new(auth_time.as_micros()),
        }
    }

    /// When the session was last used.
    pub fn last_seen(&self) -> Timestamp {
        Timestamp::from_micros(self.last_seen.load(Ordering::Relaxed))
    }

    fn touch(&self, now: Timestamp) {
        self.last_seen.fetch_max(now.as_micros(), Ordering::Relaxed);
    }

    fn idle(&self, now: Timestamp, timeout_micros: i64) -> bool {
        now.as_micros()
            .saturating_sub(self.last_seen.load(Ordering::Relaxed))
            >= timeout_micros
    }
}

/// Uses of one user's sessions that the log does not know yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnrecordedUse {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// (session, last use), oldest session first.
    pub sessions: Vec<(Uuid, Timestamp)>,
}

#[derive(Default)]
struct Inner {
    by_hash: HashMap<Hash32, Arc<SessionEntry>>,
    hash_of: HashMap<Uuid, Hash32>,
    /// Per (tenant, user), session ids oldest first.
    by_user: HashMap<(Uuid, Uuid), Vec<Uuid>>,
    /// Each tenant's idle timeout, in microseconds.
    timeouts: HashMap<Uuid, i64>,
    /// The `recorded_at` of the newest event folded.
    log_time: Timestamp,
    next_prune: i64,
    /// The position of the newest event folded, and the log's hash chain there.
    position: u64,
    log_hash: Hash32,
}

/// The in-memory session directory. Share it behind an `Arc`.
pub struct SessionDirectory {
    inner: RwLock<Inner>,
    position: watch::Sender<u64>,
    /// The position of the snapshot this start restored (0: it folded the whole log).
    restored_from: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SessionDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDirectory")
            .field("position", &*self.position.borrow())
            .finish_non_exhaustive()
    }
}

impl Default for SessionDirectory {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            position: watch::Sender::new(0),
            restored_from: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// Whether the session directory reads events of this type.
fn folded(event_type: &str) -> bool {
    event_type.starts_with("session.")
        || event_type == "tenant.created"
        || event_type == "tenant.settings_changed"
}

impl SessionDirectory {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // Each event's fold is a handful of map operations, so a panic cannot leave one half
        // applied: a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Folds a batch of events read from the log, in order, and publishes the new position.
    /// An event of a type it reads that this build cannot decode stops the fold before it.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<(), (u64, String)> {
        let decoded: Vec<(&RecordedEvent, Event)> = events
            .iter()
            .filter(|recorded| folded(&recorded.envelope.event_type))
            .map(|recorded| {
                recorded
                    .decode()
                    .map(|event| (recorded, event))
                    .map_err(|error| (recorded.envelope.global_position, error.to_string()))
            })
            .collect::<Result<_, _>>()?;
        if let Some(last) = events.last() {
            let mut inner = self.write();
            for (recorded, event) in &decoded {
                inner.fold(recorded, event);
            }
            inner.log_time = inner.log_time.max(last.envelope.recorded_at);
            if last.envelope.global_position > inner.position {
                inner.position = last.envelope.global_position;
                inner.log_hash = last.envelope.log_hash;
            }
            if inner.log_time.as_micros() >= inner.next_prune {
                let now = inner.log_time;
                inner.prune(now);
            }
            drop(inner);
            let position = last.envelope.global_position;
            self.position.send_if_modified(|current| {
                let advanced = position > *current;
                *current = (*current).max(position);
                advanced
            });
        }
        Ok(())
    }

    /// The position of the snapshot this start restored the directory from; 0 when it folded
    /// the whole log.
    pub fn restored_from(&self) -> u64 {
        self.restored_from.load(Ordering::Relaxed)
    }

    /// The last global position folded.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the directory has folded `position`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitTimeout> {
        let mut rx = self.position.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(WaitTimeout {
                wanted: position,
                projected: self.position(),
            }),
        }
    }

    /// The active session of `tenant_id` whose cookie hashes to `token_hash`, used at `now`
    /// (its last use moves forward). A session of another tenant, or one idle past its
    /// tenant's timeout, is not found.
    pub fn lookup(
        &self,
        tenant_id: Uuid,
        token_hash: &Hash32,
        now: Timestamp,
    ) -> Option<Arc<SessionEntry>> {
        let inner = self.read();
        let entry = inner.by_hash.get(token_hash)?;
        if entry.tenant_id != tenant_id || entry.idle(now, inner.timeout(tenant_id)) {
            return None;
        }
        entry.touch(now);
        Some(entry.clone())
    }

    /// An active session of `tenant_id` by id (another tenant's is not found).
    pub fn session(
        &self,
        tenant_id: Uuid,
        session_id: Uuid,
        now: Timestamp,
    ) -> Option<Arc<SessionEntry>> {
        let inner = self.read();
        let entry = inner.by_hash.get(inner.hash_of.get(&session_id)?)?;
        (entry.tenant_id == tenant_id && !entry.idle(now, inner.timeout(tenant_id)))
            .then(|| entry.clone())
    }

    /// A user's active sessions at `now`, oldest first.
    pub fn user_sessions(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        now: Timestamp,
    ) -> Vec<Arc<SessionEntry>> {
        let inner = self.read();
        let timeout = inner.timeout(tenant_id);
        inner
            .by_user
            .get(&(tenant_id, user_id))
            .into_iter()
            .flatten()
            .filter_map(|id| inner.by_hash.get(inner.hash_of.get(id)?))
            .filter(|entry| !entry.idle(now, timeout))
            .cloned()
            .collect()
    }

    /// Records a session whose `session.started` event is durable, ahead of the fold.
    pub fn note_started(&self, token_hash: Hash32, entry: SessionEntry) {
        self.write().insert(token_hash, entry);
    }

    /// Forgets sessions whose `session.ended` events are durable, ahead of the fold.
    pub fn note_ended(&self, session_ids: &[Uuid]) {
        let mut inner = self.write();
        for session_id in session_ids {
            inner.remove(*session_id);
        }
    }

    /// Uses not yet recorded on the log, per user; each listed use counts as recorded from now
    /// on (call [`SessionDirectory::unrecord`] if recording it fails).
    pub fn unrecorded_use(&self) -> Vec<UnrecordedUse> {
        let inner = self.read();
        let mut uses = Vec::new();
        for (&(tenant_id, user_id), ids) in &inner.by_user {
            let sessions: Vec<(Uuid, Timestamp)> = ids
                .iter()
                .filter_map(|id| inner.by_hash.get(inner.hash_of.get(id)?))
                .filter_map(|entry| {
                    let seen = entry.last_seen.load(Ordering::Relaxed);
                    let recorded = entry.recorded_seen.fetch_max(seen, Ordering::Relaxed);
                    (seen > recorded).then(|| (entry.session_id, Timestamp::from_micros(seen)))
                })
                .collect();
            if !sessions.is_empty() {
                uses.push(UnrecordedUse {
                    tenant_id,
                    user_id,
                    sessions,
                });
            }
        }
        uses
    }

    /// Puts back uses whose recording failed, so that the next flush records them.
    pub fn unrecord(&self, uses: &UnrecordedUse) {
        let inner = self.read();
        for (session_id, at) in &uses.sessions {
            if let Some(entry) = inner
                .hash_of
                .get(session_id)
                .and_then(|hash| inner.by_hash.get(hash))
            {
                // Back to just before the use, unless a fold recorded it meanwhile.
                let _ = entry.recorded_seen.compare_exchange(
                    at.as_micros(),
                    at.as_micros() - 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Forgets sessions idle at `now` (by the caller's clock).
    pub fn prune(&self, now: Timestamp) {
        self.write().prune(now);
    }

    /// How many active sessions it holds.
    pub fn len(&self) -> usize {
        self.read().by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Follows `log` from the beginning, folding every event it reads, until stopped.
    pub fn follow(self: &Arc<Self>, log: Arc<dyn EventLog>) -> SessionDirectoryTask {
        let directory = self.clone();
        let (stop, stop_rx) = watch::channel(false);
        let from = directory.position();
        let task = tokio::spawn(async move {
            crate::follow::follow_log(log, from, "session directory", stop_rx, |batch| {
                directory.apply(batch)
            })
            .await;
        });
        SessionDirectoryTask {
            directory: self.clone(),
            stop,
            task,
            snapshots: None,
        }
    }
}

/// The task that keeps a [`SessionDirectory`] current (and, when opened with
/// [`SessionDirectory::open`], snapshots it).
pub struct SessionDirectoryTask {
    directory: Arc<SessionDirectory>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    snapshots: Option<(DirectorySnapshots, JoinHandle<()>)>,
}

impl SessionDirectoryTask {
    /// Stops following the log and, with snapshots, takes a last one, so that the next start
    /// folds only what comes after this stop.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "session directory task failed");
        }
        if let Some((snapshots, taker)) = self.snapshots {
            if let Err(error) = taker.await {
                tracing::error!(%error, "session directory snapshot task failed");
            }
            snapshot::save(&self.directory, &snapshots).await;
        }
    }
}

impl Inner {
    fn timeout(&self, tenant_id: Uuid) -> i64 {
        self.timeouts
            .get(&tenant_id)
            .copied()
            .unwrap_or(DEFAULT_TIMEOUT_MICROS)
    }

    fn fold(&mut self, recorded: &RecordedEvent, event: &Event) {
        let envelope = &recorded.envelope;
        let minutes = |m: u32| i64::from(m) * 60 * 1_000_000;
        match event {
            Event::TenantCreated(created) => {
                self.timeouts.insert(
                    envelope.tenant_id,
                    minutes(created.settings.session_timeout_minutes),
                );
            }
            Event::TenantSettingsChanged(changed) => {
                self.timeouts.insert(
                    envelope.tenant_id,
                    minutes(changed.settings.session_timeout_minutes),
                );
            }
            Event::SessionStarted(started) => {
                let entry = SessionEntry::new(
                    started.session_id,
                    envelope.tenant_id,
                    started.user_id,
                    started.amr.clone(),
                    started.auth_time,
                    envelope.source_ip.clone(),
                    envelope.user_agent.clone(),
                );
                self.insert(*started.token_hash.expose(), entry);
            }
            Event::SessionSeen(seen) => {
                for at in &seen.sessions {
                    if let Some(entry) = self
                        .hash_of
                        .get(&at.session_id)
                        .and_then(|hash| self.by_hash.get(hash))
                    {
                        let micros = at.last_seen_at.as_micros();
                        entry.last_seen.fetch_max(micros, Ordering::Relaxed);
                        entry.recorded_seen.fetch_max(micros, Ordering::Relaxed);
                    }
                }
            }
            Event::SessionEnded(ended) => self.remove(ended.session_id),
            _ => {}
        }
    }

    /// Adds a session, unless it is already there (noted ahead of its fold).
    fn insert(&mut self, token_hash: Hash32, entry: SessionEntry) {
        if self.hash_of.contains_key(&entry.session_id) {
            return;
        }
        self.hash_of.insert(entry.session_id, token_hash);
        self.by_user
            .entry((entry.tenant_id, entry.user_id))
            .or_default()
            .push(entry.session_id);
        self.by_hash.insert(token_hash, Arc::new(entry));
    }

    fn remove(&mut self, session_id: Uuid) {
        let Some(hash) = self.hash_of.remove(&session_id) else {
            return;
        };
        if let Some(entry) = self.by_hash.remove(&hash) {
            let key = (entry.tenant_id, entry.user_id);
            if let Some(ids) = self.by_user.get_mut(&key) {
                ids.retain(|id| *id != session_id);
                if ids.is_empty() {
                    self.by_user.remove(&key);
                }
            }
        }
    }

    fn prune(&mut self, now: Timestamp) {
        let idle: Vec<Uuid> = self
            .by_hash
            .values()
            .filter(|entry| entry.idle(now, self.timeout(entry.tenant_id)))
            .map(|entry| entry.session_id)
            .collect();
        for session_id in idle {
            self.remove(session_id);
        }
        self.next_prune = now.as_micros().saturating_add(PRUNE_EVERY_MICROS);
    }
}

#[cfg(test)]
mod tests;
