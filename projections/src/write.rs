//! Applying one batch of events to the read store: load, fold, write, checkpoint, commit.
//!
//! This is the only code that writes read-model rows. A batch runs in one transaction: the
//! rows it touches are loaded with one `IN (...)` query per table, folded in memory by the pure
//! reducers of [`crate::reduce`], and each changed row is written once with a multi-row upsert.
//! The checkpoints advance in the same transaction, so a crash leaves either the whole batch and
//! its checkpoint or neither: a restart can neither skip nor re-apply an event.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Transaction};
use tessera_event_schemas::events::Event;
use tessera_event_schemas::{DecodeError, Envelope, RecordedEvent};
use uuid::Uuid;

use crate::error::ReadError;
use crate::reduce::{BatchChanges, Changes, Checkpoints, Fold, LoadPlan, Projection};
use crate::store::{self, API_KEY_COLUMNS, Dialect, ReadStore};
use crate::views::{ApiKeyView, AuditView, SigningKeyView, TenantView};

/// Most keys in one `IN (...)` list.
const MAX_KEYS_PER_QUERY: usize = 512;
/// Most rows in one multi-row upsert (times at most 13 columns: well under both backends'
/// bind-parameter limits).
const MAX_ROWS_PER_UPSERT: usize = 256;

/// A slice of the log, decoded up to its first undecodable event (if any).
pub(crate) struct DecodedBatch {
    pub(crate) events: Vec<RecordedEvent>,
    /// `decoded[i]` is `events[i]` decoded; shorter than `events` when one failed.
    pub(crate) decoded: Vec<Event>,
    /// The first event that would not decode, and why.
    pub(crate) failure: Option<(u64, DecodeError)>,
}

impl DecodedBatch {
    pub(crate) fn decode(events: Vec<RecordedEvent>) -> Self {
        let mut decoded = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in &events {
            match event.decode() {
                Ok(value) => decoded.push(value),
                Err(error) => {
                    failure = Some((event.envelope.global_position, error));
                    break;
                }
            }
        }
        Self {
            events,
            decoded,
            failure,
        }
    }

    /// The position of the last event that decoded.
    pub(crate) fn end(&self) -> Option<u64> {
        self.decoded
            .len()
            .checked_sub(1)
            .and_then(|i| self.events.get(i))
            .map(|e| e.envelope.global_position)
    }

    /// Appends the batch that follows this one in the log. A batch that already holds an
    /// undecodable event takes nothing more: nothing after that event may be applied.
    pub(crate) fn extend(&mut self, next: DecodedBatch) {
        if self.failure.is_some() {
            return;
        }
        // `self` decoded fully, so `decoded` stays a prefix of `events`; events of `next`
        // after its own failure are in `events` only, and `end()` never counts them.
        self.events.extend(next.events);
        self.decoded.extend(next.decoded);
        self.failure = next.failure;
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    fn pairs(&self) -> impl Iterator<Item = (&Envelope, &Event)> {
        self.events
            .iter()
            .map(|e| &e.envelope)
            .zip(self.decoded.iter())
    }
}

/// Rows as the store held them after the last commit, kept by whoever applies batches (the
/// live writer, a rebuild) so that a batch loads only the rows it has not seen yet. In a
/// catch-up or rebuild most touched rows were touched by a recent batch, and loading them
/// again (a query and a JSON parse per row) was the largest cost of a batch.
///
/// Correct only while this applier is the store's single writer, which the runtime and
/// `rebuild` both require. Entries are taken out while a batch runs and put back after it
/// commits; a failed batch clears everything, so the cache never holds uncommitted state.
#[derive(Debug, Default)]
pub(crate) struct RowCache {
    /// `None`: known to have no row.
    tenants: HashMap<Uuid, Option<TenantView>>,
    /// Every signing key of the tenant.
    key_rings: HashMap<Uuid, Vec<SigningKeyView>>,
    api_keys: HashMap<Uuid, Option<ApiKeyView>>,
    /// Per table: the cache holds every row of the table, so a key it lacks has no row. True
    /// from an empty table (checkpoint 0) until the cache first lets go of anything; it saves
    /// a rebuild from asking the empty store about every new key.
    complete: Checkpoints,
}

/// Entries per table beyond which the cache starts over, bounding its memory.
const CACHE_LIMIT: usize = 100_000;

/// `complete` reuses [`Checkpoints`]' per-projection shape: 1 means complete.
const COMPLETE: u64 = 1;

impl RowCache {
    /// A cache for a store at `checkpoints`: a projection still at 0 has written no row (rows
    /// are only ever written together with a checkpoint past 0), so its table is known empty.
    pub(crate) fn new(checkpoints: Checkpoints) -> Self {
        let mut complete = Checkpoints::default();
        for projection in Projection::ALL {
            if checkpoints.get(projection) == 0 {
                complete.set(projection, COMPLETE);
            }
        }
        Self {
            complete,
            ..Self::default()
        }
    }

