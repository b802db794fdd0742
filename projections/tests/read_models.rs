//! The projector end to end, against the real event log and read store, on both backends:
//! embedded SQLite (log and read models in two files of a temp dir) and PostgreSQL (log and
//! `rm_` tables in one throwaway database from `tessera-test-support`).
//!
//! Cases are async functions taking a [`Kind`]; `backends!` at the bottom turns each into one
//! test per backend (`sqlite::name`, `postgres::name`).

// Shared helpers are not `#[test]` functions, which clippy's allow-*-in-tests settings do not
// cover; failing loudly is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use support::backend::{Keep, Kind, fresh_pg, open_store};
use support::workload::{self, History};
use tessera_event_log::{Backend, EventLog, ExpectedVersion, LogConfig, StreamWrite};
use tessera_event_schemas::events::{
    ApiKeyRevokedV1, AuditRecordedV1, SigningAlg, TenantStatus, TenantSuspendedV1,
};
use tessera_event_schemas::{Event, Timestamp, streams};
use tessera_projections::store::SCHEMA_VERSION;
use tessera_projections::{
    AuditFilter, Checkpoints, Projection, ProjectionError, ProjectionRuntime, ReadError, ReadStore,
    SigningKeyStatus, TenantFilter, WaitTimeout, rebuild, rebuild_in_batches,
};
use uuid::Uuid;

/// Generous: a deadline for conditions that normally hold within milliseconds.
const DEADLINE: Duration = Duration::from_secs(60);

struct Setup {
    kind: Kind,
    log: Arc<dyn EventLog>,
    store: ReadStore,
    /// Where `store` lives: the SQLite file or the PostgreSQL URL.
    location: Location,
    _keep: Keep,
}

#[derive(Clone, Debug)]
enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Setup {
    async fn new(kind: Kind) -> Self {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let log = tessera_event_log::open(LogConfig::new(Backend::Sqlite {
                    path: dir.path().join("log.db"),
                }))
                .await
                .unwrap();
                let path = dir.path().join("readmodels.db");
                let store = ReadStore::open_sqlite(&path).await.unwrap();
                Self {
                    kind,
                    log,
                    store,
                    location: Location::Sqlite(path),
                    _keep: Keep::Dir(dir),
                }
            }
            Kind::Postgres => {
                let db = fresh_pg().await;
                let log = tessera_event_log::open(LogConfig::new(Backend::Postgres {
                    url: db.url.clone(),
                }))
                .await
                .unwrap();
                let store = ReadStore::open_postgres(&db.url).await.unwrap();
                Self {
                    kind,
                    log,
                    store,
                    location: Location::Postgres(db.url.clone()),
                    _keep: Keep::Db(db),
                }
            }
        }
    }

    /// Another, empty read store of the same kind (a rebuild target).
    async fn other_store(&self) -> (ReadStore, Keep) {
        open_store(self.kind).await
    }

    /// Closes the read store and opens it again, as a restarted server would.
    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = match &self.location {
            Location::Sqlite(path) => ReadStore::open_sqlite(path).await.unwrap(),
            Location::Postgres(url) => ReadStore::open_postgres(url).await.unwrap(),
        };
    }

    /// Runs `statements` on the read store's database behind the store's back (the store
    /// should be closed), returning whether each succeeded.
    async fn raw_sql(&self, statements: &[&str]) -> Vec<bool> {
        let url = match &self.location {
            Location::Sqlite(path) => format!("sqlite://{}", path.display()),
            Location::Postgres(url) => url.clone(),
        };
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let mut ok = Vec::new();
        for statement in statements {
            let sql = sqlx::AssertSqlSafe(statement.to_string());
            ok.push(sqlx::query(sql).execute(&pool).await.is_ok());
        }
        pool.close().await;
        ok
    }

    async fn start(&self) -> ProjectionRuntime {
        ProjectionRuntime::start(self.log.clone(), self.store.clone())
            .await
            .unwrap()
    }

    /// The names of the read store's `rm_` indexes (key indexes included), sorted.
    async fn index_names(&self) -> Vec<String> {
        use sqlx::Row;
        let (url, sql) = match &self.location {
            Location::Sqlite(path) => (
                format!("sqlite://{}", path.display()),
                "SELECT name FROM sqlite_master WHERE type = 'index'",
            ),
            Location::Postgres(url) => (
                url.clone(),
                "SELECT indexname::text AS name FROM pg_indexes \
                 WHERE schemaname = current_schema()",
            ),
        };
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        let mut names: Vec<String> = rows.iter().map(|row| row.get("name")).collect();
        names.retain(|name| name.starts_with("rm_"));
        names.sort();
        names
    }

    /// Rebuilds into a fresh store and asserts it equals the live one.
    async fn assert_live_equals_rebuild(&self) {
        let (fresh, _keep) = self.other_store().await;
        let stats = rebuild(self.log.as_ref(), &fresh).await.unwrap();
        assert_eq!(stats.events, self.log.head_position().await.unwrap());
        let live = self.store.snapshot().await.unwrap();
        let rebuilt = fresh.snapshot().await.unwrap();
        assert!(
            live == rebuilt,
            "live and rebuilt read models differ:\nlive:    {live}\nrebuilt: {rebuilt}"
        );
    }
}

