//! Tests of the refresh-token family: rotation, grace, reuse, expiry, scope narrowing and the
//! revocation horizon.

use tessera_event_schemas::events::{
    ConsentRevokedV1, RefreshTokenIssuedV1, SessionEndReason, SessionEndedV1, UserDisabledV1,
};

use super::*;

const OPENED: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
const GRACE: u32 = 30;

fn issued(offline: bool) -> Event {
    Event::RefreshTokenIssued(RefreshTokenIssuedV1 {
        client_id: "app".into(),
        user_id: Uuid::from_u128(1),
        session_id: Uuid::from_u128(2),
        scopes: vec!["openid".into(), "profile".into()],
        offline,
        auth_time: OPENED,
        amr: vec!["pwd".into()],
        acr: "1".into(),
        token_hash: Hash32([0; 32]).into(),
        expires_at: OPENED.plus_seconds(30 * 86_400),
        idle_secs: 3600,
    })
}

fn rotated(generation: u32) -> Event {
    Event::RefreshTokenRotated(RefreshTokenRotatedV1 {
        generation,
        token_hash: Hash32([generation as u8; 32]).into(),
        jti: Uuid::from_u128(u128::from(generation)),
    })
}

/// A family opened at position 10 and `OPENED`, then rotated once per second.
fn family(rotations: u32) -> RefreshFamilyState {
    let mut state = RefreshFamilyState::default();
    state.observe(&issued(false), OPENED, 10);
    for generation in 1..=rotations {
        state.observe(
            &rotated(generation),
            OPENED.plus_seconds(i64::from(generation)),
            10 + u64::from(generation),
        );
    }
    state
}

fn use_of(generation: u32, now: Timestamp) -> UseToken {
    UseToken {
        client_id: "app".into(),
        generation,
        token_matches: true,
        ended: None,
        requested_scopes: None,
        now,
        grace_secs: GRACE,
        next_hash: Hash32([99; 32]),
        jti: Uuid::from_u128(77),
    }
}

