//! The tenant's WebAuthn policy (seed 001's `PUT /v1/tenants/{id}/webauthn-policy`), on a stream
//! of its own (`{tenant}/webauthn-policy`): how passkeys are registered and used in the tenant.
//! Frozen schema versions; see the note in `tenant.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::mfa::Requirement;

/// What the relying party asks an authenticator to prove about where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestationPreference {
    None,
    Indirect,
    Direct,
}

impl AttestationPreference {
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationPreference::None => "none",
            AttestationPreference::Indirect => "indirect",
            AttestationPreference::Direct => "direct",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "none" => AttestationPreference::None,
            "indirect" => AttestationPreference::Indirect,
            "direct" => AttestationPreference::Direct,
            _ => return None,
        })
    }
}

/// A tenant's WebAuthn policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebauthnPolicyV1 {
    /// Passkeys can be registered and used.
    pub enabled: bool,
    pub attestation_preference: AttestationPreference,
    pub user_verification: Requirement,
    /// Whether the credential must be discoverable (stored on the authenticator, so that a
    /// sign-in needs no address).
    pub resident_key: Requirement,
}

/// `webauthn_policy.changed` v1: the whole policy as it now is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebauthnPolicyChangedV1 {
    pub policy: WebauthnPolicyV1,
}
