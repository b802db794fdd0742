//! The read models' schema: every table's `CREATE` statements, the schema version, and
//! dropping and recreating tables (on a version change, for a rebuild, for one projection).
//!
//! Schema changes: `rm_schema` holds the [`SCHEMA_VERSION`] the tables were created for. When
//! a store is opened with a different version stored (or with read-model tables but no version,
//! which is version 1), every `rm_` table is dropped, checkpoints included, and recreated empty,
//! so the projector refolds the whole log from position 0; read models are disposable, and this
//! rebuild is their entire migration story.

use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::error::ReadError;
use crate::isolation;
use crate::store::{Dialect, ReadStore};
use crate::tables::Projection;

/// The shape of the read-model tables this build creates and writes. Bump it with any change
/// to a table, or to what a reducer writes into one: opening a store of another version drops
/// and recreates every read model (see the module doc).
///
/// 1: the first schema (no version table). 2: `rm_api_keys.use_count` and `last_used_at`.
/// 3: `rm_audit`, the audit trail (and its checkpoint). 4: on PostgreSQL, `rm_audit` keyed by
/// a unique index instead of a primary key. 5: `audit.recorded` rows keep who appended them
/// (`recorded_by`) in their summary, and show a claimed actor only as a kind and an id.
/// 6: `rm_audit.action` NULL when it is the event type, and `token.issued` v2 summaries
/// without what the row already says (issue 24). 7: `rm_audit`'s ids as 16 bytes on SQLite
/// where they are UUIDs (issue 24). 8: `rm_credentials` and `rm_vault_secrets`, the credential
/// vault's connections and sealed secrets by key version (issue 20).
pub const SCHEMA_VERSION: u64 = 8;

/// The one-row table holding the stored [`SCHEMA_VERSION`]. Not one of [`all_tables`]:
/// [`ReadStore::reset`] keeps it, since a reset store has the current schema.
const SCHEMA_TABLE: &str = "rm_schema";

/// Serialises schema checks between processes opening the same PostgreSQL database at once, so
/// that two of them cannot both see an old version and the second drop what the first has
/// begun to project. An arbitrary constant, distinct from the event log's.
const SCHEMA_LOCK_KEY: i64 = 0x7465_7373_726d_7363;

/// Each projection's checkpoint, one row per projection.
const CHECKPOINTS: &str = "rm_checkpoints";

/// A read-model table's `CREATE` statements.
#[derive(Default)]
pub(crate) struct TableDdl {
    /// The table with the keys and unique constraints that a rebuild's writes rely on.
    table: Vec<String>,
    /// Indexes that a rebuild creates once its rows are in: one sort instead of an insert
    /// into each index per row, and index pages written once instead of once per batch.
    /// Those that only serve queries, and on PostgreSQL the audit trail's key, which only the
    /// live projector's inserts rely on (a rebuild copies rows that cannot conflict).
    lookups: Vec<String>,
}

impl TableDdl {
    pub(crate) fn new(table: impl Into<String>) -> Self {
        Self {
            table: vec![table.into()],
            lookups: Vec::new(),
        }
    }

    pub(crate) fn unique(mut self, index: &str) -> Self {
        self.table.push(index.into());
        self
    }

    pub(crate) fn lookup(mut self, index: &str) -> Self {
        self.lookups.push(index.into());
        self
    }

    fn all(self) -> impl Iterator<Item = String> {
        self.table.into_iter().chain(self.lookups)
    }
}

/// The `CREATE` statements of `table`: the checkpoints' or a projection's.
fn ddl(dialect: Dialect, table: Table) -> TableDdl {
    match table {
        Table::Checkpoints => TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_checkpoints (\
                projection {} PRIMARY KEY, \
                position BIGINT NOT NULL)",
            dialect.key_type()
        )),
        Table::Of(projection) => projection.ddl(dialect),
    }
}

/// A table of the read models.
#[derive(Clone, Copy)]
enum Table {
    Checkpoints,
    Of(Projection),
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Checkpoints => CHECKPOINTS,
            Table::Of(projection) => projection.table(),
        }
    }
}

/// Every read-model table: the checkpoints, then each projection's.
fn all_tables() -> impl Iterator<Item = Table> {
    std::iter::once(Table::Checkpoints).chain(Projection::ALL.into_iter().map(Table::Of))
}

