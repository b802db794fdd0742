//! The read-model database: its connections, publisher checkpoints and the projections'
//! checkpoints. The rest of the read side hangs off [`ReadStore`] in modules of its own: the
//! schema (`schema`), each table's queries (`tables`), the canonical snapshot (`snapshot`).
//!
//! Two kinds of connection. Queries, the schema, the checkpoints, the publishers' positions and
//! the snapshot go through one `sqlx::Any` pool, so their statements are written once in
//! portable SQL (`$n` placeholders, `ON CONFLICT ... DO UPDATE`). The projector writes through
//! a connection of its own kind: on SQLite a rusqlite connection (`write_sqlite`, which also
//! builds a rebuild's lookup indexes, on the connection whose cache holds the rows), on
//! PostgreSQL a native sqlx pool (`write_postgres`), each running the steps and statements of
//! `write`; those are the only writes of read-model rows, inside the projector's transactions.
//! This module knows nothing of the event log.
//!
//! Ids are TEXT, times BIGINT microseconds, JSON documents TEXT. Only the DDL differs between
//! backends, in two details (`Dialect`): PostgreSQL gets a real BOOLEAN and byte-order
//! (`COLLATE "C"`) key columns, SQLite an INTEGER flag (the Any driver cannot decode SQLite's
//! BOOLEAN) and its default, already byte-wise, collation. Byte order on both sides keeps
//! pagination order and snapshots identical across backends.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use tessera_event_log::sqlite::wal::journal_size_limit;

use tessera_event_schemas::Timestamp;

use crate::decode::to_u64;
use crate::error::ReadError;
use crate::retention::AuditRetention;
use crate::tables::{Checkpoints, Projection};
use crate::write_postgres::PostgresApplier;
use crate::write_sqlite::SqliteApplier;

pub use crate::schema::SCHEMA_VERSION;
pub use tessera_event_log::DEFAULT_WAL_LIMIT_BYTES;

/// The largest page a listing returns, whatever the caller asks for.
pub const MAX_PAGE: u32 = 1000;

/// The largest page of the audit trail.
pub const MAX_AUDIT_PAGE: u32 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The type of a TEXT key column: byte-ordered on both backends.
    pub(crate) fn key_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "TEXT",
            Dialect::Postgres => "TEXT COLLATE \"C\"",
        }
    }

    /// The type of an id column that stores a UUID in its canonical spelling as its 16 bytes
    /// on SQLite (a BLOB column has no affinity, so it also keeps the text of ids that are not
    /// UUIDs as text), and every id as text on PostgreSQL (see [`crate::sql::Cell::Uuid`]).
    pub(crate) fn id_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "TEXT COLLATE \"C\"",
        }
    }

    /// The type of a flag column.
    pub(crate) fn flag_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER",
            Dialect::Postgres => "BOOLEAN",
        }
    }
}

/// A handle on the read-model database. Cheap to clone: clones share the connections, and on
/// SQLite also see a rebuilt file that [`crate::rebuild()`] swaps in.
#[derive(Clone, Debug)]
pub struct ReadStore {
    connections: Arc<RwLock<Connections>>,
    pub(crate) dialect: Dialect,
    /// SQLite only: the database file.
    sqlite_path: Option<PathBuf>,
    /// SQLite only: the bound of the WAL file, in bytes (see `write_sqlite`).
    wal_limit: u64,
    /// How long audit rows are kept; `None` for ever (see `retention`).
    audit_retention: Option<AuditRetention>,
    /// PostgreSQL only: whether tenant isolation was asked for, and whether tenant-scoped
    /// queries run under row-level security (see `isolation`): asked for and the role in
    /// place, decided when the schema is opened.
    pub(crate) isolation_wanted: bool,
    pub(crate) isolation: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Connections {
    pool: AnyPool,
    /// SQLite only: the connection the projector writes through (see `write_sqlite`).
    sqlite_writer: Option<Arc<SqliteApplier>>,
    /// PostgreSQL only: the pool the projector writes through (see `write_postgres`).
    postgres_writer: Option<PostgresApplier>,
}

/// How a SQLite read-model file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SqliteMode {
    /// A store in use: WAL, `synchronous=NORMAL`, the WAL copied by the projector's
    /// checkpointer thread (see `write_sqlite`).
    Live,
    /// A rebuild's scratch file, which nothing reads until it is complete and swapped in: a
    /// rollback journal in memory and no syncs, so every page is written once, straight into
    /// the file, instead of into the WAL and then again by a checkpoint.
    Scratch,
}

