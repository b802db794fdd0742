//! Given events, when a command, then events: a connection's rules.

use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000)
}

fn store(version: u32) -> CredentialCommand {
    CredentialCommand::Store(Box::new(StoreCredential {
        kind: CredentialKind::Oauth,
        sealed: format!("tsr:v{version}:AAAA"),
        key_version: version,
        scopes: vec!["read".into()],
        issued_at: at(100),
        expires_at: Some(at(3_700)),
        refreshable: true,
        app: OAuthAppSource::Platform,
    }))
}

fn refresh(issued: i64) -> CredentialCommand {
    CredentialCommand::Refresh(Box::new(RefreshCredential {
        sealed: "tsr:v1:BBBB".into(),
        key_version: 1,
        scopes: vec!["read".into(), "write".into()],
        issued_at: at(issued),
        expires_at: Some(at(issued + 3_600)),
        refreshable: true,
    }))
}

fn failed(reason: RefreshFailure, now: i64) -> CredentialCommand {
    CredentialCommand::RefreshFailed {
        reason,
        now: at(now),
    }
}

/// Decides `command` on `state` and folds the outcome in.
fn then(state: &mut CredentialState, command: CredentialCommand) -> Vec<Event> {
    let events = state.decide(command).unwrap();
    for event in &events {
        state.evolve(event);
    }
    events
}

#[test]
fn a_stored_connection_is_active_with_its_scopes_expiry_and_key_version() {
    let mut state = CredentialState::default();
    then(&mut state, store(1));
    let c = state.present().unwrap();
    assert_eq!(c.status, CredentialStatus::Active);
    assert_eq!(c.status.as_str(), "active");
    assert_eq!(c.scopes, vec!["read".to_owned()]);
    assert_eq!(c.expires_at, Some(at(3_700)));
    assert_eq!(c.key_version, 1);
    assert_eq!(c.sealed, "tsr:v1:AAAA");
    assert!(c.refreshable);
    assert_eq!(c.last_refreshed_at, None);
}

#[test]
fn a_sealed_text_that_does_not_name_its_key_version_is_refused() {
    let state = CredentialState::default();
    let CredentialCommand::Store(mut bad) = store(1) else {
        unreachable!()
    };
    bad.key_version = 2;
    assert!(matches!(
        state.decide(CredentialCommand::Store(bad.clone())),
        Err(DomainError::Validation { field, .. }) if field == "sealed"
    ));
    bad.sealed = "plain-token".into();
    assert!(state.decide(CredentialCommand::Store(bad)).is_err());
}

#[test]
fn an_api_key_is_never_refreshable() {
    let state = CredentialState::default();
    let CredentialCommand::Store(mut key) = store(1) else {
        unreachable!()
    };
    key.kind = CredentialKind::ApiKey;
    let events = state.decide(CredentialCommand::Store(key)).unwrap();
    assert!(matches!(&events[0], Event::CredentialStored(e) if !e.refreshable));
}

#[test]
fn failures_back_off_and_a_refresh_clears_them() {
    let mut state = CredentialState::default();
    then(&mut state, store(1));
    let events = then(&mut state, failed(RefreshFailure::Unreachable, 1_000));
    assert_eq!(
        events,
        vec![Event::CredentialRefreshFailed(CredentialRefreshFailedV1 {
            reason: RefreshFailure::Unreachable,
            attempt: 1,
            next_attempt_at: at(1_030),
        })]
    );
    let events = then(&mut state, failed(RefreshFailure::Rejected, 2_000));
    assert!(matches!(
        &events[0],
        Event::CredentialRefreshFailed(e) if e.attempt == 2 && e.next_attempt_at == at(2_060)
    ));
    let c = state.present().unwrap();
    assert_eq!(c.status, CredentialStatus::RefreshFailing);
    assert_eq!(c.consecutive_failures, 2);
    assert_eq!(c.last_error, Some(RefreshFailure::Rejected));
    assert_eq!(c.next_attempt_at, Some(at(2_060)));

    then(&mut state, refresh(3_000));
    let c = state.present().unwrap();
    assert_eq!(c.status, CredentialStatus::Active);
    assert_eq!(c.consecutive_failures, 0);
    assert_eq!(c.last_error, None);
    assert_eq!(c.last_refreshed_at, Some(at(3_000)));
    assert_eq!(c.expires_at, Some(at(6_600)));
    assert_eq!(c.scopes.len(), 2);
}

