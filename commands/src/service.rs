//! The command service: every public method is one use case the API calls.
//!
//! Each command loads the streams it needs from the event log, folds them with the domain's
//! `evolve`, asks the domain to `decide`, and appends the resulting events in ONE atomic
//! `append` (several streams when a reservation is involved), each stream guarded by the version
//! it was read at; a version conflict redoes the attempt from a fresh read (see [`engine`]).
//! Commands on one stream are also serialized within this process, so that concurrent requests
//! for one tenant queue instead of conflicting; retries then only absorb races with other
//! processes sharing the log (several nodes on PostgreSQL).
//!
//! Rules live in `tessera-domain`; this module only gathers inputs (time, ids, key material,
//! secrets) and does I/O. It knows nothing of HTTP or read models.
//!
//! # Layout
//! - [`engine`]: load, fold, decide, append with expected versions, retry; the per-stream
//!   queues; the shapes commands share (one stream, a child of an open tenant, a fact).
//! - One module per aggregate, holding its inputs, outputs and commands: [`tenant`],
//!   [`api_key`], [`oauth_client`]; [`reservation`] (slugs and domains, only ever written
//!   together with a tenant).
//! - [`user`]: people of a tenant: their data keys, sealed profiles, email reservations,
//!   passwords and erasure (needs [`People`], given with [`CommandService::with_people`]).
//! - [`session`]: a user's sessions (start, end, end all) and lockout (unlock); [`signin`]:
//!   password sign-in, decided and recorded whatever its outcome, and the password changes a
//!   signed-in person makes.
//! - [`mfa`]: a user's second factors: authenticator app (TOTP), recovery codes, an
//!   administrator's reset, and whether a user must enroll (`require_mfa`).
//! - [`passkey`]: the tenant's WebAuthn policy and passkey ceremonies (needs a
//!   [`RelyingParty`], given with [`CommandService::with_relying_party`]).
//! - [`authorization_code`]: redeeming a code in one append with the tokens it is exchanged
//!   for (or recording its reuse with their revocation).
//! - [`refresh_token`]: the refresh grant (rotation, grace, reuse, the revocation horizon),
//!   and introspection and revocation of refresh tokens.
//! - [`invitation`]: inviting people with roles (their own data key, the link, the mail),
//!   resending, accepting once (a new user, or the signed-in holder of the address), revoking.
//! - [`consent`]: what a person allowed each client (list, revoke); [`authorization`]: the
//!   authorization endpoint's codes, with the consent just given in the same append.
//! - [`federation`]: a tenant's upstream identity providers (the secret sealed) and what a
//!   federated sign-in becomes: a linked user's session, a user provisioned just in time with
//!   the link, or a link that waits for the person to sign in (issue 19).
//! - [`provider_key`]: LLM provider keys of tenants and of the platform (sealed under the
//!   owner's vault) and their resolution, strict or with the platform's fallback, each one an
//!   audited access (issue 20, seed 002).
//! - [`integration`]: the operator's integrations and a tenant's own OAuth app for one
//!   (secrets sealed in the vault), and the app a tenant's connections use (issue 20).
//! - [`connect`]: the end of an OAuth connect flow (the connection stored, the state used
//!   once); [`credential_refresh`]: a connection's refresh, decided by its stream's version.
//! - [`facts`]: issued and revoked tokens and API key usage; [`audit`]: entries products record.
//! - [`registry`]: the catalog, tenants' entitlements and trials, requests for products, and
//!   a client's choice of tenant claims (issue 21).
//! - [`vault`]: the credential vault's sealing layer: seal and open a secret under its
//!   tenant's newest key-encryption key, rewrap one, and the tenant's vault state (issue 20).
//! - [`vault_admin`]: a tenant's vault keys: rotation, minimum, rewrap of every secret it
//!   holds (any holder: connections, provider keys, OAuth apps), offboarding.
//! - [`credential`]: connections to third-party services: store, remove, read for access
//!   (cached), open, and the durable record of each access.
//! - `fold_cache`: streams kept folded per process and caught up from the log on each use.
//! - [`bootstrap`]: the system tenant and its first administrator key, on an empty log.

use std::fmt;
use std::sync::Arc;

use tessera_event_log::EventLog;

use crate::clock::{Clock, IdGen};
use tessera_crypto::Crypto;

mod api_key;
mod audit;
mod authorization;
mod authorization_code;
mod bootstrap;
mod connect;
mod consent;
mod credential;
mod credential_refresh;
mod email;
mod email_verification;
mod engine;
mod facts;
mod federation;
mod fold_cache;
mod integration;
mod invitation;
mod mfa;
mod oauth_client;
mod passkey;
mod password_reset;
mod provider_key;
mod refresh_token;
mod registry;
mod reservation;
mod session;
mod signin;
mod tenant;
mod user;
mod vault;
mod vault_admin;

