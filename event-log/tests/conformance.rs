//! The event log's conformance suite: every case runs against every backend, embedded SQLite
//! (in a temp dir), PostgreSQL (a throwaway cluster from `tessera-test-support`) and the
//! in-memory log that other crates' tests use, because callers must not be able to tell them
//! apart.
//!
//! Cases are plain async functions taking a [`Kind`]; the `conformance!` macro at the bottom
//! turns each into one test per backend (`sqlite::name`, `postgres::name`, `memory::name`).
//!
//! With the `kurrentdb` feature, every case also runs against a KurrentDB server
//! (`kurrentdb::name`), each on a fresh stream, at `TESSERA_TEST_KURRENTDB_URL` (for example
//! `kurrentdb://localhost:2113?tls=false`; `docker compose --profile kurrentdb up kurrentdb`
//! starts one). Without that variable those cases fail and say so: they never pass silently.

// The cases are shared helpers rather than `#[test]` functions, which clippy's
// allow-*-in-tests settings do not cover; failing loudly is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tessera_event_log::{
    AppendError, AppendOutcome, Backend, Checkpoint, CheckpointSigner, EventLog, ExpectedVersion,
    LogConfig, LogError, MemoryStore, StreamWrite, subscribe,
};
use tessera_event_schemas::events::samples;
use tessera_event_schemas::{
    Actor, ActorKind, Envelope, EventMetadata, Hash32, ProposedEvent, RecordedEvent, Timestamp,
    hash,
};
use tessera_test_support::PgDatabase;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sqlite,
    Postgres,
    Memory,
    #[cfg(feature = "kurrentdb")]
    KurrentDb,
    /// The KurrentDB backend on `MemoryKurrentDb`, the in-process stand-in for a server: all
    /// of the backend but the gRPC client, wherever the feature is built.
    #[cfg(feature = "kurrentdb")]
    KurrentDbStandIn,
}

/// The KurrentDB server the `kurrentdb` cases run against.
#[cfg(feature = "kurrentdb")]
const KURRENTDB_URL_VAR: &str = "TESSERA_TEST_KURRENTDB_URL";

/// A stream name no earlier run used, so that every case starts on an empty log.
#[cfg(feature = "kurrentdb")]
#[allow(
    clippy::disallowed_methods,
    reason = "a throwaway stream name on a shared server, unique across runs"
)]
fn fresh_stream() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "tessera-conformance-{}-{nanos}-{}",
        std::process::id(),
        new_id()
    )
}

/// Keeps the backing store alive for as long as the test needs it.
enum Store {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] PgDatabase),
    /// The memory log's store lives in its `Backend`.
    Memory,
    /// The stand-in server and the log's stream on it.
    #[cfg(feature = "kurrentdb")]
    KurrentDbStandIn(tessera_event_log::kurrentdb::MemoryKurrentDb, String),
}

/// Opens the log of `config`, or the KurrentDB backend on the stand-in server of `store`.
async fn open_log(config: &LogConfig, store: &Store) -> Arc<dyn EventLog> {
    #[cfg(feature = "kurrentdb")]
    if let Store::KurrentDbStandIn(server, stream) = store {
        let log = tessera_event_log::kurrentdb::KurrentDbLog::open_on(
            Arc::new(server.clone()),
            stream,
            config.clone(),
        )
        .await
        .unwrap();
        return Arc::new(log);
    }
    let _ = store;
    tessera_event_log::open(config.clone()).await.unwrap()
}

struct TestLog {
    log: Arc<dyn EventLog>,
    config: LogConfig,
    _store: Store,
}

impl TestLog {
    async fn new(kind: Kind) -> Self {
        Self::with(kind, |config| config).await
    }

