//! Everything a handler needs, built once at startup and passed with axum's `State`.
//! No globals: tests build their own.

use std::sync::Arc;
use std::time::Duration;

use tessera_commands::{Clock, CommandService, IdGen};
use tessera_crypto::{Crypto, PersonalKeys};
use tessera_event_log::EventLog;
use tessera_projections::{Directory, KafkaPublisher, ProjectionRuntime, ReadStore};

use crate::error::ApiError;
use crate::oauth::token::Signers;
use crate::oauth::verify::Verifier;
use crate::usage::UsageRecorder;

#[derive(Clone)]
pub struct AppState {
    pub commands: Arc<CommandService>,
    pub store: ReadStore,
    pub projections: Arc<ProjectionRuntime>,
    pub log: Arc<dyn EventLog>,
    pub crypto: Arc<Crypto>,
    /// Per-person data keys: how the API opens users' sealed personal fields for display.
    pub personal: Arc<PersonalKeys>,
    /// Every time the API reads (token lifetimes, usage, due cancellations).
    pub clock: Arc<dyn Clock>,
    /// Every id the API makes up itself (token ids, correlation and causation ids).
    pub ids: Arc<dyn IdGen>,
    pub read_your_writes_timeout: Duration,
    /// The in-memory OAuth directory the authorization server reads.
    pub directory: Arc<Directory>,
    /// Parsed signing keys, unsealed once per process.
    pub signers: Arc<Signers>,
    /// Parsed public keys, and the access tokens recently verified or issued (bounded).
    pub verifier: Arc<Verifier>,
    /// API key uses not yet recorded on the log.
    pub usage: Arc<UsageRecorder>,
    /// The externally reachable base URL, without a trailing slash.
    pub public_url: Arc<str>,
    /// The Kafka audit publisher, when brokers are configured.
    pub kafka: Option<Arc<KafkaPublisher>>,
}

impl AppState {
    /// Read-your-writes: waits until the read models and the OAuth directory reflect
    /// `position`.
    pub async fn projected(&self, position: u64) -> Result<(), ApiError> {
        let (read_models, directory) = tokio::join!(
            self.projections
                .wait_for(position, self.read_your_writes_timeout),
            self.directory
                .wait_for(position, self.read_your_writes_timeout),
        );
        read_models.and(directory).map_err(|_| {
            ApiError::Unavailable(format!(
                "read models did not reach position {position} in time; the write is durable"
            ))
        })
    }
}
