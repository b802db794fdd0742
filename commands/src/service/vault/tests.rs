//! The sealing layer on the in-memory and SQLite logs and key tables: the first key on first
//! use, decided once across nodes; secrets bound to their stream; a destroyed vault and retired
//! versions refused, even by a node that still holds the key; a rewrap that moves a secret on.

use std::sync::Arc;

use tessera_crypto::{Crypto, MasterKey, VaultKeys};
use tessera_domain::DomainError;
use tessera_event_log::{
    Backend, EventLog, ExpectedVersion, LogConfig, MemoryStore, StreamWrite, keys,
};
use tessera_event_schemas::events::{VaultDestroyedV1, VaultKeyAddedV1, VaultMinimumSetV1};
use tessera_event_schemas::{Event, ProposedEvent, SYSTEM_TENANT_ID, Timestamp, streams};
use uuid::Uuid;

use super::super::tests::meta;
use crate::CommandError;
use crate::clock::{FixedClock, IdGen, SystemIds};
use crate::service::CommandService;

const ACME: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00a1);
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
const TOKEN: &[u8] = br#"{"access_token":"secret-notion-token"}"#;

#[derive(Clone, Copy, Debug)]
enum Store {
    Memory,
    Sqlite,
}

struct Fixture {
    backend: Backend,
    log: Arc<dyn EventLog>,
    crypto: Arc<Crypto>,
    _dir: Option<tempfile::TempDir>,
}

async fn fixture(store: Store) -> Fixture {
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
    Fixture {
        backend,
        log,
        crypto,
        _dir: dir,
    }
}

impl Fixture {
    /// The vault's keys as one process holds them (its own cache of opened keys).
    async fn keys(&self) -> Arc<VaultKeys> {
        Arc::new(VaultKeys::new(
            self.crypto.clone(),
            keys::open(&self.backend).await.unwrap(),
        ))
    }

    /// One server process on the shared log: its own queues, caches and keys.
    async fn node(&self) -> CommandService {
        CommandService::new(
            self.log.clone(),
            self.crypto.clone(),
            Arc::new(FixedClock::new(NOW)),
            Arc::new(SystemIds),
        )
        .with_vault(self.keys().await)
    }

    async fn vault_events(&self, tenant_id: Uuid) -> Vec<Event> {
        self.log
            .read_stream(&streams::vault(tenant_id), 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|recorded| recorded.decode().unwrap())
            .collect()
    }

    async fn append(&self, tenant_id: Uuid, event: Event) {
        self.log
            .append(vec![StreamWrite {
                stream_id: streams::vault(tenant_id),
                expected: ExpectedVersion::Any,
                events: vec![ProposedEvent::new(
                    &event,
                    SystemIds.new_id(),
                    tenant_id,
                    NOW,
                    meta(),
                )],
            }])
            .await
            .unwrap();
    }
}

fn notion(tenant_id: Uuid) -> String {
    streams::credential(tenant_id, "notion")
}

