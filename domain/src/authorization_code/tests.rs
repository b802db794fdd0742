//! Given/when/then tests of the authorization code: issue, redeem once, reuse, PKCE, expiry.

use tessera_event_schemas::events::AuthorizationCodeIssuedV1;

use super::*;
use crate::testing::given;

const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn issued(challenge: Option<&str>) -> Event {
    Event::AuthorizationCodeIssued(AuthorizationCodeIssuedV1 {
        code_hash: Hash32([7; 32]).into(),
        client_id: "app".into(),
        user_id: Uuid::from_u128(1),
        session_id: Uuid::from_u128(2),
        redirect_uri: "https://app.example/cb".into(),
        scopes: vec!["openid".into()],
        code_challenge: challenge.map(str::to_owned),
        nonce: Some("n".into()),
        auth_time: NOW,
        amr: vec!["pwd".into()],
        acr: "1".into(),
        expires_at: NOW.plus_seconds(CODE_TTL_SECS),
    })
}

fn redemption() -> Redemption {
    Redemption {
        jti: Uuid::from_u128(9),
        access_token_ttl_secs: 300,
        refresh_family: None,
    }
}

fn redeem(verifier: Option<&str>) -> AuthorizationCodeCommand {
    AuthorizationCodeCommand::Redeem(Box::new(RedeemCode {
        code_matches: true,
        client_id: "app".into(),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: verifier.map(|verifier| PkceVerifier {
            verifier: verifier.to_owned(),
            // RFC 7636 appendix B's verifier transforms to its challenge.
            s256: if verifier == VERIFIER {
                CHALLENGE.to_owned()
            } else {
                "x".repeat(43)
            },
        }),
        now: NOW,
        redemption: redemption(),
    }))
}

fn redeemed_event() -> Event {
    Event::AuthorizationCodeRedeemed(AuthorizationCodeRedeemedV1 {
        jti: Uuid::from_u128(9),
        access_token_ttl_secs: 300,
        refresh_family: None,
    })
}

fn with(change: impl FnOnce(&mut RedeemCode)) -> AuthorizationCodeCommand {
    let AuthorizationCodeCommand::Redeem(mut command) = redeem(Some(VERIFIER)) else {
        unreachable!()
    };
    change(&mut command);
    AuthorizationCodeCommand::Redeem(command)
}

fn conflict(result: Result<Vec<Event>, DomainError>) -> String {
    match result {
        Err(DomainError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn a_code_with_its_verifier_is_redeemed_once_for_what_the_caller_issues() {
    let events = given::<AuthorizationCodeState>([issued(Some(CHALLENGE))])
        .when(redeem(Some(VERIFIER)))
        .unwrap();
    assert_eq!(events, vec![redeemed_event()]);
}

#[test]
fn a_redeemed_code_presented_again_records_its_reuse_once() {
    let twice = given::<AuthorizationCodeState>([issued(Some(CHALLENGE)), redeemed_event()]);
    assert_eq!(
        twice.when(redeem(Some(VERIFIER))).unwrap(),
        vec![Event::AuthorizationCodeReused(AuthorizationCodeReusedV1 {})]
    );
    let thrice = given::<AuthorizationCodeState>([
        issued(Some(CHALLENGE)),
        redeemed_event(),
        Event::AuthorizationCodeReused(AuthorizationCodeReusedV1 {}),
    ]);
    assert!(conflict(thrice.when(redeem(Some(VERIFIER)))).contains("already used"));
}

#[test]
fn a_code_that_does_not_hash_to_the_record_or_was_never_issued_is_not_found() {
    let wrong = with(|command| command.code_matches = false);
    assert_eq!(
        given::<AuthorizationCodeState>([issued(Some(CHALLENGE))]).when(wrong),
        Err(DomainError::NotFound)
    );
    assert_eq!(
        given::<AuthorizationCodeState>([]).when(redeem(Some(VERIFIER))),
        Err(DomainError::NotFound)
    );
    // A wrong code presented for a redeemed one revokes nothing.
    assert_eq!(
        given::<AuthorizationCodeState>([issued(None), redeemed_event()])
            .when(with(|command| command.code_matches = false)),
        Err(DomainError::NotFound)
    );
}

#[test]
fn another_client_an_expired_code_or_another_redirect_uri_is_refused() {
    let code = given::<AuthorizationCodeState>([issued(Some(CHALLENGE))]);
    assert!(
        conflict(code.when(with(|command| command.client_id = "other".into())))
            .contains("another client")
    );
    assert!(
        conflict(code.when(with(|command| {
            command.now = NOW.plus_seconds(CODE_TTL_SECS);
        })))
        .contains("expired")
    );
    assert!(
        code.when(with(
            |command| command.now = NOW.plus_seconds(CODE_TTL_SECS - 1)
        ))
        .is_ok(),
        "valid until the last microsecond before its expiry"
    );
    assert!(
        conflict(code.when(with(|command| {
            command.redirect_uri = Some("https://app.example/cb/".into());
        })))
        .contains("redirect_uri")
    );
    assert!(
        conflict(code.when(with(|command| command.redirect_uri = None))).contains("redirect_uri")
    );
}

#[test]
fn pkce_refuses_a_downgrade_a_missing_verifier_and_a_mismatch() {
    let without_challenge = given::<AuthorizationCodeState>([issued(None)]);
    assert!(conflict(without_challenge.when(redeem(Some(VERIFIER)))).contains("no code_challenge"));
    assert!(without_challenge.when(redeem(None)).is_ok());
    let with_challenge = given::<AuthorizationCodeState>([issued(Some(CHALLENGE))]);
    assert!(conflict(with_challenge.when(redeem(None))).contains("required"));
    let other = "a".repeat(43);
    assert!(conflict(with_challenge.when(redeem(Some(&other)))).contains("does not match"));
    // The right transform of a verifier that is too short is still refused.
    let short = with(|command| {
        if let Some(verifier) = command.code_verifier.as_mut() {
            verifier.verifier = "short".into();
        }
    });
    assert!(conflict(with_challenge.when(short)).contains("does not match"));
}

#[test]
fn pkce_verifiers_have_rfc_7636s_shape() {
    assert!(is_pkce_verifier(VERIFIER));
    assert!(is_pkce_verifier(&"~".repeat(128)));
    assert!(!is_pkce_verifier(&"a".repeat(42)));
    assert!(!is_pkce_verifier(&"a".repeat(129)));
    assert!(!is_pkce_verifier(&format!("{}+", "a".repeat(43))));
}
