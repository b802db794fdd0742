//! The registry: an in-memory read model of the catalog, each tenant's entitlements and each
//! client's choice of tenant claims (issue 21, ADR 0005), for the catalog and entitlement
//! routes, the claims resolver and the token endpoint, which read it on every request.
//!
//! It follows the log like the session directory, from position 0 at each start, reading only
//! `product.*`, `entitlement.*` and `oauth_client.token_claims_set`, skipping every other event
//! before decoding it (no snapshot: its events are few). The product key of an event is its
//! stream's (`{system}/product/{key}`, `{tenant}/entitlement/{product}`).
//!
//! **Precomputed claims.** Each tenant's `products` claim (enabled entitlements to products in
//! the catalog, with their expiries) is computed once per change of the tenant's entitlements
//! or of the catalog, and shared as an `Arc`; a token asks it with the time of issuance, which
//! drops what expired since without waiting for the sweeper's `entitlement.expired`.
//!
//! **Bounds.** One entry per catalog product, per entitlement in effect and per client that
//! chose its claims; nothing grows with traffic.
//!
//! **Read-your-writes.** The API waits for [`Registry::wait_for`] the position of its write
//! before answering, so the next request served by this process (a token, a resolution) sees
//! it: no product removed is served once its removal has been answered.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tessera_event_log::EventLog;
use tessera_event_schemas::events::TenantClaimsChoice;
use tessera_event_schemas::{Event, RecordedEvent, StreamId, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::WaitTimeout;

/// A catalog entry (seed 003's `CatalogEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    pub key: String,
    pub name: String,
    pub description: String,
    pub plans_required: Vec<String>,
    pub demo_url: Option<String>,
    pub supports_trial: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A tenant's entitlement in effect (seed 003's `TenantProduct`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntitlementEntry {
    pub tenant_id: Uuid,
    pub product: String,
    pub enabled: bool,
    pub config_json: String,
    pub expires_at: Option<Timestamp>,
    pub trial: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A tenant's `products` claim as precomputed: enabled entitlements to catalog products,
/// sorted by key, with the soonest expiry among them.
#[derive(Debug, Default)]
pub struct TenantProducts {
    items: Vec<(String, Option<Timestamp>)>,
    soonest_expiry: Option<Timestamp>,
}

impl TenantProducts {
    /// The product keys in effect at `now`.
    pub fn at(&self, now: Timestamp) -> impl Iterator<Item = &str> {
        let all = self.soonest_expiry.is_none_or(|soonest| soonest > now);
        self.items
            .iter()
            .filter(move |(_, expires)| all || expires.is_none_or(|at| at > now))
            .map(|(key, _)| key.as_str())
    }
}

#[derive(Default)]
struct Inner {
    products: BTreeMap<String, CatalogEntry>,
    entitlements: HashMap<Uuid, BTreeMap<String, EntitlementEntry>>,
    /// Clients that chose other than all claims, by tenant then client id (nested, so that a
    /// lookup borrows the client id).
    claims: HashMap<Uuid, HashMap<String, TenantClaimsChoice>>,
    computed: HashMap<Uuid, Arc<TenantProducts>>,
    position: u64,
}

/// The in-memory registry; see the module doc.
pub struct Registry {
    inner: RwLock<Inner>,
    position: watch::Sender<u64>,
}

/// Whether the registry reads events of this type.
fn folded(event_type: &str) -> bool {
    event_type.starts_with("product.")
        || event_type.starts_with("entitlement.")
        || event_type == "oauth_client.token_claims_set"
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: RwLock::default(),
            position: watch::channel(0).0,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // Each fold is a few map operations: a panic cannot leave one half applied.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Folds a batch of events read from the log, in order, and publishes the new position.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<(), (u64, String)> {
        let decoded: Vec<(&RecordedEvent, Event)> = events
            .iter()
            .filter(|recorded| folded(&recorded.envelope.event_type))
            .map(|recorded| {
                recorded
                    .decode()
                    .map(|event| (recorded, event))
                    .map_err(|error| (recorded.envelope.global_position, error.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        let position = last.envelope.global_position;
        {
            let mut inner = self.write();
            for (recorded, event) in &decoded {
                inner.fold(recorded, event);
            }
            inner.position = inner.position.max(position);
        }
        self.position.send_if_modified(|current| {
            let advanced = position > *current;
            *current = (*current).max(position);
            advanced
        });
        Ok(())
    }

    /// The last global position folded.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the registry has folded `position`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitTimeout> {
        let mut rx = self.position.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(WaitTimeout {
                wanted: position,
                projected: self.position(),
            }),
        }
    }

    /// The catalog, by key.
    pub fn catalog(&self) -> Vec<CatalogEntry> {
        self.read().products.values().cloned().collect()
    }

    pub fn product(&self, key: &str) -> Option<CatalogEntry> {
        self.read().products.get(key).cloned()
    }

    /// A tenant's entitlements in effect (enabled or not, expired or not yet swept), by product.
    pub fn entitlements(&self, tenant_id: Uuid) -> Vec<EntitlementEntry> {
        self.read()
            .entitlements
            .get(&tenant_id)
            .map(|by_product| by_product.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn entitlement(&self, tenant_id: Uuid, product: &str) -> Option<EntitlementEntry> {
        self.read()
            .entitlements
            .get(&tenant_id)
            .and_then(|by_product| by_product.get(product))
            .cloned()
    }

    /// The tenant's precomputed `products` claim; ask it with the time of issuance.
    pub fn tenant_products(&self, tenant_id: Uuid) -> Arc<TenantProducts> {
        self.read()
            .computed
            .get(&tenant_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The client's choice of tenant claims (all, unless it chose).
    pub fn client_claims(&self, tenant_id: Uuid, client_id: &str) -> TenantClaimsChoice {
        self.read()
            .claims
            .get(&tenant_id)
            .and_then(|clients| clients.get(client_id))
            .cloned()
            .unwrap_or(TenantClaimsChoice::All)
    }

    /// A tenant's `products` claim and a client's choice of claims, under one lock: what a
    /// token needs of the registry.
    pub fn for_token(&self, tenant_id: Uuid, client_id: &str) -> (Arc<TenantProducts>, u8) {
        let inner = self.read();
        let products = inner.computed.get(&tenant_id).cloned().unwrap_or_default();
        let mask = inner
            .claims
            .get(&tenant_id)
            .and_then(|clients| clients.get(client_id))
            .map_or(u8::MAX, tessera_domain::tenant_claims::mask);
        (products, mask)
    }

    /// Entitlements whose expiry has passed at `now` and that the log has not expired yet.
    pub fn due(&self, now: Timestamp) -> Vec<(Uuid, String)> {
        self.read()
            .entitlements
            .values()
            .flat_map(|by_product| by_product.values())
            .filter(|entry| entry.expires_at.is_some_and(|at| at <= now))
            .map(|entry| (entry.tenant_id, entry.product.clone()))
            .collect()
    }

    /// Follows `log` from the beginning, folding every event it reads, until stopped.
    pub fn follow(self: &Arc<Self>, log: Arc<dyn EventLog>) -> RegistryTask {
        let registry = self.clone();
        let (stop, stop_rx) = watch::channel(false);
        let from = registry.position();
        let task = tokio::spawn(async move {
            crate::follow::follow_log(log, from, "registry", stop_rx, |batch| {
                registry.apply(batch)
            })
            .await;
        });
        RegistryTask { stop, task }
    }
}

/// The task that keeps a [`Registry`] current.
pub struct RegistryTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RegistryTask {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "registry task failed");
        }
    }
}

impl Inner {
    fn fold(&mut self, recorded: &RecordedEvent, event: &Event) {
        let envelope = &recorded.envelope;
        let at = envelope.recorded_at;
        match (StreamId::parse(&envelope.stream_id), event) {
            (Some(StreamId::Product(key)), Event::ProductDefined(e)) => {
                self.products.insert(
                    key.clone(),
                    CatalogEntry {
                        key,
                        name: e.name.clone(),
                        description: e.description.clone(),
                        plans_required: e.plans_required.clone(),
                        demo_url: e.demo_url.clone(),
                        supports_trial: e.supports_trial,
                        created_at: at,
                        updated_at: at,
                    },
                );
                self.recompute_all();
            }
            (Some(StreamId::Product(key)), Event::ProductUpdated(e)) => {
                if let Some(entry) = self.products.get_mut(&key) {
                    entry.name.clone_from(&e.name);
                    entry.description.clone_from(&e.description);
                    entry.plans_required.clone_from(&e.plans_required);
                    entry.demo_url.clone_from(&e.demo_url);
                    entry.supports_trial = e.supports_trial;
                    entry.updated_at = at;
                }
            }
            (Some(StreamId::Product(key)), Event::ProductRemoved(_)) => {
                self.products.remove(&key);
                self.recompute_all();
            }
            (Some(StreamId::Entitlement { tenant_id, product }), _) => {
                let by_product = self.entitlements.entry(tenant_id).or_default();
                let set = |enabled, config_json: String, expires_at, trial| EntitlementEntry {
                    tenant_id,
                    product: product.clone(),
                    enabled,
                    config_json,
                    expires_at,
                    trial,
                    created_at: by_product.get(&product).map_or(at, |old| old.created_at),
                    updated_at: at,
                };
                match event {
                    Event::EntitlementGranted(e) => {
                        let entry = set(e.enabled, e.config_json.clone(), e.expires_at, false);
                        by_product.insert(product.clone(), entry);
                    }
                    Event::EntitlementTrialStarted(e) => {
                        let entry = set(true, "{}".to_owned(), Some(e.expires_at), true);
                        by_product.insert(product.clone(), entry);
                    }
                    Event::EntitlementRevoked(_) | Event::EntitlementExpired(_) => {
                        by_product.remove(&product);
                    }
                    // A request changes nothing held here.
                    _ => return,
                }
                if by_product.is_empty() {
                    self.entitlements.remove(&tenant_id);
                }
                self.recompute(tenant_id);
            }
            (
                Some(StreamId::OAuthClient {
                    tenant_id,
                    client_id,
                }),
                Event::OAuthClientTokenClaimsSet(e),
            ) => {
                let clients = self.claims.entry(tenant_id).or_default();
                if e.tenant_claims == TenantClaimsChoice::All {
                    clients.remove(&client_id);
                } else {
                    clients.insert(client_id, e.tenant_claims.clone());
                }
            }
            _ => {}
        }
    }

    fn recompute(&mut self, tenant_id: Uuid) {
        let Some(by_product) = self.entitlements.get(&tenant_id) else {
            self.computed.remove(&tenant_id);
            return;
        };
        let items: Vec<(String, Option<Timestamp>)> = by_product
            .values()
            .filter(|entry| entry.enabled && self.products.contains_key(&entry.product))
            .map(|entry| (entry.product.clone(), entry.expires_at))
            .collect();
        let soonest_expiry = items.iter().filter_map(|(_, at)| *at).min();
        self.computed.insert(
            tenant_id,
            Arc::new(TenantProducts {
                items,
                soonest_expiry,
            }),
        );
    }

    /// A change of the catalog changes every tenant's claim that names the product; the
    /// catalog changes seldom, so all are recomputed.
    fn recompute_all(&mut self) {
        let tenants: Vec<Uuid> = self.entitlements.keys().copied().collect();
        for tenant_id in tenants {
            self.recompute(tenant_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::{
        EntitlementExpiredV1, EntitlementGrantedV1, OAuthClientTokenClaimsSetV1, ProductDefinedV1,
        ProductRemovedV1, ProductRequestedV1,
    };
    use tessera_event_schemas::{Envelope, streams};

    use super::*;

    const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);

    fn recorded(position: u64, stream: String, event: &Event) -> RecordedEvent {
        RecordedEvent {
            envelope: Envelope::builder()
                .event_id(Uuid::from_u128(u128::from(position)))
                .stream(stream)
                .position(position)
                .tenant(TENANT)
                .event(event)
                .recorded_at(Timestamp::from_micros(
                    1_000 * i64::try_from(position).unwrap(),
                ))
                .correlation_id("c")
                .build(),
            payload: event.encode(),
        }
    }

    fn defined(position: u64, key: &str) -> RecordedEvent {
        let event = Event::ProductDefined(ProductDefinedV1 {
            name: key.into(),
            description: String::new(),
            plans_required: vec![],
            demo_url: None,
            supports_trial: true,
        });
        recorded(position, streams::product(key), &event)
    }

    fn granted(position: u64, key: &str, enabled: bool, expires: Option<i64>) -> RecordedEvent {
        let event = Event::EntitlementGranted(EntitlementGrantedV1 {
            enabled,
            config_json: "{}".into(),
            expires_at: expires.map(Timestamp::from_micros),
        });
        recorded(position, streams::entitlement(TENANT, key), &event)
    }

    fn products(registry: &Registry, now: i64) -> Vec<String> {
        registry
            .tenant_products(TENANT)
            .at(Timestamp::from_micros(now))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_tenants_products_are_its_enabled_unexpired_entitlements_to_catalog_products() {
        let registry = Registry::new();
        registry
            .apply(&[
                defined(1, "crm"),
                defined(2, "erp"),
                defined(3, "bi"),
                granted(4, "crm", true, None),
                granted(5, "erp", true, Some(10_000)),
                granted(6, "bi", false, None),
                granted(7, "gone", true, None),
            ])
            .unwrap();
        assert_eq!(products(&registry, 9_999), ["crm", "erp"]);
        // Past its expiry an entitlement leaves the claim before `entitlement.expired`.
        assert_eq!(products(&registry, 10_000), ["crm"]);
        assert_eq!(
            registry.due(Timestamp::from_micros(10_000)),
            [(TENANT, "erp".to_owned())]
        );

        let removed = Event::ProductRemoved(ProductRemovedV1 {});
        let expired = Event::EntitlementExpired(EntitlementExpiredV1 {
            expires_at: Timestamp::from_micros(10_000),
        });
        let requested = Event::ProductRequested(ProductRequestedV1 { requested_by: None });
        registry
            .apply(&[
                recorded(8, streams::product("crm"), &removed),
                recorded(9, streams::entitlement(TENANT, "erp"), &expired),
                recorded(10, streams::entitlement(TENANT, "bi"), &requested),
            ])
            .unwrap();
        assert!(products(&registry, 0).is_empty());
        assert!(registry.due(Timestamp::from_micros(i64::MAX)).is_empty());
        // The entitlement to the removed product stays, out of effect; a request changes
        // nothing.
        let held: Vec<String> = registry
            .entitlements(TENANT)
            .into_iter()
            .map(|entry| entry.product)
            .collect();
        assert_eq!(held, ["bi", "crm", "gone"]);
        assert_eq!(registry.position(), 10);
    }

    #[test]
    fn a_clients_choice_is_kept_until_it_goes_back_to_all() {
        let registry = Registry::new();
        let set = |choice| {
            Event::OAuthClientTokenClaimsSet(OAuthClientTokenClaimsSetV1 {
                tenant_claims: choice,
            })
        };
        let stream = streams::oauth_client(TENANT, "app");
        registry
            .apply(&[recorded(1, stream.clone(), &set(TenantClaimsChoice::Off))])
            .unwrap();
        assert_eq!(registry.for_token(TENANT, "app").1, 0);
        assert_eq!(registry.for_token(TENANT, "other").1, u8::MAX);
        registry
            .apply(&[recorded(2, stream, &set(TenantClaimsChoice::All))])
            .unwrap();
        assert_eq!(
            registry.client_claims(TENANT, "app"),
            TenantClaimsChoice::All
        );
    }
}
