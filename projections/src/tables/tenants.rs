//! `rm_tenants`: one row per tenant, the admin API's tenant listing and lookups.
//!
//! The row is a [`TenantView`], folded by a reducer of its own from the tenant stream's events
//! and their envelopes. A view holds no key material: the active key's id only.

use sqlx::AssertSqlSafe;
use tessera_event_schemas::Envelope;
use tessera_event_schemas::events::{Event, TenantStatus};
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

/// Whether `event` belongs to a tenant's own stream.
fn is_tenant_event(event: &Event) -> bool {
    match event {
        Event::TenantCreated(_)
        | Event::TenantUpdated(_)
        | Event::TenantSettingsChanged(_)
        | Event::TenantActivated(_)
        | Event::TenantCancelled(_)
        | Event::TenantFrozen(_)
        | Event::TenantSuspended(_)
        | Event::TenantReactivated(_)
        | Event::TenantArchived(_)
        | Event::SigningKeyRotated(_)
        | Event::SigningKeyRetired(_) => true,
        Event::ApiKeyIssued(_)
        | Event::ApiKeyRevoked(_)
        | Event::ApiKeyUsed(_)
        | Event::OAuthClientRegistered(_)
        | Event::OAuthClientUpdated(_)
        | Event::OAuthClientSecretRegenerated(_)
        | Event::OAuthClientDeactivated(_)
        | Event::TokenIssued(_)
        | Event::TokenRevoked(_)
        | Event::ReservationClaimed(_)
        | Event::ReservationReleased(_)
        | Event::AuditRecorded(_) => false,
    }
}

/// `rm_tenants`: one row per tenant.
fn reduce_tenant(
    row: Option<TenantView>,
    envelope: &Envelope,
    event: &Event,
) -> Option<TenantView> {
    if let Event::TenantCreated(created) = event {
        // The write side creates a tenant once (expected version "no stream"). Should a second
        // creation ever be stored, the first one stands: slug and creation time never change
        // once a row exists, which the read store relies on.
        if row.is_some() {
            return row;
        }
        return Some(TenantView {
            id: envelope.tenant_id,
            slug: created.slug.clone(),
            name: created.name.clone(),
            plan: created.plan.clone(),
            kind: created.kind,
            status: created.status,
            suspended: false,
            suspension_reason: None,
            domains: created.domains.clone(),
            settings: created.settings.clone(),
            config: parse_config(&created.config_json),
            sales_owner: created.sales_owner.clone(),
            erp_customer_id: None,
            trial_ends_at: created.trial_ends_at,
            contract_start: None,
            contract_end: None,
            pending_cancellation: None,
            cancellation_reason: None,
            active_kid: created.signing_key.kid.clone(),
            created_at: envelope.recorded_at,
            updated_at: envelope.recorded_at,
            version: envelope.stream_version,
        });
    }
    // Anything but `tenant.created` for a tenant we have never seen changes nothing: there
    // is no row to change, and inventing one would show a tenant without a slug or key.
    let mut tenant = row?;
    match event {
        Event::TenantUpdated(update) => {
            if let Some(name) = &update.name {
                tenant.name.clone_from(name);
            }
            if let Some(domains) = &update.domains {
                tenant.domains.clone_from(domains);
            }
            if let Some(plan) = &update.plan {
                tenant.plan.clone_from(plan);
            }
            if let Some(config_json) = &update.config_json {
                tenant.config = parse_config(config_json);
            }
            if let Some(owner) = &update.sales_owner {
                tenant.sales_owner = Some(owner.clone());
            }
        }
        Event::TenantSettingsChanged(changed) => tenant.settings = changed.settings.clone(),
        Event::TenantActivated(activated) => {
            tenant.status = TenantStatus::Active;
            tenant.plan.clone_from(&activated.plan);
            // An activation defines the contract, so both dates are taken as given; an ERP id
            // once known is kept when a later activation does not repeat it.
            tenant.contract_start = activated.contract_start;
            tenant.contract_end = activated.contract_end;
            if activated.erp_customer_id.is_some() {
                tenant
                    .erp_customer_id
                    .clone_from(&activated.erp_customer_id);
            }
            tenant.pending_cancellation = None;
            tenant.cancellation_reason = None;
        }
        Event::TenantCancelled(cancelled) => {
            tenant.cancellation_reason = Some(cancelled.reason.clone());
            match cancelled.effective_at {
                None => {
                    tenant.status = TenantStatus::Frozen;
                    tenant.pending_cancellation = None;
                }
                Some(effective_at) => {
                    tenant.pending_cancellation = Some(PendingCancellation {
                        reason: cancelled.reason.clone(),
                        effective_at,
                    });
                }
            }
        }
        Event::TenantFrozen(frozen) => {
            tenant.status = TenantStatus::Frozen;
            tenant.pending_cancellation = None;
            if tenant.cancellation_reason.is_none() {
                tenant.cancellation_reason = Some(frozen.reason.clone());
            }
        }
        Event::TenantSuspended(suspended) => {
            tenant.suspended = true;
            tenant.suspension_reason.clone_from(&suspended.reason);
        }
        Event::TenantReactivated(_) => {
            tenant.suspended = false;
            tenant.suspension_reason = None;
        }
        Event::TenantArchived(_) => tenant.status = TenantStatus::Archived,
        Event::SigningKeyRotated(rotated) => tenant.active_kid.clone_from(&rotated.key.kid),
        Event::SigningKeyRetired(_) => {}
        // Not a tenant-stream event: leave the row exactly as it was (not even `version`).
        Event::TenantCreated(_)
        | Event::ApiKeyIssued(_)
        | Event::ApiKeyRevoked(_)
        | Event::ApiKeyUsed(_)
        | Event::OAuthClientRegistered(_)
        | Event::OAuthClientUpdated(_)
        | Event::OAuthClientSecretRegenerated(_)
        | Event::OAuthClientDeactivated(_)
        | Event::TokenIssued(_)
        | Event::TokenRevoked(_)
        | Event::ReservationClaimed(_)
        | Event::ReservationReleased(_)
        | Event::AuditRecorded(_) => return Some(tenant),
    }
    tenant.updated_at = envelope.recorded_at;
    tenant.version = envelope.stream_version;
    Some(tenant)
}

fn parse_config(config_json: &str) -> serde_json::Value {
    serde_json::from_str(config_json)
        .unwrap_or_else(|_| serde_json::Value::String(config_json.to_owned()))
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
    use crate::tables::testing::{TENANT, sample, tenant_env};

    /// Folds `events` (all on the tenant stream) from nothing.
    fn fold_tenant(events: &[Event]) -> Option<TenantView> {
        events.iter().enumerate().fold(None, |row, (i, event)| {
            let v = i as u64 + 1;
            reduce_tenant(row, &tenant_env(v, 1_000 * v as i64), event)
        })
    }

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
