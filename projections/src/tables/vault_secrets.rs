//! `rm_vault_secrets`: one row per stream that holds a vault secret (a connection, a tenant's
//! OAuth app, an operator's integration, a provider key; the holders are listed once, in
//! `tessera_domain::vault::secret_change`), with the key version it is sealed under. It answers
//! the vault's progress and retirement questions without opening anything: how many secrets
//! each key version still seals, and which streams a rewrap still has to move. Never a secret:
//! only the version its sealed text names.

use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;
use tessera_domain::vault::{SecretChange, secret_change};
use tessera_event_schemas::Envelope;
use tessera_event_schemas::events::Event;
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid, to_u64};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite};
use crate::store::{Dialect, ReadStore};

/// A read-model row id for a stream: the first 16 bytes of SHA-256 of the stream id (stream
/// ids are long; the row id is what rows are keyed and grouped by).
pub(crate) fn stream_row_id(stream_id: &str) -> Uuid {
    let digest = Sha256::digest(stream_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// One stream's secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSecretView {
    pub tenant_id: Uuid,
    pub stream_id: String,
    pub key_version: u32,
}

/// `rm_vault_secrets`, keyed by [`stream_row_id`].
#[derive(Debug)]
pub(crate) struct VaultSecrets;

impl TableProjection for VaultSecrets {
    const NAME: &'static str = "vault_secrets";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_vault_secrets",
        columns: &[
            Column::key("id"),
            Column::fixed("tenant_id", Kind::Text),
            Column::fixed("stream_id", Kind::Text),
            Column::updated("key_version", Kind::Int),
        ],
    };
    const SELECT: &'static str =
        "SELECT id, tenant_id, stream_id, key_version FROM rm_vault_secrets WHERE id";

    type Key = Uuid;
    type Row = VaultSecretView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_vault_secrets (\
                id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                stream_id TEXT NOT NULL, \
                key_version BIGINT NOT NULL)"
        ))
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_vault_secrets_by_version \
             ON rm_vault_secrets (tenant_id, key_version, stream_id)",
        )
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if secret_change(event).is_some() {
            each(stream_row_id(&envelope.stream_id));
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<VaultSecretView>,
        _key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<VaultSecretView> {
        match secret_change(event) {
            Some(SecretChange::Holds { key_version, .. }) => Some(VaultSecretView {
                tenant_id: envelope.tenant_id,
                stream_id: envelope.stream_id.clone(),
                key_version,
            }),
            Some(SecretChange::Gone) => None,
            None => row,
        }
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, VaultSecretView), ReadError> {
        let view = secret_from_row(row)?;
        Ok((parse_uuid(&row.text("id")?)?, view))
    }

    fn cells<'a>(id: &'a Uuid, view: &'a VaultSecretView) -> Result<Vec<Cell<'a>>, ReadError> {
        Ok(vec![
            Cell::text(id.to_string()),
            Cell::text(view.tenant_id.to_string()),
            Cell::text(view.stream_id.as_str()),
            Cell::int(i64::from(view.key_version)),
        ])
    }

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

fn secret_from_row(row: &impl Columns) -> Result<VaultSecretView, ReadError> {
    let version = row.int("key_version")?;
    Ok(VaultSecretView {
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        stream_id: row.text("stream_id")?,
        key_version: u32::try_from(version)
            .map_err(|_| ReadError::Corrupt(format!("rm_vault_secrets.key_version {version}")))?,
    })
}

impl ReadStore {
    /// How many secrets each key version of `tenant_id` seals, by version.
    pub async fn vault_secret_counts(&self, tenant_id: Uuid) -> Result<Vec<(u32, u64)>, ReadError> {
        let query = sqlx::query(
            "SELECT key_version, COUNT(*) AS secrets FROM rm_vault_secrets \
             WHERE tenant_id = $1 GROUP BY key_version ORDER BY key_version",
        )
        .bind(tenant_id.to_string());
        let rows = self.tenant_rows(tenant_id, query).await?;
        rows.iter()
            .map(|row| {
                let version = row.int("key_version")?;
                Ok((
                    u32::try_from(version).map_err(|_| {
                        ReadError::Corrupt(format!("rm_vault_secrets.key_version {version}"))
                    })?,
                    to_u64(row.int("secrets")?)?,
                ))
            })
            .collect()
    }

    /// Up to `limit` streams of `tenant_id` whose secret is sealed below `version`: what a
    /// rewrap to `version` still has to move.
    pub async fn vault_secrets_below(
        &self,
        tenant_id: Uuid,
        version: u32,
        limit: u32,
    ) -> Result<Vec<VaultSecretView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "SELECT tenant_id, stream_id, key_version FROM rm_vault_secrets \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY key_version, stream_id LIMIT {}",
            limit.clamp(1, 10_000)
        )))
        .bind(tenant_id.to_string())
        .bind(i64::from(version));
        let rows = self.tenant_rows(tenant_id, query).await?;
        rows.iter().map(secret_from_row).collect()
    }

    /// Every tenant that holds a vault secret (to find, at start, rewraps to resume).
    pub async fn tenants_with_vault_secrets(&self) -> Result<Vec<Uuid>, ReadError> {
        let rows = sqlx::query("SELECT DISTINCT tenant_id FROM rm_vault_secrets")
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
    fn a_holders_stream_has_one_row_with_the_version_its_secret_names_until_it_is_removed() {
        let stream = streams::credential(TENANT, "notion");
        let env = envelope(stream.clone(), 1, 1, 1_000);
        let stored = sample("credential.stored");
        let mut keys = Vec::new();
        VaultSecrets::keys(&env, &stored, |key| keys.push(key));
        assert_eq!(keys, [stream_row_id(&stream)]);
        let row = VaultSecrets::reduce(None, &keys[0], &env, &stored).unwrap();
        assert_eq!(row.stream_id, stream);
        assert_eq!(row.tenant_id, TENANT);
        assert!(row.key_version >= 1);
        let rewrapped = sample("credential.rewrapped");
        let row = VaultSecrets::reduce(Some(row), &keys[0], &env, &rewrapped).unwrap();
        assert_eq!(row.key_version, 2);
        assert_eq!(
            VaultSecrets::reduce(Some(row.clone()), &keys[0], &env, &sample("credential.removed")),
            None
        );
        assert_eq!(
            VaultSecrets::cells(&keys[0], &row).unwrap().len(),
            VaultSecrets::WRITE.columns.len()
        );
        let mut none = Vec::new();
        VaultSecrets::keys(&env, &sample("credential.accessed"), |key| none.push(key));
        assert!(none.is_empty());
    }
}
