//! Liveness and readiness probes, and the Prometheus metrics.
//!
//! The metrics include what this start of the OAuth directory did (the snapshot position it
//! restored and the events it folded before serving: a restart that folds the whole log shows
//! here) and the size of its bounded in-memory structures.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use tessera_projections::PublisherStatus;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers. No permission needed.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = Health)))]
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
    /// The Kafka audit publisher, when brokers are configured. Its lag does not make the
    /// server unready: issuing tokens does not wait for Kafka.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaReadiness>,
}

#[derive(Serialize, ToSchema)]
pub struct KafkaReadiness {
    /// Every event up to this position is acknowledged by the broker.
    pub published_position: u64,
    /// Positions the publisher is behind the log.
    pub lag: u64,
    /// Messages acknowledged since the server started.
    pub messages_published: u64,
    /// The latest broker or delivery error, cleared by the next acknowledged batch.
    pub last_error: Option<String>,
    /// Whether this node publishes; with several nodes on one PostgreSQL database only the
    /// holder of the publisher lease does, and the others report its checkpoint.
    pub publishing: bool,
}

impl KafkaReadiness {
    pub fn new(status: PublisherStatus, head: u64) -> Self {
        Self {
            published_position: status.published_position,
            lag: head.saturating_sub(status.published_position),
            messages_published: status.messages_published,
            last_error: status.last_error,
            publishing: status.publishing,
        }
    }
}

/// Readiness: the event log answers. No permission needed. 503 when it does not.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses(
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
            kafka: state
                .kafka
                .as_ref()
                .map(|kafka| KafkaReadiness::new(kafka.status(), head)),
        }),
    )
}

/// Prometheus text exposition (version 0.0.4) of the server's positions and lags. No
/// permission needed, like the probes: it reveals counts, never data.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()), responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let head = match state.log.head_position().await {
        Ok(head) => head,
        Err(_) => *state.log.watch_head().borrow(),
    };
    let projected = state.projections.projected_position();
    let mut out = String::new();
    gauge(
        &mut out,
        "tessera_log_head_position",
        "Last committed global position of the event log.",
        head,
    );
    gauge(
        &mut out,
        "tessera_projection_lag_events",
        "Positions the read models are behind the log head.",
        head.saturating_sub(projected),
    );
    directory_metrics(&mut out, &state);
    metric(
        &mut out,
        "tessera_catch_ups_total",
        "counter",
        "Requests that found this node behind the log after a miss and waited for it to catch up (read-your-writes across nodes).",
        state.head_reads.behind(),
    );
    credential_refresh_metrics(&mut out, &state);
    if let Some(kafka) = &state.kafka {
        let status = kafka.status();
        gauge(
            &mut out,
            "tessera_kafka_published_position",
            "Every event up to this global position is acknowledged by Kafka.",
            status.published_position,
        );
        gauge(
            &mut out,
            "tessera_kafka_publisher_lag_events",
            "Positions the Kafka audit publisher is behind the log head.",
            head.saturating_sub(status.published_position),
        );
        gauge(
            &mut out,
            "tessera_kafka_publisher_active",
            "1 when this node publishes to Kafka (it holds the publisher lease), 0 when it stands by.",
            u64::from(status.publishing),
        );
        metric(
            &mut out,
            "tessera_kafka_messages_published_total",
            "counter",
            "Messages acknowledged by Kafka since the server started, over all topics.",
            status.messages_published,
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// The OAuth directory's start and the sizes of what the authorization server keeps in memory.
fn directory_metrics(out: &mut String, state: &AppState) {
    let start = state.directory.start_report();
    gauge(
        out,
        "tessera_directory_position",
        "Last global position folded into the OAuth directory.",
        state.directory.position(),
    );
    gauge(
        out,
        "tessera_directory_snapshot_position",
        "Position of the snapshot this start restored the OAuth directory from; 0 when it folded the whole log.",
        start.restored_from.unwrap_or(0),
    );
    if let Some(folded) = start.folded_to_head {
        gauge(
            out,
            "tessera_directory_start_folded_events",
            "Events this start folded into the OAuth directory to reach the log's head as it stood at the start.",
            folded,
        );
    }
    gauge(
        out,
        "tessera_session_directory_snapshot_position",
        "Position of the snapshot this start restored the session directory from; 0 when it folded the whole log.",
        state.sessions.restored_from(),
    );
    gauge(
        out,
        "tessera_sessions_active",
        "Active sessions the session directory holds.",
        state.sessions.len() as u64,
    );
    gauge(
        out,
        "tessera_directory_revocations",
        "Revoked token ids the OAuth directory holds until the tokens expire.",
        state.directory.revocations() as u64,
    );
    gauge(
        out,
        "tessera_verified_tokens_cached",
        "Access tokens held by the bounded cache of verified tokens.",
        state.verifier.cached_tokens() as u64,
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    metric(out, name, "gauge", help, value);
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The connections' refreshes on this node (issue 20).
fn credential_refresh_metrics(out: &mut String, state: &AppState) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = &state.connect.stats;
    gauge(
        out,
        "tessera_credential_refresh_scheduled",
        "OAuth connections the refresh scheduler tracks.",
        stats.scheduled.load(Relaxed),
    );
    for (name, help, value) in [
        (
            "tessera_credential_refreshes_total",
            "Refreshes that recorded new tokens.",
            &stats.refreshed,
        ),
        (
            "tessera_credential_refresh_races_lost_total",
            "Refreshes whose append lost to another refresh of the same connection.",
            &stats.lost,
        ),
        (
            "tessera_credential_refresh_not_due_total",
            "Refreshes that found the connection already refreshed.",
            &stats.not_due,
        ),
        (
            "tessera_credential_refresh_failures_total",
            "Refresh failures recorded with their backoff.",
            &stats.failed,
        ),
    ] {
        metric(out, name, "counter", help, value.load(Relaxed));
    }
}
