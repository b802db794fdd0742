//! Reading stored rows back: typed column access over whichever driver fetched the row, and
//! the checks that turn a malformed value into [`ReadError::Corrupt`].
//!
//! Each table decodes its rows once (`TableProjection::from_row`), over [`Columns`], whether the
//! row came from a query (sqlx's `Any` pool), the PostgreSQL writer's loads (sqlx's native
//! PostgreSQL driver) or the SQLite writer's (rusqlite).

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::error::ReadError;

/// Typed column access for the row decoders, over a sqlx row (reads, and writes on
/// PostgreSQL) or a rusqlite row (the SQLite projector's loads): one decoder per table, whoever
/// fetched the row.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, ReadError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, ReadError>;
    fn int(&self, column: &str) -> Result<i64, ReadError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, ReadError>;
    /// An id column (`Dialect::id_type`) as the text it was written from: a 16-byte value
    /// (SQLite's form of a UUID, `sql::Cell::Uuid`) in its canonical spelling, text as it is.
    fn opt_id(&self, column: &str) -> Result<Option<String>, ReadError>;

    fn id(&self, column: &str) -> Result<String, ReadError> {
        self.opt_id(column)?
            .ok_or_else(|| ReadError::Corrupt(format!("{column} is NULL")))
    }
}

/// The canonical text of a UUID stored as its 16 bytes.
fn id_from_bytes(bytes: &[u8]) -> Result<String, ReadError> {
    Uuid::from_slice(bytes)
        .map(|id| id.hyphenated().to_string())
        .map_err(|e| ReadError::Corrupt(format!("bad 16-byte id: {e}")))
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
            fn opt_id(&self, column: &str) -> Result<Option<String>, ReadError> {
                IdColumn::opt_id(self, column)
            }
        }
    };
}

// The store's reads, and the PostgreSQL writer's loads.
sqlx_columns!(AnyRow);
sqlx_columns!(sqlx::postgres::PgRow);

impl IdColumn for AnyRow {
    fn opt_id(&self, column: &str) -> Result<Option<String>, ReadError> {
        use sqlx::ValueRef as _;
        // By the value's own type: on SQLite one column holds either form.
        let is_blob = {
            let raw = self.try_get_raw(column)?;
            !raw.is_null() && raw.type_info().kind() == sqlx::any::AnyTypeInfoKind::Blob
        };
        if is_blob {
            return id_from_bytes(&self.try_get::<Vec<u8>, _>(column)?).map(Some);
        }
        Ok(self.try_get(column)?)
    }
}

impl IdColumn for sqlx::postgres::PgRow {
    fn opt_id(&self, column: &str) -> Result<Option<String>, ReadError> {
        // An id column is TEXT on PostgreSQL.
        Ok(self.try_get(column)?)
    }
}

/// The part of [`Columns`] that differs between the two sqlx row types.
trait IdColumn {
    fn opt_id(&self, column: &str) -> Result<Option<String>, ReadError>;
}

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
    fn opt_id(&self, column: &str) -> Result<Option<String>, ReadError> {
        match self.get_ref(column)? {
            rusqlite::types::ValueRef::Blob(bytes) => id_from_bytes(bytes).map(Some),
            _ => Ok(self.get(column)?),
        }
    }
}

/// A sealed value stored as base64 text (`nonce || ciphertext || tag`) in `table.column`, or
/// `None` when the column is null.
pub(crate) fn sealed_column(
    row: &impl Columns,
    table: &str,
    column: &str,
) -> Result<Option<Vec<u8>>, ReadError> {
    use base64::Engine as _;
    row.opt_text(column)?
        .map(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| ReadError::Corrupt(format!("{table}.{column}: {e}")))
        })
        .transpose()
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, ReadError> {
    Uuid::parse_str(text).map_err(|e| ReadError::Corrupt(format!("bad id {text}: {e}")))
}

pub(crate) fn parse_json(text: &str) -> Result<serde_json::Value, ReadError> {
    serde_json::from_str(text).map_err(|e| ReadError::Corrupt(format!("bad JSON column: {e}")))
}

/// A flag column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
pub(crate) fn get_flag(row: &AnyRow, column: &str) -> Result<bool, ReadError> {
    match row.try_get::<bool, _>(column) {
        Ok(flag) => Ok(flag),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

pub(crate) fn to_u64(value: i64) -> Result<u64, ReadError> {
    u64::try_from(value)
        .map_err(|_| ReadError::Corrupt(format!("negative position or count {value}")))
}
