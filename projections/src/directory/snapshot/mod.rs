//! Snapshots of the OAuth directory, so that a start folds only the log after the last one.
//!
//! A snapshot is the directory's whole state at one log position (tenants, slugs, clients,
//! revocations, the log time and the next sweep), with that position and its link in the log's
//! hash chain. A start restores it only if it is whole (a SHA-256 over the file), written in
//! this build's [`FORMAT`], and matches the log it is started on (the log holds that position,
//! and its chain hash there is the snapshot's); anything else is a fold from position 0, and
//! says why with a warning. Snapshots are taken every [`SNAPSHOT_EVERY_EVENTS`] events folded
//! or every [`SNAPSHOT_EVERY`] if anything was folded, and at a clean stop.
//!
//! **Encoding.** postcard over structs of its own (`v1`: `SnapshotV1` and its parts), not the
//! domain's: postcard is not self-describing, so encoding `Tenant` or `OAuthClient` directly
//! would freeze their layout by accident, and a new field would silently misread older files.
//! The mirrors are converted by exhaustive destructuring, so a field added to a domain struct
//! does not compile until it is added here too; the golden test then fails until [`FORMAT`] is
//! bumped, and a snapshot of another format is simply not used. The payload types the mirrors
//! embed (`TenantSettingsV1`, `PublicJwkV1`, ...) are shipped event types, frozen already.
//! Bump [`FORMAT`] whenever the directory's state or its fold changes. `token.issued` v2 did
//! not need a bump: neither version of that event leaves anything in the directory (tokens are
//! verified when presented, not kept), and a build before v2 cannot decode a v2 event, so its
//! snapshots end before the first one and hold the state this build folds to at their
//! position (`both_versions_of_token_issued_fold_to_nothing_and_a_snapshot_spans_them`, and the
//! pinned digest, which v2 left unchanged). Format 3: `tenant.signing_key_added` adds a key
//! to the ring (format 2's fold ignored it), and a rotation replaces the active key of its
//! algorithm only.
//!
//! **Where.** Embedded: the file `directory.snapshot` beside `readmodels.db` in the data
//! directory, mode 0600, replaced atomically (a temporary file written and synced, renamed over
//! it, the directory synced). PostgreSQL: the table `directory_snapshots` beside the read
//! models, one row per format. Several servers share that database, and any server's snapshot
//! serves them all, since it is the fold of a prefix of the one log they share (plus, at most,
//! revocations this server noted ahead of its fold, which are durable facts of the log that
//! folding adds again): a server replaces the row only with a snapshot of a later position, so
//! they never move it back. Outside the `rm_` tables, so that a read-model reset keeps it.
//!
//! **Secrets.** The tenants' signing keys are in it as they are in the directory: sealed under
//! the master key (AES-256-GCM, AAD the tenant and kid). Nothing here unseals them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Row;
use tessera_event_log::{EventLog, LogError};
use tokio::sync::watch;

use super::{Directory, DirectoryTask, Inner, follow_log};
use crate::error::ReadError;
use crate::store::ReadStore;
use v1::SnapshotV1;

mod v1;

/// The snapshot format this build writes and reads. Bump it whenever the directory's state,
/// its fold, or the structs below change.
pub const FORMAT: u32 = 3;
/// A snapshot is taken once this many events were folded since the last one: a restart after a
/// crash then folds at most about this many (about a second's work).
pub const SNAPSHOT_EVERY_EVENTS: u64 = 250_000;
/// ... or this long after the last one, if anything was folded since.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(60);
/// How often the snapshot task looks at the directory's position.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The first bytes of a snapshot file.
const MAGIC: &[u8; 8] = b"TSRDSNAP";
/// The file's name, beside `readmodels.db`.
pub const FILE_NAME: &str = "directory.snapshot";
/// The PostgreSQL table.
const TABLE: &str = "directory_snapshots";

