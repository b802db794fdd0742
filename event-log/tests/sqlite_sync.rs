//! The embedded log answers an append only once its batch's WAL is synced, and walks of the
//! log never show a batch that is not. The writer commits with `synchronous=OFF` and a sync
//! thread `fdatasync`s the WAL afterwards, opening the WAL file for each sync. This test takes
//! the sync away by lowering the process's open-file limit so that this open fails (nextest runs
//! each test in a process of its own), while SQLite keeps using the descriptors it already has,
//! and checks what callers and readers see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tessera_event_log::{AppendError, Backend, ExpectedVersion, LogConfig, StreamWrite};
use tessera_event_schemas::events::samples;
use tessera_event_schemas::{EventMetadata, ProposedEvent, Timestamp};
use uuid::Uuid;

fn write(stream: &str) -> StreamWrite {
    // Fresh event ids without a clock or a random source: 1, 2, 3, ... in this process.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let sample = &samples::current()[0];
    StreamWrite {
        stream_id: stream.to_owned(),
        expected: ExpectedVersion::Any,
        events: vec![ProposedEvent::new(
            sample,
            Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed))),
            Uuid::from_u128(7),
            Timestamp::from_micros(1_800_000_000_000_000),
            EventMetadata::system("sync-test"),
        )],
    }
}

/// Sets the soft open-file limit to 0, so that no `open` succeeds while every descriptor
/// already open keeps working, and returns the previous limit.
fn forbid_new_files() -> Rlimit {
    let previous = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(0),
            maximum: previous.maximum,
        },
    )
    .unwrap();
    assert!(std::fs::File::open("/proc/self/status").is_err());
    previous
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_whose_wal_cannot_be_synced_fails_and_stays_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sqlite");
    let log = tessera_event_log::open(LogConfig::new(Backend::Sqlite { path }))
        .await
        .unwrap();

    // A synced append: answered, readable, counted in the head.
    let first = log.append(vec![write("a")]).await.unwrap();
    let synced_head = log.head_position().await.unwrap();
    assert_eq!(synced_head, first.last_position);
    assert_eq!(log.read_all(0, 100).await.unwrap().len(), 1);
    assert_eq!(log.read_all_bulk(0, 100).await.unwrap().len(), 1);

    let limit = forbid_new_files();
    // The next batch commits through the writer's open WAL descriptor, but its sync cannot
    // open the WAL: its caller gets an error, not an acknowledgement.
    let failed = log.append(vec![write("b")]).await;
    // And so does every later one, even with files allowed again: a failed fsync is never
    // retried into a false success.
    let after = log.append(vec![write("c")]).await;
    // Files are allowed again before anything reads: a reader may need a connection of its own
    // (another task of the log can hold the idle one), and a failed open is not what this test
    // is about. The failed sync stays failed whatever the limit is now.
    setrlimit(Resource::Nofile, limit).unwrap();
    // Readers walking the log, and the head, stay at the last durable batch although the
    // store holds the committed batches.
    let head = log.head_position().await.unwrap();
    let all = log.read_all(0, 100).await;
    let bulk = log.read_all_bulk(0, 100).await;

    match failed {
        Err(AppendError::Unavailable(message)) => {
            assert!(message.contains("durable"), "unexpected message: {message}")
        }
        other => panic!("an unsynced append must fail, got {other:?}"),
    }
    assert!(
        matches!(after, Err(AppendError::Unavailable(_))),
        "{after:?}"
    );
    assert!(
        matches!(
            log.append(vec![write("d")]).await,
            Err(AppendError::Unavailable(_))
        ),
        "appends keep failing after the sync failure"
    );
    assert_eq!(head, synced_head);
    let all = all.unwrap();
    assert_eq!(all.len(), 1, "read_all shows only the durable event");
    assert_eq!(bulk.unwrap(), all);
    assert!(log.recent(0, 100).is_none_or(|events| events.len() <= 1));
    log.close().await;
}
