//! The integration catalogue's write side (issue 20): the operator's integrations
//! (`{system}/integration/{integration}`) and a tenant's own OAuth app for one
//! (`{tenant}/integration-app/{integration}`), with their client secrets sealed in the vault
//! (the system tenant's for the platform's apps, the tenant's own for its app) before the
//! command appends them; and [`CommandService::oauth_app`], the app a tenant's connect flow and
//! refreshes use, its secret opened.
//!
//! Input is checked before anything is sealed, so that a refused command seals nothing (a
//! first seal creates the vault's first key version, which is an append of its own).

use tessera_domain::Aggregate;
use tessera_domain::integration::{
    self, Definition, Integration, IntegrationCommand, IntegrationState,
};
use tessera_domain::integration_app::{
    self, IntegrationApp, IntegrationAppCommand, IntegrationAppState,
};
use tessera_event_schemas::events::OAuthAppSource;
use tessera_event_schemas::{EventMetadata, SYSTEM_TENANT_ID, streams};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::CommandService;
use super::engine::{Address, Kind, Plan};
use crate::CommandError;

impl Kind for IntegrationState {
    const KIND: &'static str = "integration";
}

impl Kind for IntegrationAppState {
    const KIND: &'static str = "integration_app";
}

impl Address<IntegrationState> {
    fn integration(name: &str) -> Self {
        Self::new(streams::integration(name), name)
    }
}

impl Address<IntegrationAppState> {
    fn integration_app(tenant_id: Uuid, name: &str) -> Self {
        Self::new(streams::integration_app(tenant_id, name), name)
    }
}