    fn is_complete(&self, projection: Projection) -> bool {
        self.complete.get(projection) == COMPLETE
    }

    pub(crate) fn clear(&mut self) {
        self.tenants.clear();
        self.key_rings.clear();
        self.api_keys.clear();
        self.complete = Checkpoints::default();
    }

    fn absorb(&mut self, changes: BatchChanges, key_ring_tenants: &HashSet<Uuid>) {
        let tenants = changes.tenants;
        for (id, row) in tenants.upserts.into_iter().chain(tenants.unchanged) {
            self.tenants.insert(id, Some(row));
        }
        for id in tenants.deletes.into_iter().chain(tenants.absent) {
            self.tenants.insert(id, None);
        }

        // Only tenants whose whole ring was loaded get a ring; a tenant without keys gets an
        // empty one.
        for tenant in key_ring_tenants {
            self.key_rings.insert(*tenant, Vec::new());
        }
        let keys = changes.signing_keys;
        for ((tenant, _), row) in keys.upserts.into_iter().chain(keys.unchanged) {
            if let Some(ring) = self.key_rings.get_mut(&tenant) {
                ring.push(row);
            }
        }

        let api_keys = changes.api_keys;
        for (id, row) in api_keys.upserts.into_iter().chain(api_keys.unchanged) {
            self.api_keys.insert(id, Some(row));
        }
        for id in api_keys.deletes.into_iter().chain(api_keys.absent) {
            self.api_keys.insert(id, None);
        }

        if self.tenants.len() > CACHE_LIMIT {
            self.tenants.clear();
            self.complete.set(Projection::Tenants, 0);
        }
        if self.key_rings.len() > CACHE_LIMIT {
            self.key_rings.clear();
            self.complete.set(Projection::SigningKeys, 0);
        }
        if self.api_keys.len() > CACHE_LIMIT {
            self.api_keys.clear();
            self.complete.set(Projection::ApiKeys, 0);
        }
    }
}

/// Applies the decoded part of `batch` on top of `checkpoints` and returns the new
/// checkpoints. Writes nothing if nothing decoded. On error nothing was written, unless the
/// error hid a commit that happened (a connection lost during COMMIT): callers therefore
/// re-read the checkpoints before retrying.
pub(crate) async fn apply_batch(
    store: &ReadStore,
    checkpoints: Checkpoints,
    batch: &DecodedBatch,
    cache: &mut RowCache,
) -> Result<Checkpoints, ReadError> {
    let result = apply(store, checkpoints, batch, cache).await;
    if result.is_err() {
        cache.clear();
    }
    result
}

async fn apply(
    store: &ReadStore,
    checkpoints: Checkpoints,
    batch: &DecodedBatch,
    cache: &mut RowCache,
) -> Result<Checkpoints, ReadError> {
    let Some(end) = batch.end() else {
        return Ok(checkpoints);
    };
    let next = checkpoints.advanced_to(end);
    if next == checkpoints {
        return Ok(checkpoints);
    }

    let mut fold = Fold::new(checkpoints);
    let mut plan = LoadPlan::default();
    for (envelope, event) in batch.pairs() {
        fold.plan(&mut plan, envelope, event);
    }

    let dialect = store.dialect;
    let mut tx = store.pool.begin().await?;
    load_tenants(dialect, &mut tx, &plan, &mut fold, cache).await?;
    load_signing_keys(dialect, &mut tx, &plan, &mut fold, cache).await?;
    load_api_keys(dialect, &mut tx, &plan, &mut fold, cache).await?;

    for (envelope, event) in batch.pairs() {
        fold.apply(envelope, event);
    }
    let changes = fold.into_changes();

    write_tenants(dialect, &mut tx, &changes.tenants).await?;
    write_signing_keys(dialect, &mut tx, &changes.signing_keys).await?;
    write_api_keys(dialect, &mut tx, &changes.api_keys).await?;
    write_audit(dialect, &mut tx, &changes.audit).await?;
    write_checkpoints(dialect, &mut tx, next).await?;
    tx.commit().await?;
    cache.absorb(changes, &plan.signing_key_tenants);
    Ok(next)
}

/// Splits `items` into chunks whose lengths are powers of two no larger than `max`. Each table
/// then has only a handful of distinct statement shapes, which all stay in sqlx's
/// per-connection prepared-statement cache instead of being re-prepared per batch.
fn chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let mut size = max;
        while size > rest.len() {
            size /= 2;
        }
        let (head, tail) = rest.split_at(size.max(1));
        out.push(head);
        rest = tail;
    }
    out
}

