//! Audit events that products record about themselves (`POST /v1/audit`).
//!
//! Frozen schema versions; see the note in `tenant.rs`. Every other event is audited as it
//! is; this one exists for what happens outside Tessera (a product's own user actions).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `audit.recorded` v1: an audit entry a product appended. Who called the API is in the
/// envelope's actor; `actor_*` here name whom the product says acted, when it says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecordedV1 {
    /// What happened, e.g. `invoice.paid`: lowercase letters, digits and `._:-`.
    pub action: String,
    pub project_id: Option<Uuid>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub actor_type: Option<String>,
    pub target_id: Option<String>,
    pub target_type: Option<String>,
    pub target_name: Option<String>,
    pub product: Option<String>,
    /// Free-form metadata object, as JSON text (postcard cannot hold arbitrary JSON).
    pub metadata_json: String,
}
