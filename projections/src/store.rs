//! The read-model database: connection, schema, queries and the canonical snapshot.
//!
//! One `sqlx::Any` pool serves both backends, so every statement here is written once in
//! portable SQL (`$n` placeholders, `ON CONFLICT ... DO UPDATE`). Ids are TEXT, times BIGINT
//! microseconds, JSON documents TEXT. Only the DDL differs, in two details: PostgreSQL gets a
//! real BOOLEAN and byte-order (`COLLATE "C"`) key columns, SQLite an INTEGER flag (the Any
//! driver cannot decode SQLite's BOOLEAN) and its default, already byte-wise, collation. Byte
//! order on both sides keeps pagination order and snapshots identical across backends.
//!
//! Writes happen only through the `write` module (and, on SQLite, `write_sqlite`), inside the
//! projector's transactions; this module reads. It knows nothing of the event log.
//!
//! Schema changes: `rm_schema` holds the [`SCHEMA_VERSION`] the tables were created for. When
//! a store is opened with a different version stored (or with read-model tables but no version,
//! which is version 1), every `rm_` table is dropped, checkpoints included, and recreated empty,
//! so the projector refolds the whole log from position 0; read models are disposable, and this
//! rebuild is their entire migration story.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row, Transaction};
use tessera_event_schemas::Hash32;
use tessera_event_schemas::events::{PublicJwkV1, SigningAlg};
use tessera_event_schemas::primitives::Timestamp;
use uuid::Uuid;

use crate::error::ReadError;
use crate::reduce::{Checkpoints, Projection};
use crate::views::{
    ApiKeyView, AuditFilter, AuditView, Page, SigningKeyStatus, SigningKeyView, TenantFilter,
    TenantView,
};
use crate::write_postgres::PostgresApplier;
use crate::write_sqlite::SqliteApplier;

/// The largest page a listing returns, whatever the caller asks for.
pub const MAX_PAGE: u32 = 1000;

/// The shape of the read-model tables this build creates and writes. Bump it with any change
/// to a table, or to what a reducer writes into one: opening a store of another version drops
/// and recreates every read model (see the module doc).
///
/// 1: the first schema (no version table). 2: `rm_api_keys.use_count` and `last_used_at`.
/// 3: `rm_audit`, the audit trail (and its checkpoint). 4: on PostgreSQL, `rm_audit` keyed by
/// a unique index instead of a primary key.
pub const SCHEMA_VERSION: u64 = 4;

/// The largest page of the audit trail.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// The one-row table holding the stored [`SCHEMA_VERSION`]. Not part of [`all_tables`]:
/// [`ReadStore::reset`] keeps it, since a reset store has the current schema.
const SCHEMA_TABLE: &str = "rm_schema";

/// Serialises schema checks between processes opening the same PostgreSQL database at once, so
/// that two of them cannot both see an old version and the second drop what the first has
/// begun to project. An arbitrary constant, distinct from the event log's.
const SCHEMA_LOCK_KEY: i64 = 0x7465_7373_726d_7363;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A handle on the read-model database. Cheap to clone: clones share the connections, and on
/// SQLite also see a rebuilt file that [`crate::rebuild`] swaps in.
#[derive(Clone, Debug)]
pub struct ReadStore {
    connections: Arc<RwLock<Connections>>,
    pub(crate) dialect: Dialect,
    /// SQLite only: the database file.
    sqlite_path: Option<PathBuf>,
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
            ],
            Self::Scratch => &[
                "PRAGMA journal_mode = MEMORY",
                "PRAGMA synchronous = OFF",
                "PRAGMA busy_timeout = 10000",
                "PRAGMA cache_size = -65536",
            ],
        }
    }
}

/// The table that holds each projection's rows.
fn table_of(projection: Projection) -> &'static str {
    match projection {
        Projection::Tenants => "rm_tenants",
        Projection::SigningKeys => "rm_signing_keys",
        Projection::ApiKeys => "rm_api_keys",
        Projection::Audit => "rm_audit",
    }
}

const CHECKPOINTS: &str = "rm_checkpoints";
/// Where publishers (the Kafka audit publisher) keep their delivered position.
const PUBLISHER_CHECKPOINTS: &str = "publisher_checkpoints";

/// A read-model table's `CREATE` statements.
#[derive(Default)]
struct TableDdl {
    /// The table with the keys and unique constraints that a rebuild's writes rely on.
    table: Vec<String>,
    /// Indexes that a rebuild creates once its rows are in: one sort instead of an insert
    /// into each index per row, and index pages written once instead of once per batch.
    /// Those that only serve queries, and on PostgreSQL the audit trail's key, which only the
    /// live projector's inserts rely on (a rebuild copies rows that cannot conflict).
    lookups: Vec<String>,
}