/// `count` bind parameters numbered from `start`. SQLite gets anonymous `?`s: sqlx looks up
/// every parameter's name while binding, and SQLite's name lookup is a linear scan, which
/// makes binding numbered parameters quadratic (it took most of a multi-row upsert's time).
fn placeholders(dialect: Dialect, start: usize, count: usize) -> String {
    let mut out = String::with_capacity(count * 5);
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        match dialect {
            Dialect::Sqlite => out.push('?'),
            Dialect::Postgres => {
                out.push('$');
                out.push_str(&(start + i).to_string());
            }
        }
    }
    out
}

fn values_list(dialect: Dialect, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            out.push(',');
        }
        out.push('(');
        out.push_str(&placeholders(dialect, row * columns + 1, columns));
        out.push(')');
    }
    out
}

/// A multi-row upsert that, on conflict, overwrites every column but `key` and `fixed`.
/// Leaving columns that never change after insertion out of the update lets SQLite skip the
/// indexes on them.
fn upsert_sql(
    dialect: Dialect,
    table: &str,
    columns: &[&str],
    key: &[&str],
    fixed: &[&str],
    rows: usize,
) -> String {
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(c) && !fixed.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
        columns.join(", "),
        values_list(dialect, rows, columns.len()),
        key.join(", "),
        updates.join(", "),
    )
}

/// The ids the cache cannot answer for, as sorted TEXT keys.
fn uncached(ids: impl Iterator<Item = Uuid>) -> Vec<String> {
    let mut ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    ids.sort();
    ids
}

fn to_i64(position: u64) -> i64 {
    // Positions and versions are counts of stored events: far below i64::MAX. A use count
    // could only get there through absurd `api_key.used` payloads; it then sticks at the top.
    i64::try_from(position).unwrap_or(i64::MAX)
}

async fn load_tenants(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    plan: &LoadPlan,
    fold: &mut Fold,
    cache: &mut RowCache,
) -> Result<(), ReadError> {
    let complete = cache.is_complete(Projection::Tenants);
    let mut missing = Vec::new();
    for id in &plan.tenants {
        match cache.tenants.remove(id) {
            Some(Some(row)) => fold.seed_tenant(row),
            Some(None) => {}
            None if complete => {}
            None => missing.push(*id),
        }
    }
    let ids = uncached(missing.into_iter());
    for row in fetch_in(dialect, tx, "SELECT doc FROM rm_tenants WHERE id", &ids).await? {
        fold.seed_tenant(store::tenant_from_row(&row)?);
    }
    Ok(())
}

async fn load_signing_keys(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    plan: &LoadPlan,
    fold: &mut Fold,
    cache: &mut RowCache,
) -> Result<(), ReadError> {
    let complete = cache.is_complete(Projection::SigningKeys);
    let mut missing = Vec::new();
    for tenant in &plan.signing_key_tenants {
        match cache.key_rings.remove(tenant) {
            Some(ring) => {
                for key in ring {
                    fold.seed_signing_key(*tenant, key);
                }
            }
            None if complete => {}
            None => missing.push(*tenant),
        }
    }
    let ids = uncached(missing.into_iter());
    let select = "SELECT tenant_id, kid, alg, status, created_at, retired_at, public_jwk \
                  FROM rm_signing_keys WHERE tenant_id";
    for row in fetch_in(dialect, tx, select, &ids).await? {
        let (tenant_id, key) = store::signing_key_from_row(&row)?;
        fold.seed_signing_key(tenant_id, key);
    }
    Ok(())
}

