//! `rm_api_keys`: one row per API key, found by the keyed hash of a presented secret (any
//! tenant) or by id within its tenant. The plaintext secret is never stored; the hash is a
//! keyed SHA-256, which a stolen database alone cannot test guesses against.

use sqlx::AssertSqlSafe;
use tessera_event_schemas::events::Event;
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, Hash32};
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid, to_u64};
use crate::error::ReadError;
use crate::paging::{Cursor, page};
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_i64, to_json};
use crate::store::{Dialect, MAX_PAGE, ReadStore};
use crate::views::{ApiKeyView, Page};

/// `rm_api_keys`, keyed by key id.
#[derive(Debug)]
pub(crate) struct ApiKeys;

impl TableProjection for ApiKeys {
    const NAME: &'static str = "api_keys";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_api_keys",
        columns: &[
            Column::key("key_id"),
            Column::fixed("tenant_id", Kind::Text),
            Column::fixed("secret_hash", Kind::Text),
            Column::updated("name", Kind::Text),
            Column::updated("prefix", Kind::Text),
            Column::updated("scopes", Kind::Json),
            Column::updated("product", Kind::Text),
            Column::updated("created_by", Kind::Text),
            Column::fixed("created_at", Kind::Int),
            Column::updated("expires_at", Kind::Int),
            Column::updated("revoked_at", Kind::Int),
            Column::updated("use_count", Kind::Int),
            Column::updated("last_used_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT key_id, tenant_id, secret_hash, name, prefix, scopes, \
         product, created_by, created_at, expires_at, revoked_at, use_count, last_used_at \
         FROM rm_api_keys WHERE key_id";

    type Key = Uuid;
    type Row = ApiKeyView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_api_keys (\
                key_id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                secret_hash {key} NOT NULL, \
                name TEXT NOT NULL, \
                prefix TEXT NOT NULL, \
                scopes TEXT NOT NULL, \
                product TEXT, \
                created_by TEXT NOT NULL, \
                created_at BIGINT NOT NULL, \
                expires_at BIGINT, \
                revoked_at BIGINT, \
                use_count BIGINT NOT NULL, \
                last_used_at BIGINT)"
        ))
        .unique("CREATE UNIQUE INDEX IF NOT EXISTS rm_api_keys_by_hash ON rm_api_keys (secret_hash)")
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_api_keys_by_tenant \
             ON rm_api_keys (tenant_id, created_at, key_id)",
        )
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if let Some(key) = api_key_key(envelope, event) {
            each(key);
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<ApiKeyView>,
        _key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<ApiKeyView> {
        reduce_api_key(row, envelope, event)
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, ApiKeyView), ReadError> {
        let key = api_key_from_row(row)?;
        Ok((key.key_id, key))
    }

    fn cells<'a>(id: &'a Uuid, key: &'a ApiKeyView) -> Result<Vec<Cell<'a>>, ReadError> {
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

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

/// The API key row an event changes. `api_key.revoked` and `api_key.used` do not repeat the
/// key id, so it is read from the stream id (`{tenant}/api-key/{key}`).
fn api_key_key(envelope: &Envelope, event: &Event) -> Option<Uuid> {
    match event {
        Event::ApiKeyIssued(issued) => Some(issued.key_id),
        Event::ApiKeyRevoked(_) | Event::ApiKeyUsed(_) => api_key_id_of_stream(&envelope.stream_id),
        _ => None,
    }
}

fn api_key_id_of_stream(stream_id: &str) -> Option<Uuid> {
    use tessera_event_schemas::StreamId;
    match StreamId::parse(stream_id)? {
        StreamId::ApiKey { key_id, .. } => Some(key_id),
        _ => None,
    }
}

/// `rm_api_keys`: one row per key.
fn reduce_api_key(
    row: Option<ApiKeyView>,
    envelope: &Envelope,
    event: &Event,
) -> Option<ApiKeyView> {
    match event {
        // As with tenants, a key is issued once; the first issue stands, so the tenant, hash
        // and creation time never change once a row exists.
        Event::ApiKeyIssued(_) if row.is_some() => row,
        Event::ApiKeyIssued(issued) => Some(ApiKeyView {
            key_id: issued.key_id,
            tenant_id: envelope.tenant_id,
            secret_hash: *issued.secret_hash.expose(),
            name: issued.name.clone(),
            prefix: issued.prefix.clone(),
            scopes: issued.scopes.clone(),
            product: issued.product.clone(),
            created_by: issued.created_by.clone(),
            created_at: envelope.recorded_at,
            expires_at: issued.expires_at,
            revoked_at: None,
            use_count: 0,
            last_used_at: None,
        }),
        Event::ApiKeyRevoked(_) => row.map(|mut key| {
            // The first revocation is the one that counts; a repeat does not move the time.
            if key.revoked_at.is_none() {
                key.revoked_at = Some(envelope.recorded_at);
            }
            key
        }),
        // Usage is history: it counts whatever the key's state, revoked or expired. Usage of a
        // key with no row (never issued) has nothing to attach to and is dropped.
        Event::ApiKeyUsed(used) => row.map(|mut key| {
            key.use_count = key.use_count.saturating_add(used.uses);
            key.last_used_at = key.last_used_at.max(Some(used.last_used_at));
            key
        }),
        _ => row,
    }
}

fn api_key_from_row(row: &impl Columns) -> Result<ApiKeyView, ReadError> {
    let hash = row.text("secret_hash")?;
    let scopes = row.text("scopes")?;
    Ok(ApiKeyView {
        key_id: parse_uuid(&row.text("key_id")?)?,
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        secret_hash: Hash32::from_hex(&hash)
            .ok_or_else(|| ReadError::Corrupt(format!("bad secret_hash {hash}")))?,
        name: row.text("name")?,
        prefix: row.text("prefix")?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|e| ReadError::Corrupt(format!("rm_api_keys.scopes: {e}")))?,
        product: row.opt_text("product")?,
        created_by: row.text("created_by")?,
        created_at: Timestamp::from_micros(row.int("created_at")?),
        expires_at: row.opt_int("expires_at")?.map(Timestamp::from_micros),
        revoked_at: row.opt_int("revoked_at")?.map(Timestamp::from_micros),
        use_count: to_u64(row.int("use_count")?)?,
        last_used_at: row.opt_int("last_used_at")?.map(Timestamp::from_micros),
    })
}

impl ReadStore {
    /// The key whose secret hashes to `secret_hash`, in any tenant: this is how a presented
    /// API key is authenticated, before its tenant is known. The caller checks revocation and
    /// expiry.
    pub async fn api_key_by_hash(
        &self,
        secret_hash: &Hash32,
    ) -> Result<Option<ApiKeyView>, ReadError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_api_keys WHERE secret_hash = $1",
            ApiKeys::WRITE.column_list()
        )))
        .bind(secret_hash.to_hex())
        .fetch_optional(&self.pool())
        .await?;
        row.map(|row| api_key_from_row(&row)).transpose()
    }

    /// A key by its id alone, in any tenant (seed 003's `DELETE /v1/api-keys/{id}`); the caller
    /// checks that the tenant is the caller's to administer.
    pub async fn api_key_by_id(&self, key_id: Uuid) -> Result<Option<ApiKeyView>, ReadError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_api_keys WHERE key_id = $1",
            ApiKeys::WRITE.column_list()
        )))
        .bind(key_id.to_string())
        .fetch_optional(&self.pool())
        .await?;
        row.map(|row| api_key_from_row(&row)).transpose()
    }

    pub async fn api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
    ) -> Result<Option<ApiKeyView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_api_keys WHERE key_id = $1 AND tenant_id = $2",
            ApiKeys::WRITE.column_list()
        )))
        .bind(key_id.to_string())
        .bind(tenant_id.to_string());
        let row = self.tenant_row(tenant_id, query).await?;
        row.map(|row| api_key_from_row(&row)).transpose()
    }

    /// A tenant's API keys in creation order, `limit` (at most [`MAX_PAGE`]) at a time.
    pub async fn list_api_keys(
        &self,
        tenant_id: Uuid,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<ApiKeyView>, ReadError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = cursor.map(Cursor::parse).transpose()?;
        let mut sql = format!(
            "SELECT {} FROM rm_api_keys WHERE tenant_id = $1",
            ApiKeys::WRITE.column_list()
        );
        if after.is_some() {
            sql.push_str(" AND (created_at > $2 OR (created_at = $2 AND key_id > $3))");
        }
        sql.push_str(&format!(
            " ORDER BY created_at, key_id LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id.to_string());
        if let Some(after) = &after {
            query = query.bind(after.created_at).bind(after.id.to_string());
        }
        let rows = self.tenant_rows(tenant_id, query).await?;
        let items = rows
            .iter()
            .map(api_key_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, limit, |k| Cursor {
            created_at: k.created_at.as_micros(),
            id: k.key_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::ApiKeyUsedV1;
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{KEY, TENANT, envelope, sample};

    #[test]
    fn api_key_is_issued_then_revoked_once() {
        let stream = streams::api_key(TENANT, KEY);
        let issued_env = envelope(stream.clone(), 1, 10, 10_000);
        let revoked_env = envelope(stream.clone(), 2, 11, 11_000);
        let again_env = envelope(stream, 3, 12, 12_000);
        let issued = sample("api_key.issued");
        let revoked = sample("api_key.revoked");
        assert_eq!(api_key_key(&issued_env, &issued), Some(KEY));
        assert_eq!(api_key_key(&revoked_env, &revoked), Some(KEY));

        let key = reduce_api_key(None, &issued_env, &issued).unwrap();
        assert_eq!(key.tenant_id, TENANT);
        assert_eq!(key.secret_hash, Hash32([7; 32]));
        assert_eq!(key.created_at, Timestamp::from_micros(10_000));
        assert_eq!(key.revoked_at, None);
        let key = reduce_api_key(Some(key), &revoked_env, &revoked).unwrap();
        assert_eq!(key.revoked_at, Some(Timestamp::from_micros(11_000)));
        let key = reduce_api_key(Some(key), &again_env, &revoked).unwrap();
        assert_eq!(key.revoked_at, Some(Timestamp::from_micros(11_000)));
        let reissued = reduce_api_key(Some(key.clone()), &again_env, &issued);
        assert_eq!(reissued, Some(key));
    }

    fn used(uses: u64, first: i64, last: i64) -> Event {
        Event::ApiKeyUsed(ApiKeyUsedV1 {
            uses,
            first_used_at: Timestamp::from_micros(first),
            last_used_at: Timestamp::from_micros(last),
        })
    }

    #[test]
    fn usage_accumulates_and_keeps_the_latest_use_even_after_revocation() {
        let stream = streams::api_key(TENANT, KEY);
        let env = |v: u64| envelope(stream.clone(), v, 10 + v, 10_000 * v as i64);
        let issued = reduce_api_key(None, &env(1), &sample("api_key.issued")).unwrap();
        assert_eq!((issued.use_count, issued.last_used_at), (0, None));
        assert_eq!(api_key_key(&env(2), &used(3, 1, 2)), Some(KEY));

        let key = reduce_api_key(Some(issued), &env(2), &used(3, 100, 200)).unwrap();
        assert_eq!(key.use_count, 3);
        assert_eq!(key.last_used_at, Some(Timestamp::from_micros(200)));
        // A record that arrives late (an earlier window) adds its uses but not its time.
        let key = reduce_api_key(Some(key), &env(3), &used(4, 50, 150)).unwrap();
        assert_eq!(key.use_count, 7);
        assert_eq!(key.last_used_at, Some(Timestamp::from_micros(200)));
        let key = reduce_api_key(Some(key), &env(4), &sample("api_key.revoked")).unwrap();
        let key = reduce_api_key(Some(key), &env(5), &used(1, 300, 400)).unwrap();
        assert_eq!(key.use_count, 8);
        assert_eq!(key.last_used_at, Some(Timestamp::from_micros(400)));
        assert_eq!(key.revoked_at, Some(Timestamp::from_micros(40_000)));
    }

    #[test]
    fn usage_of_a_key_never_issued_creates_no_row() {
        let env = envelope(streams::api_key(TENANT, KEY), 1, 1, 1);
        assert_eq!(reduce_api_key(None, &env, &sample("api_key.used")), None);
        let elsewhere = envelope(streams::tenant(TENANT), 2, 2, 2);
        assert_eq!(api_key_key(&elsewhere, &sample("api_key.used")), None);
        let mut tenants = Vec::new();
        crate::tables::Tenants::keys(&env, &sample("api_key.used"), |key| tenants.push(key));
        assert_eq!(tenants, Vec::<Uuid>::new());
    }

    #[test]
    fn revocation_on_a_stream_that_is_not_an_api_key_is_ignored() {
        let env = envelope(streams::tenant(TENANT), 2, 2, 2);
        assert_eq!(api_key_key(&env, &sample("api_key.revoked")), None);
    }
}
