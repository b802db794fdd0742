//! Opening a log written in storage format 1 (before issue 24: every row spelling out its
//! stream id, tenant, actor and correlation ids) migrates it to format 2 once, and the log then
//! reads back exactly the events format 1 held, extends their chains, and recognises retries of
//! them, on SQLite and on PostgreSQL.
//!
//! The format-1 store is built here with format 1's DDL and its way of storing a row, from
//! events a memory log recorded (so that every hash and chain link is real).

// Test helpers rather than `#[test]` functions, which clippy's allow-*-in-tests settings do not
// cover; failing loudly is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tessera_event_log::{
    AppendOutcome, Backend, EventLog, ExpectedVersion, LogConfig, LogError, MemoryStore,
    StreamWrite,
};
use tessera_event_schemas::events::samples;
use tessera_event_schemas::{
    Actor, ActorKind, EventMetadata, Hash32, ProposedEvent, RecordedEvent, Timestamp, hash, streams,
};
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_7e57);
const CLIENT: &str = "0193a000-0000-7000-8000-00000000c11e";

/// Format 1's SQLite tables, as the log created them before issue 24.
const SQLITE_FORMAT_1: &str = "
    CREATE TABLE events (
        global_position INTEGER PRIMARY KEY,
        event_id BLOB NOT NULL UNIQUE,
        stream_id TEXT NOT NULL,
        stream_version INTEGER NOT NULL,
        tenant_id BLOB NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        actor_name TEXT,
        correlation_id TEXT NOT NULL,
        causation_id BLOB,
        source_ip TEXT,
        user_agent TEXT,
        payload BLOB NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL,
        log_hash BLOB NOT NULL,
        UNIQUE (stream_id, stream_version)
    );
    CREATE TABLE streams (
        stream_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        last_hash BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        position INTEGER NOT NULL,
        log_hash BLOB NOT NULL
    );
    CREATE TABLE log_checkpoints (
        position INTEGER PRIMARY KEY,
        log_hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        signature BLOB NOT NULL
    );";

/// Format 1's PostgreSQL tables, as the log created them before issue 24.
const POSTGRES_FORMAT_1: &[&str] = &[
    "CREATE TABLE events (
        global_position BIGINT PRIMARY KEY,
        event_id UUID NOT NULL UNIQUE,
        stream_id TEXT NOT NULL,
        stream_version BIGINT NOT NULL,
        tenant_id UUID NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        recorded_at BIGINT NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        actor_name TEXT,
        correlation_id TEXT NOT NULL,
        causation_id UUID,
        source_ip TEXT,
        user_agent TEXT,
        payload BYTEA NOT NULL,
        prev_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        log_hash BYTEA NOT NULL,
        UNIQUE (stream_id, stream_version)
    )",
    "CREATE TABLE streams (
        stream_id TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        last_hash BYTEA NOT NULL
    )",
    "CREATE TABLE log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        position BIGINT NOT NULL,
        log_hash BYTEA NOT NULL
    )",
    "CREATE TABLE log_checkpoints (
        position BIGINT PRIMARY KEY,
        log_hash BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        key_id TEXT NOT NULL,
        signature BYTEA NOT NULL
    )",
];

fn event(n: u64, metadata: EventMetadata) -> ProposedEvent {
    let samples = samples::current();
    ProposedEvent::new(
        &samples[(n as usize) % samples.len()],
        Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0001_0000 + u128::from(n)),
        TENANT,
        Timestamp::from_micros(1_800_000_000_000_000 + n as i64),
        metadata,
    )
}

/// A token's metadata: the client of the stream as the actor, a server-made correlation id
/// (the ids format 2 leaves to the stream or stores as bytes).
fn client(n: u64) -> EventMetadata {
    EventMetadata {
        actor: Actor {
            kind: ActorKind::Client,
            id: CLIENT.to_owned(),
            name: None,
        },
        correlation_id: Uuid::from_u128(0xc0 + u128::from(n)).to_string(),
        causation_id: None,
        source_ip: Some("192.0.2.7".into()),
        user_agent: None,
    }
}

/// A user's metadata, with every optional field and ids that are not UUIDs.
fn user(n: u64) -> EventMetadata {
    EventMetadata {
        actor: Actor {
            kind: ActorKind::User,
            id: format!("user-{n}"),
            name: Some("Ada Lovelace".into()),
        },
        correlation_id: format!("corr-{n}"),
        causation_id: Some(Uuid::from_u128(0xca + u128::from(n))),
        source_ip: Some("192.0.2.8".into()),
        user_agent: Some("migration/1.0".into()),
    }
}

fn write(stream: &str, expected: ExpectedVersion, events: Vec<ProposedEvent>) -> StreamWrite {
    StreamWrite {
        stream_id: stream.to_owned(),
        expected,
        events,
    }
}

fn tokens() -> String {
    streams::client_tokens(TENANT, CLIENT)
}

