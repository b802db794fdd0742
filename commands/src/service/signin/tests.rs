//! Sign-in and session commands against the in-memory log: what every outcome records, the
//! lockout decided on the log, forced password changes, eviction, and the sessions that end
//! when the user is disabled, erased or given a new password.

use tessera_domain::session::SessionsState;
use tessera_event_schemas::events::{SessionEndReason, SignInFailure, TenantSettingsV1};
use tessera_event_schemas::{ActorKind, Event, RecordedEvent};

use super::*;
use crate::CreateUser;
use crate::service::tests::meta;
use crate::service::user::tests::{Fixture, STRONG, TENANT, ada, fixture, rejected};

fn credentials(email: &str, password: &str) -> PasswordCredentials {
    PasswordCredentials {
        email: email.into(),
        password: password.into(),
    }
}

/// Ada with a permanent password.
async fn ada_user(f: &Fixture) -> Uuid {
    let input = CreateUser {
        temporary: false,
        ..ada()
    };
    f.service
        .create_user(meta(), TENANT, input)
        .await
        .unwrap()
        .user_id
}

async fn sign_in(f: &Fixture, email: &str, password: &str) -> SignInOutcome {
    f.service
        .sign_in_with_password(meta(), TENANT, &credentials(email, password))
        .await
        .unwrap()
        .outcome
}

async fn signed_in(f: &Fixture) -> StartedSession {
    match sign_in(f, "ada.lovelace@example.com", STRONG).await {
        SignInOutcome::SignedIn(session) => session,
        other => panic!("expected a session, got {other:?}"),
    }
}

fn last(events: &[RecordedEvent], count: usize) -> Vec<&RecordedEvent> {
    events[events.len() - count..].iter().collect()
}

fn types(events: &[&RecordedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.envelope.event_type.clone())
        .collect()
}

async fn sessions(f: &Fixture, user_id: Uuid) -> SessionsState {
    f.service.load_sessions(TENANT, user_id).await.unwrap()
}

#[tokio::test]
async fn a_right_password_starts_a_session_recorded_with_the_person_as_actor() {
    let f = fixture(None).await;
    let user_id = ada_user(&f).await;
    let session = signed_in(&f).await;
    assert_eq!(session.user_id, user_id);
    assert_eq!(session.amr, ["pwd"]);
    assert_eq!(session.token.len(), 43);
    let events = f.events().await;
    let recorded = last(&events, 2);
    assert_eq!(types(&recorded), ["sign_in.succeeded", "session.started"]);
    for event in &recorded {
        assert_eq!(event.envelope.stream_id, streams::sessions(TENANT, user_id));
        assert_eq!(event.envelope.actor.kind, ActorKind::User);
        assert_eq!(event.envelope.actor.id, user_id.to_string());
        assert_eq!(event.envelope.actor.name, None);
    }
    let Event::SessionStarted(started) = recorded[1].decode().unwrap() else {
        panic!("not a session")
    };
    assert_eq!(
        *started.token_hash.expose(),
        f.crypto.session_token_hash(&session.token)
    );
    let bytes = &recorded[1].payload;
    assert!(
        !bytes
            .windows(session.token.len())
            .any(|w| w == session.token.as_bytes())
    );
}