fn refused(result: Result<Use, DomainError>) -> String {
    match result {
        Err(DomainError::Conflict(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_current_token_rotates_the_family_to_the_next_generation() {
    let state = family(1);
    let outcome = state.use_token(&use_of(1, OPENED.plus_seconds(5))).unwrap();
    let Use::Rotate {
        events,
        generation,
        scopes,
    } = outcome
    else {
        panic!("expected a rotation, got {outcome:?}");
    };
    assert_eq!(generation, 2);
    assert_eq!(scopes, vec!["openid", "profile"]);
    assert_eq!(
        events,
        vec![Event::RefreshTokenRotated(RefreshTokenRotatedV1 {
            generation: 2,
            token_hash: Hash32([99; 32]).into(),
            jti: Uuid::from_u128(77),
        })]
    );
    let mut after = state.clone();
    after.observe(&events[0], OPENED.plus_seconds(5), 20);
    assert_eq!(after.hash_of(2), Some(Hash32([99; 32])));
    assert_eq!(after.hash_of(1), Some(Hash32([1; 32])));
    assert_eq!(after.hash_of(0), None, "older hashes are not kept");
}

#[test]
fn the_token_just_rotated_out_gets_the_current_generation_within_the_grace_period_only() {
    // Rotated to generation 1 at OPENED + 1s.
    let state = family(1);
    let within = OPENED.plus_seconds(1 + i64::from(GRACE) - 1);
    assert_eq!(
        state.use_token(&use_of(0, within)).unwrap(),
        Use::Grace {
            generation: 1,
            scopes: vec!["openid".into(), "profile".into()]
        }
    );
    let after = OPENED.plus_seconds(1 + i64::from(GRACE));
    assert_eq!(
        state.use_token(&use_of(0, after)).unwrap(),
        Use::Reuse {
            events: vec![Event::RefreshTokenRevoked(RefreshTokenRevokedV1 {
                reason: RefreshRevocationReason::ReuseDetected
            })]
        }
    );
}

#[test]
fn an_older_token_revokes_the_family_and_a_revoked_family_refuses_every_token() {
    let mut state = family(2);
    let outcome = state.use_token(&use_of(0, OPENED.plus_seconds(3))).unwrap();
    let Use::Reuse { events } = outcome else {
        panic!("expected a reuse, got {outcome:?}");
    };
    state.observe(&events[0], OPENED.plus_seconds(3), 30);
    assert!(refused(state.use_token(&use_of(2, OPENED.plus_seconds(4)))).contains("revoked"));
    assert_eq!(
        state.decide(RefreshTokenCommand::Revoke {
            reason: RefreshRevocationReason::Revoked
        }),
        Ok(Vec::new()),
        "a family is revoked once"
    );
    assert_eq!(state.revoked, Some(RefreshRevocationReason::ReuseDetected));
}

#[test]
fn a_token_of_no_family_a_forged_generation_or_a_wrong_hash_is_not_found() {
    let none = RefreshFamilyState::default();
    assert_eq!(
        none.use_token(&use_of(0, OPENED)),
        Err(DomainError::NotFound)
    );
    let state = family(1);
    assert_eq!(
        state.use_token(&use_of(2, OPENED)),
        Err(DomainError::NotFound)
    );
    let mut mismatched = use_of(1, OPENED);
    mismatched.token_matches = false;
    assert_eq!(state.use_token(&mismatched), Err(DomainError::NotFound));
}

#[test]
fn another_client_is_refused_without_revoking_the_family() {
    let state = family(0);
    let mut other = use_of(0, OPENED);
    other.client_id = "other".into();
    assert!(refused(state.use_token(&other)).contains("another client"));
}

#[test]
fn a_family_ends_at_its_absolute_end_and_after_idling_since_its_last_rotation() {
    let state = family(1);
    // Idle 3600 s after the rotation at OPENED + 1 s.
    assert!(
        state
            .use_token(&use_of(1, OPENED.plus_seconds(3600)))
            .is_ok()
    );
    assert!(refused(state.use_token(&use_of(1, OPENED.plus_seconds(3601)))).contains("expired"));
    let mut busy = family(0);
    // Rotated every half hour for 30 days, it still ends at its absolute end.
    busy.rotated_at = OPENED.plus_seconds(30 * 86_400 - 10);
    assert!(
        busy.use_token(&use_of(0, OPENED.plus_seconds(30 * 86_400 - 1)))
            .is_ok()
    );
    assert!(
        refused(busy.use_token(&use_of(0, OPENED.plus_seconds(30 * 86_400)))).contains("expired")
    );
}

#[test]
fn scopes_may_be_narrowed_but_never_widened() {
    let state = family(0);
    let mut narrower = use_of(0, OPENED);
    narrower.requested_scopes = Some(vec!["openid".into()]);
    assert!(matches!(
        state.use_token(&narrower),
        Ok(Use::Rotate { scopes, .. }) if scopes == vec!["openid"]
    ));
    let mut wider = use_of(0, OPENED);
    wider.requested_scopes = Some(vec!["openid".into(), "email".into()]);
    assert!(matches!(
        state.use_token(&wider),
        Err(DomainError::Validation { field, .. }) if field == "scope"
    ));
}

#[test]
fn the_revocation_horizon_counts_only_events_after_the_family_opened() {
    let state = family(0);
    let disabled = Event::UserDisabled(UserDisabledV1 {});
    assert_eq!(state.ended_by([(9, &disabled)]), None, "before the opening");
    assert_eq!(
        state.ended_by([(11, &disabled)]),
        Some("the person was disabled")
    );
    let other_client = Event::ConsentRevoked(ConsentRevokedV1 {
        client_id: "other".into(),
    });
    let this_client = Event::ConsentRevoked(ConsentRevokedV1 {
        client_id: "app".into(),
    });
    assert_eq!(state.ended_by([(11, &other_client)]), None);
    assert!(state.ended_by([(11, &this_client)]).is_some());
}

#[test]
fn a_session_ending_ends_only_families_without_offline_access() {
    let ended = Event::SessionEnded(SessionEndedV1 {
        session_id: Uuid::from_u128(2),
        reason: SessionEndReason::SignedOut,
    });
    let another = Event::SessionEnded(SessionEndedV1 {
        session_id: Uuid::from_u128(3),
        reason: SessionEndReason::SignedOut,
    });
    let online = family(0);
    assert!(online.ended_by([(11, &ended)]).is_some());
    assert_eq!(online.ended_by([(11, &another)]), None);
    let mut offline = RefreshFamilyState::default();
    offline.observe(&issued(true), OPENED, 10);
    assert_eq!(offline.ended_by([(11, &ended)]), None);
    let mut ended_use = use_of(0, OPENED);
    ended_use.ended = online.ended_by([(11, &ended)]);
    assert!(refused(online.use_token(&ended_use)).contains("session"));
}
