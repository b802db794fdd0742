//! The command service against the real embedded SQLite event log, in a temp dir: uniqueness
//! through reservations, retries under concurrency, the key ring, API keys and bootstrap.

// Helpers here are not `#[test]` functions, which clippy's allow-*-in-tests settings do not
// cover; failing loudly is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tessera_commands::{
    ActivateTenant, CancelTenant, CommandError, CommandService, CreateTenant, FixedClock,
    IssueApiKey, SystemIds, UpdateTenant,
};
use tessera_crypto::{Crypto, MasterKey};
use tessera_domain::DomainError;
use tessera_domain::tenant::KeyStatus;
use tessera_event_log::{Backend, EventLog, ExpectedVersion, LogConfig, StreamWrite};
use tessera_event_schemas::events::{SigningAlg, TenantKind, TenantStatus};
use tessera_event_schemas::{
    Event, EventMetadata, ProposedEvent, SYSTEM_TENANT_ID, Timestamp, streams,
};
use uuid::Uuid;

/// 2027-01-15T08:00:00Z.
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

struct Harness {
    log: Arc<dyn EventLog>,
    crypto: Arc<Crypto>,
    clock: Arc<FixedClock>,
    service: CommandService,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = tessera_event_log::open(LogConfig::new(Backend::Sqlite {
            path: dir.path().join("events.db"),
        }))
        .await
        .unwrap();
        let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([3; 32])).unwrap());
        let clock = Arc::new(FixedClock::new(NOW));
        let service = CommandService::new(
            log.clone(),
            crypto.clone(),
            clock.clone(),
            Arc::new(SystemIds),
        );
        Self {
            log,
            crypto,
            clock,
            service,
            _dir: dir,
        }
    }

    /// A second service on the same log, as another node would have.
    fn another_node(&self) -> CommandService {
        CommandService::new(
            self.log.clone(),
            self.crypto.clone(),
            self.clock.clone(),
            Arc::new(SystemIds),
        )
    }

    async fn head(&self) -> u64 {
        self.log.head_position().await.unwrap()
    }

    async fn stream(&self, stream_id: &str) -> Vec<Event> {
        self.log
            .read_stream(stream_id, 0, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|recorded| recorded.decode().unwrap())
            .collect()
    }

    async fn create(&self, slug: &str, domains: &[&str]) -> Result<Uuid, CommandError> {
        self.service
            .create_tenant(meta(), tenant(slug, domains))
            .await
            .map(|created| created.tenant_id)
    }
}

fn meta() -> EventMetadata {
    EventMetadata::system("test")
}

fn tenant(slug: &str, domains: &[&str]) -> CreateTenant {
    CreateTenant {
        tenant_id: None,
        slug: slug.into(),
        name: format!("Tenant {slug}"),
        plan: None,
        kind: TenantKind::Customer,
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        settings: None,
        config_json: None,
        sales_owner: None,
        signing_alg: None,
    }
}

