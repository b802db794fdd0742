//! The `tessera` binary under another name, built inside the tests package so that end-to-end
//! tests can spawn it; with two differences: a clock the tests can move, and a way to wait for
//! the read models.
//!
//! Lockouts, idle timeouts and password expiry last minutes to days, and tests do not sleep.
//! This binary serves on a clock that runs with the wall clock plus an offset, and a route
//! that only this binary has, `POST /__test/clock/advance` with a number of seconds as its
//! body, moves the offset forward.
//!
//! Some writes answer before the read models have them (a sign-in does not wait for the audit
//! trail). `POST /__test/settle` answers once the read models, the OAuth directory and the
//! session directory have caught up with the log's head at the time of the call, so that a
//! test reads the audit trail without polling. The production `tessera` has neither route.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tessera_api::server::Extensions;
use tessera_api::state::AppState;
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

fn advance(clock: &MovableClock, body: &str) -> StatusCode {
    match body.trim().parse::<i64>() {
        Ok(seconds) if seconds >= 0 => {
            clock.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn settle(State(state): State<AppState>) -> StatusCode {
    let Ok(head) = state.log.head_position().await else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    match state.projected(head).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn main() -> std::process::ExitCode {
    let clock = Arc::new(MovableClock::default());
    let moved = clock.clone();
    let routes = Router::<AppState>::new()
        .route(
            "/__test/clock/advance",
            post(move |body: String| async move { advance(&moved, &body) }),
        )
        .route("/__test/settle", post(settle));
    tessera_api::cli::main_with(Extensions {
        clock: Some(clock),
        routes: Some(routes),
    })
}
