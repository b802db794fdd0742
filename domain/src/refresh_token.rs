//! The refresh-token family aggregate: one grant a code exchange opened, on its own stream
//! `{tenant}/refresh/{family}`.
//!
//! A family has one current token (generation `c`); using it rotates the family (the append of
//! `refresh_token.rotated {c+1}` expects the version read, so of concurrent uses on any nodes
//! exactly one rotates). See `docs/adr/0003-oidc-grants.md`.
//!
//! # Rules of a use ([`RefreshFamilyState::use_token`]), in this order
//! - The family exists and the token is its own (its keyed hash matches, its generation is not
//!   ahead of the family's), else not found.
//! - A revoked family, another client, an expired family (`expires_at`), an idle one (unused
//!   for longer than `idle_secs` since its last rotation or its opening), and one ended by its
//!   revocation horizon ([`RefreshFamilyState::ended_by`]) are refused.
//! - The current token rotates the family. The token just rotated out, presented within the
//!   grace period after that rotation, gets a grace answer: a new access token, the current
//!   refresh token, no rotation (concurrent uses of one token see one successor). Any older
//!   token, or that one after the grace period, is a reuse: the family is revoked
//!   (`reuse_detected`) and the use refused.
//! - Scopes may be narrowed (a non-empty subset of the family's), never widened.
//!
//! Times arrive in commands; when the family was opened and last rotated is the envelope's
//! `recorded_at`, which the loader hands to [`RefreshFamilyState::observe`].

use tessera_event_schemas::events::{
    RefreshRevocationReason, RefreshTokenRevokedV1, RefreshTokenRotatedV1,
};
use tessera_event_schemas::{Event, Hash32, Timestamp};
use uuid::Uuid;

use crate::{Aggregate, DomainError};

/// The scope that makes a family outlive the session it was opened in (OpenID Connect Core
/// §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// A family as opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Family {
    pub client_id: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub scopes: Vec<String>,
    pub offline: bool,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    pub expires_at: Timestamp,
    pub idle_secs: u32,
    /// The current token's generation and keyed hash.
    pub generation: u32,
    pub current_hash: Hash32,
    /// The keyed hash of the token rotated out last (generation - 1), if any.
    pub previous_hash: Option<Hash32>,
}

/// The family's state. `Default` is a stream with no family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshFamilyState {
    pub family: Option<Family>,
    pub revoked: Option<RefreshRevocationReason>,
    /// The global position of `refresh_token.issued`: the revocation horizon starts after it.
    pub opened_position: u64,
    /// When the family was opened or last rotated (from envelopes, see
    /// [`RefreshFamilyState::observe`]).
    pub rotated_at: Timestamp,
}

/// One use of a token of the family at the token endpoint (or by introspection, which decides
/// the same way and appends nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseToken {
    pub client_id: String,
    pub generation: u32,
    /// The presented token matches the keyed hash recorded for its generation (compared in
    /// constant time by the caller), or is older than the family keeps hashes for (its tag,
    /// which only the server can make, was verified).
    pub token_matches: bool,
    /// Why the revocation horizon ended the family, if it did.
    pub ended: Option<&'static str>,
    /// The scopes asked for, if the request names any.
    pub requested_scopes: Option<Vec<String>>,
    pub now: Timestamp,
    pub grace_secs: u32,
    /// The next generation's token hash and the access token issued with it, chosen by the
    /// caller for the case the use rotates.
    pub next_hash: Hash32,
    pub jti: Uuid,
}

/// What a use decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Use {
    /// The current token: the family rotates to `generation` (the events to append).
    Rotate {
        events: Vec<Event>,
        generation: u32,
        scopes: Vec<String>,
    },
    /// The token just rotated out, within the grace period: the current generation is
    /// answered again, nothing is appended to the family.
    Grace {
        generation: u32,
        scopes: Vec<String>,
    },
    /// An old token: the family is revoked (the events to append) and the use refused.
    Reuse { events: Vec<Event> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshTokenCommand {
    Use(Box<UseToken>),
    Revoke { reason: RefreshRevocationReason },
}

impl Aggregate for RefreshFamilyState {
    type Command = RefreshTokenCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::RefreshTokenIssued(e) => {
                self.family = Some(Family {
                    client_id: e.client_id.clone(),
                    user_id: e.user_id,
                    session_id: e.session_id,
                    scopes: e.scopes.clone(),
                    offline: e.offline,
                    auth_time: e.auth_time,
                    amr: e.amr.clone(),
                    acr: e.acr.clone(),
                    expires_at: e.expires_at,
                    idle_secs: e.idle_secs,
                    generation: 0,
                    current_hash: *e.token_hash.expose(),
                    previous_hash: None,
                });
            }
            Event::RefreshTokenRotated(e) => {
                if let Some(family) = self.family.as_mut() {
                    family.previous_hash = Some(family.current_hash);
                    family.current_hash = *e.token_hash.expose();
                    family.generation = e.generation;
                }
            }
            Event::RefreshTokenRevoked(e) => {
                self.revoked.get_or_insert(e.reason);
            }
            _ => {}
        }
    }

    fn decide(&self, command: RefreshTokenCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            RefreshTokenCommand::Use(request) => match self.use_token(&request)? {
                Use::Rotate { events, .. } | Use::Reuse { events } => Ok(events),
                Use::Grace { .. } => Ok(Vec::new()),
            },
            RefreshTokenCommand::Revoke { reason } => self.revoke(reason),
        }
    }
}

