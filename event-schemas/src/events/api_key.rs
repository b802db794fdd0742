//! API key events. The plaintext key never appears: only its keyed hash.
//!
//! Frozen schema versions; see the note in `tenant.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::Secret;

/// `api_key.issued` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyIssuedV1 {
    pub key_id: Uuid,
    pub name: String,
    /// The first characters of the plaintext (`tsr_` and a few more), to recognise a key by.
    pub prefix: String,
    /// HMAC-SHA-256 of the whole plaintext under a key derived from the master key.
    pub secret_hash: Secret<Hash32>,
    pub scopes: Vec<String>,
    pub product: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
}

/// `api_key.revoked` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRevokedV1 {
    pub reason: Option<String>,
}
