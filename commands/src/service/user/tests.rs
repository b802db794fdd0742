//! User commands against the in-memory log and key table: what each appends, what is sealed,
//! email uniqueness through reservations, the password policy and history, and erasure.

use tessera_crypto::{Argon2Config, Crypto, MasterKey, Passwords, PersonalKeys};
use tessera_event_log::{Backend, EventLog, LogConfig, MemoryStore, keys};
use tessera_event_schemas::events::{PasswordPolicyV1, TenantKind, TenantSettingsV1};
use tessera_event_schemas::{Event, RecordedEvent};

use super::*;
use crate::clock::{FixedClock, SystemIds};
use crate::service::tests::meta;
use crate::{CreateTenant, Outcome};

pub(in crate::service) const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
pub(in crate::service) const TENANT: Uuid = Uuid::from_u128(42);
pub(in crate::service) const STRONG: &str = "violet kettle marathon 1987";

/// A command service on the in-memory log and key table, with a tenant `acme` (`TENANT`); the
/// session tests use it too.
pub(in crate::service) struct Fixture {
    pub log: Arc<dyn EventLog>,
    pub keys: Arc<PersonalKeys>,
    pub crypto: Arc<Crypto>,
    pub service: CommandService,
}

pub(in crate::service) async fn fixture(settings: Option<TenantSettingsV1>) -> Fixture {
    let store = MemoryStore::default();
    let backend = Backend::Memory { store };
    let log = tessera_event_log::open(LogConfig::new(backend.clone()))
        .await
        .unwrap();
    let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([7; 32])).unwrap());
    let keys = Arc::new(PersonalKeys::new(
        crypto.clone(),
        keys::open(&backend).await.unwrap(),
    ));
    // Cheap Argon2 parameters: these tests check behaviour, not cost.
    let argon2 = Argon2Config {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let service = CommandService::new(
        log.clone(),
        crypto.clone(),
        Arc::new(FixedClock::new(NOW)),
        Arc::new(SystemIds),
    )
    .with_people(People {
        keys: keys.clone(),
        passwords: Passwords::new(argon2, 2).unwrap(),
    });
    service
        .create_tenant(
            meta(),
            CreateTenant {
                tenant_id: Some(TENANT),
                slug: "acme".into(),
                name: "Acme".into(),
                plan: None,
                kind: TenantKind::Customer,
                domains: vec![],
                settings,
                config_json: None,
                sales_owner: None,
                signing_alg: None,
            },
        )
        .await
        .unwrap();
    Fixture {
        log,
        keys,
        crypto,
        service,
    }
}

pub(in crate::service) fn ada() -> CreateUser {
    CreateUser {
        email: " Ada.Lovelace@Example.com ".into(),
        name: Some("Ada Lovelace".into()),
        given_name: Some("Ada".into()),
        roles: vec!["user".into()],
        password: Some(STRONG.into()),
        temporary: true,
        ..CreateUser::default()
    }
}

impl Fixture {
    pub(in crate::service) async fn events(&self) -> Vec<RecordedEvent> {
        self.log.read_all(0, usize::MAX).await.unwrap()
    }

    async fn user(&self, user_id: Uuid) -> User {
        self.service
            .load_user(TENANT, user_id)
            .await
            .unwrap()
            .user
            .unwrap()
    }

    async fn email_of(&self, user_id: Uuid) -> Option<String> {
        let user = self.user(user_id).await;
        self.keys
            .open(TENANT, user_id, fields::EMAIL, &user.email)
            .await
            .unwrap()
    }
}

