//! Tenant events: lifecycle, settings and the signing key ring.
//!
//! Every struct here is a shipped schema version and is frozen: postcard is not
//! self-describing, so adding, removing or reordering a field breaks every stored event.
//! A change adds a `...V2` type and an upcast `From<...V1>`. Enums may gain variants at the end.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Date, Timestamp};
use crate::sensitive::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantKind {
    Customer,
    Demo,
}

/// The commercial lifecycle. Suspension is an overlay on top of it, not a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Demo,
    Trial,
    Active,
    Frozen,
    Archived,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Demo => "demo",
            TenantStatus::Trial => "trial",
            TenantStatus::Active => "active",
            TenantStatus::Frozen => "frozen",
            TenantStatus::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "demo" => TenantStatus::Demo,
            "trial" => TenantStatus::Trial,
            "active" => TenantStatus::Active,
            "frozen" => TenantStatus::Frozen,
            "archived" => TenantStatus::Archived,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PasswordPolicyV1 {
    pub min_length: u16,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_numbers: bool,
    pub require_special_chars: bool,
    pub password_history_count: u16,
    /// 0 means passwords never expire.
    pub max_age_days: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LockoutPolicyV1 {
    pub max_attempts: u16,
    pub lockout_duration_minutes: u32,
    pub reset_after_minutes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantSettingsV1 {
    pub session_timeout_minutes: u32,
    pub max_sessions_per_user: u16,
    pub require_mfa: bool,
    pub password_policy: PasswordPolicyV1,
    pub lockout_policy: LockoutPolicyV1,
    /// Lowercase email domains allowed to sign up; empty means any.
    pub allowed_email_domains: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SigningAlg {
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::RS256 => "RS256",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ES256" => SigningAlg::ES256,
            "EdDSA" => SigningAlg::EdDSA,
            "RS256" => SigningAlg::RS256,
            _ => return None,
        })
    }
}

/// The public half of a signing key, as JWK members (base64url without padding, RFC 7518).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicJwkV1 {
    /// `kty: EC`, `crv: P-256`.
    Ec { x: String, y: String },
    /// `kty: OKP`, `crv: Ed25519`.
    Okp { x: String },
    /// `kty: RSA`.
    Rsa { n: String, e: String },
}

/// A signing key as stored in the log: public JWK plus the private key sealed under the
/// platform master key (AES-256-GCM). The plaintext private key is never in an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SigningKeyV1 {
    pub kid: String,
    pub alg: SigningAlg,
    pub public_jwk: PublicJwkV1,
    /// `nonce || ciphertext || tag` of the PKCS#8 private key.
    pub sealed_private_key: Secret<Vec<u8>>,
    pub created_at: Timestamp,
}

/// `tenant.created` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantCreatedV1 {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub kind: TenantKind,
    pub status: TenantStatus,
    pub domains: Vec<String>,
    pub settings: TenantSettingsV1,
    /// Free-form configuration object, as JSON text.
    pub config_json: String,
    pub sales_owner: Option<String>,
    pub trial_ends_at: Option<Timestamp>,
    pub signing_key: SigningKeyV1,
}

/// `tenant.updated` v1: each `Some` field was changed to that value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantUpdatedV1 {
    pub name: Option<String>,
    pub domains: Option<Vec<String>>,
    pub plan: Option<String>,
    pub config_json: Option<String>,
    pub sales_owner: Option<String>,
}

/// `tenant.settings_changed` v1: the full new settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantSettingsChangedV1 {
    pub settings: TenantSettingsV1,
}

/// `tenant.activated` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantActivatedV1 {
    pub previous_status: TenantStatus,
    pub plan: String,
    pub contract_start: Option<Date>,
    pub contract_end: Option<Date>,
    pub erp_customer_id: Option<String>,
}

/// `tenant.cancelled` v1. Without `effective_at` the tenant is frozen at once; with it, the
/// tenant keeps its status until then, and a `tenant.frozen` event follows when it is due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantCancelledV1 {
    pub reason: String,
    pub effective_at: Option<Timestamp>,
}

/// `tenant.frozen` v1: a scheduled cancellation took effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantFrozenV1 {
    pub reason: String,
}

/// `tenant.suspended` v1: every authentication and API call for the tenant stops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantSuspendedV1 {
    pub reason: Option<String>,
}

/// `tenant.reactivated` v1: lifts a suspension; the tenant is as it was before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantReactivatedV1 {}

/// `tenant.archived` v1: terminal. Data is kept; the slug stays reserved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantArchivedV1 {
    pub previous_status: TenantStatus,
}

/// `tenant.signing_key_rotated` v1: `key` becomes the active key; the previous one stays
/// published for verification until retired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SigningKeyRotatedV1 {
    pub key: SigningKeyV1,
    pub previous_kid: String,
}

/// `tenant.signing_key_added` v1: a key for an algorithm the ring had no active key for
/// (each tenant keeps an RS256 key beside its default ES256 one, for ID tokens of clients that
/// ask for RS256). Later keys of that algorithm come by rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SigningKeyAddedV1 {
    pub key: SigningKeyV1,
}

/// `tenant.signing_key_retired` v1: the key leaves the JWKS; tokens it signed stop verifying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SigningKeyRetiredV1 {
    pub kid: String,
}

/// `tenant.admin_invite_failed` v1: the tenant was created with an `admin_email`, but the
/// invitation of its first administrator could not be made. The tenant stands (seed 003's rule
/// for its identity-provider step); an operator invites again through the invitations API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantAdminInviteFailedV1 {
    /// Why, in words that carry no personal data (never the address itself), e.g. "the
    /// address's domain is not among the tenant's allowed email domains".
    pub reason: String,
}
