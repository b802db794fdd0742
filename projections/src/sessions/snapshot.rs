//! Snapshots of the session directory, so that a start folds only the log after the last one
//! (as the OAuth directory's do: see `directory::snapshot`, whose storage and checks these
//! share).
//!
//! A snapshot is the directory's whole state at one log position (every active session with
//! its cookie hash and last use, the tenants' idle timeouts, the log time and the next sweep),
//! with that position and its link in the log's hash chain. A start restores it only if it is
//! whole (a SHA-256 over the bytes), of this build's [`FORMAT`], and continues the log it is
//! started on; anything else is a fold from position 0, with a warning. Snapshots are taken
//! on the OAuth directory's schedule (every 250,000 events folded, or every minute if anything
//! was folded), and at a clean stop; after a crash a start folds what came after the last one.
//!
//! Embedded: the file `sessions.snapshot` beside `readmodels.db`, mode 0600, replaced
//! atomically; PostgreSQL: the table `session_snapshots`, one row per format, only ever moved
//! forward. Encoded with postcard over structs of its own (`SnapshotV1`): bump [`FORMAT`]
//! whenever they or the directory's fold change, and an older snapshot is simply not used.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use tessera_event_log::{EventLog, LogError};
use tessera_event_schemas::{Hash32, Timestamp};
use uuid::Uuid;

use super::{Inner, SessionDirectory, SessionDirectoryTask, SessionEntry};
use crate::directory::DirectorySnapshots;
use crate::directory::snapshot::{Unusable, check_against_log, frame, unframe, when_due};
use crate::store::ReadStore;

/// The snapshot format this build writes and reads.
pub const FORMAT: u32 = 1;
/// The first bytes of a snapshot.
const MAGIC: &[u8; 8] = b"TSRSSNAP";
/// The file's name, beside `readmodels.db`.
pub const FILE_NAME: &str = "sessions.snapshot";
/// The PostgreSQL table.
const TABLE: &str = "session_snapshots";

