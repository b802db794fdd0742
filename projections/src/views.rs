//! The read models' row types, as queries return them and as reducers fold them.
//!
//! These are plain data: no SQL and no I/O. A view holds only what a query needs and what the
//! log can rebuild; in particular no sealed private key ever reaches a view, so a read-model
//! database leak exposes public data and hashes only.

use serde::{Deserialize, Serialize};
use tessera_domain::user::UserStatus;
use tessera_event_schemas::Hash32;
use tessera_event_schemas::events::{
    PublicJwkV1, SigningAlg, TenantKind, TenantSettingsV1, TenantStatus, WebauthnPolicyV1,
};
use tessera_event_schemas::primitives::{Date, Timestamp};
use uuid::Uuid;

/// A cancellation that has been requested but has not taken effect yet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PendingCancellation {
    pub reason: String,
    pub effective_at: Timestamp,
}

/// One tenant as the admin API shows it. Stored as the `doc` column of `rm_tenants`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TenantView {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub kind: TenantKind,
    pub status: TenantStatus,
    /// Suspension is an overlay on the status: a suspended tenant keeps its status.
    pub suspended: bool,
    pub suspension_reason: Option<String>,
    pub domains: Vec<String>,
    pub settings: TenantSettingsV1,
    /// The free-form configuration object. If the stored text was not valid JSON (the write
    /// side validates it, so this should never happen) it is kept verbatim as a JSON string
    /// rather than dropped.
    pub config: serde_json::Value,
    pub sales_owner: Option<String>,
    pub erp_customer_id: Option<String>,
    pub trial_ends_at: Option<Timestamp>,
    pub contract_start: Option<Date>,
    pub contract_end: Option<Date>,
    pub pending_cancellation: Option<PendingCancellation>,
    pub cancellation_reason: Option<String>,
    /// The kid of the key that signs new tokens.
    pub active_kid: String,
    /// `recorded_at` of `tenant.created`.
    pub created_at: Timestamp,
    /// `recorded_at` of the newest event of the tenant's stream.
    pub updated_at: Timestamp,
    /// The tenant stream's version after its newest event: the expected version for an update.
    pub version: u64,
}

impl TenantView {
    /// Whether the tenant's keys, clients and tokens may be used: not suspended, frozen or
    /// archived.
    pub fn serves(&self) -> bool {
        !self.suspended && !matches!(self.status, TenantStatus::Frozen | TenantStatus::Archived)
    }
}

/// Where a signing key is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SigningKeyStatus {
    /// Signs new tokens. Exactly one per tenant.
    Active,
    /// No longer signs, still in the JWKS so that tokens it signed keep verifying.
    Published,
    /// Out of the JWKS.
    Retired,
}

impl SigningKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningKeyStatus::Active => "active",
            SigningKeyStatus::Published => "published",
            SigningKeyStatus::Retired => "retired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => SigningKeyStatus::Active,
            "published" => SigningKeyStatus::Published,
            "retired" => SigningKeyStatus::Retired,
            _ => return None,
        })
    }
}

/// The public half of one of a tenant's signing keys (`rm_signing_keys`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SigningKeyView {
    pub kid: String,
    pub alg: SigningAlg,
    pub status: SigningKeyStatus,
    /// The key's own creation time, from the event payload.
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    pub public_jwk: PublicJwkV1,
}

/// One API key (`rm_api_keys`). The plaintext is never stored; callers look keys up by the
/// keyed hash of the presented secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ApiKeyView {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub secret_hash: Hash32,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// Uses recorded by `api_key.used` events, summed over the key's whole life (uses after
    /// revocation included: this is history, not authorisation).
    pub use_count: u64,
    /// The latest `last_used_at` of any `api_key.used` event; `None` while none was recorded.
    pub last_used_at: Option<Timestamp>,
}

/// Filters for [`crate::ReadStore::list_tenants`]; `None` matches everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub suspended: Option<bool>,
}

/// One user as `rm_users` holds them. Personal fields are sealed under the user's data key
/// (`nonce || ciphertext || tag`): the API opens them for display. An erased user has none of
/// them, nor the address's hash. Custom `Debug`: ciphertext is noise in a log line.
#[derive(Clone, PartialEq)]
pub struct UserView {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub status: UserStatus,
    /// The keyed hash of the normalised address.
    pub email_hash: Option<Hash32>,
    pub email: Option<Vec<u8>>,
    pub email_verified: bool,
    pub name: Option<Vec<u8>>,
    pub given_name: Option<Vec<u8>>,
    pub family_name: Option<Vec<u8>>,
    pub roles: Vec<String>,
    pub has_password: bool,
    /// The password must be changed at the next sign-in.
    pub password_temporary: bool,
    pub password_changed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for UserView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserView")
            .field("user_id", &self.user_id)
            .field("tenant_id", &self.tenant_id)
            .field("status", &self.status)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// Filters for [`crate::ReadStore::list_users`]; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    /// The keyed hash of a normalised address (the caller hashes it: this crate holds no key).
    pub email_hash: Option<Hash32>,
    /// Users who have this role.
    pub role: Option<String>,
}

