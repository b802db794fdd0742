//! The read-model tables: one module per table, the [`TableProjection`] trait each implements,
//! and the registry that lists them ([`tables!`]).
//!
//! A table's module owns everything about it: which rows an event changes (its key), the pure
//! reducer, the columns and how a row becomes cells, the DDL, how a stored row decodes, and
//! the queries the API asks of it. The machinery that runs them (the batch fold, the row cache
//! and its write-behind, the checkpoints, the schema, the snapshot, both writers' loads) is
//! generic over the registry: it visits every registered table ([`visit_tables`]) and keeps one
//! value per table in a [`PerTable`], so a table cannot be left out of any of them. Each visit
//! is monomorphic: no `dyn`, no per-row or per-event dispatch.
//!
//! The audit trail (`rm_audit`, [`audit_trail`]) is a projection with a checkpoint of its own,
//! but not a [`TableProjection`]: its rows are inserted once per event and never loaded, cached
//! or updated, so the fold produces its rows directly and the writers insert (or `COPY`) them.
//!
//! Adding a table: a module here, named after its projection, with a unit struct implementing
//! [`TableProjection`], and one line in the `tables!` invocation below, which declares the
//! module. A piece of the trait left out, or a registry line without its module, does not
//! compile; a module without its registry line is not compiled at all, which a test below
//! catches, as it does cells that do not match the columns (and `schema`'s tests a DDL that
//! does not create them).

pub(crate) mod audit_trail;
#[cfg(test)]
pub(crate) mod testing;

use std::fmt::{Debug, Display};
use std::hash::Hash;

use tessera_event_schemas::Envelope;
use tessera_event_schemas::events::Event;

use crate::decode::Columns;
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, TableWrite};
use crate::store::Dialect;

/// One read-model table whose rows are folded from events: what it stores and how events
/// change it. Implemented by a unit struct per table, which names the table in generic code.
///
/// Rows are loaded, cached and seeded by *group*: the rows of one group are always known
/// together. For most tables a group is one key; a tenant's signing keys are one group, since
/// a tenant has few and one query by the key's prefix loads them all.
pub(crate) trait TableProjection: Debug + Sized + Send + Sync + 'static {
    /// The projection's row in `rm_checkpoints`, e.g. `tenants`.
    const NAME: &'static str;
    /// The table, its columns (in the order [`TableProjection::cells`] encodes them), key and
    /// columns that never change once written.
    const WRITE: &'static TableWrite;
    /// `SELECT <columns> FROM <table> WHERE <group column>`: the writers append `= ?` or
    /// `IN (...)` to load the groups a batch needs, and decode what it returns with
    /// [`TableProjection::from_row`].
    const SELECT: &'static str;
    /// How many rows a group usually holds: what the fold reserves per planned group.
    const ROWS_PER_GROUP: usize = 1;

    type Key: Clone + Eq + Hash + Ord + Debug + Send + Sync;
    type Row: Clone + Debug + Send + Sync;
    type Group: Copy + Eq + Hash + Ord + Display + Debug + Send + Sync;

    /// The table's `CREATE` statements.
    fn ddl(dialect: Dialect) -> TableDdl;

    /// Calls `each` with the key of every row `event` changes (for most events, none).
    fn keys(envelope: &Envelope, event: &Event, each: impl FnMut(Self::Key));

    /// Calls `each` with the group of every row `event` changes: what a batch must load before
    /// it folds. The same as [`TableProjection::keys`] mapped through
    /// [`TableProjection::group_of`]; a table whose keys allocate overrides it to spare that.
    fn groups(envelope: &Envelope, event: &Event, mut each: impl FnMut(Self::Group)) {
        Self::keys(envelope, event, |key| each(Self::group_of(&key)));
    }

    /// The group a row belongs to.
    fn group_of(key: &Self::Key) -> Self::Group;

    /// The row `key` as `event` leaves it, from the row as it was (`None`: there is none).
    /// Pure and infallible: history that was accepted once must always replay. `None` for a
    /// row that existed deletes it.
    fn reduce(
        row: Option<Self::Row>,
        key: &Self::Key,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<Self::Row>;

    /// A stored row, as [`TableProjection::SELECT`] returns it.
    fn from_row(row: &impl Columns) -> Result<(Self::Key, Self::Row), ReadError>;

    /// The row's values, one per column of [`TableProjection::WRITE`], in its order.
    fn cells<'a>(key: &'a Self::Key, row: &'a Self::Row) -> Result<Vec<Cell<'a>>, ReadError>;

    /// The key's values, one per key column, in their order (for a delete).
    fn key_cells(key: &Self::Key) -> Vec<Cell<'_>>;
}

/// A kind of value kept for every table: `Of<T>` is the value for table `T` (its fold slots,
/// its cached rows, the groups a batch must load, ...). [`PerTable`] holds one for each table.
pub(crate) trait Family {
    type Of<T: TableProjection>;
}

