//! `rm_tenants`: one row per tenant, the admin API's tenant listing and lookups.
//!
//! The row is a [`TenantView`]: the domain's own tenant state ([`TenantState`], folded with its
//! `evolve`, so the read model cannot disagree with the write side about a tenant's lifecycle)
//! plus envelope metadata (creation and update times, stream version) and three facts only the
//! read model keeps: why the tenant was cancelled or frozen, the trial end it was created with
//! (the domain forgets it on activation), and its configuration parsed. What the domain state
//! holds and a view must not (the key ring, with its sealed private keys) never reaches a view:
//! the view keeps the active key's id only.

use serde_json::Value;
use sqlx::AssertSqlSafe;
use tessera_domain::Aggregate;
use tessera_domain::tenant::{self as domain, Tenant, TenantState};
use tessera_event_schemas::Envelope;
use tessera_event_schemas::events::Event;
use tessera_event_schemas::primitives::Timestamp;
use uuid::Uuid;

use super::TableProjection;
use crate::decode::Columns;
use crate::error::ReadError;
use crate::paging::{Cursor, page};
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_i64, to_json};
use crate::store::{Dialect, MAX_PAGE, ReadStore};
use crate::views::{Page, PendingCancellation, TenantFilter, TenantView};

/// `rm_tenants`, keyed by tenant id; the whole view is the `doc` column, the other columns
/// serve the queries.
#[derive(Debug)]
pub(crate) struct Tenants;