impl SqliteMode {
    fn pool_pragmas(self) -> &'static [&'static str] {
        match self {
            Self::Live => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                // The projector's checkpointer thread copies the WAL (see `write_sqlite`).
                "PRAGMA wal_autocheckpoint = 0",
                "PRAGMA busy_timeout = 10000",
                // A catch-up transaction dirties tens of MB; with SQLite's 2 MB default
                // cache it spills pages to the WAL mid-transaction and rereads them.
                "PRAGMA cache_size = -65536",
                // A row's old content (an erased user's sealed fields) is zeroed in the file
                // when it is deleted or overwritten, not left in free space; see "Erasure" in
                // ARCHITECTURE.md. Every connection sets it: it is per connection.
                "PRAGMA secure_delete = ON",
            ],
            Self::Scratch => &[
                "PRAGMA journal_mode = MEMORY",
                "PRAGMA synchronous = OFF",
                "PRAGMA busy_timeout = 10000",
                "PRAGMA cache_size = -65536",
                "PRAGMA secure_delete = ON",
            ],
        }
    }
}

/// Where publishers (the Kafka audit publisher) keep their delivered position.
pub(crate) const PUBLISHER_CHECKPOINTS: &str = "publisher_checkpoints";

/// A pool on a SQLite read-model file (creating it if needed) and the projector's connection.
async fn connect_sqlite(
    path: &Path,
    mode: SqliteMode,
    wal_limit: u64,
) -> Result<Connections, ReadError> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                for pragma in mode.pool_pragmas() {
                    sqlx::query(AssertSqlSafe(*pragma))
                        .execute(&mut *conn)
                        .await?;
                }
                // Whichever connection restarts the WAL cuts the file back to the bound.
                sqlx::query(AssertSqlSafe(journal_size_limit(wal_limit)))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    // After the pool, whose first connection puts a new live file in WAL mode.
    let writer = SqliteApplier::open(path, mode, wal_limit)?;
    Ok(Connections {
        pool,
        sqlite_writer: Some(Arc::new(writer)),
        postgres_writer: None,
    })
}

impl ReadStore {
    /// Opens (creating if needed) a SQLite read-model file, e.g. `<data-dir>/readmodels.db`.
    ///
    /// WAL with `synchronous=NORMAL`: a power cut may lose the newest committed batches, but
    /// never tears one, and since each batch's checkpoint commits with it, the projector simply
    /// re-applies whatever was lost from the log.
    ///
    /// Its WAL is kept within [`DEFAULT_WAL_LIMIT_BYTES`]; see [`ReadStore::open_sqlite_bounded`].
    pub async fn open_sqlite(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        Self::open_sqlite_bounded(path, DEFAULT_WAL_LIMIT_BYTES).await
    }

    /// [`ReadStore::open_sqlite`] with the WAL file kept within `wal_limit` bytes: past it, the
    /// projector checkpoints and truncates the WAL between two batches (`TESSERA_WAL_LIMIT_MB`).
    pub async fn open_sqlite_bounded(
        path: impl AsRef<Path>,
        wal_limit: u64,
    ) -> Result<Self, ReadError> {
        Self::open_sqlite_as(path.as_ref(), SqliteMode::Live, wal_limit).await
    }

    pub(crate) async fn open_sqlite_as(
        path: &Path,
        mode: SqliteMode,
        wal_limit: u64,
    ) -> Result<Self, ReadError> {
        let connections = connect_sqlite(path, mode, wal_limit).await?;
        Self::init(
            connections,
            Dialect::Sqlite,
            Some(path.to_path_buf()),
            wal_limit,
            false,
        )
        .await
    }

    /// SQLite only: the bound of the WAL file, in bytes.
    pub(crate) fn wal_limit(&self) -> u64 {
        self.wal_limit
    }