impl ReadStore {
    /// Where the session directory's snapshots go: the file `sessions.snapshot` beside a
    /// SQLite store, the table `session_snapshots` beside PostgreSQL read models.
    pub fn session_snapshots(&self) -> DirectorySnapshots {
        self.snapshots(FILE_NAME, TABLE, FORMAT)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotV1 {
    position: u64,
    log_hash: [u8; 32],
    log_time: i64,
    next_prune: i64,
    timeouts: Vec<(Uuid, i64)>,
    /// Each user's sessions, oldest first.
    sessions: Vec<SessionV1>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionV1 {
    token_hash: [u8; 32],
    session_id: Uuid,
    tenant_id: Uuid,
    user_id: Uuid,
    amr: Vec<String>,
    auth_time: i64,
    source_ip: Option<String>,
    user_agent: Option<String>,
    last_seen: i64,
    recorded_seen: i64,
}

impl SnapshotV1 {
    fn of(inner: &Inner) -> Self {
        let sessions = inner
            .by_user
            .values()
            .flatten()
            .filter_map(|id| {
                let hash = inner.hash_of.get(id)?;
                let entry = inner.by_hash.get(hash)?;
                Some(SessionV1 {
                    token_hash: hash.0,
                    session_id: entry.session_id,
                    tenant_id: entry.tenant_id,
                    user_id: entry.user_id,
                    amr: entry.amr.clone(),
                    auth_time: entry.auth_time.as_micros(),
                    source_ip: entry.source_ip.clone(),
                    user_agent: entry.user_agent.clone(),
                    last_seen: entry.last_seen.load(Ordering::Relaxed),
                    recorded_seen: entry.recorded_seen.load(Ordering::Relaxed),
                })
            })
            .collect();
        Self {
            position: inner.position,
            log_hash: inner.log_hash.0,
            log_time: inner.log_time.as_micros(),
            next_prune: inner.next_prune,
            timeouts: inner.timeouts.iter().map(|(k, v)| (*k, *v)).collect(),
            sessions,
        }
    }

    fn into_inner(self) -> Inner {
        let mut inner = Inner {
            timeouts: self.timeouts.into_iter().collect(),
            log_time: Timestamp::from_micros(self.log_time),
            next_prune: self.next_prune,
            position: self.position,
            log_hash: Hash32(self.log_hash),
            ..Inner::default()
        };
        for session in self.sessions {
            let entry = SessionEntry {
                session_id: session.session_id,
                tenant_id: session.tenant_id,
                user_id: session.user_id,
                amr: session.amr,
                auth_time: Timestamp::from_micros(session.auth_time),
                source_ip: session.source_ip,
                user_agent: session.user_agent,
                last_seen: AtomicI64::new(session.last_seen),
                recorded_seen: AtomicI64::new(session.recorded_seen),
            };
            inner.insert(Hash32(session.token_hash), entry);
        }
        inner
    }
}

impl SessionDirectory {
    /// Opens the directory for a server: restores the stored snapshot if it is usable (else
    /// starts empty, saying why with a warning), then follows `log` from there, and takes
    /// snapshots periodically and when the task is shut down.
    pub async fn open(
        log: Arc<dyn EventLog>,
        snapshots: DirectorySnapshots,
    ) -> Result<(Arc<SessionDirectory>, SessionDirectoryTask), LogError> {
        let head = log.head_position().await?;
        let directory = SessionDirectory::new();
        match snapshots.load().await {
            Ok(Some(bytes)) => match restore(&bytes, &*log, head).await {
                Ok(inner) => {
                    let position = inner.position;
                    *directory.write() = inner;
                    directory.position.send_replace(position);
                    directory.restored_from.store(position, Ordering::Relaxed);
                    tracing::info!(
                        position,
                        head,
                        "restored the session directory from its snapshot; folding the rest of the log"
                    );
                }
                Err(reason) => {
                    tracing::warn!(%reason, "the session directory snapshot is not used: folding the whole log");
                }
            },
            Ok(None) if head > 0 => {
                tracing::warn!("no session directory snapshot: folding the whole log");
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "reading the session directory snapshot failed: folding the whole log");
            }
        }
        let mut task = directory.follow(log);
        let taker = {
            let (directory, snapshots) = (directory.clone(), snapshots.clone());
            let saved = directory.position();
            let stop = task.stop.subscribe();
            tokio::spawn(async move {
                when_due(
                    || directory.position(),
                    || save(&directory, &snapshots),
                    saved,
                    stop,
                )
                .await;
            })
        };
        task.snapshots = Some((snapshots, taker));
        Ok((directory, task))
    }

    /// The directory's state, encoded as a snapshot.
    pub fn snapshot(&self) -> Result<Vec<u8>, String> {
        encode(&SnapshotV1::of(&self.read()))
    }

    /// A directory restored from `bytes` (a [`SessionDirectory::snapshot`]), unchecked
    /// against any log.
    pub fn restored(bytes: &[u8]) -> Result<Arc<SessionDirectory>, String> {
        let inner = decode(bytes).map_err(|error| error.to_string())?;
        let directory = SessionDirectory::new();
        directory.position.send_replace(inner.position);
        *directory.write() = inner;
        Ok(directory)
    }
}

/// Decodes a snapshot and checks it against the log it would continue.
async fn restore(bytes: &[u8], log: &dyn EventLog, head: u64) -> Result<Inner, Unusable> {
    let inner = decode(bytes)?;
    if inner.position > 0 {
        check_against_log(inner.position, &inner.log_hash, log, head).await?;
    }
    Ok(inner)
}

/// Encodes and stores a snapshot of `directory`; the position it was taken at once stored.
pub(super) async fn save(
    directory: &SessionDirectory,
    snapshots: &DirectorySnapshots,
) -> Option<u64> {
    let snapshot = SnapshotV1::of(&directory.read());
    let position = snapshot.position;
    if position == 0 {
        return None;
    }
    let stored = match encode(&snapshot) {
        Ok(bytes) => snapshots
            .store(position, bytes)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error),
    };
    match stored {
        Ok(()) => {
            tracing::debug!(position, "took a snapshot of the session directory");
            Some(position)
        }
        Err(error) => {
            tracing::warn!(%error, position, "taking a snapshot of the session directory failed");
            None
        }
    }
}

fn encode(snapshot: &SnapshotV1) -> Result<Vec<u8>, String> {
    let body = postcard::to_allocvec(snapshot)
        .map_err(|error| format!("encoding a session snapshot: {error}"))?;
    Ok(frame(MAGIC, FORMAT, &body))
}

fn decode(bytes: &[u8]) -> Result<Inner, Unusable> {
    let body = unframe(MAGIC, FORMAT, "session directory", bytes)?;
    let snapshot: SnapshotV1 = postcard::from_bytes(body)
        .map_err(|error| Unusable::Corrupt(format!("decoding: {error}")))?;
    Ok(snapshot.into_inner())
}
