//! The authorization code aggregate: one code, on its own stream `{tenant}/code/{code_id}`.
//!
//! A code is issued once (version 1) and redeemed at most once: the redemption's append expects
//! version 1, so of two concurrent redemptions, on any nodes, one commits and the other, retried,
//! finds the code redeemed and records its reuse (RFC 6749 §4.1.2). See
//! `docs/adr/0003-oidc-grants.md`.
//!
//! # Rules
//! - **Issue**: only on an empty stream; `scopes` non-empty; `expires_at` after `now`; a
//!   `code_challenge`, when given, is an S256 challenge (43 base64url characters, RFC 7636
//!   §4.2). The caller checked the client, the redirect URI and the session.
//! - **Redeem** (the token endpoint, ADR 0003), in this order: the code exists and the
//!   presented one hashes to it (else not found: nothing tells a guess from an expired code);
//!   a code already redeemed is a **reuse**: `authorization_code.reused` is recorded once (the
//!   caller revokes what the redemption issued in the same append), and refused; then the same
//!   client, not expired, the same `redirect_uri`, and PKCE: a verifier without a challenge is
//!   refused (a downgrade), a challenge without a verifier too, and the verifier must be 43 to
//!   128 unreserved characters (RFC 7636 §4.1) whose S256 transform is the challenge.

use tessera_event_schemas::events::{
    AuthorizationCodeIssuedV1, AuthorizationCodeRedeemedV1, AuthorizationCodeReusedV1,
};
use tessera_event_schemas::{Event, Hash32, Timestamp};
use uuid::Uuid;

use crate::{Aggregate, DomainError};

/// How long a code is valid: 60 seconds (the issue's rule; RFC 6749 recommends at most 10
/// minutes).
pub const CODE_TTL_SECS: i64 = 60;

/// The `acr` of a session that authenticated with `amr`: `"2"` when a second factor was proved
/// (`mfa` is in the methods), else `"1"`.
pub fn acr(amr: &[String]) -> &'static str {
    if amr.iter().any(|method| method == "mfa") {
        "2"
    } else {
        "1"
    }
}

/// A code as issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCode {
    pub code_hash: Hash32,
    pub client_id: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    pub expires_at: Timestamp,
}

/// What a redemption issued, so that a reuse can revoke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redemption {
    pub jti: Uuid,
    pub access_token_ttl_secs: u32,
    pub refresh_family: Option<Uuid>,
}

/// The code's state. `Default` is a stream with no code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizationCodeState {
    pub code: Option<IssuedCode>,
    pub redeemed: Option<Redemption>,
    /// A redeemed code was presented again (its tokens were revoked then).
    pub reused: bool,
}

/// A code to issue; the caller made the code and hashed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCode {
    pub code: IssuedCode,
    pub now: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizationCodeCommand {
    Issue(Box<NewCode>),
    Redeem(Box<RedeemCode>),
}

/// A token request presenting the code. The caller compared the presented code with the
/// recorded hash in constant time (`code_matches`) and computed the verifier's S256 transform,
/// which this pure crate cannot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedeemCode {
    pub code_matches: bool,
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<PkceVerifier>,
    pub now: Timestamp,
    /// What the redemption issues, chosen by the caller.
    pub redemption: Redemption,
}

/// A PKCE `code_verifier` as sent, and `base64url(SHA-256(verifier))` (RFC 7636 §4.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkceVerifier {
    pub verifier: String,
    pub s256: String,
}

impl Aggregate for AuthorizationCodeState {
    type Command = AuthorizationCodeCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::AuthorizationCodeIssued(e) => {
                self.code = Some(IssuedCode {
                    code_hash: *e.code_hash.expose(),
                    client_id: e.client_id.clone(),
                    user_id: e.user_id,
                    session_id: e.session_id,
                    redirect_uri: e.redirect_uri.clone(),
                    scopes: e.scopes.clone(),
                    code_challenge: e.code_challenge.clone(),
                    nonce: e.nonce.clone(),
                    auth_time: e.auth_time,
                    amr: e.amr.clone(),
                    acr: e.acr.clone(),
                    expires_at: e.expires_at,
                });
            }
            Event::AuthorizationCodeRedeemed(e) => {
                self.redeemed = Some(Redemption {
                    jti: e.jti,
                    access_token_ttl_secs: e.access_token_ttl_secs,
                    refresh_family: e.refresh_family,
                });
            }
            Event::AuthorizationCodeReused(_) => self.reused = true,
            _ => {}
        }
    }

    fn decide(&self, command: AuthorizationCodeCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            AuthorizationCodeCommand::Issue(new) => self.issue(*new),
            AuthorizationCodeCommand::Redeem(redeem) => self.redeem(*redeem),
        }
    }
}

