//! A tenant with a person in it, on the in-memory or SQLite log and key table, for the tests of
//! second factors and passkeys (test builds only).

use std::sync::Arc;

use tessera_crypto::{Argon2Config, Crypto, MasterKey, Passwords, PersonalKeys};
use tessera_event_log::{Backend, EventLog, LogConfig, MemoryStore, keys};
use tessera_event_schemas::events::{TenantKind, TenantSettingsV1};
use tessera_event_schemas::{Event, RecordedEvent, Timestamp};
use uuid::Uuid;

use super::tests::meta;
use super::{CommandService, CreateTenant, CreateUser, People, RelyingParty};
use crate::clock::{FixedClock, SystemIds};

/// 2027-01-15T08:00:00Z.
pub(super) const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
pub(super) const TENANT: Uuid = Uuid::from_u128(42);
pub(super) const PUBLIC_URL: &str = "https://id.example";

pub(super) struct PeopleFixture {
    pub log: Arc<dyn EventLog>,
    pub crypto: Arc<Crypto>,
    pub keys: Arc<PersonalKeys>,
    pub clock: Arc<FixedClock>,
    pub service: CommandService,
    /// The person created with the tenant.
    pub user: Uuid,
    _dir: Option<tempfile::TempDir>,
}

/// Where the fixture keeps its log and key table.
#[derive(Clone, Copy, Debug)]
pub(super) enum Store {
    Memory,
    Sqlite,
}

pub(super) async fn people(store: Store, settings: Option<TenantSettingsV1>) -> PeopleFixture {
    let (backend, dir) = match store {
        Store::Memory => (
            Backend::Memory {
                store: MemoryStore::default(),
            },
            None,
        ),
        Store::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("events.db");
            (Backend::Sqlite { path }, Some(dir))
        }
    };
    let log = tessera_event_log::open(LogConfig::new(backend.clone()))
        .await
        .unwrap();
    let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([7; 32])).unwrap());
    let keys = Arc::new(PersonalKeys::new(
        crypto.clone(),
        keys::open(&backend).await.unwrap(),
    ));
    let clock = Arc::new(FixedClock::new(NOW));
    let fixture = PeopleFixture {
        service: node(&log, &crypto, &keys, &clock),
        log,
        crypto,
        keys,
        clock,
        user: Uuid::nil(),
        _dir: dir,
    };
    fixture
        .service
        .create_tenant(
            meta(),
            CreateTenant {
                tenant_id: Some(TENANT),
                slug: "acme".into(),
                name: "Acme: Corp".into(),
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
    let user = fixture
        .service
        .create_user(meta(), TENANT, person("ada@example.com", "Ada Lovelace"))
        .await
        .unwrap()
        .user_id;
    PeopleFixture { user, ..fixture }
}

/// A command service on `log`, as one server process (node) would have.
fn node(
    log: &Arc<dyn EventLog>,
    crypto: &Arc<Crypto>,
    keys: &Arc<PersonalKeys>,
    clock: &Arc<FixedClock>,
) -> CommandService {
    // Cheap Argon2 parameters: these tests check behaviour, not cost.
    let argon2 = Argon2Config {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    CommandService::new(
        log.clone(),
        crypto.clone(),
        clock.clone(),
        Arc::new(SystemIds),
    )
    .with_people(People {
        keys: keys.clone(),
        passwords: Passwords::new(argon2, 2).unwrap(),
    })
    .with_relying_party(RelyingParty::from_public_url(PUBLIC_URL).unwrap())
    .with_public_url(PUBLIC_URL)
}

pub(super) fn person(email: &str, name: &str) -> CreateUser {
    CreateUser {
        email: email.into(),
        name: Some(name.into()),
        roles: vec!["user".into()],
        ..CreateUser::default()
    }
}

impl PeopleFixture {
    /// Another node on the same log: its own per-stream queues, so that only the log's expected
    /// versions stand between it and this fixture's service.
    pub fn another_node(&self) -> CommandService {
        node(&self.log, &self.crypto, &self.keys, &self.clock)
    }

    pub async fn events(&self) -> Vec<RecordedEvent> {
        self.log.read_all(0, usize::MAX).await.unwrap()
    }

    /// The decoded events of type `event_type`.
    pub async fn events_of(&self, event_type: &str) -> Vec<Event> {
        self.events()
            .await
            .iter()
            .filter(|e| e.envelope.event_type == event_type)
            .map(|e| e.decode().unwrap())
            .collect()
    }

    /// Whether any stored event payload contains `needle`.
    pub async fn log_contains(&self, needle: &[u8]) -> bool {
        self.events()
            .await
            .iter()
            .any(|e| e.payload.windows(needle.len()).any(|w| w == needle))
    }
}
