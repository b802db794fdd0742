//! A user's second factors, given events, when a command, then events.

use super::*;
use crate::testing::given;

const NOW: u64 = 59_833_340;

fn hashes(seed: u8) -> Vec<Hash32> {
    (0..RECOVERY_CODES as u8)
        .map(|i| Hash32([seed.wrapping_add(i); 32]))
        .collect()
}

fn started() -> Event {
    Event::TotpEnrollmentStarted(TotpEnrollmentStartedV1 {
        sealed_secret: vec![7; 48].into(),
    })
}

fn enrolled(step: u64) -> Event {
    Event::TotpEnrolled(TotpEnrolledV1 { step })
}

fn codes(seed: u8) -> Event {
    Event::RecoveryCodesGenerated(RecoveryCodesGeneratedV1 {
        code_hashes: hashes(seed).into(),
    })
}

/// An authenticator app confirmed at step `NOW - 5`, with recovery codes.
fn with_totp() -> Vec<Event> {
    vec![started(), enrolled(NOW - 5), codes(100)]
}

fn check(matched: Option<u64>) -> TotpCheck {
    TotpCheck {
        now_step: NOW,
        matched_step: matched,
    }
}

fn new_passkey(id: u8) -> NewPasskey {
    NewPasskey {
        credential_id: vec![id; 16],
        public_key: vec![1; 77],
        counter: 0,
        name: vec![2; 40],
        user_verified: true,
        backup_eligible: false,
        backup_state: false,
        user_verification: Requirement::Required,
        attestation_format: "none".into(),
    }
}

fn registered(id: u8, counter: u32) -> Event {
    let mut new = new_passkey(id);
    new.counter = counter;
    MfaState::default()
        .decide(MfaCommand::RegisterPasskey(Box::new(new)))
        .unwrap()
        .remove(0)
}

fn invalid(message: &str) -> Result<Vec<Event>, DomainError> {
    Err(DomainError::invalid("code", message))
}

#[test]
fn enrollment_starts_with_a_sealed_secret_and_is_confirmed_by_a_code_with_recovery_codes() {
    let fresh = given::<MfaState>([]);
    assert!(!fresh.state.has_second_factor());
    let begin = MfaCommand::BeginTotp {
        sealed_secret: vec![7; 48],
    };
    assert_eq!(fresh.when(begin.clone()), Ok(vec![started()]));
    let pending = given::<MfaState>([started()]);
    assert!(!pending.state.has_second_factor(), "not before a code");
    // Starting again replaces the unconfirmed secret.
    assert_eq!(pending.when(begin.clone()), Ok(vec![started()]));
    assert_eq!(
        pending.when(MfaCommand::ConfirmTotp {
            check: check(Some(NOW)),
            recovery_code_hashes: hashes(1),
        }),
        Ok(vec![enrolled(NOW), codes(1)])
    );
    let confirmed = given::<MfaState>([started(), enrolled(NOW), codes(1)]);
    assert!(confirmed.state.has_second_factor());
    assert_eq!(confirmed.state.recovery_codes_left(), RECOVERY_CODES);
    assert_eq!(
        confirmed.when(begin),
        Err(DomainError::Conflict(
            "an authenticator app is already set up; remove it first".into()
        ))
    );
}

#[test]
fn a_wrong_code_does_not_confirm_an_enrollment_and_nothing_is_confirmed_unstarted() {
    let confirm = |matched| MfaCommand::ConfirmTotp {
        check: check(matched),
        recovery_code_hashes: hashes(1),
    };
    assert_eq!(
        given::<MfaState>([started()]).when(confirm(None)),
        invalid("is not valid")
    );
    assert!(matches!(
        given::<MfaState>([]).when(confirm(Some(NOW))),
        Err(DomainError::Conflict(_))
    ));
}

#[test]
fn a_code_one_step_either_side_is_accepted_and_two_steps_away_is_not() {
    let app = given::<MfaState>(with_totp());
    for step in [NOW - 1, NOW, NOW + 1] {
        assert_eq!(
            app.when(MfaCommand::UseTotp(check(Some(step)))),
            Ok(vec![Event::TotpUsed(TotpUsedV1 { step })]),
            "step {step}"
        );
    }
    for step in [NOW - 2, NOW + 2] {
        assert_eq!(
            app.when(MfaCommand::UseTotp(check(Some(step)))),
            invalid("is not valid"),
            "step {step}"
        );
    }
    assert_eq!(
        app.when(MfaCommand::UseTotp(check(None))),
        invalid("is not valid")
    );
}

