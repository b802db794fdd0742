//! Tessera's aggregates: every business rule of the write side, as pure functions.
//!
//! Each aggregate has a state that is rebuilt by folding its stream's events with an infallible
//! `evolve`, and a `decide` that checks a command against that state and returns the events to
//! append (or a [`DomainError`]). Replaying history must never fail, so `evolve` only applies
//! facts; every rule lives in `decide`.
//!
//! This crate is pure: it depends on `event-schemas` and nothing that does I/O. There is no
//! tokio, no sqlx, no clock and no randomness here: the current time, new ids and new key
//! material arrive inside commands, chosen by the `commands` crate.
//!
//! # Layout
//! - [`tenant`]: the tenant aggregate (lifecycle, settings, signing key ring).
//! - [`api_key`]: one API key (issue, revoke).
//! - [`authorization_code`]: one OpenID Connect authorization code (issue, redeem once).
//! - [`consent`]: what one person allowed each client (grant scopes, revoke a client).
//! - [`invitation`]: one invitation to join a tenant (create, resend, accept once, revoke).
//! - [`oauth_client`]: one OAuth client (register, update, regenerate its secret, deactivate),
//!   and the scope rule for token requests.
//! - [`refresh_token`]: one refresh-token family (rotate once per generation, grace, reuse,
//!   revoke; idle and absolute expiry; the revocation horizon).
//! - [`reservation`]: unique names (tenant slugs and domains; users' email addresses by keyed
//!   hash).
//! - [`user`]: a person of a tenant (profile, roles, status, password, erasure), and the
//!   checks of personal fields before they are sealed.
//! - [`session`]: one person's sign-in attempts, password lockout and sessions.
//! - [`password`]: a tenant's password policy.
//! - [`mfa`]: a user's second factors (authenticator app, recovery codes, passkeys) and the
//!   `require_mfa` rule.
//! - [`webauthn_policy`]: a tenant's WebAuthn policy.
//! - [`product`]: one product of the catalog (define, replace, remove).
//! - [`provider_key`]: one LLM provider key of a tenant or of the platform (set, invalidate,
//!   rewrap, remove), and which key a resolution hands out (strict mode or fallback).
//! - [`entitlement`]: one tenant's entitlement to one product (grant, trial once, revoke,
//!   expire once).
//! - [`tenant_claims`]: the tenant claims tokens carry and a client's choice among them.
//! - [`integration`]: one integration the operator offers (a built-in provider or
//!   `generic_oauth2`, the platform's OAuth app), and the built-in catalogue;
//!   [`integration_app`]: a tenant's own OAuth app for one.
//! - [`vault`]: a tenant's vault (key versions, minimum, rewrap, offboarding; issue 20).
//! - [`credential`]: one connection to a third-party service (sealed tokens or API key,
//!   refreshes, failures and backoff, `needs_reauth`, rewrap, removal; issue 20).
//! - [`validate`]: field validation shared by the aggregates (and usable by the API layer).

pub mod api_key;
pub mod authorization_code;
pub mod consent;
pub mod credential;
pub mod entitlement;
pub mod identity_provider;
pub mod integration;
pub mod integration_app;
pub mod invitation;
pub mod mfa;
pub mod oauth_client;
pub mod password;
pub mod product;
pub mod provider_key;
pub mod refresh_token;
pub mod reservation;
pub mod session;
pub mod tenant;
pub mod tenant_claims;
pub mod user;
pub mod validate;
pub mod vault;
pub mod webauthn_policy;

#[cfg(test)]
mod testing;

use tessera_event_schemas::Event;

/// Why a command was refused. Each variant maps to one HTTP status at the API edge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the command is malformed (400). `field` is a dotted path such as
    /// `settings.password_policy.min_length`.
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    /// A unique name or an aggregate is already taken (409).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The aggregate's lifecycle does not allow the action from its current state (409).
    #[error("cannot {action} when {from}")]
    IllegalTransition { from: String, action: &'static str },
    /// The aggregate (or the thing the command names inside it) does not exist (404).
    #[error("not found")]
    NotFound,
    /// Any other conflict with the current state (409).
    #[error("conflict: {0}")]
    Conflict(String),
}

impl DomainError {
    /// A validation error on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The shape every aggregate shares, so that the command handler can load, decide and append
/// generically. `Default` is the state of a stream that does not exist yet.
pub trait Aggregate: Default + Send + Sync {
    type Command: Send;

    /// Applies one recorded fact. Never fails; events that do not concern this aggregate are
    /// ignored, so that any stream can be replayed.
    fn evolve(&mut self, event: &Event);

    /// Checks `command` against the current state and returns the events that record it.
    /// An empty list means the command changes nothing (it is already in effect).
    fn decide(&self, command: Self::Command) -> Result<Vec<Event>, DomainError>;

    /// Folds a whole history.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.evolve(event);
        }
        state
    }
}
