//! One connection of a tenant to a third-party service (issue 20, seed 004): the sealed tokens
//! or API key, and the state of its refreshes.
//!
//! One stream per (tenant, integration), `{tenant}/credential/{integration}`. Pure: the secret
//! arrives sealed (`tsr:v{n}:...`, with the key version it names), times arrive inside the
//! commands, and whether two refreshes raced is decided by the stream's expected version in the
//! command layer, not here.
//!
//! # Rules
//! - A store replaces whatever the stream held (a new connection, or a reconnection after
//!   `needs_reauth` or a removal); it makes the connection `active`.
//! - A refresh or a refresh failure needs a connection that is there and can still be
//!   refreshed (not removed, not `needs_reauth`).
//! - A failure backs off exponentially ([`backoff_seconds`]); the
//!   [`INVALID_GRANT_LIMIT`]-th consecutive `invalid_grant` also marks the connection
//!   `needs_reauth`, after which it is no longer refreshed and access is refused until it is
//!   made again.
//! - A rewrap only moves a secret to a newer key version; one already there appends nothing.
//! - Removing an absent (or removed) connection is not found.

use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::{
    CredentialKind, CredentialNeedsReauthV1, CredentialRefreshFailedV1, CredentialRefreshedV1,
    CredentialRemovedV1, CredentialRewrappedV1, CredentialStoredV1, OAuthAppSource, RefreshFailure,
};
use tessera_event_schemas::{Event, Secret};

use crate::validate;
use crate::{Aggregate, DomainError};

/// Consecutive `invalid_grant` answers after which a connection needs to be made again. Two,
/// not one: a single `invalid_grant` can be a race with a refresh-token rotation elsewhere.
pub const INVALID_GRANT_LIMIT: u32 = 2;
/// The first retry after a failed refresh waits this long; each further failure doubles it.
pub const BACKOFF_BASE_SECONDS: i64 = 30;
/// The longest wait between two attempts.
pub const BACKOFF_MAX_SECONDS: i64 = 3_600;

/// How long to wait after the `attempt`-th consecutive failure (1-based): 30 s, 60 s, 2 min,
/// ..., at most an hour.
pub fn backoff_seconds(attempt: u32) -> i64 {
    let doublings = attempt.saturating_sub(1).min(20);
    BACKOFF_BASE_SECONDS
        .saturating_mul(1_i64 << doublings)
        .min(BACKOFF_MAX_SECONDS)
}

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialStatus {
    Active,
    /// The last refresh failed; the next attempt waits.
    RefreshFailing,
    /// The grant is gone: the connection must be made again.
    NeedsReauth,
    Removed,
}

impl CredentialStatus {
    /// The name the API and the read model use.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStatus::Active => "active",
            CredentialStatus::RefreshFailing => "refresh_failing",
            CredentialStatus::NeedsReauth => "needs_reauth",
            CredentialStatus::Removed => "removed",
        }
    }
}

/// A connection as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub kind: CredentialKind,
    pub status: CredentialStatus,
    /// The vault's text form, `tsr:v{key_version}:...`.
    pub sealed: String,
    pub key_version: u32,
    pub scopes: Vec<String>,
    /// When the tokens held were issued (stored or last refreshed).
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// A refresh token is held.
    pub refreshable: bool,
    pub app: OAuthAppSource,
    pub last_refreshed_at: Option<Timestamp>,
    pub last_error: Option<RefreshFailure>,
    pub consecutive_failures: u32,
    /// Consecutive `invalid_grant` answers (reset by any success or other failure).
    pub invalid_grants: u32,
    pub next_attempt_at: Option<Timestamp>,
}

impl Credential {
    /// Whether the connection is there (not removed).
    pub fn is_present(&self) -> bool {
        self.status != CredentialStatus::Removed
    }
}

/// The connection's state: `None` when never stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialState {
    pub credential: Option<Credential>,
}

impl CredentialState {
    /// The connection, unless it was never stored or was removed.
    pub fn present(&self) -> Option<&Credential> {
        self.credential.as_ref().filter(|c| c.is_present())
    }
}

