//! The session directory, folded from hand-made events: lookups by cookie hash within one
//! tenant, idle expiry by the caller's clock and by log time, ends, notes ahead of the fold,
//! and the uses it hands out for recording.

use tessera_domain::tenant::default_settings;
use tessera_event_schemas::events::{
    SessionEndReason, SessionEndedV1, SessionSeenAtV1, SessionSeenV1, SessionStartedV1,
    TenantSettingsChangedV1,
};
use tessera_event_schemas::{Envelope, streams};

use super::*;

const TENANT: Uuid = Uuid::from_u128(1_000);
const OTHER: Uuid = Uuid::from_u128(2_000);
const USER: Uuid = Uuid::from_u128(5);
const START: i64 = 1_800_000_000_000_000;
const MINUTE: i64 = 60 * 1_000_000;

fn at(minutes: i64) -> Timestamp {
    Timestamp::from_micros(START + minutes * MINUTE)
}

fn hash(n: u8) -> Hash32 {
    Hash32([n; 32])
}

fn id(n: u8) -> Uuid {
    Uuid::from_u128(u128::from(n))
}

/// One event of `TENANT` at position `position`, recorded at `minutes`.
fn recorded(position: u64, minutes: i64, event: Event) -> RecordedEvent {
    let stream = match &event {
        Event::TenantSettingsChanged(_) => streams::tenant(TENANT),
        _ => streams::sessions(TENANT, USER),
    };
    Envelope::builder()
        .stream(stream)
        .stream_version(position)
        .position(position)
        .tenant(TENANT)
        .recorded_at(at(minutes))
        .source_ip("192.0.2.7")
        .user_agent("test agent")
        .recorded(&event)
}

fn started(n: u8, minutes: i64) -> Event {
    Event::SessionStarted(SessionStartedV1 {
        session_id: id(n),
        user_id: USER,
        token_hash: hash(n).into(),
        amr: vec!["pwd".into()],
        auth_time: at(minutes),
    })
}

fn timeout(minutes: u32) -> Event {
    let mut settings = default_settings();
    settings.session_timeout_minutes = minutes;
    Event::TenantSettingsChanged(TenantSettingsChangedV1 { settings })
}

fn directory(events: Vec<Event>) -> Arc<SessionDirectory> {
    let directory = SessionDirectory::new();
    let recorded: Vec<RecordedEvent> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| recorded(i as u64 + 1, 0, event))
        .collect();
    directory.apply(&recorded).unwrap();
    directory
}