#[test]
fn a_replayed_code_is_refused_and_so_is_an_older_one() {
    let mut history = with_totp();
    history.push(Event::TotpUsed(TotpUsedV1 { step: NOW }));
    let app = given::<MfaState>(history);
    assert_eq!(
        app.when(MfaCommand::UseTotp(check(Some(NOW)))),
        invalid("was already used")
    );
    assert_eq!(
        app.when(MfaCommand::UseTotp(check(Some(NOW - 1)))),
        invalid("was already used")
    );
    assert!(app.when(MfaCommand::UseTotp(check(Some(NOW + 1)))).is_ok());
}

#[test]
fn the_code_that_confirmed_an_enrollment_is_used_up() {
    let app = given::<MfaState>([started(), enrolled(NOW), codes(1)]);
    assert_eq!(
        app.when(MfaCommand::UseTotp(check(Some(NOW)))),
        invalid("was already used")
    );
}

#[test]
fn a_recovery_code_is_accepted_once() {
    let app = given::<MfaState>(with_totp());
    let third = hashes(100)[2];
    let used = Event::RecoveryCodeUsed(RecoveryCodeUsedV1 { index: 2 });
    assert_eq!(
        app.when(MfaCommand::UseRecoveryCode(third)),
        Ok(vec![used.clone()])
    );
    let mut history = with_totp();
    history.push(used);
    let after = given::<MfaState>(history);
    assert_eq!(after.state.recovery_codes_left(), RECOVERY_CODES - 1);
    assert_eq!(
        after.when(MfaCommand::UseRecoveryCode(third)),
        invalid("is not valid")
    );
    assert!(
        after
            .when(MfaCommand::UseRecoveryCode(hashes(100)[3]))
            .is_ok()
    );
    assert_eq!(
        after.when(MfaCommand::UseRecoveryCode(Hash32([0; 32]))),
        invalid("is not valid")
    );
}

#[test]
fn new_recovery_codes_replace_the_old_ones_and_need_a_second_factor() {
    let mut history = with_totp();
    history.push(Event::RecoveryCodeUsed(RecoveryCodeUsedV1 { index: 0 }));
    history.push(codes(50));
    let renewed = given::<MfaState>(history);
    assert_eq!(renewed.state.recovery_codes_left(), RECOVERY_CODES);
    assert_eq!(
        renewed.when(MfaCommand::UseRecoveryCode(hashes(100)[1])),
        invalid("is not valid")
    );
    assert!(matches!(
        given::<MfaState>([]).when(MfaCommand::GenerateRecoveryCodes(hashes(1))),
        Err(DomainError::Conflict(_))
    ));
    assert!(matches!(
        given::<MfaState>(with_totp()).when(MfaCommand::GenerateRecoveryCodes(vec![])),
        Err(DomainError::Validation { .. })
    ));
}

#[test]
fn removing_the_last_second_factor_revokes_the_recovery_codes() {
    let removed = Event::TotpRemoved(TotpRemovedV1 {});
    let revoked = Event::RecoveryCodesRevoked(RecoveryCodesRevokedV1 {});
    assert_eq!(
        given::<MfaState>(with_totp()).when(MfaCommand::RemoveTotp),
        Ok(vec![removed.clone(), revoked.clone()])
    );
    let mut with_passkey = with_totp();
    with_passkey.push(registered(1, 0));
    let both = given::<MfaState>(with_passkey.clone());
    assert_eq!(both.when(MfaCommand::RemoveTotp), Ok(vec![removed.clone()]));
    assert_eq!(
        both.when(MfaCommand::RemovePasskey {
            credential_id: vec![1; 16]
        }),
        Ok(vec![Event::PasskeyRemoved(PasskeyRemovedV1 {
            credential_id: vec![1; 16]
        })])
    );
    with_passkey.push(removed);
    let passkey_only = given::<MfaState>(with_passkey);
    assert!(passkey_only.state.has_second_factor());
    assert_eq!(
        passkey_only.when(MfaCommand::RemovePasskey {
            credential_id: vec![1; 16]
        }),
        Ok(vec![
            Event::PasskeyRemoved(PasskeyRemovedV1 {
                credential_id: vec![1; 16]
            }),
            revoked
        ])
    );
    assert_eq!(
        given::<MfaState>([]).when(MfaCommand::RemoveTotp),
        Ok(vec![])
    );
}

