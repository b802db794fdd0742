//! Unit tests of the retry loop and event wrapping, against the in-memory event log wrapped so
//! that it can be told to report conflicts. Behaviour against the real SQLite backend is tested
//! in `tests/`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tessera_domain::DomainError;
use tessera_event_log::{
    AppendError, AppendOutcome, Backend, Checkpoint, EventLog, LogConfig, LogError, MemoryStore,
    StreamWrite,
};
use tessera_event_schemas::events::{SigningAlg, TenantKind};
use tessera_event_schemas::{
    Actor, ActorKind, EventMetadata, RecordedEvent, SYSTEM_TENANT_ID, Timestamp, streams,
};
use uuid::Uuid;

use super::engine::{PAGE, backoff};
use super::*;
use crate::CommandError;
use crate::clock::FixedClock;
use tessera_crypto::{Crypto, MasterKey};

const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

/// The in-memory event log with faults on top: it fails the next `injected_conflicts` appends
/// with a conflict as if another process had just written, and counts appends. Everything else
/// (expected versions, positions, reads) is the real log's, from `tessera_event_log::memory`.
struct FakeLog {
    log: Arc<dyn EventLog>,
    injected_conflicts: AtomicU32,
    appends: AtomicU32,
}

impl FakeLog {
    async fn new() -> Self {
        let config = LogConfig::new(Backend::Memory {
            store: MemoryStore::default(),
        });
        Self {
            log: tessera_event_log::open(config).await.unwrap(),
            injected_conflicts: AtomicU32::new(0),
            appends: AtomicU32::new(0),
        }
    }

    async fn events(&self) -> Vec<RecordedEvent> {
        self.log.read_all(0, usize::MAX).await.unwrap()
    }
}

#[async_trait]
impl EventLog for FakeLog {
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<AppendOutcome, AppendError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        if self
            .injected_conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let write = &writes[0];
            let stream = self.log.read_stream(&write.stream_id, 0, usize::MAX).await;
            let actual = stream.map_or(0, |events| events.len() as u64);
            return Err(AppendError::Conflict {
                stream_id: write.stream_id.clone(),
                expected: write.expected,
                actual: actual + 1,
            });
        }
        self.log.append(writes).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.log.read_stream(stream_id, after_version, limit).await
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.log.read_all(after_position, limit).await
    }

    async fn head_position(&self) -> Result<u64, LogError> {
        self.log.head_position().await
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.log.watch_head()
    }

    async fn checkpoints(&self, after_position: u64) -> Result<Vec<Checkpoint>, LogError> {
        self.log.checkpoints(after_position).await
    }

    async fn ping(&self) -> Result<(), LogError> {
        self.log.ping().await
    }

    async fn close(&self) {
        self.log.close().await;
    }
}

/// Ids 1, 2, 3, ... so that tests can predict them.
struct CountingIds(AtomicU32);

impl IdGen for CountingIds {
    fn new_id(&self) -> Uuid {
        Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::SeqCst)) + 1000)
    }
}

fn service(log: Arc<FakeLog>) -> CommandService {
    let crypto = Crypto::new(&MasterKey::from_bytes([7; 32])).unwrap();
    CommandService::new(
        log,
        Arc::new(crypto),
        Arc::new(FixedClock::new(NOW)),
        Arc::new(CountingIds(AtomicU32::new(0))),
    )
}

/// A service on a fresh in-memory log with a real vault (its keys in the same backend's key
/// table), at `NOW`: the fixture of the vault's command tests.
pub(super) async fn vault_service() -> (CommandService, Arc<dyn EventLog>) {
    let backend = Backend::Memory {
        store: MemoryStore::default(),
    };
    let log = tessera_event_log::open(LogConfig::new(backend.clone()))
        .await
        .unwrap();
    let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([7; 32])).unwrap());
    let vault = Arc::new(tessera_crypto::VaultKeys::new(
        crypto.clone(),
        tessera_event_log::keys::open(&backend).await.unwrap(),
    ));
    let service = CommandService::new(
        log.clone(),
        crypto,
        Arc::new(FixedClock::new(NOW)),
        Arc::new(crate::clock::SystemIds),
    )
    .with_vault(vault);
    (service, log)
}

/// Creates customer tenant `acme` with id `tenant_id`, signing with `signing_alg`.
pub(super) async fn create_acme(
    service: &CommandService,
    tenant_id: Uuid,
    signing_alg: Option<SigningAlg>,
) {
    service
        .create_tenant(
            meta(),
            CreateTenant {
                tenant_id: Some(tenant_id),
                slug: "acme".into(),
                name: "Acme".into(),
                plan: None,
                kind: TenantKind::Customer,
                domains: vec![],
                settings: None,
                config_json: None,
                sales_owner: None,
                signing_alg,
            },
        )
        .await
        .unwrap();
}

pub(super) fn meta() -> EventMetadata {
    EventMetadata {
        actor: Actor {
            kind: ActorKind::ApiKey,
            id: "key-1".into(),
            name: Some("ops".into()),
        },
        correlation_id: "corr-1".into(),
        causation_id: Some(Uuid::from_u128(99)),
        source_ip: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
    }
}

fn acme() -> CreateTenant {
    CreateTenant {
        tenant_id: Some(Uuid::from_u128(42)),
        slug: "acme".into(),
        name: "Acme".into(),
        plan: None,
        kind: TenantKind::Customer,
        domains: vec!["acme.example".into()],
        settings: None,
        config_json: None,
        sales_owner: None,
        signing_alg: Some(SigningAlg::EdDSA),
    }
}

fn rename(name: &str) -> UpdateTenant {
    UpdateTenant {
        name: Some(name.into()),
        ..UpdateTenant::default()
    }
}