/// What every registered table has; implemented by [`tables!`].
pub(crate) trait Registered: TableProjection {
    /// The table's projection, which names its checkpoint.
    const PROJECTION: Projection;
    /// This table's value in `tables`.
    fn of<F: Family>(tables: &PerTable<F>) -> &F::Of<Self>;
    fn of_mut<F: Family>(tables: &mut PerTable<F>) -> &mut F::Of<Self>;
}

/// Work to do once per registered table ([`visit_tables`]).
pub(crate) trait TableVisitor {
    type Error;
    fn visit<T: Registered>(&mut self) -> Result<(), Self::Error>;
}

/// Lists the tables: each line is a module of this directory and the type in it that
/// implements [`TableProjection`], which also names its [`Projection`] variant. Generates the
/// module declarations, [`Projection`], [`PerTable`], [`Registered`] for each table and
/// [`visit_tables`], each covering every table by construction.
macro_rules! tables {
    ( $( $module:ident :: $table:ident ),* $(,)? ) => {
        $( pub(crate) mod $module; )*
        $( pub(crate) use $module::$table; )*

        /// The read models, each with its own checkpoint so that one can be rebuilt alone:
        /// every registered table, then the audit trail.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Projection {
            $( $table, )*
            /// `rm_audit`: one insert-only row per event.
            Audit,
        }

        impl Projection {
            /// How many projections there are.
            pub const COUNT: usize = [$( Projection::$table, )* Projection::Audit].len();

            pub const ALL: [Projection; Projection::COUNT] =
                [$( Projection::$table, )* Projection::Audit];

            /// The key of this projection's row in `rm_checkpoints`.
            pub fn name(self) -> &'static str {
                match self {
                    $( Projection::$table => <$table as TableProjection>::NAME, )*
                    Projection::Audit => audit_trail::NAME,
                }
            }

            /// The table that holds this projection's rows.
            pub(crate) fn table(self) -> &'static str {
                match self {
                    $( Projection::$table => <$table as TableProjection>::WRITE.table, )*
                    Projection::Audit => audit_trail::TABLE,
                }
            }

            /// The `CREATE` statements of this projection's table.
            pub(crate) fn ddl(self, dialect: Dialect) -> TableDdl {
                match self {
                    $( Projection::$table => <$table as TableProjection>::ddl(dialect), )*
                    Projection::Audit => audit_trail::ddl(dialect),
                }
            }
        }

        /// One value of family `F` per registered table.
        pub(crate) struct PerTable<F: Family> {
            $( $module: F::Of<$table>, )*
        }

        impl<F: Family> Default for PerTable<F>
        where
            $( F::Of<$table>: Default, )*
        {
            fn default() -> Self {
                Self { $( $module: Default::default(), )* }
            }
        }

        impl<F: Family> Debug for PerTable<F>
        where
            $( F::Of<$table>: Debug, )*
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("PerTable")
                    $( .field(stringify!($module), &self.$module) )*
                    .finish()
            }
        }

        $(
            impl Registered for $table {
                const PROJECTION: Projection = Projection::$table;

                fn of<F: Family>(tables: &PerTable<F>) -> &F::Of<Self> {
                    &tables.$module
                }

                fn of_mut<F: Family>(tables: &mut PerTable<F>) -> &mut F::Of<Self> {
                    &mut tables.$module
                }
            }
        )*

        /// Runs `visitor` for every registered table, in registry order, up to its first
        /// error.
        pub(crate) fn visit_tables<V: TableVisitor>(visitor: &mut V) -> Result<(), V::Error> {
            $( visitor.visit::<$table>()?; )*
            Ok(())
        }
    };
}

tables! {
    tenants::Tenants,
    signing_keys::SigningKeys,
    api_keys::ApiKeys,
    users::Users,
    mfa::Mfa,
    webauthn_policies::WebauthnPolicies,
    invitations::Invitations,
    emails::Emails,
    credentials::Credentials,
    vault_secrets::VaultSecrets,
}

/// The global position each projection has applied up to (inclusive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checkpoints([u64; Projection::COUNT]);

impl Checkpoints {
    pub fn get(&self, projection: Projection) -> u64 {
        self.0[projection as usize]
    }

    pub fn set(&mut self, projection: Projection, position: u64) {
        self.0[projection as usize] = position;
    }

    /// Where a subscription must resume so that no projection misses an event.
    pub fn min(&self) -> u64 {
        self.0.iter().copied().min().unwrap_or(0)
    }

    /// Every projection advanced to at least `position`.
    pub fn advanced_to(self, position: u64) -> Self {
        Self(self.0.map(|checkpoint| checkpoint.max(position)))
    }
}

