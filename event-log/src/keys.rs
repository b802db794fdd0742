//! The key table: per-person data keys, stored outside the log so that they can be destroyed.
//!
//! The log is append-only and hash-chained, so personal data that enters it can never be
//! deleted from it. It enters sealed instead, under a data key of its own per person, and that
//! key lives here; destroying the key (crypto-shredding) leaves the log intact and the
//! person's data unreadable. This module stores opaque bytes (each key is already sealed under
//! a sub-key of the master key by `tessera-crypto`, so a dump of this table alone opens
//! nothing); it knows nothing of keys, people or events beyond the two ids a row is found by.
//!
//! It lives beside the log because it follows the log's backend choice:
//! - embedded: a SQLite file of its own, `keys.db` beside `events.db`, with
//!   `secure_delete = ON` (SQLite overwrites deleted content with zeros) and, after each
//!   destroy, `wal_checkpoint(TRUNCATE)`, so that no page image holding the key survives in
//!   the write-ahead log; `synchronous = FULL`, so that a key is on disk before the event
//!   sealed under it is appended;
//! - PostgreSQL: the table `person_keys` in the log's database; a destroy is followed by a
//!   `VACUUM` of the table, so that the dead row is removed from the heap rather than left
//!   until autovacuum (what that does and does not guarantee is in ARCHITECTURE.md, "Erasure");
//! - in memory, for tests: a map in the [`MemoryStore`], which outlives a restart as the
//!   events do.
//!
//! **Order of writes.** A key is stored (durably) before the first event that uses it is
//! appended. An append that then fails leaves an orphan key, which is harmless: it seals
//! nothing that was ever stored, and it is destroyed like any other key if the person is.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use crate::{Backend, LogError, MemoryStore};

/// The file of the embedded key table, in the log's directory.
pub const KEYS_FILE: &str = "keys.db";

/// Rows of sealed per-person keys, by tenant and person.
#[async_trait]
pub trait KeyTable: Send + Sync {
    /// Stores `sealed` for `(tenant_id, person_id)` unless a row is already there, and returns
    /// the row as stored (the existing one wins, so a retried creation keeps the first key).
    /// Durable when it returns.
    async fn insert(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
        sealed: &[u8],
    ) -> Result<Vec<u8>, LogError>;

    /// The sealed key of `(tenant_id, person_id)`, if it exists.
    async fn get(&self, tenant_id: Uuid, person_id: Uuid) -> Result<Option<Vec<u8>>, LogError>;

    /// Deletes the row so that no copy stays in the store's files (see the module doc for
    /// what each backend does). Returns whether there was one; destroying twice is harmless.
    async fn destroy(&self, tenant_id: Uuid, person_id: Uuid) -> Result<bool, LogError>;

    /// Closes connections.
    async fn close(&self);
}

/// Opens the key table of `backend`: `keys.db` beside a SQLite log, `person_keys` in a
/// PostgreSQL log's database, or the memory store's map.
pub async fn open(backend: &Backend) -> Result<Arc<dyn KeyTable>, LogError> {
    match backend {
        Backend::Sqlite { path } => {
            let file = path.with_file_name(KEYS_FILE);
            Ok(Arc::new(SqliteKeyTable::open(&file).await?))
        }
        Backend::Postgres { url } => Ok(Arc::new(PostgresKeyTable::open(url).await?)),
        Backend::Memory { store } => Ok(Arc::new(MemoryKeyTable {
            store: store.clone(),
        })),
        #[cfg(feature = "kurrentdb")]
        Backend::KurrentDb { .. } => Err(no_keys_in_kurrentdb()),
    }
}

/// Per-person keys must be destroyable in place, which an append-only KurrentDB stream is not
/// (deleting needs a scavenge, and leaves copies until then): they stay in SQL.
#[cfg(feature = "kurrentdb")]
fn no_keys_in_kurrentdb() -> LogError {
    LogError::Unavailable(
        "the key table cannot live in KurrentDB: keep it in SQLite or PostgreSQL".to_owned(),
    )
}

