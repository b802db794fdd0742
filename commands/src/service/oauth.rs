//! OAuth clients, issued tokens and API key usage: the authorization server's write side.
//!
//! Client registration and changes go through the `OAuthClientState` aggregate like every other
//! command. Issued and revoked tokens and API key usage are different: they are facts about
//! something that already happened (a token was signed and handed out once the endpoint had
//! checked the client against the in-memory directory; a key was used), not decisions an
//! aggregate could refuse. They are appended with expected version "any", without the
//! per-stream queue, so that concurrent requests of one client share one group commit instead
//! of queueing behind each other. A token's event is durable before the token is returned.

use std::fmt;

use tessera_domain::Aggregate;
use tessera_domain::oauth_client::{
    ClientChanges, NewClient, OAuthClientCommand, OAuthClientState,
};
use tessera_domain::tenant::TenantState;
use tessera_event_log::{AppendError, ExpectedVersion};
use tessera_event_schemas::events::{ApiKeyUsedV1, ClientType, TokenIssuedV1, TokenRevokedV1};
use tessera_event_schemas::{Event, EventMetadata, streams};
use uuid::Uuid;

use super::{CommandService, Outcome, Plan, internal, rejected};
use crate::CommandError;
use crate::crypto;

/// Input of [`CommandService::register_client`].
#[derive(Clone, Debug)]
pub struct RegisterClient {
    pub name: String,
    pub client_type: ClientType,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    /// None: the default lifetime.
    pub access_token_ttl_secs: Option<u32>,
    pub created_by: String,
}

/// A registered client. The secret (confidential clients only) is returned once.
#[derive(Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub position: u64,
}

impl fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// A regenerated client secret, returned once.
#[derive(Clone, PartialEq, Eq)]
pub struct RegeneratedSecret {
    pub client_secret: String,
    pub position: u64,
}

impl fmt::Debug for RegeneratedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegeneratedSecret")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl CommandService {
    /// Registers a client on an existing, open tenant. A confidential client gets a generated
    /// secret, stored only as its keyed hash.
    pub async fn register_client(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        input: RegisterClient,
    ) -> Result<RegisteredClient, CommandError> {
        let client_id = self.ids.new_id().to_string();
        let client_secret = match input.client_type {
            ClientType::Confidential => Some(crypto::generate_client_secret().map_err(internal)?),
            ClientType::Public => None,
        };
        let new = NewClient {
            client_id: client_id.clone(),
            name: input.name,
            client_type: input.client_type,
            grant_types: input.grant_types,
            redirect_uris: input.redirect_uris,
            allowed_scopes: input.allowed_scopes,
            access_token_ttl_secs: input.access_token_ttl_secs,
            secret_hash: client_secret
                .as_deref()
                .map(|secret| self.crypto.secret_hash(secret)),
            created_by: input.created_by,
        };
        let client_stream = streams::oauth_client(tenant_id, &client_id);
        let tenant_stream = streams::tenant(tenant_id);
        let (new, meta, client_stream_ref, tenant_stream) =
            (&new, &meta, &client_stream, &tenant_stream);
        let ((), position) = self
            .run(&client_stream, move || async move {
                let tenant = self.load::<TenantState>(tenant_stream).await?;
                tenant
                    .state
                    .require_open("register a client")
                    .map_err(|error| rejected(error, tenant.version))?;
                let client = self.load::<OAuthClientState>(client_stream_ref).await?;
                let events = client
                    .state
                    .decide(OAuthClientCommand::Register(Box::new(new.clone())))?;
                let mut plan = Plan::new((), client.position);
                // As for API keys: a concurrent archival conflicts instead of slipping past.
                plan.guard(tenant_stream.clone(), tenant.version);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    client_stream_ref.clone(),
                    client.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(RegisteredClient {
            client_id,
            client_secret,
            position,
        })
    }

    /// Changes a client's name, grants, redirect URIs, scopes or token lifetime.
    pub async fn update_client(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
        changes: ClientChanges,
    ) -> Result<Outcome, CommandError> {
        self.client_command(&meta, tenant_id, client_id, || {
            OAuthClientCommand::Update(changes.clone())
        })
        .await
    }

    /// Replaces a confidential client's secret; the previous one stops working at once.
    pub async fn regenerate_client_secret(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
    ) -> Result<RegeneratedSecret, CommandError> {
        let client_secret = crypto::generate_client_secret().map_err(internal)?;
        let secret_hash = self.crypto.secret_hash(&client_secret);
        let outcome = self
            .client_command(&meta, tenant_id, client_id, || {
                OAuthClientCommand::RegenerateSecret { secret_hash }
            })
            .await?;
        Ok(RegeneratedSecret {
            client_secret,
            position: outcome.position,
        })
    }

    /// Deactivates a client: it can no longer authenticate and its tokens stop introspecting
    /// as active.
    pub async fn deactivate_client(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
        reason: Option<String>,
    ) -> Result<Outcome, CommandError> {
        self.client_command(&meta, tenant_id, client_id, || {
            OAuthClientCommand::Deactivate {
                reason: reason.clone(),
            }
        })
        .await
    }

    /// Records an issued access token. Returns once the event is durable.
    pub async fn record_token_issued(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        issued: TokenIssuedV1,
    ) -> Result<u64, CommandError> {
        let stream = streams::client_tokens(tenant_id, &issued.client_id);
        self.record(meta, tenant_id, stream, Event::TokenIssued(issued))
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

    pub(super) async fn record(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        stream_id: String,
        event: Event,
    ) -> Result<u64, CommandError> {
        let write = self.write(
            &meta,
            self.clock.now(),
            stream_id,
            ExpectedVersion::Any,
            tenant_id,
            vec![event],
        );
        match self.log.append(vec![write]).await {
            Ok(outcome) => Ok(outcome.last_position),
            Err(AppendError::Unavailable(cause)) => Err(CommandError::Unavailable(cause)),
            Err(other) => Err(CommandError::Internal(other.to_string())),
        }
    }

    async fn client_command(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
        command: impl Fn() -> OAuthClientCommand,
    ) -> Result<Outcome, CommandError> {
        let ((), position) = self
            .execute::<OAuthClientState, ()>(
                meta,
                tenant_id,
                &streams::oauth_client(tenant_id, client_id),
                |_| Ok((command(), ())),
            )
            .await?;
        Ok(Outcome { position })
    }
}
