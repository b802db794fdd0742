//! The canonical snapshot: a dump of every read-model table and checkpoint that does not
//! depend on the backend, for comparing a live store with a rebuild (`check-read-models`, the
//! read-model tests) and pinning read models in golden tests.
//!
//! Every registered table is dumped the same way, column by column as its `TableWrite`
//! declares them: TEXT as strings, BIGINT as numbers, flags as booleans (BOOLEAN on PostgreSQL,
//! INTEGER on SQLite), JSON columns parsed; rows sorted by their key columns' bytes. The audit
//! trail is dumped as the API shows its entries, sorted by position.

use serde_json::{Map, Value, json};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::decode::{get_flag, parse_json};
use crate::error::ReadError;
use crate::sql::{Kind, Role, TableWrite};
use crate::store::ReadStore;
use crate::tables::{Registered, TableProjection, TableVisitor, audit_trail, visit_tables};

impl ReadStore {
    /// A canonical dump of every read-model table and checkpoint, independent of the backend:
    /// rows sorted by key bytes, JSON columns parsed, flags as booleans. Two stores that
    /// projected the same log compare equal.
    pub async fn snapshot(&self) -> Result<Value, ReadError> {
        let mut snapshot = Map::new();

        let mut checkpoints = Map::new();
        for row in sqlx::query("SELECT projection, position FROM rm_checkpoints")
            .fetch_all(&self.pool())
            .await?
        {
            let name: String = row.try_get("projection")?;
            let position: i64 = row.try_get("position")?;
            checkpoints.insert(name, json!(position));
        }
        snapshot.insert("rm_checkpoints".into(), Value::Object(checkpoints));

        // The statements first (no table is generic over the fetch), then each table's rows.
        struct Tables(Vec<&'static TableWrite>);
        impl TableVisitor for Tables {
            type Error = std::convert::Infallible;
            fn visit<T: Registered>(&mut self) -> Result<(), Self::Error> {
                self.0.push(<T as TableProjection>::WRITE);
                Ok(())
            }
        }
        let mut tables = Tables(Vec::new());
        let Ok(()) = visit_tables(&mut tables);
        for table in tables.0 {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {} FROM {}",
                table.column_list(),
                table.table
            )))
            .fetch_all(&self.pool())
            .await?;
            let mut dumped = rows
                .iter()
                .map(|row| dump_row(table, row))
                .collect::<Result<Vec<_>, _>>()?;
            snapshot.insert(table.table.into(), sorted(&mut dumped));
        }

        let mut audit = Vec::new();
        for entry in audit_trail::all_rows(self).await? {
            let value = serde_json::to_value(&entry)
                .map_err(|e| ReadError::Corrupt(format!("rm_audit: {e}")))?;
            audit.push((entry.position, value));
        }
        snapshot.insert(audit_trail::TABLE.into(), sorted(&mut audit));
        Ok(Value::Object(snapshot))
    }
}

/// One row of `table` as a JSON object of its columns, and its key columns' text (to sort by).
fn dump_row(table: &TableWrite, row: &AnyRow) -> Result<(Vec<String>, Value), ReadError> {
    let mut key = Vec::new();
    let mut object = Map::new();
    for column in table.columns {
        let name = column.name;
        let value = match column.kind {
            Kind::Text => json!(row.try_get::<Option<String>, _>(name)?),
            Kind::Int => json!(row.try_get::<Option<i64>, _>(name)?),
            Kind::Flag => json!(get_flag(row, name)?),
            Kind::Json => parse_json(&row.try_get::<String, _>(name)?)?,
        };
        if column.role == Role::Key {
            key.push(value.as_str().unwrap_or_default().to_owned());
        }
        object.insert(name.into(), value);
    }
    Ok((key, Value::Object(object)))
}

/// Rows in key order: sorted here rather than by ORDER BY, whose text collation depends on the
/// backend.
fn sorted<K: Ord>(rows: &mut Vec<(K, Value)>) -> Value {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(rows.drain(..).map(|(_, row)| row).collect())
}
