//! The row cache: read-model rows as the store holds them after the last commit (or, writing
//! behind, as it will once they are written), per registered table and group, so that a batch
//! loads only the rows it has not seen.
//!
//! Kept by whoever applies batches (the live writer, a rebuild). In a catch-up or rebuild most
//! touched rows were touched by a recent batch, and loading them again (a query and a JSON
//! parse per row) was the largest cost of a batch. Correct only while this applier is the
//! store's single writer, which the runtime and `rebuild` both require. Entries are taken out
//! while a batch runs and put back once it is folded (the SQLite writer does that while its
//! transaction is still open); a failed batch clears everything, so the cache never keeps the
//! state of a batch that did not commit.
//!
//! A rebuild's cache also writes behind ([`RowCache::write_behind`]): the table rows a batch
//! changes stay here, unwritten, until a batch settles them, and the checkpoint stored for each
//! table stays at the last settlement. Every tenant of a log in rounds changes in every batch,
//! so a rebuild wrote each table row once per batch; now it writes it about once. Audit rows
//! are never held back.

use std::convert::Infallible;

// foldhash, not SipHash: see `fold`.
use foldhash::{HashMap, HashSet};

use crate::error::ReadError;
use crate::fold::{BatchChanges, Changes, ChangesOf, Fold, LoadPlan};
use crate::tables::{
    Checkpoints, Family, PerTable, Projection, Registered, TableProjection, TableVisitor,
    visit_tables,
};
use crate::write::{self, Missing, RowWrite};

/// Entries per table beyond which the cache starts over, bounding its memory.
const CACHE_LIMIT: usize = 100_000;

/// The rows of one group as the store holds them: none, one (the only kind of group of a table
/// keyed by its group), or several (a tenant's signing keys). Only a group of several rows
/// allocates.
#[derive(Debug)]
enum GroupRows<K, R> {
    Empty,
    One((K, R)),
    Many(Vec<(K, R)>),
}

impl<K: PartialEq, R> GroupRows<K, R> {
    fn push(&mut self, key: K, row: R) {
        *self = match std::mem::replace(self, GroupRows::Empty) {
            GroupRows::Empty => GroupRows::One((key, row)),
            GroupRows::One(first) => GroupRows::Many(vec![first, (key, row)]),
            GroupRows::Many(mut rows) => {
                rows.push((key, row));
                GroupRows::Many(rows)
            }
        };
    }

    fn drain(self, mut each: impl FnMut(K, R)) {
        match self {
            GroupRows::Empty => {}
            GroupRows::One((key, row)) => each(key, row),
            GroupRows::Many(rows) => rows.into_iter().for_each(|(key, row)| each(key, row)),
        }
    }

    /// The row of `key`, if the group holds one.
    fn find(&self, key: &K) -> Option<&R> {
        match self {
            GroupRows::Empty => None,
            GroupRows::One((k, row)) => (k == key).then_some(row),
            GroupRows::Many(rows) => rows.iter().find(|(k, _)| k == key).map(|(_, row)| row),
        }
    }
}

/// One table's part of the cache.
#[derive(Debug)]
pub(crate) struct TableCache<T: TableProjection> {
    /// Every row of each group the cache knows: a group present with no rows has none.
    groups: HashMap<T::Group, GroupRows<T::Key, T::Row>>,
    /// The cache holds every row of the table, so a group it lacks has no row. True from an
    /// empty table (checkpoint 0) until the cache first lets go of anything; it saves a
    /// rebuild from asking the empty store about every new key.
    complete: bool,
    /// Write-behind: keys whose cached row (or cached absence) is newer than the store's.
    held: HashSet<T::Key>,
    /// Write-behind: every row this table writes is new to the store, so its rows go as
    /// [`RowWrite::Inserts`] and there is nothing to delete. A rebuild starts with every table
    /// so (its store is empty); a table leaves when rows are first settled, since a later
    /// settlement may rewrite them.
    inserts_only: bool,
}

impl<T: TableProjection> Default for TableCache<T> {
    fn default() -> Self {
        Self {
            groups: HashMap::default(),
            complete: false,
            held: HashSet::default(),
            inserts_only: false,
        }
    }
}

