//! Everything a handler needs, built once at startup and passed with axum's `State`.
//! No globals: tests build their own.

use std::sync::Arc;
use std::time::Duration;

use tessera_commands::crypto::Crypto;
use tessera_commands::{Clock, CommandService};
use tessera_event_log::EventLog;
use tessera_projections::{ProjectionRuntime, ReadStore};

use crate::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub commands: Arc<CommandService>,
    pub store: ReadStore,
    pub projections: Arc<ProjectionRuntime>,
    pub log: Arc<dyn EventLog>,
    pub crypto: Arc<Crypto>,
    pub clock: Arc<dyn Clock>,
    pub read_your_writes_timeout: Duration,
}

impl AppState {
    /// Read-your-writes: waits until the read models reflect `position`.
    pub async fn projected(&self, position: u64) -> Result<(), ApiError> {
        self.projections
            .wait_for(position, self.read_your_writes_timeout)
            .await
            .map_err(|_| {
                ApiError::Unavailable(format!(
                    "read models did not reach position {position} in time; the write is durable"
                ))
            })
    }
}