    async fn with(kind: Kind, configure: impl FnOnce(LogConfig) -> LogConfig) -> Self {
        let (backend, store) = match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path: PathBuf = dir.path().join("nested").join("log.sqlite");
                (Backend::Sqlite { path }, Store::Sqlite(dir))
            }
            Kind::Postgres => {
                let db = tokio::task::spawn_blocking(tessera_test_support::fresh_database)
                    .await
                    .unwrap();
                (
                    Backend::Postgres {
                        url: db.url.clone(),
                    },
                    Store::Postgres(db),
                )
            }
            Kind::Memory => (
                Backend::Memory {
                    store: MemoryStore::default(),
                },
                Store::Memory,
            ),
            #[cfg(feature = "kurrentdb")]
            Kind::KurrentDb => {
                let url = std::env::var(KURRENTDB_URL_VAR).unwrap_or_else(|_| {
                    panic!(
                        "the kurrentdb conformance cases need a KurrentDB server: set \
                         {KURRENTDB_URL_VAR} (e.g. kurrentdb://localhost:2113?tls=false)"
                    )
                });
                (
                    Backend::KurrentDb {
                        url,
                        stream: fresh_stream(),
                    },
                    // The stream stays on the server; its name is never used again.
                    Store::Memory,
                )
            }
            #[cfg(feature = "kurrentdb")]
            Kind::KurrentDbStandIn => (
                // Unused: `open_log` opens the stand-in.
                Backend::Memory {
                    store: MemoryStore::default(),
                },
                Store::KurrentDbStandIn(
                    tessera_event_log::kurrentdb::MemoryKurrentDb::new(),
                    "tessera-log".to_owned(),
                ),
            ),
        };
        let config = configure(LogConfig::new(backend));
        let log = open_log(&config, &store).await;
        Self {
            log,
            config,
            _store: store,
        }
    }

    /// Closes the log and opens it again on the same store, like a server restart.
    async fn reopen(&mut self) {
        self.log.close().await;
        self.log = open_log(&self.config, &self._store).await;
    }
}

fn tenant() -> Uuid {
    Uuid::from_u128(0x7e55_e7a0)
}