async fn the_first_seal_makes_one_key_and_the_secret_opens_for_its_stream_only(store: Store) {
    let f = fixture(store).await;
    let service = f.node().await;
    let (sealed, version) = service
        .vault_seal(ACME, &notion(ACME), TOKEN)
        .await
        .unwrap();
    assert_eq!(version, 1);
    assert!(sealed.starts_with("tsr:v1:"), "{sealed}");
    assert!(!sealed.contains("secret-notion-token"));
    let (again, version) = service
        .vault_seal(ACME, &notion(ACME), TOKEN)
        .await
        .unwrap();
    assert_eq!(version, 1);
    assert_ne!(again, sealed, "every seal uses a fresh data key");
    assert_eq!(
        f.vault_events(ACME).await,
        vec![Event::VaultKeyAdded(VaultKeyAddedV1 { version: 1 })]
    );
    assert_eq!(
        service
            .vault_open(ACME, &notion(ACME), &sealed)
            .await
            .unwrap()
            .as_slice(),
        TOKEN
    );
    // Another node (no cache) opens it too.
    let other = f.node().await;
    assert_eq!(
        other
            .vault_open(ACME, &notion(ACME), &sealed)
            .await
            .unwrap()
            .as_slice(),
        TOKEN
    );
    // Copied to another connection or another tenant, it does not open.
    let github = streams::credential(ACME, "github");
    assert!(service.vault_open(ACME, &github, &sealed).await.is_err());
    let globex = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00b2);
    service
        .vault_seal(globex, &notion(globex), b"x")
        .await
        .unwrap();
    assert!(
        service
            .vault_open(globex, &notion(globex), &sealed)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_first_seal_makes_one_key_and_the_secret_opens_for_its_stream_only_in_memory() {
    the_first_seal_makes_one_key_and_the_secret_opens_for_its_stream_only(Store::Memory).await;
}

#[tokio::test]
async fn the_first_seal_makes_one_key_and_the_secret_opens_for_its_stream_only_on_sqlite() {
    the_first_seal_makes_one_key_and_the_secret_opens_for_its_stream_only(Store::Sqlite).await;
}

async fn nodes_sealing_at_once_for_a_new_tenant_agree_on_one_first_key(store: Store) {
    let f = fixture(store).await;
    let nodes = [
        f.node().await,
        f.node().await,
        f.node().await,
        f.node().await,
    ];
    let stream = notion(ACME);
    // Polled together, the seals interleave at every wait on the log.
    let (a, b, c, d) = tokio::join!(
        nodes[0].vault_seal(ACME, &stream, TOKEN),
        nodes[1].vault_seal(ACME, &stream, TOKEN),
        nodes[2].vault_seal(ACME, &stream, TOKEN),
        nodes[3].vault_seal(ACME, &stream, TOKEN),
    );
    let seals: Vec<String> = [a, b, c, d]
        .into_iter()
        .map(|result| {
            let (sealed, version) = result.unwrap();
            assert_eq!(version, 1);
            sealed
        })
        .collect();
    assert_eq!(
        f.vault_events(ACME).await,
        vec![Event::VaultKeyAdded(VaultKeyAddedV1 { version: 1 })]
    );
    // Every node's secret opens on every node: they all used the one key version 1.
    for sealed in &seals {
        for node in &nodes {
            assert_eq!(
                node.vault_open(ACME, &stream, sealed)
                    .await
                    .unwrap()
                    .as_slice(),
                TOKEN
            );
        }
    }
}

#[tokio::test]
async fn nodes_sealing_at_once_for_a_new_tenant_agree_on_one_first_key_in_memory() {
    nodes_sealing_at_once_for_a_new_tenant_agree_on_one_first_key(Store::Memory).await;
}

#[tokio::test]
async fn nodes_sealing_at_once_for_a_new_tenant_agree_on_one_first_key_on_sqlite() {
    nodes_sealing_at_once_for_a_new_tenant_agree_on_one_first_key(Store::Sqlite).await;
}

async fn a_destroyed_vault_refuses_even_on_a_node_that_holds_the_key(store: Store) {
    let f = fixture(store).await;
    let a = f.node().await;
    let (sealed, _) = a.vault_seal(ACME, &notion(ACME), TOKEN).await.unwrap();
    assert!(a.vault_open(ACME, &notion(ACME), &sealed).await.is_ok());
    // Another process offboards the tenant: its keys destroyed, then the fact recorded.
    f.keys().await.destroy(ACME, 1).await.unwrap();
    f.append(ACME, Event::VaultDestroyed(VaultDestroyedV1 {}))
        .await;
    for outcome in [
        a.vault_open(ACME, &notion(ACME), &sealed).await.map(|_| ()),
        a.vault_seal(ACME, &notion(ACME), TOKEN).await.map(|_| ()),
        a.vault_rewrap_secret(ACME, &notion(ACME), &sealed)
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(
                outcome,
                Err(CommandError::Rejected(
                    DomainError::IllegalTransition { .. }
                ))
            ),
            "{outcome:?}"
        );
    }
    // A fresh node cannot open it either, and no first key is made again.
    let fresh = f.node().await;
    assert!(
        fresh
            .vault_open(ACME, &notion(ACME), &sealed)
            .await
            .is_err()
    );
    assert!(fresh.vault_seal(ACME, &notion(ACME), TOKEN).await.is_err());
    assert_eq!(f.vault_events(ACME).await.len(), 2);
}

