//! `rm_audit`: the audit trail's table, one insert-only row per event (its pure part, the row
//! of an event with secrets redacted, is [`crate::audit`]).
//!
//! Not a [`super::TableProjection`]: a row is written once, when its event is projected, and
//! never loaded back, cached, updated or deleted. The batch fold produces the rows directly
//! (`fold::Fold::take_audit`), and the writers insert them (or, into a rebuild's empty table on
//! PostgreSQL, `COPY` them) with the statements and cells here.

use std::borrow::Cow;

use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use tessera_event_schemas::primitives::{Timestamp, canonical_uuid};

use crate::decode::{Columns, parse_json, parse_uuid, to_u64};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, to_i64, values_list};
use crate::store::{Dialect, MAX_AUDIT_PAGE, ReadStore};
use crate::views::{AuditFilter, AuditRow, AuditView, Page};

/// The audit projection's row in `rm_checkpoints`.
pub(crate) const NAME: &str = "audit";
pub(crate) const TABLE: &str = "rm_audit";

/// Every column, in the order of [`cells`].
pub(crate) const COLUMNS: &str = "position, event_id, tenant_id, event_type, action, \
     actor_kind, actor_id, actor_name, target_type, target_id, target_name, product, project_id, \
     correlation_id, source_ip, user_agent, recorded_at, summary";
pub(crate) const COLUMN_COUNT: usize = 18;

/// The `CREATE` statements of `rm_audit`.
pub(crate) fn ddl(dialect: Dialect) -> TableDdl {
    let key = dialect.key_type();
    // Ids are 16 bytes on SQLite where they are UUIDs (`Cell::Uuid`; issue 24): the event,
    // tenant, project and correlation ids, and the actor's and target's ids when they are one.
    let id = dialect.id_type();
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
    // Insert-only, keyed by global position. Each filter has an index that ends in the
    // position, so a filtered page is an index range scan in the listing's order; the time
    // filters ride on whichever of them applies (or on the key).
    let audit = TableDdl::new(format!(
        "CREATE TABLE IF NOT EXISTS rm_audit (\
            position {position_key}, \
            event_id {id} NOT NULL, \
            tenant_id {id} NOT NULL, \
            event_type TEXT NOT NULL, \
            action {key}, \
            actor_kind TEXT NOT NULL, \
            actor_id {id} NOT NULL, \
            actor_name TEXT, \
            target_type TEXT, \
            target_id {id}, \
            target_name TEXT, \
            product {key}, \
            project_id {id}, \
            correlation_id {id} NOT NULL, \
            source_ip TEXT, \
            user_agent TEXT, \
            recorded_at BIGINT NOT NULL, \
            summary TEXT NOT NULL)"
    ))
    // `action` is NULL when it is the event type (every event but `audit.recorded`), which is
    // stored beside it: a token grant's row is then a dozen bytes shorter (issue 24).
    // One secondary index besides the key: every audit row is written on the token endpoint's
    // hot path (one per grant), and each index costs about as much as the row. Queries by
    // tenant use it; the other filters walk positions newest first (see BENCHMARKS.md).
    .lookup("CREATE INDEX IF NOT EXISTS rm_audit_by_tenant ON rm_audit (tenant_id, position)");
    match audit_key {
        Some(key) => audit.lookup(key),
        None => audit,
    }
}

/// A plain insert of `rows` audit rows: an audit row is written once, when its event is
/// projected, and never read back or updated. `DO NOTHING` makes re-applying a batch whose
/// commit was lost harmless (the checkpoint would have committed with the rows anyway).
pub(crate) fn insert(dialect: Dialect, rows: usize) -> String {
    format!(
        "INSERT INTO rm_audit ({COLUMNS}) VALUES {} ON CONFLICT (position) DO NOTHING",
        values_list(dialect, rows, COLUMN_COUNT),
    )
}

/// Deletes the expired rows among the oldest `$2` (by position) of those recorded before `$1`:
/// a range scan of the key from its start, whichever the backend, instead of a search of the
/// whole table for old times. Positions follow the log's order and times the clock, so the
/// oldest rows are the expired ones; a row a skewed clock placed out of order among them waits
/// for a later sweep.
/// (`$1` comes first in the text: SQLite numbers `$n` parameters in order of appearance.)
pub(crate) const DELETE_EXPIRED: &str = "DELETE FROM rm_audit WHERE recorded_at < $1 \
     AND position IN (SELECT position FROM rm_audit ORDER BY position LIMIT $2)";

/// `COPY` of every column, in binary format (PostgreSQL).
pub(crate) fn copy_statement() -> String {
    format!("COPY {TABLE} ({COLUMNS}) FROM STDIN (FORMAT binary)")
}

/// A row's values, in the order of [`COLUMNS`].
pub(crate) fn cells(row: &AuditRow) -> Vec<Cell<'_>> {
    let cells = vec![
        Cell::int(to_i64(row.position)),
        Cell::Uuid(Some(row.event_id)),
        Cell::Uuid(Some(row.tenant_id)),
        Cell::text(row.event_type.as_str()),
        Cell::Text((row.action != row.event_type).then_some(Cow::Borrowed(row.action.as_str()))),
        Cell::text(row.actor_kind.as_str()),
        Cell::id(Some(row.actor_id.as_str())),
        Cell::optional(row.actor_name.as_deref()),
        Cell::optional(row.target_type.as_deref()),
        Cell::id(row.target_id.as_deref()),
        Cell::optional(row.target_name.as_deref()),
        Cell::optional(row.product.as_deref()),
        Cell::Uuid(row.project_id),
        Cell::id(Some(row.correlation_id.as_str())),
        Cell::optional(row.source_ip.as_deref()),
        Cell::optional(row.user_agent.as_deref()),
        Cell::int(row.recorded_at.as_micros()),
        Cell::text(row.summary.as_str()),
    ];
    debug_assert_eq!(cells.len(), COLUMN_COUNT);
    cells
}

