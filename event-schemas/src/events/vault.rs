//! Credential vault events (issue 20, ADR 0007): a tenant's key-encryption keys, the operator's
//! integrations and a tenant's own OAuth apps for them, the connections (stored, refreshed,
//! removed), every access to one, the single use of a connect state, and the LLM provider
//! keys of seed 002.
//!
//! Streams:
//! - `{tenant}/vault`: the tenant's key versions, minimum decryption version, rewraps and
//!   offboarding (the system tenant's vault seals the platform's own secrets);
//! - `{system}/integration/{integration}`: one integration the operator defined;
//! - `{tenant}/integration-app/{integration}`: the tenant's own OAuth app for it;
//! - `{tenant}/credential/{integration}`: one connection; a refresh is decided by this
//!   stream's expected version, so two nodes never both refresh;
//! - `{tenant}/credential-access/{integration}` and `{tenant}/provider-key-access/{provider}`:
//!   accesses, appended with expected version "any" (facts, never decisions, and kept off the
//!   credential's stream so that accesses never make a refresh conflict);
//! - `{tenant}/connect/{state}`: one connect flow's end, appended with expected version "no
//!   stream": a state is redeemed once across nodes;
//! - `{tenant}/provider-key/{provider}` (and `{system}/provider-key/{provider}` for the
//!   platform's defaults): one LLM provider key.
//!
//! Every sealed value is a [`Secret`] holding the vault's text form, `tsr:v{version}:...`
//! (`tessera_crypto::vault`), sealed under the owning tenant's key-encryption key; the
//! platform's secrets (an integration's client secret, a platform provider key) are sealed
//! under the system tenant's. No token, key or client secret is ever recorded in clear, and
//! the secret-typed fields are left out of audit rows, Kafka messages and `Debug`. Frozen
//! schema versions; see the note in `tenant.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::Timestamp;
use crate::sensitive::Secret;

/// `vault.key_added` v1: key version `version` of the tenant's key-encryption key was stored
/// in the key table (before this event: nothing names a version that could be lost). New
/// writes use the newest version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VaultKeyAddedV1 {
    pub version: u32,
}

/// `vault.minimum_set` v1: versions below `version` no longer decrypt (the transit engine's
/// `min_decryption_version`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VaultMinimumSetV1 {
    pub version: u32,
}

/// `vault.rewrap_started` v1: every secret of the tenant below `to_version` is being wrapped
/// again under it; `total` secrets were below it when the rewrap started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VaultRewrapStartedV1 {
    pub to_version: u32,
    pub total: u64,
}

/// `vault.destroyed` v1: the tenant was offboarded; every key version was destroyed before
/// this event, and nothing of the tenant's vault opens again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VaultDestroyedV1 {}

/// `integration.defined` v1: the operator's integration (a built-in provider's definition, or a
/// `generic_oauth2` one), set as a whole. The provider's URLs are resolved when it is defined,
/// so that a later change of the built-in catalogue does not change what was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationDefinedV1 {
    /// `notion`, `github`, `google`, `slack` or `generic_oauth2`.
    pub provider: String,
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub client_id: String,
    /// The platform OAuth app's secret, sealed under the system tenant's vault.
    pub client_secret: Secret<String>,
    pub scopes: Vec<String>,
    /// The provider takes PKCE (S256).
    pub pkce: bool,
    /// The provider issues refresh tokens and expiring access tokens.
    pub refreshes: bool,
}

/// `integration.removed` v1: the integration is no longer offered; connections stay readable
/// but no new connect flow starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationRemovedV1 {}

/// `integration_app.set` v1: a tenant's own OAuth app for an integration, used instead of the
/// platform's for the tenant's connect flows and refreshes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationAppSetV1 {
    pub client_id: String,
    /// Sealed under the tenant's vault.
    pub client_secret: Secret<String>,
    /// Scopes to ask for instead of the integration's; `None` keeps the integration's.
    pub scopes: Option<Vec<String>>,
}

/// `integration_app.removed` v1: the tenant is back on the platform's OAuth app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationAppRemovedV1 {}