async fn append_one(
    log: &Arc<dyn EventLog>,
    history: &mut History,
    stream_id: String,
    tenant: Uuid,
    event: &tessera_event_schemas::Event,
) -> u64 {
    let proposed = history.propose(tenant, event);
    log.append(vec![StreamWrite {
        stream_id,
        expected: ExpectedVersion::Any,
        events: vec![proposed],
    }])
    .await
    .unwrap()
    .last_position
}

// ---------------------------------------------------------------------------------------------

async fn appended_events_are_projected_and_queryable(kind: Kind) {
    let setup = Setup::new(kind).await;
    let runtime = setup.start().await;
    let mut history = History::new();
    history.rounds(0..3, 0..workload::ROUNDS, 10);
    let head = history.append_to(&setup.log).await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    assert_eq!(runtime.projected_position(), head);

    let store = &setup.store;
    // Tenant 1: activated, rotated twice, suspended, reactivated? (1 % 8 == 1: yes).
    let t1 = store.tenant(workload::tenant_id(1)).await.unwrap().unwrap();
    assert_eq!(t1.slug, "tenant-000001");
    assert_eq!(t1.name, "Tenant 1 GmbH");
    assert_eq!(t1.status, TenantStatus::Active);
    assert_eq!(t1.erp_customer_id.as_deref(), Some("ERP-1"));
    assert!(!t1.suspended);
    assert_eq!(t1.active_kid, "k-1-2");
    assert_eq!(t1.domains.len(), 2);
    assert_eq!(t1.config, serde_json::json!({"theme": "light", "seats": 2}));
    assert_eq!(t1.settings.session_timeout_minutes, 45);
    assert!(t1.version > 5);
    assert!(t1.updated_at > t1.created_at);
    // Tenant 2: scheduled cancellation, then frozen, then archived (2 % 12 == 2).
    let t2 = store
        .tenant_by_slug("tenant-000002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t2.id, workload::tenant_id(2));
    assert_eq!(t2.status, TenantStatus::Archived);
    assert_eq!(t2.cancellation_reason.as_deref(), Some("budget"));
    assert_eq!(t2.pending_cancellation, None);
    assert_eq!(store.tenant_by_slug("nope").await.unwrap(), None);
    assert_eq!(store.tenant(Uuid::from_u128(9)).await.unwrap(), None);

    let keys = store.signing_keys(workload::tenant_id(1)).await.unwrap();
    let summary: Vec<(&str, SigningKeyStatus)> =
        keys.iter().map(|k| (k.kid.as_str(), k.status)).collect();
    assert_eq!(
        summary,
        vec![
            ("k-1-0", SigningKeyStatus::Retired),
            ("k-1-1", SigningKeyStatus::Published),
            ("k-1-2", SigningKeyStatus::Active),
        ]
    );
    assert!(keys[0].retired_at.is_some());
    assert_eq!(keys[2].alg, SigningAlg::ES256);

    // API keys: tenant 0's first key is revoked (0 % 3 == 0), found by hash in any tenant,
    // and by id only within its own tenant.
    let by_hash = store
        .api_key_by_hash(&workload::secret_hash(0, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_hash.key_id, workload::api_key_id(0, 0));
    assert_eq!(by_hash.tenant_id, workload::tenant_id(0));
    assert!(by_hash.revoked_at.is_some());
    assert_eq!(by_hash.scopes, vec!["tenants:read", "users:write"]);
    let second = store
        .api_key(workload::tenant_id(0), workload::api_key_id(0, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.revoked_at, None);
    assert_eq!(second.product.as_deref(), Some("billing"));
    // Usage (see `workload::usage_round`): key 0 was used before and after its revocation;
    // key 1's late record of an older window added a use but did not move `last_used_at`.
    assert_eq!(by_hash.use_count, 3 + 2);
    assert_eq!(second.use_count, 10 + 1);
    let last_used = second.last_used_at.unwrap();
    assert!(last_used > second.created_at.plus_seconds(600));
    assert!(by_hash.last_used_at.unwrap() < last_used);
    assert_eq!(
        store
            .api_key(workload::tenant_id(1), workload::api_key_id(0, 1))
            .await
            .unwrap(),
        None
    );
    let listed = store
        .list_api_keys(workload::tenant_id(0), 10, None)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(listed.next_cursor, None);

    runtime.shutdown().await;
}

async fn api_key_usage_accumulates_and_a_rebuild_agrees(kind: Kind) {
    let setup = Setup::new(kind).await;
    let runtime = setup.start().await;
    let mut history = History::new();
    // Tenant 0 with two keys; only the API key streams matter here.
    history.rounds(0..1, 0..3, 1);
    history.rounds(0..1, 6..7, 1);
    history.append_to(&setup.log).await;
    let t = workload::tenant_id(0);
    let (a, b) = (workload::api_key_id(0, 0), workload::api_key_id(0, 1));
    let at = Timestamp::from_micros(workload::EPOCH_MICROS + 3_600_000_000);
    let earlier = workload::used(3, at, 60);
    let later = workload::used(4, at.plus_seconds(300), 60);
    // Key a records its windows in order, key b in reverse: both end at the later window.
    for (key, event) in [(a, &earlier), (a, &later), (b, &later), (b, &earlier)] {
        let position =
            append_one(&setup.log, &mut history, streams::api_key(t, key), t, event).await;
        // Separate live batches, so the second record meets a stored row.
        runtime.wait_for(position, DEADLINE).await.unwrap();
    }
    let later_used = at.plus_seconds(360);
    for key in [a, b] {
        let view = setup.store.api_key(t, key).await.unwrap().unwrap();
        assert_eq!(view.use_count, 7, "{key}");
        assert_eq!(view.last_used_at, Some(later_used), "{key}");
        assert_eq!(view.revoked_at, None);
    }

    // Usage after revocation still counts.
    let revoke = Event::ApiKeyRevoked(ApiKeyRevokedV1 { reason: None });
    append_one(&setup.log, &mut history, streams::api_key(t, a), t, &revoke).await;
    let last = workload::used(1, at.plus_seconds(900), 5);
    let head = append_one(&setup.log, &mut history, streams::api_key(t, a), t, &last).await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    let revoked = setup
        .store
        .api_key_by_hash(&workload::secret_hash(0, 0))
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(revoked.use_count, 8);
    assert_eq!(revoked.last_used_at, Some(at.plus_seconds(905)));
    let listed = setup.store.list_api_keys(t, 10, None).await.unwrap();
    let counts: Vec<(Uuid, u64)> = listed
        .items
        .iter()
        .map(|k| (k.key_id, k.use_count))
        .collect();
    assert_eq!(counts, vec![(a, 8), (b, 7)]);
    runtime.shutdown().await;

    // The snapshot (what `check-read-models` compares) carries the usage columns, and a
    // rebuild, which folds all of it in one batch, gives the same snapshot.
    let snapshot = setup.store.snapshot().await.unwrap();
    let rows = snapshot["rm_api_keys"].as_array().unwrap();
    assert!(rows.iter().any(
        |row| row["use_count"] == 8 && row["last_used_at"] == at.plus_seconds(905).as_micros()
    ));
    setup.assert_live_equals_rebuild().await;
    rebuild(setup.log.as_ref(), &setup.store).await.unwrap();
    assert_eq!(setup.store.snapshot().await.unwrap(), snapshot);
}

async fn read_models_of_another_schema_version_are_dropped_and_rebuilt(kind: Kind) {
    let mut setup = Setup::new(kind).await;
    assert_eq!(
        setup.store.schema_version().await.unwrap(),
        Some(SCHEMA_VERSION)
    );
    let mut history = History::new();
    history.rounds(0..6, 0..workload::ROUNDS, 6);
    let head = history.append_to(&setup.log).await;
    let at_head = Checkpoints::default().advanced_to(head);
    let runtime = setup.start().await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    let projected = setup.store.snapshot().await.unwrap();

    // The Kafka publisher's checkpoint is not a read model: nothing below may reset it, or
    // a rebuild would republish the whole log.
    assert_eq!(
        setup.store.publisher_checkpoint("kafka:t").await.unwrap(),
        0
    );
    setup
        .store
        .set_publisher_checkpoint("kafka:t", 17)
        .await
        .unwrap();
    setup
        .store
        .set_publisher_checkpoint("kafka:t", head)
        .await
        .unwrap();

    // Same version: reopening keeps everything.
    setup.reopen().await;
    assert_eq!(setup.store.checkpoints().await.unwrap(), at_head);
    assert_eq!(setup.store.snapshot().await.unwrap(), projected);
    // A rebuild in place (`reset`) keeps the version too.
    rebuild(setup.log.as_ref(), &setup.store).await.unwrap();
    setup.reopen().await;
    assert_eq!(setup.store.checkpoints().await.unwrap(), at_head);

    // An older version stored: every read model is dropped, checkpoints included.
    setup.store.close().await;
    let ok = setup.raw_sql(&["UPDATE rm_schema SET version = 1"]).await;
    assert_eq!(ok, vec![true]);
    setup.reopen().await;
    assert_eq!(
        setup.store.schema_version().await.unwrap(),
        Some(SCHEMA_VERSION)
    );
    assert_eq!(
        setup.store.checkpoints().await.unwrap(),
        Checkpoints::default()
    );
    assert_eq!(
        setup.store.tenant(workload::tenant_id(1)).await.unwrap(),
        None
    );
    let emptied = setup.store.snapshot().await.unwrap();
    assert_eq!(emptied["rm_api_keys"], serde_json::json!([]));
    assert_eq!(emptied["rm_checkpoints"], serde_json::json!({}));
    assert_eq!(
        setup.store.publisher_checkpoint("kafka:t").await.unwrap(),
        head
    );

    // The projector refolds the whole log from position 0.
    let runtime = setup.start().await;
    assert_eq!(runtime.projected_position(), 0);
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    assert_eq!(setup.store.snapshot().await.unwrap(), projected);

    // A store from before schema versions: no version table, `rm_api_keys` without the usage
    // columns (writing usage into it would fail), and a table a former build left behind.
    setup.store.close().await;
    let ok = setup
        .raw_sql(&[
            "DROP TABLE rm_schema",
            "DROP TABLE rm_api_keys",
            "CREATE TABLE rm_api_keys (key_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, \
             secret_hash TEXT NOT NULL, name TEXT NOT NULL, prefix TEXT NOT NULL, \
             scopes TEXT NOT NULL, product TEXT, created_by TEXT NOT NULL, \
             created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT)",
            "CREATE TABLE rm_legacy (id BIGINT)",
        ])
        .await;
    assert_eq!(ok, vec![true; 4]);
    setup.reopen().await;
    assert_eq!(
        setup.store.schema_version().await.unwrap(),
        Some(SCHEMA_VERSION)
    );
    assert_eq!(
        setup.store.checkpoints().await.unwrap(),
        Checkpoints::default()
    );
    assert_eq!(
        setup
            .store
            .api_key_by_hash(&workload::secret_hash(0, 0))
            .await
            .unwrap(),
        None
    );
    setup.store.close().await;
    assert_eq!(
        setup.raw_sql(&["SELECT id FROM rm_legacy"]).await,
        vec![false]
    );
    setup.reopen().await;

    let runtime = setup.start().await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    let key = setup
        .store
        .api_key_by_hash(&workload::secret_hash(0, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.use_count, 3 + 2);
    assert_eq!(setup.store.snapshot().await.unwrap(), projected);
    setup.assert_live_equals_rebuild().await;
    assert_eq!(
        setup.store.publisher_checkpoint("kafka:t").await.unwrap(),
        head
    );
}

async fn wait_for_returns_once_projected_and_times_out_otherwise(kind: Kind) {
    let setup = Setup::new(kind).await;
    let runtime = setup.start().await;
    // Nothing to wait for at position 0.
    runtime.wait_for(0, Duration::from_millis(1)).await.unwrap();
    // Nothing has been appended, so position 1 cannot be reached.
    let timeout = runtime
        .wait_for(1, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(
        timeout,
        WaitTimeout {
            wanted: 1,
            projected: 0
        }
    );

    let mut history = History::new();
    let t = workload::tenant_id(0);
    let at = history.now();
    let position = append_one(
        &setup.log,
        &mut history,
        streams::tenant(t),
        t,
        &workload::created(0, TenantStatus::Trial, at),
    )
    .await;
    runtime.wait_for(position, DEADLINE).await.unwrap();
    // Read-your-writes: once wait_for returns, the query sees the append.
    assert!(setup.store.tenant(t).await.unwrap().is_some());
    // Already projected: returns at once even with no time at all.
    runtime.wait_for(position, Duration::ZERO).await.unwrap();
    runtime.shutdown().await;
}

async fn restart_from_checkpoint_neither_skips_nor_double_applies(kind: Kind) {
    let setup = Setup::new(kind).await;
    let mut history = History::new();
    history.rounds(0..200, 0..workload::ROUNDS, 50);
    let head = history.append_to(&setup.log).await;

    // Stop while catching up: somewhere in the middle, or at the end if it was quick.
    let runtime = setup.start().await;
    runtime.wait_for(head / 3, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    let stopped_at = setup.store.checkpoints().await.unwrap();
    assert!(stopped_at.min() >= head / 3);

    // More history while no projector runs, then a restart from the stored checkpoint.
    history.rounds(200..260, 0..workload::ROUNDS, 50);
    let head = history.append_to(&setup.log).await;
    let runtime = setup.start().await;
    assert_eq!(runtime.projected_position(), stopped_at.min());
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;

    let checkpoints = setup.store.checkpoints().await.unwrap();
    for projection in Projection::ALL {
        assert_eq!(checkpoints.get(projection), head);
    }
    setup.assert_live_equals_rebuild().await;
}

async fn one_projection_is_rebuilt_alone_from_its_own_checkpoint(kind: Kind) {
    let setup = Setup::new(kind).await;
    let mut history = History::new();
    history.rounds(0..40, 0..workload::ROUNDS, 20);
    let head = history.append_to(&setup.log).await;
    let runtime = setup.start().await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;

    setup
        .store
        .reset_projection(Projection::ApiKeys)
        .await
        .unwrap();
    let checkpoints = setup.store.checkpoints().await.unwrap();
    assert_eq!(checkpoints.get(Projection::ApiKeys), 0);
    assert_eq!(
        setup
            .store
            .api_key_by_hash(&workload::secret_hash(0, 0))
            .await
            .unwrap(),
        None
    );

    let runtime = setup.start().await;
    assert_eq!(runtime.projected_position(), 0);
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    assert!(
        setup
            .store
            .api_key_by_hash(&workload::secret_hash(0, 0))
            .await
            .unwrap()
            .is_some()
    );
    setup.assert_live_equals_rebuild().await;

    // The audit trail alone: its tenant rows (slugs) come from the store this time, since the
    // tenant projection has nothing left to fold.
    setup
        .store
        .reset_projection(Projection::Audit)
        .await
        .unwrap();
    let checkpoints = setup.store.checkpoints().await.unwrap();
    assert_eq!(checkpoints.get(Projection::Audit), 0);
    let runtime = setup.start().await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    setup.assert_live_equals_rebuild().await;
}

async fn tenants_page_by_cursor_and_filter_by_status(kind: Kind) {
    let setup = Setup::new(kind).await;
    let mut history = History::new();
    // 12 tenants: 0, 5, 10 are demos; after round 4 the others are active.
    history.rounds(0..12, 0..5, 12);
    let mut head = history.append_to(&setup.log).await;
    for i in [3, 4] {
        let t = workload::tenant_id(i);
        let event =
            tessera_event_schemas::Event::TenantSuspended(TenantSuspendedV1 { reason: None });
        head = append_one(&setup.log, &mut history, streams::tenant(t), t, &event).await;
    }
    let runtime = setup.start().await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    let store = &setup.store;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_tenants(TenantFilter::default(), 5, cursor.as_deref())
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|t| t.slug.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..12).map(|i| format!("tenant-{i:06}")).collect();
    assert_eq!(seen, expected, "creation order, no gaps, no repeats");

    let demos = store
        .list_tenants(
            TenantFilter {
                status: Some(TenantStatus::Demo),
                suspended: None,
            },
            2,
            None,
        )
        .await
        .unwrap();
    assert_eq!(demos.items.len(), 2);
    let rest = store
        .list_tenants(
            TenantFilter {
                status: Some(TenantStatus::Demo),
                suspended: None,
            },
            2,
            demos.next_cursor.as_deref(),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);
    assert!(
        demos
            .items
            .iter()
            .chain(&rest.items)
            .all(|t| t.status == TenantStatus::Demo)
    );

    let suspended_active = store
        .list_tenants(
            TenantFilter {
                status: Some(TenantStatus::Active),
                suspended: Some(true),
            },
            100,
            None,
        )
        .await
        .unwrap();
    let slugs: Vec<&str> = suspended_active
        .items
        .iter()
        .map(|t| t.slug.as_str())
        .collect();
    assert_eq!(slugs, vec!["tenant-000003", "tenant-000004"]);
    let not_suspended = store
        .list_tenants(
            TenantFilter {
                status: None,
                suspended: Some(false),
            },
            100,
            None,
        )
        .await
        .unwrap();
    assert_eq!(not_suspended.items.len(), 10);

    assert!(matches!(
        store
            .list_tenants(TenantFilter::default(), 5, Some("not-a-cursor"))
            .await,
        Err(ReadError::InvalidCursor)
    ));
    runtime.shutdown().await;
}

async fn api_keys_page_within_their_tenant(kind: Kind) {
    let setup = Setup::new(kind).await;
    let mut history = History::new();
    history.rounds(0..2, 0..workload::ROUNDS, 2);
    let head = history.append_to(&setup.log).await;
    let runtime = setup.start().await;
    runtime.wait_for(head, DEADLINE).await.unwrap();

    let first = setup
        .store
        .list_api_keys(workload::tenant_id(1), 1, None)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].key_id, workload::api_key_id(1, 0));
    let second = setup
        .store
        .list_api_keys(workload::tenant_id(1), 1, first.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].key_id, workload::api_key_id(1, 1));
    assert_eq!(second.next_cursor, None);
    let none = setup
        .store
        .list_api_keys(Uuid::from_u128(77), 10, None)
        .await
        .unwrap();
    assert!(none.items.is_empty());
    runtime.shutdown().await;
}

async fn rebuild_reproduces_what_the_live_projector_wrote(kind: Kind) {
    let setup = Setup::new(kind).await;
    let runtime = setup.start().await;
    let mut history = History::new();
    // Appended while the projector runs, in many small appends, so live batches differ from
    // the rebuild's.
    history.rounds(0..160, 0..workload::ROUNDS, 7);
    let head = history.append_to(&setup.log).await;
    // Enough that a rebuild's batch reaches the size from which the SQLite writer folds on a
    // second thread (2,000 events), while the live projector's small batches do not.
    assert!(head > 2_000, "{head} events");
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    setup.assert_live_equals_rebuild().await;

    // A rebuild in place gives the same result too, whatever its batch size: rows carried
    // from batch to batch (through its row cache) fold exactly like rows folded in one go.
    // It leaves the same indexes as opening a store creates (it builds the lookup indexes
    // last).
    let before = setup.store.snapshot().await.unwrap();
    let indexes = setup.index_names().await;
    assert!(
        indexes.contains(&"rm_audit_by_tenant".to_owned()),
        "{indexes:?}"
    );
    // `head`: the log ends on a full batch, and what the rebuild held back is written after.
    let exact = usize::try_from(head).unwrap();
    for batch_size in [97, 1000, exact, 1_000_000] {
        let stats = rebuild_in_batches(setup.log.as_ref(), &setup.store, batch_size)
            .await
            .unwrap();
        assert_eq!(stats.events, head);
        assert_eq!(
            setup.store.snapshot().await.unwrap(),
            before,
            "batch size {batch_size}"
        );
        assert_eq!(setup.index_names().await, indexes);
    }
}

async fn an_undecodable_event_stops_projection_just_before_it(kind: Kind) {
    let setup = Setup::new(kind).await;
    let mut history = History::new();
    history.rounds(0..2, 0..3, 2);
    let good = history.append_to(&setup.log).await;
    let t = workload::tenant_id(0);
    let mut alien = history.propose(
        t,
        &tessera_event_schemas::Event::ApiKeyRevoked(ApiKeyRevokedV1 { reason: None }),
    );
    alien.event_type = "tenant.teleported";
    let bad = setup
        .log
        .append(vec![StreamWrite {
            stream_id: streams::tenant(t),
            expected: ExpectedVersion::Any,
            events: vec![alien],
        }])
        .await
        .unwrap()
        .last_position;
    let at = history.now();
    let after = append_one(
        &setup.log,
        &mut history,
        streams::tenant(workload::tenant_id(9)),
        workload::tenant_id(9),
        &workload::created(9, TenantStatus::Trial, at),
    )
    .await;
    assert_eq!(bad, good + 1);

    let runtime = setup.start().await;
    runtime.wait_for(good, DEADLINE).await.unwrap();
    let stuck = runtime.wait_for(after, Duration::from_millis(300)).await;
    assert_eq!(
        stuck,
        Err(WaitTimeout {
            wanted: after,
            projected: good
        })
    );
    assert_eq!(setup.store.checkpoints().await.unwrap().min(), good);
    assert_eq!(
        setup.store.tenant(workload::tenant_id(9)).await.unwrap(),
        None
    );
    runtime.shutdown().await;

    // A rebuild stops there too, having written everything before it, also the table rows
    // it held back from earlier batches.
    let (fresh, _keep) = setup.other_store().await;
    let error = rebuild(setup.log.as_ref(), &fresh).await.unwrap_err();
    assert!(
        matches!(error, ProjectionError::Undecodable { position, .. } if position == bad),
        "{error}"
    );
    assert_eq!(fresh.checkpoints().await.unwrap().min(), good);
    let live = setup.store.snapshot().await.unwrap();
    assert_eq!(fresh.snapshot().await.unwrap(), live);
    let error = rebuild_in_batches(setup.log.as_ref(), &fresh, 4)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProjectionError::Undecodable { .. }),
        "{error}"
    );
    assert_eq!(fresh.snapshot().await.unwrap(), live);
    // Also in place: the store keeps every index after a rebuild that stopped early.
    let indexes = setup.index_names().await;
    rebuild(setup.log.as_ref(), &setup.store).await.unwrap_err();
    assert_eq!(setup.store.snapshot().await.unwrap(), live);
    assert_eq!(setup.index_names().await, indexes);
}

