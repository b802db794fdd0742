//! OAuth client and access-token events.
//!
//! Frozen schema versions; see the note in `tenant.rs`. No secret appears here: a client
//! secret is stored as its keyed hash, and a `token.issued` v1 token as the SHA-256 of its
//! compact form (enough to recognise the token when it is presented again, useless to forge
//! one). `token.issued` v2 has no hash at all: a presented token is verified by its signature.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::Envelope;
use crate::events::Event;
use crate::events::SigningAlg;
use crate::primitives::{Hash32, Timestamp};
use crate::sensitive::Secret;
use crate::streams::StreamId;

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

/// `oauth_client.registered` v2: v1 plus what a client signing people in needs (OpenID
/// Connect). A v1 event reads as v2 with [`OidcClientSettingsV1::default`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OAuthClientRegisteredV2 {
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
    pub oidc: OidcClientSettingsV1,
}

/// A client's OpenID Connect settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OidcClientSettingsV1 {
    /// Where RP-Initiated Logout may send the browser back to, matched exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether people are asked to allow the client its scopes; first-party clients skip it.
    pub require_consent: bool,
    /// Absolute lifetime of a refresh-token family.
    pub refresh_token_ttl_secs: u32,
    /// A refresh-token family unused for this long ends.
    pub refresh_token_idle_secs: u32,
    /// Issue a refresh token on every code exchange, not only when `offline_access` is granted.
    pub refresh_without_offline_access: bool,
    /// The ID token's signing algorithm (`id_token_signed_response_alg`).
    pub id_token_signed_response_alg: SigningAlg,
    /// OpenID Connect Back-Channel Logout 1.0: where logout tokens are posted.
    pub backchannel_logout_uri: Option<String>,
}

impl Default for OidcClientSettingsV1 {
    /// The settings of a client registered before they existed: consent asked, refresh
    /// families of 30 days absolute and 14 days idle, RS256 ID tokens (OpenID Connect's
    /// default), no logout URIs.
    fn default() -> Self {
        Self {
            post_logout_redirect_uris: Vec::new(),
            require_consent: true,
            refresh_token_ttl_secs: 30 * 86_400,
            refresh_token_idle_secs: 14 * 86_400,
            refresh_without_offline_access: false,
            id_token_signed_response_alg: SigningAlg::RS256,
            backchannel_logout_uri: None,
        }
    }
}

impl From<OAuthClientRegisteredV1> for OAuthClientRegisteredV2 {
    fn from(v1: OAuthClientRegisteredV1) -> Self {
        Self {
            client_id: v1.client_id,
            name: v1.name,
            client_type: v1.client_type,
            grant_types: v1.grant_types,
            redirect_uris: v1.redirect_uris,
            allowed_scopes: v1.allowed_scopes,
            access_token_ttl_secs: v1.access_token_ttl_secs,
            secret_hash: v1.secret_hash,
            created_by: v1.created_by,
            oidc: OidcClientSettingsV1::default(),
        }
    }
}

/// `oauth_client.updated` v2: v1 plus the OpenID Connect settings; each `Some` field was
/// replaced (`backchannel_logout_uri: Some(None)` removed it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OAuthClientUpdatedV2 {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub allowed_scopes: Option<Vec<String>>,
    pub access_token_ttl_secs: Option<u32>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub require_consent: Option<bool>,
    pub refresh_token_ttl_secs: Option<u32>,
    pub refresh_token_idle_secs: Option<u32>,
    pub refresh_without_offline_access: Option<bool>,
    pub id_token_signed_response_alg: Option<SigningAlg>,
    pub backchannel_logout_uri: Option<Option<String>>,
}

impl From<OAuthClientUpdatedV1> for OAuthClientUpdatedV2 {
    fn from(v1: OAuthClientUpdatedV1) -> Self {
        Self {
            name: v1.name,
            grant_types: v1.grant_types,
            redirect_uris: v1.redirect_uris,
            allowed_scopes: v1.allowed_scopes,
            access_token_ttl_secs: v1.access_token_ttl_secs,
            ..Self::default()
        }
    }
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

/// The grant a token was issued through (RFC 6749 names in JSON). Stored as the variant's
/// index: never reorder, and add new grants only at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
    ];

    /// The RFC 6749 name, e.g. `client_credentials`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == name)
    }
}

