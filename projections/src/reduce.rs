//! Pure reducers: how each event changes each read model's rows, and the in-memory batch fold.
//!
//! Everything here is deterministic and free of I/O, so it is tested without a database and a
//! rebuild always reproduces what the live projector wrote. A reducer takes the row as it was
//! (or `None`), the envelope and the decoded event, and returns the row as it is now. Events a
//! model does not care about return the row unchanged, and reducers never fail: history that
//! was accepted once must always replay.
//!
//! [`Fold`] applies a whole batch: the runtime first asks it which rows the batch touches
//! ([`Fold::plan`]), loads those rows in one query per table, seeds them in, folds every
//! event in memory ([`Fold::apply`]) and then writes each changed row once
//! ([`Fold::into_changes`]). That coalescing is what makes catch-up fast.

// foldhash, not SipHash: a batch hashes every key it touches several times, and the keys come
// from our own log, not from a client.
use foldhash::{HashMap, HashMapExt, HashSet};
use std::hash::Hash;

use tessera_event_schemas::Envelope;
use tessera_event_schemas::events::{Event, SigningKeyV1, TenantStatus};
use uuid::Uuid;

use crate::audit;
use crate::views::{
    ApiKeyView, AuditRow, PendingCancellation, SigningKeyStatus, SigningKeyView, TenantView,
};

/// The read models, each with its own checkpoint so that one can be rebuilt alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Projection {
    Tenants,
    SigningKeys,
    ApiKeys,
    /// `rm_audit`: one insert-only row per event.
    Audit,
}

impl Projection {
    pub const ALL: [Projection; 4] = [
        Projection::Tenants,
        Projection::SigningKeys,
        Projection::ApiKeys,
        Projection::Audit,
    ];

