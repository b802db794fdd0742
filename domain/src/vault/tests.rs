//! Given events, when a command, then events: the vault's rules.

use super::*;

fn added(version: u32) -> Event {
    Event::VaultKeyAdded(VaultKeyAddedV1 { version })
}

fn given(events: &[Event]) -> VaultState {
    VaultState::replay(events)
}

#[test]
fn versions_are_added_one_after_the_other_without_gaps() {
    let state = VaultState::default();
    assert_eq!(
        state.decide(VaultCommand::AddKey { version: 1 }).unwrap(),
        vec![added(1)]
    );
    assert!(matches!(
        state.decide(VaultCommand::AddKey { version: 2 }),
        Err(DomainError::Conflict(_))
    ));
    let state = given(&[added(1), added(2)]);
    assert_eq!(state.newest, 2);
    assert_eq!(state.versions(), 1..=2);
    assert!(matches!(
        state.decide(VaultCommand::AddKey { version: 2 }),
        Err(DomainError::Conflict(_))
    ));
    assert_eq!(
        state.decide(VaultCommand::AddKey { version: 3 }).unwrap(),
        vec![added(3)]
    );
}

#[test]
fn the_minimum_is_refused_while_secrets_remain_below_it_unless_forced() {
    let state = given(&[added(1), added(2)]);
    let set = |version, below, force| VaultCommand::SetMinimum {
        version,
        below,
        force,
    };
    assert!(matches!(
        state.decide(set(2, 3, false)),
        Err(DomainError::Conflict(message)) if message.contains("3 secrets")
    ));
    let minimum = Event::VaultMinimumSet(VaultMinimumSetV1 { version: 2 });
    assert_eq!(
        state.decide(set(2, 3, true)).unwrap(),
        vec![minimum.clone()]
    );
    assert_eq!(
        state.decide(set(2, 0, false)).unwrap(),
        vec![minimum.clone()]
    );
    assert!(matches!(
        state.decide(set(3, 0, false)),
        Err(DomainError::Validation { field, .. }) if field == "version"
    ));
    assert!(matches!(
        state.decide(set(0, 0, false)),
        Err(DomainError::Validation { .. })
    ));

    let state = given(&[added(1), added(2), minimum]);
    assert!(!state.opens(1));
    assert!(state.opens(2));
    assert!(!state.opens(3));
    assert_eq!(state.decide(set(2, 0, false)).unwrap(), vec![]);
}

#[test]
fn a_rewrap_goes_to_the_newest_version_and_asking_again_resumes_it() {
    assert!(matches!(
        VaultState::default().decide(VaultCommand::StartRewrap { total: 0 }),
        Err(DomainError::Conflict(_))
    ));
    let state = given(&[added(1), added(2)]);
    let started = Event::VaultRewrapStarted(VaultRewrapStartedV1 {
        to_version: 2,
        total: 200,
    });
    assert_eq!(
        state
            .decide(VaultCommand::StartRewrap { total: 200 })
            .unwrap(),
        vec![started.clone()]
    );
    let state = given(&[added(1), added(2), started.clone()]);
    assert_eq!(
        state.rewrap,
        Some(Rewrap {
            to_version: 2,
            total: 200
        })
    );
    assert_eq!(
        state
            .decide(VaultCommand::StartRewrap { total: 120 })
            .unwrap(),
        vec![]
    );
    let state = given(&[added(1), added(2), started, added(3)]);
    assert_eq!(
        state
            .decide(VaultCommand::StartRewrap { total: 7 })
            .unwrap(),
        vec![Event::VaultRewrapStarted(VaultRewrapStartedV1 {
            to_version: 3,
            total: 7
        })]
    );
}