#[test]
fn a_passkey_is_registered_once_and_signs_in_with_a_counter_that_moves_on() {
    let none = given::<MfaState>([]);
    assert_eq!(
        none.when(MfaCommand::RegisterPasskey(Box::new(new_passkey(1)))),
        Ok(vec![registered(1, 0)])
    );
    let one = given::<MfaState>([registered(1, 5)]);
    assert!(one.state.has_second_factor());
    assert_eq!(
        one.when(MfaCommand::RegisterPasskey(Box::new(new_passkey(1)))),
        Err(DomainError::AlreadyExists("passkey".into()))
    );
    let used = |counter| {
        MfaCommand::UsePasskey(PasskeyAssertion {
            credential_id: vec![1; 16],
            counter,
            backup_state: false,
        })
    };
    assert_eq!(
        one.when(used(6)),
        Ok(vec![Event::PasskeyUsed(PasskeyUsedV1 {
            credential_id: vec![1; 16],
            counter: 6,
            backup_state: false,
        })])
    );
    for stale in [5, 4, 0] {
        assert!(
            matches!(one.when(used(stale)), Err(DomainError::Conflict(_))),
            "counter {stale}"
        );
    }
    // Authenticators that keep no counter always say 0.
    let counterless = given::<MfaState>([registered(2, 0)]);
    let zero = MfaCommand::UsePasskey(PasskeyAssertion {
        credential_id: vec![2; 16],
        counter: 0,
        backup_state: true,
    });
    assert!(counterless.when(zero).is_ok());
    assert_eq!(
        one.when(MfaCommand::UsePasskey(PasskeyAssertion {
            credential_id: vec![9; 16],
            counter: 7,
            backup_state: false,
        })),
        Err(DomainError::NotFound)
    );
}

#[test]
fn a_passkey_is_refused_without_its_parts_or_past_the_limit() {
    let none = given::<MfaState>([]);
    for broken in [
        NewPasskey {
            credential_id: vec![],
            ..new_passkey(1)
        },
        NewPasskey {
            credential_id: vec![1; MAX_CREDENTIAL_ID_BYTES + 1],
            ..new_passkey(1)
        },
        NewPasskey {
            public_key: vec![],
            ..new_passkey(1)
        },
        NewPasskey {
            name: vec![],
            ..new_passkey(1)
        },
    ] {
        assert!(matches!(
            none.when(MfaCommand::RegisterPasskey(Box::new(broken))),
            Err(DomainError::Validation { .. })
        ));
    }
    let full = given::<MfaState>((0..MAX_PASSKEYS as u8).map(|id| registered(id, 0)));
    assert!(matches!(
        full.when(MfaCommand::RegisterPasskey(Box::new(new_passkey(200)))),
        Err(DomainError::Conflict(_))
    ));
    assert_eq!(passkey_name("  YubiKey 5 "), Ok("YubiKey 5".to_owned()));
    assert!(passkey_name(" ").is_err());
    assert!(passkey_name(&"x".repeat(MAX_PASSKEY_NAME_CHARS + 1)).is_err());
}

#[test]
fn a_reset_removes_every_factor_and_a_reset_of_nothing_records_nothing() {
    let mut history = with_totp();
    history.push(registered(1, 0));
    history.push(started());
    let everything = given::<MfaState>(history.clone());
    assert_eq!(
        everything.when(MfaCommand::Reset),
        Ok(vec![Event::MfaReset(MfaResetV1 {})])
    );
    history.push(Event::MfaReset(MfaResetV1 {}));
    let reset = given::<MfaState>(history);
    assert_eq!(reset.state, MfaState::default());
    assert_eq!(reset.when(MfaCommand::Reset), Ok(vec![]));
    assert_eq!(
        given::<MfaState>([started()]).when(MfaCommand::Reset),
        Ok(vec![Event::MfaReset(MfaResetV1 {})])
    );
}

#[test]
fn a_tenant_that_requires_mfa_makes_users_without_a_second_factor_enroll() {
    let none = MfaState::default();
    assert!(must_enroll(true, &none));
    assert!(!must_enroll(false, &none));
    let pending = MfaState::replay(&[started()]);
    assert!(
        must_enroll(true, &pending),
        "an unconfirmed app is no factor"
    );
    assert!(!must_enroll(true, &MfaState::replay(&with_totp())));
    assert!(!must_enroll(true, &MfaState::replay(&[registered(1, 0)])));
    assert_eq!(totp_step(1_795_000_200), 59_833_340);
    assert_eq!(totp_window(0), 0..=1);
}
