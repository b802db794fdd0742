//! The invitation aggregate: a person asked to join a tenant with roles (one stream per
//! invitation, `{tenant}/invitation/{invitation}`).
//!
//! Personal fields (address, name, message) reach this crate sealed under the invitation's own
//! data key; the link's token reaches it only as its keyed hash, and whether a presented token
//! matches that hash is checked by `commands` (in constant time) and passed in. Pure: the
//! current time comes in the commands, so that "expired" is decided against the caller's clock.
//!
//! # Rules
//! - **Creation.** Once per stream, with 0 to [`crate::user::MAX_ROLES`] valid roles and an
//!   expiry after the creation time and at most [`MAX_VALIDITY_SECS`] after it.
//! - **Status.** `pending` until `accepted` or `revoked`, both terminal. `expired` is not a
//!   state: it is a pending invitation whose `expires_at` has passed ([`Invitation::is_expired`]).
//! - **Resend** (pending, expired or not): a new token hash and a new expiry; the old link
//!   stops working.
//! - **Accept**: a pending, unexpired invitation whose current token was presented, once.
//! - **Revoke**: a pending invitation (expired or not), once.

use tessera_event_schemas::events::{
    InvitationAcceptedV1, InvitationCreatedV1, InvitationResentV1, InvitationRevokedV1,
};
use tessera_event_schemas::{Event, Hash32, Timestamp};
use uuid::Uuid;

use crate::{Aggregate, DomainError, user};

/// Default validity of an invitation link (7 days), as issue 18 asks.
pub const DEFAULT_VALIDITY_SECS: i64 = 7 * 24 * 3600;
/// Longest validity of an invitation link (30 days, ADR 0004).
pub const MAX_VALIDITY_SECS: i64 = 30 * 24 * 3600;

/// Where an invitation is in its life, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => InvitationStatus::Pending,
            "accepted" => InvitationStatus::Accepted,
            "revoked" => InvitationStatus::Revoked,
            _ => return None,
        })
    }
}

/// A created invitation, as recorded. Personal fields are ciphertext under its data key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub email: Vec<u8>,
    pub email_hash: Hash32,
    pub name: Option<Vec<u8>>,
    pub roles: Vec<String>,
    pub message: Option<Vec<u8>>,
    /// The hash of the current link's token.
    pub token_hash: Hash32,
    pub expires_at: Timestamp,
    pub status: InvitationStatus,
    /// Who accepted it, once accepted.
    pub accepted_by: Option<Uuid>,
}

/// What a link is worth, as its holder may learn it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Pending, unexpired, and the current token.
    Usable,
    Expired,
    Revoked,
    Used,
    /// A token of this invitation that a resend replaced.
    Replaced,
}

impl Invitation {
    /// Whether the link's time has passed at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// What a presented link is worth at `now`; `current_token` says whether it matches the
    /// current token's hash (checked in constant time by the caller). A terminal state is told
    /// whatever the token, so that an old link of a used invitation says "used".
    pub fn link_state(&self, now: Timestamp, current_token: bool) -> LinkState {
        match self.status {
            InvitationStatus::Accepted => LinkState::Used,
            InvitationStatus::Revoked => LinkState::Revoked,
            InvitationStatus::Pending if !current_token => LinkState::Replaced,
            InvitationStatus::Pending if self.is_expired(now) => LinkState::Expired,
            InvitationStatus::Pending => LinkState::Usable,
        }
    }
}

/// The invitation aggregate's state. `Default` is an invitation never created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvitationState {
    pub invitation: Option<Invitation>,
}

/// Everything needed to create an invitation; sealing and the token are the caller's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInvitation {
    pub email: Vec<u8>,
    pub email_hash: Hash32,
    pub name: Option<Vec<u8>>,
    pub roles: Vec<String>,
    pub message: Option<Vec<u8>>,
    pub token_hash: Hash32,
    pub expires_at: Timestamp,
    pub now: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvitationCommand {
    Create(Box<NewInvitation>),
    Resend {
        token_hash: Hash32,
        expires_at: Timestamp,
        now: Timestamp,
    },
    Accept {
        /// Whether the presented token matches the current one.
        current_token: bool,
        user_id: Uuid,
        created_user: bool,
        now: Timestamp,
    },
    Revoke,
}

