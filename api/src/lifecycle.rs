//! Scheduled lifecycle transitions: a cancellation "at period end" freezes the tenant once its
//! effective time has passed. A background task looks for due tenants in the read model and
//! sends each a `FreezeDue` command; the aggregate decides whether it really is due, so a stale
//! read model can delay a freeze but never cause a wrong one.

use std::time::Duration;

use tessera_event_schemas::EventMetadata;
use tessera_projections::TenantFilter;

use crate::state::AppState;

pub async fn run(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        if let Err(error) = sweep(&state).await {
            tracing::warn!(%error, "lifecycle sweep failed; retrying next tick");
        }
    }
}

async fn sweep(state: &AppState) -> Result<(), String> {
    let now = state.clock.now();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .store
            .list_tenants(TenantFilter::default(), 500, cursor.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        for tenant in &page.items {
            let due = tenant
                .pending_cancellation
                .as_ref()
                .is_some_and(|p| p.effective_at <= now);
            if due {
                let meta = EventMetadata::system(state.ids.new_id().to_string());
                match state.commands.freeze_due(meta, tenant.id).await {
                    Ok(_) => {
                        tracing::info!(tenant_id = %tenant.id, "scheduled cancellation took effect")
                    }
                    Err(error) => {
                        tracing::warn!(tenant_id = %tenant.id, %error, "could not freeze due tenant")
                    }
                }
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}
