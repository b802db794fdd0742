//! Two processes' logs on one PostgreSQL database: a commit by one wakes the other's
//! subscriptions through `LISTEN`/`NOTIFY` within milliseconds, not at the next poll (200 ms),
//! and does so again after the listening connection was killed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tessera_event_log::subscription::POLL_INTERVAL;
use tessera_event_log::{Backend, EventLog, ExpectedVersion, LogConfig, StreamWrite, subscribe};
use tessera_event_schemas::events::samples;
use tessera_event_schemas::{EventMetadata, ProposedEvent, Timestamp};
use tessera_test_support::PgDatabase;
use uuid::Uuid;

fn new_id() -> Uuid {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn one_event() -> Vec<StreamWrite> {
    let samples = samples::current();
    let sample = &samples[0];
    vec![StreamWrite {
        stream_id: format!("s-{}", new_id()),
        expected: ExpectedVersion::NoStream,
        events: vec![ProposedEvent::new(
            sample,
            new_id(),
            Uuid::from_u128(7),
            Timestamp::from_micros(1),
            EventMetadata::system("notify-test"),
        )],
    }]
}

async fn two_logs() -> (PgDatabase, Arc<dyn EventLog>, Arc<dyn EventLog>) {
    let db = tokio::task::spawn_blocking(tessera_test_support::fresh_database)
        .await
        .unwrap();
    let open = || {
        tessera_event_log::open(LogConfig::new(Backend::Postgres {
            url: db.url.clone(),
        }))
    };
    let a = open().await.unwrap();
    let b = open().await.unwrap();
    (db, a, b)
}

/// Appends `rounds` single events on `writer` and returns how long each took to reach a
/// subscription of `follower`.
async fn delays(
    writer: &dyn EventLog,
    follower: &Arc<dyn EventLog>,
    rounds: usize,
) -> Vec<Duration> {
    let after = follower.head_position().await.unwrap();
    let mut events = std::pin::pin!(subscribe(follower.clone(), after, 100));
    let mut seen = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let outcome = writer.append(one_event()).await.unwrap();
        loop {
            let batch = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("the follower saw the append within 10 s")
                .unwrap()
                .unwrap();
            if batch.last().unwrap().envelope.global_position >= outcome.last_position {
                break;
            }
        }
        seen.push(start.elapsed());
        // Let the follower settle into waiting, as it does between real commits.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen.sort();
    seen
}

fn report(label: &str, delays: &[Duration]) {
    let median = delays[delays.len() / 2];
    let worst = delays[delays.len() - 1];
    eprintln!(
        "{label}: median {median:?}, worst {worst:?} over {}",
        delays.len()
    );
    // Polling alone would give a median of about half the poll interval.
    assert!(
        median < POLL_INTERVAL / 4,
        "{label}: the median delay {median:?} is a polling delay, not a notification's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_one_node_wakes_the_other_nodes_subscription_at_once() {
    let (_db, a, b) = two_logs().await;
    // Let both listeners connect.
    b.append(one_event()).await.unwrap();
    let seen = delays(&*a, &b, 30).await;
    report("a to b", &seen);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listen_connection_is_replaced_and_nothing_committed_meanwhile_is_missed() {
    let (db, a, b) = two_logs().await;
    b.append(one_event()).await.unwrap();
    let _ = delays(&*a, &b, 3).await;
    // Kill every session listening on the channel: both logs' listeners.
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()) AS t",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(killed >= 1, "no listening session was found to kill");
    // An append while the listener is away is still delivered (by the wake after the
    // reconnection, or by the poll), and later ones are announced again.
    a.append(one_event()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let head = a.head_position().await.unwrap();
    let mut events = std::pin::pin!(subscribe(b.clone(), head - 1, 100));
    let batch = tokio::time::timeout_at(deadline.into(), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(batch.last().unwrap().envelope.global_position, head);
    // Give the listener a moment to be back, then notifications must be prompt again.
    let back = Instant::now() + Duration::from_secs(10);
    loop {
        let active: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'")
                .fetch_one(&admin)
                .await
                .unwrap();
        if active >= 2 {
            break;
        }
        assert!(Instant::now() < back, "the listeners did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = delays(&*a, &b, 20).await;
    report("after the reconnection", &seen);
    admin.close().await;
    a.close().await;
    b.close().await;
}
