//! Event log throughput on both backends: appends with 1 and 64 concurrent writers (each writer
//! appending single-event appends to its own stream), and `read_all` / `read_all_bulk` paging.
//!
//! Durability is never relaxed here: SQLite syncs every batch's WAL before answering it (the
//! log's sync thread), PostgreSQL runs with `fsync=on` and `synchronous_commit=on`, so the
//! figures are what a production append costs.
//! PostgreSQL comes from `tessera-test-support` (a throwaway cluster, or
//! `TESSERA_TEST_DATABASE_URL`). Run with `cargo bench -p tessera-event-log --bench log`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tessera_event_log::{Backend, EventLog, ExpectedVersion, LogConfig, StreamWrite};
use tessera_event_schemas::events::samples;
use tessera_event_schemas::{EventMetadata, ProposedEvent, Timestamp};
use uuid::Uuid;

/// The allocator of the binaries that run this path (`tessera`, `tessera-replay`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const READ_PAGE: usize = 1000;

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures the log with ids like the server's, from the system source"
)]
fn template() -> ProposedEvent {
    let sample = samples::current().into_iter().next().unwrap();
    ProposedEvent::new(
        &sample,
        Uuid::now_v7(),
        Uuid::from_u128(1),
        Timestamp::from_micros(1_800_000_000_000_000),
        EventMetadata::system("bench"),
    )
}

/// Appends `total` events split over `writers` concurrent tasks, `per_append` events per
/// append call; returns the elapsed time.
async fn append_concurrently(
    log: Arc<dyn EventLog>,
    writers: u64,
    per_append: u64,
    total: u64,
    template: Arc<ProposedEvent>,
) -> Duration {
    let per_writer = total.div_ceil(writers * per_append);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("bench-{writers}-{w}");
            for _ in 0..per_writer {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "a benchmark measures the log with ids like the server's, from the system source"
                )]
                let events = (0..per_append)
                    .map(|_| {
                        let mut event = (*template).clone();
                        event.event_id = Uuid::now_v7();
                        event
                    })
                    .collect();
                log.append(vec![StreamWrite {
                    stream_id: stream.clone(),
                    expected: ExpectedVersion::Any,
                    events,
                }])
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, backend: Backend) {
    let log = rt
        .block_on(tessera_event_log::open(LogConfig::new(backend)))
        .unwrap();
    let template = Arc::new(template());

    let mut group = c.benchmark_group(format!("{name}/append"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    // One event per append shows group commit across writers; ten per append (a command that
    // writes a few events to each of several streams) shows what one fsync can carry.
    for (writers, per_append) in [(1u64, 1u64), (64, 1), (1, 10), (64, 10)] {
        let id = BenchmarkId::new(
            format!("writers_{writers}"),
            format!("events_per_append_{per_append}"),
        );
        group.bench_function(id, |b| {
            b.to_async(rt).iter_custom(|iters| {
                append_concurrently(log.clone(), writers, per_append, iters, template.clone())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("{name}/read_all"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(READ_PAGE as u64));
    let head = rt.block_on(log.head_position()).unwrap();
    // `read_all` serves the server's point reads; `read_all_bulk` the walks over the log
    // (subscriptions catching up, rebuilds, `tessera-replay`).
    for bulk in [false, true] {
        let id = if bulk { "bulk_page" } else { "page" };
        group.bench_function(BenchmarkId::new(id, READ_PAGE), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let log = log.clone();
                async move {
                    let mut after = 0;
                    let start = Instant::now();
                    for _ in 0..iters {
                        if after + READ_PAGE as u64 > head {
                            after = 0;
                        }
                        let page = if bulk {
                            log.read_all_bulk(after, READ_PAGE).await.unwrap()
                        } else {
                            log.read_all(after, READ_PAGE).await.unwrap()
                        };
                        assert_eq!(page.len(), READ_PAGE);
                        after += READ_PAGE as u64;
                    }
                    start.elapsed()
                }
            })
        });
    }
    group.finish();
    rt.block_on(log.close());
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    bench_backend(
        c,
        &rt,
        "sqlite",
        Backend::Sqlite {
            path: dir.path().join("bench.sqlite"),
        },
    );

    let db = tessera_test_support::fresh_database();
    bench_backend(
        c,
        &rt,
        "postgres",
        Backend::Postgres {
            url: db.url.clone(),
        },
    );
}

criterion_group!(log, benches);
criterion_main!(log);
