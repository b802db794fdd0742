//! The rewrap of a tenant's vault secrets, run in the background (issue 20, ADR 0007).
//!
//! `POST /v1/tenants/{id}/vault/rewrap` records `vault.rewrap_started` and starts [`spawn`];
//! the task asks the read model (`rm_vault_secrets`) for the streams still sealed below the
//! newest version, moves each one (`CommandService::rewrap_secret`: the data key wrapped
//! again, the payload never opened, `credential.rewrapped` at the version read), waits for the
//! read model to see its appends, and asks again until none is left. It covers every sealed
//! secret holder, since the read model does. A restart resumes: [`resume_all`] looks, at start,
//! for tenants whose last recorded rewrap is to their newest version and still has secrets
//! below it. Several tasks (two requests, two nodes) may overlap: each move is decided by its
//! stream's expected version and only moves forward, so they only repeat each other's reads.

use std::collections::HashSet;

use tessera_event_schemas::EventMetadata;
use uuid::Uuid;

use crate::state::AppState;

/// Streams asked for per round.
const BATCH: u32 = 100;

/// Starts moving `tenant_id`'s secrets to its newest key version in the background.
pub fn spawn(state: AppState, tenant_id: Uuid, meta: EventMetadata) {
    tokio::spawn(async move {
        if let Err(error) = run(&state, tenant_id, &meta).await {
            tracing::warn!(%tenant_id, %error, "the vault rewrap stopped; it resumes at the next start or request");
        }
    });
}

/// Resumes, in the background, every rewrap a previous run left unfinished.
pub fn resume_all(state: AppState) {
    tokio::spawn(async move {
        let tenants = match state.store.tenants_with_vault_secrets().await {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "listing vaults to resume their rewraps failed");
                return;
            }
        };
        for tenant_id in tenants {
            let meta = EventMetadata::system(format!("vault-rewrap-{tenant_id}"));
            if let Err(error) = run(&state, tenant_id, &meta).await {
                tracing::warn!(%tenant_id, %error, "resuming a vault rewrap failed");
            }
        }
    });
}

async fn run(state: &AppState, tenant_id: Uuid, meta: &EventMetadata) -> Result<(), String> {
    // Streams that refused to move (a secret below the minimum, which no longer opens): not
    // asked for again in this run, so that it ends.
    let mut stuck: HashSet<String> = HashSet::new();
    loop {
        let vault = state
            .commands
            .vault_state(tenant_id)
            .await
            .map_err(|error| error.to_string())?;
        let to = match vault.rewrap {
            Some(rewrap) if !vault.destroyed && rewrap.to_version == vault.newest => vault.newest,
            _ => return Ok(()),
        };
        let below = state
            .store
            .vault_secrets_below(
                tenant_id,
                to,
                BATCH + u32::try_from(stuck.len()).unwrap_or(0),
            )
            .await
            .map_err(|error| error.to_string())?;
        let todo: Vec<_> = below
            .into_iter()
            .filter(|secret| !stuck.contains(&secret.stream_id))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        for secret in todo {
            match state
                .commands
                .rewrap_secret(meta.clone(), tenant_id, &secret.stream_id)
                .await
            {
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%tenant_id, stream = %secret.stream_id, %error, "a secret could not be rewrapped");
                    stuck.insert(secret.stream_id);
                }
            }
        }
        // The next round asks the read model again: it must have seen these appends first.
        state.catch_up().await;
    }
}
