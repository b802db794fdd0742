//! Snapshots of the OAuth directory, so that a start folds only the log after the last one.
//!
//! A snapshot is the directory's whole state at one log position (tenants, slugs, clients,
//! revocations, the log time and the next sweep), with that position and its link in the log's
//! hash chain. A start restores it only if it is whole (a SHA-256 over the file), written in
//! this build's [`FORMAT`], and matches the log it is started on (the log holds that position,
//! and its chain hash there is the snapshot's); anything else is a fold from position 0, and
//! says why with a warning. Snapshots are taken every [`SNAPSHOT_EVERY_EVENTS`] events folded
//! or every [`SNAPSHOT_EVERY`] if anything was folded, and at a clean stop.
//!
//! **Encoding.** postcard over structs of this module (`SnapshotV1` and its parts), not the
//! domain's: postcard is not self-describing, so encoding `Tenant` or `OAuthClient` directly
//! would freeze their layout by accident, and a new field would silently misread older files.
//! The mirrors are converted by exhaustive destructuring, so a field added to a domain struct
//! does not compile until it is added here too; the golden test then fails until [`FORMAT`] is
//! bumped, and a snapshot of another format is simply not used. The payload types the mirrors
//! embed (`TenantSettingsV1`, `PublicJwkV1`, ...) are shipped event types, frozen already.
//! Bump [`FORMAT`] whenever the directory's state or its fold changes.
//!
//! **Where.** Embedded: the file `directory.snapshot` beside `readmodels.db` in the data
//! directory, mode 0600, replaced atomically (a temporary file written and synced, renamed over
//! it, the directory synced). PostgreSQL: the table `directory_snapshots` beside the read
//! models, one row per format. Several servers share that database, and any server's snapshot
//! serves them all, since it is the fold of a prefix of the one log they share (plus, at most,
//! revocations this server noted ahead of its fold, which are durable facts of the log that
//! folding adds again): a server replaces the row only with a snapshot of a later position, so
//! they never move it back. Outside the `rm_` tables, so that a read-model reset keeps it.
//!
//! **Secrets.** The tenants' signing keys are in it as they are in the directory: sealed under
//! the master key (AES-256-GCM, AAD the tenant and kid). Nothing here unseals them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tessera_domain::oauth_client::OAuthClient;
use tessera_domain::tenant::{KeyStatus, PendingCancellation, Tenant, TenantKey, TenantState};
use tessera_event_log::{EventLog, LogError};
use tessera_event_schemas::events::{
    ClientType, PublicJwkV1, SigningAlg, TenantKind, TenantSettingsV1, TenantStatus,
};
use tessera_event_schemas::{Date, Hash32, Timestamp};
use tokio::sync::watch;
use uuid::Uuid;

use super::{ClientEntry, Directory, DirectoryTask, Inner, follow_log};
use crate::error::ReadError;
use crate::store::ReadStore;

/// The snapshot format this build writes and reads. Bump it whenever the directory's state,
/// its fold, or the structs below change.
pub const FORMAT: u32 = 1;
/// A snapshot is taken once this many events were folded since the last one: a restart after a
/// crash then folds at most about this many (about a second's work).
pub const SNAPSHOT_EVERY_EVENTS: u64 = 250_000;
/// ... or this long after the last one, if anything was folded since.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(60);
/// How often the snapshot task looks at the directory's position.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The first bytes of a snapshot file.
const MAGIC: &[u8; 8] = b"TSRDSNAP";
/// The file's name, beside `readmodels.db`.
const FILE_NAME: &str = "directory.snapshot";
/// The PostgreSQL table.
const TABLE: &str = "directory_snapshots";

/// Why a snapshot is not used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("the snapshot is corrupt: {0}")]
    Corrupt(String),
    #[error("the snapshot is of format {found}, this build reads format {FORMAT}")]
    Format { found: u32 },
    #[error(
        "the snapshot was taken at position {position}, beyond the log's head {head}: it belongs to another log"
    )]
    Ahead { position: u64, head: u64 },
    #[error(
        "the log's hash chain at position {position} differs from the snapshot's: it belongs to another log"
    )]
    Foreign { position: u64 },
    #[error("the snapshot could not be read: {0}")]
    Unreadable(String),
}

/// Where a directory's snapshots are kept (see the module documentation).
#[derive(Clone, Debug)]
pub struct DirectorySnapshots {
    place: Place,
}

#[derive(Clone, Debug)]
enum Place {
    File(PathBuf),
    Table(ReadStore),
}

