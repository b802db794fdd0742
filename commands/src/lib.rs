//! Tessera's write side: command handlers and the cryptography they need.
//!
//! A command arrives from the API with the caller's [`EventMetadata`]; the [`CommandService`]
//! loads the aggregate's stream from the event log, lets the pure `tessera-domain` decide, and
//! appends the events atomically with an expected version, retrying on conflicts. Time, ids,
//! key material and secrets are produced here (through the injected [`Clock`] and [`IdGen`] and
//! the [`crypto`] module) and handed to the domain inside commands.
//!
//! This crate never speaks HTTP and never reads read models: uniqueness and every other rule
//! are decided from the log itself.
//!
//! # Layout
//! - [`service`]: [`CommandService`], its inputs and outputs, the retry loop.
//! - [`crypto`]: master key, HKDF-derived sub-keys, sealing, secret hashing, signing keys,
//!   checkpoint signing.
//! - [`clock`]: the injected time and id sources.
//!
//! [`EventMetadata`]: tessera_event_schemas::EventMetadata

pub mod clock;
pub mod crypto;
pub mod service;

pub use clock::{Clock, FixedClock, IdGen, SystemClock, SystemIds};
pub use service::{
    ActivateTenant, CancelTenant, CommandService, CreateTenant, Created, IssueApiKey, IssuedApiKey,
    Outcome, RecordAudit, RegeneratedSecret, RegisterClient, RegisteredClient, RotatedKey,
    UpdateTenant,
};

use tessera_domain::DomainError;

/// Why a command did not take effect. Nothing was appended in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused the command (400 or 409, depending on the rule).
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The aggregate the command addresses does not exist (404).
    #[error("not found")]
    NotFound,
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