    /// This store with audit rows kept for `retention` only (`None`: for ever). Set it before
    /// cloning the store: the projector's fold, a rebuild, the snapshot and the sweep
    /// ([`crate::RetentionTask`]) all read it from their clone.
    pub fn with_audit_retention(mut self, retention: Option<AuditRetention>) -> Self {
        self.audit_retention = retention;
        self
    }

    /// How long audit rows are kept; `None` for ever.
    pub fn audit_retention(&self) -> Option<&AuditRetention> {
        self.audit_retention.as_ref()
    }

    /// Audit rows recorded before this time are expired; `None` when none ever are.
    pub(crate) fn audit_cutoff(&self) -> Option<Timestamp> {
        self.audit_retention.as_ref().map(AuditRetention::cutoff)
    }

    /// SQLite only: the database file.
    pub(crate) fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// Closes every connection to a SQLite store's file, the projector's included, so that
    /// SQLite copies the WAL into the file and deletes it. Anything still using a connection
    /// (a write in flight, which a rebuild rules out) keeps the file open.
    pub(crate) async fn close_sqlite(&self) {
        let (pool, writer) = {
            let mut connections = self.write_connections();
            (connections.pool.clone(), connections.sqlite_writer.take())
        };
        pool.close().await;
        drop(writer);
    }

    /// Opens the connections of a SQLite store again, on whatever file is now at its path.
    pub(crate) async fn reopen_sqlite(&self) -> Result<(), ReadError> {
        let Some(path) = &self.sqlite_path else {
            return Ok(());
        };
        *self.write_connections() = connect_sqlite(path, SqliteMode::Live, self.wal_limit).await?;
        self.open_schema().await?;
        self.open_publisher_checkpoints().await
    }

    /// Opens the read models in a PostgreSQL database (the log's own database: every table
    /// here is prefixed `rm_`), with tenant isolation (see `isolation`).
    pub async fn open_postgres(url: &str) -> Result<Self, ReadError> {
        Self::open_postgres_as(url, true).await
    }

    /// [`ReadStore::open_postgres`] whose tenant-scoped queries run as the connecting user,
    /// filtered by their own conditions only (`TESSERA_TENANT_ISOLATION=false`).
    pub async fn open_postgres_without_isolation(url: &str) -> Result<Self, ReadError> {
        Self::open_postgres_as(url, false).await
    }

