//! The sessions aggregate, given events, when a command, then events: password sign-in and
//! its failures, lockout and unlock, forced password changes, idle sessions and eviction.

use tessera_event_schemas::events::{SessionSeenAtV1, SessionSeenV1};

use super::*;
use crate::tenant::default_settings;
use crate::testing::given;

const USER: Uuid = Uuid::from_u128(5);
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
const MINUTE: i64 = 60;

fn at(minutes: i64) -> Timestamp {
    NOW.plus_seconds(minutes * MINUTE)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x100 + n)
}

fn new_session(n: u128, now: Timestamp) -> NewSession {
    NewSession {
        session_id: id(n),
        user_id: USER,
        token_hash: Hash32([n as u8; 32]),
        amr: vec![AMR_PASSWORD.into()],
        now,
    }
}

fn rules() -> SessionRules {
    SessionRules {
        idle_timeout_minutes: 60,
        max_sessions: 2,
    }
}

fn password(temporary: bool, set_at: Timestamp) -> Option<Password> {
    Some(Password {
        hash: "$argon2id$...".into(),
        temporary,
        set_at,
    })
}

/// A password sign-in of an active user whose (permanent) password `matched` or not.
fn attempt(matched: bool, now: Timestamp, session: u128) -> SessionsCommand {
    let settings = default_settings();
    SessionsCommand::PasswordSignIn(Box::new(PasswordSignIn {
        status: UserStatus::Active,
        password: password(false, NOW),
        matched,
        lockout: LockoutPolicyV1 {
            max_attempts: 3,
            lockout_duration_minutes: 15,
            reset_after_minutes: 10,
        },
        password_policy: settings.password_policy,
        rules: rules(),
        has_second_factor: false,
        require_mfa: false,
        session: new_session(session, now),
    }))
}

fn with(command: SessionsCommand, change: impl FnOnce(&mut PasswordSignIn)) -> SessionsCommand {
    match command {
        SessionsCommand::PasswordSignIn(mut attempt) => {
            change(&mut attempt);
            SessionsCommand::PasswordSignIn(attempt)
        }
        other => other,
    }
}

fn wrong(now: Timestamp, locked_until: Option<Timestamp>) -> Event {
    failed(
        SignInMethod::Password,
        SignInFailure::WrongPassword,
        now,
        locked_until,
    )
}

fn started(n: u128, now: Timestamp) -> Event {
    Event::SessionStarted(SessionStartedV1 {
        session_id: id(n),
        user_id: USER,
        token_hash: Hash32([n as u8; 32]).into(),
        amr: vec![AMR_PASSWORD.into()],
        auth_time: now,
    })
}

fn succeeded(n: u128, now: Timestamp) -> Event {
    Event::SignInSucceeded(SignInSucceededV1 {
        method: SignInMethod::Password,
        session_id: Some(id(n)),
        pending_step: None,
        at: now,
    })
}

fn reason_of(events: &[Event]) -> Option<SignInFailure> {
    match events {
        [Event::SignInFailed(failed)] => Some(failed.reason),
        _ => None,
    }
}

#[test]
fn a_matching_password_signs_in_and_starts_a_session() {
    let events = given::<SessionsState>([])
        .when(attempt(true, NOW, 1))
        .unwrap();
    assert_eq!(events, [succeeded(1, NOW), started(1, NOW)]);
    let state = SessionsState::replay(events.iter());
    assert_eq!(state.sessions.len(), 1);
    assert_eq!(state.sessions[0].last_seen, NOW);
}

#[test]
fn disabled_passwordless_and_locked_users_fail_whatever_the_password() {
    let disabled = with(attempt(true, NOW, 1), |a| a.status = UserStatus::Disabled);
    let none = with(attempt(true, NOW, 1), |a| a.password = None);
    let locked = given::<SessionsState>([wrong(NOW, Some(at(15)))]);
    assert_eq!(
        reason_of(&given::<SessionsState>([]).when(disabled).unwrap()),
        Some(SignInFailure::Disabled)
    );
    assert_eq!(
        reason_of(&given::<SessionsState>([]).when(none).unwrap()),
        Some(SignInFailure::NoPassword)
    );
    assert_eq!(
        reason_of(&locked.when(attempt(true, at(14), 1)).unwrap()),
        Some(SignInFailure::Locked)
    );
    let erased = with(attempt(true, NOW, 1), |a| a.status = UserStatus::Erased);
    assert!(given::<SessionsState>([]).when(erased).is_err());
}