/// Why a snapshot is not used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("the snapshot is corrupt: {0}")]
    Corrupt(String),
    #[error("the snapshot is of format {found}, this build reads format {FORMAT}")]
    Format { found: u32 },
    #[error(
        "the snapshot was taken at position {position}, beyond the log's head {head}: it belongs to another log"
    )]
    Ahead { position: u64, head: u64 },
    #[error(
        "the log's hash chain at position {position} differs from the snapshot's: it belongs to another log"
    )]
    Foreign { position: u64 },
    #[error("the snapshot could not be read: {0}")]
    Unreadable(String),
}

/// Where a directory's snapshots are kept (see the module documentation). The session
/// directory keeps its own the same way, in a file and a table of its own
/// ([`ReadStore::session_snapshots`]).
#[derive(Clone, Debug)]
pub struct DirectorySnapshots {
    place: Place,
    /// The format the snapshots stored here are written in (a PostgreSQL row per format).
    format: u32,
}

#[derive(Clone, Debug)]
enum Place {
    File(PathBuf),
    /// A store and the name of its table.
    Table(ReadStore, &'static str),
}

impl ReadStore {
    /// Where the OAuth directory's snapshots go: the file `directory.snapshot` beside a SQLite
    /// store, the table `directory_snapshots` beside PostgreSQL read models.
    pub fn directory_snapshots(&self) -> DirectorySnapshots {
        self.snapshots(FILE_NAME, TABLE, FORMAT)
    }

    /// Snapshots of another in-memory directory: the file `file_name` beside a SQLite store,
    /// the table `table` beside PostgreSQL read models, in `format`.
    pub(crate) fn snapshots(
        &self,
        file_name: &str,
        table: &'static str,
        format: u32,
    ) -> DirectorySnapshots {
        let place = match self.sqlite_path() {
            Some(path) => Place::File(path.with_file_name(file_name)),
            None => Place::Table(self.clone(), table),
        };
        DirectorySnapshots { place, format }
    }
}

impl DirectorySnapshots {
    /// Snapshots kept in the file at `path`.
    pub fn in_file(path: impl Into<PathBuf>) -> Self {
        Self {
            place: Place::File(path.into()),
            format: FORMAT,
        }
    }

    /// The stored snapshot, preferring one of this build's format; `None` if there is none.
    pub async fn load(&self) -> Result<Option<Vec<u8>>, ReadError> {
        match &self.place {
            Place::File(path) => match tokio::fs::read(path).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(ReadError::Unavailable(format!(
                    "reading {}: {error}",
                    path.display()
                ))),
            },
            Place::Table(store, table) => {
                create_table(store, table).await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT body FROM {table} ORDER BY (format = $1) DESC, position DESC LIMIT 1"
                )))
                .bind(i64::from(self.format))
                .fetch_optional(&store.pool())
                .await?;
                Ok(row
                    .map(|row| row.try_get::<Vec<u8>, _>("body"))
                    .transpose()?)
            }
        }
    }

    /// Stores `bytes`, a snapshot taken at `position`, in place of the previous one.
    pub async fn store(&self, position: u64, bytes: Vec<u8>) -> Result<(), ReadError> {
        match &self.place {
            Place::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || replace_file(&path, &bytes))
                    .await
                    .map_err(|error| ReadError::Unavailable(error.to_string()))?
                    .map_err(|error| ReadError::Unavailable(format!("writing a snapshot: {error}")))
            }
            Place::Table(store, table) => {
                create_table(store, table).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} (format, position, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (format) DO UPDATE SET position = excluded.position, \
                     body = excluded.body WHERE {table}.position < excluded.position"
                )))
                .bind(i64::from(self.format))
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(bytes)
                .execute(&store.pool())
                .await?;
                Ok(())
            }
        }
    }
}

