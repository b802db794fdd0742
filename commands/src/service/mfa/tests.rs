//! Authenticator apps, recovery codes, resets and the `require_mfa` query, against the
//! in-memory log and the SQLite one: what is recorded, what is sealed, and that every "once" is
//! decided in the append, also between two nodes.

use tessera_event_schemas::events::TenantSettingsV1;
use tessera_event_schemas::{Event, streams};

use super::*;
use crate::service::people_testing::{NOW, PeopleFixture, Store, TENANT, people};
use crate::service::tests::meta;

/// The code an authenticator app with `secret_base32` shows `offset_steps` steps from now, as
/// an implementation of RFC 6238 other than the server's computes it.
fn code(secret_base32: &str, offset_steps: i64) -> String {
    let at = unix_seconds(NOW)
        .checked_add_signed(offset_steps * 30)
        .unwrap();
    tessera_test_support::totp::code_at(secret_base32, at)
}

fn rejected<T: std::fmt::Debug>(result: Result<T, CommandError>) -> DomainError {
    match result {
        Err(CommandError::Rejected(error)) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn invalid(message: &str) -> DomainError {
    DomainError::invalid("code", message)
}

/// A fixture whose person has set up an authenticator app; its secret in base32.
async fn enrolled(store: Store) -> (PeopleFixture, String, RecoveryCodes) {
    let f = people(store, None).await;
    let enrollment = f
        .service
        .begin_totp_enrollment(meta(), TENANT, f.user)
        .await
        .unwrap();
    let secret = enrollment.secret_base32.to_string();
    let codes = f
        .service
        .confirm_totp_enrollment(meta(), TENANT, f.user, &code(&secret, 0))
        .await
        .unwrap();
    (f, secret, codes)
}

#[tokio::test]
async fn enrollment_shows_a_uri_a_qr_code_and_the_secret_which_the_log_holds_only_sealed() {
    let f = people(Store::Memory, None).await;
    let enrollment = f
        .service
        .begin_totp_enrollment(meta(), TENANT, f.user)
        .await
        .unwrap();
    let secret = enrollment.secret_base32.as_str();
    // 160 bits in base32: 32 characters, no padding.
    assert_eq!(secret.len(), 32, "{secret}");
    let uri = enrollment.otpauth_uri.as_str();
    assert!(
        uri.starts_with("otpauth://totp/Acme%20%20Corp:ada%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=Acme%20%20Corp"), "{uri}");
    assert!(enrollment.qr_svg.contains("<svg"), "{}", enrollment.qr_svg);
    assert!(!format!("{enrollment:?}").contains(secret));
    // Not a factor until confirmed.
    let factors = f.service.second_factors(TENANT, f.user).await.unwrap();
    assert!(factors.totp_pending && !factors.totp && !factors.has_second_factor);
    // The log holds the secret sealed, never in clear or in base32.
    let raw = Secret::try_from_base32(secret).unwrap().as_ref().to_vec();
    assert!(!f.log_contains(&raw).await);
    assert!(!f.log_contains(secret.as_bytes()).await);
    let [Event::TotpEnrollmentStarted(started)] =
        &f.events_of("mfa.totp_enrollment_started").await[..]
    else {
        panic!("one enrollment")
    };
    let opened = f
        .crypto
        .open_totp_secret(TENANT, f.user, started.sealed_secret.expose())
        .unwrap();
    assert_eq!(opened.as_slice(), raw.as_slice());
}

#[tokio::test]
async fn a_code_confirms_the_enrollment_and_issues_ten_recovery_codes_shown_once() {
    let (f, _, codes) = enrolled(Store::Memory).await;
    assert_eq!(codes.codes.len(), 10);
    assert!(!format!("{codes:?}").contains(codes.codes[0].as_str()));
    let factors = f.service.second_factors(TENANT, f.user).await.unwrap();
    assert!(factors.totp && factors.has_second_factor && !factors.must_enroll);
    assert_eq!(factors.recovery_codes_left, 10);
    for code in &codes.codes {
        assert!(!f.log_contains(code.as_bytes()).await);
    }
    let types: Vec<String> = f
        .log
        .read_stream(&streams::mfa(TENANT, f.user), 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.envelope.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "mfa.totp_enrollment_started",
            "mfa.totp_enrolled",
            "mfa.recovery_codes_generated"
        ]
    );
}

#[tokio::test]
async fn a_wrong_code_does_not_confirm_and_a_second_app_needs_the_first_removed() {
    let f = people(Store::Memory, None).await;
    let secret = f
        .service
        .begin_totp_enrollment(meta(), TENANT, f.user)
        .await
        .unwrap()
        .secret_base32
        .to_string();
    let wrong = f
        .service
        .confirm_totp_enrollment(meta(), TENANT, f.user, &code(&secret, 3))
        .await;
    assert_eq!(rejected(wrong), invalid("is not valid"));
    f.service
        .confirm_totp_enrollment(meta(), TENANT, f.user, &code(&secret, 0))
        .await
        .unwrap();
    let again = f
        .service
        .begin_totp_enrollment(meta(), TENANT, f.user)
        .await;
    assert!(matches!(rejected(again), DomainError::Conflict(_)));
    f.service.remove_totp(meta(), TENANT, f.user).await.unwrap();
    let factors = f.service.second_factors(TENANT, f.user).await.unwrap();
    assert!(!factors.has_second_factor);
    assert_eq!(
        factors.recovery_codes_left, 0,
        "codes go with the last factor"
    );
    f.service
        .begin_totp_enrollment(meta(), TENANT, f.user)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_code_is_accepted_once_and_one_step_either_side_of_now() {
    let (f, secret, _) = enrolled(Store::Memory).await;
    // The confirming code (step 0) is used up.
    let replay = f
        .service
        .verify_totp(meta(), TENANT, f.user, &code(&secret, 0))
        .await;
    assert_eq!(rejected(replay), invalid("was already used"));
    let too_late = f
        .service
        .verify_totp(meta(), TENANT, f.user, &code(&secret, 2))
        .await;
    assert_eq!(rejected(too_late), invalid("is not valid"));
    let next = f
        .service
        .verify_totp(meta(), TENANT, f.user, &format!(" {} ", code(&secret, 1)))
        .await
        .unwrap();
    assert_eq!(next.amr, ["otp"]);
    assert_eq!(next.recovery_codes_left, 10);
    let twice = f
        .service
        .verify_totp(meta(), TENANT, f.user, &code(&secret, 1))
        .await;
    assert_eq!(rejected(twice), invalid("was already used"));
    // Half a minute later the previous step is one behind, and older than the last used.
    f.clock.advance_seconds(30);
    let older = f
        .service
        .verify_totp(meta(), TENANT, f.user, &code(&secret, 0))
        .await;
    assert_eq!(rejected(older), invalid("was already used"));
    f.service
        .verify_totp(meta(), TENANT, f.user, &code(&secret, 2))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_same_code_presented_to_two_nodes_at_once_is_accepted_by_one_on_sqlite() {
    let (f, secret, _) = enrolled(Store::Sqlite).await;
    let other = f.another_node();
    let code = code(&secret, 1);
    let (a, b) = tokio::join!(
        f.service.verify_totp(meta(), TENANT, f.user, &code),
        other.verify_totp(meta(), TENANT, f.user, &code),
    );
    let accepted = [a.is_ok(), b.is_ok()];
    assert_eq!(accepted.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let refused = if a.is_ok() { b } else { a };
    assert_eq!(rejected(refused), invalid("was already used"));
    assert_eq!(f.events_of("mfa.totp_used").await.len(), 1);
}

#[tokio::test]
async fn each_recovery_code_is_accepted_once_however_it_is_typed() {
    let (f, _, codes) = enrolled(Store::Memory).await;
    let first = codes.codes[0].as_str();
    let used = f
        .service
        .use_recovery_code(
            meta(),
            TENANT,
            f.user,
            &first.to_uppercase().replace('-', " "),
        )
        .await
        .unwrap();
    assert_eq!(
        (used.amr.as_slice(), used.recovery_codes_left),
        (&["otp"][..], 9)
    );
    let again = f
        .service
        .use_recovery_code(meta(), TENANT, f.user, first)
        .await;
    assert_eq!(rejected(again), invalid("is not valid"));
    let unknown = f
        .service
        .use_recovery_code(meta(), TENANT, f.user, "aaaa-bbbb-cccc-dddd")
        .await;
    assert_eq!(rejected(unknown), invalid("is not valid"));
    // New codes replace the old ones.
    let renewed = f
        .service
        .regenerate_recovery_codes(meta(), TENANT, f.user)
        .await
        .unwrap();
    let old = f
        .service
        .use_recovery_code(meta(), TENANT, f.user, codes.codes[1].as_str())
        .await;
    assert_eq!(rejected(old), invalid("is not valid"));
    f.service
        .use_recovery_code(meta(), TENANT, f.user, renewed.codes[1].as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_recovery_code_raced_on_two_nodes_is_accepted_once() {
    let (f, _, codes) = enrolled(Store::Sqlite).await;
    let other = f.another_node();
    let code = codes.codes[4].as_str();
    let (a, b) = tokio::join!(
        f.service.use_recovery_code(meta(), TENANT, f.user, code),
        other.use_recovery_code(meta(), TENANT, f.user, code),
    );
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1);
    assert_eq!(f.events_of("mfa.recovery_code_used").await.len(), 1);
}

#[tokio::test]
async fn a_reset_removes_every_factor_and_ends_the_sessions_in_the_same_append() {
    let (f, secret, _) = enrolled(Store::Memory).await;
    for _ in 0..2 {
        f.service
            .start_session(meta(), TENANT, f.user, vec!["pwd".into(), "otp".into()])
            .await
            .unwrap();
    }
    let before = f.log.head_position().await.unwrap();
    let reset = f.service.reset_mfa(meta(), TENANT, f.user).await.unwrap();
    assert!(reset.changed());
    assert_eq!(
        (
            reset.totp,
            reset.recovery_codes,
            reset.passkeys,
            reset.sessions_ended
        ),
        (true, 10, 0, 2)
    );
    let sessions = f.service.load_sessions(TENANT, f.user).await.unwrap();
    assert!(sessions.sessions.is_empty());
    // The command appended the ends (an administrator's revocations) with the reset, and
    // nothing else.
    let appended: Vec<(String, Event)> = f
        .log
        .read_all(0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.envelope.global_position > before)
        .map(|event| (event.envelope.stream_id.clone(), event.decode().unwrap()))
        .collect();
    let ended = |_| (streams::sessions(TENANT, f.user), SessionEndReason::Revoked);
    let ends: Vec<_> = appended
        .iter()
        .filter_map(|(stream, event)| match event {
            Event::SessionEnded(end) => Some((stream.clone(), end.reason)),
            _ => None,
        })
        .collect();
    assert_eq!(ends, (0..2).map(ended).collect::<Vec<_>>());
    assert_eq!(appended.len(), 3, "{appended:?}");
    assert!(
        appended
            .iter()
            .any(|(stream, event)| *stream == streams::mfa(TENANT, f.user)
                && matches!(event, Event::MfaReset(_)))
    );
    let factors = f.service.second_factors(TENANT, f.user).await.unwrap();
    assert!(!factors.has_second_factor && !factors.totp && factors.recovery_codes_left == 0);
    let gone = f
        .service
        .verify_totp(meta(), TENANT, f.user, &code(&secret, 1))
        .await;
    assert!(matches!(rejected(gone), DomainError::Conflict(_)));
    // Resetting nothing records nothing.
    let head = f.log.head_position().await.unwrap();
    let again = f.service.reset_mfa(meta(), TENANT, f.user).await.unwrap();
    assert!(!again.changed());
    assert_eq!(f.log.head_position().await.unwrap(), head);
    // Nor does it end the sessions of a user who has no factor to reset.
    f.service
        .start_session(meta(), TENANT, f.user, vec!["pwd".into()])
        .await
        .unwrap();
    let none = f.service.reset_mfa(meta(), TENANT, f.user).await.unwrap();
    assert_eq!(none.sessions_ended, 0);
    let sessions = f.service.load_sessions(TENANT, f.user).await.unwrap();
    assert_eq!(sessions.sessions.len(), 1);
}

#[tokio::test]
async fn a_tenant_requiring_mfa_makes_a_user_enroll_until_they_have_a_second_factor() {
    let settings = TenantSettingsV1 {
        require_mfa: true,
        ..tessera_domain::tenant::default_settings()
    };
    let f = people(Store::Memory, Some(settings)).await;
    let before = f.service.second_factors(TENANT, f.user).await.unwrap();
    assert!(before.must_enroll && !before.has_second_factor);
    let secret = f
        .service
        .begin_totp_enrollment(meta(), TENANT, f.user)
        .await
        .unwrap()
        .secret_base32
        .to_string();
    assert!(
        f.service
            .second_factors(TENANT, f.user)
            .await
            .unwrap()
            .must_enroll
    );
    f.service
        .confirm_totp_enrollment(meta(), TENANT, f.user, &code(&secret, 0))
        .await
        .unwrap();
    assert!(
        !f.service
            .second_factors(TENANT, f.user)
            .await
            .unwrap()
            .must_enroll
    );
}

#[tokio::test]
async fn disabled_and_erased_people_verify_no_codes_and_strangers_are_not_found() {
    let (f, secret, codes) = enrolled(Store::Memory).await;
    f.service
        .disable_user(meta(), TENANT, f.user)
        .await
        .unwrap();
    let disabled = f
        .service
        .verify_totp(meta(), TENANT, f.user, &code(&secret, 1))
        .await;
    assert!(matches!(
        rejected(disabled),
        DomainError::IllegalTransition { .. }
    ));
    let recovery = f
        .service
        .use_recovery_code(meta(), TENANT, f.user, codes.codes[0].as_str())
        .await;
    assert!(matches!(
        rejected(recovery),
        DomainError::IllegalTransition { .. }
    ));
    // An administrator can still reset a disabled user's factors.
    assert!(
        f.service
            .reset_mfa(meta(), TENANT, f.user)
            .await
            .unwrap()
            .changed()
    );
    f.service.erase_user(meta(), TENANT, f.user).await.unwrap();
    let erased = f.service.reset_mfa(meta(), TENANT, f.user).await;
    assert!(matches!(
        rejected(erased),
        DomainError::IllegalTransition { .. }
    ));
    let stranger = f
        .service
        .reset_mfa(meta(), TENANT, Uuid::from_u128(5))
        .await;
    assert!(
        matches!(stranger, Err(CommandError::NotFound { kind: "user", .. })),
        "{stranger:?}"
    );
    let elsewhere = f.service.second_factors(Uuid::from_u128(77), f.user).await;
    assert!(matches!(
        elsewhere,
        Err(CommandError::NotFound { kind: "tenant", .. })
    ));
}
