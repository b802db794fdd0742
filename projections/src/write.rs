//! Applying one batch of events to the read store: load, fold, write, checkpoint, commit.
//!
//! This module and the two writers that run its steps (`write_sqlite`, `write_postgres`) are
//! the only code that writes read-model rows. A batch runs in one transaction: the rows it
//! touches are loaded (those the [`RowCache`] lacks), folded in memory by the pure reducers of
//! [`crate::reduce`] and encoded ([`fold_and_encode`], on a thread of its own for a big
//! batch), and each changed row is written once. The statements and row encodings both
//! writers use live here ([`TableWrite`], the `*_cells` functions).
//! The checkpoints advance in the same transaction, so a crash leaves either the whole batch and
//! its checkpoint or neither: a restart can neither skip nor re-apply an event.

// foldhash, not SipHash: a batch hashes every key it touches several times, and the keys come
// from our own log, not from a client.
use foldhash::{HashMap, HashMapExt, HashSet};
use std::borrow::Cow;
use std::sync::Arc;

use tessera_event_schemas::events::Event;
use tessera_event_schemas::{DecodeError, Envelope, RecordedEvent};
use uuid::Uuid;

use crate::error::ReadError;
use crate::reduce::{BatchChanges, Checkpoints, Fold, LoadPlan, Projection};
use crate::store::{self, API_KEY_COLUMNS, Dialect, ReadStore};
use crate::views::{ApiKeyView, AuditRow, SigningKeyView, TenantView};

/// Most keys in one `IN (...)` list.
pub(crate) const MAX_KEYS_PER_QUERY: usize = 512;
/// Most rows in one multi-row upsert (times at most 13 columns: well under both backends'
/// bind-parameter limits).
pub(crate) const MAX_ROWS_PER_UPSERT: usize = 256;

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
///
/// A rebuild's cache also writes behind ([`RowCache::write_behind`]): the table rows a batch
/// changes stay here, unwritten, until a batch settles them, and the checkpoint stored for
/// each table stays at the last settlement. Every tenant of a log in rounds changes in every
/// batch, so a rebuild wrote each table row once per batch; now it writes it about once.
/// Audit rows are never held back.
#[derive(Debug)]
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
    /// Write-behind: what is held back. `None` writes every batch's rows with the batch.
    behind: Option<HeldBack>,
    /// Entries per table beyond which the cache starts over ([`CACHE_LIMIT`]).
    limit: usize,
}

impl Default for RowCache {
    fn default() -> Self {
        Self {
            tenants: HashMap::new(),
            key_rings: HashMap::new(),
            api_keys: HashMap::new(),
            complete: Checkpoints::default(),
            behind: None,
            limit: CACHE_LIMIT,
        }
    }
}

/// The table rows a write-behind cache holds that the store does not have yet.
#[derive(Debug, Default)]
struct HeldBack {
    /// Keys whose cached row (or cached absence) is newer than the store's.
    tenants: HashSet<Uuid>,
    signing_keys: HashSet<(Uuid, String)>,
    api_keys: HashSet<Uuid>,
    /// The checkpoints stored with the tables' rows: how far the store's rows go.
    stored: Checkpoints,
    /// Whether the next batch writes everything held back.
    settle: bool,
    /// Tables whose every written row is new to the store: their rows go as
    /// [`RowWrite::Inserts`] and there is nothing to delete. A rebuild starts with all four
    /// (its store is empty); a table leaves when its rows are first settled, since a later
    /// settlement may rewrite them. The audit table stays: its rows are never held back, and
    /// each batch writes positions past the last.
    inserts_only: HashSet<Projection>,
}