impl<T: TableProjection> TableCache<T> {
    /// Takes a folded batch's rows of this table. Every group the batch planned was loaded
    /// whole (from here, from the store, or known to be empty), so the cache now knows it.
    fn absorb(&mut self, changes: Changes<T>, planned: &HashSet<T::Group>, behind: bool) {
        if behind {
            self.held.extend(changes.written_keys().cloned());
        }
        for group in planned {
            self.groups.insert(*group, GroupRows::Empty);
        }
        for (key, row) in changes.upserts.into_iter().chain(changes.unchanged) {
            if let Some(rows) = self.groups.get_mut(&T::group_of(&key)) {
                rows.push(key, row);
            }
        }
    }

    /// Seeds `fold` with every planned group the cache holds, and returns the groups it cannot
    /// answer for, sorted (as TEXT). Seeded entries leave the cache until the batch is folded.
    fn seed(&mut self, planned: &HashSet<T::Group>, fold: &mut Fold) -> Vec<String>
    where
        T: Registered,
    {
        let mut missing = Vec::new();
        for group in planned {
            match self.groups.remove(group) {
                Some(rows) => rows.drain(|key, row| fold.seed::<T>(key, row)),
                None if self.complete => {}
                None => missing.push(group.to_string()),
            }
        }
        missing.sort();
        missing
    }

    /// What the cache holds for a held-back `key`: its row, or `None` for a known absence.
    /// `Err` if its group left the cache, which a held-back key's never does.
    fn held_row(&self, key: &T::Key) -> Result<Option<&T::Row>, ReadError> {
        match self.groups.get(&T::group_of(key)) {
            Some(rows) => Ok(rows.find(key)),
            None => Err(ReadError::Unavailable(
                "a held-back read-model row left the row cache before it was written".into(),
            )),
        }
    }
}

/// [`Family`] of each table's part of the cache.
pub(crate) struct Cached;
impl Family for Cached {
    type Of<T: TableProjection> = TableCache<T>;
}

/// The row cache; see the module doc.
#[derive(Debug)]
pub(crate) struct RowCache {
    tables: PerTable<Cached>,
    /// Write-behind: what is held back. `None` writes every batch's rows with the batch.
    behind: Option<WriteBehind>,
    /// Groups per table beyond which the cache starts over ([`CACHE_LIMIT`]).
    limit: usize,
}

/// A write-behind cache's state besides the held-back keys (which each table keeps).
#[derive(Debug, Default)]
struct WriteBehind {
    /// The checkpoints stored with the tables' rows: how far the store's rows go.
    stored: Checkpoints,
    /// Whether the next batch writes everything held back.
    settle: bool,
    /// Whether every audit row this cache's batches write is new to the store: the audit
    /// trail started empty, and each batch writes positions past the last.
    audit_rows_are_new: bool,
}

impl Default for RowCache {
    fn default() -> Self {
        Self {
            tables: PerTable::default(),
            behind: None,
            limit: CACHE_LIMIT,
        }
    }
}

/// Runs `op` on every table's part of `cache`.
fn each_table<O: CacheOp>(cache: &mut RowCache, op: &mut O) -> Result<(), O::Error> {
    struct Visit<'a, O> {
        tables: &'a mut PerTable<Cached>,
        op: &'a mut O,
    }
    impl<O: CacheOp> TableVisitor for Visit<'_, O> {
        type Error = O::Error;
        fn visit<T: Registered>(&mut self) -> Result<(), O::Error> {
            self.op.on(T::of_mut(self.tables))
        }
    }
    visit_tables(&mut Visit {
        tables: &mut cache.tables,
        op,
    })
}

/// Something done to each table's part of the cache ([`each_table`]).
trait CacheOp {
    type Error;
    fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), Self::Error>;
}

/// Sets each table's part of a new cache up for a store at `checkpoints`: a projection still at
/// 0 has written no row (rows are only ever written together with a checkpoint past 0), so its
/// table is known empty, and for a write-behind cache every row it writes is new.
struct Start {
    checkpoints: Checkpoints,
    write_behind: bool,
}

impl CacheOp for Start {
    type Error = Infallible;
    fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), Infallible> {
        let empty = self.checkpoints.get(T::PROJECTION) == 0;
        table.complete = empty;
        table.inserts_only = self.write_behind && empty;
        Ok(())
    }
}

/// Whether any table holds rows back, and whether any has outgrown `limit` groups.
struct Measure {
    limit: usize,
    holds_back: bool,
    over_limit: bool,
}