#[tokio::test]
async fn every_appended_event_carries_a_fresh_id_the_time_and_the_request_metadata() {
    let log = Arc::new(FakeLog::new().await);
    let created = service(log.clone())
        .create_tenant(meta(), acme())
        .await
        .unwrap();
    let events = log.events().await;
    // The tenant's creation and its RS256 key, then the two reservations.
    assert_eq!(created.position, 4);
    assert_eq!(events.len(), 4);
    let streams: Vec<&str> = events
        .iter()
        .map(|e| e.envelope.stream_id.as_str())
        .collect();
    assert_eq!(
        streams,
        vec![
            streams::tenant(Uuid::from_u128(42)).as_str(),
            streams::tenant(Uuid::from_u128(42)).as_str(),
            streams::reservation("tenant-slug", "acme").as_str(),
            streams::reservation("tenant-domain", "acme.example").as_str(),
        ]
    );
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.envelope.event_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    for event in &events {
        assert_eq!(event.envelope.recorded_at, NOW);
        assert_eq!(event.envelope.correlation_id, "corr-1");
        assert_eq!(event.envelope.causation_id, Some(Uuid::from_u128(99)));
        assert_eq!(event.envelope.actor.kind, ActorKind::ApiKey);
        assert_eq!(event.envelope.source_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(event.envelope.user_agent.as_deref(), Some("test"));
    }
    assert_eq!(events[0].envelope.tenant_id, Uuid::from_u128(42));
    assert_eq!(events[2].envelope.tenant_id, SYSTEM_TENANT_ID);
}

#[tokio::test]
async fn a_version_conflict_is_retried_from_a_fresh_read() {
    let log = Arc::new(FakeLog::new().await);
    let service = service(log.clone());
    service.create_tenant(meta(), acme()).await.unwrap();
    let appends_before = log.appends.load(Ordering::SeqCst);
    log.injected_conflicts.store(MAX_RETRIES, Ordering::SeqCst);
    let outcome = service
        .update_tenant(meta(), Uuid::from_u128(42), rename("Acme 2"))
        .await
        .unwrap();
    assert_eq!(outcome.position, 5);
    assert_eq!(
        log.appends.load(Ordering::SeqCst) - appends_before,
        MAX_RETRIES + 1
    );
}

#[tokio::test]
async fn retries_are_bounded_and_then_report_concurrency() {
    let log = Arc::new(FakeLog::new().await);
    let service = service(log.clone());
    service.create_tenant(meta(), acme()).await.unwrap();
    let appends_before = log.appends.load(Ordering::SeqCst);
    log.injected_conflicts.store(u32::MAX, Ordering::SeqCst);
    let outcome = service
        .update_tenant(meta(), Uuid::from_u128(42), rename("Acme 2"))
        .await;
    assert!(
        matches!(outcome, Err(CommandError::Concurrency)),
        "{outcome:?}"
    );
    assert_eq!(
        log.appends.load(Ordering::SeqCst) - appends_before,
        MAX_RETRIES + 1
    );
    assert_eq!(log.events().await.len(), 4);
}

#[tokio::test]
async fn a_command_that_changes_nothing_appends_nothing_and_reports_the_stream_position() {
    let log = Arc::new(FakeLog::new().await);
    let service = service(log.clone());
    service.create_tenant(meta(), acme()).await.unwrap();
    let appends_before = log.appends.load(Ordering::SeqCst);
    let outcome = service
        .update_tenant(meta(), Uuid::from_u128(42), rename("Acme"))
        .await
        .unwrap();
    // The tenant stream's last event (its RS256 key, after its creation) is at global
    // position 2.
    assert_eq!(outcome.position, 2);
    assert_eq!(log.appends.load(Ordering::SeqCst), appends_before);
}

#[tokio::test]
async fn streams_longer_than_a_page_are_loaded_completely() {
    let log = Arc::new(FakeLog::new().await);
    let service = service(log.clone());
    service.create_tenant(meta(), acme()).await.unwrap();
    let id = Uuid::from_u128(42);
    for i in 0..(PAGE + 3) {
        service
            .update_tenant(meta(), id, rename(&format!("Acme {i}")))
            .await
            .unwrap();
    }
    let state = service.load_tenant(id).await.unwrap();
    let last = format!("Acme {}", PAGE + 2);
    assert_eq!(state.tenant.map(|t| t.name), Some(last));
}

#[tokio::test]
async fn a_supplied_api_key_must_be_long_enough() {
    let log = Arc::new(FakeLog::new().await);
    let outcome = service(log.clone()).bootstrap(Some("short".into())).await;
    assert!(
        matches!(&outcome, Err(CommandError::Rejected(DomainError::Validation { field, .. })) if field == "plaintext"),
        "{outcome:?}"
    );
    assert!(log.events().await.is_empty());
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let issued = IssuedApiKey {
        key_id: Uuid::from_u128(1),
        plaintext: "tsr_supersecret".into(),
        prefix: "tsr_supersec".into(),
        position: 1,
    };
    assert!(!format!("{issued:?}").contains("supersecret"));
    let input = IssueApiKey {
        name: "n".into(),
        scopes: vec![],
        product: None,
        expires_at: None,
        created_by: "c".into(),
        key_id: None,
        plaintext: Some("tsr_supersecret".into()),
    };
    assert!(!format!("{input:?}").contains("supersecret"));
}

#[test]
fn backoff_grows_and_stays_small() {
    for retry in 1..=MAX_RETRIES {
        let ceiling = Duration::from_micros((1000 << (retry - 1)) + 1);
        assert!(backoff(retry) <= ceiling);
    }
}
