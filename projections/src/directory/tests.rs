//! The directory's fold, its bounds, and its snapshots: that a snapshot restores exactly the
//! state it was taken from, that a start folds only the log after it, and that a damaged,
//! foreign or outdated snapshot is refused.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tessera_event_log::{Backend, EventLog, ExpectedVersion, LogConfig, MemoryStore, StreamWrite};
use tessera_event_schemas::events::{TokenRevokedV1, samples};
use tessera_event_schemas::{Event, EventMetadata, ProposedEvent, Timestamp, streams};
use uuid::Uuid;

use super::snapshot::{DirectorySnapshots, FORMAT, Unusable};
use super::*;

/// The samples' tenant and client.
const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
const CLIENT: &str = "0193a000-0000-7000-8000-00000000c11e";
/// The time of the first event (before the samples' token expires).
const START_MICROS: i64 = 1_795_000_000_000_000;

fn sample(event_type: &str) -> Event {
    samples::current()
        .into_iter()
        .find(|e| e.event_type() == event_type)
        .unwrap()
}

async fn memory_log() -> Arc<dyn EventLog> {
    tessera_event_log::open(LogConfig::new(Backend::Memory {
        store: MemoryStore::default(),
    }))
    .await
    .unwrap()
}

/// Appends `events` to `stream`, one second apart from `at_micros` on, with ids from `first_id`.
async fn append(
    log: &Arc<dyn EventLog>,
    stream: String,
    events: &[Event],
    first_id: u128,
    at: i64,
) {
    let events = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            ProposedEvent::new(
                event,
                Uuid::from_u128(first_id + i as u128),
                TENANT,
                Timestamp::from_micros(at + i as i64 * 1_000_000),
                EventMetadata::system("directory-test"),
            )
        })
        .collect();
    log.append(vec![StreamWrite {
        stream_id: stream,
        expected: ExpectedVersion::Any,
        events,
    }])
    .await
    .unwrap();
}

/// A tenant through its key ring and lifecycle, a client through its life, and a token issued
/// and revoked: every event the directory folds.
async fn sample_log() -> Arc<dyn EventLog> {
    sample_log_with_ids_from(0).await
}

/// The sample log with other event ids (so another chain of hashes) when `base` is not 0.
async fn sample_log_with_ids_from(base: u128) -> Arc<dyn EventLog> {
    let log = memory_log().await;
    let tenant_events: Vec<Event> = [
        "tenant.created",
        "tenant.updated",
        "tenant.settings_changed",
        "tenant.activated",
        "tenant.suspended",
        "tenant.reactivated",
        "tenant.signing_key_rotated",
        "tenant.signing_key_retired",
    ]
    .into_iter()
    .map(sample)
    .collect();
    append(
        &log,
        streams::tenant(TENANT),
        &tenant_events,
        base + 1,
        START_MICROS,
    )
    .await;
    let client_events: Vec<Event> = [
        "oauth_client.registered",
        "oauth_client.updated",
        "oauth_client.secret_regenerated",
    ]
    .into_iter()
    .map(sample)
    .collect();
    append(
        &log,
        streams::oauth_client(TENANT, CLIENT),
        &client_events,
        base + 100,
        START_MICROS + 100_000_000,
    )
    .await;
    let token_events = [sample("token.issued"), sample("token.revoked")];
    append(
        &log,
        streams::client_tokens(TENANT, CLIENT),
        &token_events,
        base + 200,
        START_MICROS + 200_000_000,
    )
    .await;
    log
}

async fn fold_all(log: &Arc<dyn EventLog>) -> Arc<Directory> {
    let directory = Directory::new();
    directory
        .apply(&log.read_all(0, 10_000).await.unwrap())
        .unwrap();
    directory
}

fn state(directory: &Directory) -> Inner {
    directory.read().clone()
}

fn encoded(directory: &Directory) -> Vec<u8> {
    directory.snapshot().unwrap().1
}

#[tokio::test]
async fn the_fold_keeps_tenants_clients_and_revocations_but_no_issued_token() {
    let log = sample_log().await;
    let directory = fold_all(&log).await;
    let tenant = directory.tenant_by_slug("acme-corp").unwrap();
    assert_eq!(tenant.tenant.as_ref().unwrap().keys.len(), 2);
    let client = directory.client(TENANT, CLIENT).unwrap();
    assert_eq!(client.client.name, "Billing worker v2");
    let revoked = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0003);
    assert!(directory.is_revoked(&revoked));
    assert_eq!(directory.revocations(), 1);
    assert_eq!(directory.position(), 13);
}