impl CacheOp for Measure {
    type Error = Infallible;
    fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), Infallible> {
        self.holds_back |= !table.held.is_empty();
        self.over_limit |= table.groups.len() > self.limit;
        Ok(())
    }
}

/// Forgets a table's rows; with `only_over`, only those of a table past that many groups.
struct Forget {
    only_over: Option<usize>,
}

impl CacheOp for Forget {
    type Error = Infallible;
    fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), Infallible> {
        match self.only_over {
            None => *table = TableCache::default(),
            Some(limit) if table.groups.len() > limit => {
                table.groups.clear();
                table.complete = false;
            }
            Some(_) => {}
        }
        Ok(())
    }
}

impl RowCache {
    /// A cache for a store at `checkpoints`: a projection still at 0 has written no row (rows
    /// are only ever written together with a checkpoint past 0), so its table is known empty.
    pub(crate) fn new(checkpoints: Checkpoints) -> Self {
        let mut cache = Self::default();
        let Ok(()) = each_table(
            &mut cache,
            &mut Start {
                checkpoints,
                write_behind: false,
            },
        );
        cache
    }

    /// A write-behind cache (see the module doc) for a store at `checkpoints`: for rebuilds,
    /// which settle it once the log is folded ([`RowCache::settle_with_next_batch`]).
    pub(crate) fn write_behind(checkpoints: Checkpoints) -> Self {
        let mut cache = Self::default();
        let Ok(()) = each_table(
            &mut cache,
            &mut Start {
                checkpoints,
                write_behind: true,
            },
        );
        cache.behind = Some(WriteBehind {
            stored: checkpoints,
            settle: false,
            // As for the tables: a projection at 0 has written no row.
            audit_rows_are_new: checkpoints.get(Projection::Audit) == 0,
        });
        cache
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
            .is_some_and(|behind| behind.audit_rows_are_new)
    }

    /// Whether this cache writes behind.
    pub(crate) fn writes_behind(&self) -> bool {
        self.behind.is_some()
    }

    /// Whether rows are held back that the store does not have.
    pub(crate) fn holds_back(&mut self) -> bool {
        self.measure().holds_back
    }

    /// Whether the next batch must write what is held back: it was asked to, or the cache
    /// has grown past its bound and may only let go of rows the store has.
    pub(crate) fn must_settle(&mut self) -> bool {
        let Some(asked) = self.behind.as_ref().map(|behind| behind.settle) else {
            return false;
        };
        let measure = self.measure();
        measure.holds_back && (asked || measure.over_limit)
    }

    fn measure(&mut self) -> Measure {
        let mut measure = Measure {
            limit: self.limit,
            holds_back: false,
            over_limit: false,
        };
        let Ok(()) = each_table(self, &mut measure);
        measure
    }

    /// Forgets everything, held-back rows included: after a failed batch the caller reads
    /// the stored checkpoints again, which never count a row that was not written.
    pub(crate) fn clear(&mut self) {
        let Ok(()) = each_table(self, &mut Forget { only_over: None });
        if let Some(behind) = &mut self.behind {
            *behind = WriteBehind::default();
        }
    }

