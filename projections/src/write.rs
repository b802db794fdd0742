//! Applying one batch of events to the read store: load, fold, write, checkpoint, commit.
//!
//! This module and the two writers that run its steps (`write_sqlite`, `write_postgres`) are
//! the only code that writes read-model rows. A batch runs in one transaction: the rows it
//! touches are loaded (those the [`RowCache`] lacks), folded in memory ([`crate::fold`]) and
//! encoded ([`fold_and_encode`], on a thread of its own for a big batch), and each changed row
//! is written once, as the cells its table encodes (`TableProjection::cells`) in the statements
//! of its [`crate::sql::TableWrite`]. The checkpoints advance in the same transaction, so a
//! crash leaves either the whole batch and its checkpoint or neither: a restart can neither
//! skip nor re-apply an event.

use std::sync::Arc;

use tessera_event_schemas::events::Event;
use tessera_event_schemas::{DecodeError, Envelope, RecordedEvent, Timestamp};

use crate::cache::RowCache;
use crate::error::ReadError;
use crate::fold::{BatchChanges, Changes, Fold, LoadPlan};
use crate::sql::{Cell, Column, Kind, TableWrite, to_i64};
use crate::store::ReadStore;
use crate::tables::{
    Checkpoints, Family, PerTable, Projection, Registered, TableProjection, TableVisitor,
    visit_tables,
};
use crate::views::AuditRow;

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
    let audit_since = store.audit_cutoff();
    let outcome = if let Some(writer) = store.sqlite_writer() {
        tokio::task::spawn_blocking(move || {
            let result = writer.apply(checkpoints, &batch, &mut owned, audit_since);
            (owned, result)
        })
        .await
    } else if let Some(writer) = store.postgres_writer() {
        tokio::spawn(async move {
            let result = writer
                .apply(checkpoints, &batch, &mut owned, audit_since)
                .await;
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

/// [`Family`] of the groups of each table whose rows must be loaded from the store.
pub(crate) struct MissingGroups;
impl Family for MissingGroups {
    /// The groups as TEXT, sorted.
    type Of<T: TableProjection> = Vec<String>;
}

/// Groups whose rows must be loaded from the store, per table.
#[derive(Debug, Default)]
pub(crate) struct Missing {
    pub(crate) groups: PerTable<MissingGroups>,
}

impl Missing {
    /// Whether every row the batch needs was at hand.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        struct Empty<'a>(&'a Missing, bool);
        impl TableVisitor for Empty<'_> {
            type Error = std::convert::Infallible;
            fn visit<T: Registered>(&mut self) -> Result<(), Self::Error> {
                self.1 &= T::of(&self.0.groups).is_empty();
                Ok(())
            }
        }
        let mut empty = Empty(self, true);
        let Ok(()) = visit_tables(&mut empty);
        empty.1
    }
}

/// Plans `batch` and seeds the fold from `cache`. `None` when the batch moves no checkpoint
/// (nothing decoded, or everything already applied) and has no held-back rows to settle.
/// Events recorded before `audit_since` get no audit row (the store's retention, see
/// `retention`).
pub(crate) fn prepare(
    checkpoints: Checkpoints,
    batch: &DecodedBatch,
    cache: &mut RowCache,
    audit_since: Option<Timestamp>,
) -> Option<Prepared> {
    let next = batch
        .end()
        .map_or(checkpoints, |end| checkpoints.advanced_to(end));
    if next == checkpoints && !cache.must_settle() {
        return None;
    }
    let mut fold = Fold::new(checkpoints).keeping_audit_since(audit_since);
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
    if cache.writes_behind() {
        cache.absorb(changes, &plan);
        if cache.must_settle() {
            cache.settle(&mut store)?;
        }
    } else {
        encode_changes(&changes, &mut store)?;
        cache.absorb(changes, &plan);
    }
    let stored = cache.stored_with(next);
    cache.trim();
    Ok(Applied { next, stored })
}

/// Every changed row of a folded batch, table by table.
fn encode_changes(
    changes: &BatchChanges,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    struct Encode<'a, S>(&'a BatchChanges, &'a mut S);
    impl<S: FnMut(RowWrite) -> Result<(), ReadError>> TableVisitor for Encode<'_, S> {
        type Error = ReadError;
        fn visit<T: Registered>(&mut self) -> Result<(), ReadError> {
            let changes: &Changes<T> = T::of(&self.0.tables);
            let upserts = changes.upserts.iter().map(|(key, row)| (key, row));
            encode_table::<T>(upserts, changes.deletes.iter(), self.1)
        }
    }
    visit_tables(&mut Encode(changes, store))
}