impl TableDdl {
    fn new(table: impl Into<String>) -> Self {
        Self {
            table: vec![table.into()],
            lookups: Vec::new(),
        }
    }

    fn unique(mut self, index: &str) -> Self {
        self.table.push(index.into());
        self
    }

    fn lookup(mut self, index: &str) -> Self {
        self.lookups.push(index.into());
        self
    }

    fn all(self) -> impl Iterator<Item = String> {
        self.table.into_iter().chain(self.lookups)
    }
}

/// The `CREATE` statements of each read-model table (none for an unknown name).
fn ddl(dialect: Dialect, table: &str) -> TableDdl {
    let (key, flag) = match dialect {
        Dialect::Sqlite => ("TEXT", "INTEGER"),
        Dialect::Postgres => ("TEXT COLLATE \"C\"", "BOOLEAN"),
    };
    // SQLite: `INTEGER PRIMARY KEY` makes the position the rowid itself, so an audit row costs
    // no separate primary-key B-tree (`BIGINT PRIMARY KEY` would add one). PostgreSQL: a
    // unique index that a rebuild builds after its rows (a fifth less of the server's work to
    // `COPY` them, with the sort included; BENCHMARKS.md).
    let (position_key, audit_key) = match dialect {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY", None),
        Dialect::Postgres => (
            "BIGINT NOT NULL",
            Some("CREATE UNIQUE INDEX IF NOT EXISTS rm_audit_by_position ON rm_audit (position)"),
        ),
    };
    match table {
        CHECKPOINTS => TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_checkpoints (\
                projection {key} PRIMARY KEY, \
                position BIGINT NOT NULL)"
        )),
        "rm_tenants" => TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_tenants (\
                id {key} PRIMARY KEY, \
                slug {key} NOT NULL UNIQUE, \
                status TEXT NOT NULL, \
                suspended {flag} NOT NULL, \
                created_at BIGINT NOT NULL, \
                updated_at BIGINT NOT NULL, \
                stream_version BIGINT NOT NULL, \
                doc TEXT NOT NULL)"
        ))
        .lookup("CREATE INDEX IF NOT EXISTS rm_tenants_by_created ON rm_tenants (created_at, id)")
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_tenants_by_status ON rm_tenants (status, created_at, id)",
        ),
        "rm_signing_keys" => TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_signing_keys (\
                tenant_id {key} NOT NULL, \
                kid {key} NOT NULL, \
                alg TEXT NOT NULL, \
                status TEXT NOT NULL, \
                created_at BIGINT NOT NULL, \
                retired_at BIGINT, \
                public_jwk TEXT NOT NULL, \
                PRIMARY KEY (tenant_id, kid))"
        )),
        "rm_api_keys" => TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_api_keys (\
                key_id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                secret_hash {key} NOT NULL, \
                name TEXT NOT NULL, \
                prefix TEXT NOT NULL, \
                scopes TEXT NOT NULL, \
                product TEXT, \
                created_by TEXT NOT NULL, \
                created_at BIGINT NOT NULL, \
                expires_at BIGINT, \
                revoked_at BIGINT, \
                use_count BIGINT NOT NULL, \
                last_used_at BIGINT)"
        ))
        .unique("CREATE UNIQUE INDEX IF NOT EXISTS rm_api_keys_by_hash ON rm_api_keys (secret_hash)")
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_api_keys_by_tenant \
             ON rm_api_keys (tenant_id, created_at, key_id)",
        ),
        // Insert-only, keyed by global position. Each filter has an index that ends in the
        // position, so a filtered page is an index range scan in the listing's order; the
        // time filters ride on whichever of them applies (or on the key).
        "rm_audit" => {
            let audit = TableDdl::new(format!(
                "CREATE TABLE IF NOT EXISTS rm_audit (\
                    position {position_key}, \
                    event_id {key} NOT NULL, \
                    tenant_id {key} NOT NULL, \
                    event_type TEXT NOT NULL, \
                    action {key} NOT NULL, \
                    actor_kind TEXT NOT NULL, \
                    actor_id {key} NOT NULL, \
                    actor_name TEXT, \
                    target_type TEXT, \
                    target_id {key}, \
                    target_name TEXT, \
                    product {key}, \
                    project_id TEXT, \
                    correlation_id TEXT NOT NULL, \
                    source_ip TEXT, \
                    user_agent TEXT, \
                    recorded_at BIGINT NOT NULL, \
                    summary TEXT NOT NULL)"
            ))
            // One secondary index besides the key: every audit row is written on the token
            // endpoint's hot path (one per grant), and each index costs about as much as the
            // row. Queries by tenant use it; the other filters walk positions newest first
            // (see BENCHMARKS.md).
            .lookup(
                "CREATE INDEX IF NOT EXISTS rm_audit_by_tenant ON rm_audit (tenant_id, position)",
            );
            match audit_key {
                Some(key) => audit.lookup(key),
                None => audit,
            }
        }
        _ => TableDdl::default(),
    }
}

