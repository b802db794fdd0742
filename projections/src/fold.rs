//! The in-memory batch fold: every registered table's reducer, and the audit trail's rows, over
//! a batch of events, writing each changed row once.
//!
//! Everything here is deterministic and free of I/O, so it is tested without a database and a
//! rebuild always reproduces what the live projector wrote. A writer first asks the fold which
//! groups of rows the batch touches ([`Fold::plan`]), loads those rows (those its row cache
//! lacks) and seeds them in ([`Fold::seed`]), folds every event in memory ([`Fold::apply`])
//! and then writes each changed row once ([`Fold::into_changes`]). That coalescing is what
//! makes catch-up fast.

// foldhash, not SipHash: a batch hashes every key it touches several times, and the keys come
// from our own log, not from a client.
use std::collections::hash_map::Entry;
use std::convert::Infallible;

use foldhash::{HashMap, HashMapExt, HashSet};
use tessera_event_schemas::events::Event;
use tessera_event_schemas::{Envelope, Timestamp};

use crate::audit;
use crate::tables::{
    Checkpoints, Family, PerTable, Projection, Registered, TableProjection, TableVisitor, Tenants,
    visit_tables,
};
use crate::views::AuditRow;

/// A row as loaded from the store and as the batch has left it.
#[derive(Debug)]
struct Slot<R> {
    row: Option<R>,
    /// Whether the store held the row before this batch (a `None` now means delete).
    existed: bool,
    /// Whether any event of the batch went through the reducer for this row.
    dirty: bool,
}

/// One table's rows in a batch: those seeded from the store (or the row cache) and those the
/// batch's events reduced.
#[derive(Debug)]
pub(crate) struct Table<T: TableProjection> {
    slots: HashMap<T::Key, Slot<T::Row>>,
}

impl<T: TableProjection> Default for Table<T> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
        }
    }
}

impl<T: TableProjection> Table<T> {
    fn seed(&mut self, key: T::Key, row: T::Row) {
        self.slots.insert(
            key,
            Slot {
                row: Some(row),
                existed: true,
                dirty: false,
            },
        );
    }

    /// The row of `key` as this batch has it so far.
    pub(crate) fn row(&self, key: &T::Key) -> Option<&T::Row> {
        self.slots.get(key).and_then(|slot| slot.row.as_ref())
    }

    fn update(
        &mut self,
        key: T::Key,
        reduce: impl FnOnce(&T::Key, Option<T::Row>) -> Option<T::Row>,
    ) {
        // A key that was not seeded is, by construction, not in the store (every key `apply`
        // touches was listed by `plan` and loaded).
        match self.slots.entry(key) {
            Entry::Occupied(mut entry) => {
                let row = entry.get_mut().row.take();
                let row = reduce(entry.key(), row);
                let slot = entry.get_mut();
                slot.row = row;
                slot.dirty = true;
            }
            Entry::Vacant(entry) => {
                let row = reduce(entry.key(), None);
                entry.insert(Slot {
                    row,
                    existed: false,
                    dirty: true,
                });
            }
        }
    }

    fn into_changes(self) -> Changes<T> {
        let mut changes = Changes {
            upserts: Vec::with_capacity(self.slots.len()),
            deletes: Vec::new(),
            unchanged: Vec::new(),
        };
        for (key, slot) in self.slots {
            match (slot.row, slot.dirty, slot.existed) {
                (Some(row), true, _) => changes.upserts.push((key, row)),
                (Some(row), false, _) => changes.unchanged.push((key, row)),
                (None, true, true) => changes.deletes.push(key),
                // No row before or after.
                (None, _, _) => {}
            }
        }
        // Writing in key order keeps the output deterministic and B-tree inserts local.
        changes
            .upserts
            .sort_by(|a: &(T::Key, T::Row), b| a.0.cmp(&b.0));
        changes.deletes.sort();
        changes
    }
}