/// Encodes held-back rows as what the cache holds for each: an upsert of its row, or a
/// delete for a known absence (`None`). Into a table the store holds no row of (`fresh`), rows
/// are inserts and there is nothing to delete.
pub(crate) fn encode_held<T: TableProjection>(
    fresh: bool,
    rows: Vec<(&T::Key, Option<&T::Row>)>,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let mut upserts = Vec::with_capacity(rows.len());
    let mut deletes = Vec::new();
    for (key, row) in rows {
        match row {
            Some(row) => upserts.push((key, row)),
            None => deletes.push(key),
        }
    }
    if fresh {
        let inserts = upserts
            .into_iter()
            .map(|(key, row)| T::cells(key, row).map(owned));
        return hand_over(inserts, |rows| RowWrite::Inserts(T::WRITE, rows), store);
    }
    encode_table::<T>(upserts.into_iter(), deletes.into_iter(), store)
}

/// Changed rows of one table, as upserts and deletes of [`ROWS_PER_WRITE`] rows each.
fn encode_table<'r, T: TableProjection>(
    upserts: impl Iterator<Item = (&'r T::Key, &'r T::Row)>,
    deletes: impl Iterator<Item = &'r T::Key>,
    store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    hand_over(
        upserts.map(|(key, row)| T::cells(key, row).map(owned)),
        |rows| RowWrite::Upserts(T::WRITE, rows),
        store,
    )?;
    hand_over(
        deletes.map(|key| Ok(owned(T::key_cells(key)))),
        |rows| RowWrite::Deletes(T::WRITE, rows),
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

pub(crate) const CHECKPOINT_TABLE: TableWrite = TableWrite {
    table: "rm_checkpoints",
    columns: &[
        Column::key("projection"),
        Column::updated("position", Kind::Int),
    ],
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
    use tessera_event_schemas::Hash32;
    use tessera_event_schemas::primitives::Timestamp;
    use uuid::Uuid;

    use super::*;
    use crate::store::Dialect;
    use crate::tables::{ApiKeys, SigningKeys, Tenants};
    use crate::views::ApiKeyView;

    #[test]
    fn every_row_encoding_fills_every_column() {
        let id = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00aa);
        let checkpoint = checkpoint_rows(Checkpoints::default());
        assert_eq!(checkpoint.len(), Projection::ALL.len());
        assert_eq!(checkpoint[0].len(), CHECKPOINT_TABLE.columns.len());
        let key = ApiKeyView {
            key_id: id,
            tenant_id: id,
            secret_hash: Hash32::default(),
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
            ApiKeys::cells(&id, &key).unwrap().len(),
            ApiKeys::WRITE.columns.len()
        );
        assert_eq!(ApiKeys::key_cells(&id).len(), ApiKeys::WRITE.key().count());
        assert_eq!(Tenants::key_cells(&id).len(), Tenants::WRITE.key().count());
        assert_eq!(
            SigningKeys::key_cells(&(id, "k".into())).len(),
            SigningKeys::WRITE.key().count()
        );
    }

    #[test]
    fn deletes_match_every_key_column() {
        assert_eq!(
            SigningKeys::WRITE.delete(Dialect::Postgres),
            "DELETE FROM rm_signing_keys WHERE tenant_id = $1 AND kid = $2"
        );
        assert_eq!(
            Tenants::WRITE.delete(Dialect::Sqlite),
            "DELETE FROM rm_tenants WHERE id = ?"
        );
    }

    #[test]
    fn statements_are_those_the_tables_always_had() {
        assert_eq!(
            Tenants::WRITE.upsert(Dialect::Sqlite, 1),
            "INSERT INTO rm_tenants (id, slug, status, suspended, created_at, updated_at, \
             stream_version, doc) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET \
             status = excluded.status, suspended = excluded.suspended, \
             updated_at = excluded.updated_at, stream_version = excluded.stream_version, \
             doc = excluded.doc"
        );
        assert_eq!(
            ApiKeys::WRITE.upsert(Dialect::Postgres, 1),
            "INSERT INTO rm_api_keys (key_id, tenant_id, secret_hash, name, prefix, scopes, \
             product, created_by, created_at, expires_at, revoked_at, use_count, last_used_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) ON CONFLICT (key_id) DO UPDATE \
             SET name = excluded.name, prefix = excluded.prefix, scopes = excluded.scopes, \
             product = excluded.product, created_by = excluded.created_by, \
             expires_at = excluded.expires_at, revoked_at = excluded.revoked_at, \
             use_count = excluded.use_count, last_used_at = excluded.last_used_at"
        );
        assert_eq!(
            SigningKeys::WRITE.upsert(Dialect::Sqlite, 1),
            "INSERT INTO rm_signing_keys (tenant_id, kid, alg, status, created_at, retired_at, \
             public_jwk) VALUES (?,?,?,?,?,?,?) ON CONFLICT (tenant_id, kid) DO UPDATE SET \
             alg = excluded.alg, status = excluded.status, created_at = excluded.created_at, \
             retired_at = excluded.retired_at, public_jwk = excluded.public_jwk"
        );
        assert_eq!(
            CHECKPOINT_TABLE.upsert(Dialect::Postgres, 2),
            "INSERT INTO rm_checkpoints (projection, position) VALUES ($1,$2),($3,$4) \
             ON CONFLICT (projection) DO UPDATE SET position = excluded.position"
        );
    }
}