/// A new id: 1, 2, 3, ... within this test process, so that every event id is fresh without
/// reading a clock or a random source.
fn new_id() -> Uuid {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// A proposed event; even `n` carries every optional metadata field, odd `n` none of them.
fn event(n: u64) -> ProposedEvent {
    let samples = samples::current();
    let sample = &samples[(n as usize) % samples.len()];
    let metadata = if n.is_multiple_of(2) {
        EventMetadata {
            actor: Actor {
                kind: ActorKind::User,
                id: format!("user-{n}"),
                name: Some("Ada Lovelace".into()),
            },
            correlation_id: format!("corr-{n}"),
            causation_id: Some(new_id()),
            source_ip: Some("192.0.2.7".into()),
            user_agent: Some("conformance/1.0".into()),
        }
    } else {
        EventMetadata::system(format!("corr-{n}"))
    };
    ProposedEvent::new(
        sample,
        new_id(),
        tenant(),
        Timestamp::from_micros(1_800_000_000_000_000 + n as i64),
        metadata,
    )
}

fn events(count: u64) -> Vec<ProposedEvent> {
    (0..count).map(event).collect()
}

fn write(stream: &str, expected: ExpectedVersion, events: Vec<ProposedEvent>) -> StreamWrite {
    StreamWrite {
        stream_id: stream.to_owned(),
        expected,
        events,
    }
}

async fn all_events(log: &dyn EventLog) -> Vec<RecordedEvent> {
    log.read_all(0, usize::MAX).await.unwrap()
}

/// Checks everything a verifier outside the log would: each event's hash, the per-stream
/// `prev_hash` links and the global log chain, recomputed with the schema's hash functions.
fn assert_chains_verify(all: &[RecordedEvent]) {
    let mut stream_heads: HashMap<&str, (u64, Hash32)> = HashMap::new();
    let mut prev_log = Hash32::ZERO;
    for (i, recorded) in all.iter().enumerate() {
        let e = &recorded.envelope;
        assert_eq!(
            e.global_position,
            i as u64 + 1,
            "positions are dense from 1"
        );
        assert_eq!(
            recorded.computed_hash(),
            e.hash,
            "event hash at {}",
            e.global_position
        );
        let (version, prev_hash) = stream_heads
            .get(e.stream_id.as_str())
            .copied()
            .unwrap_or((0, Hash32::ZERO));
        assert_eq!(
            e.stream_version,
            version + 1,
            "stream versions are dense from 1"
        );
        assert_eq!(e.prev_hash, prev_hash, "prev_hash links the stream");
        assert_eq!(
            e.log_hash,
            hash::log_link(&prev_log, e.global_position, &e.hash),
            "log chain at {}",
            e.global_position
        );
        prev_log = e.log_hash;
        stream_heads.insert(&e.stream_id, (e.stream_version, e.hash));
    }
}

async fn append_to_a_new_stream_with_no_stream_starts_at_version_one(kind: Kind) {
    let t = TestLog::new(kind).await;
    assert_eq!(t.log.head_position().await.unwrap(), 0);
    t.log.ping().await.unwrap();
    let outcome = t
        .log
        .append(vec![write(
            "tenant-a",
            ExpectedVersion::NoStream,
            events(2),
        )])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome {
            first_position: 1,
            last_position: 2,
            stream_versions: vec![("tenant-a".into(), 2)],
        }
    );
    let stream = t.log.read_stream("tenant-a", 0, 10).await.unwrap();
    assert_eq!(
        stream
            .iter()
            .map(|e| e.envelope.stream_version)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(t.log.head_position().await.unwrap(), 2);
}

async fn exact_and_any_expected_versions_append_after_the_current_version(kind: Kind) {
    let t = TestLog::new(kind).await;
    t.log
        .append(vec![write("s", ExpectedVersion::NoStream, events(1))])
        .await
        .unwrap();
    let exact = t
        .log
        .append(vec![write("s", ExpectedVersion::Exact(1), events(2))])
        .await
        .unwrap();
    assert_eq!(exact.stream_versions, vec![("s".into(), 3)]);
    assert_eq!((exact.first_position, exact.last_position), (2, 3));
    let any = t
        .log
        .append(vec![write("s", ExpectedVersion::Any, events(1))])
        .await
        .unwrap();
    assert_eq!(any.stream_versions, vec![("s".into(), 4)]);
    // Any also creates a stream that does not exist yet.
    let fresh = t
        .log
        .append(vec![write("other", ExpectedVersion::Any, events(1))])
        .await
        .unwrap();
    assert_eq!(fresh.stream_versions, vec![("other".into(), 1)]);
    assert_eq!(fresh.first_position, 5);
}

async fn a_conflicting_append_names_expected_and_actual_and_writes_nothing(kind: Kind) {
    let t = TestLog::new(kind).await;
    t.log
        .append(vec![write("s", ExpectedVersion::NoStream, events(2))])
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(3),
    ] {
        let error = t
            .log
            .append(vec![write("s", expected, events(1))])
            .await
            .unwrap_err();
        match error {
            AppendError::Conflict {
                stream_id,
                expected: got_expected,
                actual,
            } => {
                assert_eq!(stream_id, "s");
                assert_eq!(got_expected, expected);
                assert_eq!(actual, 2);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    let missing = t
        .log
        .append(vec![write("absent", ExpectedVersion::Exact(1), events(1))])
        .await
        .unwrap_err();
    assert!(
        matches!(missing, AppendError::Conflict { actual: 0, .. }),
        "{missing:?}"
    );
    assert_eq!(t.log.head_position().await.unwrap(), 2);
    assert_eq!(all_events(&*t.log).await.len(), 2);
    // The head is unchanged: the next append lands right after the committed ones.
    let next = t
        .log
        .append(vec![write("s", ExpectedVersion::Exact(2), events(1))])
        .await
        .unwrap();
    assert_eq!(next.first_position, 3);
    assert_chains_verify(&all_events(&*t.log).await);
}

async fn a_multi_stream_append_with_one_conflict_writes_nothing(kind: Kind) {
    let t = TestLog::new(kind).await;
    t.log
        .append(vec![write("b", ExpectedVersion::NoStream, events(1))])
        .await
        .unwrap();
    let error = t
        .log
        .append(vec![
            write("a", ExpectedVersion::NoStream, events(2)),
            write("b", ExpectedVersion::NoStream, events(1)),
            write("c", ExpectedVersion::NoStream, events(1)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AppendError::Conflict { stream_id, actual: 1, .. } if stream_id == "b"),
        "{error:?}"
    );
    assert!(t.log.read_stream("a", 0, 10).await.unwrap().is_empty());
    assert!(t.log.read_stream("c", 0, 10).await.unwrap().is_empty());
    assert_eq!(t.log.head_position().await.unwrap(), 1);

    // The same streams succeed together once the expectations are right.
    let outcome = t
        .log
        .append(vec![
            write("a", ExpectedVersion::NoStream, events(2)),
            write("b", ExpectedVersion::Exact(1), events(1)),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome {
            first_position: 2,
            last_position: 4,
            stream_versions: vec![("a".into(), 2), ("b".into(), 2)],
        }
    );
    assert_chains_verify(&all_events(&*t.log).await);
}

async fn retrying_an_append_returns_the_original_outcome_without_duplicates(kind: Kind) {
    let t = TestLog::new(kind).await;
    let writes = vec![
        write("a", ExpectedVersion::NoStream, events(2)),
        write("b", ExpectedVersion::NoStream, events(1)),
    ];
    let first = t.log.append(writes.clone()).await.unwrap();
    t.log
        .append(vec![write("a", ExpectedVersion::Exact(2), events(1))])
        .await
        .unwrap();
    // The retry's expected versions no longer hold, yet it is recognised as a retry.
    let retried = t.log.append(writes.clone()).await.unwrap();
    assert_eq!(retried, first);
    // Two retries racing each other in the same batch are both answered with the original.
    let (x, y) = tokio::join!(t.log.append(writes.clone()), t.log.append(writes));
    assert_eq!(x.unwrap(), first);
    assert_eq!(y.unwrap(), first);
    assert_eq!(all_events(&*t.log).await.len(), 4);

    // A retry racing the original append in one batch: the original wins, the copy replays it.
    let fresh = vec![write("c", ExpectedVersion::NoStream, events(1))];
    let (x, y) = tokio::join!(t.log.append(fresh.clone()), t.log.append(fresh));
    assert_eq!(x.unwrap(), y.unwrap());
    assert_eq!(all_events(&*t.log).await.len(), 5);
}

async fn a_retry_that_only_partly_matches_a_stored_append_is_an_idempotency_mismatch(kind: Kind) {
    let t = TestLog::new(kind).await;
    let stored = events(2);
    t.log
        .append(vec![write("a", ExpectedVersion::NoStream, stored.clone())])
        .await
        .unwrap();

    // One stored event plus a new one.
    let partial = vec![stored[0].clone(), event(7)];
    let error = t
        .log
        .append(vec![write("a", ExpectedVersion::Any, partial)])
        .await
        .unwrap_err();
    assert!(
        matches!(error, AppendError::IdempotencyMismatch { event_id } if event_id == stored[0].event_id)
    );

    // The same events sent to another stream.
    let error = t
        .log
        .append(vec![write("b", ExpectedVersion::Any, stored.clone())])
        .await
        .unwrap_err();
    assert!(
        matches!(error, AppendError::IdempotencyMismatch { .. }),
        "{error:?}"
    );

    // The same events in another order.
    let reversed = vec![stored[1].clone(), stored[0].clone()];
    let error = t
        .log
        .append(vec![write("a", ExpectedVersion::Any, reversed)])
        .await
        .unwrap_err();
    assert!(
        matches!(error, AppendError::IdempotencyMismatch { .. }),
        "{error:?}"
    );

    assert_eq!(all_events(&*t.log).await.len(), 2);
}

async fn an_append_without_events_or_with_repeated_ids_is_invalid(kind: Kind) {
    let t = TestLog::new(kind).await;
    let empty = t.log.append(vec![]).await.unwrap_err();
    assert!(matches!(empty, AppendError::Invalid(_)), "{empty:?}");
    let no_events = t
        .log
        .append(vec![write("a", ExpectedVersion::Any, vec![])])
        .await
        .unwrap_err();
    assert!(
        matches!(no_events, AppendError::Invalid(_)),
        "{no_events:?}"
    );
    let one = event(1);
    let repeated = t
        .log
        .append(vec![write(
            "a",
            ExpectedVersion::Any,
            vec![one.clone(), one],
        )])
        .await
        .unwrap_err();
    assert!(matches!(repeated, AppendError::Invalid(_)), "{repeated:?}");
    assert_eq!(t.log.head_position().await.unwrap(), 0);
}

async fn reads_return_events_in_order_and_respect_limits(kind: Kind) {
    let t = TestLog::new(kind).await;
    for round in 0..5u64 {
        let expected = if round == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(round * 2)
        };
        t.log
            .append(vec![
                write("x", expected, events(2)),
                write(&format!("y{round}"), ExpectedVersion::NoStream, events(1)),
            ])
            .await
            .unwrap();
    }
    let positions = |events: &[RecordedEvent]| {
        events
            .iter()
            .map(|e| e.envelope.global_position)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        positions(&t.log.read_all(0, 4).await.unwrap()),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        positions(&t.log.read_all(12, 100).await.unwrap()),
        vec![13, 14, 15]
    );
    assert!(t.log.read_all(15, 100).await.unwrap().is_empty());
    assert!(t.log.read_all(0, 0).await.unwrap().is_empty());

    let versions = |events: &[RecordedEvent]| {
        events
            .iter()
            .map(|e| e.envelope.stream_version)
            .collect::<Vec<_>>()
    };
    let x = t.log.read_stream("x", 0, 100).await.unwrap();
    assert_eq!(versions(&x), (1..=10).collect::<Vec<_>>());
    assert!(x.iter().all(|e| e.envelope.stream_id == "x"));
    assert_eq!(
        versions(&t.log.read_stream("x", 3, 4).await.unwrap()),
        vec![4, 5, 6, 7]
    );
    assert!(t.log.read_stream("x", 10, 5).await.unwrap().is_empty());
    assert!(t.log.read_stream("nobody", 0, 5).await.unwrap().is_empty());
    assert_eq!(t.log.head_position().await.unwrap(), 15);
}

async fn read_back_events_match_what_was_proposed_and_verify_their_hashes(kind: Kind) {
    let t = TestLog::new(kind).await;
    let proposed = events(6);
    t.log
        .append(vec![
            write("a", ExpectedVersion::NoStream, proposed[..3].to_vec()),
            write("b", ExpectedVersion::NoStream, proposed[3..4].to_vec()),
        ])
        .await
        .unwrap();
    t.log
        .append(vec![write(
            "a",
            ExpectedVersion::Exact(3),
            proposed[4..].to_vec(),
        )])
        .await
        .unwrap();
    let all = all_events(&*t.log).await;
    assert_eq!(all.len(), 6);
    for (recorded, proposed) in all.iter().zip(&proposed) {
        let e: &Envelope = &recorded.envelope;
        assert_eq!(e.event_id, proposed.event_id);
        assert_eq!(e.tenant_id, proposed.tenant_id);
        assert_eq!(e.event_type, proposed.event_type);
        assert_eq!(e.schema_version, proposed.schema_version);
        assert_eq!(e.recorded_at, proposed.recorded_at);
        assert_eq!(e.actor, proposed.metadata.actor);
        assert_eq!(e.correlation_id, proposed.metadata.correlation_id);
        assert_eq!(e.causation_id, proposed.metadata.causation_id);
        assert_eq!(e.source_ip, proposed.metadata.source_ip);
        assert_eq!(e.user_agent, proposed.metadata.user_agent);
        assert_eq!(recorded.payload, proposed.payload);
        // The payload decodes to the event it was encoded from.
        assert_eq!(recorded.decode().unwrap().event_type(), proposed.event_type);
    }
    assert_chains_verify(&all);
    // read_stream returns the same bytes as read_all.
    let a = t.log.read_stream("a", 0, 10).await.unwrap();
    let from_all: Vec<_> = all
        .iter()
        .filter(|e| e.envelope.stream_id == "a")
        .cloned()
        .collect();
    assert_eq!(a, from_all);
}

/// Token events as the server writes them: on `{tenant}/tokens/{client}`, by that client, with
/// a server-made correlation id; the storage may leave such ids to the stream or keep them as
/// bytes, and must give back exactly what was proposed. Alongside, events whose ids only look
/// alike (another tenant than the stream's, another spelling of a UUID) keep theirs.
async fn ids_a_stream_implies_read_back_exactly_as_proposed(kind: Kind) {
    let t = TestLog::new(kind).await;
    let client = "0193a000-0000-7000-8000-00000000c11e";
    let stream = tessera_event_schemas::streams::client_tokens(tenant(), client);
    let token = |correlation: String, actor: &str, tenant_id: Uuid| {
        let mut event = event(1);
        event.tenant_id = tenant_id;
        event.metadata = EventMetadata {
            actor: Actor {
                kind: ActorKind::Client,
                id: actor.to_owned(),
                name: None,
            },
            correlation_id: correlation,
            causation_id: None,
            source_ip: Some("192.0.2.9".into()),
            user_agent: None,
        };
        event
    };
    let proposed = vec![
        token(new_id().to_string(), client, tenant()),
        token(
            new_id().to_string().to_uppercase(),
            &client.to_uppercase(),
            tenant(),
        ),
        token(new_id().simple().to_string(), "tessera", new_id()),
        token(new_id().to_string(), &new_id().to_string(), tenant()),
    ];
    t.log
        .append(vec![write(
            &stream,
            ExpectedVersion::NoStream,
            proposed.clone(),
        )])
        .await
        .unwrap();
    let all = all_events(&*t.log).await;
    assert_eq!(all.len(), proposed.len());
    for (recorded, proposed) in all.iter().zip(&proposed) {
        let e = &recorded.envelope;
        assert_eq!(e.stream_id, stream);
        assert_eq!(e.tenant_id, proposed.tenant_id);
        assert_eq!(e.actor, proposed.metadata.actor);
        assert_eq!(e.correlation_id, proposed.metadata.correlation_id);
    }
    assert_chains_verify(&all);
    assert_eq!(t.log.read_all_bulk(0, usize::MAX).await.unwrap(), all);
    assert_eq!(t.log.read_stream(&stream, 0, 10).await.unwrap(), all);
}

async fn bulk_reads_return_exactly_what_read_all_returns(kind: Kind) {
    let t = TestLog::new(kind).await;
    let proposed = events(9);
    t.log
        .append(vec![
            write("a", ExpectedVersion::NoStream, proposed[..4].to_vec()),
            write("b", ExpectedVersion::NoStream, proposed[4..5].to_vec()),
        ])
        .await
        .unwrap();
    t.log
        .append(vec![write(
            "c",
            ExpectedVersion::Any,
            proposed[5..].to_vec(),
        )])
        .await
        .unwrap();
    let all = all_events(&*t.log).await;
    assert_eq!(t.log.read_all_bulk(0, usize::MAX).await.unwrap(), all);
    // Pages of any size, from anywhere, as `read_all` gives them (several times over, so that
    // a kept connection and its prepared statement are reused).
    for limit in [1, 2, 4, 9, 100] {
        for after in [0, 3, 8, 9, 50] {
            assert_eq!(
                t.log.read_all_bulk(after, limit).await.unwrap(),
                t.log.read_all(after, limit).await.unwrap(),
                "after {after}, limit {limit}"
            );
        }
    }
    assert!(t.log.read_all_bulk(0, 0).await.unwrap().is_empty());
    // Concurrent bulk reads each get a connection and agree.
    let reads = (0..4).map(|_| {
        let log = t.log.clone();
        tokio::spawn(async move { log.read_all_bulk(0, usize::MAX).await.unwrap() })
    });
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.unwrap(), all);
    }
    // Appends are seen by the next bulk read.
    t.log
        .append(vec![write("a", ExpectedVersion::Exact(4), events(1))])
        .await
        .unwrap();
    assert_eq!(
        t.log.read_all_bulk(9, 10).await.unwrap(),
        t.log.read_all(9, 10).await.unwrap()
    );
    assert_eq!(t.log.read_all_bulk(9, 10).await.unwrap().len(), 1);
}

async fn concurrent_no_stream_appends_to_one_stream_let_exactly_one_win(kind: Kind) {
    let t = TestLog::new(kind).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let log = t.log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(vec![write(
                "unique-slug",
                ExpectedVersion::NoStream,
                events(1),
            )])
            .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) => {
                won += 1;
                assert_eq!(outcome.stream_versions, vec![("unique-slug".into(), 1)]);
            }
            Err(AppendError::Conflict { actual: 1, .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(t.log.head_position().await.unwrap(), 1);
}

/// Reads `read_all` from `after` until `total` events were seen, asserting that every batch
/// continues exactly where the previous one ended: a reader must never see a position above a
/// hole that a slower transaction fills in later.
async fn follow_without_gaps(log: Arc<dyn EventLog>, total: u64) -> Vec<u64> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let mut last = 0;
    while last < total {
        assert!(
            Instant::now() < deadline,
            "reader stuck at {last} of {total}"
        );
        let batch = log.read_all(last, 37).await.unwrap();
        for event in &batch {
            assert_eq!(event.envelope.global_position, last + 1, "reader saw a gap");
            last = event.envelope.global_position;
            seen.push(last);
        }
        if batch.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    seen
}

async fn concurrent_writers_get_dense_unique_positions_and_readers_never_see_gaps(kind: Kind) {
    const WRITERS: u64 = 16;
    const APPENDS: u64 = 50;
    const TOTAL: u64 = WRITERS * APPENDS;
    let t = TestLog::new(kind).await;

    let reader = tokio::spawn(follow_without_gaps(t.log.clone(), TOTAL));
    let subscriber = {
        let log = t.log.clone();
        tokio::spawn(async move {
            let mut stream = Box::pin(subscribe(log, 0, 64));
            let mut last = 0;
            let deadline = tokio::time::Instant::now() + DEADLINE;
            while last < TOTAL {
                let batch = tokio::time::timeout_at(deadline, stream.next())
                    .await
                    .expect("subscriber timed out")
                    .expect("subscription ended")
                    .expect("subscription failed");
                for event in batch {
                    assert_eq!(
                        event.envelope.global_position,
                        last + 1,
                        "subscriber saw a gap"
                    );
                    last += 1;
                }
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let log = t.log.clone();
        writers.push(tokio::spawn(async move {
            let stream = format!("writer-{w}");
            let mut positions = Vec::new();
            for i in 0..APPENDS {
                let expected = if i == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(i)
                };
                let outcome = log
                    .append(vec![write(&stream, expected, vec![event(w * APPENDS + i)])])
                    .await
                    .unwrap();
                assert_eq!(outcome.stream_versions, vec![(stream.clone(), i + 1)]);
                positions.push(outcome.first_position);
            }
            positions
        }));
    }
    let mut positions = Vec::new();
    for writer in writers {
        let mine = writer.await.unwrap();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "a writer's appends commit in order"
        );
        positions.extend(mine);
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=TOTAL).collect::<Vec<_>>());

    assert_eq!(reader.await.unwrap(), (1..=TOTAL).collect::<Vec<_>>());
    subscriber.await.unwrap();

    let all = all_events(&*t.log).await;
    assert_eq!(all.len() as u64, TOTAL);
    let ids: HashSet<_> = all.iter().map(|e| e.envelope.event_id).collect();
    assert_eq!(ids.len() as u64, TOTAL);
    assert_chains_verify(&all);
}

async fn next_batch<S>(stream: &mut S) -> Vec<RecordedEvent>
where
    S: futures::Stream<Item = Result<Vec<RecordedEvent>, LogError>> + Unpin,
{
    tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("subscription timed out")
        .expect("subscription ended")
        .expect("subscription failed")
}

async fn a_subscription_catches_up_then_receives_live_appends(kind: Kind) {
    let t = TestLog::new(kind).await;
    for i in 0..5u64 {
        let expected = if i == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(i)
        };
        t.log
            .append(vec![write("s", expected, vec![event(i)])])
            .await
            .unwrap();
    }
    let mut stream = Box::pin(subscribe(t.log.clone(), 2, 2));
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let batch = next_batch(&mut stream).await;
        assert!(batch.len() <= 2, "batches respect batch_size");
        seen.extend(batch.iter().map(|e| e.envelope.global_position));
    }
    assert_eq!(seen, vec![3, 4, 5]);

    // Caught up: a live append arrives without any further reads from the test.
    let live = event(99);
    let live_id = live.event_id;
    t.log
        .append(vec![write("s", ExpectedVersion::Exact(5), vec![live])])
        .await
        .unwrap();
    let batch = next_batch(&mut stream).await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].envelope.event_id, live_id);
    assert_eq!(batch[0].envelope.global_position, 6);
}