async fn create_table(store: &ReadStore, table: &str) -> Result<(), ReadError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {table} (\
            format BIGINT PRIMARY KEY, \
            position BIGINT NOT NULL, \
            body BYTEA NOT NULL)"
    )))
    .execute(&store.pool())
    .await?;
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600), syncs it, renames it over
/// `path` and syncs the directory, so that a crash leaves the old snapshot or the new one.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("snapshot.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl Directory {
    /// Opens the directory for a server: restores the stored snapshot if it is usable (else
    /// starts empty, saying why with a warning), then follows `log` from there, and takes
    /// snapshots periodically and when the task is shut down.
    pub async fn open(
        log: Arc<dyn EventLog>,
        snapshots: DirectorySnapshots,
    ) -> Result<(Arc<Directory>, DirectoryTask), LogError> {
        let head = log.head_position().await?;
        let restored = match snapshots.load().await {
            Ok(Some(bytes)) => match restore(&bytes, &*log, head).await {
                Ok(inner) => Some(inner),
                Err(reason) => {
                    tracing::warn!(%reason, "the OAuth directory snapshot is not used: folding the whole log");
                    None
                }
            },
            Ok(None) if head > 0 => {
                tracing::warn!("no OAuth directory snapshot: folding the whole log");
                None
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "reading the OAuth directory snapshot failed: folding the whole log");
                None
            }
        };
        let restored_from = restored.as_ref().map(|inner| inner.position);
        let directory = Arc::new(Directory::restored(restored.unwrap_or_default()));
        if let Some(position) = restored_from {
            tracing::info!(
                position,
                head,
                "restored the OAuth directory from its snapshot; folding the rest of the log"
            );
        }
        *directory
            .start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = super::StartReport {
            restored_from,
            head_at_start: head,
            folded_to_head: None,
        };
        directory.note_progress();
        let (stop, stop_rx) = watch::channel(false);
        let follower = tokio::spawn(follow_log(directory.clone(), log.clone(), stop_rx.clone()));
        let taker = tokio::spawn(take_snapshots(
            directory.clone(),
            snapshots.clone(),
            restored_from.unwrap_or(0),
            stop_rx,
        ));
        let task = DirectoryTask {
            directory: directory.clone(),
            log,
            stop,
            follower,
            snapshots,
            snapshot_taker: taker,
        };
        Ok((directory, task))
    }

    /// The directory's state, encoded as a snapshot, and the position it was taken at.
    pub fn snapshot(&self) -> Result<(u64, Vec<u8>), String> {
        let inner = self.read().clone();
        Ok((inner.position, encode(&inner)?))
    }
}

/// Decodes a snapshot and checks it against the log it would continue.
async fn restore(bytes: &[u8], log: &dyn EventLog, head: u64) -> Result<Inner, Unusable> {
    let inner = decode(bytes)?;
    if inner.position == 0 {
        return Ok(inner);
    }
    check_against_log(inner.position, &inner.log_hash, log, head).await?;
    Ok(inner)
}

/// Whether a snapshot taken at `position` (not 0), where the log's hash chain was `log_hash`,
/// continues `log`, whose head is `head`.
pub(crate) async fn check_against_log(
    position: u64,
    log_hash: &tessera_event_schemas::Hash32,
    log: &dyn EventLog,
    head: u64,
) -> Result<(), Unusable> {
    if position > head {
        return Err(Unusable::Ahead { position, head });
    }
    let at = log
        .read_all(position - 1, 1)
        .await
        .map_err(|error| Unusable::Unreadable(error.to_string()))?;
    match at.first() {
        Some(event)
            if event.envelope.global_position == position
                && event.envelope.log_hash == *log_hash =>
        {
            Ok(())
        }
        _ => Err(Unusable::Foreign { position }),
    }
}

/// Takes a snapshot whenever one is due (see [`SNAPSHOT_EVERY_EVENTS`] and [`SNAPSHOT_EVERY`]),
/// until stopped.
async fn take_snapshots(
    directory: Arc<Directory>,
    snapshots: DirectorySnapshots,
    saved: u64,
    stop_rx: watch::Receiver<bool>,
) {
    when_due(
        || directory.position(),
        || save(&directory, &snapshots),
        saved,
        stop_rx,
    )
    .await;
}