/// What a store records: the secret already sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCredential {
    pub kind: CredentialKind,
    pub sealed: String,
    pub key_version: u32,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub refreshable: bool,
    pub app: OAuthAppSource,
}

/// New tokens from the provider, sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshCredential {
    pub sealed: String,
    pub key_version: u32,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub refreshable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialCommand {
    Store(Box<StoreCredential>),
    /// Appended at the version the refresh read (the command layer's expected version).
    Refresh(Box<RefreshCredential>),
    RefreshFailed {
        reason: RefreshFailure,
        now: Timestamp,
    },
    /// The grant is known to be gone (for instance the provider said so at access time).
    NeedsReauth,
    /// The secret wrapped again under `key_version`, its payload untouched.
    Rewrap {
        sealed: String,
        key_version: u32,
    },
    Remove {
        revoked_at_provider: bool,
    },
}

/// Checks an integration's name before it names a stream.
pub fn integration(value: &str) -> Result<(), DomainError> {
    validate::identifier("integration", value)
}

fn check_sealed(sealed: &str, key_version: u32) -> Result<(), DomainError> {
    // The command layer builds both from one seal; a mismatch is a bug, refused before it
    // could make a read model count the secret under the wrong version.
    let named = sealed
        .strip_prefix("tsr:v")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(version, _)| version.parse::<u32>().ok());
    if named != Some(key_version) || key_version == 0 {
        return Err(DomainError::invalid(
            "sealed",
            "must be a vault secret sealed under the key version recorded beside it",
        ));
    }
    Ok(())
}

fn check_scopes(scopes: &[String]) -> Result<(), DomainError> {
    if scopes.len() > 100 {
        return Err(DomainError::invalid("scopes", "at most 100 scopes"));
    }
    for scope in scopes {
        // Third-party scopes, not ours: RFC 6749 scope tokens, often URLs (Google's).
        crate::integration::scope("scopes", scope)?;
    }
    Ok(())
}

impl CredentialState {
    fn refreshable(&self, action: &'static str) -> Result<&Credential, DomainError> {
        let credential = self.present().ok_or(DomainError::NotFound)?;
        if credential.status == CredentialStatus::NeedsReauth {
            return Err(DomainError::IllegalTransition {
                from: "the connection needs to be made again".into(),
                action,
            });
        }
        Ok(credential)
    }
}