/// A keyed SHA-256 (through the schema's event hash, with the key as the stream id): enough to
/// tell a right signature from a wrong one without a crypto dependency.
struct TestSigner;

impl TestSigner {
    fn mac(message: &[u8]) -> Vec<u8> {
        let envelope = Envelope::builder()
            .stream("test-checkpoint-key")
            .stream_version(0)
            .position(0)
            .event_type("", 0)
            .build();
        hash::event_hash(&envelope, message).0.to_vec()
    }
}

impl CheckpointSigner for TestSigner {
    fn key_id(&self) -> &str {
        "test-key-1"
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        Self::mac(message)
    }
}

fn assert_checkpoint_valid(checkpoint: &Checkpoint, all: &[RecordedEvent]) {
    assert_eq!(checkpoint.key_id, "test-key-1");
    let at = &all[checkpoint.position as usize - 1].envelope;
    assert_eq!(at.global_position, checkpoint.position);
    assert_eq!(
        checkpoint.log_hash, at.log_hash,
        "checkpoint covers the chain at its position"
    );
    let message = hash::checkpoint_message(
        checkpoint.position,
        &checkpoint.log_hash,
        checkpoint.created_at,
    );
    assert_eq!(
        checkpoint.signature,
        TestSigner::mac(&message),
        "signature verifies"
    );
}

