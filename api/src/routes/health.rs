//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers. No permission needed.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// `ok`, or why the event log is unreachable.
    pub log: String,
    /// Last committed global position.
    pub log_head: u64,
    /// Last position folded into the read models.
    pub projected_position: u64,
    /// Positions the read models are behind the log.
    pub projection_lag: u64,
}

/// Readiness: the event log answers. No permission needed. 503 when it does not.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let projected = state.projections.projected_position();
    let (status, log, head) = match state.log.ping().await {
        Ok(()) => match state.log.head_position().await {
            Ok(head) => (StatusCode::OK, "ok".to_owned(), head),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string(), 0),
        },
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string(), 0),
    };
    (
        status,
        Json(Readiness {
            status: if status == StatusCode::OK {
                "ready"
            } else {
                "unavailable"
            },
            log,
            log_head: head,
            projected_position: projected,
            projection_lag: head.saturating_sub(projected),
        }),
    )
}
