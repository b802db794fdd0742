//! Time and identity sources, injected so that tests can fix them.
//!
//! Only this module reads the system clock or generates ids (clippy's `disallowed-methods`, in
//! `clippy.toml`, holds everyone else to that); command handlers and the API ask a [`Clock`]
//! and an [`IdGen`], and commands pass the answers into the pure domain.

use tessera_event_schemas::Timestamp;
use uuid::Uuid;

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "the clock module is where the wall clock is read"
    )]
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(chrono::Utc::now())
    }
}

/// New ids for aggregates and events.
pub trait IdGen: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// UUIDv7 (RFC 9562): time-ordered, so ids sort by creation and index well.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemIds;

impl IdGen for SystemIds {
    #[allow(
        clippy::disallowed_methods,
        reason = "the clock module is where new ids are made"
    )]
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// A clock that stands still until told otherwise: for tests (here and in other crates).
#[derive(Debug)]
pub struct FixedClock(std::sync::Mutex<Timestamp>);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        Self(std::sync::Mutex::new(at))
    }

    pub fn set(&self, at: Timestamp) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    pub fn advance_seconds(&self, seconds: i64) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.plus_seconds(seconds);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