#[tokio::test]
async fn a_destroyed_vault_refuses_even_on_a_node_that_holds_the_key_in_memory() {
    a_destroyed_vault_refuses_even_on_a_node_that_holds_the_key(Store::Memory).await;
}

#[tokio::test]
async fn a_destroyed_vault_refuses_even_on_a_node_that_holds_the_key_on_sqlite() {
    a_destroyed_vault_refuses_even_on_a_node_that_holds_the_key(Store::Sqlite).await;
}

async fn a_rewrap_moves_a_secret_to_the_newest_version_before_the_minimum_retires_the_old(
    store: Store,
) {
    let f = fixture(store).await;
    let service = f.node().await;
    let stream = notion(ACME);
    let (old, _) = service.vault_seal(ACME, &stream, TOKEN).await.unwrap();
    assert_eq!(
        service
            .vault_rewrap_secret(ACME, &stream, &old)
            .await
            .unwrap(),
        None,
        "already at the newest version"
    );
    // A rotation: the key first, then the fact.
    f.keys().await.create(ACME, 2).await.unwrap();
    f.append(ACME, Event::VaultKeyAdded(VaultKeyAddedV1 { version: 2 }))
        .await;
    let (new, version) = service.vault_seal(ACME, &stream, TOKEN).await.unwrap();
    assert_eq!(version, 2, "new secrets use the newest version");
    assert!(new.starts_with("tsr:v2:"));
    let (rewrapped, version) = service
        .vault_rewrap_secret(ACME, &stream, &old)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(version, 2);
    assert!(rewrapped.starts_with("tsr:v2:"));

    f.append(
        ACME,
        Event::VaultMinimumSet(VaultMinimumSetV1 { version: 2 }),
    )
    .await;
    assert!(matches!(
        service.vault_open(ACME, &stream, &old).await,
        Err(CommandError::Rejected(DomainError::Conflict(message))) if message.contains("below")
    ));
    for sealed in [&rewrapped, &new] {
        assert_eq!(
            service
                .vault_open(ACME, &stream, sealed)
                .await
                .unwrap()
                .as_slice(),
            TOKEN
        );
    }
}

#[tokio::test]
async fn a_rewrap_moves_a_secret_to_the_newest_version_before_the_minimum_retires_the_old_in_memory()
 {
    a_rewrap_moves_a_secret_to_the_newest_version_before_the_minimum_retires_the_old(Store::Memory)
        .await;
}

#[tokio::test]
async fn a_rewrap_moves_a_secret_to_the_newest_version_before_the_minimum_retires_the_old_on_sqlite()
 {
    a_rewrap_moves_a_secret_to_the_newest_version_before_the_minimum_retires_the_old(Store::Sqlite)
        .await;
}

#[tokio::test]
async fn the_platforms_secrets_use_the_system_tenants_vault() {
    let f = fixture(Store::Memory).await;
    let service = f.node().await;
    let stream = streams::integration("notion");
    let (sealed, _) = service
        .vault_seal(SYSTEM_TENANT_ID, &stream, b"client-secret")
        .await
        .unwrap();
    assert_eq!(f.vault_events(SYSTEM_TENANT_ID).await.len(), 1);
    assert_eq!(
        service
            .vault_open(SYSTEM_TENANT_ID, &stream, &sealed)
            .await
            .unwrap()
            .as_slice(),
        b"client-secret"
    );
    assert!(service.vault_open(ACME, &stream, &sealed).await.is_err());
}

#[tokio::test]
async fn a_service_without_vault_keys_refuses_as_an_internal_error() {
    let f = fixture(Store::Memory).await;
    let service = CommandService::new(
        f.log.clone(),
        f.crypto.clone(),
        Arc::new(FixedClock::new(NOW)),
        Arc::new(SystemIds),
    );
    assert!(matches!(
        service.vault_seal(ACME, &notion(ACME), TOKEN).await,
        Err(CommandError::Internal(_))
    ));
}