impl Aggregate for CredentialState {
    type Command = CredentialCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::CredentialStored(e) => {
                self.credential = Some(Credential {
                    kind: e.kind,
                    status: CredentialStatus::Active,
                    sealed: e.sealed.expose().clone(),
                    key_version: e.key_version,
                    scopes: e.scopes.clone(),
                    issued_at: e.issued_at,
                    expires_at: e.expires_at,
                    refreshable: e.refreshable,
                    app: e.app,
                    last_refreshed_at: None,
                    last_error: None,
                    consecutive_failures: 0,
                    invalid_grants: 0,
                    next_attempt_at: None,
                });
            }
            Event::CredentialRefreshed(e) => {
                if let Some(c) = &mut self.credential {
                    c.status = CredentialStatus::Active;
                    c.sealed = e.sealed.expose().clone();
                    c.key_version = e.key_version;
                    c.scopes = e.scopes.clone();
                    c.issued_at = e.issued_at;
                    c.expires_at = e.expires_at;
                    c.refreshable = e.refreshable;
                    c.last_refreshed_at = Some(e.issued_at);
                    c.last_error = None;
                    c.consecutive_failures = 0;
                    c.invalid_grants = 0;
                    c.next_attempt_at = None;
                }
            }
            Event::CredentialRefreshFailed(e) => {
                if let Some(c) = &mut self.credential {
                    if c.status == CredentialStatus::Active {
                        c.status = CredentialStatus::RefreshFailing;
                    }
                    c.last_error = Some(e.reason);
                    c.consecutive_failures = e.attempt;
                    c.invalid_grants = if e.reason == RefreshFailure::InvalidGrant {
                        c.invalid_grants + 1
                    } else {
                        0
                    };
                    c.next_attempt_at = Some(e.next_attempt_at);
                }
            }
            Event::CredentialNeedsReauth(_) => {
                if let Some(c) = &mut self.credential {
                    c.status = CredentialStatus::NeedsReauth;
                    c.next_attempt_at = None;
                }
            }
            Event::CredentialRewrapped(e) => {
                if let Some(c) = &mut self.credential {
                    c.sealed = e.sealed.expose().clone();
                    c.key_version = e.key_version;
                }
            }
            Event::CredentialRemoved(_) => {
                if let Some(c) = &mut self.credential {
                    c.status = CredentialStatus::Removed;
                    c.next_attempt_at = None;
                }
            }
            _ => {}
        }
    }

    fn decide(&self, command: CredentialCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            CredentialCommand::Store(store) => {
                let StoreCredential {
                    kind,
                    sealed,
                    key_version,
                    scopes,
                    issued_at,
                    expires_at,
                    refreshable,
                    app,
                } = *store;
                check_sealed(&sealed, key_version)?;
                check_scopes(&scopes)?;
                Ok(vec![Event::CredentialStored(CredentialStoredV1 {
                    kind,
                    sealed: Secret::new(sealed),
                    key_version,
                    scopes,
                    issued_at,
                    expires_at,
                    refreshable: refreshable && kind == CredentialKind::Oauth,
                    app,
                })])
            }
            CredentialCommand::Refresh(refresh) => {
                self.refreshable("refresh")?;
                let RefreshCredential {
                    sealed,
                    key_version,
                    scopes,
                    issued_at,
                    expires_at,
                    refreshable,
                } = *refresh;
                check_sealed(&sealed, key_version)?;
                check_scopes(&scopes)?;
                Ok(vec![Event::CredentialRefreshed(CredentialRefreshedV1 {
                    sealed: Secret::new(sealed),
                    key_version,
                    scopes,
                    issued_at,
                    expires_at,
                    refreshable,
                })])
            }
            CredentialCommand::RefreshFailed { reason, now } => {
                let credential = self.refreshable("record a failed refresh")?;
                let attempt = credential.consecutive_failures.saturating_add(1);
                let mut events = vec![Event::CredentialRefreshFailed(CredentialRefreshFailedV1 {
                    reason,
                    attempt,
                    next_attempt_at: now.plus_seconds(backoff_seconds(attempt)),
                })];
                let invalid_grants = if reason == RefreshFailure::InvalidGrant {
                    credential.invalid_grants + 1
                } else {
                    0
                };
                if invalid_grants >= INVALID_GRANT_LIMIT {
                    events.push(Event::CredentialNeedsReauth(CredentialNeedsReauthV1 {}));
                }
                Ok(events)
            }
            CredentialCommand::NeedsReauth => {
                let credential = self.present().ok_or(DomainError::NotFound)?;
                if credential.status == CredentialStatus::NeedsReauth {
                    return Ok(vec![]);
                }
                Ok(vec![Event::CredentialNeedsReauth(
                    CredentialNeedsReauthV1 {},
                )])
            }
            CredentialCommand::Rewrap {
                sealed,
                key_version,
            } => {
                let credential = self.present().ok_or(DomainError::NotFound)?;
                check_sealed(&sealed, key_version)?;
                if key_version <= credential.key_version {
                    return Ok(vec![]);
                }
                Ok(vec![Event::CredentialRewrapped(CredentialRewrappedV1 {
                    sealed: Secret::new(sealed),
                    key_version,
                })])
            }
            CredentialCommand::Remove {
                revoked_at_provider,
            } => {
                self.present().ok_or(DomainError::NotFound)?;
                Ok(vec![Event::CredentialRemoved(CredentialRemovedV1 {
                    revoked_at_provider,
                })])
            }
        }
    }
}

#[cfg(test)]
mod tests;