/// Opens the key table of `backend` only if it exists, without creating anything (SQLite: the
/// file read-only): for tools that read (`tessera-replay`). `None` when there is none yet.
pub async fn open_existing(backend: &Backend) -> Result<Option<Arc<dyn KeyTable>>, LogError> {
    match backend {
        Backend::Sqlite { path } => {
            let file = path.with_file_name(KEYS_FILE);
            if !file.exists() {
                return Ok(None);
            }
            let options = SqliteConnectOptions::new()
                .filename(&file)
                .read_only(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            Ok(Some(Arc::new(SqliteKeyTable { pool })))
        }
        Backend::Postgres { url } => {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(unavailable)?;
            let exists: bool = sqlx::query("SELECT to_regclass('person_keys') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(unavailable)?;
            Ok(exists.then(|| Arc::new(PostgresKeyTable { pool }) as Arc<dyn KeyTable>))
        }
        Backend::Memory { .. } => open(backend).await.map(Some),
        #[cfg(feature = "kurrentdb")]
        Backend::KurrentDb { .. } => Err(no_keys_in_kurrentdb()),
    }
}

fn unavailable(error: sqlx::Error) -> LogError {
    LogError::Unavailable(format!("key table: {error}"))
}

/// The embedded key table: its own SQLite file.
pub struct SqliteKeyTable {
    pool: SqlitePool,
}

impl SqliteKeyTable {
    /// Opens (creating if needed) the key table file at `path`.
    pub async fn open(path: &Path) -> Result<Self, LogError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A key must be on disk before the event sealed under it is appended (else a power
            // cut could keep the event and lose its key): every commit syncs.
            .synchronous(SqliteSynchronous::Full)
            // Deleted rows are overwritten with zeros in the file, not merely unlinked from
            // the b-tree.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10));
        // One connection: every write and its checkpoint are serialized, and a TRUNCATE
        // checkpoint never waits for a reader of this pool.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS person_keys (\
                tenant_id BLOB NOT NULL, \
                person_id BLOB NOT NULL, \
                sealed_key BLOB NOT NULL, \
                PRIMARY KEY (tenant_id, person_id)) WITHOUT ROWID",
        )
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl KeyTable for SqliteKeyTable {
    async fn insert(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
        sealed: &[u8],
    ) -> Result<Vec<u8>, LogError> {
        sqlx::query(
            "INSERT INTO person_keys (tenant_id, person_id, sealed_key) VALUES (?, ?, ?) \
             ON CONFLICT (tenant_id, person_id) DO NOTHING",
        )
        .bind(tenant_id.as_bytes().as_slice())
        .bind(person_id.as_bytes().as_slice())
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        self.get(tenant_id, person_id).await?.ok_or_else(|| {
            LogError::Unavailable("key table: a stored key could not be read back".to_owned())
        })
    }

    async fn get(&self, tenant_id: Uuid, person_id: Uuid) -> Result<Option<Vec<u8>>, LogError> {
        let row =
            sqlx::query("SELECT sealed_key FROM person_keys WHERE tenant_id = ? AND person_id = ?")
                .bind(tenant_id.as_bytes().as_slice())
                .bind(person_id.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        row.map(|row| row.try_get::<Vec<u8>, _>("sealed_key"))
            .transpose()
            .map_err(unavailable)
    }

    async fn destroy(&self, tenant_id: Uuid, person_id: Uuid) -> Result<bool, LogError> {
        let deleted = sqlx::query("DELETE FROM person_keys WHERE tenant_id = ? AND person_id = ?")
            .bind(tenant_id.as_bytes().as_slice())
            .bind(person_id.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?
            .rows_affected();
        // The WAL still holds the page as it was when the key was written; copying the WAL
        // into the file (where `secure_delete` has zeroed the row) and truncating it to zero
        // bytes leaves no image of it.
        let busy: i64 = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(unavailable)?;
        if busy != 0 {
            return Err(LogError::Unavailable(
                "key table: the write-ahead log could not be truncated after a destroy".to_owned(),
            ));
        }
        Ok(deleted > 0)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The key table in a PostgreSQL database.
pub struct PostgresKeyTable {
    pool: PgPool,
}

impl PostgresKeyTable {
    /// Connects to `url` and creates `person_keys` if it is missing.
    pub async fn open(url: &str) -> Result<Self, LogError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS person_keys (\
                tenant_id UUID NOT NULL, \
                person_id UUID NOT NULL, \
                sealed_key BYTEA NOT NULL, \
                PRIMARY KEY (tenant_id, person_id))",
        )
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl KeyTable for PostgresKeyTable {
    async fn insert(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
        sealed: &[u8],
    ) -> Result<Vec<u8>, LogError> {
        // A PostgreSQL commit is durable when it returns.
        sqlx::query(
            "INSERT INTO person_keys (tenant_id, person_id, sealed_key) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, person_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(person_id)
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        self.get(tenant_id, person_id).await?.ok_or_else(|| {
            LogError::Unavailable("key table: a stored key could not be read back".to_owned())
        })
    }

    async fn get(&self, tenant_id: Uuid, person_id: Uuid) -> Result<Option<Vec<u8>>, LogError> {
        let row = sqlx::query(
            "SELECT sealed_key FROM person_keys WHERE tenant_id = $1 AND person_id = $2",
        )
        .bind(tenant_id)
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|row| row.try_get::<Vec<u8>, _>("sealed_key"))
            .transpose()
            .map_err(unavailable)
    }

    async fn destroy(&self, tenant_id: Uuid, person_id: Uuid) -> Result<bool, LogError> {
        let deleted =
            sqlx::query("DELETE FROM person_keys WHERE tenant_id = $1 AND person_id = $2")
                .bind(tenant_id)
                .bind(person_id)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected();
        // Removes the dead row from the heap now rather than whenever autovacuum comes by.
        // Best effort: a VACUUM that cannot run (another one in progress) is retried by the
        // next destroy or by autovacuum, and the key is already gone from every read.
        if let Err(error) = sqlx::query("VACUUM person_keys").execute(&self.pool).await {
            tracing::warn!(%error, "VACUUM of person_keys after a destroy failed");
        }
        Ok(deleted > 0)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The key table of a [`MemoryStore`], for tests.
pub struct MemoryKeyTable {
    store: MemoryStore,
}

#[async_trait]
impl KeyTable for MemoryKeyTable {
    async fn insert(
        &self,
        tenant_id: Uuid,
        person_id: Uuid,
        sealed: &[u8],
    ) -> Result<Vec<u8>, LogError> {
        Ok(self.store.with_keys(|keys| {
            keys.entry((tenant_id, person_id))
                .or_insert_with(|| sealed.to_vec())
                .clone()
        }))
    }

    async fn get(&self, tenant_id: Uuid, person_id: Uuid) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self
            .store
            .with_keys(|keys| keys.get(&(tenant_id, person_id)).cloned()))
    }

    async fn destroy(&self, tenant_id: Uuid, person_id: Uuid) -> Result<bool, LogError> {
        Ok(self
            .store
            .with_keys(|keys| keys.remove(&(tenant_id, person_id)).is_some()))
    }

    async fn close(&self) {}
}

/// The rows of a memory key table.
pub(crate) type MemoryKeys = HashMap<(Uuid, Uuid), Vec<u8>>;
