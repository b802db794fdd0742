//! Format 1 of the directory's snapshot: mirrors of the directory's state that postcard
//! encodes, and their conversions from and to the directory's own types.
//!
//! Every conversion destructures its source exhaustively, so a field added to a domain struct
//! (`Tenant`, `TenantKey`, `OAuthClient`) or to the directory's `Inner` does not compile until
//! it has a place here; then the pinned digest of the directory's tests fails until
//! `snapshot::FORMAT` is bumped (and a new `v2` module written, this one kept for reference or
//! removed, since an older snapshot is simply not used). The event payload types the mirrors
//! embed are shipped, frozen types already.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_domain::oauth_client::OAuthClient;
use tessera_domain::tenant::{KeyStatus, PendingCancellation, Tenant, TenantKey, TenantState};
use tessera_event_schemas::events::{
    ClientType, OidcClientSettingsV1, PublicJwkV1, SigningAlg, TenantKind, TenantSettingsV1,
    TenantStatus,
};
use tessera_event_schemas::{Date, Hash32, Timestamp};
use uuid::Uuid;

use crate::directory::{ClientEntry, Inner};

/// Format 1. Collections are sorted by key, so that one state has one encoding.
#[derive(Serialize, Deserialize)]
pub(super) struct SnapshotV1 {
    position: u64,
    log_hash: Hash32,
    log_time: Timestamp,
    next_prune: i64,
    tenants: Vec<(Uuid, Option<TenantV1>)>,
    slugs: Vec<(String, Uuid)>,
    clients: Vec<ClientV1>,
    revoked: Vec<(Uuid, Timestamp)>,
}

#[derive(Serialize, Deserialize)]
struct TenantV1 {
    id: Uuid,
    slug: String,
    name: String,
    plan: String,
    kind: TenantKind,
    status: TenantStatus,
    domains: Vec<String>,
    settings: TenantSettingsV1,
    config_json: String,
    sales_owner: Option<String>,
    erp_customer_id: Option<String>,
    contract_start: Option<Date>,
    contract_end: Option<Date>,
    trial_ends_at: Option<Timestamp>,
    pending_cancellation: Option<(String, Timestamp)>,
    suspended: bool,
    suspension_reason: Option<String>,
    keys: Vec<KeyV1>,
    active_kid: String,
}

#[derive(Serialize, Deserialize)]
struct KeyV1 {
    kid: String,
    alg: SigningAlg,
    public_jwk: PublicJwkV1,
    /// Sealed, exactly as in `signing_key.rotated`.
    sealed_private_key: Vec<u8>,
    created_at: Timestamp,
    status: KeyStatusV1,
}

#[derive(Serialize, Deserialize)]
enum KeyStatusV1 {
    Active,
    Published,
    Retired,
}

#[derive(Serialize, Deserialize)]
struct ClientV1 {
    tenant_id: Uuid,
    created_at: Timestamp,
    updated_at: Timestamp,
    deactivated_at: Option<Timestamp>,
    client_id: String,
    name: String,
    client_type: ClientType,
    grant_types: Vec<String>,
    redirect_uris: Vec<String>,
    allowed_scopes: Vec<String>,
    access_token_ttl_secs: u32,
    secret_hash: Option<Hash32>,
    created_by: String,
    /// Since format 2.
    oidc: OidcClientSettingsV1,
    active: bool,
    deactivation_reason: Option<String>,
}

impl From<&Inner> for SnapshotV1 {
    fn from(inner: &Inner) -> Self {
        let Inner {
            tenants,
            slugs,
            clients,
            revoked,
            log_time,
            next_prune,
            position,
            log_hash,
        } = inner;
        let mut tenants: Vec<_> = tenants
            .iter()
            .map(|(id, state)| (*id, state.tenant.as_ref().map(TenantV1::from)))
            .collect();
        tenants.sort_by_key(|(id, _)| *id);
        let mut slugs: Vec<_> = slugs.iter().map(|(s, id)| (s.clone(), *id)).collect();
        slugs.sort();
        let mut clients: Vec<_> = clients
            .values()
            .flat_map(|by_id| by_id.values())
            .map(|entry| ClientV1::from(&**entry))
            .collect();
        clients.sort_by(|a, b| (a.tenant_id, &a.client_id).cmp(&(b.tenant_id, &b.client_id)));
        let mut revoked: Vec<_> = revoked.iter().map(|(jti, (), at)| (*jti, at)).collect();
        revoked.sort();
        Self {
            position: *position,
            log_hash: *log_hash,
            log_time: *log_time,
            next_prune: *next_prune,
            tenants,
            slugs,
            clients,
            revoked,
        }
    }
}

impl From<SnapshotV1> for Inner {
    fn from(snapshot: SnapshotV1) -> Self {
        let SnapshotV1 {
            position,
            log_hash,
            log_time,
            next_prune,
            tenants,
            slugs,
            clients,
            revoked,
        } = snapshot;
        let mut by_tenant: HashMap<_, BTreeMap<_, _>> = HashMap::new();
        for client in clients {
            let entry = ClientEntry::from(client);
            by_tenant
                .entry(entry.tenant_id)
                .or_default()
                .insert(entry.client.client_id.clone(), Arc::new(entry));
        }
        Inner {
            tenants: tenants
                .into_iter()
                .map(|(id, tenant)| {
                    let tenant = tenant.map(Tenant::from);
                    (id, Arc::new(TenantState { tenant }))
                })
                .collect(),
            slugs: slugs.into_iter().collect(),
            clients: by_tenant,
            revoked: revoked.into_iter().map(|(jti, at)| (jti, (), at)).collect(),
            log_time,
            next_prune,
            position,
            log_hash,
        }
    }
}

