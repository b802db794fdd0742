//! The SQL both writers share: a table's columns ([`TableWrite`]), the upsert and delete
//! statements built from them, bound values ([`Cell`]), and how many rows or keys go into one
//! statement.
//!
//! A table declares its columns once, each with its kind and role ([`Column`]); the upsert
//! (which columns it updates), the delete (by the key columns), PostgreSQL's `COPY` and the
//! canonical snapshot all read that one list, so they cannot disagree on what a row holds.

use std::borrow::Cow;

use tessera_event_schemas::primitives::canonical_uuid;

use crate::error::ReadError;
use crate::store::Dialect;

/// Most keys in one `IN (...)` list.
pub(crate) const MAX_KEYS_PER_QUERY: usize = 512;
/// Most rows in one multi-row upsert (times at most 13 columns: well under both backends'
/// bind-parameter limits).
pub(crate) const MAX_ROWS_PER_UPSERT: usize = 256;
/// Most audit rows in one multi-row insert (18 columns each: 4,608 parameters).
pub(crate) const MAX_AUDIT_ROWS_PER_INSERT: usize = 256;

/// What a column holds, as the canonical snapshot reads it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TEXT (an id, a name, an enum's text).
    Text,
    /// BIGINT (a time in microseconds, a count, a version).
    Int,
    /// BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
    Flag,
    /// A JSON document, stored as TEXT.
    Json,
}

/// How an upsert treats a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Part of the table's key: what an upsert conflicts on and a delete matches.
    Key,
    /// Never changes once the row exists: left out of the upsert's update, so that SQLite
    /// can skip the indexes on it.
    Fixed,
    /// Overwritten by every upsert.
    Updated,
}

/// One column of a read-model table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) role: Role,
}

impl Column {
    pub(crate) const fn key(name: &'static str) -> Self {
        Self {
            name,
            kind: Kind::Text,
            role: Role::Key,
        }
    }

    pub(crate) const fn fixed(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            role: Role::Fixed,
        }
    }

    pub(crate) const fn updated(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            role: Role::Updated,
        }
    }
}

/// A table's write statements, built from its columns, shared by both writers so that they
/// cannot disagree on what a row holds.
#[derive(Debug)]
pub(crate) struct TableWrite {
    pub(crate) table: &'static str,
    /// Every column, in the order a row's cells come.
    pub(crate) columns: &'static [Column],
}

impl TableWrite {
    fn names(&self, role: Option<Role>) -> impl Iterator<Item = &'static str> + '_ {
        self.columns
            .iter()
            .filter(move |column| role.is_none_or(|role| column.role == role))
            .map(|column| column.name)
    }

    /// The column names, comma-separated, in order.
    pub(crate) fn column_list(&self) -> String {
        self.names(None).collect::<Vec<_>>().join(", ")
    }

    /// The key columns, in order.
    pub(crate) fn key(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.names(Some(Role::Key))
    }

    /// A multi-row upsert of `rows` rows that, on conflict, overwrites every column but the key
    /// and the fixed ones.
    pub(crate) fn upsert(&self, dialect: Dialect, rows: usize) -> String {
        let updates: Vec<String> = self
            .names(Some(Role::Updated))
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
            self.table,
            self.column_list(),
            values_list(dialect, rows, self.columns.len()),
            self.key().collect::<Vec<_>>().join(", "),
            updates.join(", "),
        )
    }

    /// `DELETE ... WHERE` the key columns (numbered placeholders on PostgreSQL, anonymous ones on
    /// SQLite).
    pub(crate) fn delete(&self, dialect: Dialect) -> String {
        let conditions: Vec<String> = self
            .key()
            .enumerate()
            .map(|(i, column)| match dialect {
                Dialect::Sqlite => format!("{column} = ?"),
                Dialect::Postgres => format!("{column} = ${}", i + 1),
            })
            .collect();
        format!(
            "DELETE FROM {} WHERE {}",
            self.table,
            conditions.join(" AND ")
        )
    }
}

/// One bound value of a row write, borrowing the row's text where it can. Typed even when
/// NULL: PostgreSQL rejects a NULL bound as TEXT into a BIGINT column.
#[derive(Debug)]
pub(crate) enum Cell<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    /// BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
    Flag(bool),
    /// An id that is a UUID, in a column of [`Dialect::id_type`]: its 16 bytes on SQLite, its
    /// canonical text on PostgreSQL. Read back with `decode::Columns::id`, it is the text it
    /// was made from ([`Cell::id`]).
    Uuid(Option<uuid::Uuid>),
}

impl<'a> Cell<'a> {
    pub(crate) fn text(value: impl Into<Cow<'a, str>>) -> Self {
        Self::Text(Some(value.into()))
    }

    /// An id in a column of [`Dialect::id_type`]: [`Cell::Uuid`] when the text is a UUID in
    /// its canonical spelling (`canonical_uuid`), so that it reads back as the same text,
    /// and text otherwise.
    pub(crate) fn id(value: Option<&'a str>) -> Self {
        match value {
            Some(text) => match canonical_uuid(text) {
                Some(id) => Self::Uuid(Some(id)),
                None => Self::Text(Some(Cow::Borrowed(text))),
            },
            None => Self::Text(None),
        }
    }