/// What the format-1 store holds: events a memory log recorded, in two streams and three
/// appends.
async fn recorded() -> Vec<RecordedEvent> {
    let log = tessera_event_log::open(LogConfig::new(Backend::Memory {
        store: MemoryStore::default(),
    }))
    .await
    .unwrap();
    log.append(vec![
        write(
            &tokens(),
            ExpectedVersion::NoStream,
            vec![event(1, client(1))],
        ),
        write(
            &streams::tenant(TENANT),
            ExpectedVersion::NoStream,
            vec![event(2, user(2)), event(3, EventMetadata::system("corr-3"))],
        ),
    ])
    .await
    .unwrap();
    log.append(vec![write(
        &tokens(),
        ExpectedVersion::Exact(1),
        vec![event(4, client(4)), event(5, user(5))],
    )])
    .await
    .unwrap();
    let events = log.read_all(0, usize::MAX).await.unwrap();
    log.close().await;
    events
}

/// A stream's or the log's head: its id, version or position, and last hash.
type Head = (String, u64, Hash32);

/// The head of each stream and of the log after `events`, as format 1 stored them.
fn heads(events: &[RecordedEvent]) -> (Vec<Head>, (u64, Hash32)) {
    let mut streams: HashMap<&str, (u64, Hash32)> = HashMap::new();
    for recorded in events {
        let e = &recorded.envelope;
        streams.insert(&e.stream_id, (e.stream_version, e.hash));
    }
    let last = &events.last().unwrap().envelope;
    let mut streams: Vec<_> = streams
        .into_iter()
        .map(|(id, (version, hash))| (id.to_owned(), version, hash))
        .collect();
    streams.sort();
    (streams, (last.global_position, last.log_hash))
}

fn i64_of(value: u64) -> i64 {
    i64::try_from(value).unwrap()
}

