//! Builds a large, realistic event log for benchmarking `tessera-replay` (`bench/replay.sh`).
//!
//! The history is the catch-up benchmark's workload (`projections/tests/support/workload.rs`):
//! 17 global rounds over `--tenants` tenants (creation, updates, settings, activation, signing
//! key rotations and retirements, API keys issued, used and revoked, suspensions, cancellations),
//! about 15.4 events per tenant, appended 400 tenants per append. The log is written the way the
//! server writes it, with signed checkpoints every 1,024 events and on close under the key
//! derived from `<data-dir>/master-key` (created if missing), so `verify` checks everything.
//!
//! ```sh
//! cargo run --release -p tessera-replay-tools --example bench_log -- \
//!     --data-dir /tmp/replay-bench --tenants 84000 [--database-url postgres://...]
//! ```
//!
//! Refuses to write into a log that already holds events.

// A benchmark fixture: it fails loudly rather than building something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../projections/tests/support/workload.rs"]
mod workload;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use tessera_crypto::{Crypto, MasterKey};
use tessera_event_log::{Backend, LogConfig};

#[derive(Parser)]
struct Args {
    /// Where `events.db` and `master-key` go (the master key also with --database-url).
    #[arg(long)]
    data_dir: PathBuf,
    /// Write the log to PostgreSQL instead of `<data-dir>/events.db`.
    #[arg(long)]
    database_url: Option<String>,
    /// Tenants in the history; each brings about 15.4 events (84,000: 1,295,700 events).
    #[arg(long, default_value_t = 84_000)]
    tenants: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir).unwrap();
    let (master, _) = MasterKey::load_or_generate(&args.data_dir).unwrap();
    let crypto = Crypto::new(&master).unwrap();
    let backend = match args.database_url {
        Some(url) => Backend::Postgres { url },
        None => Backend::Sqlite {
            path: args.data_dir.join("events.db"),
        },
    };
    let mut config = LogConfig::new(backend);
    config.checkpoint_signer = Some(crypto.checkpoint_signer());
    let log = tessera_event_log::open(config).await.unwrap();
    let head = log.head_position().await.unwrap();
    assert_eq!(head, 0, "the log already holds {head} events");

    let started = Instant::now();
    let mut last = 0;
    // One round at a time keeps memory bounded; the log is the same as with all rounds built
    // first (the history keeps counting event ids and times across `append_to`).
    let mut history = workload::History::new();
    for round in 0..workload::ROUNDS {
        history.rounds(0..args.tenants, round..round + 1, 400);
        last = history.append_to(&log).await.max(last);
        eprintln!("round {round}: log head {last}");
    }
    log.close().await;
    println!(
        "{last} events, {} tenants, written in {:.1} s",
        args.tenants,
        started.elapsed().as_secs_f64()
    );
}