pub use api_key::{IssueApiKey, IssuedApiKey};
pub use audit::{MAX_ACTION_LEN, MAX_FIELD_LEN, MAX_METADATA_BYTES, RecordAudit};
pub use authorization::{Authorization, CodeRequest, IssuedCode};
pub use authorization_code::{CodeGrant, CodeRedemption, RedeemCode, RefreshPolicy};
pub use connect::ConnectTokens;
pub use consent::Consent;
pub use credential::{CredentialSecret, ReadCredential, StoreCredentialInput};
pub use credential_refresh::{RefreshAppend, RefreshedTokens};
pub use email::QueuedEmail;
pub use engine::MAX_RETRIES;
pub use federation::{FEDERATED_AMR, FederatedIdentity, FederatedOutcome};
pub use integration::OAuthApp;
pub use invitation::{Acceptance, Accepted, CreateInvitation, InvitationLink, InvitationOffer};
pub use mfa::{MfaReset, RecoveryCodes, SecondFactorVerified, SecondFactors, TotpEnrollment};
pub use oauth_client::{RegeneratedSecret, RegisterClient, RegisteredClient};
pub use passkey::{
    CEREMONY_TTL_SECS, MAX_CEREMONIES, PasskeyChallenge, PasskeySignIn, RegisteredPasskey,
    RelyingParty,
};
pub use password_reset::LinkKind;
pub use provider_key::{ProviderKeyInfo, ProviderSecret, ResolveError, ResolvedProviderKey};
pub use refresh_token::{
    DEFAULT_REFRESH_GRACE_SECS, RefreshRequest, RefreshTokenStatus, Refreshed,
};
pub use registry::GrantEntitlement;
pub use session::{StartedSession, person};
pub use signin::{PasswordCredentials, SignInOutcome, SignInResult};
pub use tenant::{
    ActivateTenant, CancelTenant, CreateTenant, Created, DEFAULT_PLAN, RotatedKey, UpdateTenant,
};
pub use user::{CreateUser, CreatedUser, People, UpdateUser};

/// Tenants whose vault state a process keeps folded (a few hundred bytes each).
const VAULT_CACHE_BOUND: usize = 100_000;
/// Connections a process keeps folded for access (about half a kilobyte each).
const CREDENTIAL_CACHE_BOUND: usize = 20_000;

/// Executes commands against the event log.
pub struct CommandService {
    log: Arc<dyn EventLog>,
    crypto: Arc<Crypto>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    locks: engine::StreamLocks,
    /// Per-person keys and password hashing, for user commands.
    people: Option<People>,
    /// Who passkeys are registered with, for passkey ceremonies.
    relying_party: Option<RelyingParty>,
    /// Passkey ceremonies started and not yet finished.
    ceremonies: passkey::Ceremonies,
    /// The externally reachable base URL, without a trailing slash: what emailed links are
    /// built from. Without it (tools, tests of other aggregates) no link is mailed.
    public_url: Option<Arc<str>>,
    /// Tenants' key-encryption keys, for the vault's secrets (given with
    /// [`CommandService::with_vault`]).
    vault_keys: Option<Arc<tessera_crypto::VaultKeys>>,
    /// Each tenant's vault state as last read (see [`vault`]).
    vaults: fold_cache::FoldCache<tessera_domain::vault::VaultState>,
    /// Connections as last read (see [`credential`]).
    credentials: fold_cache::FoldCache<tessera_domain::credential::CredentialState>,
}

impl fmt::Debug for CommandService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandService").finish_non_exhaustive()
    }
}

impl CommandService {
    pub fn new(
        log: Arc<dyn EventLog>,
        crypto: Arc<Crypto>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
    ) -> Self {
        Self {
            log,
            crypto,
            clock,
            ids,
            locks: engine::StreamLocks::default(),
            people: None,
            relying_party: None,
            ceremonies: passkey::Ceremonies::default(),
            public_url: None,
            vault_keys: None,
            vaults: fold_cache::FoldCache::new(VAULT_CACHE_BOUND),
            credentials: fold_cache::FoldCache::new(CREDENTIAL_CACHE_BOUND),
        }
    }

    /// The same service, mailing links built from `public_url` (no trailing slash).
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.public_url = Some(public_url.trim_end_matches('/').into());
        self
    }

    /// The same service, able to run user commands with `people`'s keys and hasher. Without
    /// them (tools, tests of other aggregates) user commands fail as internal errors.
    pub fn with_people(mut self, people: People) -> Self {
        self.people = Some(people);
        self
    }
}

/// The result of a command that returns nothing but where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Global position of the last event appended, or, when the command changed nothing, of
    /// the last event of the stream: read models at this position reflect the command.
    pub position: u64,
}

#[cfg(test)]
mod grant_tests;
#[cfg(test)]
mod people_testing;
#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod tests;
