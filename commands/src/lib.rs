//! Tessera's write side: command handlers.
//!
//! A command arrives from the API with the caller's [`EventMetadata`]; the [`CommandService`]
//! loads the aggregate's stream from the event log, lets the pure `tessera-domain` decide, and
//! appends the events atomically with an expected version, retrying on conflicts. Time, ids,
//! key material and secrets are produced here (through the injected [`Clock`] and [`IdGen`] and
//! the `tessera-crypto` crate) and handed to the domain inside commands.
//!
//! This crate never speaks HTTP and never reads read models: uniqueness and every other rule
//! are decided from the log itself.
//!
//! # Layout
//! - [`service`]: [`CommandService`]: the engine (load, decide, append, retry) and one module
//!   per aggregate with its inputs and outputs.
//! - `error`: [`CommandError`], and the conversions of the log's and crypto's errors into it.
//! - [`clock`]: the injected time and id sources.
//!
//! [`EventMetadata`]: tessera_event_schemas::EventMetadata

pub mod clock;
mod error;
pub mod service;

pub use clock::{Clock, FixedClock, IdGen, SystemClock, SystemIds};
pub use error::CommandError;
pub use service::GrantEntitlement;
pub use service::{Acceptance, Accepted, CreateInvitation, InvitationLink, InvitationOffer};
pub use service::{
    ActivateTenant, CancelTenant, CommandService, CreateTenant, CreateUser, Created, CreatedUser,
    IssueApiKey, IssuedApiKey, Outcome, PasswordCredentials, People, RecordAudit,
    RegeneratedSecret, RegisterClient, RegisteredClient, RotatedKey, SignInOutcome, SignInResult,
    StartedSession, UpdateTenant, UpdateUser, person,
};
pub use service::{Authorization, CodeRequest, Consent, IssuedCode};
pub use service::{
    CodeGrant, CodeRedemption, DEFAULT_REFRESH_GRACE_SECS, RedeemCode, RefreshPolicy,
    RefreshRequest, RefreshTokenStatus, Refreshed,
};
pub use service::{ConnectTokens, OAuthApp, RefreshAppend, RefreshedTokens};
pub use service::{CredentialSecret, ReadCredential, StoreCredentialInput};
pub use service::{FEDERATED_AMR, FederatedIdentity, FederatedOutcome};
pub use service::{LinkKind, QueuedEmail};
pub use service::{
    MfaReset, PasskeyChallenge, PasskeySignIn, RecoveryCodes, RegisteredPasskey, RelyingParty,
    SecondFactorVerified, SecondFactors, TotpEnrollment,
};
pub use service::{ProviderKeyInfo, ProviderSecret, ResolveError, ResolvedProviderKey};