async fn events_from_before_a_tenant_exists_change_nothing(kind: Kind) {
    let setup = Setup::new(kind).await;
    let mut history = History::new();
    let t = workload::tenant_id(5);
    let event = tessera_event_schemas::Event::TenantSuspended(TenantSuspendedV1 { reason: None });
    let position = append_one(&setup.log, &mut history, streams::tenant(t), t, &event).await;
    let runtime = setup.start().await;
    runtime.wait_for(position, DEADLINE).await.unwrap();
    assert_eq!(setup.store.tenant(t).await.unwrap(), None);
    let snapshot = setup.store.snapshot().await.unwrap();
    assert_eq!(snapshot["rm_tenants"], serde_json::json!([]));
    runtime.shutdown().await;
}

/// Every page of the audit trail for `filter`, walked `limit` at a time.
async fn audit_pages(
    store: &ReadStore,
    filter: &AuditFilter,
    limit: u32,
) -> Vec<tessera_projections::AuditView> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.audit(filter, limit, cursor.as_deref()).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all
}

async fn audit_has_one_row_per_event_newest_first_and_filters(kind: Kind) {
    let setup = Setup::new(kind).await;
    let runtime = setup.start().await;
    let mut history = History::new();
    history.rounds(0..4, 0..workload::ROUNDS, 3);
    let head = history.append_to(&setup.log).await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    let checkpoints = setup.store.checkpoints().await.unwrap();
    assert_eq!(checkpoints.get(Projection::Audit), head);

    // Every event exactly once, newest first, whatever the page size.
    for limit in [1, 7, 500] {
        let all = audit_pages(&setup.store, &AuditFilter::default(), limit).await;
        let positions: Vec<u64> = all.iter().map(|row| row.position).collect();
        assert_eq!(
            positions,
            (1..=head).rev().collect::<Vec<_>>(),
            "limit {limit}"
        );
    }
    let all = audit_pages(&setup.store, &AuditFilter::default(), 500).await;

    // Each filter narrows to exactly the matching rows, still newest first.
    let tenant = workload::tenant_id(1);
    let key = workload::api_key_id(1, 1).to_string();
    let middle = all[all.len() / 2].recorded_at;
    let late = all[all.len() / 4].recorded_at;
    type Matches = Box<dyn Fn(&tessera_projections::AuditView) -> bool>;
    let cases: Vec<(AuditFilter, Matches)> = vec![
        (
            AuditFilter {
                tenant_id: Some(tenant),
                ..AuditFilter::default()
            },
            Box::new(move |row| row.tenant_id == tenant),
        ),
        (
            AuditFilter {
                action: Some("tenant.created".into()),
                ..AuditFilter::default()
            },
            Box::new(|row| row.action == "tenant.created"),
        ),
        (
            AuditFilter {
                target_id: Some(key.clone()),
                ..AuditFilter::default()
            },
            Box::new({
                let key = key.clone();
                move |row| row.target_id.as_deref() == Some(key.as_str())
            }),
        ),
        (
            AuditFilter {
                product: Some("billing".into()),
                ..AuditFilter::default()
            },
            Box::new(|row| row.product.as_deref() == Some("billing")),
        ),
        (
            AuditFilter {
                actor_id: Some("tessera".into()),
                tenant_id: Some(tenant),
                ..AuditFilter::default()
            },
            Box::new(move |row| row.actor_id == "tessera" && row.tenant_id == tenant),
        ),
        (
            AuditFilter {
                since: Some(middle),
                until: Some(late),
                ..AuditFilter::default()
            },
            Box::new(move |row| row.recorded_at >= middle && row.recorded_at < late),
        ),
    ];
    for (filter, matches) in cases {
        let expected: Vec<u64> = all
            .iter()
            .filter(|row| matches(row))
            .map(|row| row.position)
            .collect();
        assert!(!expected.is_empty(), "{filter:?}");
        assert!(expected.len() < all.len(), "{filter:?}");
        let got: Vec<u64> = audit_pages(&setup.store, &filter, 3)
            .await
            .iter()
            .map(|row| row.position)
            .collect();
        assert_eq!(got, expected, "{filter:?}");
    }

    // Targets: a tenant event names the tenant by slug, an API key event the key.
    let created = all
        .iter()
        .find(|row| row.action == "tenant.created" && row.tenant_id == tenant)
        .unwrap();
    assert_eq!(created.target_type.as_deref(), Some("tenant"));
    assert_eq!(created.target_id, Some(tenant.to_string()));
    let slug = created.target_name.clone().unwrap();
    assert!(
        all.iter()
            .filter(|row| row.tenant_id == tenant && row.action == "tenant.updated")
            .all(|row| row.target_name.as_deref() == Some(slug.as_str()))
    );
    let issued = all
        .iter()
        .find(|row| row.action == "api_key.issued" && row.target_id == Some(key.clone()))
        .unwrap();
    assert_eq!(issued.target_type.as_deref(), Some("api_key"));
    assert_eq!(issued.actor_kind, "system");
    assert_eq!(issued.correlation_id, "corr");
    assert!(issued.summary.get("name").is_some());

    // No secret or key material in any summary.
    let dump = serde_json::to_string(&setup.store.snapshot().await.unwrap()["rm_audit"]).unwrap();
    for needle in ["secret", "sealed", "token_hash", "public_jwk"] {
        assert!(!dump.contains(needle), "{needle} in the audit trail");
    }

    assert!(matches!(
        setup
            .store
            .audit(&AuditFilter::default(), 5, Some("not-a-cursor"))
            .await,
        Err(ReadError::InvalidCursor)
    ));
    runtime.shutdown().await;
    setup.assert_live_equals_rebuild().await;
}