pub(in crate::service) fn rejected(
    result: Result<impl std::fmt::Debug, CommandError>,
) -> DomainError {
    match result {
        Err(CommandError::Rejected(error)) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_is_created_sealed_with_a_reserved_address_and_a_hashed_password() {
    let f = fixture(None).await;
    let created = f.service.create_user(meta(), TENANT, ada()).await.unwrap();
    let events = f.events().await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e.envelope.event_type.as_str())
        .collect();
    assert_eq!(
        &types[types.len() - 3..],
        ["reservation.claimed", "user.created", "user.password_set"]
    );
    // The address is kept as entered (trimmed), sealed; nothing personal or secret is in the
    // stored bytes of any event.
    assert_eq!(
        f.email_of(created.user_id).await.as_deref(),
        Some("Ada.Lovelace@Example.com")
    );
    for event in &events {
        for needle in ["Lovelace", "lovelace", "Ada", STRONG] {
            assert!(
                !event
                    .payload
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes()),
                "{} carries {needle}",
                event.envelope.event_type
            );
        }
    }
    let user = f.user(created.user_id).await;
    assert_eq!(
        user.email_hash,
        f.service.email_hash(TENANT, "ada.lovelace@example.com")
    );
    let password = user.password.unwrap();
    assert!(password.temporary);
    assert!(password.hash.starts_with("$argon2id$"));
}

