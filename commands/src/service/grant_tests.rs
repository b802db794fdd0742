//! Tests of people's grants on the in-memory log: codes redeemed once (reuse revokes what they
//! were redeemed for), PKCE, expiry with the injected clock; refresh rotation, grace, reuse,
//! the revocation horizon's causes, and concurrent uses of one token on several nodes.

use std::sync::Arc;

use tessera_crypto::GrantSecrets;
use tessera_domain::DomainError;
use tessera_event_log::{ExpectedVersion, StreamWrite};
use tessera_event_schemas::events::{ConsentRevokedV1, SessionEndReason};
use tessera_event_schemas::{Event, ProposedEvent, streams};
use uuid::Uuid;

use super::people_testing::{PeopleFixture, Store, TENANT, people};
use super::tests::meta;
use super::*;
use crate::CommandError;

const REDIRECT: &str = "https://app.example/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const POLICY: RefreshPolicy = RefreshPolicy {
    without_offline_access: false,
    ttl_secs: 86_400,
    idle_secs: 3600,
};

/// A person signed in (a session), and the session's id.
async fn signed_in(fixture: &PeopleFixture) -> Uuid {
    let (started, _) = fixture
        .service
        .start_session(meta(), TENANT, fixture.user, vec!["pwd".into()])
        .await
        .unwrap();
    started.session_id
}

async fn code(fixture: &PeopleFixture, session: Uuid, scopes: &[&str]) -> String {
    fixture
        .service
        .grant_consent_and_issue(
            meta(),
            &CodeRequest {
                tenant_id: TENANT,
                client_id: "app".into(),
                require_consent: true,
                force_consent: false,
                redirect_uri: REDIRECT.into(),
                scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
                code_challenge: Some(CHALLENGE.into()),
                nonce: Some("n-1".into()),
                user_id: fixture.user,
                session_id: session,
                auth_time: fixture.clock.now(),
                amr: vec!["pwd".into()],
            },
        )
        .await
        .unwrap()
        .code
}

fn redeem<'a>(code: &'a str, verifier: Option<&'a str>) -> RedeemCode<'a> {
    RedeemCode {
        tenant_id: TENANT,
        client_id: "app",
        code,
        redirect_uri: Some(REDIRECT),
        code_verifier: verifier,
        access_token_ttl_secs: 300,
        kid: "k1",
        refresh: Some(POLICY),
    }
}

fn refresh(token: &str) -> RefreshRequest<'_> {
    RefreshRequest {
        tenant_id: TENANT,
        client_id: "app",
        token,
        scopes: None,
        grace_secs: DEFAULT_REFRESH_GRACE_SECS,
        access_token_ttl_secs: 300,
        kid: "k1",
    }
}

fn issued(redemption: CodeRedemption) -> CodeGrant {
    match redemption {
        CodeRedemption::Issued(grant) => *grant,
        other => panic!("expected tokens, got {other:?}"),
    }
}

fn invalid_grant(error: CommandError) -> String {
    match error {
        CommandError::Rejected(DomainError::Conflict(message)) => message,
        CommandError::NotFound { kind, .. } => format!("{kind} not found"),
        CommandError::Rejected(DomainError::NotFound) => "not found".into(),
        other => panic!("expected a refused grant, got {other:?}"),
    }
}

/// The refusal of a refresh with `token`, as [`invalid_grant`] words it.
async fn refusal_of(fixture: &PeopleFixture, token: &str) -> String {
    invalid_grant(
        fixture
            .service
            .refresh(&meta(), refresh(token))
            .await
            .unwrap_err(),
    )
}

/// A person's tokens with `offline_access`: a code redeemed, its refresh token.
async fn family(fixture: &PeopleFixture, scopes: &[&str]) -> (Uuid, String) {
    let session = signed_in(fixture).await;
    let code = code(fixture, session, scopes).await;
    let (redeemed, _) = fixture
        .service
        .redeem_code(&meta(), redeem(&code, Some(VERIFIER)))
        .await
        .unwrap();
    (session, issued(redeemed).refresh_token.unwrap())
}

