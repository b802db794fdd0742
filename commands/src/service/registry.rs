//! The tenant registry's commercial commands (issue 21, ADR 0005): the catalog
//! (`{system}/product/{key}`), a tenant's entitlements and trials
//! (`{tenant}/entitlement/{product}`), requests for products, and a client's choice of tenant
//! claims (on its own stream).
//!
//! A grant or a trial reads the product and the tenant and guards both streams at the versions
//! read, so a product removed (or a tenant archived, or its plan changed) meanwhile makes the
//! attempt read again instead of slipping past. Expiry appends `entitlement.expired` expecting
//! the version read, so that servers sweeping at once append it once.

use tessera_domain::Aggregate;
use tessera_domain::entitlement::{EntitlementCommand, EntitlementState};
use tessera_domain::product::{self, Product, ProductCommand, ProductState};
use tessera_domain::tenant_claims::ClientClaimsState;
use tessera_event_schemas::events::{ProductRequestedV1, TenantClaimsChoice};
use tessera_event_schemas::{Event, EventMetadata, SYSTEM_TENANT_ID, Timestamp, streams};
use uuid::Uuid;

use super::engine::{Address, Kind, Plan};
use super::{CommandService, Outcome};
use crate::CommandError;

impl Kind for ProductState {
    const KIND: &'static str = "product";
}

impl Kind for EntitlementState {
    const KIND: &'static str = "entitlement";
}

impl Kind for ClientClaimsState {
    const KIND: &'static str = "oauth_client";
}

impl Address<ProductState> {
    pub(super) fn product(key: &str) -> Self {
        Self::new(streams::product(key), key)
    }
}

impl Address<EntitlementState> {
    pub(super) fn entitlement(tenant_id: Uuid, product: &str) -> Self {
        Self::new(streams::entitlement(tenant_id, product), product)
    }
}

/// What a grant sets (`PUT /v1/tenants/{id}/entitlements/{product}`).
#[derive(Clone, Debug)]
pub struct GrantEntitlement {
    pub enabled: bool,
    pub config_json: String,
    pub expires_at: Option<Timestamp>,
}

fn checked_key(key: &str) -> Result<(), CommandError> {
    product::key(key).map_err(CommandError::Rejected)
}