impl TableProjection for Tenants {
    const NAME: &'static str = "tenants";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_tenants",
        columns: &[
            Column::key("id"),
            Column::fixed("slug", Kind::Text),
            Column::updated("status", Kind::Text),
            Column::updated("suspended", Kind::Flag),
            Column::fixed("created_at", Kind::Int),
            Column::updated("updated_at", Kind::Int),
            Column::updated("stream_version", Kind::Int),
            Column::updated("doc", Kind::Json),
        ],
    };
    const SELECT: &'static str = "SELECT doc FROM rm_tenants WHERE id";

    type Key = Uuid;
    type Row = TenantView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let (key, flag) = (dialect.key_type(), dialect.flag_type());
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_tenants (\
                id {key} PRIMARY KEY, \
                slug {key} NOT NULL UNIQUE, \
                status TEXT NOT NULL, \
                suspended {flag} NOT NULL, \
                created_at BIGINT NOT NULL, \
                updated_at BIGINT NOT NULL, \
                stream_version BIGINT NOT NULL, \
                doc TEXT NOT NULL)"
        ))
        .lookup("CREATE INDEX IF NOT EXISTS rm_tenants_by_created ON rm_tenants (created_at, id)")
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_tenants_by_status ON rm_tenants (status, created_at, id)",
        )
    }

    /// Every event of a tenant stream changes the envelope's tenant (the tenant comes from the
    /// envelope, never from a payload).
    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if is_tenant_event(event) {
            each(envelope.tenant_id);
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<TenantView>,
        _key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<TenantView> {
        reduce_tenant(row, envelope, event)
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, TenantView), ReadError> {
        let tenant = tenant_from_row(row)?;
        Ok((tenant.id, tenant))
    }

    fn cells<'a>(id: &'a Uuid, tenant: &'a TenantView) -> Result<Vec<Cell<'a>>, ReadError> {
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

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

/// Whether `event` belongs to a tenant's own stream: every `tenant.*` event (the audit trail
/// asks the same of an event, see [`crate::audit::needs_tenant_slug`]).
fn is_tenant_event(event: &Event) -> bool {
    event.category() == "tenant"
}

/// What a view records that the domain's tenant does not: see the module doc.
struct Kept {
    created_at: Timestamp,
    trial_ends_at: Option<Timestamp>,
    cancellation_reason: Option<String>,
    config: Value,
}

/// `rm_tenants`' reducer: the domain's `evolve` on the tenant the view describes, then the view
/// of the result.
fn reduce_tenant(
    row: Option<TenantView>,
    envelope: &Envelope,
    event: &Event,
) -> Option<TenantView> {
    // Not a tenant-stream event: leave the row exactly as it was (not even `version`).
    if !is_tenant_event(event) {
        return row;
    }
    // The write side creates a tenant once (expected version "no stream"). Should a second
    // creation ever be stored, the first one stands: slug and creation time never change once
    // a row exists, which the read store relies on. (The domain's `evolve` would start over.)
    if row.is_some() && matches!(event, Event::TenantCreated(_)) {
        return row;
    }
    let (mut state, kept) = match row {
        Some(view) => {
            let (tenant, kept) = into_domain(view);
            (
                TenantState {
                    tenant: Some(tenant),
                },
                Some(kept),
            )
        }
        None => (TenantState::default(), None),
    };
    state.evolve(event);
    // Anything but `tenant.created` for a tenant we have never seen changes nothing: there is
    // no row to change, and inventing one would show a tenant without a slug or key.
    let tenant = state.tenant?;
    Some(view_of(tenant, kept, envelope, event))
}

/// The domain's tenant a view describes, and what only the view knows. The key ring stays
/// empty (a view holds no keys, only the active kid), and so does the configuration's text,
/// which the view keeps parsed instead.
fn into_domain(view: TenantView) -> (Tenant, Kept) {
    let tenant = Tenant {
        id: view.id,
        slug: view.slug,
        name: view.name,
        plan: view.plan,
        kind: view.kind,
        status: view.status,
        domains: view.domains,
        settings: view.settings,
        config_json: String::new(),
        sales_owner: view.sales_owner,
        erp_customer_id: view.erp_customer_id,
        contract_start: view.contract_start,
        contract_end: view.contract_end,
        trial_ends_at: view.trial_ends_at,
        pending_cancellation: view.pending_cancellation.map(|pending| {
            domain::PendingCancellation {
                reason: pending.reason,
                effective_at: pending.effective_at,
            }
        }),
        suspended: view.suspended,
        suspension_reason: view.suspension_reason,
        keys: Vec::new(),
        active_kid: view.active_kid,
    };
    let kept = Kept {
        created_at: view.created_at,
        trial_ends_at: view.trial_ends_at,
        cancellation_reason: view.cancellation_reason,
        config: view.config,
    };
    (tenant, kept)
}

/// The view of `tenant` after `event`: `kept` is what the view held before (`None` for a
/// creation).
fn view_of(tenant: Tenant, kept: Option<Kept>, envelope: &Envelope, event: &Event) -> TenantView {
    let replaces_config = match event {
        Event::TenantCreated(_) => true,
        Event::TenantUpdated(update) => update.config_json.is_some(),
        _ => false,
    };
    let (created_at, trial_ends_at, cancellation_reason, config) = match kept {
        Some(kept) => (
            kept.created_at,
            kept.trial_ends_at,
            kept.cancellation_reason,
            (!replaces_config).then_some(kept.config),
        ),
        None => (envelope.recorded_at, tenant.trial_ends_at, None, None),
    };
    // The domain keeps the configuration as the text an event carried; the view keeps it
    // parsed, so it is parsed again exactly when an event replaced the text.
    let config = config.unwrap_or_else(|| parse_config(&tenant.config_json));
    // Why the tenant is (or will be) cancelled: an activation clears it, a cancellation states
    // it, and a freeze gives one only if no cancellation did.
    let cancellation_reason = match event {
        Event::TenantActivated(_) => None,
        Event::TenantCancelled(cancelled) => Some(cancelled.reason.clone()),
        Event::TenantFrozen(frozen) => cancellation_reason.or_else(|| Some(frozen.reason.clone())),
        _ => cancellation_reason,
    };
    TenantView {
        id: envelope.tenant_id,
        slug: tenant.slug,
        name: tenant.name,
        plan: tenant.plan,
        kind: tenant.kind,
        status: tenant.status,
        suspended: tenant.suspended,
        suspension_reason: tenant.suspension_reason,
        domains: tenant.domains,
        settings: tenant.settings,
        config,
        sales_owner: tenant.sales_owner,
        erp_customer_id: tenant.erp_customer_id,
        trial_ends_at,
        contract_start: tenant.contract_start,
        contract_end: tenant.contract_end,
        pending_cancellation: tenant
            .pending_cancellation
            .map(|pending| PendingCancellation {
                reason: pending.reason,
                effective_at: pending.effective_at,
            }),
        cancellation_reason,
        active_kid: tenant.active_kid,
        created_at,
        updated_at: envelope.recorded_at,
        version: envelope.stream_version,
    }
}

/// The free-form configuration object. Text that is not JSON (the write side validates it, so
/// this should never happen) is kept verbatim as a JSON string rather than dropped.
fn parse_config(config_json: &str) -> Value {
    serde_json::from_str(config_json).unwrap_or_else(|_| Value::String(config_json.to_owned()))
}

fn tenant_from_row(row: &impl Columns) -> Result<TenantView, ReadError> {
    let doc = row.text("doc")?;
    serde_json::from_str(&doc).map_err(|e| ReadError::Corrupt(format!("rm_tenants.doc: {e}")))
}

impl ReadStore {
    pub async fn tenant(&self, id: Uuid) -> Result<Option<TenantView>, ReadError> {
        let row = sqlx::query("SELECT doc FROM rm_tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool())
            .await?;
        row.map(|row| tenant_from_row(&row)).transpose()
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantView>, ReadError> {
        let row = sqlx::query("SELECT doc FROM rm_tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool())
            .await?;
        row.map(|row| tenant_from_row(&row)).transpose()
    }

    /// Tenants in creation order (ties broken by id), `limit` (at most [`MAX_PAGE`]) at a time.
    pub async fn list_tenants(
        &self,
        filter: TenantFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<TenantView>, ReadError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = cursor.map(Cursor::parse).transpose()?;
        let mut sql = String::from("SELECT doc FROM rm_tenants WHERE 1 = 1");
        let mut n = 0;
        if filter.status.is_some() {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        if filter.suspended.is_some() {
            n += 1;
            sql.push_str(&format!(" AND suspended = ${n}"));
        }
        if after.is_some() {
            sql.push_str(&format!(
                " AND (created_at > ${a} OR (created_at = ${a} AND id > ${b}))",
                a = n + 1,
                b = n + 2
            ));
        }
        sql.push_str(&format!(
            " ORDER BY created_at, id LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(suspended) = filter.suspended {
            query = query.bind(suspended);
        }
        if let Some(after) = &after {
            query = query.bind(after.created_at).bind(after.id.to_string());
        }
        let rows = query.fetch_all(&self.pool()).await?;
        let items = rows
            .iter()
            .map(tenant_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, limit, |t| Cursor {
            created_at: t.created_at.as_micros(),
            id: t.id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::*;
    use tessera_event_schemas::primitives::Timestamp;

    use super::*;
    use crate::tables::testing::{TENANT, fold_tenant, sample, tenant_env};

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
    fn activation_keeps_the_trial_end_the_tenant_was_created_with() {
        // The domain forgets the trial end once the tenant is active; the view goes on showing
        // the one the tenant was created with, as it always has.
        let created = fold_tenant(&[sample("tenant.created")]).unwrap();
        assert!(created.trial_ends_at.is_some());
        let active = fold_tenant(&[sample("tenant.created"), sample("tenant.activated")]).unwrap();
        assert_eq!(active.trial_ends_at, created.trial_ends_at);
    }

    #[test]
    fn a_view_holds_no_key_material() {
        let tenant = fold_tenant(&[
            sample("tenant.created"),
            sample("tenant.signing_key_rotated"),
        ])
        .unwrap();
        let doc = serde_json::to_string(&tenant).unwrap();
        assert!(!doc.contains("sealed"), "{doc}");
        assert!(!doc.contains("public_jwk"), "{doc}");
        assert_eq!(tenant.active_kid, "k-2026-11-24-b");
    }

    #[test]
    fn only_tenant_stream_events_name_a_tenant_row() {
        let env = tenant_env(1, 1);
        for event in samples::current() {
            let mut keys = Vec::new();
            Tenants::keys(&env, &event, |key| keys.push(key));
            let expected: Vec<Uuid> = (event.category() == "tenant").then_some(TENANT).into_iter().collect();
            assert_eq!(keys, expected, "{}", event.event_type());
        }
    }
}