impl From<&Tenant> for TenantV1 {
    fn from(tenant: &Tenant) -> Self {
        let Tenant {
            id,
            slug,
            name,
            plan,
            kind,
            status,
            domains,
            settings,
            config_json,
            sales_owner,
            erp_customer_id,
            contract_start,
            contract_end,
            trial_ends_at,
            pending_cancellation,
            suspended,
            suspension_reason,
            keys,
            active_kid,
        } = tenant.clone();
        Self {
            id,
            slug,
            name,
            plan,
            kind,
            status,
            domains,
            settings,
            config_json,
            sales_owner,
            erp_customer_id,
            contract_start,
            contract_end,
            trial_ends_at,
            pending_cancellation: pending_cancellation.map(
                |PendingCancellation {
                     reason,
                     effective_at,
                 }| (reason, effective_at),
            ),
            suspended,
            suspension_reason,
            keys: keys.into_iter().map(KeyV1::from).collect(),
            active_kid,
        }
    }
}

impl From<TenantV1> for Tenant {
    fn from(tenant: TenantV1) -> Self {
        let TenantV1 {
            id,
            slug,
            name,
            plan,
            kind,
            status,
            domains,
            settings,
            config_json,
            sales_owner,
            erp_customer_id,
            contract_start,
            contract_end,
            trial_ends_at,
            pending_cancellation,
            suspended,
            suspension_reason,
            keys,
            active_kid,
        } = tenant;
        Self {
            id,
            slug,
            name,
            plan,
            kind,
            status,
            domains,
            settings,
            config_json,
            sales_owner,
            erp_customer_id,
            contract_start,
            contract_end,
            trial_ends_at,
            pending_cancellation: pending_cancellation.map(|(reason, effective_at)| {
                PendingCancellation {
                    reason,
                    effective_at,
                }
            }),
            suspended,
            suspension_reason,
            keys: keys.into_iter().map(TenantKey::from).collect(),
            active_kid,
        }
    }
}

impl From<TenantKey> for KeyV1 {
    fn from(key: TenantKey) -> Self {
        let TenantKey {
            kid,
            alg,
            public_jwk,
            sealed_private_key,
            created_at,
            status,
        } = key;
        Self {
            kid,
            alg,
            public_jwk,
            sealed_private_key,
            created_at,
            status: match status {
                KeyStatus::Active => KeyStatusV1::Active,
                KeyStatus::Published => KeyStatusV1::Published,
                KeyStatus::Retired => KeyStatusV1::Retired,
            },
        }
    }
}

impl From<KeyV1> for TenantKey {
    fn from(key: KeyV1) -> Self {
        let KeyV1 {
            kid,
            alg,
            public_jwk,
            sealed_private_key,
            created_at,
            status,
        } = key;
        Self {
            kid,
            alg,
            public_jwk,
            sealed_private_key,
            created_at,
            status: match status {
                KeyStatusV1::Active => KeyStatus::Active,
                KeyStatusV1::Published => KeyStatus::Published,
                KeyStatusV1::Retired => KeyStatus::Retired,
            },
        }
    }
}

impl From<&ClientEntry> for ClientV1 {
    fn from(entry: &ClientEntry) -> Self {
        let ClientEntry {
            tenant_id,
            client,
            created_at,
            updated_at,
            deactivated_at,
        } = entry.clone();
        let OAuthClient {
            client_id,
            name,
            client_type,
            grant_types,
            redirect_uris,
            allowed_scopes,
            access_token_ttl_secs,
            secret_hash,
            created_by,
            oidc,
            active,
            deactivation_reason,
        } = client;
        Self {
            tenant_id,
            created_at,
            updated_at,
            deactivated_at,
            client_id,
            name,
            client_type,
            grant_types,
            redirect_uris,
            allowed_scopes,
            access_token_ttl_secs,
            secret_hash,
            created_by,
            oidc,
            active,
            deactivation_reason,
        }
    }
}

impl From<ClientV1> for ClientEntry {
    fn from(client: ClientV1) -> Self {
        let ClientV1 {
            tenant_id,
            created_at,
            updated_at,
            deactivated_at,
            client_id,
            name,
            client_type,
            grant_types,
            redirect_uris,
            allowed_scopes,
            access_token_ttl_secs,
            secret_hash,
            created_by,
            oidc,
            active,
            deactivation_reason,
        } = client;
        Self {
            tenant_id,
            created_at,
            updated_at,
            deactivated_at,
            client: OAuthClient {
                client_id,
                name,
                client_type,
                grant_types,
                redirect_uris,
                allowed_scopes,
                access_token_ttl_secs,
                secret_hash,
                created_by,
                oidc,
                active,
                deactivation_reason,
            },
        }
    }
}