fn all_tables() -> impl Iterator<Item = &'static str> {
    std::iter::once(CHECKPOINTS).chain(Projection::ALL.into_iter().map(table_of))
}

/// Every statement that creates a read-model table or index, each only if it is missing.
pub(crate) fn all_ddl(dialect: Dialect) -> impl Iterator<Item = String> {
    all_tables().flat_map(move |table| ddl(dialect, table).all())
}

/// Creates whatever is missing of every read-model table.
async fn create_tables(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
) -> Result<(), ReadError> {
    execute_all(tx, all_ddl(dialect)).await
}

async fn execute_all(
    tx: &mut Transaction<'static, Any>,
    statements: impl IntoIterator<Item = String>,
) -> Result<(), ReadError> {
    for statement in statements {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Every table of the database whose name starts with `rm_`: this build's read models and
/// version table, and any a previous build left behind.
async fn read_model_tables(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
) -> Result<Vec<String>, ReadError> {
    let sql = match dialect {
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        // `::text`: `Any` cannot decode PostgreSQL's `name` type.
        Dialect::Postgres => {
            "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = current_schema()"
        }
    };
    let mut tables = Vec::new();
    for row in sqlx::query(sql).fetch_all(&mut **tx).await? {
        let name: String = row.try_get("name")?;
        if name.starts_with("rm_") {
            tables.push(name);
        }
    }
    tables.sort();
    Ok(tables)
}

/// The version in `rm_schema`, if it holds exactly one non-negative one.
async fn stored_version(tx: &mut Transaction<'static, Any>) -> Result<Option<u64>, ReadError> {
    let rows = sqlx::query(AssertSqlSafe(format!("SELECT version FROM {SCHEMA_TABLE}")))
        .fetch_all(&mut **tx)
        .await?;
    Ok(match rows.as_slice() {
        [row] => u64::try_from(row.try_get::<i64, _>("version")?).ok(),
        _ => None,
    })
}

/// Records that the tables have this build's shape ([`SCHEMA_VERSION`]).
async fn write_version(tx: &mut Transaction<'static, Any>) -> Result<(), ReadError> {
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version BIGINT NOT NULL)"
    )))
    .execute(&mut **tx)
    .await?;
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {SCHEMA_TABLE}")))
        .execute(&mut **tx)
        .await?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {SCHEMA_TABLE} (version) VALUES ($1)"
    )))
    .bind(i64::try_from(SCHEMA_VERSION).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `name` as a quoted SQL identifier (the same syntax on both backends).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A pool on a SQLite read-model file (creating it if needed) and the projector's connection.
async fn connect_sqlite(path: &Path, mode: SqliteMode) -> Result<Connections, ReadError> {
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
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    // After the pool, whose first connection puts a new live file in WAL mode.
    let writer = SqliteApplier::open(path, mode)?;
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
    pub async fn open_sqlite(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        Self::open_sqlite_as(path.as_ref(), SqliteMode::Live).await
    }

    pub(crate) async fn open_sqlite_as(path: &Path, mode: SqliteMode) -> Result<Self, ReadError> {
        let connections = connect_sqlite(path, mode).await?;
        Self::init(connections, Dialect::Sqlite, Some(path.to_path_buf())).await
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
        *self.write_connections() = connect_sqlite(path, SqliteMode::Live).await?;
        self.open_schema().await?;
        self.open_publisher_checkpoints().await
    }

    /// Opens the read models in a PostgreSQL database (the log's own database: every table
    /// here is prefixed `rm_`).
    pub async fn open_postgres(url: &str) -> Result<Self, ReadError> {
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
        Self::init(connections, Dialect::Postgres, None).await
    }

    async fn init(
        connections: Connections,
        dialect: Dialect,
        sqlite_path: Option<PathBuf>,
    ) -> Result<Self, ReadError> {
        let store = Self {
            connections: Arc::new(RwLock::new(connections)),
            dialect,
            sqlite_path,
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
        let key = match self.dialect {
            Dialect::Sqlite => "TEXT",
            Dialect::Postgres => "TEXT COLLATE \"C\"",
        };
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

    /// Creates the tables of a fresh store, keeps those of a store at [`SCHEMA_VERSION`], and
    /// drops and recreates those of any other version, all in one transaction.
    async fn open_schema(&self) -> Result<(), ReadError> {
        let mut tx = match self.dialect {
            // Takes the write lock at once rather than upgrading a read lock after reading the
            // version, which could fail (busy) against another process doing the same.
            Dialect::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => {
                let mut tx = self.pool().begin().await?;
                // Selecting `1` rather than the function's `void`, which `Any` cannot decode.
                sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(SCHEMA_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let tables = read_model_tables(self.dialect, &mut tx).await?;
        let stored = if tables.iter().any(|t| t == SCHEMA_TABLE) {
            // A version table without a readable version is as good as a foreign schema.
            Some(stored_version(&mut tx).await?.unwrap_or(0))
        } else if tables.is_empty() {
            None
        } else {
            Some(1)
        };
        match stored {
            Some(SCHEMA_VERSION) => create_tables(self.dialect, &mut tx).await?,
            None => {
                create_tables(self.dialect, &mut tx).await?;
                write_version(&mut tx).await?;
            }
            Some(stored) => {
                tracing::info!(
                    stored,
                    current = SCHEMA_VERSION,
                    tables = tables.len(),
                    "read-model schema version changed: dropping every read model and its \
                     checkpoint; they will be rebuilt from the log from position 0"
                );
                for table in &tables {
                    sqlx::query(AssertSqlSafe(format!(
                        "DROP TABLE IF EXISTS {}",
                        quote_ident(table)
                    )))
                    .execute(&mut *tx)
                    .await?;
                }
                create_tables(self.dialect, &mut tx).await?;
                write_version(&mut tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The schema version stored in this database (`None` if it holds none), for diagnostics.
    pub async fn schema_version(&self) -> Result<Option<u64>, ReadError> {
        let mut tx = self.pool().begin().await?;
        let tables = read_model_tables(self.dialect, &mut tx).await?;
        let version = if tables.iter().any(|t| t == SCHEMA_TABLE) {
            stored_version(&mut tx).await?
        } else {
            None
        };
        tx.commit().await?;
        Ok(version)
    }

    /// Drops and recreates every read-model table and checkpoint, without their lookup
    /// indexes: the first step of a rebuild, whose last is [`ReadStore::create_missing`].
    /// Stop the projector first; it would otherwise keep writing from its old checkpoints.
    pub(crate) async fn reset(&self) -> Result<(), ReadError> {
        let mut tx = self.pool().begin().await?;
        for table in all_tables() {
            sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .execute(&mut *tx)
                .await?;
            for statement in ddl(self.dialect, table).table {
                sqlx::query(AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // The tables now have this build's shape, whatever was stored before.
        write_version(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates whatever is missing of the read-model tables (after a rebuild, their lookup
    /// indexes), or with `only` of that projection's table alone.
    pub(crate) async fn create_missing(&self, only: Option<Projection>) -> Result<(), ReadError> {
        let statements: Vec<String> = match only {
            Some(projection) => ddl(self.dialect, table_of(projection)).all().collect(),
            None => all_ddl(self.dialect).collect(),
        };
        if let Some(writer) = self.sqlite_writer() {
            // On the connection that wrote the rows: its cache still holds many of the pages
            // the indexes are built from.
            return tokio::task::spawn_blocking(move || writer.create_missing(&statements))
                .await
                .map_err(|e| ReadError::Unavailable(format!("creating indexes: {e}")))?;
        }
        let mut tx = self.pool().begin().await?;
        execute_all(&mut tx, statements).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Empties one read model and its checkpoint, so that the next
    /// [`crate::ProjectionRuntime::start`] replays the log into it alone (the others skip what
    /// they already have). Stop the runtime first.
    pub async fn reset_projection(&self, projection: Projection) -> Result<(), ReadError> {
        let table = table_of(projection);
        let mut tx = self.pool().begin().await?;
        sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
            .execute(&mut *tx)
            .await?;
        for statement in ddl(self.dialect, table).all() {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM rm_checkpoints WHERE projection = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes the pools; pending queries finish first.
    pub async fn close(&self) {
        if let Some(writer) = self.postgres_writer() {
            writer.close().await;
        }
        self.pool().close().await;
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

    // -----------------------------------------------------------------------------------------
    // Tenants

    pub async fn tenant(&self, id: Uuid) -> Result<Option<TenantView>, ReadError> {
        let row = sqlx::query("SELECT doc FROM rm_tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool())
            .await?;
        row.map(|row| tenant_from_row(&row)).transpose()
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantView>, ReadError> {
        let row = sqlx::query("SELECT doc FROM rm_tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool())
            .await?;
        row.map(|row| tenant_from_row(&row)).transpose()
    }

    /// Tenants in creation order (ties broken by id), `limit` (at most [`MAX_PAGE`]) at a time.
    pub async fn list_tenants(
        &self,
        filter: TenantFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<TenantView>, ReadError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = cursor.map(Cursor::parse).transpose()?;
        let mut sql = String::from("SELECT doc FROM rm_tenants WHERE 1 = 1");
        let mut n = 0;
        if filter.status.is_some() {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        if filter.suspended.is_some() {
            n += 1;
            sql.push_str(&format!(" AND suspended = ${n}"));
        }
        if after.is_some() {
            sql.push_str(&format!(
                " AND (created_at > ${a} OR (created_at = ${a} AND id > ${b}))",
                a = n + 1,
                b = n + 2
            ));
        }
        sql.push_str(&format!(
            " ORDER BY created_at, id LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(suspended) = filter.suspended {
            query = query.bind(suspended);
        }
        if let Some(after) = &after {
            query = query.bind(after.created_at).bind(after.id.to_string());
        }
        let rows = query.fetch_all(&self.pool()).await?;
        let items = rows
            .iter()
            .map(tenant_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, limit, |t| Cursor {
            created_at: t.created_at.as_micros(),
            id: t.id,
        }))
    }

    // -----------------------------------------------------------------------------------------
    // Signing keys

    /// A tenant's signing keys, oldest first (then by kid).
    pub async fn signing_keys(&self, tenant_id: Uuid) -> Result<Vec<SigningKeyView>, ReadError> {
        let rows = sqlx::query(
            "SELECT tenant_id, kid, alg, status, created_at, retired_at, public_jwk \
             FROM rm_signing_keys WHERE tenant_id = $1 ORDER BY created_at, kid",
        )
        .bind(tenant_id.to_string())
        .fetch_all(&self.pool())
        .await?;
        rows.iter()
            .map(|row| signing_key_from_row(row).map(|(_, key)| key))
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // API keys

    /// The key whose secret hashes to `secret_hash`, in any tenant: this is how a presented
    /// API key is authenticated, before its tenant is known. The caller checks revocation and
    /// expiry.
    pub async fn api_key_by_hash(
        &self,
        secret_hash: &Hash32,
    ) -> Result<Option<ApiKeyView>, ReadError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM rm_api_keys WHERE secret_hash = $1"
        )))
        .bind(secret_hash.to_hex())
        .fetch_optional(&self.pool())
        .await?;
        row.map(|row| api_key_from_row(&row)).transpose()
    }

    pub async fn api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
    ) -> Result<Option<ApiKeyView>, ReadError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM rm_api_keys WHERE key_id = $1 AND tenant_id = $2"
        )))
        .bind(key_id.to_string())
        .bind(tenant_id.to_string())
        .fetch_optional(&self.pool())
        .await?;
        row.map(|row| api_key_from_row(&row)).transpose()
    }

    /// A tenant's API keys in creation order, `limit` (at most [`MAX_PAGE`]) at a time.
    pub async fn list_api_keys(
        &self,
        tenant_id: Uuid,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<ApiKeyView>, ReadError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = cursor.map(Cursor::parse).transpose()?;
        let mut sql = format!("SELECT {API_KEY_COLUMNS} FROM rm_api_keys WHERE tenant_id = $1");
        if after.is_some() {
            sql.push_str(" AND (created_at > $2 OR (created_at = $2 AND key_id > $3))");
        }
        sql.push_str(&format!(
            " ORDER BY created_at, key_id LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id.to_string());
        if let Some(after) = &after {
            query = query.bind(after.created_at).bind(after.id.to_string());
        }
        let rows = query.fetch_all(&self.pool()).await?;
        let items = rows
            .iter()
            .map(api_key_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, limit, |k| Cursor {
            created_at: k.created_at.as_micros(),
            id: k.key_id,
        }))
    }

    // -----------------------------------------------------------------------------------------
    // Audit trail

    /// Audit entries matching `filter`, newest first (by global position, descending),
    /// `limit` (at most [`MAX_AUDIT_PAGE`]) at a time. The cursor is the position of the last
    /// entry of the previous page.
    pub async fn audit(
        &self,
        filter: &AuditFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditView>, ReadError> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let before = cursor.map(parse_audit_cursor).transpose()?;
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM rm_audit WHERE 1 = 1");
        let mut n = 0;
        let mut text_binds: Vec<&str> = Vec::new();
        let tenant = filter.tenant_id.map(|id| id.to_string());
        for (column, value) in [
            ("tenant_id", tenant.as_deref()),
            ("actor_id", filter.actor_id.as_deref()),
            ("action", filter.action.as_deref()),
            ("target_id", filter.target_id.as_deref()),
            ("product", filter.product.as_deref()),
        ] {
            if let Some(value) = value {
                n += 1;
                sql.push_str(&format!(" AND {column} = ${n}"));
                text_binds.push(value);
            }
        }
        let mut int_binds: Vec<i64> = Vec::new();
        for (condition, value) in [
            ("recorded_at >=", filter.since.map(Timestamp::as_micros)),
            ("recorded_at <", filter.until.map(Timestamp::as_micros)),
            ("position <", before),
        ] {
            if let Some(value) = value {
                n += 1;
                sql.push_str(&format!(" AND {condition} ${n}"));
                int_binds.push(value);
            }
        }
        sql.push_str(&format!(
            " ORDER BY position DESC LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in text_binds {
            query = query.bind(value);
        }
        for value in int_binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool()).await?;
        let mut items = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            items.last().map(|last| audit_cursor(last.position))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// The audit entry of the event at `position`, once the audit projection has reached it.
    pub async fn audit_entry(&self, position: u64) -> Result<Option<AuditView>, ReadError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {AUDIT_COLUMNS} FROM rm_audit WHERE position = $1"
        )))
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool())
        .await?;
        row.map(|row| audit_from_row(&row)).transpose()
    }

    // -----------------------------------------------------------------------------------------
    // Snapshot

    /// A canonical dump of every read-model table and checkpoint, independent of the backend:
    /// rows sorted by key bytes, JSON columns parsed, flags as booleans. Two stores that
    /// projected the same log compare equal.
    pub async fn snapshot(&self) -> Result<serde_json::Value, ReadError> {
        use serde_json::{Map, Value, json};

        let mut checkpoints = Map::new();
        for row in sqlx::query("SELECT projection, position FROM rm_checkpoints")
            .fetch_all(&self.pool())
            .await?
        {
            let name: String = row.try_get("projection")?;
            let position: i64 = row.try_get("position")?;
            checkpoints.insert(name, json!(position));
        }

        let mut tenants = Vec::new();
        for row in sqlx::query(
            "SELECT id, slug, status, suspended, created_at, updated_at, stream_version, doc \
             FROM rm_tenants",
        )
        .fetch_all(&self.pool())
        .await?
        {
            let id: String = row.try_get("id")?;
            let value = json!({
                "id": id,
                "slug": row.try_get::<String, _>("slug")?,
                "status": row.try_get::<String, _>("status")?,
                "suspended": get_flag(&row, "suspended")?,
                "created_at": row.try_get::<i64, _>("created_at")?,
                "updated_at": row.try_get::<i64, _>("updated_at")?,
                "stream_version": row.try_get::<i64, _>("stream_version")?,
                "doc": parse_json(&row.try_get::<String, _>("doc")?)?,
            });
            tenants.push((id, value));
        }

        let mut signing_keys = Vec::new();
        for row in sqlx::query(
            "SELECT tenant_id, kid, alg, status, created_at, retired_at, public_jwk \
             FROM rm_signing_keys",
        )
        .fetch_all(&self.pool())
        .await?
        {
            let tenant_id: String = row.try_get("tenant_id")?;
            let kid: String = row.try_get("kid")?;
            let value = json!({
                "tenant_id": tenant_id,
                "kid": kid,
                "alg": row.try_get::<String, _>("alg")?,
                "status": row.try_get::<String, _>("status")?,
                "created_at": row.try_get::<i64, _>("created_at")?,
                "retired_at": row.try_get::<Option<i64>, _>("retired_at")?,
                "public_jwk": parse_json(&row.try_get::<String, _>("public_jwk")?)?,
            });
            signing_keys.push(((tenant_id, kid), value));
        }

        let mut api_keys = Vec::new();
        for row in sqlx::query(AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM rm_api_keys"
        )))
        .fetch_all(&self.pool())
        .await?
        {
            let key_id: String = row.try_get("key_id")?;
            let value = json!({
                "key_id": key_id,
                "tenant_id": row.try_get::<String, _>("tenant_id")?,
                "secret_hash": row.try_get::<String, _>("secret_hash")?,
                "name": row.try_get::<String, _>("name")?,
                "prefix": row.try_get::<String, _>("prefix")?,
                "scopes": parse_json(&row.try_get::<String, _>("scopes")?)?,
                "product": row.try_get::<Option<String>, _>("product")?,
                "created_by": row.try_get::<String, _>("created_by")?,
                "created_at": row.try_get::<i64, _>("created_at")?,
                "expires_at": row.try_get::<Option<i64>, _>("expires_at")?,
                "revoked_at": row.try_get::<Option<i64>, _>("revoked_at")?,
                "use_count": row.try_get::<i64, _>("use_count")?,
                "last_used_at": row.try_get::<Option<i64>, _>("last_used_at")?,
            });
            api_keys.push((key_id, value));
        }

        let mut audit = Vec::new();
        for row in sqlx::query(AssertSqlSafe(format!(
            "SELECT {AUDIT_COLUMNS} FROM rm_audit"
        )))
        .fetch_all(&self.pool())
        .await?
        {
            let entry = audit_from_row(&row)?;
            let value = serde_json::to_value(&entry)
                .map_err(|e| ReadError::Corrupt(format!("rm_audit: {e}")))?;
            audit.push((entry.position, value));
        }

        // Sorted here rather than by ORDER BY, whose text collation depends on the backend.
        Ok(json!({
            "rm_audit": sorted(audit),
            "rm_checkpoints": Value::Object(checkpoints),
            "rm_tenants": sorted(tenants),
            "rm_signing_keys": sorted(signing_keys),
            "rm_api_keys": sorted(api_keys),
        }))
    }
}

fn sorted<K: Ord>(mut rows: Vec<(K, serde_json::Value)>) -> serde_json::Value {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    serde_json::Value::Array(rows.into_iter().map(|(_, row)| row).collect())
}

// ---------------------------------------------------------------------------------------------
// Row decoding, shared with the batch writer.

pub(crate) const API_KEY_COLUMNS: &str = "key_id, tenant_id, secret_hash, name, prefix, scopes, \
     product, created_by, created_at, expires_at, revoked_at, use_count, last_used_at";

pub(crate) const AUDIT_COLUMNS: &str = "position, event_id, tenant_id, event_type, action, \
     actor_kind, actor_id, actor_name, target_type, target_id, target_name, product, project_id, \
     correlation_id, source_ip, user_agent, recorded_at, summary";
pub(crate) const AUDIT_COLUMN_COUNT: usize = 18;

pub(crate) fn audit_from_row(row: &AnyRow) -> Result<AuditView, ReadError> {
    Ok(AuditView {
        position: to_u64(row.try_get("position")?)?,
        event_id: parse_uuid(&row.try_get::<String, _>("event_id")?)?,
        tenant_id: parse_uuid(&row.try_get::<String, _>("tenant_id")?)?,
        event_type: row.try_get("event_type")?,
        action: row.try_get("action")?,
        actor_kind: row.try_get("actor_kind")?,
        actor_id: row.try_get("actor_id")?,
        actor_name: row.try_get("actor_name")?,
        target_type: row.try_get("target_type")?,
        target_id: row.try_get("target_id")?,
        target_name: row.try_get("target_name")?,
        product: row.try_get("product")?,
        project_id: row
            .try_get::<Option<String>, _>("project_id")?
            .map(|id| parse_uuid(&id))
            .transpose()?,
        correlation_id: row.try_get("correlation_id")?,
        source_ip: row.try_get("source_ip")?,
        user_agent: row.try_get("user_agent")?,
        recorded_at: Timestamp::from_micros(row.try_get("recorded_at")?),
        summary: parse_json(&row.try_get::<String, _>("summary")?)?,
    })
}

/// Typed column access for the row decoders below, over a sqlx row (reads, and writes on
/// PostgreSQL) or a rusqlite row (the SQLite projector's loads): one decoder per table, whoever
/// fetched the row.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, ReadError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, ReadError>;
    fn int(&self, column: &str) -> Result<i64, ReadError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, ReadError>;
}

/// [`Columns`] for a sqlx row type.
macro_rules! sqlx_columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, ReadError> {
                Ok(self.try_get(column)?)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, ReadError> {
                Ok(self.try_get(column)?)
            }
            fn int(&self, column: &str) -> Result<i64, ReadError> {
                Ok(self.try_get(column)?)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, ReadError> {
                Ok(self.try_get(column)?)
            }
        }
    };
}

// The store's reads, and the PostgreSQL writer's loads.
sqlx_columns!(AnyRow);
sqlx_columns!(sqlx::postgres::PgRow);

impl Columns for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<String, ReadError> {
        Ok(self.get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, ReadError> {
        Ok(self.get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64, ReadError> {
        Ok(self.get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, ReadError> {
        Ok(self.get(column)?)
    }
}

pub(crate) fn tenant_from_row(row: &impl Columns) -> Result<TenantView, ReadError> {
    let doc = row.text("doc")?;
    serde_json::from_str(&doc).map_err(|e| ReadError::Corrupt(format!("rm_tenants.doc: {e}")))
}

pub(crate) fn signing_key_from_row(
    row: &impl Columns,
) -> Result<(Uuid, SigningKeyView), ReadError> {
    let tenant_id = parse_uuid(&row.text("tenant_id")?)?;
    let alg = row.text("alg")?;
    let status = row.text("status")?;
    let jwk = row.text("public_jwk")?;
    let key = SigningKeyView {
        kid: row.text("kid")?,
        alg: SigningAlg::parse(&alg)
            .ok_or_else(|| ReadError::Corrupt(format!("unknown signing alg {alg}")))?,
        status: SigningKeyStatus::parse(&status)
            .ok_or_else(|| ReadError::Corrupt(format!("unknown key status {status}")))?,
        created_at: Timestamp::from_micros(row.int("created_at")?),
        retired_at: row.opt_int("retired_at")?.map(Timestamp::from_micros),
        public_jwk: serde_json::from_str::<PublicJwkV1>(&jwk)
            .map_err(|e| ReadError::Corrupt(format!("rm_signing_keys.public_jwk: {e}")))?,
    };
    Ok((tenant_id, key))
}

pub(crate) fn api_key_from_row(row: &impl Columns) -> Result<ApiKeyView, ReadError> {
    let hash = row.text("secret_hash")?;
    let scopes = row.text("scopes")?;
    Ok(ApiKeyView {
        key_id: parse_uuid(&row.text("key_id")?)?,
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        secret_hash: Hash32::from_hex(&hash)
            .ok_or_else(|| ReadError::Corrupt(format!("bad secret_hash {hash}")))?,
        name: row.text("name")?,
        prefix: row.text("prefix")?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|e| ReadError::Corrupt(format!("rm_api_keys.scopes: {e}")))?,
        product: row.opt_text("product")?,
        created_by: row.text("created_by")?,
        created_at: Timestamp::from_micros(row.int("created_at")?),
        expires_at: row.opt_int("expires_at")?.map(Timestamp::from_micros),
        revoked_at: row.opt_int("revoked_at")?.map(Timestamp::from_micros),
        use_count: to_u64(row.int("use_count")?)?,
        last_used_at: row.opt_int("last_used_at")?.map(Timestamp::from_micros),
    })
}

fn parse_uuid(text: &str) -> Result<Uuid, ReadError> {
    Uuid::parse_str(text).map_err(|e| ReadError::Corrupt(format!("bad id {text}: {e}")))
}

fn parse_json(text: &str) -> Result<serde_json::Value, ReadError> {
    serde_json::from_str(text).map_err(|e| ReadError::Corrupt(format!("bad JSON column: {e}")))
}

/// A flag column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
fn get_flag(row: &AnyRow, column: &str) -> Result<bool, ReadError> {
    match row.try_get::<bool, _>(column) {
        Ok(flag) => Ok(flag),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

fn to_u64(value: i64) -> Result<u64, ReadError> {
    u64::try_from(value)
        .map_err(|_| ReadError::Corrupt(format!("negative position or count {value}")))
}

// ---------------------------------------------------------------------------------------------
// Pagination

/// The last row of a page: `(created_at, id)`, the listing's sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) created_at: i64,
    pub(crate) id: Uuid,
}

impl Cursor {
    /// Opaque to callers; versioned so that the encoding can change without misreading old
    /// cursors.
    pub(crate) fn encode(&self) -> String {
        format!("c1.{}.{}", self.created_at, self.id.simple())
    }

    pub(crate) fn parse(text: &str) -> Result<Self, ReadError> {
        let rest = text.strip_prefix("c1.").ok_or(ReadError::InvalidCursor)?;
        let (micros, id) = rest.split_once('.').ok_or(ReadError::InvalidCursor)?;
        Ok(Self {
            created_at: micros.parse().map_err(|_| ReadError::InvalidCursor)?,
            id: Uuid::try_parse(id).map_err(|_| ReadError::InvalidCursor)?,
        })
    }
}

/// The audit listing's cursor: the position of a page's last (oldest) entry, versioned like
/// [`Cursor`].
fn audit_cursor(position: u64) -> String {
    format!("a1.{position}")
}

/// A cursor's position, as the SQL parameter it becomes.
fn parse_audit_cursor(text: &str) -> Result<i64, ReadError> {
    text.strip_prefix("a1.")
        .and_then(|position| position.parse::<u64>().ok())
        .and_then(|position| i64::try_from(position).ok())
        .ok_or(ReadError::InvalidCursor)
}

/// Trims the one extra row a listing fetched to learn whether another page follows.
fn page<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().map(|last| key(last).encode())
    } else {
        None
    };
    Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_foreign_text() {
        let cursor = Cursor {
            created_at: 1_700_000_000_000_001,
            id: Uuid::from_u128(42),
        };
        assert_eq!(Cursor::parse(&cursor.encode()).ok(), Some(cursor));
        assert!(matches!(
            Cursor::parse("garbage"),
            Err(ReadError::InvalidCursor)
        ));
        assert!(matches!(
            Cursor::parse("c1.x.y"),
            Err(ReadError::InvalidCursor)
        ));
    }

    #[test]
    fn audit_cursor_round_trips_and_rejects_foreign_text() {
        assert_eq!(parse_audit_cursor(&audit_cursor(42)).ok(), Some(42));
        for bad in [
            "42",
            "a1.",
            "a1.-1",
            "a1.x",
            "c1.42",
            "a1.99999999999999999999",
        ] {
            assert!(matches!(
                parse_audit_cursor(bad),
                Err(ReadError::InvalidCursor)
            ));
        }
    }

    #[test]
    fn a_full_page_with_one_row_to_spare_has_a_next_cursor() {
        let key = |n: &i64| Cursor {
            created_at: *n,
            id: Uuid::nil(),
        };
        let more = page(vec![1, 2, 3], 2, key);
        assert_eq!(more.items, vec![1, 2]);
        assert_eq!(more.next_cursor, Some(key(&2).encode()));
        let last = page(vec![1, 2], 2, key);
        assert_eq!(last.next_cursor, None);
    }
}
