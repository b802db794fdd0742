//! `rm_identity_providers`: each tenant's configured upstream identity providers (issue 19),
//! by alias, with what the hosted sign-in page and seed 002's `GET /auth/tenants` show of
//! them: the display name. The configuration itself (endpoints, the sealed client secret) is
//! read from the provider's own stream when a sign-in needs it; this table only says which
//! providers a tenant has, which no stream can answer without a read model.
//!
//! One row per `(tenant, alias)`, loaded and cached per tenant (a tenant has a few).
//! `federation.removed` deletes the row.

use sqlx::AssertSqlSafe;
use tessera_event_schemas::events::Event;
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, StreamId};
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite};
use crate::store::{Dialect, ReadStore};
use crate::views::IdentityProviderView;

/// `rm_identity_providers`, keyed by `(tenant, alias)` and grouped by tenant.
#[derive(Debug)]
pub(crate) struct IdentityProviders;

impl TableProjection for IdentityProviders {
    const NAME: &'static str = "identity_providers";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_identity_providers",
        columns: &[
            Column::key("tenant_id"),
            Column::key("alias"),
            Column::updated("display_name", Kind::Text),
            Column::updated("updated_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT tenant_id, alias, display_name, updated_at \
         FROM rm_identity_providers WHERE tenant_id";
    const ROWS_PER_GROUP: usize = 2;

    type Key = (Uuid, String);
    type Row = IdentityProviderView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_identity_providers (\
                tenant_id {key} NOT NULL, \
                alias {key} NOT NULL, \
                display_name TEXT NOT NULL, \
                updated_at BIGINT NOT NULL, \
                PRIMARY KEY (tenant_id, alias))"
        ))
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut((Uuid, String))) {
        if let (
            Event::FederationConfigured(_) | Event::FederationRemoved(_),
            Some(StreamId::IdentityProvider { tenant_id, alias }),
        ) = (event, StreamId::parse(&envelope.stream_id))
        {
            each((tenant_id, alias));
        }
    }

    fn group_of((tenant, _): &(Uuid, String)) -> Uuid {
        *tenant
    }

    fn reduce(
        row: Option<IdentityProviderView>,
        (tenant_id, alias): &(Uuid, String),
        envelope: &Envelope,
        event: &Event,
    ) -> Option<IdentityProviderView> {
        match event {
            Event::FederationConfigured(configured) => Some(IdentityProviderView {
                tenant_id: *tenant_id,
                alias: alias.clone(),
                display_name: configured.display_name.clone(),
                updated_at: envelope.recorded_at,
            }),
            Event::FederationRemoved(_) => None,
            _ => row,
        }
    }

    fn from_row(row: &impl Columns) -> Result<((Uuid, String), IdentityProviderView), ReadError> {
        let view = provider_from_row(row)?;
        Ok(((view.tenant_id, view.alias.clone()), view))
    }

    fn cells<'a>(
        (tenant_id, alias): &'a (Uuid, String),
        view: &'a IdentityProviderView,
    ) -> Result<Vec<Cell<'a>>, ReadError> {
        Ok(vec![
            Cell::text(tenant_id.to_string()),
            Cell::text(alias.as_str()),
            Cell::text(view.display_name.as_str()),
            Cell::int(view.updated_at.as_micros()),
        ])
    }

    fn key_cells((tenant_id, alias): &(Uuid, String)) -> Vec<Cell<'_>> {
        vec![Cell::text(tenant_id.to_string()), Cell::text(alias.as_str())]
    }
}

fn provider_from_row(row: &impl Columns) -> Result<IdentityProviderView, ReadError> {
    Ok(IdentityProviderView {
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        alias: row.text("alias")?,
        display_name: row.text("display_name")?,
        updated_at: Timestamp::from_micros(row.int("updated_at")?),
    })
}

impl ReadStore {
    /// A tenant's identity providers, by alias.
    pub async fn identity_providers(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<IdentityProviderView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "{} = $1 ORDER BY alias",
            IdentityProviders::SELECT
        )))
        .bind(tenant_id.to_string());
        let rows = self.tenant_rows(tenant_id, query).await?;
        rows.iter().map(provider_from_row).collect()
    }

    /// The ids of the tenants that have at least one identity provider (seed 002's
    /// `GET /auth/tenants`, a public list across tenants, like the tenant directory).
    pub async fn federating_tenants(&self) -> Result<Vec<Uuid>, ReadError> {
        let rows = sqlx::query("SELECT DISTINCT tenant_id FROM rm_identity_providers")
            .fetch_all(&self.pool())
            .await?;
        rows.iter()
            .map(|row| parse_uuid(&row.text("tenant_id")?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, envelope, sample};

    #[test]
    fn configuring_keeps_the_display_name_and_removing_deletes_the_row() {
        let stream = streams::identity_provider(TENANT, "okta");
        let configured = sample("federation.configured");
        let env = envelope(stream.clone(), 1, 1, 5_000);
        let mut keys = Vec::new();
        IdentityProviders::keys(&env, &configured, |key| keys.push(key));
        assert_eq!(keys, [(TENANT, "okta".to_owned())]);
        let Event::FederationConfigured(expected) = &configured else {
            unreachable!()
        };
        let row = IdentityProviders::reduce(None, &keys[0], &env, &configured).unwrap();
        assert_eq!(row.display_name, expected.display_name);
        assert_eq!(row.alias, "okta");
        assert_eq!(row.updated_at, Timestamp::from_micros(5_000));
        let cells = IdentityProviders::cells(&keys[0], &row).unwrap();
        assert_eq!(cells.len(), IdentityProviders::WRITE.columns.len());

        let removed = sample("federation.removed");
        let env = envelope(stream, 2, 2, 6_000);
        assert!(IdentityProviders::reduce(Some(row), &keys[0], &env, &removed).is_none());
    }

    #[test]
    fn events_of_other_streams_touch_no_provider() {
        let mut keys = Vec::new();
        let env = envelope(streams::federated_sign_in(TENANT, TENANT), 1, 1, 1);
        IdentityProviders::keys(&env, &sample("federation.signed_in"), |key| keys.push(key));
        let env = envelope(streams::tenant(TENANT), 1, 1, 1);
        IdentityProviders::keys(&env, &sample("tenant.updated"), |key| keys.push(key));
        assert!(keys.is_empty());
    }
}
