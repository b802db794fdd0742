//! OAuth client and access-token events.
//!
//! Frozen schema versions; see the note in `tenant.rs`. No secret appears here: a client
//! secret is stored as its keyed hash, and an issued token as the SHA-256 of its compact form
//! (enough to recognise the token when it is presented again, useless to forge one).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::Secret;

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }
}

/// `oauth_client.registered` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OAuthClientRegisteredV1 {
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    /// RFC 6749 grant type names, e.g. `client_credentials`.
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub access_token_ttl_secs: u32,
    /// Keyed SHA-256 of the client secret; None for a public client.
    pub secret_hash: Secret<Option<Hash32>>,
    pub created_by: String,
}

/// `oauth_client.updated` v1: each `Some` field was replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OAuthClientUpdatedV1 {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub allowed_scopes: Option<Vec<String>>,
    pub access_token_ttl_secs: Option<u32>,
}

/// `oauth_client.secret_regenerated` v1: the previous secret stopped working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OAuthClientSecretRegeneratedV1 {
    pub secret_hash: Secret<Hash32>,
}

/// `oauth_client.deactivated` v1: the client can no longer authenticate, and its tokens no
/// longer introspect as active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OAuthClientDeactivatedV1 {
    pub reason: Option<String>,
}

/// `token.issued` v1: an access token handed to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenIssuedV1 {
    pub jti: Uuid,
    pub client_id: String,
    pub grant_type: String,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    /// The signing key's id.
    pub kid: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// SHA-256 of the token's compact serialization.
    pub token_hash: Secret<Hash32>,
}

/// `token.revoked` v1 (RFC 7009).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenRevokedV1 {
    pub jti: Uuid,
    pub client_id: String,
    /// Its expiry, so that revocation lists can forget the token once it has expired.
    pub expires_at: Timestamp,
}

/// `api_key.used` v1: uses of an API key since the previous record, aggregated in memory and
/// recorded periodically rather than once per call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyUsedV1 {
    pub uses: u64,
    pub first_used_at: Timestamp,
    pub last_used_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_type_names_are_the_json_names() {
        for t in [ClientType::Confidential, ClientType::Public] {
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::String(t.as_str().to_owned())
            );
        }
    }
}