async fn load_api_keys(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    plan: &LoadPlan,
    fold: &mut Fold,
    cache: &mut RowCache,
) -> Result<(), ReadError> {
    let complete = cache.is_complete(Projection::ApiKeys);
    let mut missing = Vec::new();
    for id in &plan.api_keys {
        match cache.api_keys.remove(id) {
            Some(Some(row)) => fold.seed_api_key(row),
            Some(None) => {}
            None if complete => {}
            None => missing.push(*id),
        }
    }
    let ids = uncached(missing.into_iter());
    let select = format!("SELECT {API_KEY_COLUMNS} FROM rm_api_keys WHERE key_id");
    for row in fetch_in(dialect, tx, &select, &ids).await? {
        fold.seed_api_key(store::api_key_from_row(&row)?);
    }
    Ok(())
}

/// Runs `{select} IN (...)` over `ids`, a bounded number of keys per statement.
async fn fetch_in(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    select: &str,
    ids: &[String],
) -> Result<Vec<AnyRow>, ReadError> {
    let mut rows = Vec::new();
    for chunk in chunks(ids, MAX_KEYS_PER_QUERY) {
        let sql = format!("{select} IN ({})", placeholders(dialect, 1, chunk.len()));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.as_str());
        }
        rows.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}

fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, ReadError> {
    // Serializing these plain structs cannot fail; the error path exists only to avoid a panic.
    serde_json::to_string(value).map_err(|e| ReadError::Corrupt(format!("{what}: {e}")))
}

const TENANT_COLUMNS: [&str; 8] = [
    "id",
    "slug",
    "status",
    "suspended",
    "created_at",
    "updated_at",
    "stream_version",
    "doc",
];

