//! Entitlements and trials that expire on their own (issue 21): a background task asks the
//! in-memory registry which entitlements are past their `expires_at` and sends each an
//! `expire_entitlement` command, as `lifecycle` does for scheduled freezes. The aggregate
//! decides whether it really is due and appends `entitlement.expired` expecting the version it
//! read, so a stale registry can delay an expiry but never cause a wrong one, and servers
//! sweeping at once append it once. The first sweep runs at start, so what fell due while the
//! server was down expires then (the registry has caught up before the server serves).
//! Tokens and the claims resolver do not wait for it: they leave out what is past its expiry.

use std::time::Duration;

use tessera_event_schemas::EventMetadata;

use crate::state::AppState;

pub async fn run(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        sweep(&state).await;
    }
}

/// Expires what is due now; failures are logged and retried at the next tick.
pub async fn sweep(state: &AppState) {
    for (tenant_id, product) in state.registry.due(state.clock.now()) {
        let meta = EventMetadata::system(state.ids.new_id().to_string());
        match state
            .commands
            .expire_entitlement(meta, tenant_id, &product)
            .await
        {
            Ok(outcome) => {
                tracing::info!(%tenant_id, %product, "entitlement expired");
                // Waiting keeps the next sweep from sending the same command again.
                let _ = state
                    .registry
                    .wait_for(outcome.position, state.read_your_writes_timeout)
                    .await;
            }
            Err(error) => {
                tracing::warn!(%tenant_id, %product, %error, "could not expire an entitlement; retrying next tick")
            }
        }
    }
}
