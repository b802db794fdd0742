//! The refresh scheduler's memory (issue 20): `vault_refresh::Schedule` folds the
//! `credential.*` events of 100,000 refreshable connections, and the growth of the resident set
//! is what it holds (per connection too); criterion times the fold of one connection's event.
//!
//! `cargo bench -p tessera-api --bench refresh_schedule`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_api::vault_refresh::Schedule;
use tessera_event_schemas::events::{CredentialKind, CredentialStoredV1, OAuthAppSource};
use tessera_event_schemas::{Event, Timestamp};
use uuid::Uuid;

/// The process's resident memory in bytes (`/proc/self/statm`, 4 KiB pages). The workspace
/// forbids unsafe code, so no counting allocator: the schedule's growth is large enough to
/// read from the resident set.
fn resident() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse::<i64>().ok())
        .unwrap_or(0)
        * 4096
}

const CONNECTIONS: usize = 100_000;
const LEAD_SECS: i64 = 900;

fn stored(n: usize) -> Event {
    let issued = 1_767_225_600_000_000 + n as i64;
    Event::CredentialStored(CredentialStoredV1 {
        kind: CredentialKind::Oauth,
        sealed: String::new().into(),
        key_version: 1,
        scopes: Vec::new(),
        issued_at: Timestamp::from_micros(issued),
        expires_at: Some(Timestamp::from_micros(issued + 3_600_000_000)),
        refreshable: true,
        app: OAuthAppSource::Platform,
    })
}

fn memory(c: &mut Criterion) {
    // Tenants of 20 connections each, with integration names as long as seed 004's.
    let keys: Vec<(Uuid, String)> = (0..CONNECTIONS)
        .map(|n| {
            (
                Uuid::from_u128((n / 20) as u128),
                format!("integration-{:04}", n % 20),
            )
        })
        .collect();
    let events: Vec<Event> = (0..CONNECTIONS).map(stored).collect();
    let before = resident();
    let mut schedule = Schedule::default();
    for ((tenant_id, integration), event) in keys.iter().zip(&events) {
        schedule.fold(*tenant_id, integration, event, LEAD_SECS);
    }
    let held = resident() - before;
    println!(
        "refresh schedule: {} connections hold {:.1} MB, {} bytes a connection",
        schedule.len(),
        held as f64 / 1e6,
        held / schedule.len() as i64
    );
    assert_eq!(schedule.len(), CONNECTIONS);
    c.bench_function("schedule_fold_one_refresh_of_100k", |b| {
        let mut n = 0;
        b.iter(|| {
            let (tenant_id, integration) = &keys[n % CONNECTIONS];
            schedule.fold(
                *tenant_id,
                integration,
                black_box(&events[n % CONNECTIONS]),
                LEAD_SECS,
            );
            n += 1;
        });
    });
}

criterion_group!(benches, memory);
criterion_main!(benches);