#[test]
fn backoff_doubles_up_to_an_hour() {
    assert_eq!(backoff_seconds(1), 30);
    assert_eq!(backoff_seconds(2), 60);
    assert_eq!(backoff_seconds(5), 480);
    assert_eq!(backoff_seconds(8), 3_600);
    assert_eq!(backoff_seconds(u32::MAX), 3_600);
}

#[test]
fn repeated_invalid_grant_marks_the_connection_needs_reauth_and_stops_refreshes() {
    let mut state = CredentialState::default();
    then(&mut state, store(1));
    let events = then(&mut state, failed(RefreshFailure::InvalidGrant, 10));
    assert_eq!(events.len(), 1);
    // Another kind of failure in between starts the count again.
    then(&mut state, failed(RefreshFailure::Unreachable, 20));
    let events = then(&mut state, failed(RefreshFailure::InvalidGrant, 30));
    assert_eq!(events.len(), 1);
    let events = then(&mut state, failed(RefreshFailure::InvalidGrant, 40));
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        Event::CredentialNeedsReauth(CredentialNeedsReauthV1 {})
    );
    let c = state.present().unwrap();
    assert_eq!(c.status, CredentialStatus::NeedsReauth);
    assert_eq!(c.next_attempt_at, None);

    assert!(matches!(
        state.decide(refresh(50)),
        Err(DomainError::IllegalTransition { .. })
    ));
    assert!(
        state
            .decide(failed(RefreshFailure::InvalidGrant, 50))
            .is_err()
    );
    assert_eq!(
        state.decide(CredentialCommand::NeedsReauth).unwrap(),
        vec![]
    );

    // Connecting again makes it active.
    then(&mut state, store(1));
    assert_eq!(state.present().unwrap().status, CredentialStatus::Active);
    assert_eq!(state.present().unwrap().invalid_grants, 0);
}

#[test]
fn a_rewrap_moves_only_forward() {
    let mut state = CredentialState::default();
    assert_eq!(
        state.decide(CredentialCommand::Rewrap {
            sealed: "tsr:v2:CCCC".into(),
            key_version: 2
        }),
        Err(DomainError::NotFound)
    );
    then(&mut state, store(1));
    let events = then(
        &mut state,
        CredentialCommand::Rewrap {
            sealed: "tsr:v2:CCCC".into(),
            key_version: 2,
        },
    );
    assert_eq!(events.len(), 1);
    let c = state.present().unwrap();
    assert_eq!((c.key_version, c.sealed.as_str()), (2, "tsr:v2:CCCC"));
    assert_eq!(
        state
            .decide(CredentialCommand::Rewrap {
                sealed: "tsr:v2:DDDD".into(),
                key_version: 2
            })
            .unwrap(),
        vec![]
    );
}

#[test]
fn a_removed_connection_is_gone_until_stored_again() {
    let mut state = CredentialState::default();
    let remove = CredentialCommand::Remove {
        revoked_at_provider: false,
    };
    assert_eq!(state.decide(remove.clone()), Err(DomainError::NotFound));
    then(&mut state, store(1));
    let events = then(&mut state, remove.clone());
    assert_eq!(
        events,
        vec![Event::CredentialRemoved(CredentialRemovedV1 {
            revoked_at_provider: false
        })]
    );
    assert!(state.present().is_none());
    assert_eq!(
        state.credential.as_ref().unwrap().status,
        CredentialStatus::Removed
    );
    assert_eq!(state.decide(remove), Err(DomainError::NotFound));
    assert_eq!(state.decide(refresh(10)), Err(DomainError::NotFound));
    then(&mut state, store(1));
    assert!(state.present().is_some());
}