/// The OAuth app a tenant's connections to an integration use: the tenant's own when it set
/// one, else the platform's; the secret opened.
pub struct OAuthApp {
    pub integration: Integration,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
    /// The tenant app's scopes when it gave some, else the integration's.
    pub scopes: Vec<String>,
    pub source: OAuthAppSource,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl CommandService {
    /// An integration, if defined.
    pub async fn integration(&self, name: &str) -> Result<Option<Integration>, CommandError> {
        integration::name(name)?;
        let address = Address::integration(name);
        Ok(self
            .load::<IntegrationState>(&address.stream)
            .await?
            .state
            .integration)
    }

    /// Defines (or replaces) an integration; the platform's client secret, when given, is
    /// sealed under the system tenant's vault first. Platform administrators only (the API
    /// checks).
    pub async fn define_integration(
        &self,
        meta: EventMetadata,
        name: &str,
        definition: Definition,
        client_secret: Option<&str>,
    ) -> Result<u64, CommandError> {
        integration::name(name)?;
        integration::resolve(&definition)?;
        let address = Address::integration(name);
        let sealed = match client_secret {
            Some(secret) => Some(
                self.vault_seal(SYSTEM_TENANT_ID, &address.stream, secret.as_bytes())
                    .await?
                    .0,
            ),
            None => None,
        };
        let ((), position) = self
            .execute::<IntegrationState, ()>(&meta, SYSTEM_TENANT_ID, &address, |_| {
                Ok((
                    IntegrationCommand::Define {
                        definition: definition.clone(),
                        sealed_client_secret: sealed.clone(),
                    },
                    (),
                ))
            })
            .await?;
        Ok(position)
    }

    /// Removes an integration: no new connect flow starts; connections stay readable.
    pub async fn remove_integration(
        &self,
        meta: EventMetadata,
        name: &str,
    ) -> Result<u64, CommandError> {
        integration::name(name)?;
        let address = Address::integration(name);
        let ((), position) = self
            .execute::<IntegrationState, ()>(&meta, SYSTEM_TENANT_ID, &address, |_| {
                Ok((IntegrationCommand::Remove, ()))
            })
            .await?;
        Ok(position)
    }

    /// A tenant's own app for an integration, if set.
    pub async fn integration_app(
        &self,
        tenant_id: Uuid,
        name: &str,
    ) -> Result<Option<IntegrationApp>, CommandError> {
        integration::name(name)?;
        let address = Address::integration_app(tenant_id, name);
        Ok(self
            .load::<IntegrationAppState>(&address.stream)
            .await?
            .state
            .app)
    }

    /// Sets (or replaces) a tenant's own app for a defined integration; its secret, when given,
    /// is sealed under the tenant's vault first. The tenant must be open and the integration
    /// defined; both streams are guarded at the versions read.
    pub async fn set_integration_app(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        name: &str,
        client_id: &str,
        client_secret: Option<&str>,
        scopes: Option<Vec<String>>,
    ) -> Result<u64, CommandError> {
        integration::name(name)?;
        integration_app::check(client_id, scopes.as_deref())?;
        let integration_address = Address::integration(name);
        if self.integration(name).await?.is_none() {
            return Err(integration_address.not_found());
        }
        self.load_open_tenant(tenant_id, "set an integration app")
            .await?;
        let address = Address::integration_app(tenant_id, name);
        let sealed = match client_secret {
            Some(secret) => Some(
                self.vault_seal(tenant_id, &address.stream, secret.as_bytes())
                    .await?
                    .0,
            ),
            None => None,
        };
        let command = IntegrationAppCommand::Set {
            client_id: client_id.to_owned(),
            sealed_client_secret: sealed,
            scopes,
        };
        self.decide_integration_app(meta, tenant_id, &address, &integration_address, command)
            .await
    }

    /// Removes a tenant's own app: the tenant is back on the platform's.
    pub async fn remove_integration_app(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        name: &str,
    ) -> Result<u64, CommandError> {
        integration::name(name)?;
        let address = Address::integration_app(tenant_id, name);
        let integration_address = Address::integration(name);
        self.decide_integration_app(
            meta,
            tenant_id,
            &address,
            &integration_address,
            IntegrationAppCommand::Remove,
        )
        .await
    }

    async fn decide_integration_app(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        address: &Address<IntegrationAppState>,
        integration_address: &Address<IntegrationState>,
        command: IntegrationAppCommand,
    ) -> Result<u64, CommandError> {
        let meta = &meta;
        let command = &command;
        let ((), position) = self
            .run(&address.stream, move || async move {
                let (_, tenant_stream, tenant_version) = self
                    .load_open_tenant(tenant_id, "change an integration app")
                    .await?;
                let integration = self
                    .load::<IntegrationState>(&integration_address.stream)
                    .await?;
                if integration.state.integration.is_none() {
                    return Err(integration_address.not_found());
                }
                let loaded = self.load::<IntegrationAppState>(&address.stream).await?;
                let events = loaded
                    .state
                    .decide(command.clone())
                    .map_err(|error| loaded.reject(error, address))?;
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.guard(integration_address.stream.clone(), integration.version);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    address.stream.clone(),
                    loaded.expected(),
                    tenant_id,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(position)
    }

    /// The OAuth app a tenant's connections to `name` use, its secret opened: the tenant's own
    /// when set, else the platform's. `None` when the integration is not defined.
    pub async fn oauth_app(
        &self,
        tenant_id: Uuid,
        name: &str,
    ) -> Result<Option<OAuthApp>, CommandError> {
        let Some(integration) = self.integration(name).await? else {
            return Ok(None);
        };
        let (client_id, sealed, owner, stream, scopes, source) =
            match self.integration_app(tenant_id, name).await? {
                Some(app) => (
                    app.client_id,
                    app.sealed_client_secret,
                    tenant_id,
                    streams::integration_app(tenant_id, name),
                    app.scopes.unwrap_or_else(|| integration.scopes.clone()),
                    OAuthAppSource::Tenant,
                ),
                None => (
                    integration.client_id.clone(),
                    integration.sealed_client_secret.clone(),
                    SYSTEM_TENANT_ID,
                    streams::integration(name),
                    integration.scopes.clone(),
                    OAuthAppSource::Platform,
                ),
            };
        let opened = self.vault_open(owner, &stream, &sealed).await?;
        let client_secret =
            Zeroizing::new(String::from_utf8(opened.to_vec()).map_err(|_| {
                CommandError::Internal("a sealed client secret is not UTF-8".into())
            })?);
        Ok(Some(OAuthApp {
            integration,
            client_id,
            client_secret,
            scopes,
            source,
        }))
    }
}
