//! Catch-up speed: how many events per second a full rebuild folds into the SQL read models.
//!
//! Prefills a log with a realistic history (about 100,000 events over 8,400 tenants: creation,
//! updates, settings, activation, key rotations and retirements, suspensions, cancellations,
//! API keys issued and revoked; see `tests/support/workload.rs`), then measures `rebuild` into
//! a read store, which reads the log, decodes, folds and writes, exactly as the live projector
//! does while catching up. Runs against SQLite, and against PostgreSQL when
//! `tessera-test-support` can provide one.
//!
//! `cargo bench -p tessera-projections --bench catch_up`

// Benchmark setup fails loudly rather than measuring something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/workload.rs"]
mod workload;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tessera_event_log::{Backend, EventLog, LogConfig};
use tessera_projections::{ReadStore, rebuild};

/// The allocator of the binaries that run this path (`tessera`, `tessera-replay`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TENANTS: usize = 8_400;

async fn prefill(log: &Arc<dyn EventLog>) -> u64 {
    let mut history = workload::History::new();
    history.rounds(0..TENANTS, 0..workload::ROUNDS, 400);
    history.append_to(log).await
}

/// `runtime` must be the one the log and store were opened on: their background tasks live
/// there.
fn bench_backend(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    log: Arc<dyn EventLog>,
    store: ReadStore,
) {
    let events = runtime.block_on(prefill(&log));
    let mut group = c.benchmark_group("catch_up");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(events));
    group.bench_function(format!("rebuild_{name}_{events}_events"), |b| {
        b.to_async(runtime).iter(|| async {
            let stats = rebuild(log.as_ref(), &store).await.unwrap();
            assert_eq!(stats.events, events);
        });
    });
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (log, store) = runtime.block_on(async {
        let log = tessera_event_log::open(LogConfig::new(Backend::Sqlite {
            path: dir.path().join("log.db"),
        }))
        .await
        .unwrap();
        let store = ReadStore::open_sqlite(dir.path().join("readmodels.db"))
            .await
            .unwrap();
        (log, store)
    });
    bench_backend(c, &runtime, "sqlite", log, store);
}

fn postgres(c: &mut Criterion) {
    let db = match tessera_test_support::try_fresh_database() {
        Ok(db) => db,
        Err(message) => {
            eprintln!("skipping the PostgreSQL catch-up benchmark: {message}");
            return;
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (log, store) = runtime.block_on(async {
        let log = tessera_event_log::open(LogConfig::new(Backend::Postgres {
            url: db.url.clone(),
        }))
        .await
        .unwrap();
        let store = ReadStore::open_postgres(&db.url).await.unwrap();
        (log, store)
    });
    bench_backend(c, &runtime, "postgres", log, store);
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