fn already_exists(outcome: &Result<impl std::fmt::Debug, CommandError>) -> Option<String> {
    match outcome {
        Err(CommandError::Rejected(DomainError::AlreadyExists(what))) => Some(what.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn creating_a_tenant_reserves_its_slug_and_domains_in_one_append() {
    let h = Harness::new().await;
    let created = h
        .service
        .create_tenant(
            meta(),
            tenant("acme", &["acme.example", "login.acme.example"]),
        )
        .await
        .unwrap();
    // The tenant and its RS256 key, the slug's and the two domains' reservations.
    assert_eq!(created.position, 5);
    assert_eq!(h.head().await, 5);
    assert_eq!(
        h.stream(&streams::reservation("tenant-slug", "acme"))
            .await
            .len(),
        1
    );
    assert_eq!(
        h.stream(&streams::reservation("tenant-domain", "login.acme.example"))
            .await
            .len(),
        1
    );
    let state = h.service.load_tenant(created.tenant_id).await.unwrap();
    let tenant = state.tenant.unwrap();
    assert_eq!(tenant.status, TenantStatus::Trial);
    assert_eq!(tenant.plan, "starter");
    assert_eq!(tenant.active_kid, created.kid);
    assert_eq!(tenant.active_key().map(|k| k.alg), Some(SigningAlg::ES256));
    assert!(created.kid.starts_with("20270115-"));
}

#[tokio::test]
async fn a_duplicate_slug_is_rejected_and_nothing_is_appended() {
    let h = Harness::new().await;
    h.create("acme", &[]).await.unwrap();
    let head = h.head().await;
    let outcome = h.create("acme", &["other.example"]).await;
    assert_eq!(already_exists(&outcome).as_deref(), Some("slug \"acme\""));
    assert_eq!(h.head().await, head);
}

#[tokio::test]
async fn a_domain_held_by_another_tenant_is_rejected() {
    let h = Harness::new().await;
    h.create("acme", &["acme.example"]).await.unwrap();
    let head = h.head().await;
    let outcome = h
        .create("globex", &["globex.example", "acme.example"])
        .await;
    assert_eq!(
        already_exists(&outcome).as_deref(),
        Some("domain \"acme.example\"")
    );
    assert_eq!(h.head().await, head);
}

#[tokio::test]
async fn concurrent_creations_with_one_slug_let_exactly_one_win() {
    let h = Harness::new().await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let node = h.another_node();
            tokio::spawn(async move { node.create_tenant(meta(), tenant("acme", &[])).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| o.is_err())
            .all(|o| already_exists(o).is_some()),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn ten_concurrent_updates_on_one_tenant_all_succeed() {
    let h = Arc::new(Harness::new().await);
    let id = h.create("acme", &[]).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                h.service
                    .update_tenant(
                        meta(),
                        id,
                        UpdateTenant {
                            name: Some(format!("Acme {i}")),
                            ..UpdateTenant::default()
                        },
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // The creation and the RS256 key, then the ten updates.
    assert_eq!(h.stream(&streams::tenant(id)).await.len(), 12);
}

#[tokio::test]
async fn concurrent_updates_from_two_nodes_succeed_through_retries() {
    let h = Arc::new(Harness::new().await);
    let id = h.create("acme", &[]).await.unwrap();
    let nodes = [Arc::new(h.another_node()), Arc::new(h.another_node())];
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let node = nodes[i % 2].clone();
            tokio::spawn(async move {
                node.update_tenant(
                    meta(),
                    id,
                    UpdateTenant {
                        name: Some(format!("Acme {i}")),
                        ..UpdateTenant::default()
                    },
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // The creation and the RS256 key, then the ten updates.
    assert_eq!(h.stream(&streams::tenant(id)).await.len(), 12);
}

#[tokio::test]
async fn changing_domains_claims_new_ones_and_releases_removed_ones() {
    let h = Harness::new().await;
    let acme = h.create("acme", &["old.example"]).await.unwrap();
    h.service
        .update_tenant(
            meta(),
            acme,
            UpdateTenant {
                domains: Some(vec!["new.example".into()]),
                ..UpdateTenant::default()
            },
        )
        .await
        .unwrap();
    // The released domain is free for someone else; the new one is not.
    h.create("globex", &["old.example"]).await.unwrap();
    let outcome = h.create("initech", &["new.example"]).await;
    assert_eq!(
        already_exists(&outcome).as_deref(),
        Some("domain \"new.example\"")
    );
    let head = h.head().await;
    // Taking a domain someone else holds fails as a whole.
    let outcome = h
        .service
        .update_tenant(
            meta(),
            acme,
            UpdateTenant {
                name: Some("Acme renamed".into()),
                domains: Some(vec!["old.example".into()]),
                ..UpdateTenant::default()
            },
        )
        .await;
    assert!(already_exists(&outcome).is_some(), "{outcome:?}");
    assert_eq!(h.head().await, head);
}

#[tokio::test]
async fn keys_rotate_and_retire_through_the_ring() {
    let h = Harness::new().await;
    let created = h
        .service
        .create_tenant(
            meta(),
            CreateTenant {
                signing_alg: Some(SigningAlg::EdDSA),
                ..tenant("acme", &[])
            },
        )
        .await
        .unwrap();
    let id = created.tenant_id;
    let rotated = h
        .service
        .rotate_signing_key(meta(), id, None)
        .await
        .unwrap();
    assert_ne!(rotated.kid, created.kid);

    let retire_active = h
        .service
        .retire_signing_key(meta(), id, rotated.kid.clone())
        .await;
    assert!(
        matches!(&retire_active, Err(CommandError::Rejected(DomainError::Conflict(m))) if m.contains("rotate first")),
        "{retire_active:?}"
    );
    let unknown = h
        .service
        .retire_signing_key(meta(), id, "nope".into())
        .await;
    assert!(
        matches!(unknown, Err(CommandError::Rejected(DomainError::NotFound))),
        "{unknown:?}"
    );
    h.service
        .retire_signing_key(meta(), id, created.kid.clone())
        .await
        .unwrap();

    let tenant = h.service.load_tenant(id).await.unwrap().tenant.unwrap();
    let ring: Vec<(String, KeyStatus)> = tenant
        .keys
        .iter()
        .map(|k| (k.kid.clone(), k.status))
        .collect();
    let rs256 = tenant.active_key_for(SigningAlg::RS256).unwrap();
    assert_eq!(
        ring,
        vec![
            (created.kid.clone(), KeyStatus::Retired),
            (rs256.kid.clone(), KeyStatus::Active),
            (rotated.kid.clone(), KeyStatus::Active)
        ],
        "the RS256 key for ID tokens stays active beside the rotated default"
    );
    // The rotated key kept the tenant's algorithm, and its private half unseals.
    let active = tenant.active_key().unwrap();
    assert_eq!(active.alg, SigningAlg::EdDSA);
    let stored = tessera_event_schemas::events::SigningKeyV1 {
        kid: active.kid.clone(),
        alg: active.alg,
        public_jwk: active.public_jwk.clone(),
        sealed_private_key: active.sealed_private_key.clone().into(),
        created_at: active.created_at,
    };
    assert!(!h.crypto.unseal_private_key(id, &stored).unwrap().is_empty());

    let rsa = h
        .service
        .rotate_signing_key(meta(), id, Some(SigningAlg::RS256))
        .await
        .unwrap();
    let tenant = h.service.load_tenant(id).await.unwrap().tenant.unwrap();
    // Rotating RS256 replaces the RS256 key; the default (EdDSA) key stays the default.
    assert_eq!(
        tenant
            .active_key_for(SigningAlg::RS256)
            .map(|k| k.kid.clone()),
        Some(rsa.kid)
    );
    assert_eq!(tenant.active_key().map(|k| k.alg), Some(SigningAlg::EdDSA));
}

#[tokio::test]
async fn bootstrap_creates_the_system_tenant_and_an_admin_key_once() {
    let h = Harness::new().await;
    let issued = h.service.bootstrap(None).await.unwrap().unwrap();
    assert!(issued.plaintext.starts_with("tsr_"));
    assert_eq!(issued.prefix, issued.plaintext[..12]);
    let head = h.head().await;
    assert_eq!(issued.position, head);

    let system = h
        .service
        .load_tenant(SYSTEM_TENANT_ID)
        .await
        .unwrap()
        .tenant
        .unwrap();
    assert_eq!(
        (system.slug.as_str(), system.status, system.plan.as_str()),
        ("system", TenantStatus::Active, "platform")
    );
    let key_events = h
        .stream(&streams::api_key(SYSTEM_TENANT_ID, issued.key_id))
        .await;
    let [Event::ApiKeyIssued(key)] = key_events.as_slice() else {
        panic!("expected one api_key.issued, got {key_events:?}");
    };
    assert_eq!(key.scopes, vec!["platform:admin".to_owned()]);
    assert_eq!(key.name, "bootstrap admin");
    assert!(h.crypto.verify_secret(&issued.plaintext, &key.secret_hash));

    assert_eq!(h.service.bootstrap(None).await.unwrap(), None);
    assert_eq!(h.another_node().bootstrap(None).await.unwrap(), None);
    assert_eq!(h.head().await, head);
}

#[tokio::test]
async fn bootstrap_uses_a_supplied_admin_key() {
    let h = Harness::new().await;
    let chosen = "tsr_operator-chosen-bootstrap-key-0123456789".to_owned();
    let issued = h
        .service
        .bootstrap(Some(chosen.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issued.plaintext, chosen);
    let key_events = h
        .stream(&streams::api_key(SYSTEM_TENANT_ID, issued.key_id))
        .await;
    let [Event::ApiKeyIssued(key)] = key_events.as_slice() else {
        panic!("expected one api_key.issued, got {key_events:?}");
    };
    assert_eq!(*key.secret_hash.expose(), h.crypto.secret_hash(&chosen));
}

#[tokio::test]
async fn the_system_slug_is_refused_to_everyone_else() {
    let h = Harness::new().await;
    h.service.bootstrap(None).await.unwrap();
    let outcome = h.create("system", &[]).await;
    assert!(
        matches!(&outcome, Err(CommandError::Rejected(DomainError::Validation { field, .. })) if field == "slug"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn rejected_commands_append_nothing() {
    let h = Harness::new().await;
    let id = h.create("acme", &[]).await.unwrap();
    h.service
        .activate(meta(), id, ActivateTenant::default())
        .await
        .unwrap();
    let head = h.head().await;

    let again = h
        .service
        .activate(meta(), id, ActivateTenant::default())
        .await;
    assert!(
        matches!(
            again,
            Err(CommandError::Rejected(
                DomainError::IllegalTransition { .. }
            ))
        ),
        "{again:?}"
    );
    let mut settings = tessera_domain::tenant::default_settings();
    settings.password_policy.min_length = 4;
    let invalid = h.service.change_settings(meta(), id, settings).await;
    assert!(
        matches!(&invalid, Err(CommandError::Rejected(DomainError::Validation { field, .. })) if field == "settings.password_policy.min_length"),
        "{invalid:?}"
    );
    let reactivate = h.service.reactivate(meta(), id).await;
    assert!(reactivate.is_err());
    assert_eq!(h.head().await, head);
}

#[tokio::test]
async fn commands_on_an_unknown_tenant_are_not_found() {
    let h = Harness::new().await;
    let unknown = Uuid::from_u128(0x0dd);
    let tenant = unknown.to_string();
    assert!(matches!(
        h.service.archive(meta(), unknown).await,
        Err(CommandError::NotFound { kind: "tenant", id }) if id == tenant
    ));
    assert!(matches!(
        h.service.rotate_signing_key(meta(), unknown, None).await,
        Err(CommandError::NotFound { kind: "tenant", id }) if id == tenant
    ));
    assert!(matches!(
        h.service.issue_api_key(meta(), unknown, api_key()).await,
        Err(CommandError::NotFound { kind: "tenant", id }) if id == tenant
    ));
    let key_id = Uuid::from_u128(0x0dd_4e7);
    assert!(matches!(
        h.service
            .revoke_api_key(meta(), unknown, key_id)
            .await,
        Err(CommandError::NotFound { kind: "api_key", id }) if id == key_id.to_string()
    ));
    assert_eq!(h.head().await, 0);
}

fn api_key() -> IssueApiKey {
    IssueApiKey {
        name: "deploy".into(),
        scopes: vec!["tenant:admin".into()],
        product: None,
        expires_at: None,
        created_by: "ops".into(),
        key_id: None,
        plaintext: None,
    }
}

#[tokio::test]
async fn api_keys_store_only_a_hash_and_revoke_once() {
    let h = Harness::new().await;
    let id = h.create("acme", &[]).await.unwrap();
    let issued = h
        .service
        .issue_api_key(meta(), id, api_key())
        .await
        .unwrap();
    let stream = streams::api_key(id, issued.key_id);
    let recorded = h.log.read_stream(&stream, 0, 10).await.unwrap();
    let secret = &issued.plaintext.as_bytes()[4..];
    assert!(
        !recorded[0]
            .payload
            .windows(secret.len())
            .any(|w| w == secret),
        "the plaintext must not be stored"
    );

    h.service
        .revoke_api_key(meta(), id, issued.key_id)
        .await
        .unwrap();
    let again = h.service.revoke_api_key(meta(), id, issued.key_id).await;
    assert!(
        matches!(again, Err(CommandError::Rejected(DomainError::Conflict(_)))),
        "{again:?}"
    );
}

#[tokio::test]
async fn archived_tenants_get_no_new_api_keys() {
    let h = Harness::new().await;
    let id = h.create("acme", &[]).await.unwrap();
    h.service.archive(meta(), id).await.unwrap();
    let outcome = h.service.issue_api_key(meta(), id, api_key()).await;
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

#[tokio::test]
async fn a_cancellation_at_period_end_freezes_when_due() {
    let h = Harness::new().await;
    let id = h.create("acme", &[]).await.unwrap();
    h.service
        .activate(
            meta(),
            id,
            ActivateTenant {
                contract_end: tessera_event_schemas::Date::parse("2027-01-31"),
                ..ActivateTenant::default()
            },
        )
        .await
        .unwrap();
    h.service
        .cancel(
            meta(),
            id,
            CancelTenant {
                reason: "budget".into(),
                at_period_end: true,
            },
        )
        .await
        .unwrap();
    let head = h.head().await;
    h.service.freeze_due(meta(), id).await.unwrap();
    assert_eq!(h.head().await, head);
    assert_eq!(status(&h, id).await, TenantStatus::Active);

    h.clock.advance_seconds(20 * 86_400);
    h.service.freeze_due(meta(), id).await.unwrap();
    assert_eq!(status(&h, id).await, TenantStatus::Frozen);
}

async fn status(h: &Harness, id: Uuid) -> TenantStatus {
    h.service
        .load_tenant(id)
        .await
        .unwrap()
        .tenant
        .unwrap()
        .status
}

#[tokio::test]
async fn two_nodes_ensuring_a_missing_rs256_key_add_one_between_them() {
    let h = Arc::new(Harness::new().await);
    // A tenant as a log written before every tenant kept an RS256 key has it: its creation
    // alone (taken from a tenant created now, under another id and slug).
    let template = h.create("template", &[]).await.unwrap();
    let Some(Event::TenantCreated(mut created)) = h
        .stream(&streams::tenant(template))
        .await
        .into_iter()
        .next()
    else {
        panic!("no tenant.created");
    };
    let id = Uuid::from_u128(0x01d);
    created.tenant_id = id;
    created.slug = "old-tenant".into();
    let default_kid = created.signing_key.kid.clone();
    let event = Event::TenantCreated(created);
    h.log
        .append(vec![StreamWrite {
            stream_id: streams::tenant(id).to_string(),
            expected: ExpectedVersion::NoStream,
            events: vec![ProposedEvent::new(
                &event,
                Uuid::from_u128(0x01d0),
                id,
                Timestamp::from_micros(1_800_000_000_000_000),
                meta(),
            )],
        }])
        .await
        .unwrap();

    let nodes = [Arc::new(h.another_node()), Arc::new(h.another_node())];
    let tasks: Vec<_> = nodes
        .iter()
        .cloned()
        .map(|node| {
            tokio::spawn(
                async move { node.ensure_signing_key(meta(), id, SigningAlg::RS256).await },
            )
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let tenant = h.service.load_tenant(id).await.unwrap().tenant.unwrap();
    let rs256: Vec<&str> = tenant
        .keys
        .iter()
        .filter(|key| key.alg == SigningAlg::RS256)
        .map(|key| key.kid.as_str())
        .collect();
    assert_eq!(rs256.len(), 1, "{rs256:?}");
    assert_eq!(tenant.active_kid, default_kid, "the default key stays");
    // Once there, ensuring it again changes nothing.
    let head = h.head().await;
    h.service
        .ensure_signing_key(meta(), id, SigningAlg::RS256)
        .await
        .unwrap();
    assert_eq!(h.head().await, head);
}
