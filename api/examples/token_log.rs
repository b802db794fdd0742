//! Appends `token.issued` events for one client to an existing log, fast, for the restart
//! benchmark (`bench/restart.sh`): a log of millions of events takes minutes to build this way
//! instead of hours through the token endpoint.
//!
//! Each event is what the token endpoint records for a client-credentials grant (the client as
//! actor, a correlation and a causation id, the caller's address, a one-hour token signed with
//! the tenant's active key), appended 2,000 per append with 4 appends in flight, so the log's
//! writer batches them as it batches concurrent grants. Every 250,000 events the appends pause
//! for a second, so that the log's background checkpoint catches up and SQLite can start its
//! WAL over (under uninterrupted writes the WAL only grows). The log is opened as the server opens
//! it (checkpoints signed under the key derived from `<data-dir>/master-key`, or from
//! `TESSERA_MASTER_KEY` with `--database-url`), so `tessera-replay verify` still checks it. Run it
//! with the server stopped.
//!
//! ```sh
//! cargo run --release -p tessera-api --example token_log -- --data-dir DIR \
//!     --tenant-id UUID --client-id ID --kid KID --events 1000000
//! ```

// A benchmark fixture: it fails loudly rather than building something else, and it stamps
// events with the wall clock and makes up ids as the server does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark fixture outside the server: no injected clock or id source"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use tessera_crypto::{Crypto, MasterKey};
use tessera_event_log::{Backend, EventLog, ExpectedVersion, LogConfig, StreamWrite};
use tessera_event_schemas::events::{GrantType, TokenIssuedV2};
use tessera_event_schemas::{
    Actor, ActorKind, Event, EventMetadata, ProposedEvent, Timestamp, streams,
};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// The server's data directory (its `events.db` and `master-key`).
    #[arg(long)]
    data_dir: PathBuf,
    /// Append to PostgreSQL instead of `<data-dir>/events.db` (needs `TESSERA_MASTER_KEY`).
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long)]
    tenant_id: Uuid,
    #[arg(long)]
    client_id: String,
    /// The tenant's active signing key.
    #[arg(long)]
    kid: String,
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
}

/// Events per append, and appends in flight.
const PER_APPEND: u64 = 2_000;
const IN_FLIGHT: usize = 4;
/// Appends between pauses, and the pause.
const APPENDS_PER_PAUSE: u64 = 125;
const PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let master = match &args.database_url {
        Some(_) => {
            MasterKey::from_env_value(&std::env::var("TESSERA_MASTER_KEY").unwrap()).unwrap()
        }
        None => MasterKey::load_or_generate(&args.data_dir).unwrap().0,
    };
    let crypto = Crypto::new(&master).unwrap();
    let backend = match &args.database_url {
        Some(url) => Backend::Postgres { url: url.clone() },
        None => Backend::Sqlite {
            path: args.data_dir.join("events.db"),
        },
    };
    let mut config = LogConfig::new(backend);
    config.checkpoint_signer = Some(crypto.checkpoint_signer());
    let log = tessera_event_log::open(config).await.unwrap();
    let args = Arc::new(args);

    let started = Instant::now();
    let appends = args.events.div_ceil(PER_APPEND);
    let mut pending = tokio::task::JoinSet::new();
    for n in 0..appends {
        if pending.len() >= IN_FLIGHT {
            pending.join_next().await.unwrap().unwrap();
        }
        let count = PER_APPEND.min(args.events - n * PER_APPEND);
        let (log, args) = (log.clone(), args.clone());
        pending.spawn(async move { append(&*log, &args, count).await });
        if n % APPENDS_PER_PAUSE == APPENDS_PER_PAUSE - 1 {
            while let Some(done) = pending.join_next().await {
                done.unwrap();
            }
            eprintln!("{} events", (n + 1) * PER_APPEND);
            tokio::time::sleep(PAUSE).await;
        }
    }
    while let Some(done) = pending.join_next().await {
        done.unwrap();
    }
    let head = log.head_position().await.unwrap();
    log.close().await;
    println!(
        "appended {} token.issued events in {:.1} s; log head {head}",
        args.events,
        started.elapsed().as_secs_f64()
    );
}

async fn append(log: &dyn EventLog, args: &Args, count: u64) {
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let events = (0..count)
        .map(|_| {
            // As the endpoint records it: the client in the stream, the times in the envelope,
            // the issuer (the only audience) left out.
            let issued = TokenIssuedV2 {
                jti: Uuid::now_v7(),
                grant_type: GrantType::ClientCredentials,
                scopes: vec!["read".to_owned()],
                audience: Vec::new(),
                kid: args.kid.clone(),
                ttl_secs: 3600,
            };
            let metadata = EventMetadata {
                actor: Actor {
                    kind: ActorKind::Client,
                    id: args.client_id.clone(),
                    name: Some("machine".to_owned()),
                },
                correlation_id: Uuid::now_v7().to_string(),
                causation_id: Some(Uuid::now_v7()),
                source_ip: Some("127.0.0.1".to_owned()),
                user_agent: None,
            };
            ProposedEvent::new(
                &Event::TokenIssued(issued),
                Uuid::now_v7(),
                args.tenant_id,
                now,
                metadata,
            )
        })
        .collect();
    log.append(vec![StreamWrite {
        stream_id: streams::client_tokens(args.tenant_id, &args.client_id),
        expected: ExpectedVersion::Any,
        events,
    }])
    .await
    .unwrap();
}