impl AuthorizationCodeState {
    fn issue(&self, new: NewCode) -> Result<Vec<Event>, DomainError> {
        if self.code.is_some() {
            return Err(DomainError::AlreadyExists("authorization code".into()));
        }
        let NewCode { code, now } = new;
        if code.scopes.is_empty() {
            return Err(DomainError::invalid(
                "scope",
                "at least one scope is needed",
            ));
        }
        if code.expires_at <= now {
            return Err(DomainError::invalid(
                "expires_at",
                "a code must expire after it is issued",
            ));
        }
        if code
            .code_challenge
            .as_deref()
            .is_some_and(|challenge| !is_s256_challenge(challenge))
        {
            return Err(DomainError::invalid(
                "code_challenge",
                "an S256 challenge is 43 base64url characters",
            ));
        }
        Ok(vec![Event::AuthorizationCodeIssued(
            AuthorizationCodeIssuedV1 {
                code_hash: code.code_hash.into(),
                client_id: code.client_id,
                user_id: code.user_id,
                session_id: code.session_id,
                redirect_uri: code.redirect_uri,
                scopes: code.scopes,
                code_challenge: code.code_challenge,
                nonce: code.nonce,
                auth_time: code.auth_time,
                amr: code.amr,
                acr: code.acr,
                expires_at: code.expires_at,
            },
        )])
    }
}

impl AuthorizationCodeState {
    fn redeem(&self, redeem: RedeemCode) -> Result<Vec<Event>, DomainError> {
        let code = match &self.code {
            Some(code) if redeem.code_matches => code,
            _ => return Err(DomainError::NotFound),
        };
        if self.redeemed.is_some() {
            if self.reused {
                return Err(DomainError::Conflict(
                    "the authorization code was already used".into(),
                ));
            }
            // RFC 6749 §4.1.2: the tokens issued for a code presented twice are revoked; the
            // caller appends their revocation with this event and answers invalid_grant.
            return Ok(vec![Event::AuthorizationCodeReused(
                AuthorizationCodeReusedV1 {},
            )]);
        }
        if code.client_id != redeem.client_id {
            return Err(DomainError::Conflict(
                "the authorization code was issued to another client".into(),
            ));
        }
        if redeem.now >= code.expires_at {
            return Err(DomainError::Conflict(
                "the authorization code has expired".into(),
            ));
        }
        if redeem.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(DomainError::Conflict(
                "redirect_uri differs from the authorization request's".into(),
            ));
        }
        match (&code.code_challenge, &redeem.code_verifier) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(DomainError::Conflict(
                    "a code_verifier was sent but the authorization request had no code_challenge"
                        .into(),
                ));
            }
            (Some(_), None) => {
                return Err(DomainError::Conflict("code_verifier is required".into()));
            }
            (Some(challenge), Some(verifier)) => {
                if !is_pkce_verifier(&verifier.verifier) || verifier.s256 != *challenge {
                    return Err(DomainError::Conflict(
                        "the code_verifier does not match the code_challenge".into(),
                    ));
                }
            }
        }
        let Redemption {
            jti,
            access_token_ttl_secs,
            refresh_family,
        } = redeem.redemption;
        Ok(vec![Event::AuthorizationCodeRedeemed(
            AuthorizationCodeRedeemedV1 {
                jti,
                access_token_ttl_secs,
                refresh_family,
            },
        )])
    }
}

/// Whether `verifier` is a PKCE code verifier: 43 to 128 characters of `[A-Za-z0-9-._~]`
/// (RFC 7636 §4.1).
pub fn is_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` has the shape of an S256 challenge: the base64url (no padding) of a
/// SHA-256 digest, 43 characters (RFC 7636 §4.2).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests;
