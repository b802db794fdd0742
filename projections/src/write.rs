//! Applying one batch of events to the read store: load, fold, write, checkpoint, commit.
//!
//! This is the only code that writes read-model rows. A batch runs in one transaction: the
//! rows it touches are loaded with one `IN (...)` query per table, folded in memory by the pure
//! reducers of [`crate::reduce`] and encoded ([`fold_and_encode`], on a thread of its own for a
//! big batch), and each changed row is written once with a multi-row upsert.
//! The checkpoints advance in the same transaction, so a crash leaves either the whole batch and
//! its checkpoint or neither: a restart can neither skip nor re-apply an event.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Transaction};
use tessera_event_schemas::events::Event;
use tessera_event_schemas::{DecodeError, Envelope, RecordedEvent};
use uuid::Uuid;

use crate::error::ReadError;
use crate::reduce::{BatchChanges, Changes, Checkpoints, Fold, LoadPlan, Projection};
use crate::store::{self, API_KEY_COLUMNS, Dialect, ReadStore};
use crate::views::{ApiKeyView, AuditRow, SigningKeyView, TenantView};

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

    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&Envelope, &Event)> {
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
/// `rebuild` both require. Entries are taken out while a batch runs and put back once it is
/// folded (the SQLite writer does that while its transaction is still open); a failed batch
/// clears everything, so the cache never keeps the state of a batch that did not commit.
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

    pub(crate) fn absorb(&mut self, changes: BatchChanges, key_ring_tenants: &HashSet<Uuid>) {
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
///
/// On SQLite the whole batch (plan, load, fold, write) runs on a blocking thread through the
/// store's rusqlite connection (`write_sqlite`); on PostgreSQL through the sqlx pool, here.
pub(crate) async fn apply_batch(
    store: &ReadStore,
    checkpoints: Checkpoints,
    batch: &Arc<DecodedBatch>,
    cache: &mut RowCache,
) -> Result<Checkpoints, ReadError> {
    let result = match &store.sqlite_writer {
        Some(writer) => {
            let writer = Arc::clone(writer);
            let batch = Arc::clone(batch);
            let mut owned = std::mem::take(cache);
            let outcome = tokio::task::spawn_blocking(move || {
                let result = writer.apply(checkpoints, &batch, &mut owned);
                (owned, result)
            })
            .await;
            match outcome {
                Ok((owned, result)) => {
                    *cache = owned;
                    result
                }
                Err(error) => Err(ReadError::Unavailable(format!(
                    "the read-model writer task failed: {error}"
                ))),
            }
        }
        None => apply(store, checkpoints, batch, cache).await,
    };
    if result.is_err() {
        cache.clear();
    }
    result
}

/// A batch's fold, planned and seeded from the cache: what is left is loading the rows the
/// cache could not answer for (`missing`), folding, and writing.
pub(crate) struct Prepared {
    pub(crate) next: Checkpoints,
    pub(crate) plan: LoadPlan,
    pub(crate) fold: Fold,
    pub(crate) missing: Missing,
}

/// Keys whose rows must be loaded from the store, each list sorted (as TEXT).
#[derive(Default)]
pub(crate) struct Missing {
    pub(crate) tenants: Vec<String>,
    pub(crate) key_ring_tenants: Vec<String>,
    pub(crate) api_keys: Vec<String>,
}

/// Plans `batch` and seeds the fold from `cache`. `None` when the batch moves no checkpoint
/// (nothing decoded, or everything already applied).
pub(crate) fn prepare(
    checkpoints: Checkpoints,
    batch: &DecodedBatch,
    cache: &mut RowCache,
) -> Option<Prepared> {
    let end = batch.end()?;
    let next = checkpoints.advanced_to(end);
    if next == checkpoints {
        return None;
    }
    let mut fold = Fold::new(checkpoints);
    let mut plan = LoadPlan::default();
    for (envelope, event) in batch.pairs() {
        fold.plan(&mut plan, envelope, event);
    }
    let missing = cache.seed(&plan, &mut fold);
    Some(Prepared {
        next,
        plan,
        fold,
        missing,
    })
}

impl RowCache {
    /// Seeds `fold` with every planned row the cache holds, and returns the keys it cannot
    /// answer for. Seeded entries leave the cache until the batch is folded (`absorb`).
    fn seed(&mut self, plan: &LoadPlan, fold: &mut Fold) -> Missing {
        let complete = self.is_complete(Projection::Tenants);
        let tenants = take_rows(&mut self.tenants, complete, &plan.tenants, |row| {
            fold.seed_tenant(row)
        });

        let complete = self.is_complete(Projection::SigningKeys);
        let mut rings = Vec::new();
        for tenant in &plan.signing_key_tenants {
            match self.key_rings.remove(tenant) {
                Some(ring) => {
                    for key in ring {
                        fold.seed_signing_key(*tenant, key);
                    }
                }
                None if complete => {}
                None => rings.push(*tenant),
            }
        }

        let complete = self.is_complete(Projection::ApiKeys);
        let api_keys = take_rows(&mut self.api_keys, complete, &plan.api_keys, |row| {
            fold.seed_api_key(row)
        });
        Missing {
            tenants,
            key_ring_tenants: uncached(rings.into_iter()),
            api_keys,
        }
    }
}

/// Hands `seed` every cached row of `keys` (a cached `None` is a known absence) and returns the
/// keys the cache cannot answer for: none if it holds the whole table (`complete`).
fn take_rows<R>(
    cached: &mut HashMap<Uuid, Option<R>>,
    complete: bool,
    keys: &HashSet<Uuid>,
    mut seed: impl FnMut(R),
) -> Vec<String> {
    let mut missing = Vec::new();
    for key in keys {
        match cached.remove(key) {
            Some(Some(row)) => seed(row),
            Some(None) => {}
            None if complete => {}
            None => missing.push(*key),
        }
    }
    uncached(missing.into_iter())
}

async fn apply(
    store: &ReadStore,
    checkpoints: Checkpoints,
    batch: &Arc<DecodedBatch>,
    cache: &mut RowCache,
) -> Result<Checkpoints, ReadError> {
    let Some(mut prepared) = prepare(checkpoints, batch, cache) else {
        return Ok(checkpoints);
    };
    let dialect = store.dialect;
    let mut tx = store.pool.begin().await?;
    load(dialect, &mut tx, &prepared.missing, &mut prepared.fold).await?;
    // As on SQLite, the cache takes the batch's rows before the commit; `apply_batch` clears
    // it if anything fails.
    let next = if batch.decoded.len() >= PIPELINE_FROM {
        fold_beside(dialect, &mut tx, prepared, batch, cache).await?
    } else {
        let mut writes = Vec::new();
        let next = fold_and_encode(prepared, batch, cache, |rows| {
            writes.push(rows);
            Ok(())
        })?;
        for rows in writes {
            store_rows(dialect, &mut tx, rows).await?;
        }
        next
    };
    write_checkpoints(dialect, &mut tx, next).await?;
    tx.commit().await?;
    Ok(next)
}

/// [`fold_and_encode`] on a blocking thread while this task sends the rows it hands over to
/// the database, so that folding overlaps with PostgreSQL's work on the statements. A failed
/// statement closes the channel, which stops the folding at its next hand-over.
async fn fold_beside(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    prepared: Prepared,
    batch: &Arc<DecodedBatch>,
    cache: &mut RowCache,
) -> Result<Checkpoints, ReadError> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(WRITES_AHEAD);
    let batch = Arc::clone(batch);
    let mut owned = std::mem::take(cache);
    let folder = tokio::task::spawn_blocking(move || {
        let folded = fold_and_encode(prepared, &batch, &mut owned, |rows| {
            sender.blocking_send(rows).map_err(|_| writer_stopped())
        });
        (owned, folded)
    });
    let mut stored = Ok(());
    while let Some(rows) = receiver.recv().await {
        stored = store_rows(dialect, tx, rows).await;
        if stored.is_err() {
            break;
        }
    }
    drop(receiver);
    let (owned, folded) = folder.await.map_err(|error| {
        ReadError::Unavailable(format!("the read-model folding task failed: {error}"))
    })?;
    *cache = owned;
    // The writer's error, if any, is the cause; the folder's is then only "stopped".
    stored.and(folded)
}

/// What a folding thread gets when the writer has given up on the batch.
pub(crate) fn writer_stopped() -> ReadError {
    ReadError::Unavailable("the read-model writer stopped".into())
}

/// Batches at least this long fold on a thread of their own while the writer stores the rows
/// it hands over (`fold_beside`, one per backend); shorter ones, the usual live batch, are not
/// worth starting a thread for.
pub(crate) const PIPELINE_FROM: usize = 2_000;
/// Most rows per [`RowWrite`].
const ROWS_PER_WRITE: usize = 256;
/// [`RowWrite`]s a folding thread may run ahead of the writer.
pub(crate) const WRITES_AHEAD: usize = 16;

/// The rows of one or a few statements, ready to write: audit rows, which bind in place, or
/// encoded table rows.
pub(crate) enum RowWrite {
    Audit(Vec<AuditRow>),
    Upserts(&'static TableWrite, Vec<Vec<Cell<'static>>>),
    Deletes(&'static TableWrite, Vec<Vec<Cell<'static>>>),
}

/// Folds `batch` and encodes every row it writes, handing the rows to `store` as they are
/// ready: the audit rows while the batch folds (each event adds one), then the changed rows of
/// each table. Then hands the rows to `cache` and returns the batch's checkpoints.
pub(crate) fn fold_and_encode(
    mut prepared: Prepared,
    batch: &DecodedBatch,
    cache: &mut RowCache,
    mut store: impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<Checkpoints, ReadError> {
    for (envelope, event) in batch.pairs() {
        prepared.fold.apply(envelope, event);
        if prepared.fold.audit_len() >= ROWS_PER_WRITE {
            store(RowWrite::Audit(prepared.fold.take_audit()))?;
        }
    }
    let (next, plan, mut changes) = (prepared.next, prepared.plan, prepared.fold.into_changes());
    if !changes.audit.is_empty() {
        store(RowWrite::Audit(std::mem::take(&mut changes.audit)))?;
    }
    encode_table(
        &TENANTS,
        &changes.tenants,
        tenant_cells,
        tenant_key_cells,
        &mut store,
    )?;
    encode_table(
        &SIGNING_KEYS,
        &changes.signing_keys,
        signing_key_cells,
        signing_key_key_cells,
        &mut store,
    )?;
    encode_table(
        &API_KEYS,
        &changes.api_keys,
        api_key_cells,
        api_key_key_cells,
        &mut store,
    )?;
    cache.absorb(changes, &plan.signing_key_tenants);
    Ok(next)
}

/// Every changed row of one table, as upserts and deletes of [`ROWS_PER_WRITE`] rows each.
fn encode_table<K, R>(
    table: &'static TableWrite,
    changes: &Changes<K, R>,
    cells: impl for<'a> Fn(&'a K, &'a R) -> Result<Vec<Cell<'a>>, ReadError>,
    key_cells: impl for<'a> Fn(&'a K) -> Vec<Cell<'a>>,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let owned = |cells: Vec<Cell<'_>>| cells.into_iter().map(Cell::into_owned).collect();
    for chunk in changes.upserts.chunks(ROWS_PER_WRITE) {
        let rows = chunk
            .iter()
            .map(|(key, row)| cells(key, row).map(owned))
            .collect::<Result<_, _>>()?;
        store(RowWrite::Upserts(table, rows))?;
    }
    for chunk in changes.deletes.chunks(ROWS_PER_WRITE) {
        let rows = chunk.iter().map(|key| owned(key_cells(key))).collect();
        store(RowWrite::Deletes(table, rows))?;
    }
    Ok(())
}

/// Writes one [`RowWrite`] through sqlx: multi-row statements of power-of-two sizes, a delete
/// per key.
async fn store_rows(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    write: RowWrite,
) -> Result<(), ReadError> {
    match write {
        RowWrite::Audit(rows) => {
            for chunk in chunks(&rows, MAX_AUDIT_ROWS_PER_INSERT) {
                let mut query = sqlx::query(AssertSqlSafe(audit_insert(dialect, chunk.len())));
                for row in chunk {
                    for cell in audit_cells(row) {
                        query = bind(query, cell);
                    }
                }
                query.execute(&mut **tx).await?;
            }
        }
        RowWrite::Upserts(table, rows) => {
            let lengths = chunk_lengths(rows.len(), MAX_ROWS_PER_UPSERT);
            let mut rows = rows.into_iter();
            for length in lengths {
                let mut query = sqlx::query(AssertSqlSafe(table.upsert(dialect, length)));
                for cell in rows.by_ref().take(length).flatten() {
                    query = bind(query, cell);
                }
                query.execute(&mut **tx).await?;
            }
        }
        RowWrite::Deletes(table, rows) => {
            let delete = table.delete(dialect);
            for row in rows {
                let mut query = sqlx::query(AssertSqlSafe(delete.clone()));
                for cell in row {
                    query = bind(query, cell);
                }
                query.execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}

/// Splits `items` into chunks whose lengths are powers of two no larger than `max`. Each table
/// then has only a handful of distinct statement shapes, which all stay in sqlx's
/// per-connection prepared-statement cache instead of being re-prepared per batch.
fn chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let mut rest = items;
    chunk_lengths(items.len(), max)
        .into_iter()
        .map(|length| {
            let (head, tail) = rest.split_at(length);
            rest = tail;
            head
        })
        .collect()
}

/// The lengths [`chunks`] cuts `len` items into.
fn chunk_lengths(len: usize, max: usize) -> Vec<usize> {
    let mut lengths = Vec::new();
    let mut rest = len;
    while rest > 0 {
        let mut size = max.max(1);
        while size > rest {
            size /= 2;
        }
        lengths.push(size);
        rest -= size;
    }
    lengths
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

pub(crate) const SELECT_TENANTS: &str = "SELECT doc FROM rm_tenants WHERE id";
pub(crate) const SELECT_SIGNING_KEYS: &str = "SELECT tenant_id, kid, alg, status, created_at, \
     retired_at, public_jwk FROM rm_signing_keys WHERE tenant_id";

pub(crate) fn select_api_keys() -> String {
    format!("SELECT {API_KEY_COLUMNS} FROM rm_api_keys WHERE key_id")
}

/// Loads the rows the cache could not answer for into `fold`.
async fn load(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    missing: &Missing,
    fold: &mut Fold,
) -> Result<(), ReadError> {
    for row in fetch_in(dialect, tx, SELECT_TENANTS, &missing.tenants).await? {
        fold.seed_tenant(store::tenant_from_row(&row)?);
    }
    let rows = fetch_in(dialect, tx, SELECT_SIGNING_KEYS, &missing.key_ring_tenants).await?;
    for row in rows {
        let (tenant_id, key) = store::signing_key_from_row(&row)?;
        fold.seed_signing_key(tenant_id, key);
    }
    for row in fetch_in(dialect, tx, &select_api_keys(), &missing.api_keys).await? {
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

/// One bound value of a row write, borrowing the row's text where it can. Typed even when
/// NULL: PostgreSQL rejects a NULL bound as TEXT into a BIGINT column.
#[derive(Debug)]
pub(crate) enum Cell<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    /// BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
    Flag(bool),
}

impl<'a> Cell<'a> {
    fn text(value: impl Into<Cow<'a, str>>) -> Self {
        Self::Text(Some(value.into()))
    }

    fn optional(value: Option<&'a str>) -> Self {
        Self::Text(value.map(Cow::Borrowed))
    }

    fn int(value: i64) -> Self {
        Self::Int(Some(value))
    }

    /// The same value, owning its text (to outlive the row it was encoded from).
    pub(crate) fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Text(value) => Cell::Text(value.map(|text| Cow::Owned(text.into_owned()))),
            Cell::Int(value) => Cell::Int(value),
            Cell::Flag(value) => Cell::Flag(value),
        }
    }
}

fn bind<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    cell: Cell<'_>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    match cell {
        Cell::Text(value) => query.bind(value.map(Cow::into_owned)),
        Cell::Int(value) => query.bind(value),
        Cell::Flag(value) => query.bind(value),
    }
}

impl rusqlite::ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Cell::Text(value) => value.to_sql(),
            Cell::Int(value) => value.to_sql(),
            Cell::Flag(value) => value.to_sql(),
        }
    }
}

