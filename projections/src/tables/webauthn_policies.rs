//! `rm_webauthn_policies`: each tenant's WebAuthn policy, once it set one, for the admin API. A
//! tenant without a row has the default policy, which the API shows as such.

use sqlx::AssertSqlSafe;
use tessera_event_schemas::events::{
    AttestationPreference, Event, Requirement, WebauthnPolicyV1,
};
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, StreamId};
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite};
use crate::store::{Dialect, ReadStore};
use crate::views::WebauthnPolicyView;

/// `rm_webauthn_policies`, keyed by tenant id.
#[derive(Debug)]
pub(crate) struct WebauthnPolicies;

impl TableProjection for WebauthnPolicies {
    const NAME: &'static str = "webauthn_policies";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_webauthn_policies",
        columns: &[
            Column::key("tenant_id"),
            Column::updated("enabled", Kind::Int),
            Column::updated("attestation_preference", Kind::Text),
            Column::updated("user_verification", Kind::Text),
            Column::updated("resident_key", Kind::Text),
            Column::updated("updated_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT tenant_id, enabled, attestation_preference, \
         user_verification, resident_key, updated_at FROM rm_webauthn_policies WHERE tenant_id";

    type Key = Uuid;
    type Row = WebauthnPolicyView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_webauthn_policies (\
                tenant_id {key} PRIMARY KEY, \
                enabled BIGINT NOT NULL, \
                attestation_preference TEXT NOT NULL, \
                user_verification TEXT NOT NULL, \
                resident_key TEXT NOT NULL, \
                updated_at BIGINT NOT NULL)"
        ))
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if let (Event::WebauthnPolicyChanged(_), Some(StreamId::WebauthnPolicy(tenant_id))) =
            (event, StreamId::parse(&envelope.stream_id))
        {
            each(tenant_id);
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<WebauthnPolicyView>,
        key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<WebauthnPolicyView> {
        match event {
            Event::WebauthnPolicyChanged(changed) => Some(WebauthnPolicyView {
                tenant_id: *key,
                policy: changed.policy.clone(),
                updated_at: envelope.recorded_at,
            }),
            _ => row,
        }
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, WebauthnPolicyView), ReadError> {
        let view = policy_from_row(row)?;
        Ok((view.tenant_id, view))
    }

    fn cells<'a>(
        id: &'a Uuid,
        view: &'a WebauthnPolicyView,
    ) -> Result<Vec<Cell<'a>>, ReadError> {
        let policy = &view.policy;
        Ok(vec![
            Cell::text(id.to_string()),
            Cell::int(i64::from(policy.enabled)),
            Cell::text(policy.attestation_preference.as_str()),
            Cell::text(policy.user_verification.as_str()),
            Cell::text(policy.resident_key.as_str()),
            Cell::int(view.updated_at.as_micros()),
        ])
    }

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

fn policy_from_row(row: &impl Columns) -> Result<WebauthnPolicyView, ReadError> {
    let text = |column: &str| row.text(column);
    let corrupt = |column: &str, value: &str| {
        ReadError::Corrupt(format!("rm_webauthn_policies.{column} {value}"))
    };
    let requirement = |column: &str| -> Result<Requirement, ReadError> {
        let value = text(column)?;
        Requirement::parse(&value).ok_or_else(|| corrupt(column, &value))
    };
    let attestation = text("attestation_preference")?;
    Ok(WebauthnPolicyView {
        tenant_id: parse_uuid(&text("tenant_id")?)?,
        policy: WebauthnPolicyV1 {
            enabled: row.int("enabled")? != 0,
            attestation_preference: AttestationPreference::parse(&attestation)
                .ok_or_else(|| corrupt("attestation_preference", &attestation))?,
            user_verification: requirement("user_verification")?,
            resident_key: requirement("resident_key")?,
        },
        updated_at: Timestamp::from_micros(row.int("updated_at")?),
    })
}

impl ReadStore {
    /// The WebAuthn policy `tenant_id` set; `None` when it never set one (it has the default).
    pub async fn webauthn_policy(
        &self,
        tenant_id: Uuid,
    ) -> Result<Option<WebauthnPolicyView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_webauthn_policies WHERE tenant_id = $1",
            WebauthnPolicies::WRITE.column_list()
        )))
        .bind(tenant_id.to_string());
        let row = self.tenant_row(tenant_id, query).await?;
        row.map(|row| policy_from_row(&row)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, envelope, sample};

    #[test]
    fn a_policy_change_replaces_the_tenants_row_whole() {
        let event = sample("webauthn_policy.changed");
        let env = envelope(streams::webauthn_policy(TENANT), 1, 1, 5_000);
        let mut keys = Vec::new();
        WebauthnPolicies::keys(&env, &event, |key| keys.push(key));
        assert_eq!(keys, [TENANT]);
        let view = WebauthnPolicies::reduce(None, &TENANT, &env, &event).unwrap();
        assert_eq!(view.policy.attestation_preference, AttestationPreference::Direct);
        assert_eq!(view.policy.resident_key, Requirement::Preferred);
        assert_eq!(view.updated_at, Timestamp::from_micros(5_000));
        let cells = WebauthnPolicies::cells(&TENANT, &view).unwrap();
        assert_eq!(cells.len(), WebauthnPolicies::WRITE.columns.len());
        let mut none = Vec::new();
        let env = envelope(streams::tenant(TENANT), 1, 1, 5_000);
        WebauthnPolicies::keys(&env, &sample("tenant.updated"), |key| none.push(key));
        assert!(none.is_empty());
    }
}
