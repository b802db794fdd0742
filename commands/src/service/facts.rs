//! Facts: issued and revoked tokens and API key usage.
//!
//! These are not decisions an aggregate could refuse but records of something that already
//! happened (a token was signed and handed out once the endpoint had checked the client against
//! the in-memory directory; a key was used). They are appended with expected version "any",
//! without the per-stream queue (see [`CommandService::record`]), so that concurrent requests
//! of one client share one group commit instead of queueing behind each other. A token's event
//! is durable before the token is returned.

use tessera_event_schemas::events::{ApiKeyUsedV1, TokenIssuedV2, TokenRevokedV1};
use tessera_event_schemas::{Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use crate::CommandError;

impl CommandService {
    /// Records an access token issued to `client_id` at `at`, the time the token was minted
    /// with (its `iat` is `at` truncated to the second). `token.issued` v2 leaves both to the
    /// envelope: the client is the stream's, and the time becomes `recorded_at`. Returns once
    /// the event is durable.
    pub async fn record_token_issued(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
        issued: TokenIssuedV2,
        at: Timestamp,
    ) -> Result<u64, CommandError> {
        let stream = streams::client_tokens(tenant_id, client_id);
        self.record_at(meta, tenant_id, stream, Event::TokenIssued(issued), at)
            .await
    }

    /// Records a revoked access token. Returns once the event is durable.
    pub async fn record_token_revoked(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        revoked: TokenRevokedV1,
    ) -> Result<u64, CommandError> {
        let stream = streams::client_tokens(tenant_id, &revoked.client_id);
        self.record(meta, tenant_id, stream, Event::TokenRevoked(revoked))
            .await
    }

    /// Records aggregated uses of an API key on the key's stream.
    pub async fn record_api_key_usage(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key_id: Uuid,
        used: ApiKeyUsedV1,
    ) -> Result<u64, CommandError> {
        let stream = streams::api_key(tenant_id, key_id);
        self.record(meta, tenant_id, stream, Event::ApiKeyUsed(used))
            .await
    }
}