impl HeldBack {
    fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.signing_keys.is_empty() && self.api_keys.is_empty()
    }

    fn holds(&self, projection: Projection) -> bool {
        match projection {
            Projection::Tenants => !self.tenants.is_empty(),
            Projection::SigningKeys => !self.signing_keys.is_empty(),
            Projection::ApiKeys => !self.api_keys.is_empty(),
            Projection::Audit => false,
        }
    }
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

    /// A write-behind cache (see [`RowCache`]) for a store at `checkpoints`: for rebuilds,
    /// which settle it once the log is folded ([`RowCache::settle_with_next_batch`]).
    pub(crate) fn write_behind(checkpoints: Checkpoints) -> Self {
        Self {
            behind: Some(HeldBack {
                stored: checkpoints,
                // As for `complete`: a projection at 0 has written no row.
                inserts_only: Projection::ALL
                    .into_iter()
                    .filter(|projection| checkpoints.get(*projection) == 0)
                    .collect(),
                ..HeldBack::default()
            }),
            ..Self::new(checkpoints)
        }
    }

    /// Makes the next batch write every row held back, even a batch without events.
    pub(crate) fn settle_with_next_batch(&mut self) {
        if let Some(behind) = &mut self.behind {
            behind.settle = true;
        }
    }

    /// Whether every audit row the batches of this cache write is new to the store: a
    /// write-behind cache that started on an empty audit table (a rebuild's), since each batch
    /// only writes positions past the last.
    pub(crate) fn audit_rows_are_new(&self) -> bool {
        self.behind
            .as_ref()
            .is_some_and(|behind| behind.inserts_only.contains(&Projection::Audit))
    }

    /// Whether rows are held back that the store does not have.
    pub(crate) fn holds_back(&self) -> bool {
        self.behind
            .as_ref()
            .is_some_and(|behind| !behind.is_empty())
    }

    /// Whether the next batch must write what is held back: it was asked to, or the cache
    /// has grown past its bound and may only let go of rows the store has.
    fn must_settle(&self) -> bool {
        self.behind
            .as_ref()
            .is_some_and(|behind| !behind.is_empty() && (behind.settle || self.over_limit()))
    }

    fn over_limit(&self) -> bool {
        self.tenants.len() > self.limit
            || self.key_rings.len() > self.limit
            || self.api_keys.len() > self.limit
    }

    fn is_complete(&self, projection: Projection) -> bool {
        self.complete.get(projection) == COMPLETE
    }

    /// Forgets everything, held-back rows included: after a failed batch the caller reads
    /// the stored checkpoints again, which never count a row that was not written.
    pub(crate) fn clear(&mut self) {
        self.tenants.clear();
        self.key_rings.clear();
        self.api_keys.clear();
        self.complete = Checkpoints::default();
        if let Some(behind) = &mut self.behind {
            *behind = HeldBack::default();
        }
    }

    /// Takes a folded batch's rows; a write-behind cache also notes the changed ones as held
    /// back.
    fn absorb(&mut self, changes: BatchChanges, key_ring_tenants: &HashSet<Uuid>) {
        if let Some(behind) = &mut self.behind {
            behind
                .tenants
                .extend(changes.tenants.written_keys().copied());
            behind
                .signing_keys
                .extend(changes.signing_keys.written_keys().cloned());
            behind
                .api_keys
                .extend(changes.api_keys.written_keys().copied());
        }
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
    }

    /// Starts a table over when it has outgrown [`CACHE_LIMIT`]. Never while rows are held
    /// back: [`RowCache::must_settle`] makes the batch write them first.
    fn trim(&mut self) {
        if self.holds_back() {
            return;
        }
        if self.tenants.len() > self.limit {
            self.tenants.clear();
            self.complete.set(Projection::Tenants, 0);
        }
        if self.key_rings.len() > self.limit {
            self.key_rings.clear();
            self.complete.set(Projection::SigningKeys, 0);
        }
        if self.api_keys.len() > self.limit {
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
/// The whole batch (plan, load, fold, write) runs apart from the caller's task, which a
/// rebuild uses to read the next batch meanwhile: on SQLite on a blocking thread through the
/// store's rusqlite connection (`write_sqlite`), on PostgreSQL in a task of its own through the
/// writer's pool (`write_postgres`).
pub(crate) async fn apply_batch(
    store: &ReadStore,
    checkpoints: Checkpoints,
    batch: &Arc<DecodedBatch>,
    cache: &mut RowCache,
) -> Result<Checkpoints, ReadError> {
    let batch = Arc::clone(batch);
    let mut owned = std::mem::take(cache);
    let outcome = if let Some(writer) = store.sqlite_writer() {
        tokio::task::spawn_blocking(move || {
            let result = writer.apply(checkpoints, &batch, &mut owned);
            (owned, result)
        })
        .await
    } else if let Some(writer) = store.postgres_writer() {
        tokio::spawn(async move {
            let result = writer.apply(checkpoints, &batch, &mut owned).await;
            (owned, result)
        })
        .await
    } else {
        Ok((
            owned,
            Err(ReadError::Unavailable(
                "the read store's writer is closed".into(),
            )),
        ))
    };
    let result = match outcome {
        Ok((owned, result)) => {
            *cache = owned;
            result
        }
        Err(error) => Err(ReadError::Unavailable(format!(
            "the read-model writer task failed: {error}"
        ))),
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
/// (nothing decoded, or everything already applied) and has no held-back rows to settle.
pub(crate) fn prepare(
    checkpoints: Checkpoints,
    batch: &DecodedBatch,
    cache: &mut RowCache,
) -> Option<Prepared> {
    let next = batch
        .end()
        .map_or(checkpoints, |end| checkpoints.advanced_to(end));
    if next == checkpoints && !cache.must_settle() {
        return None;
    }
    let mut fold = Fold::new(checkpoints);
    let mut plan = LoadPlan::default();
    for (envelope, event) in batch.pairs() {
        fold.plan(&mut plan, envelope, event);
    }
    fold.reserve(&plan);
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
    /// Rows of a table the store holds no row of (a rebuild's first settlement): nothing for
    /// them to conflict with.
    Inserts(&'static TableWrite, Vec<Vec<Cell<'static>>>),
    Deletes(&'static TableWrite, Vec<Vec<Cell<'static>>>),
}

/// What a batch leaves behind: the checkpoints its fold reached, and those stored with its
/// rows. They differ only for the tables of a write-behind cache that holds rows back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Applied {
    pub(crate) next: Checkpoints,
    pub(crate) stored: Checkpoints,
}

/// Folds `batch` and encodes every row it writes, handing the rows to `store` as they are
/// ready: the audit rows while the batch folds (each event adds one), then the changed rows of
/// each table, or for a write-behind cache the rows it settles, if any. The cache takes the
/// batch's rows.
pub(crate) fn fold_and_encode(
    mut prepared: Prepared,
    batch: &DecodedBatch,
    cache: &mut RowCache,
    mut store: impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<Applied, ReadError> {
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
    if cache.behind.is_none() {
        encode_changes(&changes, &mut store)?;
        cache.absorb(changes, &plan.signing_key_tenants);
    } else {
        cache.absorb(changes, &plan.signing_key_tenants);
        if cache.must_settle() {
            cache.settle(&mut store)?;
        }
    }
    let stored = cache.stored_with(next);
    cache.trim();
    Ok(Applied { next, stored })
}

/// Every changed row of a folded batch.
fn encode_changes(
    changes: &BatchChanges,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let (t, k, a) = (&changes.tenants, &changes.signing_keys, &changes.api_keys);
    encode_table(
        &TENANTS,
        pairs(&t.upserts),
        t.deletes.iter(),
        tenant_cells,
        tenant_key_cells,
        store,
    )?;
    encode_table(
        &SIGNING_KEYS,
        pairs(&k.upserts),
        k.deletes.iter(),
        signing_key_cells,
        signing_key_key_cells,
        store,
    )?;
    encode_table(
        &API_KEYS,
        pairs(&a.upserts),
        a.deletes.iter(),
        api_key_cells,
        api_key_key_cells,
        store,
    )
}

fn pairs<K, R>(rows: &[(K, R)]) -> impl Iterator<Item = (&K, &R)> {
    rows.iter().map(|(key, row)| (key, row))
}

impl RowCache {
    /// Encodes every held-back row, in key order, as what the cache holds for it: its row,
    /// or a delete where it holds an absence. Nothing is held back afterwards.
    fn settle(
        &mut self,
        store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let Some(behind) = &mut self.behind else {
            return Ok(());
        };
        behind.settle = false;
        let tenants = sorted(std::mem::take(&mut behind.tenants));
        let signing_keys = sorted(std::mem::take(&mut behind.signing_keys));
        let api_keys = sorted(std::mem::take(&mut behind.api_keys));
        // Whether each table is still empty in the store; it is not once this settles.
        let mut fresh = |projection| behind.inserts_only.remove(&projection);
        let (fresh_tenants, fresh_signing_keys, fresh_api_keys) = (
            fresh(Projection::Tenants),
            fresh(Projection::SigningKeys),
            fresh(Projection::ApiKeys),
        );

        encode_held(
            &TENANTS,
            fresh_tenants,
            &tenants,
            |id| self.tenants.get(id).map(Option::as_ref),
            tenant_cells,
            tenant_key_cells,
            store,
        )?;
        encode_held(
            &SIGNING_KEYS,
            fresh_signing_keys,
            &signing_keys,
            |(tenant, kid)| {
                let ring = self.key_rings.get(tenant)?;
                Some(ring.iter().find(|key| &key.kid == kid))
            },
            signing_key_cells,
            signing_key_key_cells,
            store,
        )?;
        encode_held(
            &API_KEYS,
            fresh_api_keys,
            &api_keys,
            |id| self.api_keys.get(id).map(Option::as_ref),
            api_key_cells,
            api_key_key_cells,
            store,
        )
    }

    /// The checkpoints to store with a batch that folded to `next`: `next`, except that a
    /// table with rows held back stays at the checkpoint stored with its rows.
    fn stored_with(&mut self, next: Checkpoints) -> Checkpoints {
        let Some(behind) = &mut self.behind else {
            return next;
        };
        let mut stored = next;
        for projection in Projection::ALL {
            if behind.holds(projection) {
                stored.set(projection, behind.stored.get(projection));
            }
        }
        behind.stored = stored;
        stored
    }
}

fn sorted<K: Ord>(keys: HashSet<K>) -> Vec<K> {
    let mut keys: Vec<K> = keys.into_iter().collect();
    keys.sort_unstable();
    keys
}

/// Encodes held-back `keys` as what the cache holds for each: an upsert of its row, or a
/// delete for a known absence. `cached` answers `None` for a key the cache holds nothing for,
/// which a held-back key never is. Into a table the store holds no row of (`fresh`), rows are
/// inserts and there is nothing to delete.
fn encode_held<'c, K, R: 'c>(
    table: &'static TableWrite,
    fresh: bool,
    keys: &'c [K],
    cached: impl Fn(&K) -> Option<Option<&'c R>>,
    cells: impl for<'a> Fn(&'a K, &'a R) -> Result<Vec<Cell<'a>>, ReadError>,
    key_cells: impl for<'a> Fn(&'a K) -> Vec<Cell<'a>>,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for key in keys {
        match cached(key) {
            Some(Some(row)) => upserts.push((key, row)),
            Some(None) => deletes.push(key),
            None => {
                return Err(ReadError::Unavailable(
                    "a held-back read-model row left the row cache before it was written".into(),
                ));
            }
        }
    }
    if fresh {
        let inserts = upserts
            .into_iter()
            .map(|(key, row)| cells(key, row).map(owned));
        return hand_over(inserts, |rows| RowWrite::Inserts(table, rows), store);
    }
    encode_table(
        table,
        upserts.into_iter(),
        deletes.into_iter(),
        cells,
        key_cells,
        store,
    )
}

/// Changed rows of one table, as upserts and deletes of [`ROWS_PER_WRITE`] rows each.
fn encode_table<'r, K: 'r, R: 'r>(
    table: &'static TableWrite,
    upserts: impl Iterator<Item = (&'r K, &'r R)>,
    deletes: impl Iterator<Item = &'r K>,
    cells: impl for<'a> Fn(&'a K, &'a R) -> Result<Vec<Cell<'a>>, ReadError>,
    key_cells: impl for<'a> Fn(&'a K) -> Vec<Cell<'a>>,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    hand_over(
        upserts.map(|(key, row)| cells(key, row).map(owned)),
        |rows| RowWrite::Upserts(table, rows),
        store,
    )?;
    hand_over(
        deletes.map(|key| Ok(owned(key_cells(key)))),
        |rows| RowWrite::Deletes(table, rows),
        store,
    )
}