/// A table's write statements and how to turn a changed row into cells, shared by both
/// writers so that they cannot disagree on what a row holds.
pub(crate) struct TableWrite {
    pub(crate) table: &'static str,
    pub(crate) columns: &'static [&'static str],
    pub(crate) key: &'static [&'static str],
    /// Columns the reducer never changes once the row exists: left out of the update.
    pub(crate) fixed: &'static [&'static str],
}

impl TableWrite {
    pub(crate) fn upsert(&self, dialect: Dialect, rows: usize) -> String {
        upsert_sql(
            dialect,
            self.table,
            self.columns,
            self.key,
            self.fixed,
            rows,
        )
    }

    /// `DELETE ... WHERE` the key columns (numbered placeholders on PostgreSQL, anonymous ones on
    /// SQLite).
    pub(crate) fn delete(&self, dialect: Dialect) -> String {
        let conditions: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(i, column)| match dialect {
                Dialect::Sqlite => format!("{column} = ?"),
                Dialect::Postgres => format!("{column} = ${}", i + 1),
            })
            .collect();
        format!(
            "DELETE FROM {} WHERE {}",
            self.table,
            conditions.join(" AND ")
        )
    }
}

pub(crate) const TENANTS: TableWrite = TableWrite {
    table: "rm_tenants",
    columns: &[
        "id",
        "slug",
        "status",
        "suspended",
        "created_at",
        "updated_at",
        "stream_version",
        "doc",
    ],
    key: &["id"],
    fixed: &["slug", "created_at"],
};

