//! The key table on every backend: a stored key reads back and survives a reopen, the first of
//! two inserts wins, and a destroyed key is gone, on SQLite down to the bytes of its files.

// Helpers outside `#[test]` functions, which the allow-*-in-tests settings do not cover;
// failing loudly is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use tessera_event_log::keys::{self, KEYS_FILE, KeyTable};
use tessera_event_log::{Backend, MemoryStore};
use tessera_test_support::PgDatabase;
use uuid::Uuid;

const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
const PERSON: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);
const OTHER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0003);

/// A recognisable 60-byte value (as long as a sealed 32-byte key) to search the files for.
fn sealed(byte: u8) -> Vec<u8> {
    (0..60u8).map(|i| byte ^ i.wrapping_mul(37)).collect()
}

/// Runs the table's contract on `backend`, reopening it once.
async fn contract(backend: &Backend) -> Arc<dyn KeyTable> {
    let table = keys::open(backend).await.unwrap();
    assert_eq!(table.get(TENANT, PERSON).await.unwrap(), None);
    assert_eq!(
        table.insert(TENANT, PERSON, &sealed(1)).await.unwrap(),
        sealed(1)
    );
    // A second insert (a retried creation) keeps the first key.
    assert_eq!(
        table.insert(TENANT, PERSON, &sealed(2)).await.unwrap(),
        sealed(1)
    );
    table.insert(TENANT, OTHER, &sealed(3)).await.unwrap();
    table.close().await;

    let table = keys::open(backend).await.unwrap();
    assert_eq!(table.get(TENANT, PERSON).await.unwrap(), Some(sealed(1)));
    assert!(table.destroy(TENANT, PERSON).await.unwrap());
    assert!(!table.destroy(TENANT, PERSON).await.unwrap());
    assert_eq!(table.get(TENANT, PERSON).await.unwrap(), None);
    // Other people's keys are untouched, and a key of one tenant is not found in another.
    assert_eq!(table.get(TENANT, OTHER).await.unwrap(), Some(sealed(3)));
    assert_eq!(table.get(OTHER, OTHER).await.unwrap(), None);
    table
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Every file of `dir` (the key table's database, its WAL and shared memory).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn sqlite_key_table_keeps_keys_and_leaves_no_byte_of_a_destroyed_one() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite {
        path: dir.path().join("events.db"),
    };
    let table = contract(&backend).await;
    assert!(dir.path().join(KEYS_FILE).exists());
    // While the table is still open (its WAL and shared memory files exist), no file holds
    // the destroyed key, and the kept one is still there, so the search does find keys.
    let found: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|(_, bytes)| contains(bytes, &sealed(1)))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(found, Vec::<String>::new());
    assert!(
        files(dir.path())
            .iter()
            .any(|(_, bytes)| contains(bytes, &sealed(3)))
    );
    table.close().await;
}

#[tokio::test]
async fn postgres_key_table_keeps_keys_and_forgets_a_destroyed_one() {
    let db: PgDatabase = tokio::task::spawn_blocking(tessera_test_support::fresh_database)
        .await
        .unwrap();
    let backend = Backend::Postgres {
        url: db.url.clone(),
    };
    contract(&backend).await.close().await;
}

#[tokio::test]
async fn memory_key_table_keeps_keys_across_a_reopen_of_its_store() {
    let backend = Backend::Memory {
        store: MemoryStore::default(),
    };
    contract(&backend).await;
}
