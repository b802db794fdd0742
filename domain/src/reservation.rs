//! Reservations: unique names (tenant slugs and domains, platform-wide; users' email addresses,
//! per tenant, by their keyed hash).
//!
//! One stream per name (`{system}/reservation/{kind}/{value}`). A name is free until claimed
//! and held by one owner until that owner releases it. The command handler appends the claim in
//! the same atomic append as the owner's own event, with the reservation stream's expected
//! version, so that two owners racing for one name cannot both win. Pure: no I/O.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{ReservationClaimedV1, ReservationKind, ReservationReleasedV1};
use uuid::Uuid;

use crate::{Aggregate, DomainError};

/// Who holds a name, if anyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReservationState {
    pub holder: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReservationCommand {
    Claim {
        kind: ReservationKind,
        value: String,
        owner: Uuid,
    },
    Release {
        owner: Uuid,
    },
}

/// Claims `value` for `owner`. Claiming a name one already holds changes nothing; a name held by
/// someone else is refused as already existing.
pub fn claim(
    state: &ReservationState,
    kind: ReservationKind,
    value: &str,
    owner: Uuid,
) -> Result<Vec<Event>, DomainError> {
    match state.holder {
        Some(holder) if holder == owner => Ok(Vec::new()),
        Some(_) => Err(taken(kind, value)),
        None => Ok(vec![Event::ReservationClaimed(ReservationClaimedV1 {
            kind,
            value: value.to_owned(),
            owner,
        })]),
    }
}

/// Releases a name `owner` holds. Releasing a free name changes nothing; releasing someone
/// else's is a conflict (it would let a third party steal the name).
pub fn release(state: &ReservationState, owner: Uuid) -> Result<Vec<Event>, DomainError> {
    match state.holder {
        None => Ok(Vec::new()),
        Some(holder) if holder == owner => {
            Ok(vec![Event::ReservationReleased(ReservationReleasedV1 {
                owner,
            })])
        }
        Some(_) => Err(DomainError::Conflict(
            "the name is held by another owner".to_owned(),
        )),
    }
}

/// The refusal of a name someone else holds. An email reservation's value is a keyed hash,
/// which would tell the caller nothing, so it is not repeated.
pub fn taken(kind: ReservationKind, value: &str) -> DomainError {
    match kind {
        ReservationKind::TenantSlug => DomainError::AlreadyExists(format!("slug {value:?}")),
        ReservationKind::TenantDomain => DomainError::AlreadyExists(format!("domain {value:?}")),
        ReservationKind::UserEmail => {
            DomainError::AlreadyExists("a user with this email address".to_owned())
        }
        ReservationKind::FederatedIdentity => {
            DomainError::AlreadyExists("a link of this upstream identity".to_owned())
        }
    }
}

impl Aggregate for ReservationState {
    type Command = ReservationCommand;

    fn evolve(&mut self, event: &Event) {
        match event {
            Event::ReservationClaimed(e) => self.holder = Some(e.owner),
            Event::ReservationReleased(_) => self.holder = None,
            _ => {}
        }
    }

    fn decide(&self, command: ReservationCommand) -> Result<Vec<Event>, DomainError> {
        match command {
            ReservationCommand::Claim { kind, value, owner } => claim(self, kind, &value, owner),
            ReservationCommand::Release { owner } => release(self, owner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);

    fn claimed(owner: Uuid) -> Event {
        Event::ReservationClaimed(ReservationClaimedV1 {
            kind: ReservationKind::TenantSlug,
            value: "acme".into(),
            owner,
        })
    }

    fn claim_by(owner: Uuid) -> ReservationCommand {
        ReservationCommand::Claim {
            kind: ReservationKind::TenantSlug,
            value: "acme".into(),
            owner,
        }
    }

    #[test]
    fn a_free_name_is_claimed() {
        assert_eq!(
            given::<ReservationState>([]).when(claim_by(A)),
            Ok(vec![claimed(A)])
        );
    }

    #[test]
    fn a_name_held_by_someone_else_already_exists() {
        assert_eq!(
            given::<ReservationState>([claimed(A)]).when(claim_by(B)),
            Err(DomainError::AlreadyExists("slug \"acme\"".into()))
        );
    }

    #[test]
    fn claiming_a_name_one_holds_changes_nothing() {
        assert_eq!(
            given::<ReservationState>([claimed(A)]).when(claim_by(A)),
            Ok(vec![])
        );
    }

    #[test]
    fn a_released_name_can_be_claimed_by_another_owner() {
        let released = Event::ReservationReleased(ReservationReleasedV1 { owner: A });
        assert_eq!(
            given::<ReservationState>([claimed(A), released]).when(claim_by(B)),
            Ok(vec![claimed(B)])
        );
    }

    #[test]
    fn only_the_holder_releases_a_name() {
        let state = given::<ReservationState>([claimed(A)]);
        assert_eq!(
            state.when(ReservationCommand::Release { owner: A }),
            Ok(vec![Event::ReservationReleased(ReservationReleasedV1 {
                owner: A
            })])
        );
        assert!(matches!(
            state.when(ReservationCommand::Release { owner: B }),
            Err(DomainError::Conflict(_))
        ));
        assert_eq!(
            given::<ReservationState>([]).when(ReservationCommand::Release { owner: A }),
            Ok(vec![])
        );
    }
}