    /// The key of this projection's row in `rm_checkpoints`.
    pub fn name(self) -> &'static str {
        match self {
            Projection::Tenants => "tenants",
            Projection::SigningKeys => "signing_keys",
            Projection::ApiKeys => "api_keys",
            Projection::Audit => "audit",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Projection::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The global position each projection has applied up to (inclusive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checkpoints {
    pub tenants: u64,
    pub signing_keys: u64,
    pub api_keys: u64,
    pub audit: u64,
}

impl Checkpoints {
    pub fn get(&self, projection: Projection) -> u64 {
        match projection {
            Projection::Tenants => self.tenants,
            Projection::SigningKeys => self.signing_keys,
            Projection::ApiKeys => self.api_keys,
            Projection::Audit => self.audit,
        }
    }

    pub fn set(&mut self, projection: Projection, position: u64) {
        match projection {
            Projection::Tenants => self.tenants = position,
            Projection::SigningKeys => self.signing_keys = position,
            Projection::ApiKeys => self.api_keys = position,
            Projection::Audit => self.audit = position,
        }
    }

    /// Where a subscription must resume so that no projection misses an event.
    pub fn min(&self) -> u64 {
        self.tenants
            .min(self.signing_keys)
            .min(self.api_keys)
            .min(self.audit)
    }

    /// Every projection advanced to at least `position`.
    pub fn advanced_to(self, position: u64) -> Self {
        Self {
            tenants: self.tenants.max(position),
            signing_keys: self.signing_keys.max(position),
            api_keys: self.api_keys.max(position),
            audit: self.audit.max(position),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tenants

/// The tenant row an event changes: every event of a tenant stream, keyed by the envelope's
/// tenant (the tenant comes from the envelope, never from a payload).
pub fn tenant_key(envelope: &Envelope, event: &Event) -> Option<Uuid> {
    match event {
        Event::TenantCreated(_)
        | Event::TenantUpdated(_)
        | Event::TenantSettingsChanged(_)
        | Event::TenantActivated(_)
        | Event::TenantCancelled(_)
        | Event::TenantFrozen(_)
        | Event::TenantSuspended(_)
        | Event::TenantReactivated(_)
        | Event::TenantArchived(_)
        | Event::SigningKeyRotated(_)
        | Event::SigningKeyRetired(_) => Some(envelope.tenant_id),
        Event::ApiKeyIssued(_)
        | Event::ApiKeyRevoked(_)
        | Event::ApiKeyUsed(_)
        | Event::OAuthClientRegistered(_)
        | Event::OAuthClientUpdated(_)
        | Event::OAuthClientSecretRegenerated(_)
        | Event::OAuthClientDeactivated(_)
        | Event::TokenIssued(_)
        | Event::TokenRevoked(_)
        | Event::ReservationClaimed(_)
        | Event::ReservationReleased(_)
        | Event::AuditRecorded(_) => None,
    }
}

/// `rm_tenants`: one row per tenant.
pub fn reduce_tenant(
    row: Option<TenantView>,
    envelope: &Envelope,
    event: &Event,
) -> Option<TenantView> {
    if let Event::TenantCreated(created) = event {
        // The write side creates a tenant once (expected version "no stream"). Should a second
        // creation ever be stored, the first one stands: slug and creation time never change
        // once a row exists, which the read store relies on.
        if row.is_some() {
            return row;
        }
        return Some(TenantView {
            id: envelope.tenant_id,
            slug: created.slug.clone(),
            name: created.name.clone(),
            plan: created.plan.clone(),
            kind: created.kind,
            status: created.status,
            suspended: false,
            suspension_reason: None,
            domains: created.domains.clone(),
            settings: created.settings.clone(),
            config: parse_config(&created.config_json),
            sales_owner: created.sales_owner.clone(),
            erp_customer_id: None,
            trial_ends_at: created.trial_ends_at,
            contract_start: None,
            contract_end: None,
            pending_cancellation: None,
            cancellation_reason: None,
            active_kid: created.signing_key.kid.clone(),
            created_at: envelope.recorded_at,
            updated_at: envelope.recorded_at,
            version: envelope.stream_version,
        });
    }
    // Anything but `tenant.created` for a tenant we have never seen changes nothing: there
    // is no row to change, and inventing one would show a tenant without a slug or key.
    let mut tenant = row?;
    match event {
        Event::TenantUpdated(update) => {
            if let Some(name) = &update.name {
                tenant.name.clone_from(name);
            }
            if let Some(domains) = &update.domains {
                tenant.domains.clone_from(domains);
            }
            if let Some(plan) = &update.plan {
                tenant.plan.clone_from(plan);
            }
            if let Some(config_json) = &update.config_json {
                tenant.config = parse_config(config_json);
            }
            if let Some(owner) = &update.sales_owner {
                tenant.sales_owner = Some(owner.clone());
            }
        }
        Event::TenantSettingsChanged(changed) => tenant.settings = changed.settings.clone(),
        Event::TenantActivated(activated) => {
            tenant.status = TenantStatus::Active;
            tenant.plan.clone_from(&activated.plan);
            // An activation defines the contract, so both dates are taken as given; an ERP id
            // once known is kept when a later activation does not repeat it.
            tenant.contract_start = activated.contract_start;
            tenant.contract_end = activated.contract_end;
            if activated.erp_customer_id.is_some() {
                tenant
                    .erp_customer_id
                    .clone_from(&activated.erp_customer_id);
            }
            tenant.pending_cancellation = None;
            tenant.cancellation_reason = None;
        }
        Event::TenantCancelled(cancelled) => {
            tenant.cancellation_reason = Some(cancelled.reason.clone());
            match cancelled.effective_at {
                None => {
                    tenant.status = TenantStatus::Frozen;
                    tenant.pending_cancellation = None;
                }
                Some(effective_at) => {
                    tenant.pending_cancellation = Some(PendingCancellation {
                        reason: cancelled.reason.clone(),
                        effective_at,
                    });
                }
            }
        }
        Event::TenantFrozen(frozen) => {
            tenant.status = TenantStatus::Frozen;
            tenant.pending_cancellation = None;
            if tenant.cancellation_reason.is_none() {
                tenant.cancellation_reason = Some(frozen.reason.clone());
            }
        }
        Event::TenantSuspended(suspended) => {
            tenant.suspended = true;
            tenant.suspension_reason.clone_from(&suspended.reason);
        }
        Event::TenantReactivated(_) => {
            tenant.suspended = false;
            tenant.suspension_reason = None;
        }
        Event::TenantArchived(_) => tenant.status = TenantStatus::Archived,
        Event::SigningKeyRotated(rotated) => tenant.active_kid.clone_from(&rotated.key.kid),
        Event::SigningKeyRetired(_) => {}
        // Not a tenant-stream event: leave the row exactly as it was (not even `version`).
        Event::TenantCreated(_)
        | Event::ApiKeyIssued(_)
        | Event::ApiKeyRevoked(_)
        | Event::ApiKeyUsed(_)
        | Event::OAuthClientRegistered(_)
        | Event::OAuthClientUpdated(_)
        | Event::OAuthClientSecretRegenerated(_)
        | Event::OAuthClientDeactivated(_)
        | Event::TokenIssued(_)
        | Event::TokenRevoked(_)
        | Event::ReservationClaimed(_)
        | Event::ReservationReleased(_)
        | Event::AuditRecorded(_) => return Some(tenant),
    }
    tenant.updated_at = envelope.recorded_at;
    tenant.version = envelope.stream_version;
    Some(tenant)
}

fn parse_config(config_json: &str) -> serde_json::Value {
    serde_json::from_str(config_json)
        .unwrap_or_else(|_| serde_json::Value::String(config_json.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Signing keys

/// The `(tenant, kid)` rows an event changes.
pub fn signing_key_keys<'e>(envelope: &Envelope, event: &'e Event) -> Vec<(Uuid, &'e str)> {
    let tenant = envelope.tenant_id;
    match event {
        Event::TenantCreated(created) => vec![(tenant, created.signing_key.kid.as_str())],
        Event::SigningKeyRotated(rotated) => vec![
            (tenant, rotated.key.kid.as_str()),
            (tenant, rotated.previous_kid.as_str()),
        ],
        Event::SigningKeyRetired(retired) => vec![(tenant, retired.kid.as_str())],
        _ => Vec::new(),
    }
}

/// `rm_signing_keys`: the row of key `kid` of the envelope's tenant.
pub fn reduce_signing_key(
    row: Option<SigningKeyView>,
    kid: &str,
    envelope: &Envelope,
    event: &Event,
) -> Option<SigningKeyView> {
    match event {
        Event::TenantCreated(created) if created.signing_key.kid == kid => {
            Some(new_active_key(&created.signing_key))
        }
        Event::SigningKeyRotated(rotated) if rotated.key.kid == kid => {
            Some(new_active_key(&rotated.key))
        }
        Event::SigningKeyRotated(rotated) if rotated.previous_kid == kid => {
            row.map(|mut key| {
                // Only the active key steps down to published; a key already retired stays out
                // of the JWKS.
                if key.status == SigningKeyStatus::Active {
                    key.status = SigningKeyStatus::Published;
                }
                key
            })
        }
        Event::SigningKeyRetired(retired) if retired.kid == kid => row.map(|mut key| {
            if key.status != SigningKeyStatus::Retired {
                key.status = SigningKeyStatus::Retired;
                key.retired_at = Some(envelope.recorded_at);
            }
            key
        }),
        _ => row,
    }
}

fn new_active_key(key: &SigningKeyV1) -> SigningKeyView {
    // The sealed private key is deliberately not copied: read models hold public data only.
    SigningKeyView {
        kid: key.kid.clone(),
        alg: key.alg,
        status: SigningKeyStatus::Active,
        created_at: key.created_at,
        retired_at: None,
        public_jwk: key.public_jwk.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// API keys

/// The API key row an event changes. `api_key.revoked` and `api_key.used` do not repeat the
/// key id, so it is read from the stream id (`{tenant}/api-key/{key}`).
pub fn api_key_key(envelope: &Envelope, event: &Event) -> Option<Uuid> {
    match event {
        Event::ApiKeyIssued(issued) => Some(issued.key_id),
        Event::ApiKeyRevoked(_) | Event::ApiKeyUsed(_) => api_key_id_of_stream(&envelope.stream_id),
        _ => None,
    }
}

fn api_key_id_of_stream(stream_id: &str) -> Option<Uuid> {
    use tessera_event_schemas::StreamId;
    match StreamId::parse(stream_id)? {
        StreamId::ApiKey { key_id, .. } => Some(key_id),
        _ => None,
    }
}

/// `rm_api_keys`: one row per key.
pub fn reduce_api_key(
    row: Option<ApiKeyView>,
    envelope: &Envelope,
    event: &Event,
) -> Option<ApiKeyView> {
    match event {
        // As with tenants, a key is issued once; the first issue stands, so the tenant, hash
        // and creation time never change once a row exists.
        Event::ApiKeyIssued(_) if row.is_some() => row,
        Event::ApiKeyIssued(issued) => Some(ApiKeyView {
            key_id: issued.key_id,
            tenant_id: envelope.tenant_id,
            secret_hash: *issued.secret_hash.expose(),
            name: issued.name.clone(),
            prefix: issued.prefix.clone(),
            scopes: issued.scopes.clone(),
            product: issued.product.clone(),
            created_by: issued.created_by.clone(),
            created_at: envelope.recorded_at,
            expires_at: issued.expires_at,
            revoked_at: None,
            use_count: 0,
            last_used_at: None,
        }),
        Event::ApiKeyRevoked(_) => row.map(|mut key| {
            // The first revocation is the one that counts; a repeat does not move the time.
            if key.revoked_at.is_none() {
                key.revoked_at = Some(envelope.recorded_at);
            }
            key
        }),
        // Usage is history: it counts whatever the key's state, revoked or expired. Usage of a
        // key with no row (never issued) has nothing to attach to and is dropped.
        Event::ApiKeyUsed(used) => row.map(|mut key| {
            key.use_count = key.use_count.saturating_add(used.uses);
            key.last_used_at = key.last_used_at.max(Some(used.last_used_at));
            key
        }),
        _ => row,
    }
}

// ---------------------------------------------------------------------------------------------
// The batch fold

/// A row as loaded from the store and as the batch has left it.
#[derive(Debug)]
struct Slot<R> {
    row: Option<R>,
    /// Whether the store held the row before this batch (a `None` now means delete).
    existed: bool,
    /// Whether any event of the batch went through the reducer for this row.
    dirty: bool,
}

#[derive(Debug)]
struct Table<K, R> {
    slots: HashMap<K, Slot<R>>,
}

impl<K: Eq + Hash + Ord + Clone, R> Table<K, R> {
    fn new() -> Self {
        Self {
            slots: HashMap::new(),
        }
    }

    fn seed(&mut self, key: K, row: R) {
        self.slots.insert(
            key,
            Slot {
                row: Some(row),
                existed: true,
                dirty: false,
            },
        );
    }

    fn update(&mut self, key: K, reduce: impl FnOnce(Option<R>) -> Option<R>) {
        // A key that was not seeded is, by construction, not in the store (every key `apply`
        // touches was listed by `plan` and loaded).
        let slot = self.slots.entry(key).or_insert(Slot {
            row: None,
            existed: false,
            dirty: false,
        });
        slot.row = reduce(slot.row.take());
        slot.dirty = true;
    }

    fn into_changes(self) -> Changes<K, R> {
        let mut changes = Changes {
            upserts: Vec::with_capacity(self.slots.len()),
            deletes: Vec::new(),
            unchanged: Vec::new(),
            absent: Vec::new(),
        };
        for (key, slot) in self.slots {
            match (slot.row, slot.dirty, slot.existed) {
                (Some(row), true, _) => changes.upserts.push((key, row)),
                (Some(row), false, _) => changes.unchanged.push((key, row)),
                (None, true, true) => changes.deletes.push(key),
                (None, _, _) => changes.absent.push(key),
            }
        }
        // Writing in key order keeps the output deterministic and B-tree inserts local.
        changes.upserts.sort_by(|a, b| a.0.cmp(&b.0));
        changes.deletes.sort();
        changes
    }
}

/// The rows of one table a batch touched. Only `upserts` and `deletes` are written (each row
/// once, whatever the number of events); `unchanged` and `absent` tell a row cache what the
/// store now holds without asking it.
#[derive(Debug)]
pub struct Changes<K, R> {
    pub upserts: Vec<(K, R)>,
    pub deletes: Vec<K>,
    /// Rows loaded for the batch that no event changed.
    pub unchanged: Vec<(K, R)>,
    /// Keys the batch looked at that have no row, before or after.
    pub absent: Vec<K>,
}

impl<K, R> Changes<K, R> {
    /// Whether the batch writes nothing to this table.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// The keys of the rows the batch writes: upserted or deleted.
    pub fn written_keys(&self) -> impl Iterator<Item = &K> {
        self.upserts.iter().map(|(key, _)| key).chain(&self.deletes)
    }
}

/// The keys whose current rows a batch needs before it can be folded.
#[derive(Debug, Default)]
pub struct LoadPlan {
    pub tenants: HashSet<Uuid>,
    /// Signing keys are loaded per tenant: a tenant has few, and the primary key's prefix
    /// serves the lookup.
    pub signing_key_tenants: HashSet<Uuid>,
    pub api_keys: HashSet<Uuid>,
}

/// One batch, folded in memory.
#[derive(Debug)]
pub struct Fold {
    checkpoints: Checkpoints,
    tenants: Table<Uuid, TenantView>,
    signing_keys: Table<(Uuid, String), SigningKeyView>,
    api_keys: Table<Uuid, ApiKeyView>,
    audit: Vec<AuditRow>,
}

/// Everything a batch changed.
#[derive(Debug)]
pub struct BatchChanges {
    pub tenants: Changes<Uuid, TenantView>,
    pub signing_keys: Changes<(Uuid, String), SigningKeyView>,
    pub api_keys: Changes<Uuid, ApiKeyView>,
    /// New audit rows, in log order (audit rows are only ever inserted), from the last
    /// [`Fold::take_audit`] on.
    pub audit: Vec<AuditRow>,
}

impl Fold {
    /// A fold that skips, per projection, events at or below that projection's checkpoint.
    pub fn new(checkpoints: Checkpoints) -> Self {
        Self {
            checkpoints,
            tenants: Table::new(),
            signing_keys: Table::new(),
            api_keys: Table::new(),
            audit: Vec::new(),
        }
    }

    fn wants(&self, projection: Projection, envelope: &Envelope) -> bool {
        envelope.global_position > self.checkpoints.get(projection)
    }

    /// Adds the rows this event will touch to `plan`.
    pub fn plan(&self, plan: &mut LoadPlan, envelope: &Envelope, event: &Event) {
        if self.wants(Projection::Tenants, envelope)
            && let Some(id) = tenant_key(envelope, event)
        {
            plan.tenants.insert(id);
        }
        // The audit row of a tenant event names the tenant by its slug, which never changes
        // once the tenant exists: the stored row has it even when the tenant projection is
        // ahead of the audit one.
        if self.wants(Projection::Audit, envelope) && audit::needs_tenant_slug(event) {
            plan.tenants.insert(envelope.tenant_id);
        }
        if self.wants(Projection::SigningKeys, envelope) {
            for (tenant, _) in signing_key_keys(envelope, event) {
                plan.signing_key_tenants.insert(tenant);
            }
        }
        if self.wants(Projection::ApiKeys, envelope)
            && let Some(id) = api_key_key(envelope, event)
        {
            plan.api_keys.insert(id);
        }
    }

    /// Makes room for every row `plan` lists, so that seeding and folding a large batch does
    /// not grow (and move) the fold's tables step by step.
    pub fn reserve(&mut self, plan: &LoadPlan) {
        self.tenants.slots.reserve(plan.tenants.len());
        // A tenant has a few keys: its active one, and those rotated out but not yet retired.
        self.signing_keys
            .slots
            .reserve(plan.signing_key_tenants.len() * 3);
        self.api_keys.slots.reserve(plan.api_keys.len());
    }

    pub fn seed_tenant(&mut self, row: TenantView) {
        self.tenants.seed(row.id, row);
    }

    pub fn seed_signing_key(&mut self, tenant_id: Uuid, row: SigningKeyView) {
        self.signing_keys.seed((tenant_id, row.kid.clone()), row);
    }

    pub fn seed_api_key(&mut self, row: ApiKeyView) {
        self.api_keys.seed(row.key_id, row);
    }

    /// Folds one event into every projection that has not seen it yet.
    pub fn apply(&mut self, envelope: &Envelope, event: &Event) {
        if self.wants(Projection::Tenants, envelope)
            && let Some(id) = tenant_key(envelope, event)
        {
            self.tenants
                .update(id, |row| reduce_tenant(row, envelope, event));
        }
        if self.wants(Projection::SigningKeys, envelope) {
            for (tenant, kid) in signing_key_keys(envelope, event) {
                self.signing_keys.update((tenant, kid.to_owned()), |row| {
                    reduce_signing_key(row, kid, envelope, event)
                });
            }
        }
        if self.wants(Projection::ApiKeys, envelope)
            && let Some(id) = api_key_key(envelope, event)
        {
            self.api_keys
                .update(id, |row| reduce_api_key(row, envelope, event));
        }
        if self.wants(Projection::Audit, envelope) {
            let slug = if audit::needs_tenant_slug(event) {
                self.tenants
                    .slots
                    .get(&envelope.tenant_id)
                    .and_then(|slot| slot.row.as_ref())
                    .map(|tenant| tenant.slug.as_str())
            } else {
                None
            };
            self.audit.push(audit::audit_row(envelope, event, slug));
        }
    }

    /// How many audit rows the fold holds (see [`Fold::take_audit`]).
    pub fn audit_len(&self) -> usize {
        self.audit.len()
    }

    /// Takes the audit rows folded so far, in log order, so that a writer can store them
    /// while the rest of a large batch folds; [`Fold::into_changes`] then holds only the rows
    /// folded after the last take.
    pub fn take_audit(&mut self) -> Vec<AuditRow> {
        std::mem::take(&mut self.audit)
    }

    pub fn into_changes(self) -> BatchChanges {
        BatchChanges {
            tenants: self.tenants.into_changes(),
            signing_keys: self.signing_keys.into_changes(),
            api_keys: self.api_keys.into_changes(),
            audit: self.audit,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::events::*;
    use tessera_event_schemas::primitives::Timestamp;
    use tessera_event_schemas::{Actor, Hash32, streams};

    use super::*;

    const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    const KEY: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);

    fn sample(event_type: &str) -> Event {
        samples::current()
            .into_iter()
            .find(|e| e.event_type() == event_type)
            .unwrap()
    }

    /// An envelope of [`TENANT`] by the system, with zeroed hashes.
    pub(crate) fn envelope(stream_id: String, version: u64, position: u64, at: i64) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(u128::from(position)),
            stream_id,
            stream_version: version,
            global_position: position,
            tenant_id: TENANT,
            event_type: String::new(),
            schema_version: 1,
            recorded_at: Timestamp::from_micros(at),
            actor: Actor::system(),
            correlation_id: "corr".into(),
            causation_id: None,
            source_ip: None,
            user_agent: None,
            prev_hash: Hash32::ZERO,
            hash: Hash32::ZERO,
            log_hash: Hash32::ZERO,
        }
    }

    fn tenant_env(version: u64, at: i64) -> Envelope {
        envelope(streams::tenant(TENANT), version, version, at)
    }

    /// Folds `events` (all on the tenant stream) from nothing.
    fn fold_tenant(events: &[Event]) -> Option<TenantView> {
        events.iter().enumerate().fold(None, |row, (i, event)| {
            let v = i as u64 + 1;
            reduce_tenant(row, &tenant_env(v, 1_000 * v as i64), event)
        })
    }

    #[test]
    fn tenant_created_fills_every_field_from_payload_and_envelope() {
        let tenant = fold_tenant(&[sample("tenant.created")]).unwrap();
        assert_eq!(tenant.id, TENANT);
        assert_eq!(tenant.slug, "acme-corp");
        assert_eq!(tenant.status, TenantStatus::Trial);
        assert_eq!(tenant.kind, TenantKind::Customer);
        assert_eq!(tenant.config, serde_json::json!({"theme": "dark"}));
        assert_eq!(tenant.active_kid, "k-2026-11-23-a");
        assert_eq!(tenant.created_at, Timestamp::from_micros(1_000));
        assert_eq!(tenant.updated_at, Timestamp::from_micros(1_000));
        assert_eq!(tenant.version, 1);
        assert!(!tenant.suspended);
    }

    #[test]
    fn a_second_creation_of_the_same_tenant_is_ignored() {
        let mut again = sample("tenant.created");
        if let Event::TenantCreated(created) = &mut again {
            created.slug = "other-slug".into();
        }
        let tenant = fold_tenant(&[sample("tenant.created"), again]).unwrap();
        assert_eq!(tenant.slug, "acme-corp");
        assert_eq!(tenant.created_at, Timestamp::from_micros(1_000));
        assert_eq!(tenant.version, 1);
    }

    #[test]
    fn events_for_an_unknown_tenant_create_no_row() {
        assert_eq!(fold_tenant(&[sample("tenant.updated")]), None);
        assert_eq!(fold_tenant(&[sample("tenant.suspended")]), None);
    }

    #[test]
    fn tenant_update_changes_only_the_fields_it_names() {
        let tenant = fold_tenant(&[sample("tenant.created"), sample("tenant.updated")]).unwrap();
        assert_eq!(tenant.name, "Acme Corp");
        assert_eq!(tenant.domains, vec!["acme.example", "acme.test"]);
        assert_eq!(tenant.plan, "enterprise");
        assert_eq!(tenant.config, serde_json::json!({"theme": "dark"}));
        assert_eq!(tenant.created_at, Timestamp::from_micros(1_000));
        assert_eq!(tenant.updated_at, Timestamp::from_micros(2_000));
        assert_eq!(tenant.version, 2);
    }

    #[test]
    fn invalid_config_json_is_kept_verbatim_as_a_string() {
        let update = Event::TenantUpdated(TenantUpdatedV1 {
            name: None,
            domains: None,
            plan: None,
            config_json: Some("{not json".into()),
            sales_owner: None,
        });
        let tenant = fold_tenant(&[sample("tenant.created"), update]).unwrap();
        assert_eq!(tenant.config, serde_json::json!("{not json"));
    }

    #[test]
    fn activation_sets_contract_and_clears_a_pending_cancellation() {
        let tenant = fold_tenant(&[
            sample("tenant.created"),
            sample("tenant.cancelled"),
            sample("tenant.activated"),
        ])
        .unwrap();
        assert_eq!(tenant.status, TenantStatus::Active);
        assert_eq!(tenant.erp_customer_id.as_deref(), Some("ERP-1001"));
        assert_eq!(
            tenant.contract_start.map(|d| d.to_string()).as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(tenant.pending_cancellation, None);
        assert_eq!(tenant.cancellation_reason, None);
    }

    #[test]
    fn scheduled_cancellation_keeps_the_status_until_frozen() {
        let cancelled =
            fold_tenant(&[sample("tenant.created"), sample("tenant.cancelled")]).unwrap();
        assert_eq!(cancelled.status, TenantStatus::Trial);
        assert_eq!(
            cancelled.pending_cancellation,
            Some(PendingCancellation {
                reason: "budget".into(),
                effective_at: Timestamp::from_micros(1_797_000_000_000_000),
            })
        );
        let frozen = fold_tenant(&[
            sample("tenant.created"),
            sample("tenant.cancelled"),
            sample("tenant.frozen"),
        ])
        .unwrap();
        assert_eq!(frozen.status, TenantStatus::Frozen);
        assert_eq!(frozen.pending_cancellation, None);
        assert_eq!(frozen.cancellation_reason.as_deref(), Some("budget"));
    }

    #[test]
    fn immediate_cancellation_freezes_at_once() {
        let cancel = Event::TenantCancelled(TenantCancelledV1 {
            reason: "fraud".into(),
            effective_at: None,
        });
        let tenant = fold_tenant(&[sample("tenant.created"), cancel]).unwrap();
        assert_eq!(tenant.status, TenantStatus::Frozen);
        assert_eq!(tenant.pending_cancellation, None);
        assert_eq!(tenant.cancellation_reason.as_deref(), Some("fraud"));
    }

    #[test]
    fn suspension_is_an_overlay_that_reactivation_lifts() {
        let suspended =
            fold_tenant(&[sample("tenant.created"), sample("tenant.suspended")]).unwrap();
        assert!(suspended.suspended);
        assert_eq!(suspended.suspension_reason.as_deref(), Some("abuse report"));
        assert_eq!(suspended.status, TenantStatus::Trial);
        let back = fold_tenant(&[
            sample("tenant.created"),
            sample("tenant.suspended"),
            sample("tenant.reactivated"),
        ])
        .unwrap();
        assert!(!back.suspended);
        assert_eq!(back.suspension_reason, None);
    }

    #[test]
    fn archiving_and_rotation_update_status_and_active_kid() {
        let tenant = fold_tenant(&[
            sample("tenant.created"),
            sample("tenant.signing_key_rotated"),
            sample("tenant.signing_key_retired"),
            sample("tenant.archived"),
        ])
        .unwrap();
        assert_eq!(tenant.status, TenantStatus::Archived);
        assert_eq!(tenant.active_kid, "k-2026-11-24-b");
        assert_eq!(tenant.version, 4);
    }

    #[test]
    fn rotation_publishes_the_old_key_and_retirement_retires_it() {
        let created = sample("tenant.created");
        let rotated = sample("tenant.signing_key_rotated");
        let retired = sample("tenant.signing_key_retired");
        let old = "k-2026-11-23-a";
        let new = "k-2026-11-24-b";
        let e1 = tenant_env(1, 1_000);
        let e2 = tenant_env(2, 2_000);
        let e3 = tenant_env(3, 3_000);

        let old_key = reduce_signing_key(None, old, &e1, &created).unwrap();
        assert_eq!(old_key.status, SigningKeyStatus::Active);
        assert_eq!(old_key.alg, SigningAlg::ES256);
        assert_eq!(
            old_key.created_at,
            Timestamp::from_micros(1_795_000_000_000_000)
        );

        let old_key = reduce_signing_key(Some(old_key), old, &e2, &rotated).unwrap();
        assert_eq!(old_key.status, SigningKeyStatus::Published);
        let new_key = reduce_signing_key(None, new, &e2, &rotated).unwrap();
        assert_eq!(new_key.status, SigningKeyStatus::Active);
        assert_eq!(new_key.alg, SigningAlg::EdDSA);

        let old_key = reduce_signing_key(Some(old_key), old, &e3, &retired).unwrap();
        assert_eq!(old_key.status, SigningKeyStatus::Retired);
        assert_eq!(old_key.retired_at, Some(Timestamp::from_micros(3_000)));
        let untouched = reduce_signing_key(Some(new_key.clone()), new, &e3, &retired);
        assert_eq!(untouched, Some(new_key));
    }

    #[test]
    fn rotation_names_both_the_new_and_the_previous_key() {
        let rotated = sample("tenant.signing_key_rotated");
        let keys = signing_key_keys(&tenant_env(2, 2), &rotated);
        assert_eq!(
            keys,
            vec![(TENANT, "k-2026-11-24-b"), (TENANT, "k-2026-11-23-a")]
        );
    }

    #[test]
    fn api_key_is_issued_then_revoked_once() {
        let stream = streams::api_key(TENANT, KEY);
        let issued_env = envelope(stream.clone(), 1, 10, 10_000);
        let revoked_env = envelope(stream.clone(), 2, 11, 11_000);
        let again_env = envelope(stream, 3, 12, 12_000);
        let issued = sample("api_key.issued");
        let revoked = sample("api_key.revoked");
        assert_eq!(api_key_key(&issued_env, &issued), Some(KEY));
        assert_eq!(api_key_key(&revoked_env, &revoked), Some(KEY));

        let key = reduce_api_key(None, &issued_env, &issued).unwrap();
        assert_eq!(key.tenant_id, TENANT);
        assert_eq!(key.secret_hash, Hash32([7; 32]));
        assert_eq!(key.created_at, Timestamp::from_micros(10_000));
        assert_eq!(key.revoked_at, None);
        let key = reduce_api_key(Some(key), &revoked_env, &revoked).unwrap();
        assert_eq!(key.revoked_at, Some(Timestamp::from_micros(11_000)));
        let key = reduce_api_key(Some(key), &again_env, &revoked).unwrap();
        assert_eq!(key.revoked_at, Some(Timestamp::from_micros(11_000)));
        let reissued = reduce_api_key(Some(key.clone()), &again_env, &issued);
        assert_eq!(reissued, Some(key));
    }

    fn used(uses: u64, first: i64, last: i64) -> Event {
        Event::ApiKeyUsed(ApiKeyUsedV1 {
            uses,
            first_used_at: Timestamp::from_micros(first),
            last_used_at: Timestamp::from_micros(last),
        })
    }

    #[test]
    fn usage_accumulates_and_keeps_the_latest_use_even_after_revocation() {
        let stream = streams::api_key(TENANT, KEY);
        let env = |v: u64| envelope(stream.clone(), v, 10 + v, 10_000 * v as i64);
        let issued = reduce_api_key(None, &env(1), &sample("api_key.issued")).unwrap();
        assert_eq!((issued.use_count, issued.last_used_at), (0, None));
        assert_eq!(api_key_key(&env(2), &used(3, 1, 2)), Some(KEY));

        let key = reduce_api_key(Some(issued), &env(2), &used(3, 100, 200)).unwrap();
        assert_eq!(key.use_count, 3);
        assert_eq!(key.last_used_at, Some(Timestamp::from_micros(200)));
        // A record that arrives late (an earlier window) adds its uses but not its time.
        let key = reduce_api_key(Some(key), &env(3), &used(4, 50, 150)).unwrap();
        assert_eq!(key.use_count, 7);
        assert_eq!(key.last_used_at, Some(Timestamp::from_micros(200)));
        let key = reduce_api_key(Some(key), &env(4), &sample("api_key.revoked")).unwrap();
        let key = reduce_api_key(Some(key), &env(5), &used(1, 300, 400)).unwrap();
        assert_eq!(key.use_count, 8);
        assert_eq!(key.last_used_at, Some(Timestamp::from_micros(400)));
        assert_eq!(key.revoked_at, Some(Timestamp::from_micros(40_000)));
    }

    #[test]
    fn usage_of_a_key_never_issued_creates_no_row() {
        let env = envelope(streams::api_key(TENANT, KEY), 1, 1, 1);
        assert_eq!(reduce_api_key(None, &env, &sample("api_key.used")), None);
        let elsewhere = envelope(streams::tenant(TENANT), 2, 2, 2);
        assert_eq!(api_key_key(&elsewhere, &sample("api_key.used")), None);
        assert_eq!(tenant_key(&env, &sample("api_key.used")), None);
    }

    #[test]
    fn revocation_on_a_stream_that_is_not_an_api_key_is_ignored() {
        let env = envelope(streams::tenant(TENANT), 2, 2, 2);
        assert_eq!(api_key_key(&env, &sample("api_key.revoked")), None);
    }

    #[test]
    fn reservations_touch_no_read_model() {
        for event in [
            sample("reservation.claimed"),
            sample("reservation.released"),
        ] {
            let env = envelope(streams::reservation("slug", "acme"), 1, 1, 1);
            assert_eq!(tenant_key(&env, &event), None);
            assert!(signing_key_keys(&env, &event).is_empty());
            assert_eq!(api_key_key(&env, &event), None);
        }
    }

    #[test]
    fn a_batch_writes_each_changed_row_once() {
        let mut fold = Fold::new(Checkpoints::default());
        let events = [
            sample("tenant.created"),
            sample("tenant.updated"),
            sample("tenant.suspended"),
            sample("tenant.signing_key_rotated"),
        ];
        let envs: Vec<Envelope> = (1..=4).map(|v| tenant_env(v, v as i64)).collect();
        let mut plan = LoadPlan::default();
        for (env, event) in envs.iter().zip(&events) {
            fold.plan(&mut plan, env, event);
        }
        assert_eq!(plan.tenants.len(), 1);
        assert_eq!(plan.signing_key_tenants.len(), 1);
        for (env, event) in envs.iter().zip(&events) {
            fold.apply(env, event);
        }
        let changes = fold.into_changes();
        assert_eq!(changes.tenants.upserts.len(), 1);
        assert_eq!(changes.tenants.upserts[0].1.version, 4);
        assert!(changes.tenants.upserts[0].1.suspended);
        assert_eq!(changes.signing_keys.upserts.len(), 2);
        assert!(changes.api_keys.is_empty());
    }

    #[test]
    fn a_batch_continues_from_seeded_rows() {
        let created = fold_tenant(&[sample("tenant.created")]).unwrap();
        let mut fold = Fold::new(Checkpoints::default());
        fold.seed_tenant(created);
        fold.apply(&tenant_env(2, 2_000), &sample("tenant.archived"));
        let changes = fold.into_changes();
        let (id, row) = &changes.tenants.upserts[0];
        assert_eq!(*id, TENANT);
        assert_eq!(row.status, TenantStatus::Archived);
        assert_eq!(row.slug, "acme-corp");
    }

    #[test]
    fn a_projection_skips_events_at_or_below_its_own_checkpoint() {
        let checkpoints = Checkpoints {
            tenants: 1,
            signing_keys: 0,
            api_keys: 0,
            audit: 0,
        };
        let mut fold = Fold::new(checkpoints);
        fold.apply(&tenant_env(1, 1_000), &sample("tenant.created"));
        let changes = fold.into_changes();
        assert!(changes.tenants.is_empty());
        assert_eq!(changes.signing_keys.upserts.len(), 1);
    }

    #[test]
    fn seeded_rows_no_event_touched_are_not_rewritten() {
        let mut fold = Fold::new(Checkpoints::default());
        fold.seed_tenant(fold_tenant(&[sample("tenant.created")]).unwrap());
        assert!(fold.into_changes().tenants.is_empty());
    }

    #[test]
    fn checkpoints_resume_from_the_slowest_projection() {
        let checkpoints = Checkpoints {
            tenants: 7,
            signing_keys: 3,
            api_keys: 9,
            audit: 5,
        };
        assert_eq!(checkpoints.min(), 3);
        assert_eq!(
            checkpoints.advanced_to(8),
            Checkpoints {
                tenants: 8,
                signing_keys: 8,
                api_keys: 9,
                audit: 8,
            }
        );
        for projection in Projection::ALL {
            assert_eq!(Projection::parse(projection.name()), Some(projection));
        }
    }
}