#[test]
fn failures_within_the_window_lock_the_password_for_the_lockout_duration() {
    let events = [wrong(NOW, None), wrong(at(1), None)];
    let third = given::<SessionsState>(events.clone())
        .when(attempt(false, at(2), 1))
        .unwrap();
    assert_eq!(third, [wrong(at(2), Some(at(17)))]);
    let locked = SessionsState::replay(events.iter().chain(&third));
    assert!(locked.locked_at(at(16)) && !locked.locked_at(at(17)));
    assert!(locked.failures.is_empty());
    // Once the lock lifts, the count starts again: one failure does not lock again.
    let after = given::<SessionsState>(events.iter().chain(&third).cloned());
    assert_eq!(
        after.when(attempt(false, at(17), 1)).unwrap(),
        [wrong(at(17), None)]
    );
    assert_eq!(
        after.when(attempt(true, at(17), 1)).unwrap()[0],
        succeeded(1, at(17))
    );
}

#[test]
fn failures_older_than_the_window_and_before_a_success_do_not_count() {
    // Two failures ten minutes ago are outside the window (reset_after_minutes = 10).
    let old = [wrong(NOW, None), wrong(NOW, None)];
    assert_eq!(
        given::<SessionsState>(old.clone())
            .when(attempt(false, at(10), 1))
            .unwrap(),
        [wrong(at(10), None)]
    );
    let reset = [wrong(NOW, None), wrong(NOW, None), succeeded(1, NOW)];
    assert_eq!(
        given::<SessionsState>(reset)
            .when(attempt(false, at(1), 2))
            .unwrap(),
        [wrong(at(1), None)]
    );
}

#[test]
fn a_temporary_or_expired_password_signs_in_without_a_session() {
    let change = Event::SignInSucceeded(SignInSucceededV1 {
        method: SignInMethod::Password,
        session_id: None,
        pending_step: Some(SignInStep::ChangePassword),
        at: NOW,
    });
    let temporary = with(attempt(true, NOW, 1), |a| a.password = password(true, NOW));
    assert_eq!(
        given::<SessionsState>([]).when(temporary).unwrap(),
        std::slice::from_ref(&change)
    );
    let expired = with(attempt(true, NOW, 1), |a| {
        a.password_policy.max_age_days = 90;
        a.password = password(false, NOW.plus_seconds(-90 * 24 * 60 * MINUTE));
    });
    assert_eq!(given::<SessionsState>([]).when(expired).unwrap(), [change]);
}

#[test]
fn idle_sessions_end_and_the_oldest_beyond_the_limit_is_evicted() {
    let history = [
        started(1, NOW),
        started(2, at(10)),
        started(3, at(20)),
        Event::SessionSeen(SessionSeenV1 {
            sessions: vec![SessionSeenAtV1 {
                session_id: id(2),
                last_seen_at: at(50),
            }],
        }),
    ];
    // At 70 minutes: session 1 (seen at 0) is idle; 2 (seen at 50) and 3 (seen at 20) are
    // live, so the new one makes three of a limit of two, and 3's elder, 2, goes.
    let events = given::<SessionsState>(history.clone())
        .when(SessionsCommand::Start {
            session: new_session(4, at(70)),
            rules: rules(),
        })
        .unwrap();
    assert_eq!(
        events,
        [
            ended(id(1), SessionEndReason::Expired),
            started(4, at(70)),
            ended(id(2), SessionEndReason::Evicted),
        ]
    );
    let state = SessionsState::replay(history.iter().chain(&events));
    let left: Vec<Uuid> = state.sessions.iter().map(|s| s.session_id).collect();
    assert_eq!(left, [id(3), id(4)]);
    // A session id is started once.
    assert!(
        given::<SessionsState>(history)
            .when(SessionsCommand::Start {
                session: new_session(2, at(71)),
                rules: rules(),
            })
            .is_err()
    );
}

