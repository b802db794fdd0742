//! OAuth client commands: registration on an open tenant, changes, secret regeneration and
//! deactivation, through the `OAuthClientState` aggregate.
//!
//! A confidential client's secret is generated here and stored only as its keyed hash; the
//! plaintext is returned once.

use std::fmt;

use tessera_domain::oauth_client::{
    ClientChanges, NewClient, OAuthClientCommand, OAuthClientState,
};
use tessera_event_schemas::events::{ClientType, OidcClientSettingsV1};
use tessera_event_schemas::{EventMetadata, streams};
use uuid::Uuid;

use super::engine::{Address, Kind};
use super::{CommandService, Outcome};
use crate::CommandError;
use tessera_crypto as crypto;

impl Kind for OAuthClientState {
    const KIND: &'static str = "oauth_client";
}

impl Address<OAuthClientState> {
    pub(super) fn oauth_client(tenant_id: Uuid, client_id: &str) -> Self {
        Self::new(streams::oauth_client(tenant_id, client_id), client_id)
    }
}

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
    pub oidc: OidcClientSettingsV1,
}

impl RegisterClient {
    /// The client `client_id` as the aggregate registers it, with its secret's keyed hash.
    fn into_new(
        self,
        client_id: &str,
        secret_hash: Option<tessera_event_schemas::Hash32>,
    ) -> NewClient {
        NewClient {
            client_id: client_id.to_owned(),
            name: self.name,
            client_type: self.client_type,
            grant_types: self.grant_types,
            redirect_uris: self.redirect_uris,
            allowed_scopes: self.allowed_scopes,
            access_token_ttl_secs: self.access_token_ttl_secs,
            secret_hash,
            created_by: self.created_by,
            oidc: self.oidc,
        }
    }
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
            ClientType::Confidential => Some(crypto::generate_client_secret()?),
            ClientType::Public => None,
        };
        let secret_hash = client_secret
            .as_deref()
            .map(|secret| self.crypto.secret_hash(secret));
        let position = self
            .register(&meta, tenant_id, input.into_new(&client_id, secret_hash))
            .await?;
        Ok(RegisteredClient {
            client_id,
            client_secret,
            position,
        })
    }

    /// Registers one of Tessera's own clients under a fixed id (`client_id`), such as the one
    /// seed 002's frontend flow issues its access tokens for, unless the tenant already has a
    /// client of that id. Returns the position of the registration, or `None` when the client
    /// was already there (registered before, perhaps by another server at the same moment:
    /// the client stream's expected version decides which registration counts).
    pub async fn register_builtin_client(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
        input: RegisterClient,
    ) -> Result<Option<u64>, CommandError> {
        let new = input.into_new(client_id, None);
        match self.register(&meta, tenant_id, new).await {
            Ok(position) => Ok(Some(position)),
            Err(CommandError::Rejected(tessera_domain::DomainError::AlreadyExists(_))) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Registers `new` on the open tenant, on the client stream's expected version.
    async fn register(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        new: NewClient,
    ) -> Result<u64, CommandError> {
        let address = Address::oauth_client(tenant_id, &new.client_id);
        let ((), position) = self
            .execute_in_open_tenant(meta, tenant_id, "register a client", &address, |_, _| {
                Ok((OAuthClientCommand::Register(Box::new(new.clone())), ()))
            })
            .await?;
        Ok(position)
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
        let client_secret = crypto::generate_client_secret()?;
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
                &Address::oauth_client(tenant_id, client_id),
                |_| Ok((command(), ())),
            )
            .await?;
        Ok(Outcome { position })
    }
}
