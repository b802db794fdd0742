//! The `tessera` binary under another name, built inside the tests package so that end-to-end
//! tests can spawn it; with one difference: a clock the tests can move.
//!
//! Lockouts, idle timeouts and password expiry last minutes to days, and tests do not sleep.
//! This binary serves on a clock that runs with the wall clock plus an offset, and one route
//! that only this binary has, `POST /__test/clock/advance` with a number of seconds as its
//! body, moves the offset forward. The production `tessera` has neither.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tessera_api::server::Extensions;
use tessera_commands::{Clock, SystemClock};
use tessera_event_schemas::Timestamp;

/// The wall clock plus an offset that only grows.
#[derive(Debug, Default)]
struct MovableClock {
    offset_seconds: AtomicI64,
}

impl Clock for MovableClock {
    fn now(&self) -> Timestamp {
        SystemClock
            .now()
            .plus_seconds(self.offset_seconds.load(Ordering::SeqCst))
    }
}

async fn advance(State(clock): State<Arc<MovableClock>>, body: String) -> StatusCode {
    match body.trim().parse::<i64>() {
        Ok(seconds) if seconds >= 0 => {
            clock.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

fn main() -> std::process::ExitCode {
    let clock = Arc::new(MovableClock::default());
    let routes = Router::new()
        .route("/__test/clock/advance", post(advance))
        .with_state(clock.clone());
    tessera_api::cli::main_with(Extensions {
        clock: Some(clock),
        routes: Some(routes),
    })
}