impl ReadStore {
    /// Where the OAuth directory's snapshots go: the file `directory.snapshot` beside a SQLite
    /// store, the table `directory_snapshots` beside PostgreSQL read models.
    pub fn directory_snapshots(&self) -> DirectorySnapshots {
        let place = match self.sqlite_path() {
            Some(path) => Place::File(path.with_file_name(FILE_NAME)),
            None => Place::Table(self.clone()),
        };
        DirectorySnapshots { place }
    }
}

impl DirectorySnapshots {
    /// Snapshots kept in the file at `path`.
    pub fn in_file(path: impl Into<PathBuf>) -> Self {
        Self {
            place: Place::File(path.into()),
        }
    }

    /// The stored snapshot, preferring one of this build's format; `None` if there is none.
    pub async fn load(&self) -> Result<Option<Vec<u8>>, ReadError> {
        match &self.place {
            Place::File(path) => match tokio::fs::read(path).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(ReadError::Unavailable(format!(
                    "reading {}: {error}",
                    path.display()
                ))),
            },
            Place::Table(store) => {
                create_table(store).await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT body FROM {TABLE} ORDER BY (format = $1) DESC, position DESC LIMIT 1"
                )))
                .bind(i64::from(FORMAT))
                .fetch_optional(&store.pool())
                .await?;
                Ok(row
                    .map(|row| row.try_get::<Vec<u8>, _>("body"))
                    .transpose()?)
            }
        }
    }

    /// Stores `bytes`, a snapshot taken at `position`, in place of the previous one.
    pub async fn store(&self, position: u64, bytes: Vec<u8>) -> Result<(), ReadError> {
        match &self.place {
            Place::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || replace_file(&path, &bytes))
                    .await
                    .map_err(|error| ReadError::Unavailable(error.to_string()))?
                    .map_err(|error| ReadError::Unavailable(format!("writing a snapshot: {error}")))
            }
            Place::Table(store) => {
                create_table(store).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {TABLE} (format, position, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (format) DO UPDATE SET position = excluded.position, \
                     body = excluded.body WHERE {TABLE}.position < excluded.position"
                )))
                .bind(i64::from(FORMAT))
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(bytes)
                .execute(&store.pool())
                .await?;
                Ok(())
            }
        }
    }
}

async fn create_table(store: &ReadStore) -> Result<(), ReadError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (\
            format BIGINT PRIMARY KEY, \
            position BIGINT NOT NULL, \
            body BYTEA NOT NULL)"
    )))
    .execute(&store.pool())
    .await?;
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600), syncs it, renames it over
/// `path` and syncs the directory, so that a crash leaves the old snapshot or the new one.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("snapshot.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl Directory {
    /// Opens the directory for a server: restores the stored snapshot if it is usable (else
    /// starts empty, saying why with a warning), then follows `log` from there, and takes
    /// snapshots periodically and when the task is shut down.
    pub async fn open(
        log: Arc<dyn EventLog>,
        snapshots: DirectorySnapshots,
    ) -> Result<(Arc<Directory>, DirectoryTask), LogError> {
        let head = log.head_position().await?;
        let restored = match snapshots.load().await {
            Ok(Some(bytes)) => match restore(&bytes, &*log, head).await {
                Ok(inner) => Some(inner),
                Err(reason) => {
                    tracing::warn!(%reason, "the OAuth directory snapshot is not used: folding the whole log");
                    None
                }
            },
            Ok(None) if head > 0 => {
                tracing::warn!("no OAuth directory snapshot: folding the whole log");
                None
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "reading the OAuth directory snapshot failed: folding the whole log");
                None
            }
        };
        let restored_from = restored.as_ref().map(|inner| inner.position);
        let directory = Arc::new(Directory::restored(restored.unwrap_or_default()));
        if let Some(position) = restored_from {
            tracing::info!(
                position,
                head,
                "restored the OAuth directory from its snapshot; folding the rest of the log"
            );
        }
        *directory
            .start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = super::StartReport {
            restored_from,
            head_at_start: head,
            folded_to_head: None,
        };
        directory.note_progress();
        let (stop, stop_rx) = watch::channel(false);
        let follower = tokio::spawn(follow_log(directory.clone(), log.clone(), stop_rx.clone()));
        let taker = tokio::spawn(take_snapshots(
            directory.clone(),
            snapshots.clone(),
            restored_from.unwrap_or(0),
            stop_rx,
        ));
        let task = DirectoryTask {
            directory: directory.clone(),
            log,
            stop,
            follower,
            snapshots: Some((snapshots, taker)),
        };
        Ok((directory, task))
    }

    /// The directory's state, encoded as a snapshot, and the position it was taken at.
    pub fn snapshot(&self) -> Result<(u64, Vec<u8>), String> {
        let inner = self.read().clone();
        Ok((inner.position, encode(&inner)?))
    }
}