    pub(crate) fn optional(value: Option<&'a str>) -> Self {
        Self::Text(value.map(Cow::Borrowed))
    }

    pub(crate) fn int(value: i64) -> Self {
        Self::Int(Some(value))
    }

    /// The same value, owning its text (to outlive the row it was encoded from).
    pub(crate) fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Text(value) => Cell::Text(value.map(|text| Cow::Owned(text.into_owned()))),
            Cell::Int(value) => Cell::Int(value),
            Cell::Flag(value) => Cell::Flag(value),
            Cell::Uuid(value) => Cell::Uuid(value),
        }
    }
}

impl rusqlite::ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Cell::Text(value) => value.to_sql(),
            Cell::Int(value) => value.to_sql(),
            Cell::Flag(value) => value.to_sql(),
            Cell::Uuid(value) => Ok(rusqlite::types::ToSqlOutput::Borrowed(match value {
                Some(id) => rusqlite::types::ValueRef::Blob(id.as_bytes()),
                None => rusqlite::types::ValueRef::Null,
            })),
        }
    }
}

/// A position, version or count as the BIGINT it is stored as.
pub(crate) fn to_i64(position: u64) -> i64 {
    // Positions and versions are counts of stored events: far below i64::MAX. A use count
    // could only get there through absurd `api_key.used` payloads; it then sticks at the top.
    i64::try_from(position).unwrap_or(i64::MAX)
}

/// A value as the JSON text of a column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, ReadError> {
    // Serializing these plain structs cannot fail; the error path exists only to avoid a panic.
    serde_json::to_string(value).map_err(|e| ReadError::Corrupt(format!("{what}: {e}")))
}

/// Splits `items` into chunks whose lengths are powers of two no larger than `max`. Each table
/// then has only a handful of distinct statement shapes, which all stay in sqlx's
/// per-connection prepared-statement cache instead of being re-prepared per batch.
pub(crate) fn chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let mut rest = items;
    chunk_lengths(items.len(), max)
        .into_iter()
        .map(|length| {
            let (head, tail) = rest.split_at(length);
            rest = tail;
            head
        })
        .collect()
}

/// The lengths [`chunks`] cuts `len` items into.
pub(crate) fn chunk_lengths(len: usize, max: usize) -> Vec<usize> {
    let mut lengths = Vec::new();
    let mut rest = len;
    while rest > 0 {
        let mut size = max.max(1);
        while size > rest {
            size /= 2;
        }
        lengths.push(size);
        rest -= size;
    }
    lengths
}

/// `count` bind parameters numbered from `start`. SQLite gets anonymous `?`s: sqlx looks up
/// every parameter's name while binding, and SQLite's name lookup is a linear scan, which
/// makes binding numbered parameters quadratic (it took most of a multi-row upsert's time).
pub(crate) fn placeholders(dialect: Dialect, start: usize, count: usize) -> String {
    let mut out = String::with_capacity(count * 5);
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        match dialect {
            Dialect::Sqlite => out.push('?'),
            Dialect::Postgres => {
                out.push('$');
                out.push_str(&(start + i).to_string());
            }
        }
    }
    out
}

/// `rows` parenthesized groups of `columns` placeholders, for a multi-row `VALUES`.
pub(crate) fn values_list(dialect: Dialect, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            out.push(',');
        }
        out.push('(');
        out.push_str(&placeholders(dialect, row * columns + 1, columns));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_covering_everything_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let parts = chunks(&items, 256);
        let sizes: Vec<usize> = parts.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![256, 256, 256, 128, 64, 32, 8]);
        let joined: Vec<u32> = parts.concat();
        assert_eq!(joined, items);
        assert!(chunks::<u32>(&[], 256).is_empty());
    }

    #[test]
    fn upsert_sql_updates_every_non_key_column() {
        const FOUR: TableWrite = TableWrite {
            table: "t",
            columns: &[
                Column::key("a"),
                Column::updated("b", Kind::Text),
                Column::updated("c", Kind::Int),
                Column::fixed("d", Kind::Text),
            ],
        };
        assert_eq!(
            FOUR.upsert(Dialect::Postgres, 2),
            "INSERT INTO t (a, b, c, d) VALUES ($1,$2,$3,$4),($5,$6,$7,$8) \
             ON CONFLICT (a) DO UPDATE SET b = excluded.b, c = excluded.c"
        );
        const TWO: TableWrite = TableWrite {
            table: "t",
            columns: &[Column::key("a"), Column::updated("b", Kind::Flag)],
        };
        assert_eq!(
            TWO.upsert(Dialect::Sqlite, 2),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
        );
    }

    #[test]
    fn deletes_match_every_key_column() {
        const TABLE: TableWrite = TableWrite {
            table: "t",
            columns: &[
                Column::key("a"),
                Column::updated("b", Kind::Json),
                Column::key("c"),
            ],
        };
        assert_eq!(
            TABLE.delete(Dialect::Postgres),
            "DELETE FROM t WHERE a = $1 AND c = $2"
        );
        assert_eq!(
            TABLE.delete(Dialect::Sqlite),
            "DELETE FROM t WHERE a = ? AND c = ?"
        );
    }
}