pub(crate) fn tenant_cells<'a>(
    id: &Uuid,
    tenant: &'a TenantView,
) -> Result<Vec<Cell<'a>>, ReadError> {
    Ok(vec![
        Cell::text(id.to_string()),
        Cell::text(tenant.slug.as_str()),
        Cell::text(tenant.status.as_str()),
        Cell::Flag(tenant.suspended),
        Cell::int(tenant.created_at.as_micros()),
        Cell::int(tenant.updated_at.as_micros()),
        Cell::int(to_i64(tenant.version)),
        Cell::text(to_json(tenant, "tenant view")?),
    ])
}

pub(crate) fn tenant_key_cells(id: &Uuid) -> Vec<Cell<'_>> {
    vec![Cell::text(id.to_string())]
}

pub(crate) const SIGNING_KEYS: TableWrite = TableWrite {
    table: "rm_signing_keys",
    columns: &[
        "tenant_id",
        "kid",
        "alg",
        "status",
        "created_at",
        "retired_at",
        "public_jwk",
    ],
    key: &["tenant_id", "kid"],
    fixed: &[],
};

pub(crate) fn signing_key_cells<'a>(
    (tenant_id, kid): &'a (Uuid, String),
    key: &'a SigningKeyView,
) -> Result<Vec<Cell<'a>>, ReadError> {
    Ok(vec![
        Cell::text(tenant_id.to_string()),
        Cell::text(kid.as_str()),
        Cell::text(key.alg.as_str()),
        Cell::text(key.status.as_str()),
        Cell::int(key.created_at.as_micros()),
        Cell::Int(key.retired_at.map(|t| t.as_micros())),
        Cell::text(to_json(&key.public_jwk, "public jwk")?),
    ])
}

