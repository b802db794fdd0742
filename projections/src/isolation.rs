//! Tenant isolation inside PostgreSQL, as defence in depth behind the queries' own filters:
//! row-level security on every read-model table that has a `tenant_id` column.
//!
//! - Each such table has RLS enabled and one policy, `tenant_isolation`, for the role
//!   [`TENANT_ROLE`]: a row is visible only when its `tenant_id` is the transaction's
//!   `tessera.tenant_id` setting. Without the setting nothing is visible.
//! - A query made for one tenant ([`ReadStore::tenant_rows`], [`ReadStore::tenant_row`]) runs in
//!   a transaction that switches to that role and sets the tenant, both transaction-local
//!   (`set_config(..., true)`), so a pooled connection goes back clean at commit or rollback.
//!   A query that forgets its `tenant_id = $n` filter still sees only that tenant's rows.
//! - The platform's own work (the projector's writes, rebuilds, the tenants' listing, the
//!   outbox, key lookups by hash) runs as the connecting user, the tables' owner, which RLS
//!   does not restrict (the tables are not `FORCE`d).
//!
//! The role is created on first use (`NOLOGIN`, granted to the connecting user, `SELECT` on the
//! read models and `USAGE` on their schema). That needs the right to create roles; a user
//! without it gets a warning at start and the queries' filters alone, as on SQLite, where one
//! file serves one deployment and there are no roles.

use std::sync::atomic::Ordering;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use uuid::Uuid;

use crate::error::ReadError;
use crate::store::{Dialect, ReadStore};

/// The role tenant-scoped queries run as. Cluster-wide, like every PostgreSQL role: every
/// database of the cluster that Tessera uses shares it.
pub(crate) const TENANT_ROLE: &str = "tessera_tenant";

/// The transaction-local setting that names the tenant a query is for.
const TENANT_SETTING: &str = "tessera.tenant_id";

/// The policy's name on every table.
const POLICY: &str = "tenant_isolation";

/// SQLSTATEs of a role created by another process at the same moment (`pg_authid`'s unique
/// index, or the "already exists" check), which is as good as having created it.
const RACED: [&str; 2] = ["23505", "42710"];

/// Creates [`TENANT_ROLE`] if it is missing and grants it to the connecting user. `Ok(false)`
/// when this user may not: isolation is then off, with a warning.
pub(crate) async fn ensure_role(store: &ReadStore) -> Result<bool, ReadError> {
    let statements = [
        format!(
            "DO $$ BEGIN \
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{TENANT_ROLE}') THEN \
                    CREATE ROLE {TENANT_ROLE} NOLOGIN; \
                END IF; \
             END $$"
        ),
        format!("GRANT {TENANT_ROLE} TO CURRENT_USER"),
        format!(
            "DO $$ BEGIN \
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO {TENANT_ROLE}', current_schema()); \
             END $$"
        ),
    ];
    for statement in statements {
        // Two attempts: a process opening another database of the same cluster may create the
        // role between this one's check and its `CREATE`.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match sqlx::query(AssertSqlSafe(statement.clone()))
                .execute(&store.pool())
                .await
            {
                Ok(_) => break,
                Err(sqlx::Error::Database(e))
                    if attempt < 2 && e.code().is_some_and(|code| RACED.contains(&&*code)) => {}
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
                    tracing::warn!(
                        error = %e,
                        "tenant isolation in the database is off: the database user may not \
                         create or grant the role {TENANT_ROLE}; create it (NOLOGIN), grant it \
                         to this user and restart (see README.md, \"Tenant isolation in the \
                         database\")"
                    );
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(true)
}

/// Enables row-level security with the tenant policy on every read-model table of the current
/// schema that has a `tenant_id` column, and lets [`TENANT_ROLE`] read them. Runs in the
/// transaction that created or recreated the tables, and changes only what is missing: altering
/// a table in use would take its strongest lock against the projector's writes at every start.
/// With `only`, that table alone (a rebuild recreates tables one projection at a time, in
/// parallel transactions, which must not lock each other's tables).
pub(crate) async fn isolate_tables(
    tx: &mut Transaction<'static, Any>,
    only: Option<&str>,
) -> Result<(), ReadError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT c.relname::text AS name, \
                c.relrowsecurity AS secured, \
                EXISTS (SELECT 1 FROM pg_policy p \
                        WHERE p.polrelid = c.oid AND p.polname = '{POLICY}') AS policed, \
                has_table_privilege('{TENANT_ROLE}', c.oid, 'SELECT') AS readable \
         FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() \
         WHERE c.relkind = 'r' AND c.relname LIKE 'rm\\_%' \
           AND ($1::text IS NULL OR c.relname = $1) \
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                       AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
         ORDER BY c.relname"
    )))
    .bind(only)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        let table: String = row.try_get("name")?;
        let mut statements = Vec::new();
        if !row.try_get::<bool, _>("secured")? {
            statements.push(format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"));
        }
        if !row.try_get::<bool, _>("policed")? {
            statements.push(format!(
                "CREATE POLICY {POLICY} ON {table} FOR SELECT TO {TENANT_ROLE} \
                 USING (tenant_id = current_setting('{TENANT_SETTING}', true))"
            ));
        }
        if !row.try_get::<bool, _>("readable")? {
            statements.push(format!("GRANT SELECT ON {table} TO {TENANT_ROLE}"));
        }
        for statement in statements {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

impl ReadStore {
    /// Whether tenant-scoped queries run under row-level security (PostgreSQL with the role).
    pub fn tenant_isolation(&self) -> bool {
        self.dialect == Dialect::Postgres && self.isolation.load(Ordering::Relaxed)
    }

    /// The rows `query` returns for `tenant` only: on PostgreSQL, under the tenant policy.
    pub(crate) async fn tenant_rows<'q>(
        &self,
        tenant: Uuid,
        query: Query<'q, Any, AnyArguments>,
    ) -> Result<Vec<AnyRow>, ReadError> {
        if !self.tenant_isolation() {
            return Ok(query.fetch_all(&self.pool()).await?);
        }
        let mut tx = self.as_tenant(tenant).await?;
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The row `query` returns for `tenant`, if any: on PostgreSQL, under the tenant policy.
    pub(crate) async fn tenant_row<'q>(
        &self,
        tenant: Uuid,
        query: Query<'q, Any, AnyArguments>,
    ) -> Result<Option<AnyRow>, ReadError> {
        if !self.tenant_isolation() {
            return Ok(query.fetch_optional(&self.pool()).await?);
        }
        let mut tx = self.as_tenant(tenant).await?;
        let row = query.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// A transaction running as [`TENANT_ROLE`] for `tenant`: one statement sets both, and both
    /// end with the transaction.
    async fn as_tenant(&self, tenant: Uuid) -> Result<Transaction<'static, Any>, ReadError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "SELECT 1 AS ok FROM (SELECT set_config('role', '{TENANT_ROLE}', true), \
             set_config('{TENANT_SETTING}', $1, true)) AS scoped"
        )))
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }
}

#[cfg(test)]
mod tests;