/// A row's cells, owning their text (to outlive the row they were encoded from).
fn owned(cells: Vec<Cell<'_>>) -> Vec<Cell<'static>> {
    cells.into_iter().map(Cell::into_owned).collect()
}

/// Hands `rows` to `store` in writes of [`ROWS_PER_WRITE`] rows.
fn hand_over(
    rows: impl Iterator<Item = Result<Vec<Cell<'static>>, ReadError>>,
    write: impl Fn(Vec<Vec<Cell<'static>>>) -> RowWrite,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let mut chunk = Vec::with_capacity(ROWS_PER_WRITE);
    for row in rows {
        chunk.push(row?);
        if chunk.len() == ROWS_PER_WRITE {
            store(write(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(ROWS_PER_WRITE),
            )))?;
        }
    }
    if !chunk.is_empty() {
        store(write(chunk))?;
    }
    Ok(())
}

/// Splits `items` into chunks whose lengths are powers of two no larger than `max`. Each table
/// then has only a handful of distinct statement shapes, which all stay in sqlx's
/// per-connection prepared-statement cache instead of being re-prepared per batch.
pub(crate) fn chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
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
pub(crate) fn chunk_lengths(len: usize, max: usize) -> Vec<usize> {
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
pub(crate) fn placeholders(dialect: Dialect, start: usize, count: usize) -> String {
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
pub(crate) const MAX_AUDIT_ROWS_PER_INSERT: usize = 256;

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

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::{RecordedEvent, streams};

    use super::*;
    use crate::reduce::tests::envelope;

    /// A `tenant.created` for each of `tenants`, at positions from `first` on.
    fn creations(tenants: &[Uuid], first: u64) -> DecodedBatch {
        let created = samples::current()
            .into_iter()
            .find(|e| e.event_type() == "tenant.created")
            .unwrap();
        let events = (first..)
            .zip(tenants)
            .map(|(position, tenant)| {
                let mut envelope = envelope(streams::tenant(*tenant), 1, position, 1_000);
                envelope.tenant_id = *tenant;
                envelope.event_type = "tenant.created".into();
                RecordedEvent {
                    envelope,
                    payload: Vec::new(),
                }
            })
            .collect();
        DecodedBatch {
            events,
            decoded: vec![created; tenants.len()],
            failure: None,
        }
    }

    /// Applies `batch` without a store: what it would write, per kind, and its checkpoints.
    fn apply_dry(
        checkpoints: Checkpoints,
        batch: &DecodedBatch,
        cache: &mut RowCache,
    ) -> Option<(Vec<String>, Applied)> {
        let prepared = prepare(checkpoints, batch, cache)?;
        assert!(
            prepared.missing.tenants.is_empty(),
            "a rebuild loads nothing"
        );
        let mut writes = Vec::new();
        let applied = fold_and_encode(prepared, batch, cache, |write| {
            writes.push(match write {
                RowWrite::Audit(rows) => format!("audit x{}", rows.len()),
                RowWrite::Upserts(table, rows) => format!("upsert {} x{}", table.table, rows.len()),
                RowWrite::Inserts(table, rows) => format!("insert {} x{}", table.table, rows.len()),
                RowWrite::Deletes(table, rows) => format!("delete {} x{}", table.table, rows.len()),
            });
            Ok(())
        })
        .unwrap();
        Some((writes, applied))
    }

    #[test]
    fn a_write_behind_cache_holds_table_rows_back_until_settled() {
        let tenants: Vec<Uuid> = (1..=7).map(Uuid::from_u128).collect();
        let mut cache = RowCache::write_behind(Checkpoints::default());
        let first = creations(&tenants[..3], 1);
        let (writes, applied) = apply_dry(Checkpoints::default(), &first, &mut cache).unwrap();
        assert_eq!(writes, ["audit x3"]);
        assert_eq!(applied.next.min(), 3);
        assert_eq!(applied.stored.get(Projection::Audit), 3);
        // A tenant's creation also adds its first signing key.
        assert_eq!(
            applied.stored.get(Projection::Tenants),
            0,
            "no tenant row stored"
        );
        assert_eq!(applied.stored.get(Projection::SigningKeys), 0);
        // Tables the batch did not touch hold nothing back and move on.
        assert_eq!(applied.stored.get(Projection::ApiKeys), 3);
        assert!(cache.holds_back());

        // The first settlement into the empty tables inserts; a later one may rewrite rows.
        cache.settle_with_next_batch();
        let second = creations(&tenants[3..5], 4);
        let (writes, applied) = apply_dry(applied.next, &second, &mut cache).unwrap();
        assert_eq!(
            writes,
            [
                "audit x2",
                "insert rm_tenants x5",
                "insert rm_signing_keys x5"
            ]
        );
        assert_eq!(applied.stored, applied.next);
        assert!(!cache.holds_back());
        assert!(cache.audit_rows_are_new());
        cache.settle_with_next_batch();
        let third = creations(&tenants[5..], 6);
        let (writes, _) = apply_dry(applied.next, &third, &mut cache).unwrap();
        assert_eq!(
            writes,
            [
                "audit x2",
                "upsert rm_tenants x2",
                "upsert rm_signing_keys x2"
            ]
        );
        // Only a rebuild's cache, which starts from an empty store, knows its audit rows new.
        assert!(!RowCache::new(Checkpoints::default()).audit_rows_are_new());
        assert!(!RowCache::write_behind(applied.next).audit_rows_are_new());

        // Settling needs no events; with nothing held back an empty batch is no batch.
        let mut cache = RowCache::write_behind(Checkpoints::default());
        let (_, applied) = apply_dry(Checkpoints::default(), &first, &mut cache).unwrap();
        let nothing = DecodedBatch::decode(Vec::new());
        assert!(apply_dry(applied.next, &nothing, &mut cache).is_none());
        cache.settle_with_next_batch();
        let (writes, settled) = apply_dry(applied.next, &nothing, &mut cache).unwrap();
        assert_eq!(
            writes,
            ["insert rm_tenants x3", "insert rm_signing_keys x3"]
        );
        assert_eq!(settled.stored, applied.next);
        assert!(apply_dry(applied.next, &nothing, &mut cache).is_none());
    }

    #[test]
    fn a_write_behind_cache_writes_what_it_holds_before_outgrowing_its_bound() {
        let tenants: Vec<Uuid> = (1..=5).map(Uuid::from_u128).collect();
        let mut cache = RowCache {
            limit: 4,
            ..RowCache::write_behind(Checkpoints::default())
        };
        let (writes, applied) = apply_dry(
            Checkpoints::default(),
            &creations(&tenants[..4], 1),
            &mut cache,
        )
        .unwrap();
        assert_eq!(writes, ["audit x4"]);
        let (writes, applied) =
            apply_dry(applied.next, &creations(&tenants[4..], 5), &mut cache).unwrap();
        assert_eq!(
            writes,
            [
                "audit x1",
                "insert rm_tenants x5",
                "insert rm_signing_keys x5"
            ]
        );
        assert_eq!(applied.stored, applied.next);
        assert!(!cache.holds_back());
        assert!(
            cache.tenants.is_empty(),
            "the cache started over once written"
        );
        assert!(cache.key_rings.is_empty());
        assert!(!cache.is_complete(Projection::Tenants));
    }

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
    #[allow(
        clippy::disallowed_methods,
        reason = "left to the projections owner: a fixed id would do here"
    )]
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