fn write_sqlite_format_1(path: &Path, events: &[RecordedEvent]) {
    let mut connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    let tx = connection.transaction().unwrap();
    tx.execute_batch(SQLITE_FORMAT_1).unwrap();
    for recorded in events {
        let e = &recorded.envelope;
        tx.execute(
            "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15, ?16, ?17, ?18, ?19)",
            rusqlite::params![
                i64_of(e.global_position),
                &e.event_id.as_bytes()[..],
                e.stream_id,
                i64_of(e.stream_version),
                &e.tenant_id.as_bytes()[..],
                e.event_type,
                i32::from(e.schema_version),
                e.recorded_at.as_micros(),
                e.actor.kind.as_str(),
                e.actor.id,
                e.actor.name,
                e.correlation_id,
                e.causation_id.as_ref().map(|id| &id.as_bytes()[..]),
                e.source_ip,
                e.user_agent,
                recorded.payload,
                &e.prev_hash.0[..],
                &e.hash.0[..],
                &e.log_hash.0[..],
            ],
        )
        .unwrap();
    }
    let (streams, (position, log_hash)) = heads(events);
    for (stream_id, version, last_hash) in streams {
        tx.execute(
            "INSERT INTO streams VALUES (?1, ?2, ?3)",
            rusqlite::params![stream_id, i64_of(version), &last_hash.0[..]],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO log_head VALUES (1, ?1, ?2)",
        rusqlite::params![i64_of(position), &log_hash.0[..]],
    )
    .unwrap();
    tx.commit().unwrap();
}

async fn write_postgres_format_1(url: &str, events: &[RecordedEvent]) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for statement in POSTGRES_FORMAT_1 {
        sqlx::query(*statement).execute(&mut *tx).await.unwrap();
    }
    for recorded in events {
        let e = &recorded.envelope;
        sqlx::query(
            "INSERT INTO events VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19)",
        )
        .bind(i64_of(e.global_position))
        .bind(e.event_id)
        .bind(&e.stream_id)
        .bind(i64_of(e.stream_version))
        .bind(e.tenant_id)
        .bind(&e.event_type)
        .bind(i32::from(e.schema_version))
        .bind(e.recorded_at.as_micros())
        .bind(e.actor.kind.as_str())
        .bind(&e.actor.id)
        .bind(&e.actor.name)
        .bind(&e.correlation_id)
        .bind(e.causation_id)
        .bind(&e.source_ip)
        .bind(&e.user_agent)
        .bind(&recorded.payload)
        .bind(&e.prev_hash.0[..])
        .bind(&e.hash.0[..])
        .bind(&e.log_hash.0[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let (streams, (position, log_hash)) = heads(events);
    for (stream_id, version, last_hash) in streams {
        sqlx::query("INSERT INTO streams VALUES ($1, $2, $3)")
            .bind(stream_id)
            .bind(i64_of(version))
            .bind(&last_hash.0[..])
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO log_head VALUES (1, $1, $2)")
        .bind(i64_of(position))
        .bind(&log_hash.0[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
}

/// Each event's hash, each stream's links and the log chain, recomputed.
fn assert_chains_verify(all: &[RecordedEvent]) {
    let mut stream_heads: HashMap<&str, Hash32> = HashMap::new();
    let mut prev_log = Hash32::ZERO;
    for recorded in all {
        let e = &recorded.envelope;
        assert_eq!(
            recorded.computed_hash(),
            e.hash,
            "hash at {}",
            e.global_position
        );
        let prev = stream_heads.get(e.stream_id.as_str()).copied();
        assert_eq!(
            e.prev_hash,
            prev.unwrap_or(Hash32::ZERO),
            "link at {}",
            e.global_position
        );
        assert_eq!(
            e.log_hash,
            hash::log_link(&prev_log, e.global_position, &e.hash)
        );
        prev_log = e.log_hash;
        stream_heads.insert(&e.stream_id, e.hash);
    }
}

/// The proposed event a recorded one was made from (enough to retry it).
fn proposed_from(recorded: &RecordedEvent) -> ProposedEvent {
    let e = &recorded.envelope;
    ProposedEvent::new(
        &recorded.decode().unwrap(),
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

/// What every backend must show after opening the format-1 store: the same events by every
/// read, a retry of an old append recognised, new appends chained onto the old, and the same
/// again after a reopen (which finds format 2 and migrates nothing).
async fn assert_migrated(config: LogConfig, before: &[RecordedEvent]) {
    let log: Arc<dyn EventLog> = tessera_event_log::open(config.clone()).await.unwrap();
    assert_eq!(log.read_all(0, usize::MAX).await.unwrap(), before);
    assert_eq!(log.read_all_bulk(0, usize::MAX).await.unwrap(), before);
    assert_eq!(log.read_all(2, 2).await.unwrap(), before[2..4]);
    for stream_id in [tokens(), streams::tenant(TENANT)] {
        let expected: Vec<_> = before
            .iter()
            .filter(|recorded| recorded.envelope.stream_id == stream_id)
            .cloned()
            .collect();
        assert_eq!(
            log.read_stream(&stream_id, 0, usize::MAX).await.unwrap(),
            expected
        );
    }
    assert_eq!(log.head_position().await.unwrap(), 5);

    let retried = log
        .append(vec![write(
            &tokens(),
            ExpectedVersion::Exact(1),
            before[3..].iter().map(proposed_from).collect(),
        )])
        .await
        .unwrap();
    assert_eq!(
        retried,
        AppendOutcome {
            first_position: 4,
            last_position: 5,
            stream_versions: vec![(tokens(), 3)],
        }
    );
    let outcome = log
        .append(vec![
            write(
                &tokens(),
                ExpectedVersion::Exact(3),
                vec![event(6, client(6))],
            ),
            write(
                &streams::tenant(TENANT),
                ExpectedVersion::Exact(2),
                vec![event(7, user(7))],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        AppendOutcome {
            first_position: 6,
            last_position: 7,
            stream_versions: vec![(tokens(), 4), (streams::tenant(TENANT), 3)],
        }
    );
    let after = log.read_all(0, usize::MAX).await.unwrap();
    assert_eq!(after[..5], *before);
    assert_chains_verify(&after);
    log.close().await;

    let log = tessera_event_log::open(config).await.unwrap();
    assert_eq!(log.read_all_bulk(0, usize::MAX).await.unwrap(), after);
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_of_format_1_is_migrated_on_open_and_reads_back_the_same() {
    let before = recorded().await;
    assert_chains_verify(&before);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    write_sqlite_format_1(&path, &before);

    assert_migrated(
        LogConfig::new(Backend::Sqlite { path: path.clone() }),
        &before,
    )
    .await;

    let connection = rusqlite::Connection::open(&path).unwrap();
    let format: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(format, 2);
    let leftovers: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%format1%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let config = LogConfig::new(Backend::Sqlite { path: path.clone() });
    tessera_event_log::open(config.clone())
        .await
        .unwrap()
        .close()
        .await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 3)
        .unwrap();
    match tessera_event_log::open(config).await {
        Err(LogError::Unavailable(message)) => assert!(message.contains("format 3"), "{message}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a newer format was opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_format_1_is_migrated_on_open_and_reads_back_the_same() {
    let before = recorded().await;
    let db = tokio::task::spawn_blocking(tessera_test_support::fresh_database)
        .await
        .unwrap();
    write_postgres_format_1(&db.url, &before).await;

    assert_migrated(
        LogConfig::new(Backend::Postgres {
            url: db.url.clone(),
        }),
        &before,
    )
    .await;

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let format: i32 = sqlx::query_scalar("SELECT version FROM log_format")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(format, 2);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() ORDER BY tablename",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "events",
            "log_checkpoints",
            "log_format",
            "log_head",
            "streams"
        ]
    );
    pool.close().await;
}
