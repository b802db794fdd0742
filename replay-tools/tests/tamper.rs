//! Tamper tests: a real log on SQLite and on a throwaway PostgreSQL is edited behind Tessera's
//! back (a payload byte, a deleted event, two swapped events, a cut-off tail), and
//! `tessera-replay verify` must fail naming the first bad position; an untouched log verifies.
//! The paged, parallel read-ahead that `verify` walks the log with is checked around such gaps
//! too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use sqlx::Executor;
use tessera_crypto::{Crypto, MasterKey};
use tessera_event_log::{Backend, EventLog, ExpectedVersion, LogConfig, StreamWrite};
use tessera_event_schemas::events::samples;
use tessera_event_schemas::{EventMetadata, ProposedEvent, Timestamp};
use tessera_replay_tools::source::ReadAhead;
use tessera_replay_tools::verify::{ViolationKind, verify_log};
use uuid::Uuid;

const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const EVENTS: u64 = 30;

/// A log of 30 events over 4 streams, checkpointed every 10 events and on close.
async fn write_log(backend: Backend) {
    let crypto = Crypto::new(&MasterKey::from_env_value(MASTER_KEY).unwrap()).unwrap();
    let mut config = LogConfig::new(backend);
    config.checkpoint_signer = Some(crypto.checkpoint_signer());
    config.checkpoint_every = 10;
    let log = tessera_event_log::open(config).await.unwrap();
    let events = samples::current();
    for i in 0..EVENTS {
        let event = &events[i as usize % events.len()];
        let proposed = ProposedEvent::new(
            event,
            Uuid::from_u128(0x7a3e_0000 + u128::from(i)),
            Uuid::from_u128(7),
            Timestamp::from_micros(1_800_000_000_000_000 + i as i64),
            EventMetadata::system(format!("tamper-{i}")),
        );
        log.append(vec![StreamWrite {
            stream_id: format!("{}/s/{}", Uuid::from_u128(7), i % 4),
            expected: ExpectedVersion::Any,
            events: vec![proposed],
        }])
        .await
        .unwrap();
    }
    log.close().await;
}

enum Store {
    Sqlite(tempfile::TempDir),
    Postgres(tessera_test_support::PgDatabase, tempfile::TempDir),
}

impl Store {
    async fn fresh(postgres: bool) -> Self {
        let store = if postgres {
            let db = tokio::task::spawn_blocking(tessera_test_support::fresh_database)
                .await
                .unwrap();
            Store::Postgres(db, tempfile::tempdir().unwrap())
        } else {
            Store::Sqlite(tempfile::tempdir().unwrap())
        };
        write_log(store.backend()).await;
        store
    }

    fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(dir) => Backend::Sqlite {
                path: dir.path().join("events.db"),
            },
            Store::Postgres(db, _) => Backend::Postgres {
                url: db.url.clone(),
            },
        }
    }

    fn data_dir(&self) -> &Path {
        match self {
            Store::Sqlite(dir) | Store::Postgres(_, dir) => dir.path(),
        }
    }

    /// Runs SQL against the stored log directly, as an attacker with database access would.
    async fn tamper(&self, statements: &[&'static str]) {
        match self {
            Store::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                for sql in statements {
                    pool.execute(*sql).await.unwrap();
                }
                pool.close().await;
            }
            Store::Postgres(db, _) => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                for sql in statements {
                    pool.execute(*sql).await.unwrap();
                }
                pool.close().await;
            }
        }
    }

    /// `tessera-replay verify --json`: exit code and the parsed output.
    fn verify(&self) -> (i32, serde_json::Value) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera-replay"));
        command
            .args(["verify", "--json", "--data-dir"])
            .arg(self.data_dir())
            .env("TESSERA_MASTER_KEY", MASTER_KEY)
            .env_remove("TESSERA_DATABASE_URL");
        if let Store::Postgres(db, _) = self {
            command.env("TESSERA_DATABASE_URL", &db.url);
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
            panic!(
                "not JSON: {stdout} / {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap_or(-1), json)
    }
}

fn assert_fails_at(result: (i32, serde_json::Value), position: u64, kind: &str) {
    let (code, json) = result;
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["violation"]["position"], position, "{json}");
    assert_eq!(json["violation"]["kind"], kind, "{json}");
}

async fn an_untouched_log_verifies_clean(postgres: bool) {
    let store = Store::fresh(postgres).await;
    let (code, json) = store.verify();
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["report"]["events"], EVENTS);
    assert_eq!(json["report"]["streams"], 4);
    assert_eq!(json["report"]["checkpoints"], 3, "at 10, 20 and 30 (close)");
}

async fn an_edited_payload_byte_fails_at_its_position(postgres: bool) {
    let store = Store::fresh(postgres).await;
    let sql = if postgres {
        "UPDATE events SET payload = set_byte(payload, 0, (get_byte(payload, 0) # 1)) WHERE global_position = 5"
    } else {
        "UPDATE events SET payload = unhex(CASE substr(hex(payload), 1, 2) WHEN '00' THEN '01' ELSE '00' END || substr(hex(payload), 3)) WHERE global_position = 5"
    };
    store.tamper(&[sql]).await;
    assert_fails_at(store.verify(), 5, "event_altered");
}