#[test]
fn a_destroyed_vault_refuses_everything_for_good() {
    let destroyed = Event::VaultDestroyed(VaultDestroyedV1 {});
    let state = given(&[added(1)]);
    assert_eq!(
        state.decide(VaultCommand::Destroy).unwrap(),
        vec![destroyed.clone()]
    );
    let state = given(&[added(1), added(2), destroyed]);
    assert!(state.destroyed);
    assert!(state.versions().is_empty());
    assert!(!state.opens(2));
    for command in [
        VaultCommand::AddKey { version: 3 },
        VaultCommand::SetMinimum {
            version: 2,
            below: 0,
            force: true,
        },
        VaultCommand::StartRewrap { total: 0 },
        VaultCommand::Destroy,
    ] {
        assert!(matches!(
            state.decide(command),
            Err(DomainError::IllegalTransition { .. })
        ));
    }
    assert!(state.require_usable("open").is_err());
}

#[test]
fn a_vault_without_keys_can_still_be_destroyed_so_that_it_never_gets_one() {
    let state = VaultState::default();
    let events = state.decide(VaultCommand::Destroy).unwrap();
    let state = given(&events);
    assert!(state.decide(VaultCommand::AddKey { version: 1 }).is_err());
}

#[test]
fn the_holders_events_say_which_secret_a_stream_holds_and_when_it_is_gone() {
    use tessera_event_schemas::Secret;
    use tessera_event_schemas::events::{
        CredentialRemovedV1, CredentialRewrappedV1, IntegrationAppSetV1, ProviderKeyRemovedV1,
    };
    let rewrapped = Event::CredentialRewrapped(CredentialRewrappedV1 {
        sealed: Secret::new("tsr:v3:AAAA".into()),
        key_version: 3,
    });
    assert_eq!(
        secret_change(&rewrapped),
        Some(SecretChange::Holds {
            sealed: "tsr:v3:AAAA",
            key_version: 3
        })
    );
    let app = Event::IntegrationAppSet(IntegrationAppSetV1 {
        client_id: "c".into(),
        client_secret: Secret::new("tsr:v12:BBBB".into()),
        scopes: None,
    });
    assert!(matches!(
        secret_change(&app),
        Some(SecretChange::Holds {
            key_version: 12,
            ..
        })
    ));
    for gone in [
        Event::CredentialRemoved(CredentialRemovedV1 {
            revoked_at_provider: true,
        }),
        Event::ProviderKeyRemoved(ProviderKeyRemovedV1 {}),
    ] {
        assert_eq!(secret_change(&gone), Some(SecretChange::Gone));
    }
    assert_eq!(secret_change(&added(1)), None);
    assert_eq!(key_version_of("tsr:vx:AAAA"), 0);
    assert_eq!(key_version_of("plain"), 0);
}

#[test]
fn a_held_secret_is_rewrapped_forward_only_and_not_once_it_is_gone() {
    use tessera_event_schemas::Secret;
    use tessera_event_schemas::events::{ProviderKeyRemovedV1, ProviderKeySetV1};
    let set = Event::ProviderKeySet(ProviderKeySetV1 {
        sealed: Secret::new("tsr:v1:AAAA".into()),
        key_version: 1,
        last4: "abcd".into(),
    });
    let state = given_held(std::slice::from_ref(&set));
    assert_eq!(state.sealed, Some(("tsr:v1:AAAA".to_owned(), 1)));
    let to = |version: u32| RewrapSecret {
        sealed: format!("tsr:v{version}:BBBB"),
        key_version: version,
    };
    let events = state.decide(to(2)).unwrap();
    assert!(matches!(&events[..], [Event::CredentialRewrapped(e)] if e.key_version == 2));
    let state = given_held(&[set.clone(), events[0].clone()]);
    assert_eq!(state.decide(to(2)).unwrap(), vec![]);
    assert_eq!(state.decide(to(1)).unwrap(), vec![]);
    let state = given_held(&[set, Event::ProviderKeyRemoved(ProviderKeyRemovedV1 {})]);
    assert_eq!(state.decide(to(2)), Err(DomainError::NotFound));
}

fn given_held(events: &[Event]) -> HeldSecret {
    HeldSecret::replay(events)
}
