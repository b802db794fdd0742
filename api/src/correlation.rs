//! Correlation ids: every request gets one (the caller's `X-Correlation-ID` when it is sane,
//! otherwise a new id from the injected [`IdGen`]), every response carries it back, every log
//! line of the request is inside a span that names it, and every event the request causes
//! records it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tessera_commands::IdGen;
use tracing::Instrument;

pub const HEADER: &str = "x-correlation-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The correlation id of the request being served, or `none` outside a request.
pub fn current() -> String {
    CURRENT
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "none".to_owned())
}

/// Accepts up to 128 visible ASCII characters from the safe set; anything else is replaced,
/// so a hostile header cannot inject into logs or events.
fn acceptable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The middleware; its state is where new ids come from.
pub async fn middleware(
    State(ids): State<Arc<dyn IdGen>>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| ids.new_id().to_string());
    let span = tracing::info_span!(
        "request",
        correlation_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = CURRENT
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn sane_correlation_ids_are_kept_and_hostile_ones_replaced() {
        assert!(acceptable("req-123:abc_DEF.9"));
        assert!(!acceptable(""));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable(&"x".repeat(129)));
    }
}
