//! [`CommandError`]: the outcomes of a command a caller acts on, and the one place where the
//! event log's and the crypto module's errors become them.
//!
//! The API maps each variant to a response; nothing here knows HTTP.

use tessera_domain::DomainError;
use tessera_event_log::{AppendError, LogError};

use tessera_crypto::CryptoError;

/// Why a command did not take effect. Nothing was appended in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused the command (400 or 409, depending on the rule).
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The aggregate the command addresses does not exist (404). `kind` names the aggregate
    /// (`"tenant"`, `"api_key"`, `"oauth_client"`, ...) and `id` the instance.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// Version conflicts persisted through every retry (409; the caller may try again).
    #[error("the resource is being changed concurrently; try again")]
    Concurrency,
    /// The event log could not be reached (503).
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a corrupt stored event, a crypto failure, an invalid append (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommandError {
    /// The aggregate `kind` with id `id` does not exist.
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        CommandError::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

/// An append the log refused. A version conflict that reaches a caller is one the retry loop
/// gave up on (the loop inspects conflicts itself before converting), so it is `Concurrency`.
impl From<AppendError> for CommandError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Conflict { .. } => CommandError::Concurrency,
            AppendError::Unavailable(cause) => CommandError::Unavailable(cause),
            other @ (AppendError::IdempotencyMismatch { .. } | AppendError::Invalid(_)) => {
                CommandError::Internal(other.to_string())
            }
        }
    }
}

/// A read the log could not serve: an unreachable store is `Unavailable`, an unreadable event
/// `Internal`.
impl From<LogError> for CommandError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Unavailable(cause) => CommandError::Unavailable(cause),
            LogError::Corrupt(cause) => CommandError::Internal(cause),
        }
    }
}

/// Key generation, sealing or signing failed: never the caller's fault.
impl From<CryptoError> for CommandError {
    fn from(error: CryptoError) -> Self {
        CommandError::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_log::ExpectedVersion;

    use super::*;

    #[test]
    fn log_errors_become_the_command_outcome_a_caller_acts_on() {
        let conflict = AppendError::Conflict {
            stream_id: "s".into(),
            expected: ExpectedVersion::NoStream,
            actual: 1,
        };
        assert!(matches!(
            CommandError::from(conflict),
            CommandError::Concurrency
        ));
        assert!(matches!(
            CommandError::from(AppendError::Unavailable("down".into())),
            CommandError::Unavailable(cause) if cause == "down"
        ));
        assert!(matches!(
            CommandError::from(AppendError::Invalid("empty".into())),
            CommandError::Internal(cause) if cause == "invalid append: empty"
        ));
        assert!(matches!(
            CommandError::from(LogError::Unavailable("down".into())),
            CommandError::Unavailable(cause) if cause == "down"
        ));
        assert!(matches!(
            CommandError::from(LogError::Corrupt("bad row".into())),
            CommandError::Internal(cause) if cause == "bad row"
        ));
    }

    #[test]
    fn not_found_names_the_aggregate_and_its_id() {
        let error = CommandError::not_found("oauth_client", "c-1");
        assert_eq!(error.to_string(), "oauth_client c-1 not found");
    }
}