async fn recorded_audit_entries_carry_the_products_fields(kind: Kind) {
    let setup = Setup::new(kind).await;
    let runtime = setup.start().await;
    let mut history = History::new();
    history.rounds(0..1, 0..1, 1);
    history.append_to(&setup.log).await;
    let tenant = workload::tenant_id(0);
    let recorded = Event::AuditRecorded(AuditRecordedV1 {
        action: "invoice.paid".into(),
        project_id: Some(Uuid::from_u128(9)),
        actor_id: Some("user-7".into()),
        actor_name: Some("Ada".into()),
        actor_type: Some("user".into()),
        target_id: Some("inv-1".into()),
        target_type: Some("invoice".into()),
        target_name: None,
        product: Some("billing".into()),
        metadata_json: r#"{"amount":12,"client_secret":"x","nested":{"token_hash":"y"}}"#.into(),
    });
    let position = append_one(
        &setup.log,
        &mut history,
        streams::audit(tenant),
        tenant,
        &recorded,
    )
    .await;
    runtime.wait_for(position, DEADLINE).await.unwrap();
    let row = setup.store.audit_entry(position).await.unwrap().unwrap();
    assert_eq!(row.event_type, "audit.recorded");
    assert_eq!(row.action, "invoice.paid");
    assert_eq!(row.tenant_id, tenant);
    assert_eq!(
        (
            row.actor_kind.as_str(),
            row.actor_id.as_str(),
            row.actor_name.as_deref()
        ),
        ("user", "user-7", Some("Ada"))
    );
    assert_eq!(row.target_type.as_deref(), Some("invoice"));
    assert_eq!(row.target_id.as_deref(), Some("inv-1"));
    assert_eq!(row.product.as_deref(), Some("billing"));
    assert_eq!(row.project_id, Some(Uuid::from_u128(9)));
    // The metadata is in the summary, with secret-like fields dropped there too, beside who
    // appended the entry (here the system).
    let (metadata, recorder) = row.clone().take_metadata_and_recorder();
    assert_eq!(metadata, serde_json::json!({"amount": 12, "nested": {}}));
    assert_eq!(
        (recorder.kind.as_str(), recorder.id.as_str()),
        ("system", "tessera")
    );
    let by_action = setup
        .store
        .audit(
            &AuditFilter {
                action: Some("invoice.paid".into()),
                ..AuditFilter::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(by_action.items, vec![row]);
    assert_eq!(setup.store.audit_entry(position + 1).await.unwrap(), None);
    runtime.shutdown().await;
    setup.assert_live_equals_rebuild().await;
}

/// The read store's snapshot does not depend on the backend: the same log projected into
/// SQLite and PostgreSQL dumps identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_identical_across_backends() {
    let sqlite = Setup::new(Kind::Sqlite).await;
    let postgres = Setup::new(Kind::Postgres).await;
    for setup in [&sqlite, &postgres] {
        let mut history = History::new();
        // Over 2,000 events: the SQLite rebuild folds on a second thread (see above).
        history.rounds(0..160, 0..workload::ROUNDS, 10);
        let head = history.append_to(&setup.log).await;
        assert!(head > 2_000, "{head} events");
        rebuild(setup.log.as_ref(), &setup.store).await.unwrap();
        assert_eq!(setup.store.checkpoints().await.unwrap().min(), head);
    }
    assert_eq!(
        sqlite.store.snapshot().await.unwrap(),
        postgres.store.snapshot().await.unwrap()
    );
}

/// A SQLite rebuild writes a scratch file beside the store and swaps it in whole: every clone
/// of the store sees the new read models, the file survives reopening, and no scratch file is
/// left behind. While another process has the store open, the rebuild refuses to swap (that
/// process would go on reading the old file) and the store keeps its read models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_rebuild_swaps_in_a_complete_file() {
    let mut setup = Setup::new(Kind::Sqlite).await;
    let Location::Sqlite(path) = setup.location.clone() else {
        unreachable!()
    };
    let scratch = PathBuf::from(format!("{}.rebuild", path.display()));
    let mut history = History::new();
    history.rounds(0..40, 0..workload::ROUNDS, 10);
    let head = history.append_to(&setup.log).await;
    let runtime = setup.start().await;
    runtime.wait_for(head, DEADLINE).await.unwrap();
    runtime.shutdown().await;
    let projected = setup.store.snapshot().await.unwrap();
    let indexes = setup.index_names().await;
    setup
        .store
        .set_publisher_checkpoint("kafka:t", head)
        .await
        .unwrap();

    // Another process, as far as SQLite can tell: connections of their own on the file.
    let elsewhere = ReadStore::open_sqlite(&path).await.unwrap();
    let error = rebuild(setup.log.as_ref(), &setup.store).await.unwrap_err();
    assert!(
        error.to_string().contains("open in another process"),
        "{error}"
    );
    assert!(!scratch.exists());
    assert_eq!(setup.store.snapshot().await.unwrap(), projected);
    elsewhere.close().await;
    drop(elsewhere);

    let reader = setup.store.clone();
    // Rows the rebuild must replace, not keep: the live store says otherwise.
    let changed = setup
        .raw_sql(&["UPDATE rm_tenants SET status = 'archived'"])
        .await;
    assert_eq!(changed, vec![true]);
    assert_ne!(reader.snapshot().await.unwrap(), projected);
    let stats = rebuild(setup.log.as_ref(), &setup.store).await.unwrap();
    assert_eq!(stats.events, head);
    assert_eq!(reader.snapshot().await.unwrap(), projected);
    assert_eq!(
        reader.checkpoints().await.unwrap(),
        Checkpoints::default().advanced_to(head)
    );
    assert_eq!(reader.publisher_checkpoint("kafka:t").await.unwrap(), head);
    assert!(!scratch.exists());
    setup.reopen().await;
    assert_eq!(setup.store.snapshot().await.unwrap(), projected);
    assert_eq!(setup.index_names().await, indexes);
}

macro_rules! backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Postgres).await;
                }
            )*
        }
    };
}

backends!(
    appended_events_are_projected_and_queryable,
    api_key_usage_accumulates_and_a_rebuild_agrees,
    read_models_of_another_schema_version_are_dropped_and_rebuilt,
    wait_for_returns_once_projected_and_times_out_otherwise,
    restart_from_checkpoint_neither_skips_nor_double_applies,
    one_projection_is_rebuilt_alone_from_its_own_checkpoint,
    tenants_page_by_cursor_and_filter_by_status,
    api_keys_page_within_their_tenant,
    rebuild_reproduces_what_the_live_projector_wrote,
    an_undecodable_event_stops_projection_just_before_it,
    events_from_before_a_tenant_exists_change_nothing,
    audit_has_one_row_per_event_newest_first_and_filters,
    recorded_audit_entries_carry_the_products_fields,
);