    async fn open_postgres_as(url: &str, isolation: bool) -> Result<Self, ReadError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        let connections = Connections {
            pool,
            sqlite_writer: None,
            postgres_writer: Some(PostgresApplier::connect(url).await?),
        };
        Self::init(
            connections,
            Dialect::Postgres,
            None,
            DEFAULT_WAL_LIMIT_BYTES,
            isolation,
        )
        .await
    }

    async fn init(
        connections: Connections,
        dialect: Dialect,
        sqlite_path: Option<PathBuf>,
        wal_limit: u64,
        isolation: bool,
    ) -> Result<Self, ReadError> {
        let store = Self {
            connections: Arc::new(RwLock::new(connections)),
            dialect,
            sqlite_path,
            wal_limit,
            audit_retention: None,
            isolation_wanted: isolation,
            isolation: Arc::new(AtomicBool::new(false)),
        };
        store.open_schema().await?;
        store.open_publisher_checkpoints().await?;
        Ok(store)
    }

    fn write_connections(&self) -> std::sync::RwLockWriteGuard<'_, Connections> {
        self.connections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The pool every read (and, on PostgreSQL, every write) goes through.
    pub(crate) fn pool(&self) -> AnyPool {
        let connections = self
            .connections
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        connections.pool.clone()
    }

    /// SQLite only: the connection the projector writes through.
    pub(crate) fn sqlite_writer(&self) -> Option<Arc<SqliteApplier>> {
        let connections = self
            .connections
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        connections.sqlite_writer.clone()
    }

    /// PostgreSQL only: the pool the projector writes through.
    pub(crate) fn postgres_writer(&self) -> Option<PostgresApplier> {
        let connections = self
            .connections
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        connections.postgres_writer.clone()
    }

    /// Publisher checkpoints live outside the `rm_` read models on purpose: rebuilding the
    /// read models, or a change of their schema version, must not make a publisher send the
    /// whole log to its subscribers again.
    async fn open_publisher_checkpoints(&self) -> Result<(), ReadError> {
        let key = self.dialect.key_type();
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {PUBLISHER_CHECKPOINTS} (\
                publisher {key} PRIMARY KEY, \
                position BIGINT NOT NULL)"
        )))
        .execute(&self.pool())
        .await?;
        Ok(())
    }

    /// The last position `publisher` has delivered (and had acknowledged), or 0.
    pub async fn publisher_checkpoint(&self, publisher: &str) -> Result<u64, ReadError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT position FROM {PUBLISHER_CHECKPOINTS} WHERE publisher = $1"
        )))
        .bind(publisher)
        .fetch_optional(&self.pool())
        .await?;
        match row {
            Some(row) => Ok(u64::try_from(row.try_get::<i64, _>("position")?).unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// Every publisher's delivered position.
    pub(crate) async fn publisher_checkpoints(&self) -> Result<Vec<(String, u64)>, ReadError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT publisher, position FROM {PUBLISHER_CHECKPOINTS}"
        )))
        .fetch_all(&self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let position = u64::try_from(row.try_get::<i64, _>("position")?).unwrap_or(0);
                Ok((row.try_get("publisher")?, position))
            })
            .collect()
    }

    /// Records that `publisher` has delivered everything up to `position`.
    pub async fn set_publisher_checkpoint(
        &self,
        publisher: &str,
        position: u64,
    ) -> Result<(), ReadError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {PUBLISHER_CHECKPOINTS} (publisher, position) VALUES ($1, $2) \
             ON CONFLICT (publisher) DO UPDATE SET position = excluded.position"
        )))
        .bind(publisher)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(&self.pool())
        .await?;
        Ok(())
    }

    /// Closes the pools; pending queries finish first. On SQLite every connection closes,
    /// the projector's included, so that SQLite copies the WAL into the file and deletes it:
    /// a stopped server leaves no WAL behind.
    pub async fn close(&self) {
        if let Some(writer) = self.postgres_writer() {
            writer.close().await;
        }
        if self.sqlite_path.is_some() {
            self.close_sqlite().await;
        } else {
            self.pool().close().await;
        }
    }

    /// Leaves no copy of rows the projector has deleted or overwritten in the store's files,
    /// as far as the backend allows: called after an erasure is projected. SQLite (whose
    /// connections zero deleted content, `secure_delete`) copies the WAL, which still holds
    /// the pages as they were, into the file and truncates it to nothing; PostgreSQL vacuums
    /// `tables`, so that the dead row versions are removed from their heap pages rather than
    /// left until autovacuum. What this does not cover is in ARCHITECTURE.md, "Erasure".
    pub async fn scrub(&self, tables: &[&str]) -> Result<(), ReadError> {
        match self.dialect {
            Dialect::Sqlite => {
                let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&self.pool())
                    .await?;
                let busy: i64 = row.try_get(0)?;
                if busy != 0 {
                    return Err(ReadError::Unavailable(
                        "the read store's WAL could not be truncated".to_owned(),
                    ));
                }
            }
            Dialect::Postgres => {
                for table in tables {
                    sqlx::query(AssertSqlSafe(format!("VACUUM {table}")))
                        .execute(&self.pool())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Each projection's checkpoint; a projection without a row is at 0.
    pub async fn checkpoints(&self) -> Result<Checkpoints, ReadError> {
        let rows = sqlx::query("SELECT projection, position FROM rm_checkpoints")
            .fetch_all(&self.pool())
            .await?;
        let mut checkpoints = Checkpoints::default();
        for row in rows {
            let name: String = row.try_get("projection")?;
            let position = to_u64(row.try_get("position")?)?;
            // A row for a projection this build no longer has is ignored, not an error.
            if let Some(projection) = Projection::parse(&name) {
                checkpoints.set(projection, position);
            }
        }
        Ok(checkpoints)
    }
}