/// `token.issued` v2: an access token handed to a client, in about a third of v1's bytes,
/// leaving to the envelope what it already says (see [`TokenIssuedV2::facts`]):
/// - the client is the stream's, `{tenant}/tokens/{client}` (v1's `client_id`);
/// - the token was issued at the envelope's `recorded_at`, truncated to the second as the
///   token's `iat` is, and expires `ttl_secs` later (v1's `issued_at` and `expires_at`);
/// - its audience is its issuer unless `audience` names others (v1 always named the issuer);
/// - the grant type is a one-byte enum, and there is no hash of the token: a presented token is
///   recognised by its signature and `jti`, not looked up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenIssuedV2 {
    pub jti: Uuid,
    pub grant_type: GrantType,
    pub scopes: Vec<String>,
    /// Audiences other than the issuer; empty when the issuer is the token's only audience.
    pub audience: Vec<String>,
    /// The signing key's id.
    pub kid: String,
    /// The token's lifetime in seconds from its issue.
    pub ttl_secs: u32,
}

/// What a `token.issued` event of any version says about its token, with what v2 leaves to
/// the envelope filled in from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuedTokenFacts {
    pub jti: Uuid,
    pub client_id: String,
    pub grant_type: String,
    pub scopes: Vec<String>,
    /// The audiences the event names; for v2, empty when the issuer is the only audience.
    pub audience: Vec<String>,
    pub kid: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl TokenIssuedV1 {
    pub fn facts(&self) -> IssuedTokenFacts {
        IssuedTokenFacts {
            jti: self.jti,
            client_id: self.client_id.clone(),
            grant_type: self.grant_type.clone(),
            scopes: self.scopes.clone(),
            audience: self.audience.clone(),
            kid: self.kid.clone(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }
}

impl TokenIssuedV2 {
    /// The token's `iat`: `recorded_at` (its envelope's) truncated to the second.
    pub fn issued_at(&self, recorded_at: Timestamp) -> Timestamp {
        Timestamp::from_micros(recorded_at.as_micros().div_euclid(1_000_000) * 1_000_000)
    }

    /// The token's `exp`.
    pub fn expires_at(&self, recorded_at: Timestamp) -> Timestamp {
        self.issued_at(recorded_at)
            .plus_seconds(i64::from(self.ttl_secs))
    }

    /// The facts, with the client its stream `{tenant}/tokens/{client}` names and the times
    /// from its envelope's `recorded_at`.
    pub fn facts(&self, client_id: String, recorded_at: Timestamp) -> IssuedTokenFacts {
        IssuedTokenFacts {
            jti: self.jti,
            client_id,
            grant_type: self.grant_type.as_str().to_owned(),
            scopes: self.scopes.clone(),
            audience: self.audience.clone(),
            kid: self.kid.clone(),
            issued_at: self.issued_at(recorded_at),
            expires_at: self.expires_at(recorded_at),
        }
    }
}

impl Event {
    /// What a `token.issued` event of any version says about its token, given the envelope it
    /// was recorded with; `None` for any other event, or a v2 event off a token stream.
    pub fn issued_token(&self, envelope: &Envelope) -> Option<IssuedTokenFacts> {
        match self {
            Event::TokenIssuedV1(issued) => Some(issued.facts()),
            Event::TokenIssued(issued) => match StreamId::parse(&envelope.stream_id)? {
                StreamId::Tokens { client_id, .. } => {
                    Some(issued.facts(client_id, envelope.recorded_at))
                }
                _ => None,
            },
            _ => None,
        }
    }
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
    fn grant_type_names_are_the_json_names_and_parse_back() {
        for grant in GrantType::ALL {
            assert_eq!(
                serde_json::to_value(grant).unwrap(),
                serde_json::Value::String(grant.as_str().to_owned())
            );
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
        assert_eq!(GrantType::parse("password"), None);
    }

    #[test]
    fn a_v2_token_takes_its_client_from_the_stream_and_its_times_from_the_envelope() {
        let issued = TokenIssuedV2 {
            jti: Uuid::from_u128(3),
            grant_type: GrantType::ClientCredentials,
            scopes: vec!["a".into()],
            audience: Vec::new(),
            kid: "k".into(),
            ttl_secs: 60,
        };
        let event = Event::TokenIssued(issued);
        let on = |stream: String| {
            Envelope::builder()
                .stream(stream)
                .event(&event)
                .recorded_at(Timestamp::from_micros(1_700_000_000_987_654))
                .build()
        };
        let stream = crate::streams::client_tokens(Uuid::from_u128(1), "c-1");
        let facts = event.issued_token(&on(stream)).unwrap();
        assert_eq!(facts.client_id, "c-1");
        assert_eq!(facts.grant_type, "client_credentials");
        assert_eq!(
            facts.issued_at,
            Timestamp::from_micros(1_700_000_000_000_000)
        );
        assert_eq!(
            facts.expires_at,
            Timestamp::from_micros(1_700_000_060_000_000)
        );
        let elsewhere = crate::streams::oauth_client(Uuid::from_u128(1), "c-1");
        assert_eq!(event.issued_token(&on(elsewhere)), None);
    }

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