/// Where a user's authenticator app stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpStatus {
    None,
    /// Enrollment started, not confirmed by a code yet.
    Pending,
    Enrolled,
}

impl TotpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TotpStatus::None => "none",
            TotpStatus::Pending => "pending",
            TotpStatus::Enrolled => "enrolled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "none" => TotpStatus::None,
            "pending" => TotpStatus::Pending,
            "enrolled" => TotpStatus::Enrolled,
            _ => return None,
        })
    }
}

/// A user's second factors as `rm_mfa` holds them: no secret (no TOTP secret, no recovery code
/// hash, no key material beyond what identifies a passkey), and a passkey's name sealed under
/// the user's data key. A user without a row has no second factor.
#[derive(Clone, Debug, PartialEq)]
pub struct MfaView {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub totp: TotpStatus,
    pub totp_enrolled_at: Option<Timestamp>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
    /// In registration order.
    pub passkeys: Vec<PasskeyView>,
    pub updated_at: Timestamp,
}

/// One of a user's passkeys. Custom `Debug`: the name is ciphertext.
#[derive(Clone, PartialEq)]
pub struct PasskeyView {
    pub credential_id: Vec<u8>,
    /// Its name, sealed under the user's data key (field `passkey_name`).
    pub name: Vec<u8>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub user_verified: bool,
    /// The credential may be synchronised between devices.
    pub backup_eligible: bool,
}

impl std::fmt::Debug for PasskeyView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyView")
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// A tenant's WebAuthn policy as `rm_webauthn_policies` holds it; a tenant without a row has
/// the default (`tessera_domain::webauthn_policy::default_policy`).
#[derive(Clone, Debug, PartialEq)]
pub struct WebauthnPolicyView {
    pub tenant_id: Uuid,
    pub policy: WebauthnPolicyV1,
    pub updated_at: Timestamp,
}

/// One of a tenant's upstream identity providers as `rm_identity_providers` holds it: which
/// it is and what "Sign in with ..." calls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProviderView {
    pub tenant_id: Uuid,
    pub alias: String,
    pub display_name: String,
    pub updated_at: Timestamp,
}

/// One page of a keyset-paginated listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One row of the audit trail (`rm_audit`): every event of the log, one row each, keyed by its
/// global position. Secrets never reach it: `summary` is the payload with every secret-like
/// field removed (see [`crate::audit::is_secret_field`]). Read, the summary is a JSON value;
/// on its way in ([`AuditRow`]) it is already the JSON text the row stores.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AuditView<Summary = serde_json::Value> {
    /// The event's global position: the entry's id and its sort key.
    pub position: u64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    /// The stored event type, e.g. `tenant.created` or `audit.recorded`.
    pub event_type: String,
    /// What happened: the event type, or for `audit.recorded` the action the product named.
    pub action: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_name: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub product: Option<String>,
    pub project_id: Option<Uuid>,
    pub correlation_id: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub recorded_at: Timestamp,
    /// The redacted payload; for `audit.recorded`, the product's (redacted) metadata object and
    /// who appended the entry (`{"metadata", "recorded_by"}`, read apart by
    /// `AuditView::take_metadata_and_recorder`).
    pub summary: Summary,
}

/// An audit row as the projector writes it: the summary is JSON text.
pub type AuditRow = AuditView<String>;

/// Filters for [`crate::ReadStore::audit`]; `None` matches everything. `since` is inclusive,
/// `until` exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub product: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// One invitation (`rm_invitations`). Its address and name stay sealed under the invitation's
/// data key (the API opens them); once revoked they are gone. `status` is as recorded
/// (`pending`, `accepted`, `revoked`): a pending invitation past `expires_at` is shown as
/// expired by its reader, who knows the time.
#[derive(Clone, Debug, PartialEq)]
pub struct InvitationView {
    pub invitation_id: Uuid,
    pub tenant_id: Uuid,
    pub status: tessera_domain::invitation::InvitationStatus,
    pub email: Option<Vec<u8>>,
    pub name: Option<Vec<u8>>,
    pub roles: Vec<String>,
    pub expires_at: Timestamp,
    pub accepted_user_id: Option<Uuid>,
    pub resent_count: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which invitations a listing shows: by status, where `Expired` is a pending invitation whose
/// link's time has passed at `now` and `Pending` one whose has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationFilter {
    All,
    Pending,
    Accepted,
    Expired,
    Revoked,
}