#[test]
fn a_session_is_found_by_its_cookie_hash_in_its_own_tenant_only() {
    let sessions = directory(vec![timeout(30), started(1, 0)]);
    assert_eq!(sessions.position(), 2);
    let entry = sessions.lookup(TENANT, &hash(1), at(1)).unwrap();
    assert_eq!((entry.user_id, entry.session_id), (USER, id(1)));
    assert_eq!(entry.amr, ["pwd"]);
    assert_eq!(entry.source_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(entry.user_agent.as_deref(), Some("test agent"));
    assert!(sessions.lookup(OTHER, &hash(1), at(1)).is_none());
    assert!(sessions.lookup(TENANT, &hash(2), at(1)).is_none());
    assert!(sessions.session(OTHER, id(1), at(1)).is_none());
    assert_eq!(sessions.user_sessions(TENANT, USER, at(1)).len(), 1);
}

#[test]
fn a_session_idle_past_its_tenants_timeout_is_gone_and_use_keeps_it_alive() {
    let sessions = directory(vec![timeout(30), started(1, 0), started(2, 0)]);
    // Session 1 is used at 20 minutes; both are looked up at 40.
    assert!(sessions.lookup(TENANT, &hash(1), at(20)).is_some());
    assert!(sessions.lookup(TENANT, &hash(1), at(40)).is_some());
    assert!(sessions.lookup(TENANT, &hash(2), at(40)).is_none());
    assert_eq!(sessions.user_sessions(TENANT, USER, at(40)).len(), 1);
    sessions.prune(at(40));
    assert_eq!(sessions.len(), 1);
}

#[test]
fn ended_sessions_leave_and_notes_ahead_of_the_fold_change_nothing_when_folded() {
    let sessions = SessionDirectory::new();
    sessions.note_started(
        hash(1),
        SessionEntry::new(id(1), TENANT, USER, vec!["pwd".into()], at(0), None, None),
    );
    assert!(sessions.lookup(TENANT, &hash(1), at(1)).is_some());
    sessions
        .apply(&[recorded(1, 0, timeout(60)), recorded(2, 0, started(1, 0))])
        .unwrap();
    assert_eq!(sessions.len(), 1);
    sessions.note_ended(&[id(1)]);
    assert!(sessions.lookup(TENANT, &hash(1), at(1)).is_none());
    let ended = Event::SessionEnded(SessionEndedV1 {
        session_id: id(1),
        reason: SessionEndReason::SignedOut,
    });
    sessions
        .apply(&[recorded(3, 1, started(2, 1)), recorded(4, 1, ended)])
        .unwrap();
    assert!(sessions.lookup(TENANT, &hash(1), at(1)).is_none());
    assert!(sessions.lookup(TENANT, &hash(2), at(1)).is_some());
}

#[test]
fn uses_are_handed_out_once_and_recorded_uses_keep_a_session_alive_after_a_replay() {
    let sessions = directory(vec![timeout(30), started(1, 0)]);
    assert_eq!(sessions.unrecorded_use(), []);
    sessions.lookup(TENANT, &hash(1), at(25));
    let uses = sessions.unrecorded_use();
    assert_eq!(
        uses,
        [UnrecordedUse {
            tenant_id: TENANT,
            user_id: USER,
            sessions: vec![(id(1), at(25))],
        }]
    );
    assert_eq!(sessions.unrecorded_use(), []);
    // A failed recording puts them back.
    sessions.unrecord(&uses[0]);
    assert_eq!(sessions.unrecorded_use(), uses);
    // A replay that folds the recorded use knows the session was alive at 25 minutes.
    let seen = Event::SessionSeen(SessionSeenV1 {
        sessions: vec![SessionSeenAtV1 {
            session_id: id(1),
            last_seen_at: at(25),
        }],
    });
    let replayed = directory(vec![timeout(30), started(1, 0), seen]);
    assert!(replayed.lookup(TENANT, &hash(1), at(50)).is_some());
    assert_eq!(replayed.unrecorded_use().len(), 1);
}

#[test]
fn the_fold_sweeps_sessions_idle_by_log_time() {
    let sessions = SessionDirectory::new();
    sessions
        .apply(&[recorded(1, 0, timeout(30)), recorded(2, 0, started(1, 0))])
        .unwrap();
    // An unrelated event half an hour later: session 1 has been idle for the whole timeout.
    sessions.apply(&[recorded(3, 31, started(2, 31))]).unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions.session(TENANT, id(2), at(31)).is_some());
}

#[test]
fn a_snapshot_restores_every_session_in_order_with_its_use_and_the_tenants_timeouts() {
    let sessions = directory(vec![
        timeout(30),
        started(1, 0),
        started(2, 0),
        started(3, 0),
    ]);
    // Session 2 used at 20 minutes, not yet recorded.
    assert!(sessions.lookup(TENANT, &hash(2), at(20)).is_some());
    let bytes = sessions.snapshot().unwrap();
    let restored = SessionDirectory::restored(&bytes).unwrap();
    assert_eq!(restored.position(), 4);
    assert_eq!(restored.snapshot().unwrap(), bytes);
    let order = |d: &SessionDirectory| {
        d.user_sessions(TENANT, USER, at(21))
            .iter()
            .map(|e| e.session_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(order(&restored), [id(1), id(2), id(3)]);
    // The tenant's 30-minute timeout and the use at 20 came through.
    assert!(restored.lookup(TENANT, &hash(1), at(31)).is_none());
    assert!(restored.lookup(TENANT, &hash(2), at(31)).is_some());
    assert!(restored.lookup(OTHER, &hash(2), at(31)).is_none());
    let uses = restored.unrecorded_use();
    assert_eq!(uses.len(), 1, "{uses:?}");
    // Folding again what the snapshot holds changes nothing.
    restored.apply(&[recorded(4, 0, started(3, 0))]).unwrap();
    assert_eq!(restored.len(), 3);
}

#[test]
fn a_damaged_or_foreign_snapshot_is_refused() {
    let sessions = directory(vec![timeout(30), started(1, 0)]);
    let mut bytes = sessions.snapshot().unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    assert!(SessionDirectory::restored(&bytes).is_err());
    assert!(SessionDirectory::restored(b"TSRDSNAP").is_err());
}
