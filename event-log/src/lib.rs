//! The event log: Tessera's write-side storage, one trait with two backends.
//!
//! The log stores [`RecordedEvent`]s in streams. It assigns stream versions, dense global
//! positions in commit order, and the hash chain (see `tessera_event_schemas::hash`). Appends
//! are atomic across all the streams of one call, checked against expected versions, idempotent
//! on event id, and group-committed: concurrent appends share one transaction and one fsync,
//! and each call returns only once its batch is durable.
//!
//! Backends: embedded SQLite (WAL, the default), PostgreSQL, and an in-memory log for tests.
//! PostgreSQL goes through sqlx. SQLite's two hot paths, the writer and the bulk reads that walk
//! the log, drive SQLite directly through rusqlite on threads of their own; sqlx opens the file,
//! creates the schema and serves every other read. All three plan every batch with
//! [`group_commit::plan_batch`], so the rules of expected versions, idempotent retries, positions
//! and hashes live in one place. The log knows nothing of domain rules, read models or HTTP.
//!
//! # Layout
//! - [`group_commit`]: the batching writer task and the batch planner every backend shares.
//! - [`sqlite`], [`postgres`], [`memory`]: the backends (`sqlite` keeps its writer thread and
//!   its WAL syncer in `sqlite::writer`).
//! - `kurrentdb` (feature `kurrentdb`): the log as one KurrentDB stream, for operators who run
//!   KurrentDB; per-aggregate versions checked by the shared planner, other nodes' appends
//!   caught by the stream's expected revision.
//! - [`subscription`]: catch up from a position, then follow live.
//! - [`keys`]: the key table, per-person data keys kept (sealed) outside the log so that they
//!   can be destroyed, on the same backend as the log.
//! - `codec` (private): the `events` row layout shared by the SQL backends.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tessera_event_schemas::{Hash32, ProposedEvent, RecordedEvent, Timestamp};

mod codec;
pub mod group_commit;
pub mod keys;
#[cfg(feature = "kurrentdb")]
pub mod kurrentdb;
pub mod memory;
pub mod postgres;
pub mod sqlite;
pub mod subscription;

pub use group_commit::{BatchError, LogClock};
pub use keys::KeyTable;
pub use memory::MemoryStore;
pub use subscription::subscribe;

/// What the caller believes about a stream before appending to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must hold exactly this many events (its last `stream_version`).
    Exact(u64),
    /// No check.
    Any,
}

/// Events to append to one stream. One [`EventLog::append`] call takes several, atomically.
#[derive(Clone, Debug)]
pub struct StreamWrite {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<ProposedEvent>,
}

/// Where an append landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Global position of the first and last event appended (equal for a single event).
    pub first_position: u64,
    pub last_position: u64,
    /// Each written stream's version after the append, in the order of the writes.
    pub stream_versions: Vec<(String, u64)>,
}

/// Why an append was refused. A refused append wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("stream {stream_id}: expected version {expected:?}, actual {actual}")]
    Conflict {
        stream_id: String,
        expected: ExpectedVersion,
        /// The stream's current version; 0 when it does not exist.
        actual: u64,
    },
    /// Some event ids of this append are already stored, but not as exactly this append
    /// (a retry must resend the same events to the same streams).
    #[error("event {event_id} is already stored as part of a different append")]
    IdempotencyMismatch { event_id: uuid::Uuid },
    #[error("invalid append: {0}")]
    Invalid(String),
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    #[error("stored event is unreadable: {0}")]
    Corrupt(String),
}

/// A signed statement that the log's chain at `position` had `log_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: u64,
    pub log_hash: Hash32,
    pub created_at: Timestamp,
    pub key_id: String,
    /// Signature over `tessera_event_schemas::hash::checkpoint_message(position, log_hash, created_at)`.
    pub signature: Vec<u8>,
}

/// Signs checkpoints. Implemented in `tessera-crypto` with a key derived from the master key.
pub trait CheckpointSigner: Send + Sync {
    fn key_id(&self) -> &str;
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends atomically to every stream in `writes`; all or nothing. Returns once durable.
    /// Resending an append whose event ids are all stored returns the original outcome.
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<AppendOutcome, AppendError>;

