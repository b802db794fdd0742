//! The hook an access calls before it opens a connection: "refresh first if it expires within
//! [`REFRESH_WITHIN_SECS`]" (and is past half its lifetime, the scheduler's floor). The refresh
//! itself is [`crate::vault_refresh::refresh`]: the provider's token endpoint, the in-process
//! single flight (accesses waiting on one expiring connection share one refresh), the append at
//! the version read.

use tessera_commands::ReadCredential;
use tessera_event_schemas::EventMetadata;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::vault_refresh::{self, Refresh, When};

/// An access refreshes a connection first when its access token expires within this many
/// seconds, so that the caller does not receive a token about to die.
pub const REFRESH_WITHIN_SECS: i64 = 60;

/// The connection to open for an access: `read` itself, or the one a refresh just made;
/// `true` when this access refreshed it (recorded on `credential.accessed`). A refresh that
/// fails is recorded (with its backoff) and the connection is handed out as it is.
pub async fn refresh_if_expiring(
    state: &AppState,
    meta: &EventMetadata,
    tenant_id: Uuid,
    integration: &str,
    read: ReadCredential,
) -> Result<(ReadCredential, bool), ApiError> {
    let when = When::ExpiringWithin(REFRESH_WITHIN_SECS);
    if !when.holds(
        &read.credential,
        state.clock.now(),
        state.connect.refresh.lead_secs,
    ) {
        return Ok((read, false));
    }
    let outcome =
        vault_refresh::refresh(state, tenant_id, integration, when, Some(meta.clone())).await?;
    if outcome == Refresh::NotRefreshable {
        return Ok((read, false));
    }
    let now = state
        .commands
        .read_credential(tenant_id, integration)
        .await?
        .unwrap_or(read);
    Ok((now, outcome == Refresh::Refreshed))
}