    /// Seeds `fold` with every planned row the cache holds, and returns the groups it cannot
    /// answer for. Seeded entries leave the cache until the batch is folded (`absorb`).
    pub(crate) fn seed(&mut self, plan: &LoadPlan, fold: &mut Fold) -> Missing {
        struct Seed<'a> {
            plan: &'a LoadPlan,
            fold: &'a mut Fold,
            missing: Missing,
        }
        impl CacheOp for Seed<'_> {
            type Error = Infallible;
            fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), Infallible> {
                *T::of_mut(&mut self.missing.groups) =
                    table.seed(T::of(&self.plan.groups), self.fold);
                Ok(())
            }
        }
        let mut seed = Seed {
            plan,
            fold,
            missing: Missing::default(),
        };
        let Ok(()) = each_table(self, &mut seed);
        seed.missing
    }

    /// Takes a folded batch's rows; a write-behind cache also notes the changed ones as held
    /// back.
    pub(crate) fn absorb(&mut self, changes: BatchChanges, plan: &LoadPlan) {
        struct Absorb<'a> {
            changes: PerTable<ChangesOf>,
            plan: &'a LoadPlan,
            behind: bool,
        }
        impl CacheOp for Absorb<'_> {
            type Error = Infallible;
            fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), Infallible> {
                let changes = std::mem::take(T::of_mut(&mut self.changes));
                table.absorb(changes, T::of(&self.plan.groups), self.behind);
                Ok(())
            }
        }
        let behind = self.behind.is_some();
        let Ok(()) = each_table(
            self,
            &mut Absorb {
                changes: changes.tables,
                plan,
                behind,
            },
        );
    }

    /// Starts a table over when it has outgrown [`CACHE_LIMIT`]. Never while rows are held
    /// back: [`RowCache::must_settle`] makes the batch write them first.
    pub(crate) fn trim(&mut self) {
        if self.holds_back() {
            return;
        }
        let limit = self.limit;
        let Ok(()) = each_table(
            self,
            &mut Forget {
                only_over: Some(limit),
            },
        );
    }

    /// Encodes every held-back row, in key order, as what the cache holds for it: its row,
    /// or a delete where it holds an absence. Nothing is held back afterwards.
    pub(crate) fn settle(
        &mut self,
        store: &mut impl FnMut(RowWrite) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        struct Settle<'a, S>(&'a mut S);
        impl<S: FnMut(RowWrite) -> Result<(), ReadError>> CacheOp for Settle<'_, S> {
            type Error = ReadError;
            fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), ReadError> {
                let mut keys: Vec<T::Key> = std::mem::take(&mut table.held).into_iter().collect();
                keys.sort_unstable();
                // Whether the table is still empty in the store; it is not once this settles.
                let fresh = std::mem::replace(&mut table.inserts_only, false);
                let mut rows = Vec::with_capacity(keys.len());
                for key in &keys {
                    rows.push((key, table.held_row(key)?));
                }
                write::encode_held::<T>(fresh, rows, self.0)
            }
        }
        let Some(behind) = &mut self.behind else {
            return Ok(());
        };
        behind.settle = false;
        each_table(self, &mut Settle(store))
    }

    /// The checkpoints to store with a batch that folded to `next`: `next`, except that a
    /// table with rows held back stays at the checkpoint stored with its rows.
    pub(crate) fn stored_with(&mut self, next: Checkpoints) -> Checkpoints {
        struct Stored {
            before: Checkpoints,
            stored: Checkpoints,
        }
        impl CacheOp for Stored {
            type Error = Infallible;
            fn on<T: Registered>(&mut self, table: &mut TableCache<T>) -> Result<(), Infallible> {
                if !table.held.is_empty() {
                    self.stored
                        .set(T::PROJECTION, self.before.get(T::PROJECTION));
                }
                Ok(())
            }
        }
        let Some(before) = self.behind.as_ref().map(|behind| behind.stored) else {
            return next;
        };
        let mut stored = Stored {
            before,
            stored: next,
        };
        let Ok(()) = each_table(self, &mut stored);
        if let Some(behind) = &mut self.behind {
            behind.stored = stored.stored;
        }
        stored.stored
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::{RecordedEvent, streams};
    use uuid::Uuid;

    use super::*;
    use crate::tables::testing::{envelope, sample};
    use crate::tables::{SigningKeys, Tenants};
    use crate::write::{Applied, DecodedBatch, fold_and_encode, prepare};

    /// A `tenant.created` for each of `tenants`, at positions from `first` on.
    fn creations(tenants: &[Uuid], first: u64) -> DecodedBatch {
        let created = sample("tenant.created");
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
        let prepared = prepare(checkpoints, batch, cache, None)?;
        assert!(prepared.missing.is_empty(), "a rebuild loads nothing");
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
        let tenants = Tenants::of(&cache.tables);
        assert!(
            tenants.groups.is_empty(),
            "the cache started over once written"
        );
        assert!(SigningKeys::of(&cache.tables).groups.is_empty());
        assert!(!tenants.complete);
    }

    #[test]
    fn a_group_keeps_every_row_pushed_and_finds_each_by_key() {
        let mut rows = GroupRows::Empty;
        assert_eq!(rows.find(&1), None);
        rows.push(1, "one");
        assert_eq!(rows.find(&1), Some(&"one"));
        rows.push(2, "two");
        assert_eq!((rows.find(&1), rows.find(&2)), (Some(&"one"), Some(&"two")));
        let mut drained = Vec::new();
        rows.drain(|key, row| drained.push((key, row)));
        assert_eq!(drained, [(1, "one"), (2, "two")]);
    }
}