impl RefreshFamilyState {
    /// Applies a recorded event with what its envelope says: when it was recorded, at which
    /// global position. The loader of the command side folds with this; `evolve` alone leaves
    /// the times unset.
    pub fn observe(&mut self, event: &Event, recorded_at: Timestamp, position: u64) {
        self.evolve(event);
        match event {
            Event::RefreshTokenIssued(_) => {
                self.opened_position = position;
                self.rotated_at = recorded_at;
            }
            Event::RefreshTokenRotated(_) => self.rotated_at = recorded_at,
            _ => {}
        }
    }

    /// The hash recorded for `generation`, when the family keeps it (the current token and
    /// the one before it).
    pub fn hash_of(&self, generation: u32) -> Option<Hash32> {
        let family = self.family.as_ref()?;
        if generation == family.generation {
            Some(family.current_hash)
        } else if generation.checked_add(1) == Some(family.generation) {
            family.previous_hash
        } else {
            None
        }
    }

    /// Why the family ended after it was opened, from events of the person's streams with
    /// their global positions (the user's stream, their consents, their sessions), if it did:
    /// a password set, the user disabled or erased, the client's consent revoked, or, for a
    /// family without `offline_access`, its session ended. Positions, not times, so that the
    /// clocks of several nodes do not matter.
    pub fn ended_by<'a>(
        &self,
        later: impl IntoIterator<Item = (u64, &'a Event)>,
    ) -> Option<&'static str> {
        let family = self.family.as_ref()?;
        later
            .into_iter()
            .filter(|(position, _)| *position > self.opened_position)
            .find_map(|(_, event)| match event {
                Event::UserPasswordSet(_) => Some("the person's password changed"),
                Event::UserDisabled(_) => Some("the person was disabled"),
                Event::UserErased(_) => Some("the person was erased"),
                Event::ConsentRevoked(e) if e.client_id == family.client_id => {
                    Some("the person revoked the client's consent")
                }
                Event::SessionEnded(e) if !family.offline && e.session_id == family.session_id => {
                    Some("the session the token was issued in ended")
                }
                _ => None,
            })
    }

    /// Whether the family is past its absolute end or idle for too long at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.family.as_ref().is_none_or(|family| {
            now >= family.expires_at
                || now >= self.rotated_at.plus_seconds(i64::from(family.idle_secs))
        })
    }

    /// Decides one use of a token of the family (see the module's rules).
    pub fn use_token(&self, request: &UseToken) -> Result<Use, DomainError> {
        let family = match &self.family {
            Some(family) if request.token_matches && request.generation <= family.generation => {
                family
            }
            _ => return Err(DomainError::NotFound),
        };
        if self.revoked.is_some() {
            return Err(DomainError::Conflict(
                "the refresh token was revoked".into(),
            ));
        }
        if family.client_id != request.client_id {
            return Err(DomainError::Conflict(
                "the refresh token was issued to another client".into(),
            ));
        }
        if self.expired(request.now) {
            return Err(DomainError::Conflict(
                "the refresh token has expired".into(),
            ));
        }
        if let Some(reason) = request.ended {
            return Err(DomainError::Conflict(format!(
                "the refresh token ended: {reason}"
            )));
        }
        let current = request.generation == family.generation;
        let in_grace = request.generation.checked_add(1) == Some(family.generation)
            && request.now < self.rotated_at.plus_seconds(i64::from(request.grace_secs));
        if !current && !in_grace {
            return Ok(Use::Reuse {
                events: self.revoke(RefreshRevocationReason::ReuseDetected)?,
            });
        }
        let scopes = narrowed(&family.scopes, request.requested_scopes.as_deref())?;
        if in_grace {
            return Ok(Use::Grace {
                generation: family.generation,
                scopes,
            });
        }
        let generation = family
            .generation
            .checked_add(1)
            .ok_or_else(|| DomainError::Conflict("the refresh token family is exhausted".into()))?;
        Ok(Use::Rotate {
            events: vec![Event::RefreshTokenRotated(RefreshTokenRotatedV1 {
                generation,
                token_hash: request.next_hash.into(),
                jti: request.jti,
            })],
            generation,
            scopes,
        })
    }

    fn revoke(&self, reason: RefreshRevocationReason) -> Result<Vec<Event>, DomainError> {
        if self.family.is_none() {
            return Err(DomainError::NotFound);
        }
        if self.revoked.is_some() {
            return Ok(Vec::new());
        }
        Ok(vec![Event::RefreshTokenRevoked(RefreshTokenRevokedV1 {
            reason,
        })])
    }
}

/// The scopes of a use: the family's, or the requested ones when they are a non-empty subset
/// of them (RFC 6749 §6: "MUST NOT include any scope not originally granted").
pub fn narrowed(
    granted: &[String],
    requested: Option<&[String]>,
) -> Result<Vec<String>, DomainError> {
    let Some(requested) = requested else {
        return Ok(granted.to_vec());
    };
    if requested.is_empty() {
        return Err(DomainError::invalid(
            "scope",
            "at least one scope is needed",
        ));
    }
    if let Some(wider) = requested.iter().find(|scope| !granted.contains(scope)) {
        return Err(DomainError::invalid(
            "scope",
            format!("{wider} was not granted to this refresh token"),
        ));
    }
    Ok(requested.to_vec())
}

#[cfg(test)]
mod tests;
