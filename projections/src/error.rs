//! The errors this crate hands its callers: one for reads, one for projecting.
//!
//! Read errors are what a query caller acts on (retry later, or report a broken row); they
//! carry text rather than sqlx or rusqlite types so that callers depend on neither.

use tessera_event_log::LogError;
use tessera_event_schemas::DecodeError;

/// Why a read-model query (or write) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database could not be reached or refused the statement; worth retrying.
    #[error("read store unavailable: {0}")]
    Unavailable(String),
    /// A stored row does not decode: the read model needs a rebuild.
    #[error("read model row is unreadable: {0}")]
    Corrupt(String),
    /// A pagination cursor that this store did not hand out.
    #[error("invalid pagination cursor")]
    InvalidCursor,
}

impl From<sqlx::Error> for ReadError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. } => ReadError::Corrupt(error.to_string()),
            other => ReadError::Unavailable(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for ReadError {
    fn from(error: rusqlite::Error) -> Self {
        match error {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnName(_)
            | rusqlite::Error::InvalidColumnType(..) => ReadError::Corrupt(error.to_string()),
            other => ReadError::Unavailable(other.to_string()),
        }
    }
}

/// Why projecting (live or in a rebuild) stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] ReadError),
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// The log holds an event this build cannot decode (a newer type or version). Projecting
    /// stops just before it rather than skipping it, so no read model silently misses history.
    #[error("event at position {position} cannot be decoded: {source}")]
    Undecodable {
        position: u64,
        #[source]
        source: DecodeError,
    },
}

/// [`crate::ProjectionRuntime::wait_for`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("read models reached position {projected}, not {wanted}, in time")]
pub struct WaitTimeout {
    pub wanted: u64,
    pub projected: u64,
}