impl CommandService {
    /// Defines or replaces a catalog product. The same entry again appends nothing.
    pub async fn put_product(
        &self,
        meta: EventMetadata,
        key: &str,
        entry: Product,
    ) -> Result<Outcome, CommandError> {
        checked_key(key)?;
        let ((), position) = self
            .execute::<ProductState, ()>(&meta, SYSTEM_TENANT_ID, &Address::product(key), |_| {
                Ok((ProductCommand::Put(entry.clone()), ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Removes a catalog product; from the answer on, no token carries it.
    pub async fn remove_product(
        &self,
        meta: EventMetadata,
        key: &str,
    ) -> Result<Outcome, CommandError> {
        checked_key(key)?;
        let ((), position) = self
            .execute::<ProductState, ()>(&meta, SYSTEM_TENANT_ID, &Address::product(key), |_| {
                Ok((ProductCommand::Remove, ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Records a tenant's request for a product (a fact). The tenant must exist and not be
    /// archived, and the product must be in the catalog (else not found).
    pub async fn request_product(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key: &str,
        requested_by: Option<String>,
    ) -> Result<Outcome, CommandError> {
        checked_key(key)?;
        self.load_open_tenant(tenant_id, "request a product")
            .await?;
        self.catalog_product(key).await?;
        let event = Event::ProductRequested(ProductRequestedV1 { requested_by });
        let position = self
            .record(meta, tenant_id, streams::entitlement(tenant_id, key), event)
            .await?;
        Ok(Outcome { position })
    }

    /// The product `key` as the catalog has it, with its stream's version; not found when it
    /// is absent.
    async fn catalog_product(&self, key: &str) -> Result<(Product, u64), CommandError> {
        let address = Address::<ProductState>::product(key);
        let loaded = self.load::<ProductState>(&address.stream).await?;
        match loaded.state.product {
            Some(product) => Ok((product, loaded.version)),
            None => Err(address.not_found()),
        }
    }

    /// Sets a tenant's entitlement to a product of the catalog (first grant or change).
    pub async fn grant_entitlement(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key: &str,
        grant: GrantEntitlement,
    ) -> Result<Outcome, CommandError> {
        self.on_entitlement(meta, tenant_id, key, "grant an entitlement", |_, _| {
            Ok(EntitlementCommand::Grant {
                enabled: grant.enabled,
                config_json: grant.config_json.clone(),
                expires_at: grant.expires_at,
                now: self.clock.now(),
            })
        })
        .await
    }

    /// Starts the tenant's one trial of a product: 14 days, enabled.
    pub async fn start_trial(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key: &str,
    ) -> Result<Outcome, CommandError> {
        self.on_entitlement(meta, tenant_id, key, "start a trial", |plan, product| {
            Ok(EntitlementCommand::StartTrial {
                product: product.clone(),
                plan: plan.to_owned(),
                now: self.clock.now(),
            })
        })
        .await
    }

    /// A command on a tenant's entitlement to a catalog product: the tenant open, the product
    /// in the catalog, both guarded at the versions read. `command` sees the tenant's plan and
    /// the product.
    async fn on_entitlement(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key: &str,
        action: &'static str,
        command: impl Fn(&str, &Product) -> Result<EntitlementCommand, CommandError>,
    ) -> Result<Outcome, CommandError> {
        checked_key(key)?;
        let address = Address::<EntitlementState>::entitlement(tenant_id, key);
        let (meta, address, command) = (&meta, &address, &command);
        let ((), position) = self
            .run(&address.stream, move || async move {
                let (open, tenant_stream, tenant_version) =
                    self.load_open_tenant(tenant_id, action).await?;
                let (product, product_version) = self.catalog_product(key).await?;
                let loaded = self.load::<EntitlementState>(&address.stream).await?;
                let events = loaded
                    .state
                    .decide(command(&open.plan, &product)?)
                    .map_err(|error| loaded.reject(error, address))?;
                let mut plan = Plan::new((), loaded.position);
                plan.guard(tenant_stream, tenant_version);
                plan.guard(streams::product(key), product_version);
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
        Ok(Outcome { position })
    }

    /// Revokes a tenant's entitlement; not found when none is in effect.
    pub async fn revoke_entitlement(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key: &str,
    ) -> Result<Outcome, CommandError> {
        checked_key(key)?;
        let address = Address::<EntitlementState>::entitlement(tenant_id, key);
        let ((), position) = self
            .execute::<EntitlementState, ()>(&meta, tenant_id, &address, |_| {
                Ok((EntitlementCommand::Revoke, ()))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Appends `entitlement.expired` if the entitlement's expiry has passed (the sweeper's
    /// command); nothing otherwise, so a stale caller can delay an expiry but never cause a
    /// wrong one.
    pub async fn expire_entitlement(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        key: &str,
    ) -> Result<Outcome, CommandError> {
        checked_key(key)?;
        let address = Address::<EntitlementState>::entitlement(tenant_id, key);
        let ((), position) = self
            .execute::<EntitlementState, ()>(&meta, tenant_id, &address, |_| {
                Ok((
                    EntitlementCommand::Expire {
                        now: self.clock.now(),
                    },
                    (),
                ))
            })
            .await?;
        Ok(Outcome { position })
    }

    /// Sets which tenant claims a client's tokens carry.
    pub async fn set_client_token_claims(
        &self,
        meta: EventMetadata,
        tenant_id: Uuid,
        client_id: &str,
        choice: TenantClaimsChoice,
    ) -> Result<Outcome, CommandError> {
        let address = Address::<ClientClaimsState>::new(
            streams::oauth_client(tenant_id, client_id),
            client_id,
        );
        let ((), position) = self
            .execute::<ClientClaimsState, ()>(&meta, tenant_id, &address, |_| {
                Ok((choice.clone(), ()))
            })
            .await?;
        Ok(Outcome { position })
    }
}
