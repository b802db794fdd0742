//! The user aggregate, given events, when a command, then events; and the checks of its
//! personal fields before they are sealed.

use super::*;
use crate::testing::given;

const USER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005);
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

fn names() -> SealedNames {
    SealedNames {
        name: Some(vec![1; 30]),
        given_name: Some(vec![2; 30]),
        family_name: None,
    }
}

fn new_user() -> NewUser {
    NewUser {
        user_id: USER,
        email: vec![9; 40],
        email_hash: Hash32([5; 32]),
        email_verified: false,
        names: names(),
        roles: vec!["user".into()],
        password: None,
    }
}

fn created() -> Event {
    Event::UserCreated(UserCreatedV1 {
        user_id: USER,
        email: vec![9; 40].into(),
        email_hash: Hash32([5; 32]).into(),
        email_verified: false,
        name: Some(vec![1; 30]).into(),
        given_name: Some(vec![2; 30]).into(),
        family_name: None.into(),
        roles: vec!["user".into()],
    })
}

fn password(hash: &str) -> NewPassword {
    NewPassword {
        hash: hash.to_owned(),
        temporary: false,
        now: NOW,
        reused: false,
        history_count: 3,
    }
}

fn password_set(hash: &str) -> Event {
    Event::UserPasswordSet(UserPasswordSetV1 {
        password_hash: hash.to_owned().into(),
        temporary: false,
        set_at: NOW,
    })
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

#[test]
fn a_new_user_is_created_active_with_an_optional_first_password() {
    assert_eq!(
        given::<UserState>([]).when(UserCommand::Create(Box::new(new_user()))),
        Ok(vec![created()])
    );
    let with_password = NewUser {
        password: Some(password(HASH)),
        ..new_user()
    };
    assert_eq!(
        given::<UserState>([]).when(UserCommand::Create(Box::new(with_password))),
        Ok(vec![created(), password_set(HASH)])
    );
    let state = given::<UserState>([created(), password_set(HASH)]).state;
    let user = state.user.unwrap();
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.password.map(|p| p.set_at), Some(NOW));
}

#[test]
fn a_user_is_created_only_once() {
    assert!(matches!(
        given::<UserState>([created()]).when(UserCommand::Create(Box::new(new_user()))),
        Err(DomainError::AlreadyExists(_))
    ));
}

