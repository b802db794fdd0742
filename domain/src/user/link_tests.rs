//! The user's emailed links, given events, when a command, then events; and why a refused
//! link is refused.

use super::*;
use crate::testing::given;

const USER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0007);
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn created() -> Event {
    Event::UserCreated(UserCreatedV1 {
        user_id: USER,
        email: vec![9; 40].into(),
        email_hash: Hash32([5; 32]).into(),
        email_verified: false,
        name: None.into(),
        given_name: None.into(),
        family_name: None.into(),
        roles: vec![],
    })
}

fn link(byte: u8, at: Timestamp, secs: i64) -> Link {
    Link {
        token_hash: Hash32([byte; 32]),
        expires_at: at.plus_seconds(secs),
    }
}

fn reset_requested(byte: u8, at: Timestamp) -> Event {
    Event::UserPasswordResetRequested(UserPasswordResetRequestedV1 {
        link_id: USER,
        token_hash: Hash32([byte; 32]).into(),
        expires_at: at.plus_seconds(links::RESET_LINK_SECS),
    })
}

fn verification_requested(byte: u8) -> Event {
    Event::UserEmailVerificationRequested(UserEmailVerificationRequestedV1 {
        link_id: USER,
        token_hash: Hash32([byte; 32]).into(),
        expires_at: NOW.plus_seconds(links::VERIFICATION_LINK_SECS),
    })
}

fn password_set() -> Event {
    Event::UserPasswordSet(UserPasswordSetV1 {
        password_hash: HASH.to_owned().into(),
        temporary: false,
        set_at: NOW,
    })
}

/// A token "matches" the hash made of its byte, as the keyed hash would.
fn token(byte: u8) -> impl Fn(&Hash32) -> bool {
    move |hash| *hash == Hash32([byte; 32])
}

#[test]
fn a_reset_request_names_the_user_and_a_second_within_a_minute_sends_nothing() {
    let request = |at| UserCommand::RequestPasswordReset {
        link: link(1, at, links::RESET_LINK_SECS),
        now: at,
    };
    assert_eq!(
        given::<UserState>([created()]).when(request(NOW)),
        Ok(vec![reset_requested(1, NOW)])
    );
    let requested = given::<UserState>([created(), reset_requested(1, NOW)]);
    assert_eq!(requested.when(request(NOW.plus_seconds(59))), Ok(vec![]));
    assert_eq!(
        requested
            .when(request(NOW.plus_seconds(60)))
            .map(|e| e.len()),
        Ok(1)
    );
}

#[test]
fn a_disabled_user_gets_no_reset_link() {
    let disabled = given::<UserState>([created(), Event::UserDisabled(UserDisabledV1 {})]);
    let request = UserCommand::RequestPasswordReset {
        link: link(1, NOW, links::RESET_LINK_SECS),
        now: NOW,
    };
    assert_eq!(disabled.when(request), Ok(vec![]));
}

#[test]
fn only_the_latest_reset_link_works_until_it_expires_or_a_password_is_set() {
    let state = given::<UserState>([
        created(),
        reset_requested(1, NOW),
        reset_requested(2, NOW.plus_seconds(120)),
    ])
    .state;
    let slot = &state.links.reset;
    let later = NOW.plus_seconds(180);
    assert!(slot.check(token(2), later).is_ok());
    assert_eq!(slot.check(token(1), later), Err(LinkRefusal::Replaced));
    assert_eq!(slot.check(token(3), later), Err(LinkRefusal::Unknown));
    let expiry = NOW.plus_seconds(120 + links::RESET_LINK_SECS);
    assert_eq!(slot.check(token(2), expiry), Err(LinkRefusal::Expired));

    let used = given::<UserState>([created(), reset_requested(2, NOW), password_set()]).state;
    assert_eq!(
        used.links.reset.check(token(2), NOW),
        Err(LinkRefusal::Used)
    );
}

#[test]
fn a_verification_link_is_voided_by_a_new_address_and_used_once() {
    let changed = Event::UserEmailChanged(UserEmailChangedV1 {
        email: vec![8; 40].into(),
        email_hash: Hash32([6; 32]).into(),
    });
    let voided = given::<UserState>([created(), verification_requested(1), changed]).state;
    assert_eq!(
        voided.links.verification.check(token(1), NOW),
        Err(LinkRefusal::Voided)
    );

    let requested = given::<UserState>([created(), verification_requested(1)]);
    assert!(
        requested
            .state
            .links
            .verification
            .check(token(1), NOW)
            .is_ok()
    );
    let verify = UserCommand::VerifyEmail {
        link_id: Some(USER),
    };
    let verified = Event::UserEmailVerified(UserEmailVerifiedV1 {
        link_id: Some(USER),
    });
    assert_eq!(requested.when(verify.clone()), Ok(vec![verified.clone()]));
    let after = given::<UserState>([created(), verification_requested(1), verified]);
    assert!(after.state.user.as_ref().unwrap().email_verified);
    assert_eq!(after.when(verify), Ok(vec![]));
    assert_eq!(
        after.state.links.verification.check(token(1), NOW),
        Err(LinkRefusal::Used)
    );
}