async fn write_tenants(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    changes: &Changes<Uuid, TenantView>,
) -> Result<(), ReadError> {
    for chunk in chunks(&changes.upserts, MAX_ROWS_PER_UPSERT) {
        let sql = upsert_sql(
            dialect,
            "rm_tenants",
            &TENANT_COLUMNS,
            &["id"],
            // The reducer never changes them once the tenant exists.
            &["slug", "created_at"],
            chunk.len(),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, tenant) in chunk {
            query = query
                .bind(id.to_string())
                .bind(tenant.slug.as_str())
                .bind(tenant.status.as_str())
                .bind(tenant.suspended)
                .bind(tenant.created_at.as_micros())
                .bind(tenant.updated_at.as_micros())
                .bind(to_i64(tenant.version))
                .bind(to_json(tenant, "tenant view")?);
        }
        query.execute(&mut **tx).await?;
    }
    for id in &changes.deletes {
        sqlx::query("DELETE FROM rm_tenants WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

const SIGNING_KEY_COLUMNS: [&str; 7] = [
    "tenant_id",
    "kid",
    "alg",
    "status",
    "created_at",
    "retired_at",
    "public_jwk",
];

async fn write_signing_keys(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    changes: &Changes<(Uuid, String), SigningKeyView>,
) -> Result<(), ReadError> {
    for chunk in chunks(&changes.upserts, MAX_ROWS_PER_UPSERT) {
        let sql = upsert_sql(
            dialect,
            "rm_signing_keys",
            &SIGNING_KEY_COLUMNS,
            &["tenant_id", "kid"],
            &[],
            chunk.len(),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((tenant_id, kid), key) in chunk {
            query = query
                .bind(tenant_id.to_string())
                .bind(kid.as_str())
                .bind(key.alg.as_str())
                .bind(key.status.as_str())
                .bind(key.created_at.as_micros())
                .bind(key.retired_at.map(|t| t.as_micros()))
                .bind(to_json(&key.public_jwk, "public jwk")?);
        }
        query.execute(&mut **tx).await?;
    }
    for (tenant_id, kid) in &changes.deletes {
        sqlx::query("DELETE FROM rm_signing_keys WHERE tenant_id = $1 AND kid = $2")
            .bind(tenant_id.to_string())
            .bind(kid.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

const API_KEY_WRITE_COLUMNS: [&str; 13] = [
    "key_id",
    "tenant_id",
    "secret_hash",
    "name",
    "prefix",
    "scopes",
    "product",
    "created_by",
    "created_at",
    "expires_at",
    "revoked_at",
    "use_count",
    "last_used_at",
];

async fn write_api_keys(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    changes: &Changes<Uuid, ApiKeyView>,
) -> Result<(), ReadError> {
    for chunk in chunks(&changes.upserts, MAX_ROWS_PER_UPSERT) {
        let sql = upsert_sql(
            dialect,
            "rm_api_keys",
            &API_KEY_WRITE_COLUMNS,
            &["key_id"],
            // The reducer never changes them once the key exists.
            &["tenant_id", "secret_hash", "created_at"],
            chunk.len(),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, key) in chunk {
            query = query
                .bind(id.to_string())
                .bind(key.tenant_id.to_string())
                .bind(key.secret_hash.to_hex())
                .bind(key.name.as_str())
                .bind(key.prefix.as_str())
                .bind(to_json(&key.scopes, "api key scopes")?)
                .bind(key.product.as_deref())
                .bind(key.created_by.as_str())
                .bind(key.created_at.as_micros())
                .bind(key.expires_at.map(|t| t.as_micros()))
                .bind(key.revoked_at.map(|t| t.as_micros()))
                .bind(to_i64(key.use_count))
                .bind(key.last_used_at.map(|t| t.as_micros()));
        }
        query.execute(&mut **tx).await?;
    }
    for id in &changes.deletes {
        sqlx::query("DELETE FROM rm_api_keys WHERE key_id = $1")
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Most audit rows in one multi-row insert (18 columns each: 4,608 parameters).
const MAX_AUDIT_ROWS_PER_INSERT: usize = 256;

/// Plain multi-row inserts: an audit row is written once, when its event is projected, and
/// never read back or updated. `DO NOTHING` makes re-applying a batch whose commit was lost
/// harmless (the checkpoint would have committed with the rows anyway).
async fn write_audit(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    rows: &[AuditView],
) -> Result<(), ReadError> {
    for chunk in chunks(rows, MAX_AUDIT_ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO rm_audit ({}) VALUES {} ON CONFLICT (position) DO NOTHING",
            store::AUDIT_COLUMNS,
            values_list(dialect, chunk.len(), store::AUDIT_COLUMN_COUNT),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(to_i64(row.position))
                .bind(row.event_id.to_string())
                .bind(row.tenant_id.to_string())
                .bind(row.event_type.as_str())
                .bind(row.action.as_str())
                .bind(row.actor_kind.as_str())
                .bind(row.actor_id.as_str())
                .bind(row.actor_name.as_deref())
                .bind(row.target_type.as_deref())
                .bind(row.target_id.as_deref())
                .bind(row.target_name.as_deref())
                .bind(row.product.as_deref())
                .bind(row.project_id.map(|id| id.to_string()))
                .bind(row.correlation_id.as_str())
                .bind(row.source_ip.as_deref())
                .bind(row.user_agent.as_deref())
                .bind(row.recorded_at.as_micros())
                .bind(to_json(&row.summary, "audit summary")?);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_checkpoints(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    checkpoints: Checkpoints,
) -> Result<(), ReadError> {
    let sql = upsert_sql(
        dialect,
        "rm_checkpoints",
        &["projection", "position"],
        &["projection"],
        &[],
        Projection::ALL.len(),
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for projection in Projection::ALL {
        query = query
            .bind(projection.name())
            .bind(to_i64(checkpoints.get(projection)));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_covering_everything_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let parts = chunks(&items, 256);
        let sizes: Vec<usize> = parts.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![256, 256, 256, 128, 64, 32, 8]);
        let joined: Vec<u32> = parts.concat();
        assert_eq!(joined, items);
        assert!(chunks::<u32>(&[], 256).is_empty());
    }

    #[test]
    fn upsert_sql_updates_every_non_key_column() {
        let sql = upsert_sql(
            Dialect::Postgres,
            "t",
            &["a", "b", "c", "d"],
            &["a"],
            &["d"],
            2,
        );
        assert_eq!(
            sql,
            "INSERT INTO t (a, b, c, d) VALUES ($1,$2,$3,$4),($5,$6,$7,$8) \
             ON CONFLICT (a) DO UPDATE SET b = excluded.b, c = excluded.c"
        );
        let sql = upsert_sql(Dialect::Sqlite, "t", &["a", "b"], &["a"], &[], 2);
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) VALUES (?,?),(?,?) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
        );
    }
}