#[tokio::test]
async fn a_revocation_is_forgotten_once_its_token_has_expired() {
    let log = sample_log().await;
    let revoked = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0003);
    // An event recorded after the token's expiry (and past the next sweep) drops the entry.
    let later = 1_795_003_800_000_000 + PRUNE_EVERY_MICROS;
    append(
        &log,
        streams::tenant(TENANT),
        &[sample("tenant.updated")],
        300,
        later,
    )
    .await;
    let directory = fold_all(&log).await;
    assert!(!directory.is_revoked(&revoked));
    assert_eq!(directory.revocations(), 0);
    // A revocation of an already expired token is not even kept.
    let expired = TokenRevokedV1 {
        jti: Uuid::from_u128(9),
        client_id: CLIENT.into(),
        expires_at: Timestamp::from_micros(START_MICROS),
    };
    append(
        &log,
        streams::client_tokens(TENANT, CLIENT),
        &[Event::TokenRevoked(expired)],
        301,
        later + 1_000_000,
    )
    .await;
    directory
        .apply(&log.read_all(directory.position(), 10).await.unwrap())
        .unwrap();
    assert!(!directory.is_revoked(&Uuid::from_u128(9)));
}

#[tokio::test]
async fn a_snapshot_restores_exactly_the_state_it_was_taken_from() {
    let log = sample_log().await;
    let directory = fold_all(&log).await;
    directory.note_revoked(Uuid::from_u128(77), Timestamp::from_micros(i64::MAX));
    let (position, bytes) = directory.snapshot().unwrap();
    assert_eq!(position, 13);
    let restored = snapshot::decode(&bytes).unwrap();
    assert_eq!(restored, state(&directory));
    // One state, one encoding: encoding the restored state gives the same bytes.
    assert_eq!(encoded(&Directory::restored(restored)), bytes);
}

/// The snapshot of the sample log, pinned. When this fails, the directory's state, its fold or
/// the snapshot's structs changed: bump `snapshot::FORMAT` (so that no build misreads another's
/// snapshot) and pin the new digest with it.
#[tokio::test]
async fn the_snapshot_of_a_fixed_log_is_pinned_with_its_format() {
    let log = sample_log().await;
    let bytes = encoded(&*fold_all(&log).await);
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        (FORMAT, digest.as_str()),
        (
            3,
            "678e0fe339a344f3cc1c47e2fca3a0a17654d14a8a0cef2e774a4923c4d1cb01"
        ),
        "the directory snapshot changed: bump snapshot::FORMAT and pin the new digest"
    );
}

/// `bytes`, a whole snapshot, restamped as of `format` with a checksum that matches.
fn restamped(bytes: &[u8], format: u32) -> Vec<u8> {
    let mut other = bytes[..bytes.len() - 32].to_vec();
    other[8..12].copy_from_slice(&format.to_le_bytes());
    let checksum = Sha256::digest(&other);
    other.extend_from_slice(&checksum);
    other
}

#[tokio::test]
async fn a_damaged_or_foreign_format_snapshot_is_refused() {
    let log = sample_log().await;
    let bytes = encoded(&*fold_all(&log).await);
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    assert!(matches!(
        snapshot::decode(&flipped),
        Err(Unusable::Corrupt(_))
    ));
    assert!(matches!(
        snapshot::decode(&bytes[..bytes.len() - 1]),
        Err(Unusable::Corrupt(_))
    ));
    assert!(matches!(snapshot::decode(b""), Err(Unusable::Corrupt(_))));
    // Whole snapshots of another format, older or newer: the header says so, and the
    // checksum matches.
    for format in [FORMAT - 1, FORMAT + 1] {
        assert!(matches!(
            snapshot::decode(&restamped(&bytes, format)),
            Err(Unusable::Format { found }) if found == format
        ));
    }
}

async fn open(log: &Arc<dyn EventLog>, snapshots: &DirectorySnapshots) -> Arc<Directory> {
    let (directory, task) = Directory::open(log.clone(), snapshots.clone())
        .await
        .unwrap();
    let head = log.head_position().await.unwrap();
    directory
        .wait_for(head, Duration::from_secs(10))
        .await
        .unwrap();
    task.shutdown().await;
    directory
}