#[test]
fn ending_names_an_active_session_and_ending_all_spares_the_exception() {
    let history = [started(1, NOW), started(2, NOW), started(3, NOW)];
    let state = given::<SessionsState>(history.clone());
    assert_eq!(
        state
            .when(SessionsCommand::End {
                session_id: id(2),
                reason: SessionEndReason::SignedOut
            })
            .unwrap(),
        [ended(id(2), SessionEndReason::SignedOut)]
    );
    assert_eq!(
        state.when(SessionsCommand::End {
            session_id: id(9),
            reason: SessionEndReason::Revoked
        }),
        Err(DomainError::NotFound)
    );
    assert_eq!(
        state
            .when(SessionsCommand::EndAll {
                reason: SessionEndReason::PasswordChanged,
                except: Some(id(2)),
            })
            .unwrap(),
        [
            ended(id(1), SessionEndReason::PasswordChanged),
            ended(id(3), SessionEndReason::PasswordChanged),
        ]
    );
    assert_eq!(
        given::<SessionsState>([])
            .when(SessionsCommand::EndAll {
                reason: SessionEndReason::UserDisabled,
                except: None
            })
            .unwrap(),
        []
    );
}

#[test]
fn unlock_lifts_a_lock_and_forgets_failures_or_changes_nothing() {
    let unlock = SessionsCommand::Unlock { now: at(1) };
    let unlocked = vec![Event::SignInUnlocked(SignInUnlockedV1 {})];
    let locked = [wrong(NOW, Some(at(15)))];
    assert_eq!(
        given::<SessionsState>(locked.clone())
            .when(unlock.clone())
            .unwrap(),
        unlocked
    );
    let state = SessionsState::replay(locked.iter().chain(&unlocked));
    assert!(!state.locked_at(at(1)));
    assert_eq!(
        given::<SessionsState>([wrong(NOW, None)])
            .when(unlock.clone())
            .unwrap(),
        unlocked
    );
    assert_eq!(given::<SessionsState>([]).when(unlock).unwrap(), []);
}

#[test]
fn refusals_are_recorded_and_do_not_count_towards_a_lockout() {
    let refusal = SessionsCommand::Refuse {
        method: SignInMethod::Password,
        reason: SignInFailure::RateLimited,
        now: NOW,
    };
    let events = given::<SessionsState>([]).when(refusal).unwrap();
    assert_eq!(reason_of(&events), Some(SignInFailure::RateLimited));
    assert!(SessionsState::replay(events.iter()).failures.is_empty());
}

#[test]
fn a_right_password_waits_for_the_second_factor_or_its_enrollment() {
    let step = |pending_step| {
        vec![Event::SignInSucceeded(SignInSucceededV1 {
            method: SignInMethod::Password,
            session_id: None,
            pending_step: Some(pending_step),
            at: NOW,
        })]
    };
    let has_factor = with(attempt(true, NOW, 1), |a| a.has_second_factor = true);
    assert_eq!(
        given::<SessionsState>([]).when(has_factor).unwrap(),
        step(SignInStep::SecondFactor)
    );
    let required = with(attempt(true, NOW, 1), |a| a.require_mfa = true);
    assert_eq!(
        given::<SessionsState>([]).when(required).unwrap(),
        step(SignInStep::EnrollSecondFactor)
    );
    // A new password comes first; the second factor follows it.
    let both = with(attempt(true, NOW, 1), |a| {
        a.has_second_factor = true;
        a.password = password(true, NOW);
    });
    assert_eq!(
        given::<SessionsState>([]).when(both).unwrap(),
        step(SignInStep::ChangePassword)
    );
    // A wrong password is a wrong password, factor or not.
    let wrong = with(attempt(false, NOW, 1), |a| a.has_second_factor = true);
    assert!(matches!(
        given::<SessionsState>([]).when(wrong).unwrap()[..],
        [Event::SignInFailed(_)]
    ));
}