#[tokio::test]
async fn every_failure_is_recorded_with_its_reason_and_an_unknown_address_leaves_no_trace() {
    let f = fixture(None).await;
    let user_id = ada_user(&f).await;
    let reason = |outcome| match outcome {
        SignInOutcome::Failed(reason) => reason,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(
        reason(sign_in(&f, "ada.lovelace@example.com", "wrong password 1").await),
        SignInFailure::WrongPassword
    );
    assert_eq!(
        reason(sign_in(&f, "nobody.here@example.com", STRONG).await),
        SignInFailure::UnknownAddress
    );
    let events = f.events().await;
    let unknown = events.last().unwrap();
    assert_eq!(unknown.envelope.stream_id, streams::sign_ins(TENANT));
    // Nobody proved who they are: the actor is the caller's (the server, on the pages), never a user.
    assert_ne!(unknown.envelope.actor.kind, ActorKind::User);
    for needle in ["nobody", "example"] {
        assert!(
            !unknown
                .payload
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        );
    }
    f.service
        .disable_user(meta(), TENANT, user_id)
        .await
        .unwrap();
    assert_eq!(
        reason(sign_in(&f, "ada.lovelace@example.com", STRONG).await),
        SignInFailure::Disabled
    );
    let grace = CreateUser {
        email: "grace@example.com".into(),
        password: None,
        ..ada()
    };
    f.service.create_user(meta(), TENANT, grace).await.unwrap();
    assert_eq!(
        reason(sign_in(&f, "grace@example.com", STRONG).await),
        SignInFailure::NoPassword
    );
    f.service
        .record_sign_in_refusal(
            meta(),
            TENANT,
            "grace@example.com",
            SignInFailure::RateLimited,
        )
        .await
        .unwrap();
    let refused = f.events().await.pop().unwrap();
    assert_eq!(refused.envelope.event_type, "sign_in.failed");
    assert!(refused.envelope.stream_id.contains("/sessions/"));
}

#[tokio::test]
async fn enough_wrong_passwords_lock_the_password_until_an_administrator_unlocks_it() {
    let mut settings = tessera_domain::tenant::default_settings();
    settings.lockout_policy.max_attempts = 3;
    let f = fixture(Some(settings)).await;
    let user_id = ada_user(&f).await;
    for _ in 0..3 {
        sign_in(&f, "ada.lovelace@example.com", "wrong password 1").await;
    }
    assert!(sessions(&f, user_id).await.locked_until.is_some());
    assert_eq!(
        sign_in(&f, "ada.lovelace@example.com", STRONG).await,
        SignInOutcome::Failed(SignInFailure::Locked)
    );
    f.service
        .unlock_user(meta(), TENANT, user_id)
        .await
        .unwrap();
    assert_eq!(
        f.events().await.last().unwrap().envelope.event_type,
        "sign_in.unlocked"
    );
    signed_in(&f).await;
    // Unlocking an unlocked user changes nothing; an unknown one is not found.
    let before = f.events().await.len();
    f.service
        .unlock_user(meta(), TENANT, user_id)
        .await
        .unwrap();
    assert_eq!(f.events().await.len(), before);
    assert!(matches!(
        f.service
            .unlock_user(meta(), TENANT, Uuid::from_u128(9))
            .await,
        Err(CommandError::NotFound { kind: "user", .. })
    ));
}

#[tokio::test]
async fn a_temporary_password_must_change_before_the_session_starts() {
    let f = fixture(None).await;
    let created = f.service.create_user(meta(), TENANT, ada()).await.unwrap();
    let outcome = sign_in(&f, "ada.lovelace@example.com", STRONG).await;
    assert_eq!(
        outcome,
        SignInOutcome::ChangePassword {
            user_id: created.user_id
        }
    );
    assert!(sessions(&f, created.user_id).await.sessions.is_empty());
    // The new password follows the tenant's policy.
    assert!(matches!(
        rejected(
            f.service
                .complete_password_change(meta(), TENANT, created.user_id, "short")
                .await
        ),
        DomainError::Validation { .. }
    ));
    let (outcome, _) = f
        .service
        .complete_password_change(meta(), TENANT, created.user_id, "orchid pylon harbour 42")
        .await
        .unwrap();
    let SignInOutcome::SignedIn(session) = outcome else {
        panic!("no session: {outcome:?}");
    };
    let events = f.events().await;
    assert_eq!(
        types(&last(&events, 2)),
        ["user.password_set", "session.started"]
    );
    assert_eq!(
        sessions(&f, created.user_id).await.sessions[0].session_id,
        session.session_id
    );
    let user = f.service.load_user(TENANT, created.user_id).await.unwrap();
    assert!(!user.user.unwrap().password.unwrap().temporary);
    assert!(matches!(
        sign_in(&f, "ada.lovelace@example.com", "orchid pylon harbour 42").await,
        SignInOutcome::SignedIn(_)
    ));
}

#[tokio::test]
async fn the_oldest_session_is_evicted_beyond_the_tenants_limit() {
    let settings = TenantSettingsV1 {
        max_sessions_per_user: 2,
        ..tessera_domain::tenant::default_settings()
    };
    let f = fixture(Some(settings)).await;
    let user_id = ada_user(&f).await;
    let first = signed_in(&f).await;
    let second = signed_in(&f).await;
    let third = signed_in(&f).await;
    let events = f.events().await;
    assert_eq!(
        types(&last(&events, 3)),
        ["sign_in.succeeded", "session.started", "session.ended"]
    );
    let active: Vec<Uuid> = sessions(&f, user_id)
        .await
        .sessions
        .iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(active, [second.session_id, third.session_id]);
    assert!(matches!(
        f.service
            .end_session(
                meta(),
                TENANT,
                user_id,
                first.session_id,
                SessionEndReason::SignedOut
            )
            .await,
        Err(CommandError::NotFound {
            kind: "session",
            ..
        })
    ));
    f.service
        .end_session(
            meta(),
            TENANT,
            user_id,
            second.session_id,
            SessionEndReason::SignedOut,
        )
        .await
        .unwrap();
    assert_eq!(sessions(&f, user_id).await.sessions.len(), 1);
}

#[tokio::test]
async fn disabling_erasing_and_resetting_a_password_end_the_sessions_in_the_same_append() {
    let f = fixture(None).await;
    let user_id = ada_user(&f).await;
    for (reason, change) in [
        (SessionEndReason::UserDisabled, "user.disabled"),
        (SessionEndReason::PasswordReset, "user.password_set"),
        (SessionEndReason::UserErased, "user.erased"),
    ] {
        if reason == SessionEndReason::PasswordReset {
            f.service
                .enable_user(meta(), TENANT, user_id)
                .await
                .unwrap();
        }
        signed_in(&f).await;
        signed_in(&f).await;
        let position = match reason {
            SessionEndReason::UserDisabled => f.service.disable_user(meta(), TENANT, user_id).await,
            SessionEndReason::PasswordReset => {
                f.service
                    .set_user_password(meta(), TENANT, user_id, STRONG, false)
                    .await
            }
            _ => f.service.erase_user(meta(), TENANT, user_id).await,
        }
        .unwrap()
        .position;
        let events = f.events().await;
        let batch: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| e.envelope.global_position + 3 > position)
            .collect();
        let names = types(&batch);
        assert!(names.contains(&change.to_owned()), "{names:?}");
        let ended = batch
            .iter()
            .filter(|e| matches!(e.decode().unwrap(), Event::SessionEnded(ended) if ended.reason == reason))
            .count();
        assert_eq!(ended, 2, "{reason:?}: {names:?}");
        assert!(sessions(&f, user_id).await.sessions.is_empty());
    }
}

#[tokio::test]
async fn changing_ones_own_password_needs_the_current_one_and_ends_the_other_sessions() {
    let f = fixture(None).await;
    let user_id = ada_user(&f).await;
    let here = signed_in(&f).await;
    let elsewhere = signed_in(&f).await;
    let change = |current: &'static str| {
        f.service.change_own_password(
            meta(),
            TENANT,
            user_id,
            current,
            "orchid pylon harbour 42",
            here.session_id,
        )
    };
    match rejected(change("not my password").await) {
        DomainError::Validation { field, .. } => assert_eq!(field, "current_password"),
        other => panic!("{other:?}"),
    }
    change(STRONG).await.unwrap();
    let left: Vec<Uuid> = sessions(&f, user_id)
        .await
        .sessions
        .iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(left, [here.session_id]);
    assert_ne!(here.session_id, elsewhere.session_id);
    let events = f.events().await;
    let password_set = events
        .iter()
        .rev()
        .find(|e| e.envelope.event_type == "user.password_set")
        .unwrap();
    assert_eq!(password_set.envelope.actor.kind, ActorKind::User);
}