#[test]
fn invalid_roles_and_ids_are_named() {
    let field = |result: Result<Vec<Event>, DomainError>| match result {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let state = given::<UserState>([]);
    let create = |user: NewUser| state.when(UserCommand::Create(Box::new(user)));
    assert_eq!(
        field(create(NewUser {
            roles: vec!["user".into(), "Editor".into()],
            ..new_user()
        })),
        "roles[1]"
    );
    assert_eq!(
        field(create(NewUser {
            roles: vec!["user".into(), "user".into()],
            ..new_user()
        })),
        "roles[1]"
    );
    assert_eq!(
        field(create(NewUser {
            roles: (0..51).map(|i| format!("r{i}")).collect(),
            ..new_user()
        })),
        "roles"
    );
    assert_eq!(
        field(create(NewUser {
            user_id: Uuid::nil(),
            ..new_user()
        })),
        "user_id"
    );
}

#[test]
fn names_and_roles_change_together_and_an_identical_change_records_nothing() {
    let state = given::<UserState>([created()]);
    let update =
        |names: SealedNames, roles: Vec<String>| state.when(UserCommand::Update { names, roles });
    assert_eq!(update(names(), vec!["user".into()]), Ok(vec![]));
    let changed = SealedNames {
        family_name: Some(vec![3; 30]),
        ..names()
    };
    assert_eq!(
        update(changed.clone(), vec!["tenant:admin".into()]),
        Ok(vec![Event::UserUpdated(UserUpdatedV1 {
            name: Some(vec![1; 30]).into(),
            given_name: Some(vec![2; 30]).into(),
            family_name: Some(vec![3; 30]).into(),
            roles: vec!["tenant:admin".into()],
        })])
    );
}

#[test]
fn a_new_address_is_unverified() {
    let change = Event::UserEmailChanged(UserEmailChangedV1 {
        email: vec![8; 40].into(),
        email_hash: Hash32([6; 32]).into(),
    });
    let verified = Event::UserCreated(UserCreatedV1 {
        email_verified: true,
        ..match created() {
            Event::UserCreated(created) => created,
            _ => unreachable!(),
        }
    });
    let state = given::<UserState>([verified.clone()]);
    assert_eq!(
        state.when(UserCommand::ChangeEmail {
            email: vec![8; 40],
            email_hash: Hash32([6; 32]),
        }),
        Ok(vec![change.clone()])
    );
    assert_eq!(
        state.when(UserCommand::ChangeEmail {
            email: vec![9; 40],
            email_hash: Hash32([5; 32]),
        }),
        Ok(vec![])
    );
    let user = given::<UserState>([verified, change]).state.user.unwrap();
    assert!(!user.email_verified);
    assert_eq!(user.email_hash, Hash32([6; 32]));
}

#[test]
fn disabling_and_enabling_switch_the_status_and_repeating_changes_nothing() {
    let disabled = Event::UserDisabled(UserDisabledV1 {});
    let enabled = Event::UserEnabled(UserEnabledV1 {});
    assert_eq!(
        given::<UserState>([created()]).when(UserCommand::Disable),
        Ok(vec![disabled.clone()])
    );
    assert_eq!(
        given::<UserState>([created(), disabled.clone()]).when(UserCommand::Disable),
        Ok(vec![])
    );
    assert_eq!(
        given::<UserState>([created()]).when(UserCommand::Enable),
        Ok(vec![])
    );
    assert_eq!(
        given::<UserState>([created(), disabled.clone()]).when(UserCommand::Enable),
        Ok(vec![enabled.clone()])
    );
    let state = given::<UserState>([created(), disabled, enabled]).state;
    assert_eq!(state.user.map(|u| u.status), Some(UserStatus::Active));
}

#[test]
fn a_reused_password_is_refused_with_the_history_rule() {
    let state = given::<UserState>([created(), password_set(HASH)]);
    let reused = NewPassword {
        reused: true,
        ..password(HASH)
    };
    match state.when(UserCommand::SetPassword(reused)) {
        Err(DomainError::Validation { field, message }) => {
            assert_eq!(field, "password");
            assert!(message.contains("last 3 passwords"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        state.when(UserCommand::SetPassword(password("plain text"))),
        Err(DomainError::Validation { .. })
    ));
    let temporary = NewPassword {
        temporary: true,
        ..password(HASH)
    };
    assert_eq!(
        state.when(UserCommand::SetPassword(temporary)),
        Ok(vec![Event::UserPasswordSet(UserPasswordSetV1 {
            password_hash: HASH.to_owned().into(),
            temporary: true,
            set_at: NOW,
        })])
    );
}

#[test]
fn the_history_keeps_the_newest_hashes_first_and_at_most_its_bound() {
    let mut events = vec![created()];
    events.extend((0..30).map(|i| password_set(&format!("$argon2id$h{i}"))));
    let user = given::<UserState>(events).state.user.unwrap();
    assert_eq!(user.password_history.len(), crate::password::MAX_HISTORY);
    assert_eq!(
        user.recent_password_hashes(2),
        ["$argon2id$h29".to_owned(), "$argon2id$h28".to_owned()]
    );
    assert_eq!(user.recent_password_hashes(0), [] as [String; 0]);
    assert_eq!(user.recent_password_hashes(24).len(), 24);
}

#[test]
fn an_erased_user_refuses_every_change_and_keeps_nothing_personal() {
    let erased = Event::UserErased(UserErasedV1 {});
    assert_eq!(
        given::<UserState>([created()]).when(UserCommand::Erase),
        Ok(vec![erased.clone()])
    );
    let state = given::<UserState>([created(), password_set(HASH), erased]);
    assert_eq!(state.when(UserCommand::Erase), Ok(vec![]));
    for command in [
        UserCommand::Disable,
        UserCommand::Enable,
        UserCommand::SetPassword(password(HASH)),
        UserCommand::Update {
            names: names(),
            roles: vec![],
        },
    ] {
        assert!(matches!(
            state.when(command),
            Err(DomainError::IllegalTransition { from, .. }) if from == "erased"
        ));
    }
    let user = state.state.user.unwrap();
    assert_eq!(user.status, UserStatus::Erased);
    assert!(user.email.is_empty() && user.names == SealedNames::default());
    assert!(user.password.is_none() && user.password_history.is_empty());
    assert_eq!(user.email_hash, Hash32([5; 32]));
}

#[test]
fn commands_on_a_user_never_created_are_not_found() {
    for command in [
        UserCommand::Disable,
        UserCommand::Erase,
        UserCommand::SetPassword(password(HASH)),
    ] {
        assert_eq!(
            given::<UserState>([]).when(command),
            Err(DomainError::NotFound)
        );
    }
}

#[test]
fn addresses_are_checked_kept_as_entered_and_normalised_for_uniqueness() {
    assert_eq!(
        email("email", "  Ada.Lovelace@Example.COM ", &[]),
        Ok("Ada.Lovelace@Example.COM".to_owned())
    );
    assert_eq!(
        normalize_email("  Ada.Lovelace@Example.COM "),
        "ada.lovelace@example.com"
    );
    for bad in [
        "",
        "ada",
        "@example.com",
        "ada@",
        "ada@localhost",
        "a da@example.com",
        "ada@exa mple.com",
        "ada@@example.com",
    ] {
        assert!(email("email", bad, &[]).is_err(), "{bad:?}");
    }
    let long = format!("{}@example.com", "a".repeat(250));
    assert!(email("email", &long, &[]).is_err());
}

#[test]
fn a_tenants_allowed_domains_restrict_addresses() {
    let allowed = vec!["acme.example".to_owned()];
    assert!(email("email", "ada@ACME.example", &allowed).is_ok());
    match email("email", "ada@other.example", &allowed) {
        Err(DomainError::Validation { field, message }) => {
            assert_eq!(field, "email");
            assert!(message.contains("allowed_email_domains"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A subdomain is another domain.
    assert!(email("email", "ada@eu.acme.example", &allowed).is_err());
}

#[test]
fn names_are_trimmed_and_bounded() {
    assert_eq!(person_name("name", " Ada "), Ok("Ada".to_owned()));
    assert!(person_name("name", " ").is_err());
    assert!(person_name("given_name", &"x".repeat(256)).is_err());
}

#[test]
fn statuses_parse_back_from_their_names() {
    for status in [UserStatus::Active, UserStatus::Disabled, UserStatus::Erased] {
        assert_eq!(UserStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(UserStatus::parse("locked"), None);
}