pub(crate) fn signing_key_key_cells((tenant_id, kid): &(Uuid, String)) -> Vec<Cell<'_>> {
    vec![Cell::text(tenant_id.to_string()), Cell::text(kid.as_str())]
}

pub(crate) const API_KEYS: TableWrite = TableWrite {
    table: "rm_api_keys",
    columns: &[
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
    ],
    key: &["key_id"],
    fixed: &["tenant_id", "secret_hash", "created_at"],
};

pub(crate) fn api_key_cells<'a>(
    id: &Uuid,
    key: &'a ApiKeyView,
) -> Result<Vec<Cell<'a>>, ReadError> {
    Ok(vec![
        Cell::text(id.to_string()),
        Cell::text(key.tenant_id.to_string()),
        Cell::text(key.secret_hash.to_hex()),
        Cell::text(key.name.as_str()),
        Cell::text(key.prefix.as_str()),
        Cell::text(to_json(&key.scopes, "api key scopes")?),
        Cell::optional(key.product.as_deref()),
        Cell::text(key.created_by.as_str()),
        Cell::int(key.created_at.as_micros()),
        Cell::Int(key.expires_at.map(|t| t.as_micros())),
        Cell::Int(key.revoked_at.map(|t| t.as_micros())),
        Cell::int(to_i64(key.use_count)),
        Cell::Int(key.last_used_at.map(|t| t.as_micros())),
    ])
}

