//! Second-factor events: a user's authenticator app (TOTP), recovery codes and passkeys, on one
//! stream per user (`{tenant}/mfa/{user}`), so that whatever must happen once for a user (a TOTP
//! step used, a recovery code used, a passkey's counter moving on) is decided by that stream's
//! expected version, and an administrator's reset is one append.
//!
//! Secrets never appear in clear: the TOTP secret is sealed (AES-256-GCM under a sub-key of the
//! master key) and recovery codes are stored as keyed hashes, both typed [`Secret`] so that no
//! public form carries them. A passkey's name is chosen by its owner and may name them, so it
//! is personal data, sealed under the user's data key like their address ([`Personal`]). A
//! passkey's credential id and COSE public key are neither secret nor personal: they prove
//! nothing without the authenticator's private key. Frozen schema versions; see the note in
//! `tenant.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::primitives::Hash32;
use crate::sensitive::{Personal, Secret};

/// The field name a passkey's name is sealed under (part of its AAD), like the user's own
/// fields (`user::fields`).
pub const PASSKEY_NAME_FIELD: &str = "passkey_name";

/// How strongly a WebAuthn ceremony asked for user verification (a PIN or biometric on the
/// authenticator), as WebAuthn spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    Required,
    Preferred,
    Discouraged,
}

impl Requirement {
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Required => "required",
            Requirement::Preferred => "preferred",
            Requirement::Discouraged => "discouraged",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "required" => Requirement::Required,
            "preferred" => Requirement::Preferred,
            "discouraged" => Requirement::Discouraged,
            _ => return None,
        })
    }
}

/// `mfa.totp_enrollment_started` v1: a fresh secret awaits its first code. It replaces any
/// earlier secret that was never confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TotpEnrollmentStartedV1 {
    /// `nonce || ciphertext || tag` of the raw secret, sealed under the TOTP sub-key of the
    /// master key with AAD = tenant id, user id.
    pub sealed_secret: Secret<Vec<u8>>,
}

/// `mfa.totp_enrolled` v1: the pending secret was confirmed by a code of time step `step`,
/// which counts as used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TotpEnrolledV1 {
    pub step: u64,
}

/// `mfa.totp_used` v1: a code of time step `step` was accepted. No code of this step or an
/// earlier one is accepted again for this user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TotpUsedV1 {
    pub step: u64,
}

/// `mfa.totp_removed` v1: the authenticator app (or a pending enrollment) is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TotpRemovedV1 {}

/// `mfa.recovery_codes_generated` v1: a new set of recovery codes replaces the previous one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecoveryCodesGeneratedV1 {
    /// HMAC-SHA-256 of each code (under a sub-key of the master key, with the tenant and the
    /// user), in the order shown; a code is used by its index.
    pub code_hashes: Secret<Vec<Hash32>>,
}

/// `mfa.recovery_code_used` v1: the code at `index` of the current set was used, once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecoveryCodeUsedV1 {
    pub index: u16,
}

/// `mfa.recovery_codes_revoked` v1: the codes are void (the last second factor they backed up
/// was removed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecoveryCodesRevokedV1 {}

/// `mfa.passkey_registered` v1: a WebAuthn credential of this user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PasskeyRegisteredV1 {
    pub credential_id: Vec<u8>,
    /// The credential's public key as a COSE_Key (RFC 9052 section 7), CBOR-encoded.
    pub public_key: Vec<u8>,
    /// The authenticator's signature counter at registration (0 for most passkeys).
    pub counter: u32,
    /// The name its owner gave it, sealed under the user's data key (field `passkey_name`).
    pub name: Personal<Vec<u8>>,
    /// The authenticator verified the user (PIN, biometric) at registration.
    pub user_verified: bool,
    /// The credential may be synchronised between devices (WebAuthn's BE flag).
    pub backup_eligible: bool,
    /// The credential is synchronised or backed up now (BS flag).
    pub backup_state: bool,
    /// The user verification the registration asked for; later sign-ins are held to it.
    pub user_verification: Requirement,
    /// The attestation statement's format (`none`, `packed`, `tpm`, ...).
    pub attestation_format: String,
}

/// `mfa.passkey_used` v1: a sign-in with the passkey `credential_id`; its counter and backup
/// state as the authenticator reported them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PasskeyUsedV1 {
    pub credential_id: Vec<u8>,
    pub counter: u32,
    pub backup_state: bool,
}

/// `mfa.passkey_removed` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PasskeyRemovedV1 {
    pub credential_id: Vec<u8>,
}

/// `mfa.reset` v1: an administrator removed every second factor (authenticator app, pending
/// enrollment, recovery codes, passkeys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MfaResetV1 {}