async fn checkpoints_are_signed_every_n_events_and_on_close(kind: Kind) {
    let mut t = TestLog::with(kind, |mut config| {
        config.checkpoint_signer = Some(Arc::new(TestSigner));
        config.checkpoint_every = 5;
        config
    })
    .await;
    // 3 + 4 + 1 + 4 = 12 events in batches that straddle the multiples of 5.
    let mut version = 0;
    for size in [3u64, 4, 1, 4] {
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        t.log
            .append(vec![write("s", expected, events(size))])
            .await
            .unwrap();
        version += size;
    }
    let checkpoints = t.log.checkpoints(0).await.unwrap();
    assert_eq!(
        checkpoints.iter().map(|c| c.position).collect::<Vec<_>>(),
        vec![5, 10]
    );
    assert_eq!(t.log.checkpoints(5).await.unwrap().len(), 1);

    t.reopen().await;
    let all = all_events(&*t.log).await;
    let checkpoints = t.log.checkpoints(0).await.unwrap();
    assert_eq!(
        checkpoints.iter().map(|c| c.position).collect::<Vec<_>>(),
        vec![5, 10, 12],
        "close writes a final checkpoint at the head"
    );
    for checkpoint in &checkpoints {
        assert_checkpoint_valid(checkpoint, &all);
    }
    // Closing again right away adds nothing: the head already has its checkpoint.
    t.reopen().await;
    assert_eq!(t.log.checkpoints(0).await.unwrap().len(), 3);
}