pub(crate) fn api_key_key_cells(id: &Uuid) -> Vec<Cell<'_>> {
    vec![Cell::text(id.to_string())]
}

/// Most audit rows in one multi-row insert (18 columns each: 4,608 parameters).
const MAX_AUDIT_ROWS_PER_INSERT: usize = 256;

/// A plain insert of `rows` audit rows: an audit row is written once, when its event is
/// projected, and never read back or updated. `DO NOTHING` makes re-applying a batch whose
/// commit was lost harmless (the checkpoint would have committed with the rows anyway).
pub(crate) fn audit_insert(dialect: Dialect, rows: usize) -> String {
    format!(
        "INSERT INTO rm_audit ({}) VALUES {} ON CONFLICT (position) DO NOTHING",
        store::AUDIT_COLUMNS,
        values_list(dialect, rows, store::AUDIT_COLUMN_COUNT),
    )
}

pub(crate) fn audit_cells(row: &AuditRow) -> Vec<Cell<'_>> {
    let cells = vec![
        Cell::int(to_i64(row.position)),
        Cell::text(row.event_id.to_string()),
        Cell::text(row.tenant_id.to_string()),
        Cell::text(row.event_type.as_str()),
        Cell::text(row.action.as_str()),
        Cell::text(row.actor_kind.as_str()),
        Cell::text(row.actor_id.as_str()),
        Cell::optional(row.actor_name.as_deref()),
        Cell::optional(row.target_type.as_deref()),
        Cell::optional(row.target_id.as_deref()),
        Cell::optional(row.target_name.as_deref()),
        Cell::optional(row.product.as_deref()),
        Cell::Text(row.project_id.map(|id| Cow::Owned(id.to_string()))),
        Cell::text(row.correlation_id.as_str()),
        Cell::optional(row.source_ip.as_deref()),
        Cell::optional(row.user_agent.as_deref()),
        Cell::int(row.recorded_at.as_micros()),
        Cell::text(row.summary.as_str()),
    ];
    debug_assert_eq!(cells.len(), store::AUDIT_COLUMN_COUNT);
    cells
}

