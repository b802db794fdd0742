//! The hook an access calls before it opens a connection: "refresh first if it expires within
//! [`REFRESH_WITHIN_SECS`]". The refresh itself (the provider's token endpoint, the single
//! flight, the append at the version read) belongs to the connect flow's part of the vault,
//! which replaces this function's body; until then a connection is handed out as stored.

use tessera_commands::ReadCredential;
use tessera_event_schemas::EventMetadata;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// An access refreshes a connection first when its access token expires within this many
/// seconds, so that the caller does not receive a token about to die.
pub const REFRESH_WITHIN_SECS: i64 = 60;

/// The connection to open for an access: `read` itself, or the one a refresh just made;
/// `true` when this access refreshed it (recorded on `credential.accessed`).
pub async fn refresh_if_expiring(
    _state: &AppState,
    _meta: &EventMetadata,
    _tenant_id: Uuid,
    _integration: &str,
    read: ReadCredential,
) -> Result<(ReadCredential, bool), ApiError> {
    Ok((read, false))
}