impl Aggregate for InvitationState {
    type Command = InvitationCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::InvitationCreated(e) => {
                self.invitation = Some(Invitation {
                    email: e.email.expose().clone(),
                    email_hash: *e.email_hash.expose(),
                    name: e.name.expose().clone(),
                    roles: e.roles.clone(),
                    message: e.message.expose().clone(),
                    token_hash: *e.token_hash.expose(),
                    expires_at: e.expires_at,
                    status: InvitationStatus::Pending,
                    accepted_by: None,
                });
            }
            Event::InvitationResent(e) => {
                if let Some(invitation) = self.invitation.as_mut() {
                    invitation.token_hash = *e.token_hash.expose();
                    invitation.expires_at = e.expires_at;
                }
            }
            Event::InvitationAccepted(e) => {
                if let Some(invitation) = self.invitation.as_mut() {
                    invitation.status = InvitationStatus::Accepted;
                    invitation.accepted_by = Some(e.user_id);
                }
            }
            Event::InvitationRevoked(_) => {
                if let Some(invitation) = self.invitation.as_mut() {
                    invitation.status = InvitationStatus::Revoked;
                }
            }
            _ => {}
        }
    }

    fn decide(&self, command: InvitationCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            InvitationCommand::Create(new) => self.create(*new),
            InvitationCommand::Resend {
                token_hash,
                expires_at,
                now,
            } => {
                let invitation = self.require_pending("resend")?;
                check_expiry(expires_at, now)?;
                if token_hash == invitation.token_hash {
                    return Err(DomainError::invalid("token", "must be a new token"));
                }
                Ok(vec![Event::InvitationResent(InvitationResentV1 {
                    token_hash: token_hash.into(),
                    expires_at,
                })])
            }
            InvitationCommand::Accept {
                current_token,
                user_id,
                created_user,
                now,
            } => {
                let invitation = self.invitation.as_ref().ok_or(DomainError::NotFound)?;
                match invitation.link_state(now, current_token) {
                    LinkState::Usable => {
                        Ok(vec![Event::InvitationAccepted(InvitationAcceptedV1 {
                            user_id,
                            created_user,
                        })])
                    }
                    other => Err(refusal(other)),
                }
            }
            InvitationCommand::Revoke => {
                self.require_pending("revoke")?;
                Ok(vec![Event::InvitationRevoked(InvitationRevokedV1 {})])
            }
        }
    }
}

/// The refusal of a link that cannot be used, in words its holder may read.
pub fn refusal(state: LinkState) -> DomainError {
    let from = match state {
        LinkState::Usable => "usable",
        LinkState::Expired => "expired",
        LinkState::Revoked => "revoked",
        LinkState::Used => "already accepted",
        LinkState::Replaced => "replaced by a newer link",
    };
    DomainError::IllegalTransition {
        from: format!("the invitation is {from}"),
        action: "accept the invitation",
    }
}

fn check_expiry(expires_at: Timestamp, now: Timestamp) -> Result<(), DomainError> {
    if expires_at <= now || expires_at > now.plus_seconds(MAX_VALIDITY_SECS) {
        return Err(DomainError::invalid(
            "expires_in",
            "must be between 1 second and 30 days",
        ));
    }
    Ok(())
}

impl InvitationState {
    fn require_pending(&self, action: &'static str) -> Result<&Invitation, DomainError> {
        let invitation = self.invitation.as_ref().ok_or(DomainError::NotFound)?;
        if invitation.status != InvitationStatus::Pending {
            return Err(DomainError::IllegalTransition {
                from: invitation.status.as_str().to_owned(),
                action,
            });
        }
        Ok(invitation)
    }