    /// Events of one stream with `stream_version > after_version`, in order, at most `limit`.
    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// Events with `global_position > after_position`, in order, at most `limit`.
    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// The same events as [`read_all`](EventLog::read_all), for callers that walk the log page
    /// after page (subscriptions catching up, rebuilds, `tessera-replay`). A backend may serve
    /// them from a path built for long sequential reads; by default it is `read_all`.
    async fn read_all_bulk(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.read_all(after_position, limit).await
    }

    /// The position of the last committed event; 0 for an empty log.
    async fn head_position(&self) -> Result<u64, LogError>;

    /// Notified with the head position after each commit by this process and, on PostgreSQL,
    /// each commit another process announces (`LISTEN`/`NOTIFY`). It only moves forward.
    /// Subscriptions also poll, so a lost announcement costs at most a poll interval.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Events right after `after_position` that this process committed recently, from memory:
    /// `Some` only if the very next position is held, and then up to `limit` contiguous events.
    /// `None` means "read the store". Subscriptions use it to follow the head without reading
    /// back what was just written.
    fn recent(&self, _after_position: u64, _limit: usize) -> Option<Vec<RecordedEvent>> {
        None
    }

    /// Checkpoints with `position > after_position`, in order.
    async fn checkpoints(&self, after_position: u64) -> Result<Vec<Checkpoint>, LogError>;

    /// Cheap liveness check of the underlying store (for `/readyz`).
    async fn ping(&self) -> Result<(), LogError>;

    /// Flushes pending appends, writes a final checkpoint, and closes connections.
    async fn close(&self);
}

/// Which backend to open, and how.
#[derive(Clone)]
pub struct LogConfig {
    pub backend: Backend,
    /// Signs a checkpoint every `checkpoint_every` events (and on close). None: no checkpoints.
    pub checkpoint_signer: Option<Arc<dyn CheckpointSigner>>,
    pub checkpoint_every: u64,
    /// Most appends folded into one transaction.
    pub max_batch: usize,
    /// The time checkpoints are stamped with. Default: the system clock; the server passes the
    /// clock it injects everywhere else, so that every time it writes comes from one source.
    pub clock: LogClock,
    /// SQLite only: the size past which the WAL file is checkpointed and truncated (see
    /// `sqlite`). Default [`DEFAULT_WAL_LIMIT_BYTES`].
    pub wal_limit_bytes: u64,
    /// PostgreSQL only: listen for other processes' commits (`postgres::notify`). Default
    /// true; tests turn it off to show what polling alone gives.
    pub listen: bool,
}

/// The default bound of a SQLite WAL file (the log's, and the read store's): 64 MiB.
pub const DEFAULT_WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded default: one SQLite file in WAL mode, each batch synced before it is
    /// answered.
    Sqlite { path: PathBuf },
    /// `TESSERA_DATABASE_URL`.
    Postgres { url: String },
    /// Events in memory, gone with the last clone of `store`: for tests. Opening a log again on
    /// the same store is like restarting a server on the same file.
    Memory { store: MemoryStore },
    /// One KurrentDB stream (`stream`) at `url`, a KurrentDB connection string.
    #[cfg(feature = "kurrentdb")]
    KurrentDb { url: String, stream: String },
}

impl LogConfig {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            checkpoint_signer: None,
            checkpoint_every: 1024,
            max_batch: 512,
            clock: Arc::new(group_commit::system_time),
            wal_limit_bytes: DEFAULT_WAL_LIMIT_BYTES,
            listen: true,
        }
    }
}

/// Opens (creating the schema if needed) the configured backend.
pub async fn open(config: LogConfig) -> Result<Arc<dyn EventLog>, LogError> {
    match &config.backend {
        Backend::Sqlite { path } => {
            let path = path.clone();
            Ok(Arc::new(sqlite::SqliteLog::open(&path, config).await?))
        }
        Backend::Postgres { url } => {
            let url = url.clone();
            Ok(Arc::new(postgres::PostgresLog::open(&url, config).await?))
        }
        Backend::Memory { store } => Ok(Arc::new(memory::MemoryLog::open(store.clone(), &config))),
        #[cfg(feature = "kurrentdb")]
        Backend::KurrentDb { url, stream } => {
            let (url, stream) = (url.clone(), stream.clone());
            Ok(Arc::new(
                kurrentdb::KurrentDbLog::open(&url, &stream, config).await?,
            ))
        }
    }
}