#[tokio::test]
async fn a_code_is_redeemed_once_in_one_append_with_its_tokens() {
    let fixture = people(Store::Memory, None).await;
    let session = signed_in(&fixture).await;
    let code = code(&fixture, session, &["openid", "offline_access"]).await;
    let before = fixture.events().await.len();
    let (redeemed, position) = fixture
        .service
        .redeem_code(&meta(), redeem(&code, Some(VERIFIER)))
        .await
        .unwrap();
    let grant = issued(redeemed);
    assert_eq!(grant.code.user_id, fixture.user);
    assert_eq!(grant.code.nonce.as_deref(), Some("n-1"));
    assert!(grant.refresh_token.as_deref().unwrap().starts_with("trt_"));
    let events = fixture.events().await;
    let appended: Vec<&str> = events[before..]
        .iter()
        .map(|e| e.envelope.event_type.as_str())
        .collect();
    assert_eq!(
        appended,
        vec![
            "authorization_code.redeemed",
            "token.issued",
            "refresh_token.issued"
        ]
    );
    assert_eq!(position, events.last().unwrap().envelope.global_position);
    assert!(
        !fixture.log_contains(code.as_bytes()).await,
        "the code is never recorded in clear"
    );
}

#[tokio::test]
async fn a_code_presented_again_revokes_its_tokens_once_and_is_refused() {
    let fixture = people(Store::Memory, None).await;
    let session = signed_in(&fixture).await;
    let code = code(&fixture, session, &["openid", "offline_access"]).await;
    let first = issued(
        fixture
            .service
            .redeem_code(&meta(), redeem(&code, Some(VERIFIER)))
            .await
            .unwrap()
            .0,
    );
    let (again, _) = fixture
        .service
        .redeem_code(&meta(), redeem(&code, Some(VERIFIER)))
        .await
        .unwrap();
    let CodeRedemption::Reused { jti, .. } = again else {
        panic!("expected a reuse, got {again:?}");
    };
    assert_eq!(jti, first.jti);
    assert_eq!(
        fixture.events_of("authorization_code.reused").await.len(),
        1
    );
    let revoked = fixture.events_of("token.revoked").await;
    assert!(matches!(&revoked[..], [Event::TokenRevoked(e)] if e.jti == first.jti));
    assert_eq!(fixture.events_of("refresh_token.revoked").await.len(), 1);
    // The family the code opened is dead.
    let refresh_token = first.refresh_token.unwrap();
    let refused = refusal_of(&fixture, &refresh_token).await;
    assert!(refused.contains("revoked"));
    // A third presentation changes nothing more.
    let before = fixture.events().await.len();
    let third = fixture
        .service
        .redeem_code(&meta(), redeem(&code, Some(VERIFIER)))
        .await
        .unwrap_err();
    assert!(invalid_grant(third).contains("already used"));
    assert_eq!(fixture.events().await.len(), before);
}

#[tokio::test]
async fn two_simultaneous_redemptions_on_two_nodes_yield_one_token_response() {
    let fixture = people(Store::Memory, None).await;
    let session = signed_in(&fixture).await;
    let code = code(&fixture, session, &["openid"]).await;
    let other = fixture.another_node();
    let (meta_a, meta_b) = (meta(), meta());
    let (a, b) = tokio::join!(
        fixture
            .service
            .redeem_code(&meta_a, redeem(&code, Some(VERIFIER))),
        other.redeem_code(&meta_b, redeem(&code, Some(VERIFIER))),
    );
    let outcomes = [a.unwrap().0, b.unwrap().0];
    let issued = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, CodeRedemption::Issued(_)))
        .count();
    assert_eq!(issued, 1, "{outcomes:?}");
    assert_eq!(
        fixture.events_of("authorization_code.redeemed").await.len(),
        1
    );
}

#[tokio::test]
async fn pkce_and_expiry_refuse_a_code_and_append_nothing() {
    let fixture = people(Store::Memory, None).await;
    let session = signed_in(&fixture).await;
    let code = code(&fixture, session, &["openid"]).await;
    let before = fixture.events().await.len();
    let wrong = "x".repeat(43);
    for verifier in [None, Some(wrong.as_str())] {
        let refused = fixture
            .service
            .redeem_code(&meta(), redeem(&code, verifier))
            .await
            .unwrap_err();
        assert!(invalid_grant(refused).contains("code_verifier"));
    }
    let mut other_client = redeem(&code, Some(VERIFIER));
    other_client.client_id = "other";
    assert!(
        invalid_grant(
            fixture
                .service
                .redeem_code(&meta(), other_client)
                .await
                .unwrap_err()
        )
        .contains("another client")
    );
    let forged = GrantSecrets::code_id(&code)
        .map(|id| fixture.crypto.grants().new_code(id).unwrap())
        .unwrap();
    assert!(
        invalid_grant(
            fixture
                .service
                .redeem_code(&meta(), redeem(&forged, Some(VERIFIER)))
                .await
                .unwrap_err()
        )
        .contains("not found")
    );
    fixture.clock.advance_seconds(60);
    let expired = fixture
        .service
        .redeem_code(&meta(), redeem(&code, Some(VERIFIER)))
        .await
        .unwrap_err();
    assert!(invalid_grant(expired).contains("expired"));
    assert_eq!(
        fixture.events().await.len(),
        before,
        "refusals append nothing"
    );
}

