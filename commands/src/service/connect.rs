//! The end of an OAuth connect flow (issue 20): the tokens the provider gave sealed under the
//! tenant's vault and stored on the connection's stream, with `connect.completed` on the
//! flow's own stream (`{tenant}/connect/{state}`) in the same append, expecting "no stream":
//! a state is redeemed once across nodes, and a connection is never stored without its
//! flow's end nor the end recorded without the connection. A flow that got no tokens records
//! `connect.failed` on that stream alone, likewise once.
//!
//! The API checks the state (sealed, unexpired, for this integration) and talks to the
//! provider; this module decides.

use tessera_domain::credential::{CredentialCommand, CredentialState, StoreCredential};
use tessera_domain::{Aggregate, DomainError};
use tessera_event_log::ExpectedVersion;
use tessera_event_schemas::events::{
    ConnectCompletedV1, ConnectFailedV1, CredentialKind, OAuthAppSource,
};
use tessera_event_schemas::{Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::CommandService;
use super::engine::Plan;
use crate::CommandError;

/// What a connect flow got from the provider: the token document to seal, and what the
/// connection records beside it.
pub struct ConnectTokens {
    /// The JSON token document, sealed by the command under the tenant's vault.
    pub document: Zeroizing<Vec<u8>>,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub refreshable: bool,
    pub app: OAuthAppSource,
}

/// Why a replayed state is refused: a conflict on the flow's stream is final, not a race.
fn used() -> DomainError {
    DomainError::Conflict("this connect flow's state was already used".into())
}

impl CommandService {
    /// Whether the connect flow `state_id` of the tenant has ended (its stream exists).
    pub async fn connect_used(
        &self,
        tenant_id: Uuid,
        state_id: Uuid,
    ) -> Result<bool, CommandError> {
        let page = self
            .log
            .read_stream(&streams::connect(tenant_id, state_id), 0, 1)
            .await?;
        Ok(!page.is_empty())
    }

    /// Stores the connection a connect flow made and ends the flow, in one append (see the
    /// module doc). A replayed state is `Rejected(Conflict)` and stores nothing.
    pub async fn complete_connect(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        state_id: Uuid,
        tokens: ConnectTokens,
    ) -> Result<u64, CommandError> {
        tessera_domain::credential::integration(integration)?;
        let credential_stream = streams::credential(tenant_id, integration);
        let connect_stream = streams::connect(tenant_id, state_id);
        let (sealed, key_version) = self
            .vault_seal(tenant_id, &credential_stream, &tokens.document)
            .await?;
        let (meta, sealed, tokens) = (&meta, &sealed, &tokens);
        let (connect_stream, stream) = (&connect_stream, &credential_stream);
        let ((), position) = self
            .run(&credential_stream, move || async move {
                let (_, tenant_stream, tenant_version) = self
                    .load_open_tenant(tenant_id, "connect an integration")
                    .await?;
                let loaded = self.load::<CredentialState>(stream).await?;
                let events = loaded
                    .state
                    .decide(CredentialCommand::Store(Box::new(StoreCredential {
                        kind: CredentialKind::Oauth,
                        sealed: sealed.clone(),
                        key_version,
                        scopes: tokens.scopes.clone(),
                        issued_at: tokens.issued_at,
                        expires_at: tokens.expires_at,
                        refreshable: tokens.refreshable,
                        app: tokens.app,
                    })))
                    .map_err(CommandError::Rejected)?;
                let now = self.clock.now();
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.push(self.write(
                    meta,
                    now,
                    stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                plan.push(self.write(
                    meta,
                    now,
                    connect_stream.clone(),
                    ExpectedVersion::NoStream,
                    tenant_id,
                    vec![Event::ConnectCompleted(ConnectCompletedV1 {
                        integration: integration.to_owned(),
                    })],
                ));
                plan.conflict_is_final(connect_stream.clone(), used());
                Ok(plan)
            })
            .await?;
        Ok(position)
    }

    /// Ends a connect flow that got no tokens: `connect.failed` with the provider's `error`
    /// code (or `exchange_failed`), once. A replayed state is `Rejected(Conflict)`.
    pub async fn fail_connect(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        integration: &str,
        state_id: Uuid,
        reason: &str,
    ) -> Result<u64, CommandError> {
        let connect_stream = streams::connect(tenant_id, state_id);
        let (meta, connect_stream) = (&meta, &connect_stream);
        let ((), position) = self
            .run(connect_stream, move || async move {
                let mut plan = Plan::new((), 0);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    connect_stream.clone(),
                    ExpectedVersion::NoStream,
                    tenant_id,
                    vec![Event::ConnectFailed(ConnectFailedV1 {
                        integration: integration.to_owned(),
                        reason: reason.to_owned(),
                    })],
                ));
                plan.conflict_is_final(connect_stream.clone(), used());
                Ok(plan)
            })
            .await?;
        Ok(position)
    }
}
