//! The two backends the integration tests run on: embedded SQLite (files in a temp dir) and
//! PostgreSQL (a throwaway database from `tessera-test-support`).

#![allow(dead_code)]

use std::sync::Arc;

use tessera_event_log::{Backend, EventLog, LogConfig};
use tessera_projections::ReadStore;
use tessera_test_support::PgDatabase;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Keeps a backend's storage alive as long as the test needs it.
pub enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Db(#[allow(dead_code)] PgDatabase),
}

pub async fn fresh_pg() -> PgDatabase {
    tokio::task::spawn_blocking(tessera_test_support::fresh_database)
        .await
        .expect("a throwaway PostgreSQL database")
}

/// An empty event log of `kind`, in storage of its own.
pub async fn open_log(kind: Kind) -> (Arc<dyn EventLog>, Keep) {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = tessera_event_log::open(LogConfig::new(Backend::Sqlite {
                path: dir.path().join("log.db"),
            }))
            .await
            .expect("open log");
            (log, Keep::Dir(dir))
        }
        Kind::Postgres => {
            let db = fresh_pg().await;
            let log = tessera_event_log::open(LogConfig::new(Backend::Postgres {
                url: db.url.clone(),
            }))
            .await
            .expect("open log");
            (log, Keep::Db(db))
        }
    }
}

/// An empty read store of `kind`, in storage of its own.
pub async fn open_store(kind: Kind) -> (ReadStore, Keep) {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = ReadStore::open_sqlite(dir.path().join("readmodels.db"))
                .await
                .expect("open store");
            (store, Keep::Dir(dir))
        }
        Kind::Postgres => {
            let db = fresh_pg().await;
            let store = ReadStore::open_postgres(&db.url).await.expect("open store");
            (store, Keep::Db(db))
        }
    }
}