/// A stored audit row, its summary parsed.
pub(crate) fn from_row(row: &impl Columns) -> Result<AuditView, ReadError> {
    Ok(AuditView {
        position: to_u64(row.int("position")?)?,
        event_id: parse_uuid(&row.id("event_id")?)?,
        tenant_id: parse_uuid(&row.id("tenant_id")?)?,
        action: row
            .opt_text("action")?
            .map_or_else(|| row.text("event_type"), Ok)?,
        event_type: row.text("event_type")?,
        actor_kind: row.text("actor_kind")?,
        actor_id: row.id("actor_id")?,
        actor_name: row.opt_text("actor_name")?,
        target_type: row.opt_text("target_type")?,
        target_id: row.opt_id("target_id")?,
        target_name: row.opt_text("target_name")?,
        product: row.opt_text("product")?,
        project_id: row
            .opt_id("project_id")?
            .map(|id| parse_uuid(&id))
            .transpose()?,
        correlation_id: row.id("correlation_id")?,
        source_ip: row.opt_text("source_ip")?,
        user_agent: row.opt_text("user_agent")?,
        recorded_at: Timestamp::from_micros(row.int("recorded_at")?),
        summary: parse_json(&row.text("summary")?)?,
    })
}

/// Every row not past the store's retention, in no particular order: for the canonical
/// snapshot (see `retention`).
pub(crate) async fn all_rows(store: &ReadStore) -> Result<Vec<AuditView>, ReadError> {
    let since = store.audit_cutoff().map_or(i64::MIN, Timestamp::as_micros);
    let rows: Vec<AnyRow> = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM {TABLE} WHERE recorded_at >= $1"
    )))
    .bind(since)
    .fetch_all(&store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

impl ReadStore {
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
        let mut sql = format!("SELECT {COLUMNS} FROM rm_audit WHERE 1 = 1");
        let mut n = 0;
        let mut id_binds: Vec<IdBind<'_>> = Vec::new();
        let tenant = filter.tenant_id.map(|id| id.to_string());
        // An id matches in the form it is stored in (see `Cell::id`): a canonical UUID as its
        // 16 bytes on SQLite, anything else as text, so each filter still matches exactly the
        // rows whose text it equals.
        for (column, value) in [
            (
                "tenant_id",
                tenant.as_deref().map(|id| IdBind::id(self.dialect, id)),
            ),
            (
                "actor_id",
                filter
                    .actor_id
                    .as_deref()
                    .map(|id| IdBind::id(self.dialect, id)),
            ),
            (
                "COALESCE(action, event_type)",
                filter.action.as_deref().map(IdBind::Text),
            ),
            (
                "target_id",
                filter
                    .target_id
                    .as_deref()
                    .map(|id| IdBind::id(self.dialect, id)),
            ),
            ("product", filter.product.as_deref().map(IdBind::Text)),
        ] {
            if let Some(value) = value {
                n += 1;
                sql.push_str(&format!(" AND {column} = ${n}"));
                id_binds.push(value);
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
        for value in id_binds {
            query = match value {
                IdBind::Text(text) => query.bind(text),
                IdBind::Bytes(bytes) => query.bind(bytes),
            };
        }
        for value in int_binds {
            query = query.bind(value);
        }
        let rows = match filter.tenant_id {
            Some(tenant) => self.tenant_rows(tenant, query).await?,
            None => query.fetch_all(&self.pool()).await?,
        };
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            items.last().map(|last| audit_cursor(last.position))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Deletes up to `batch` audit rows recorded before `cutoff`, oldest first, in one
    /// transaction (see [`DELETE_EXPIRED`]); returns how many. On SQLite it runs on the
    /// projector's connection between two batches, so neither waits on the other's lock.
    pub async fn delete_expired_audit(
        &self,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<usize, ReadError> {
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        if let Some(writer) = self.sqlite_writer() {
            return tokio::task::spawn_blocking(move || {
                writer.delete_expired_audit(cutoff.as_micros(), limit)
            })
            .await
            .map_err(|e| ReadError::Unavailable(format!("the audit sweep task failed: {e}")))?;
        }
        let done = sqlx::query(DELETE_EXPIRED)
            .bind(cutoff.as_micros())
            .bind(limit)
            .execute(&self.pool())
            .await?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

    /// The audit entry of the event at `position`, once the audit projection has reached it.
    pub async fn audit_entry(&self, position: u64) -> Result<Option<AuditView>, ReadError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rm_audit WHERE position = $1"
        )))
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool())
        .await?;
        row.map(|row| from_row(&row)).transpose()
    }
}

/// A filter's value, in the form its column stores it.
enum IdBind<'a> {
    Text(&'a str),
    /// A UUID's 16 bytes (SQLite only).
    Bytes(Vec<u8>),
}

impl<'a> IdBind<'a> {
    /// An id as `Cell::id` stores it in a column of `Dialect::id_type`.
    fn id(dialect: Dialect, text: &'a str) -> Self {
        match (dialect, canonical_uuid(text)) {
            (Dialect::Sqlite, Some(id)) => IdBind::Bytes(id.as_bytes().to_vec()),
            _ => IdBind::Text(text),
        }
    }
}

/// The audit listing's cursor: the position of a page's last (oldest) entry, versioned like
/// the other listings' cursors.
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_column_list_names_every_cell() {
        assert_eq!(COLUMNS.split(", ").count(), COLUMN_COUNT);
    }
}
