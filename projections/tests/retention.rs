//! The audit trail's retention, on both backends: expired rows leave `rm_audit` in batches, the
//! other read models keep everything, and a rebuild does not bring expired rows back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::backend::{Kind, open_log, open_store};
use support::workload::{self, EPOCH_MICROS, History};
use tessera_event_schemas::Timestamp;
use tessera_projections::{AuditFilter, AuditRetention, ProjectionRuntime, ReadStore, rebuild};

const DAY: Duration = Duration::from_secs(86_400);

/// Every audit row's position, oldest first, as the API lists them (no retention filter).
async fn audit_positions(store: &ReadStore) -> Vec<u64> {
    let mut positions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .audit(&AuditFilter::default(), 500, cursor.as_deref())
            .await
            .unwrap();
        positions.extend(page.items.iter().map(|row| row.position));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    positions.reverse();
    positions
}

async fn expired_audit_rows_leave_in_batches_and_a_rebuild_does_not_bring_them_back(kind: Kind) {
    let (log, _log_keep) = open_log(kind).await;
    let (store, _store_keep) = open_store(kind).await;
    let runtime = ProjectionRuntime::start(log.clone(), store.clone())
        .await
        .unwrap();
    // Events are 1 ms apart from EPOCH_MICROS (see `History::propose`).
    let mut history = History::new();
    history.rounds(0..4, 0..workload::ROUNDS, 3);
    let head = history.append_to(&log).await;
    runtime
        .wait_for(head, Duration::from_secs(60))
        .await
        .unwrap();
    runtime.shutdown().await;
    assert_eq!(
        audit_positions(&store).await,
        (1..=head).collect::<Vec<_>>()
    );

    // A day's retention judged a day after the middle event: the first half has expired.
    let kept_from = head / 2 + 1;
    let cutoff_micros = EPOCH_MICROS + i64::try_from(kept_from - 1).unwrap() * 1_000;
    let now = Timestamp::from_micros(cutoff_micros).plus_seconds(86_400);
    let retention = AuditRetention::new(DAY, Arc::new(move || now));
    assert_eq!(retention.cutoff(), Timestamp::from_micros(cutoff_micros));
    let store = store.with_audit_retention(Some(retention.clone()));
    let tables_before = store.snapshot().await.unwrap();

    let mut sweeps = Vec::new();
    loop {
        let deleted = store
            .delete_expired_audit(retention.cutoff(), 7)
            .await
            .unwrap();
        if deleted == 0 {
            break;
        }
        sweeps.push(deleted);
    }
    assert!(sweeps.iter().all(|&n| n <= 7), "{sweeps:?}");
    assert_eq!(sweeps.iter().sum::<usize>() as u64, kept_from - 1);
    let kept: Vec<u64> = (kept_from..=head).collect();
    assert_eq!(audit_positions(&store).await, kept);
    // Only the audit trail forgets; the snapshot already left the expired rows out.
    assert_eq!(store.snapshot().await.unwrap(), tables_before);

    // A rebuild with the same retention folds every event into the tables but writes no audit
    // row for the expired ones, so it equals the swept store.
    let (fresh, _fresh_keep) = open_store(kind).await;
    let fresh = fresh.with_audit_retention(Some(retention));
    let stats = rebuild(log.as_ref(), &fresh).await.unwrap();
    assert_eq!(stats.events, head);
    assert_eq!(audit_positions(&fresh).await, kept);
    assert_eq!(
        fresh.snapshot().await.unwrap(),
        store.snapshot().await.unwrap()
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_audit_rows_leave_in_batches_and_a_rebuild_does_not_bring_them_back() {
        super::expired_audit_rows_leave_in_batches_and_a_rebuild_does_not_bring_them_back(
            super::Kind::Sqlite,
        )
        .await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_audit_rows_leave_in_batches_and_a_rebuild_does_not_bring_them_back() {
        super::expired_audit_rows_leave_in_batches_and_a_rebuild_does_not_bring_them_back(
            super::Kind::Postgres,
        )
        .await;
    }
}