pub(crate) const CHECKPOINT_TABLE: TableWrite = TableWrite {
    table: "rm_checkpoints",
    columns: &["projection", "position"],
    key: &["projection"],
    fixed: &[],
};

/// One `(projection, position)` row per projection.
pub(crate) fn checkpoint_rows(checkpoints: Checkpoints) -> Vec<[Cell<'static>; 2]> {
    Projection::ALL
        .into_iter()
        .map(|projection| {
            [
                Cell::text(projection.name()),
                Cell::int(to_i64(checkpoints.get(projection))),
            ]
        })
        .collect()
}

async fn write_checkpoints(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    checkpoints: Checkpoints,
) -> Result<(), ReadError> {
    let rows = checkpoint_rows(checkpoints);
    let mut query = sqlx::query(AssertSqlSafe(CHECKPOINT_TABLE.upsert(dialect, rows.len())));
    for row in rows {
        for cell in row {
            query = bind(query, cell);
        }
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

    #[test]
    fn deletes_match_every_key_column() {
        assert_eq!(
            SIGNING_KEYS.delete(Dialect::Postgres),
            "DELETE FROM rm_signing_keys WHERE tenant_id = $1 AND kid = $2"
        );
        assert_eq!(
            TENANTS.delete(Dialect::Sqlite),
            "DELETE FROM rm_tenants WHERE id = ?"
        );
    }

    #[test]
    fn every_row_encoding_fills_every_column() {
        use tessera_event_schemas::primitives::Timestamp;
        let id = Uuid::now_v7();
        let checkpoint = checkpoint_rows(Checkpoints::default());
        assert_eq!(checkpoint.len(), Projection::ALL.len());
        assert_eq!(checkpoint[0].len(), CHECKPOINT_TABLE.columns.len());
        let key = ApiKeyView {
            key_id: id,
            tenant_id: id,
            secret_hash: tessera_event_schemas::Hash32::default(),
            name: "n".into(),
            prefix: "tsr_x".into(),
            scopes: vec!["a".into()],
            product: None,
            created_by: "me".into(),
            created_at: Timestamp::from_micros(1),
            expires_at: None,
            revoked_at: None,
            use_count: 0,
            last_used_at: None,
        };
        assert_eq!(
            api_key_cells(&id, &key).unwrap().len(),
            API_KEYS.columns.len()
        );
        assert_eq!(api_key_key_cells(&id).len(), API_KEYS.key.len());
        assert_eq!(tenant_key_cells(&id).len(), TENANTS.key.len());
        assert_eq!(
            signing_key_key_cells(&(id, "k".into())).len(),
            SIGNING_KEYS.key.len()
        );
    }
}