/// Every statement that creates a read-model table or index, each only if it is missing.
fn all_ddl(dialect: Dialect) -> impl Iterator<Item = String> {
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

impl ReadStore {
    /// Creates the tables of a fresh store, keeps those of a store at [`SCHEMA_VERSION`], and
    /// drops and recreates those of any other version, all in one transaction.
    pub(crate) async fn open_schema(&self) -> Result<(), ReadError> {
        if self.dialect == Dialect::Postgres && self.isolation_wanted {
            let on = isolation::ensure_role(self).await?;
            self.isolation
                .store(on, std::sync::atomic::Ordering::Relaxed);
        }
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
        self.isolate(&mut tx, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Row-level security on the tables, in the transaction that (re)created them, when
    /// tenant isolation is on (see `isolation`).
    async fn isolate(
        &self,
        tx: &mut Transaction<'static, Any>,
        only: Option<Projection>,
    ) -> Result<(), ReadError> {
        if self.tenant_isolation() {
            isolation::isolate_tables(tx, only.map(Projection::table)).await?;
        }
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
            sqlx::query(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {}",
                table.name()
            )))
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
        self.isolate(&mut tx, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates whatever is missing of the read-model tables (after a rebuild, their lookup
    /// indexes), or with `only` of that projection's table alone.
    pub(crate) async fn create_missing(&self, only: Option<Projection>) -> Result<(), ReadError> {
        let statements: Vec<String> = match only {
            Some(projection) => projection.ddl(self.dialect).all().collect(),
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
        self.isolate(&mut tx, only).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Empties one read model and its checkpoint, so that the next
    /// [`crate::ProjectionRuntime::start`] replays the log into it alone (the others skip what
    /// they already have). Stop the runtime first.
    pub async fn reset_projection(&self, projection: Projection) -> Result<(), ReadError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS {}",
            projection.table()
        )))
        .execute(&mut *tx)
        .await?;
        for statement in projection.ddl(self.dialect).all() {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM rm_checkpoints WHERE projection = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        self.isolate(&mut tx, Some(projection)).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Role;
    use crate::tables::{Registered, TableVisitor, visit_tables};

    /// Each table's DDL creates exactly the columns its `TableWrite` writes, in that order,
    /// keyed by its key columns: a column added to one and not the other fails here.
    #[test]
    fn every_table_creates_the_columns_it_writes() {
        struct Check(rusqlite::Connection);
        impl TableVisitor for Check {
            type Error = rusqlite::Error;
            fn visit<T: Registered>(&mut self) -> Result<(), rusqlite::Error> {
                for statement in T::ddl(Dialect::Sqlite).all() {
                    self.0.execute_batch(&statement)?;
                }
                let mut info = self
                    .0
                    .prepare(&format!("PRAGMA table_info({})", T::WRITE.table))?;
                let columns: Vec<(String, bool)> = info
                    .query_map([], |row| {
                        Ok((row.get("name")?, row.get::<_, i64>("pk")? > 0))
                    })?
                    .collect::<Result<_, _>>()?;
                let written: Vec<(String, bool)> = T::WRITE
                    .columns
                    .iter()
                    .map(|c| (c.name.to_owned(), c.role == Role::Key))
                    .collect();
                assert_eq!(columns, written, "{}", T::WRITE.table);
                assert!(
                    T::SELECT.contains(&format!(" FROM {} WHERE ", T::WRITE.table)),
                    "{}",
                    T::SELECT
                );
                Ok(())
            }
        }
        let mut check = Check(rusqlite::Connection::open_in_memory().unwrap());
        visit_tables(&mut check).unwrap();
    }

    #[test]
    fn every_table_and_checkpoint_has_its_ddl_on_both_backends() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let names: Vec<&str> = all_tables().map(Table::name).collect();
            assert_eq!(
                names,
                [
                    "rm_checkpoints",
                    "rm_tenants",
                    "rm_signing_keys",
                    "rm_api_keys",
                    "rm_users",
                    "rm_mfa",
                    "rm_webauthn_policies",
                    "rm_invitations",
                    "rm_emails",
                    "rm_credentials",
                    "rm_vault_secrets",
                    "rm_audit"
                ]
            );
            for table in all_tables() {
                let statements: Vec<String> = ddl(dialect, table).all().collect();
                assert!(
                    statements[0]
                        .starts_with(&format!("CREATE TABLE IF NOT EXISTS {} (", table.name())),
                    "{statements:?}"
                );
            }
        }
    }
}