    fn create(&self, new: NewInvitation) -> Result<Vec<Event>, DomainError> {
        if self.invitation.is_some() {
            return Err(DomainError::AlreadyExists("invitation".to_owned()));
        }
        let roles = user::roles(&new.roles)?;
        check_expiry(new.expires_at, new.now)?;
        Ok(vec![Event::InvitationCreated(InvitationCreatedV1 {
            email: new.email.into(),
            email_hash: new.email_hash.into(),
            name: new.name.into(),
            roles,
            message: new.message.into(),
            token_hash: new.token_hash.into(),
            expires_at: new.expires_at,
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
    const USER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0b0b);

    fn new_invitation() -> NewInvitation {
        NewInvitation {
            email: vec![1; 40],
            email_hash: Hash32([2; 32]),
            name: None,
            roles: vec!["tenant:admin".into()],
            message: Some(vec![3; 30]),
            token_hash: Hash32([4; 32]),
            expires_at: NOW.plus_seconds(DEFAULT_VALIDITY_SECS),
            now: NOW,
        }
    }

    fn created() -> Event {
        let new = new_invitation();
        Event::InvitationCreated(InvitationCreatedV1 {
            email: new.email.into(),
            email_hash: new.email_hash.into(),
            name: None.into(),
            roles: new.roles,
            message: new.message.into(),
            token_hash: new.token_hash.into(),
            expires_at: new.expires_at,
        })
    }

    fn accept(current_token: bool, now: Timestamp) -> InvitationCommand {
        InvitationCommand::Accept {
            current_token,
            user_id: USER,
            created_user: true,
            now,
        }
    }

    #[test]
    fn an_invitation_is_created_once_with_a_bounded_expiry() {
        assert_eq!(
            given::<InvitationState>([])
                .when(InvitationCommand::Create(Box::new(new_invitation()))),
            Ok(vec![created()])
        );
        assert!(matches!(
            given::<InvitationState>([created()])
                .when(InvitationCommand::Create(Box::new(new_invitation()))),
            Err(DomainError::AlreadyExists(_))
        ));
        let too_long = NewInvitation {
            expires_at: NOW.plus_seconds(MAX_VALIDITY_SECS + 1),
            ..new_invitation()
        };
        assert!(matches!(
            given::<InvitationState>([]).when(InvitationCommand::Create(Box::new(too_long))),
            Err(DomainError::Validation { field, .. }) if field == "expires_in"
        ));
        let bad_role = NewInvitation {
            roles: vec!["Not A Role".into()],
            ..new_invitation()
        };
        assert!(matches!(
            given::<InvitationState>([]).when(InvitationCommand::Create(Box::new(bad_role))),
            Err(DomainError::Validation { .. })
        ));
    }

    #[test]
    fn a_pending_invitation_is_accepted_once_with_its_current_token() {
        let state = given::<InvitationState>([created()]);
        let accepted = state.when(accept(true, NOW)).unwrap();
        assert_eq!(accepted.len(), 1);
        let done = given::<InvitationState>([created(), accepted[0].clone()]);
        assert_eq!(
            done.state
                .invitation
                .as_ref()
                .map(|i| i.link_state(NOW, true)),
            Some(LinkState::Used)
        );
        assert!(matches!(
            done.when(accept(true, NOW)),
            Err(DomainError::IllegalTransition { .. })
        ));
    }

    #[test]
    fn an_expired_or_replaced_link_is_refused() {
        let state = given::<InvitationState>([created()]);
        let later = NOW.plus_seconds(DEFAULT_VALIDITY_SECS);
        assert_eq!(
            state
                .state
                .invitation
                .as_ref()
                .map(|i| i.link_state(later, true)),
            Some(LinkState::Expired)
        );
        assert!(state.when(accept(true, later)).is_err());
        assert!(state.when(accept(false, NOW)).is_err());
    }

    #[test]
    fn a_resend_replaces_the_token_and_the_expiry() {
        let state = given::<InvitationState>([created()]);
        let later = NOW.plus_seconds(DEFAULT_VALIDITY_SECS + 10);
        let resent = state
            .when(InvitationCommand::Resend {
                token_hash: Hash32([9; 32]),
                expires_at: later.plus_seconds(DEFAULT_VALIDITY_SECS),
                now: later,
            })
            .unwrap();
        let state = given::<InvitationState>([created(), resent[0].clone()]);
        let invitation = state.state.invitation.as_ref().unwrap();
        assert_eq!(invitation.token_hash, Hash32([9; 32]));
        assert_eq!(invitation.link_state(later, true), LinkState::Usable);
    }

    #[test]
    fn only_a_pending_invitation_is_revoked_or_resent() {
        let revoked = Event::InvitationRevoked(InvitationRevokedV1 {});
        let state = given::<InvitationState>([created(), revoked]);
        assert!(matches!(
            state.when(InvitationCommand::Revoke),
            Err(DomainError::IllegalTransition { .. })
        ));
        assert!(matches!(
            state.when(InvitationCommand::Resend {
                token_hash: Hash32([9; 32]),
                expires_at: NOW.plus_seconds(60),
                now: NOW
            }),
            Err(DomainError::IllegalTransition { .. })
        ));
        assert_eq!(
            state.state.invitation.map(|i| i.link_state(NOW, false)),
            Some(LinkState::Revoked)
        );
        assert_eq!(
            given::<InvitationState>([]).when(InvitationCommand::Revoke),
            Err(DomainError::NotFound)
        );
    }
}