#[tokio::test]
async fn an_address_is_unique_in_its_tenant_whatever_its_case_and_spaces() {
    let f = fixture(None).await;
    f.service.create_user(meta(), TENANT, ada()).await.unwrap();
    let again = CreateUser {
        email: "ADA.LOVELACE@example.COM".into(),
        password: None,
        ..ada()
    };
    let events_before = f.events().await.len();
    assert_eq!(
        rejected(f.service.create_user(meta(), TENANT, again).await),
        DomainError::AlreadyExists("a user with this email address".into())
    );
    assert_eq!(f.events().await.len(), events_before);
    // Refused before any key was made for the would-be user.
    let with_id = CreateUser {
        user_id: Some(Uuid::from_u128(77)),
        email: "ada.lovelace@example.com".into(),
        password: None,
        ..ada()
    };
    assert!(
        f.service
            .create_user(meta(), TENANT, with_id)
            .await
            .is_err()
    );
    assert!(
        f.keys
            .get(TENANT, Uuid::from_u128(77))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_tenants_allowed_domains_and_password_policy_are_enforced() {
    let mut settings = tessera_domain::tenant::default_settings();
    settings.allowed_email_domains = vec!["acme.example".into()];
    settings.password_policy = PasswordPolicyV1 {
        require_numbers: true,
        ..settings.password_policy
    };
    let f = fixture(Some(settings)).await;
    let field = |error: DomainError| match error {
        DomainError::Validation { field, message } => format!("{field}: {message}"),
        other => panic!("{other:?}"),
    };
    let outside = rejected(f.service.create_user(meta(), TENANT, ada()).await);
    assert!(field(outside).contains("allowed_email_domains"));
    let inside = |password: &str| CreateUser {
        email: "ada@acme.example".into(),
        password: Some(password.into()),
        ..ada()
    };
    let weak = rejected(
        f.service
            .create_user(meta(), TENANT, inside("Password123456"))
            .await,
    );
    assert!(field(weak).contains("too easy to guess"));
    let personal = rejected(
        f.service
            .create_user(meta(), TENANT, inside("AdaLovelace1815"))
            .await,
    );
    assert!(field(personal).contains("too easy to guess"));
    let no_digit = rejected(
        f.service
            .create_user(meta(), TENANT, inside("violet kettle marathon"))
            .await,
    );
    assert!(field(no_digit).contains("digit"));
    f.service
        .create_user(meta(), TENANT, inside(STRONG))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_address_is_unverified_and_frees_the_old_one() {
    let f = fixture(None).await;
    let ada = f
        .service
        .create_user(
            meta(),
            TENANT,
            CreateUser {
                email_verified: true,
                ..ada()
            },
        )
        .await
        .unwrap();
    let change = UpdateUser {
        email: Some("ada@analytical.example".into()),
        family_name: Some(Some("Byron".into())),
        ..UpdateUser::default()
    };
    f.service
        .update_user(meta(), TENANT, ada.user_id, change)
        .await
        .unwrap();
    let user = f.user(ada.user_id).await;
    assert!(!user.email_verified);
    assert_eq!(
        f.email_of(ada.user_id).await.as_deref(),
        Some("ada@analytical.example")
    );
    assert_eq!(user.roles, ["user"]);
    // The old address is free for someone else, the new one is taken.
    f.service
        .create_user(
            meta(),
            TENANT,
            CreateUser {
                password: None,
                ..self::ada()
            },
        )
        .await
        .unwrap();
    let taken = CreateUser {
        email: "Ada@Analytical.example".into(),
        password: None,
        ..self::ada()
    };
    assert!(matches!(
        rejected(f.service.create_user(meta(), TENANT, taken).await),
        DomainError::AlreadyExists(_)
    ));
    // Re-sending the same address and roles changes nothing.
    let before = f.events().await.len();
    let same = UpdateUser {
        email: Some("ada@analytical.example".into()),
        roles: Some(vec!["user".into()]),
        ..UpdateUser::default()
    };
    let Outcome { .. } = f
        .service
        .update_user(meta(), TENANT, ada.user_id, same)
        .await
        .unwrap();
    assert_eq!(f.events().await.len(), before);
}

#[tokio::test]
async fn a_password_from_the_recent_history_is_refused() {
    let mut settings = tessera_domain::tenant::default_settings();
    settings.password_policy.password_history_count = 2;
    let f = fixture(Some(settings)).await;
    let ada = f.service.create_user(meta(), TENANT, ada()).await.unwrap();
    let set = |password: &'static str| {
        f.service
            .set_user_password(meta(), TENANT, ada.user_id, password, false)
    };
    set("orchid pylon harbour 42").await.unwrap();
    match rejected(set(STRONG).await) {
        DomainError::Validation { field, message } => {
            assert_eq!(field, "password");
            assert!(message.contains("last 2 passwords"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    set("tundra saffron violin 77").await.unwrap();
    // Two passwords later, the first one is out of the history.
    set(STRONG).await.unwrap();
    let user = f.user(ada.user_id).await;
    assert!(!user.password.unwrap().temporary);
}

#[tokio::test]
async fn erasure_destroys_the_key_releases_the_address_and_ends_every_change() {
    let f = fixture(None).await;
    let ada = f.service.create_user(meta(), TENANT, ada()).await.unwrap();
    f.service
        .disable_user(meta(), TENANT, ada.user_id)
        .await
        .unwrap();
    f.service
        .erase_user(meta(), TENANT, ada.user_id)
        .await
        .unwrap();
    assert!(f.keys.get(TENANT, ada.user_id).await.unwrap().is_none());
    let events = f.events().await;
    let last: Vec<&str> = events[events.len() - 2..]
        .iter()
        .map(|e| e.envelope.event_type.as_str())
        .collect();
    assert_eq!(last, ["reservation.released", "user.erased"]);
    assert!(matches!(
        events.last().unwrap().decode().unwrap(),
        Event::UserErased(_)
    ));
    // The address can be used again; erasing again changes nothing; nothing else is allowed.
    f.service
        .create_user(meta(), TENANT, self::ada())
        .await
        .unwrap();
    let before = f.events().await.len();
    f.service
        .erase_user(meta(), TENANT, ada.user_id)
        .await
        .unwrap();
    assert_eq!(f.events().await.len(), before);
    assert!(matches!(
        rejected(f.service.enable_user(meta(), TENANT, ada.user_id).await),
        DomainError::IllegalTransition { .. }
    ));
    assert!(matches!(
        rejected(
            f.service
                .update_user(meta(), TENANT, ada.user_id, UpdateUser::default())
                .await
        ),
        DomainError::IllegalTransition { .. }
    ));
}

#[tokio::test]
async fn commands_on_an_unknown_user_or_tenant_are_not_found() {
    let f = fixture(None).await;
    let nobody = Uuid::from_u128(7);
    assert!(matches!(
        f.service.erase_user(meta(), TENANT, nobody).await,
        Err(CommandError::NotFound { kind: "user", .. })
    ));
    assert!(matches!(
        f.service.disable_user(meta(), TENANT, nobody).await,
        Err(CommandError::NotFound { kind: "user", .. })
    ));
    assert!(matches!(
        f.service.create_user(meta(), nobody, ada()).await,
        Err(CommandError::NotFound { kind: "tenant", .. })
    ));
}