#[tokio::test]
async fn a_start_restores_the_snapshot_and_folds_only_the_log_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = DirectorySnapshots::in_file(dir.path().join("directory.snapshot"));
    let log = sample_log().await;
    // The first start has no snapshot: it folds everything, and leaves one at its stop.
    let first = open(&log, &snapshots).await;
    assert_eq!(
        first.start_report(),
        StartReport {
            restored_from: None,
            head_at_start: 13,
            folded_to_head: Some(13),
        }
    );
    append(
        &log,
        streams::tenant(TENANT),
        &[sample("tenant.updated"), sample("tenant.suspended")],
        400,
        START_MICROS + 300_000_000,
    )
    .await;
    let second = open(&log, &snapshots).await;
    assert_eq!(
        second.start_report(),
        StartReport {
            restored_from: Some(13),
            head_at_start: 15,
            folded_to_head: Some(2),
        }
    );
    assert_eq!(state(&second), state(&*fold_all(&log).await));
}

/// Neither version of `token.issued` leaves anything in the directory (a presented token is
/// verified by its signature), so the snapshot of a log of v1 events (all a build before v2
/// could have folded) is this build's state at that position, and a start from it folds a tail
/// of both versions to exactly the full fold's state.
#[tokio::test]
async fn both_versions_of_token_issued_fold_to_nothing_and_a_snapshot_spans_them() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = DirectorySnapshots::in_file(dir.path().join("directory.snapshot"));
    let log = sample_log().await;
    let before = state(&*fold_all(&log).await);
    open(&log, &snapshots).await;
    let v1 = sample("token.issued");
    let v2 = samples::current()
        .into_iter()
        .find(|event| matches!(event, Event::TokenIssued(_)))
        .unwrap();
    assert!(matches!(v1, Event::TokenIssuedV1(_)));
    append(
        &log,
        streams::client_tokens(TENANT, CLIENT),
        &[v1, v2],
        500,
        START_MICROS + 300_000_000,
    )
    .await;
    let restarted = open(&log, &snapshots).await;
    assert_eq!(
        restarted.start_report(),
        StartReport {
            restored_from: Some(13),
            head_at_start: 15,
            folded_to_head: Some(2),
        }
    );
    let full = state(&*fold_all(&log).await);
    assert_eq!(state(&restarted), full);
    // Only the position and the log's clock moved (and with the clock, the next sweep).
    let moved = Inner {
        log_time: full.log_time,
        next_prune: full.next_prune,
        position: full.position,
        log_hash: full.log_hash,
        ..before
    };
    assert_eq!(moved, full);
}

#[tokio::test]
async fn a_snapshot_of_another_log_or_beyond_the_head_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = DirectorySnapshots::in_file(dir.path().join("directory.snapshot"));
    let log = sample_log().await;
    open(&log, &snapshots).await;

    // Another log of the same length: its chain differs at the snapshot's position.
    let other = sample_log_with_ids_from(1000).await;
    let shorter = memory_log().await;
    append(
        &shorter,
        streams::tenant(TENANT),
        &[sample("tenant.created")],
        1,
        START_MICROS,
    )
    .await;
    for log in [other, shorter] {
        let bytes = snapshots.load().await.unwrap().unwrap();
        let directory = open(&log, &snapshots).await;
        assert_eq!(directory.start_report().restored_from, None);
        assert_eq!(state(&directory), state(&*fold_all(&log).await));
        // Put the first log's snapshot back for the next case.
        snapshots.store(13, bytes).await.unwrap();
    }
}

#[tokio::test]
async fn a_corrupt_or_other_format_snapshot_file_means_a_full_fold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.snapshot");
    let snapshots = DirectorySnapshots::in_file(&path);
    let log = sample_log().await;
    open(&log, &snapshots).await;
    let whole = std::fs::read(&path).unwrap();
    let mut corrupt = whole.clone();
    corrupt[20] ^= 0xff;
    for bytes in [corrupt, restamped(&whole, FORMAT - 1)] {
        std::fs::write(&path, bytes).unwrap();
        let directory = open(&log, &snapshots).await;
        assert_eq!(directory.start_report().restored_from, None);
        assert_eq!(directory.start_report().folded_to_head, Some(13));
        assert_eq!(state(&directory), state(&*fold_all(&log).await));
    }
}

#[tokio::test]
async fn the_snapshot_file_is_private_and_replaced_whole() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.snapshot");
    let snapshots = DirectorySnapshots::in_file(&path);
    snapshots.store(1, b"first".to_vec()).await.unwrap();
    snapshots.store(2, b"second".to_vec()).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["directory.snapshot"]);
}