async fn reopening_after_close_keeps_everything_and_continues_positions_versions_and_chains(
    kind: Kind,
) {
    let mut t = TestLog::new(kind).await;
    t.log
        .append(vec![
            write("a", ExpectedVersion::NoStream, events(3)),
            write("b", ExpectedVersion::NoStream, events(1)),
        ])
        .await
        .unwrap();
    let before = all_events(&*t.log).await;
    t.reopen().await;
    assert_eq!(all_events(&*t.log).await, before);
    assert_eq!(t.log.head_position().await.unwrap(), 4);
    assert_eq!(*t.log.watch_head().borrow(), 4);

    let outcome = t
        .log
        .append(vec![
            write("a", ExpectedVersion::Exact(3), events(2)),
            write("b", ExpectedVersion::Exact(1), events(1)),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome {
            first_position: 5,
            last_position: 7,
            stream_versions: vec![("a".into(), 5), ("b".into(), 2)],
        }
    );
    // A retry of an append from before the restart is still recognised.
    let retried = t
        .log
        .append(vec![
            write(
                "a",
                ExpectedVersion::NoStream,
                before[..3].iter().map(proposed_from).collect(),
            ),
            write(
                "b",
                ExpectedVersion::NoStream,
                vec![proposed_from(&before[3])],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        retried,
        AppendOutcome {
            first_position: 1,
            last_position: 4,
            stream_versions: vec![("a".into(), 3), ("b".into(), 1)],
        }
    );
    assert_chains_verify(&all_events(&*t.log).await);
}

/// The proposed event a recorded one was made from (enough to retry it).
fn proposed_from(recorded: &RecordedEvent) -> ProposedEvent {
    let e = &recorded.envelope;
    let event = recorded.decode().unwrap();
    ProposedEvent::new(
        &event,
        e.event_id,
        e.tenant_id,
        e.recorded_at,
        EventMetadata {
            actor: e.actor.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id,
            source_ip: e.source_ip.clone(),
            user_agent: e.user_agent.clone(),
        },
    )
}

async fn appends_after_close_are_refused_as_unavailable(kind: Kind) {
    let t = TestLog::new(kind).await;
    t.log
        .append(vec![write("a", ExpectedVersion::NoStream, events(1))])
        .await
        .unwrap();
    t.log.close().await;
    let error = t
        .log
        .append(vec![write("a", ExpectedVersion::Any, events(1))])
        .await
        .unwrap_err();
    assert!(matches!(error, AppendError::Unavailable(_)), "{error:?}");
}

macro_rules! conformance {
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
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Memory).await;
                }
            )*
        }
        #[cfg(feature = "kurrentdb")]
        mod kurrentdb_stand_in {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::KurrentDbStandIn).await;
                }
            )*
        }
        #[cfg(feature = "kurrentdb")]
        mod kurrentdb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::KurrentDb).await;
                }
            )*
        }
    };
}

conformance!(
    append_to_a_new_stream_with_no_stream_starts_at_version_one,
    exact_and_any_expected_versions_append_after_the_current_version,
    a_conflicting_append_names_expected_and_actual_and_writes_nothing,
    a_multi_stream_append_with_one_conflict_writes_nothing,
    retrying_an_append_returns_the_original_outcome_without_duplicates,
    a_retry_that_only_partly_matches_a_stored_append_is_an_idempotency_mismatch,
    an_append_without_events_or_with_repeated_ids_is_invalid,
    reads_return_events_in_order_and_respect_limits,
    read_back_events_match_what_was_proposed_and_verify_their_hashes,
    bulk_reads_return_exactly_what_read_all_returns,
    ids_a_stream_implies_read_back_exactly_as_proposed,
    concurrent_no_stream_appends_to_one_stream_let_exactly_one_win,
    concurrent_writers_get_dense_unique_positions_and_readers_never_see_gaps,
    a_subscription_catches_up_then_receives_live_appends,
    checkpoints_are_signed_every_n_events_and_on_close,
    reopening_after_close_keeps_everything_and_continues_positions_versions_and_chains,
    appends_after_close_are_refused_as_unavailable,
);