/// The rows of one table a batch touched. Only `upserts` and `deletes` are written (each row
/// once, whatever the number of events); `unchanged` tells a row cache what the store holds
/// without asking it.
#[derive(Debug)]
pub(crate) struct Changes<T: TableProjection> {
    pub(crate) upserts: Vec<(T::Key, T::Row)>,
    pub(crate) deletes: Vec<T::Key>,
    /// Rows loaded for the batch that no event changed.
    pub(crate) unchanged: Vec<(T::Key, T::Row)>,
}

impl<T: TableProjection> Default for Changes<T> {
    fn default() -> Self {
        Self {
            upserts: Vec::new(),
            deletes: Vec::new(),
            unchanged: Vec::new(),
        }
    }
}

impl<T: TableProjection> Changes<T> {
    /// Whether the batch writes nothing to this table.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// The keys of the rows the batch writes: upserted or deleted.
    pub(crate) fn written_keys(&self) -> impl Iterator<Item = &T::Key> {
        self.upserts.iter().map(|(key, _)| key).chain(&self.deletes)
    }
}

/// [`Family`] of each table's rows in a batch's fold.
pub(crate) struct Slots;
impl Family for Slots {
    type Of<T: TableProjection> = Table<T>;
}

/// [`Family`] of each table's groups a batch must have before it folds.
pub(crate) struct Groups;
impl Family for Groups {
    type Of<T: TableProjection> = HashSet<T::Group>;
}

/// [`Family`] of each table's changes in a batch.
pub(crate) struct ChangesOf;
impl Family for ChangesOf {
    type Of<T: TableProjection> = Changes<T>;
}

/// The groups of rows, per table, that a batch needs before it can be folded.
#[derive(Debug, Default)]
pub(crate) struct LoadPlan {
    pub(crate) groups: PerTable<Groups>,
}

/// One batch, folded in memory.
#[derive(Debug)]
pub(crate) struct Fold {
    checkpoints: Checkpoints,
    tables: PerTable<Slots>,
    audit: Vec<AuditRow>,
    /// Events recorded before this time get no audit row (the store's retention).
    audit_since: Option<Timestamp>,
}

/// Everything a batch changed.
#[derive(Debug)]
pub(crate) struct BatchChanges {
    pub(crate) tables: PerTable<ChangesOf>,
    /// New audit rows, in log order (audit rows are only ever inserted), from the last
    /// [`Fold::take_audit`] on.
    pub(crate) audit: Vec<AuditRow>,
}

impl Fold {
    /// A fold that skips, per projection, events at or below that projection's checkpoint.
    pub(crate) fn new(checkpoints: Checkpoints) -> Self {
        Self {
            checkpoints,
            tables: PerTable::default(),
            audit: Vec::new(),
            audit_since: None,
        }
    }

    /// This fold, leaving out the audit rows of events recorded before `since`: rows the
    /// retention has expired are not brought back by a rebuild (see `retention`).
    pub(crate) fn keeping_audit_since(mut self, since: Option<Timestamp>) -> Self {
        self.audit_since = since;
        self
    }

    fn wants_audit_row(&self, envelope: &Envelope) -> bool {
        self.wants(Projection::Audit, envelope)
            && self
                .audit_since
                .is_none_or(|since| envelope.recorded_at >= since)
    }

    fn wants(&self, projection: Projection, envelope: &Envelope) -> bool {
        envelope.global_position > self.checkpoints.get(projection)
    }