/// Decodes a snapshot and checks it against the log it would continue.
async fn restore(bytes: &[u8], log: &dyn EventLog, head: u64) -> Result<Inner, Unusable> {
    let inner = decode(bytes)?;
    if inner.position == 0 {
        return Ok(inner);
    }
    if inner.position > head {
        return Err(Unusable::Ahead {
            position: inner.position,
            head,
        });
    }
    let at = log
        .read_all(inner.position - 1, 1)
        .await
        .map_err(|error| Unusable::Unreadable(error.to_string()))?;
    match at.first() {
        Some(event)
            if event.envelope.global_position == inner.position
                && event.envelope.log_hash == inner.log_hash =>
        {
            Ok(inner)
        }
        _ => Err(Unusable::Foreign {
            position: inner.position,
        }),
    }
}

/// Takes a snapshot whenever one is due (see [`SNAPSHOT_EVERY_EVENTS`] and [`SNAPSHOT_EVERY`]),
/// until stopped.
async fn take_snapshots(
    directory: Arc<Directory>,
    snapshots: DirectorySnapshots,
    mut saved: u64,
    mut stop_rx: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks_per_snapshot = SNAPSHOT_EVERY.as_secs() / CHECK_EVERY.as_secs().max(1);
    let mut ticks = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop_rx.wait_for(|s| *s) => return,
        }
        ticks += 1;
        let position = directory.position();
        let due = position >= saved.saturating_add(SNAPSHOT_EVERY_EVENTS)
            || (position > saved && ticks >= ticks_per_snapshot);
        if due {
            if let Some(position) = save(&directory, &snapshots).await {
                saved = position;
            }
            ticks = 0;
        }
    }
}

/// Encodes and stores a snapshot of `directory`; the position it was taken at once stored.
pub(super) async fn save(directory: &Directory, snapshots: &DirectorySnapshots) -> Option<u64> {
    let inner = directory.read().clone();
    let position = inner.position;
    if position == 0 {
        return None;
    }
    let encoded = tokio::task::spawn_blocking(move || encode(&inner))
        .await
        .map_err(|error| error.to_string())
        .and_then(|encoded| encoded);
    let stored = match encoded {
        Ok(bytes) => snapshots
            .store(position, bytes)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error),
    };
    match stored {
        Ok(()) => {
            tracing::debug!(position, "took a snapshot of the OAuth directory");
            Some(position)
        }
        Err(error) => {
            tracing::warn!(%error, position, "taking a snapshot of the OAuth directory failed");
            None
        }
    }
}

/// `MAGIC`, the format (u32, little endian), the postcard body, and the SHA-256 of all that.
fn encode(inner: &Inner) -> Result<Vec<u8>, String> {
    let body = postcard::to_allocvec(&SnapshotV1::from(inner))
        .map_err(|error| format!("encoding a snapshot: {error}"))?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + body.len() + 32);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    bytes.extend_from_slice(&body);
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum);
    Ok(bytes)
}

pub(super) fn decode(bytes: &[u8]) -> Result<Inner, Unusable> {
    let corrupt = |what: &str| Unusable::Corrupt(what.to_owned());
    let header = MAGIC.len() + 4;
    if bytes.len() < header + 32 || !bytes.starts_with(MAGIC) {
        return Err(corrupt("not a directory snapshot"));
    }
    let (content, checksum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(content)[..] != *checksum {
        return Err(corrupt("its checksum does not match its content"));
    }
    let mut format = [0u8; 4];
    format.copy_from_slice(&content[MAGIC.len()..header]);
    let found = u32::from_le_bytes(format);
    if found != FORMAT {
        return Err(Unusable::Format { found });
    }
    let snapshot: SnapshotV1 = postcard::from_bytes(&content[header..])
        .map_err(|error| Unusable::Corrupt(format!("decoding: {error}")))?;
    Ok(snapshot.into())
}

/// Format 1. Collections are sorted by key, so that one state has one encoding.
#[derive(Serialize, Deserialize)]
struct SnapshotV1 {
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
        let mut by_tenant: std::collections::HashMap<_, std::collections::BTreeMap<_, _>> =
            std::collections::HashMap::new();
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
                active,
                deactivation_reason,
            },
        }
    }
}
