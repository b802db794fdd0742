//! Several nodes on one KurrentDB log stream (feature `kurrentdb`), on the in-process stand-in
//! server: each node plans on what it has seen, and the stream's expected revision makes a node
//! that missed another's append catch up and plan again. So concurrent writers through
//! different nodes lose no update, decide a "no stream" append once, and leave the log dense.

#![cfg(feature = "kurrentdb")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tessera_event_log::kurrentdb::{KurrentDbLog, MemoryKurrentDb};
use tessera_event_log::{
    AppendError, Backend, EventLog, ExpectedVersion, LogConfig, MemoryStore, StreamWrite,
};
use tessera_event_schemas::events::samples;
use tessera_event_schemas::{EventMetadata, ProposedEvent, Timestamp};
use uuid::Uuid;

fn new_id() -> Uuid {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn event() -> ProposedEvent {
    let samples = samples::current();
    ProposedEvent::new(
        &samples[0],
        new_id(),
        Uuid::from_u128(0x7e55),
        Timestamp::from_micros(1_800_000_000_000_000),
        EventMetadata::system("nodes".to_owned()),
    )
}

async fn node(server: &MemoryKurrentDb) -> Arc<dyn EventLog> {
    // The backend in the config is not used by `open_on`.
    let config = LogConfig::new(Backend::Memory {
        store: MemoryStore::default(),
    });
    Arc::new(
        KurrentDbLog::open_on(Arc::new(server.clone()), "tessera-log", config)
            .await
            .unwrap(),
    )
}

/// Appends one event to `stream` after its current version as `log` sees it, again on each
/// conflict, as a command handler does.
async fn increment(log: &Arc<dyn EventLog>, stream: &str) {
    loop {
        let version = log
            .read_stream(stream, 0, usize::MAX)
            .await
            .unwrap()
            .last()
            .map_or(0, |e| e.envelope.stream_version);
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        let write = StreamWrite {
            stream_id: stream.to_owned(),
            expected,
            events: vec![event()],
        };
        match log.append(vec![write]).await {
            Ok(_) => return,
            Err(AppendError::Conflict { .. }) => continue,
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_through_three_nodes_lose_no_update_and_leave_no_gap() {
    let server = MemoryKurrentDb::new();
    let nodes = [
        node(&server).await,
        node(&server).await,
        node(&server).await,
    ];
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let log = nodes[writer % nodes.len()].clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..15 {
                increment(&log, "t/counter/1").await;
                // Writes to a stream of its own interleave with the contended one.
                increment(&log, &format!("t/own/{writer}")).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = 6 * 15 * 2;
    for log in &nodes {
        assert_eq!(log.head_position().await.unwrap(), total);
        let all = log.read_all(0, usize::MAX).await.unwrap();
        let positions: Vec<u64> = all.iter().map(|e| e.envelope.global_position).collect();
        assert_eq!(positions, (1..=total).collect::<Vec<_>>());
        let counter = log.read_stream("t/counter/1", 0, usize::MAX).await.unwrap();
        let versions: Vec<u64> = counter.iter().map(|e| e.envelope.stream_version).collect();
        assert_eq!(versions, (1..=90).collect::<Vec<_>>(), "an update was lost");
        // The chain links every event to the one before it, across nodes' appends.
        for pair in all.windows(2) {
            assert_eq!(
                pair[1].envelope.log_hash,
                tessera_event_schemas::hash::log_link(
                    &pair[0].envelope.log_hash,
                    pair[1].envelope.global_position,
                    &pair[1].envelope.hash
                ),
            );
        }
        for recorded in &all {
            assert_eq!(recorded.computed_hash(), recorded.envelope.hash);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_stream_append_raced_through_two_nodes_is_decided_once() {
    for round in 0..20 {
        let server = MemoryKurrentDb::new();
        let (a, b) = (node(&server).await, node(&server).await);
        let stream = format!("t/reservation/{round}");
        let write = |stream: &str| StreamWrite {
            stream_id: stream.to_owned(),
            expected: ExpectedVersion::NoStream,
            events: vec![event()],
        };
        let (first, second) = tokio::join!(
            a.append(vec![write(&stream)]),
            b.append(vec![write(&stream)])
        );
        let won: BTreeSet<bool> = [first.is_ok(), second.is_ok()].into();
        assert_eq!(won, BTreeSet::from([true, false]), "round {round}");
        let lost = if first.is_ok() { second } else { first };
        assert!(
            matches!(lost, Err(AppendError::Conflict { actual: 1, .. })),
            "round {round}: {lost:?}"
        );
        assert_eq!(a.head_position().await.unwrap(), 1);
    }
}