#[tokio::test]
async fn a_refresh_rotates_then_the_old_token_gets_grace_answers_then_its_reuse_revokes_the_family()
{
    let fixture = people(Store::Memory, None).await;
    let (_, first) = family(&fixture, &["openid", "offline_access"]).await;
    let (rotated, _) = fixture
        .service
        .refresh(&meta(), refresh(&first))
        .await
        .unwrap();
    assert!(rotated.rotated);
    assert_ne!(rotated.refresh_token, first);
    fixture.clock.advance_seconds(29);
    let (grace, _) = fixture
        .service
        .refresh(&meta(), refresh(&first))
        .await
        .unwrap();
    assert!(!grace.rotated);
    assert_eq!(grace.refresh_token, rotated.refresh_token);
    assert_ne!(
        grace.jti, rotated.jti,
        "a grace answer has a new access token"
    );
    fixture.clock.advance_seconds(1);
    let reuse = refusal_of(&fixture, &first).await;
    assert!(reuse.contains("already used"));
    let current = refusal_of(&fixture, &rotated.refresh_token).await;
    assert!(current.contains("revoked"));
    assert_eq!(fixture.events_of("refresh_token.rotated").await.len(), 1);
}

/// A use reads the family's opening and its last rotations only (the stream grows by one
/// event per rotation): deep in a family, the current token rotates, the one before gets grace
/// answers, and an older one still revokes the family.
#[tokio::test]
async fn deep_in_a_long_family_rotation_grace_and_reuse_are_decided_as_at_its_start() {
    for store in [Store::Memory, Store::Sqlite] {
        let fixture = people(store, None).await;
        let (_, first) = family(&fixture, &["openid", "offline_access"]).await;
        let mut tokens = vec![first];
        for _ in 0..6 {
            let current = tokens.last().unwrap().clone();
            let (rotated, _) = fixture
                .service
                .refresh(&meta(), refresh(&current))
                .await
                .unwrap();
            assert!(rotated.rotated, "generation {} rotates", tokens.len() - 1);
            tokens.push(rotated.refresh_token);
        }
        let (grace, _) = fixture
            .service
            .refresh(&meta(), refresh(&tokens[5]))
            .await
            .unwrap();
        assert!(!grace.rotated);
        assert_eq!(
            grace.refresh_token, tokens[6],
            "the grace answer is the current token"
        );
        let reuse = refusal_of(&fixture, &tokens[3]).await;
        assert!(reuse.contains("already used"), "{reuse}");
        let after = refusal_of(&fixture, &tokens[6]).await;
        assert!(after.contains("revoked"), "{after}");
        assert_eq!(fixture.events_of("refresh_token.rotated").await.len(), 6);
    }
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token_on_several_nodes_yield_one_successor() {
    let fixture = people(Store::Sqlite, None).await;
    let (_, first) = family(&fixture, &["openid", "offline_access"]).await;
    let nodes: Vec<Arc<CommandService>> =
        (0..4).map(|_| Arc::new(fixture.another_node())).collect();
    let mut tasks = Vec::new();
    for n in 0..50 {
        let node = nodes[n % nodes.len()].clone();
        let token = first.clone();
        tasks.push(tokio::spawn(async move {
            node.refresh(&meta(), refresh(&token)).await
        }));
    }
    let mut successors = Vec::new();
    let mut rotations = 0;
    for task in tasks {
        let (refreshed, _) = task.await.unwrap().unwrap();
        rotations += usize::from(refreshed.rotated);
        successors.push(refreshed.refresh_token);
    }
    successors.dedup();
    assert_eq!(rotations, 1);
    assert_eq!(
        successors.len(),
        1,
        "every answer carries the one successor"
    );
    assert_eq!(fixture.events_of("refresh_token.rotated").await.len(), 1);
    assert!(fixture.events_of("refresh_token.revoked").await.is_empty());
}

#[tokio::test]
async fn a_family_idle_for_too_long_or_asked_for_wider_scopes_is_refused() {
    let fixture = people(Store::Memory, None).await;
    let (_, token) = family(&fixture, &["openid", "offline_access"]).await;
    let wider = ["openid".to_owned(), "email".to_owned()];
    let mut request = refresh(&token);
    request.scopes = Some(&wider);
    assert!(matches!(
        fixture.service.refresh(&meta(), request).await,
        Err(CommandError::Rejected(DomainError::Validation { field, .. })) if field == "scope"
    ));
    fixture.clock.advance_seconds(i64::from(POLICY.idle_secs));
    let idle = refusal_of(&fixture, &token).await;
    assert!(idle.contains("expired"));
}

#[tokio::test]
async fn a_password_change_or_disabling_the_person_ends_their_families() {
    let fixture = people(Store::Memory, None).await;
    let (_, token) = family(&fixture, &["openid", "offline_access"]).await;
    fixture
        .service
        .set_user_password(
            meta(),
            TENANT,
            fixture.user,
            "a long new passphrase 4 ada",
            false,
        )
        .await
        .unwrap();
    let refused = refusal_of(&fixture, &token).await;
    assert!(refused.contains("password"));
    let (_, token) = family(&fixture, &["openid", "offline_access"]).await;
    fixture
        .service
        .disable_user(meta(), TENANT, fixture.user)
        .await
        .unwrap();
    let refused = refusal_of(&fixture, &token).await;
    assert!(refused.contains("disabled"));
}

#[tokio::test]
async fn a_revoked_consent_ends_the_clients_families_only() {
    let fixture = people(Store::Memory, None).await;
    let (_, token) = family(&fixture, &["openid", "offline_access"]).await;
    let revoke = |client_id: &str, n: u128| {
        let event = Event::ConsentRevoked(ConsentRevokedV1 {
            client_id: client_id.into(),
        });
        StreamWrite {
            stream_id: streams::consents(TENANT, fixture.user),
            expected: ExpectedVersion::Any,
            events: vec![ProposedEvent::new(
                &event,
                Uuid::from_u128(0xc0_0000 + n),
                TENANT,
                fixture.clock.now(),
                meta(),
            )],
        }
    };
    fixture.log.append(vec![revoke("other", 1)]).await.unwrap();
    let (rotated, _) = fixture
        .service
        .refresh(&meta(), refresh(&token))
        .await
        .unwrap();
    fixture.log.append(vec![revoke("app", 2)]).await.unwrap();
    let refused = refusal_of(&fixture, &rotated.refresh_token).await;
    assert!(refused.contains("consent"));
}

#[tokio::test]
async fn signing_out_ends_families_without_offline_access_only() {
    let fixture = people(Store::Memory, None).await;
    let mut policy = POLICY;
    policy.without_offline_access = true;
    let session = signed_in(&fixture).await;
    let online_code = code(&fixture, session, &["openid"]).await;
    let offline_code = code(&fixture, session, &["openid", "offline_access"]).await;
    let mut tokens = Vec::new();
    for code in [&online_code, &offline_code] {
        let mut request = redeem(code, Some(VERIFIER));
        request.refresh = Some(policy);
        let (redeemed, _) = fixture.service.redeem_code(&meta(), request).await.unwrap();
        tokens.push(issued(redeemed).refresh_token.unwrap());
    }
    fixture
        .service
        .end_session(
            meta(),
            TENANT,
            fixture.user,
            session,
            SessionEndReason::SignedOut,
        )
        .await
        .unwrap();
    let online = refusal_of(&fixture, &tokens[0]).await;
    assert!(online.contains("session"));
    assert!(
        fixture
            .service
            .refresh(&meta(), refresh(&tokens[1]))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn no_refresh_token_without_offline_access_unless_the_client_asks_for_one() {
    let fixture = people(Store::Memory, None).await;
    let session = signed_in(&fixture).await;
    let code = code(&fixture, session, &["openid"]).await;
    let (redeemed, _) = fixture
        .service
        .redeem_code(&meta(), redeem(&code, Some(VERIFIER)))
        .await
        .unwrap();
    assert!(issued(redeemed).refresh_token.is_none());
}

#[tokio::test]
async fn introspection_sees_a_token_as_the_grant_does_and_revocation_ends_the_family() {
    let fixture = people(Store::Memory, None).await;
    let (_, token) = family(&fixture, &["openid", "offline_access"]).await;
    let status = fixture
        .service
        .refresh_token_status(TENANT, &token)
        .await
        .unwrap()
        .unwrap();
    assert!(status.active);
    assert_eq!(status.family.user_id, fixture.user);
    // Another client's revocation is ignored (RFC 7009), the owner's ends the family.
    assert_eq!(
        fixture
            .service
            .revoke_refresh_token(&meta(), TENANT, "other", &token)
            .await
            .unwrap(),
        None
    );
    assert!(
        fixture
            .service
            .revoke_refresh_token(&meta(), TENANT, "app", &token)
            .await
            .unwrap()
            .is_some()
    );
    let status = fixture
        .service
        .refresh_token_status(TENANT, &token)
        .await
        .unwrap()
        .unwrap();
    assert!(!status.active);
    assert!(
        fixture
            .service
            .refresh_token_status(TENANT, "trt_forged")
            .await
            .unwrap()
            .is_none()
    );
}