    /// Adds the groups of rows this event will touch to `plan`.
    pub(crate) fn plan(&self, plan: &mut LoadPlan, envelope: &Envelope, event: &Event) {
        struct Plan<'a> {
            fold: &'a Fold,
            plan: &'a mut LoadPlan,
            envelope: &'a Envelope,
            event: &'a Event,
        }
        impl TableVisitor for Plan<'_> {
            type Error = Infallible;
            fn visit<T: Registered>(&mut self) -> Result<(), Infallible> {
                if self.fold.wants(T::PROJECTION, self.envelope) {
                    let groups = T::of_mut(&mut self.plan.groups);
                    T::groups(self.envelope, self.event, |group| {
                        groups.insert(group);
                    });
                }
                Ok(())
            }
        }
        let Ok(()) = visit_tables(&mut Plan {
            fold: self,
            plan: &mut *plan,
            envelope,
            event,
        });
        // The audit row of a tenant event names the tenant by its slug, which never changes
        // once the tenant exists: the stored row has it even when the tenant projection is
        // ahead of the audit one.
        if self.wants_audit_row(envelope) && audit::needs_tenant_slug(event) {
            Tenants::of_mut(&mut plan.groups).insert(envelope.tenant_id);
        }
    }

    /// Makes room for every row `plan` lists, so that seeding and folding a large batch does
    /// not grow (and move) the fold's tables step by step.
    pub(crate) fn reserve(&mut self, plan: &LoadPlan) {
        struct Reserve<'a>(&'a mut Fold, &'a LoadPlan);
        impl TableVisitor for Reserve<'_> {
            type Error = Infallible;
            fn visit<T: Registered>(&mut self) -> Result<(), Infallible> {
                let planned = T::of(&self.1.groups).len();
                T::of_mut(&mut self.0.tables)
                    .slots
                    .reserve(planned * T::ROWS_PER_GROUP);
                Ok(())
            }
        }
        let Ok(()) = visit_tables(&mut Reserve(self, plan));
    }

    /// Hands the fold a row as the store (or the row cache) holds it.
    pub(crate) fn seed<T: Registered>(&mut self, key: T::Key, row: T::Row) {
        T::of_mut(&mut self.tables).seed(key, row);
    }

    /// Folds one event into every projection that has not seen it yet.
    pub(crate) fn apply(&mut self, envelope: &Envelope, event: &Event) {
        struct Apply<'a> {
            fold: &'a mut Fold,
            envelope: &'a Envelope,
            event: &'a Event,
        }
        impl TableVisitor for Apply<'_> {
            type Error = Infallible;
            fn visit<T: Registered>(&mut self) -> Result<(), Infallible> {
                let (envelope, event) = (self.envelope, self.event);
                if self.fold.wants(T::PROJECTION, envelope) {
                    let table = T::of_mut(&mut self.fold.tables);
                    T::keys(envelope, event, |key| {
                        table.update(key, |key, row| T::reduce(row, key, envelope, event));
                    });
                }
                Ok(())
            }
        }
        let Ok(()) = visit_tables(&mut Apply {
            fold: &mut *self,
            envelope,
            event,
        });
        if self.wants_audit_row(envelope) {
            let slug = if audit::needs_tenant_slug(event) {
                Tenants::of(&self.tables)
                    .row(&envelope.tenant_id)
                    .map(|tenant| tenant.slug.as_str())
            } else {
                None
            };
            self.audit.push(audit::audit_row(envelope, event, slug));
        }
    }

    /// How many audit rows the fold holds (see [`Fold::take_audit`]).
    pub(crate) fn audit_len(&self) -> usize {
        self.audit.len()
    }

    /// Takes the audit rows folded so far, in log order, so that a writer can store them
    /// while the rest of a large batch folds; [`Fold::into_changes`] then holds only the rows
    /// folded after the last take.
    pub(crate) fn take_audit(&mut self) -> Vec<AuditRow> {
        std::mem::take(&mut self.audit)
    }

    pub(crate) fn into_changes(self) -> BatchChanges {
        struct Collect {
            tables: PerTable<Slots>,
            changes: PerTable<ChangesOf>,
        }
        impl TableVisitor for Collect {
            type Error = Infallible;
            fn visit<T: Registered>(&mut self) -> Result<(), Infallible> {
                let table = std::mem::take(T::of_mut(&mut self.tables));
                *T::of_mut(&mut self.changes) = table.into_changes();
                Ok(())
            }
        }
        let mut collect = Collect {
            tables: self.tables,
            changes: PerTable::default(),
        };
        let Ok(()) = visit_tables(&mut collect);
        BatchChanges {
            tables: collect.changes,
            audit: self.audit,
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::TenantStatus;
    use uuid::Uuid;

    use super::*;
    use crate::tables::testing::{TENANT, fold_tenant, sample, tenant_env};
    use crate::tables::{ApiKeys, SigningKeys};

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
        assert_eq!(Tenants::of(&plan.groups).len(), 1);
        assert_eq!(SigningKeys::of(&plan.groups).len(), 1);
        for (env, event) in envs.iter().zip(&events) {
            fold.apply(env, event);
        }
        let changes = fold.into_changes();
        let tenants = Tenants::of(&changes.tables);
        assert_eq!(tenants.upserts.len(), 1);
        assert_eq!(tenants.upserts[0].1.version, 4);
        assert!(tenants.upserts[0].1.suspended);
        assert_eq!(SigningKeys::of(&changes.tables).upserts.len(), 2);
        assert!(ApiKeys::of(&changes.tables).is_empty());
    }

    #[test]
    fn a_batch_continues_from_seeded_rows() {
        let created = fold_tenant(&[sample("tenant.created")]).unwrap();
        let mut fold = Fold::new(Checkpoints::default());
        fold.seed::<Tenants>(created.id, created);
        fold.apply(&tenant_env(2, 2_000), &sample("tenant.archived"));
        let changes = fold.into_changes();
        let (id, row) = &Tenants::of(&changes.tables).upserts[0];
        assert_eq!(*id, TENANT);
        assert_eq!(row.status, TenantStatus::Archived);
        assert_eq!(row.slug, "acme-corp");
    }

    #[test]
    fn a_projection_skips_events_at_or_below_its_own_checkpoint() {
        let mut checkpoints = Checkpoints::default();
        checkpoints.set(Projection::Tenants, 1);
        let mut fold = Fold::new(checkpoints);
        fold.apply(&tenant_env(1, 1_000), &sample("tenant.created"));
        let changes = fold.into_changes();
        assert!(Tenants::of(&changes.tables).is_empty());
        assert_eq!(SigningKeys::of(&changes.tables).upserts.len(), 1);
    }

    #[test]
    fn seeded_rows_no_event_touched_are_not_rewritten() {
        let mut fold = Fold::new(Checkpoints::default());
        let created = fold_tenant(&[sample("tenant.created")]).unwrap();
        fold.seed::<Tenants>(created.id, created);
        let changes = fold.into_changes();
        assert!(Tenants::of(&changes.tables).is_empty());
        assert_eq!(Tenants::of(&changes.tables).unchanged.len(), 1);
    }

    #[test]
    fn the_audit_row_of_a_tenant_event_names_the_tenant_by_its_slug() {
        // The tenant projection is ahead: only the audit trail folds, with the slug of the
        // seeded row.
        let mut checkpoints = Checkpoints::default();
        checkpoints.set(Projection::Tenants, 5);
        let mut fold = Fold::new(checkpoints);
        let mut plan = LoadPlan::default();
        let (env, event) = (tenant_env(2, 2_000), sample("tenant.suspended"));
        fold.plan(&mut plan, &env, &event);
        assert_eq!(
            Tenants::of(&plan.groups).iter().collect::<Vec<&Uuid>>(),
            [&TENANT]
        );
        let created = fold_tenant(&[sample("tenant.created")]).unwrap();
        fold.seed::<Tenants>(created.id, created);
        fold.apply(&env, &event);
        let audit = fold.take_audit();
        assert_eq!(audit[0].target_name.as_deref(), Some("acme-corp"));
        assert!(Tenants::of(&fold.into_changes().tables).is_empty());
    }
}