/// What a connection holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// OAuth tokens: an access token, and maybe a refresh token.
    Oauth,
    /// A static API key, stored directly.
    ApiKey,
}

/// Whose OAuth app a connection was made with (and is refreshed with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthAppSource {
    Platform,
    Tenant,
    /// Stored directly: no app of ours made it.
    None,
}

/// `credential.stored` v1: a connection made (by the connect flow) or stored directly,
/// replacing whatever the stream held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialStoredV1 {
    pub kind: CredentialKind,
    /// The tokens or key (a JSON document), sealed under the tenant's vault.
    pub sealed: Secret<String>,
    /// The key version `sealed` names (kept beside it so that read models count what a
    /// rewrap has left without opening anything).
    pub key_version: u32,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    /// When the access token expires; `None` when the provider did not say.
    pub expires_at: Option<Timestamp>,
    /// A refresh token is held: the scheduler refreshes this connection.
    pub refreshable: bool,
    pub app: OAuthAppSource,
}

/// `credential.refreshed` v1: new tokens from the provider, appended at the version the
/// refresh read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialRefreshedV1 {
    pub sealed: Secret<String>,
    pub key_version: u32,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// The provider sent no new refresh token; the old one is kept (inside `sealed`).
    pub refreshable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefreshFailure {
    /// The provider answered `invalid_grant`: the grant was revoked or expired.
    InvalidGrant,
    /// The provider could not be reached, or timed out.
    Unreachable,
    /// The provider answered another error.
    Rejected,
}

/// `credential.refresh_failed` v1: a refresh failed; the next attempt waits (backing off).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialRefreshFailedV1 {
    pub reason: RefreshFailure,
    /// The consecutive failures so far, this one included.
    pub attempt: u32,
    pub next_attempt_at: Timestamp,
}

/// `credential.needs_reauth` v1: the grant is gone (repeated `invalid_grant`); the connection
/// must be made again and is no longer refreshed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialNeedsReauthV1 {}

/// `credential.rewrapped` v1: a sealed secret wrapped again under a newer key version without
/// being opened. Appended to whatever stream holds the secret (a credential, a provider key,
/// a tenant's OAuth app), at the version read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialRewrappedV1 {
    pub sealed: Secret<String>,
    pub key_version: u32,
}

/// `credential.removed` v1: the connection is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialRemovedV1 {
    /// The provider's revocation endpoint confirmed the revocation.
    pub revoked_at_provider: bool,
}

/// What an access opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessedCredential {
    /// A connection (`{tenant}/credential-access/{integration}`).
    Integration,
    /// The tenant's own provider key (`{tenant}/provider-key-access/{provider}`).
    TenantProviderKey,
    /// The platform's provider key, as the tenant's fallback outside strict mode.
    PlatformProviderKey,
}

/// `credential.accessed` v1: a service read a credential in clear. Who is the envelope's actor
/// and `api_key_id`; which credential is the stream; the correlation id is the envelope's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialAccessedV1 {
    pub api_key_id: Uuid,
    /// The integration or provider name (as the stream spells it).
    pub name: String,
    pub source: AccessedCredential,
    /// The access refreshed the credential first.
    pub refreshed: bool,
}

/// `connect.completed` v1: a connect flow's state was redeemed and the connection stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectCompletedV1 {
    pub integration: String,
}

/// `connect.failed` v1: a connect flow's state was redeemed but no connection came of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectFailedV1 {
    pub integration: String,
    /// The provider's `error` code (`access_denied`, ...), or `exchange_failed` when the code
    /// exchange failed.
    pub reason: String,
}

/// `provider_key.set` v1: a tenant's (or, on the system tenant, the platform's default) key for
/// an LLM provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderKeySetV1 {
    pub sealed: Secret<String>,
    pub key_version: u32,
    /// The key's last four characters, which `GET` shows to tell keys apart.
    pub last4: String,
}

/// `provider_key.invalidated` v1: the key was reported invalid (the provider refused it); it is
/// not handed out again until a new one is set, in either mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderKeyInvalidatedV1 {}

/// `provider_key.removed` v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderKeyRemovedV1 {}