/// Calls `save` (which answers the position it stored, if it did) whenever a snapshot is due
/// by `position` (see [`SNAPSHOT_EVERY_EVENTS`] and [`SNAPSHOT_EVERY`]), `saved` being the
/// position of the last one, until stopped: the schedule of every in-memory directory.
pub(crate) async fn when_due<F: std::future::Future<Output = Option<u64>>>(
    position: impl Fn() -> u64,
    save: impl Fn() -> F,
    mut saved: u64,
    mut stop_rx: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks_per_snapshot = SNAPSHOT_EVERY.as_secs() / CHECK_EVERY.as_secs().max(1);
    let mut ticks = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop_rx.wait_for(|s| *s) => return,
        }
        ticks += 1;
        let position = position();
        let due = position >= saved.saturating_add(SNAPSHOT_EVERY_EVENTS)
            || (position > saved && ticks >= ticks_per_snapshot);
        if due {
            if let Some(position) = save().await {
                saved = position;
            }
            ticks = 0;
        }
    }
}

/// Encodes and stores a snapshot of `directory`; the position it was taken at once stored.
pub(super) async fn save(directory: &Directory, snapshots: &DirectorySnapshots) -> Option<u64> {
    let inner = directory.read().clone();
    let position = inner.position;
    if position == 0 {
        return None;
    }
    let encoded = tokio::task::spawn_blocking(move || encode(&inner))
        .await
        .map_err(|error| error.to_string())
        .and_then(|encoded| encoded);
    let stored = match encoded {
        Ok(bytes) => snapshots
            .store(position, bytes)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error),
    };
    match stored {
        Ok(()) => {
            tracing::debug!(position, "took a snapshot of the OAuth directory");
            Some(position)
        }
        Err(error) => {
            tracing::warn!(%error, position, "taking a snapshot of the OAuth directory failed");
            None
        }
    }
}

fn encode(inner: &Inner) -> Result<Vec<u8>, String> {
    let body = postcard::to_allocvec(&SnapshotV1::from(inner))
        .map_err(|error| format!("encoding a snapshot: {error}"))?;
    Ok(frame(MAGIC, FORMAT, &body))
}

pub(super) fn decode(bytes: &[u8]) -> Result<Inner, Unusable> {
    let body = unframe(MAGIC, FORMAT, "directory", bytes)?;
    let snapshot: SnapshotV1 = postcard::from_bytes(body)
        .map_err(|error| Unusable::Corrupt(format!("decoding: {error}")))?;
    Ok(snapshot.into())
}

/// `magic`, the format (u32, little endian), the body, and the SHA-256 of all that.
pub(crate) fn frame(magic: &[u8; 8], format: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(magic.len() + 4 + body.len() + 32);
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&format.to_le_bytes());
    bytes.extend_from_slice(body);
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum);
    bytes
}

/// The body of a [`frame`]d snapshot of `kind`, if it is whole and of `format`.
pub(crate) fn unframe<'a>(
    magic: &[u8; 8],
    format: u32,
    kind: &str,
    bytes: &'a [u8],
) -> Result<&'a [u8], Unusable> {
    let header = magic.len() + 4;
    if bytes.len() < header + 32 || !bytes.starts_with(magic) {
        return Err(Unusable::Corrupt(format!("not a {kind} snapshot")));
    }
    let (content, checksum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(content)[..] != *checksum {
        return Err(Unusable::Corrupt(
            "its checksum does not match its content".to_owned(),
        ));
    }
    let mut found = [0u8; 4];
    found.copy_from_slice(&content[magic.len()..header]);
    let found = u32::from_le_bytes(found);
    if found != format {
        return Err(Unusable::Format { found });
    }
    Ok(&content[header..])
}