async fn a_deleted_event_fails_at_its_position(postgres: bool) {
    let store = Store::fresh(postgres).await;
    store
        .tamper(&["DELETE FROM events WHERE global_position = 7"])
        .await;
    assert_fails_at(store.verify(), 7, "position_gap");
}

async fn swapped_events_fail_at_the_first(postgres: bool) {
    let store = Store::fresh(postgres).await;
    store
        .tamper(&[
            "UPDATE events SET global_position = -1 WHERE global_position = 12",
            "UPDATE events SET global_position = 12 WHERE global_position = 13",
            "UPDATE events SET global_position = 13 WHERE global_position = -1",
        ])
        .await;
    assert_fails_at(store.verify(), 12, "event_altered");
}

/// The log opened in-process, for walking it with the library rather than the binary.
async fn open(store: &Store) -> Arc<dyn EventLog> {
    tessera_event_log::open(LogConfig::new(store.backend()))
        .await
        .unwrap()
}

/// Every position `ReadAhead` delivers with pages of `page` events, checking that each event's
/// work result stayed beside it.
async fn read_ahead_positions(log: &Arc<dyn EventLog>, page: usize) -> Vec<u64> {
    let mut pages = ReadAhead::start(log.clone(), page, |e| e.envelope.global_position);
    let mut positions = Vec::new();
    while let Some(next) = pages.next().await {
        let next = next.unwrap();
        assert!(!next.events.is_empty() && next.events.len() <= page);
        for (event, work) in next.events.iter().zip(&next.work) {
            assert_eq!(event.envelope.global_position, *work);
            positions.push(*work);
        }
        assert_eq!(next.events.len(), next.work.len());
    }
    positions
}

/// Pages are read in parallel by position range; around gaps (deleted events, one far beyond
/// the head) every event must still come out once, in order, and verification must stop at the
/// same first violation whatever the page size.
async fn read_ahead_pages_deliver_every_event_once_and_in_order(postgres: bool) {
    let store = Store::fresh(postgres).await;
    let crypto = Crypto::new(&MasterKey::from_env_value(MASTER_KEY).unwrap()).unwrap();
    let check = |message: &[u8], signature: &[u8]| crypto.verify_checkpoint(message, signature);
    let log = open(&store).await;
    let all: Vec<u64> = (1..=EVENTS).collect();
    for page in [1, 2, 3, 4, 7, 10, 29, 30, 31, 100] {
        assert_eq!(read_ahead_positions(&log, page).await, all, "page {page}");
        let report = verify_log(log.clone(), page, &check, |_| {}).await.unwrap();
        assert_eq!(report.unwrap().events, EVENTS, "page {page}");
    }

    store
        .tamper(&[
            "DELETE FROM events WHERE global_position IN (7, 8, 21)",
            "UPDATE events SET global_position = 1000 WHERE global_position = 30",
        ])
        .await;
    let log = open(&store).await;
    let mut left: Vec<u64> = all
        .iter()
        .copied()
        .filter(|p| ![7, 8, 21, 30].contains(p))
        .collect();
    left.push(1000);
    for page in [1, 2, 3, 4, 5, 6, 7, 10, 26, 27, 100] {
        assert_eq!(read_ahead_positions(&log, page).await, left, "page {page}");
        let violation = verify_log(log.clone(), page, &check, |_| {})
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(violation.position, 7, "page {page}");
        assert_eq!(violation.kind, ViolationKind::PositionGap, "page {page}");
    }
}

async fn a_cut_off_tail_fails_against_the_last_checkpoint(postgres: bool) {
    let store = Store::fresh(postgres).await;
    store
        .tamper(&["DELETE FROM events WHERE global_position > 25"])
        .await;
    assert_fails_at(store.verify(), 26, "truncated");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(false).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(true).await;
                }
            }
        )*
    };
}

on_both_backends!(
    an_untouched_log_verifies_clean,
    an_edited_payload_byte_fails_at_its_position,
    a_deleted_event_fails_at_its_position,
    swapped_events_fail_at_the_first,
    a_cut_off_tail_fails_against_the_last_checkpoint,
    read_ahead_pages_deliver_every_event_once_and_in_order,
);

#[test]
fn a_log_signed_with_another_key_fails_checkpoint_verification() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(Store::fresh(false));
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-replay"))
        .args(["verify", "--json", "--data-dir"])
        .arg(store.data_dir())
        .env(
            "TESSERA_MASTER_KEY",
            "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        )
        .env_remove("TESSERA_DATABASE_URL")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_fails_at(
        (output.status.code().unwrap_or(-1), json),
        10,
        "checkpoint_mismatch",
    );
}