impl Projection {
    pub fn parse(name: &str) -> Option<Self> {
        Projection::ALL.into_iter().find(|p| p.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::streams;

    use super::*;
    use crate::fold::{BatchChanges, Fold};
    use crate::tables::testing::{KEY, TENANT, USER, envelope};

    /// Every sample event, on the stream it belongs to, folded into every table.
    fn samples_folded() -> BatchChanges {
        let mut fold = Fold::new(Checkpoints::default());
        for (position, event) in (1..).zip(samples::current()) {
            let stream = match event.category() {
                "api_key" => streams::api_key(TENANT, KEY),
                "tenant" => streams::tenant(TENANT),
                "user" => streams::user(TENANT, USER),
                // The reset deletes a person's row: it goes to someone else's stream, so that
                // the row of USER stays to be checked.
                "mfa" if event.event_type() == "mfa.reset" => streams::mfa(TENANT, KEY),
                "mfa" => streams::mfa(TENANT, USER),
                "webauthn_policy" => streams::webauthn_policy(TENANT),
                "invitation" => streams::invitation(TENANT, KEY),
                "email" => streams::email(TENANT, KEY),
                // The removal deletes a connection's row: another connection's, so that the
                // row of `notion` stays to be checked; an access has a stream of its own.
                "credential" if event.event_type() == "credential.removed" => {
                    streams::credential(TENANT, "github")
                }
                "credential" if event.event_type() == "credential.accessed" => {
                    streams::credential_access(TENANT, "notion")
                }
                "credential" => streams::credential(TENANT, "notion"),
                _ => streams::audit(TENANT),
            };
            fold.apply(&envelope(stream, position, position, 1_000), &event);
        }
        fold.into_changes()
    }

    /// A table whose cells, key cells, columns and key columns disagree fails here, whatever
    /// the table: each has rows once the samples are folded.
    #[test]
    fn every_table_encodes_one_cell_per_column_for_the_rows_it_folds() {
        struct Check(BatchChanges);
        impl TableVisitor for Check {
            type Error = ReadError;
            fn visit<T: Registered>(&mut self) -> Result<(), ReadError> {
                let upserts = &T::of(&self.0.tables).upserts;
                assert!(!upserts.is_empty(), "{}: no row", T::NAME);
                for (key, row) in upserts {
                    assert_eq!(T::cells(key, row)?.len(), T::WRITE.columns.len());
                    assert_eq!(T::key_cells(key).len(), T::WRITE.key().count());
                }
                assert_eq!(T::PROJECTION.name(), T::NAME);
                assert_eq!(T::PROJECTION.table(), T::WRITE.table);
                Ok(())
            }
        }
        visit_tables(&mut Check(samples_folded())).unwrap();
    }

    #[test]
    fn reservations_touch_no_read_model() {
        struct NoKeys(Envelope, Event);
        impl TableVisitor for NoKeys {
            type Error = String;
            fn visit<T: Registered>(&mut self) -> Result<(), String> {
                let mut touched = false;
                T::keys(&self.0, &self.1, |_| touched = true);
                T::groups(&self.0, &self.1, |_| touched = true);
                match touched {
                    true => Err(format!("{} {}", T::NAME, self.1.event_type())),
                    false => Ok(()),
                }
            }
        }
        for event in samples::current() {
            if event.category() == "reservation" {
                let env = envelope(streams::reservation("slug", "acme"), 1, 1, 1);
                visit_tables(&mut NoKeys(env, event)).unwrap();
            }
        }
    }

    /// A table module left out of `tables!` would not even be compiled; this names it.
    #[test]
    fn every_module_of_this_directory_is_a_registered_table() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tables");
        let mut modules: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|name| name.strip_suffix(".rs").map(str::to_owned))
            .filter(|name| !["mod", "testing", "audit_trail"].contains(&name.as_str()))
            .collect();
        modules.sort();
        let mut registered: Vec<&str> = Projection::ALL
            .into_iter()
            .filter(|p| *p != Projection::Audit)
            .map(Projection::name)
            .collect();
        registered.sort();
        assert_eq!(
            modules, registered,
            "each table module is named after its projection"
        );
    }

    #[test]
    fn checkpoints_resume_from_the_slowest_projection() {
        let mut checkpoints = Checkpoints::default();
        for (projection, position) in Projection::ALL
            .into_iter()
            .zip([7, 3, 9, 6, 4, 8, 6, 5, 6, 7, 8])
        {
            checkpoints.set(projection, position);
        }
        assert_eq!(checkpoints.min(), 3);
        let advanced = checkpoints.advanced_to(8);
        let positions: Vec<u64> = Projection::ALL.map(|p| advanced.get(p)).to_vec();
        assert_eq!(positions, vec![8, 8, 9, 8, 8, 8, 8, 8, 8, 8, 8]);
        for projection in Projection::ALL {
            assert_eq!(Projection::parse(projection.name()), Some(projection));
        }
        assert_eq!(
            Projection::ALL.map(Projection::name),
            [
                "tenants",
                "signing_keys",
                "api_keys",
                "users",
                "mfa",
                "webauthn_policies",
                "invitations",
                "emails",
                "credentials",
                "vault_secrets",
                "audit"
            ]
        );
        assert_eq!(
            Projection::ALL.map(Projection::table),
            [
                "rm_tenants",
                "rm_signing_keys",
                "rm_api_keys",
                "rm_users",
                "rm_mfa",
                "rm_webauthn_policies",
                "rm_invitations",
                "rm_emails",
                "rm_credentials",
                "rm_vault_secrets",
                "rm_audit"
            ]
        );
    }
}
