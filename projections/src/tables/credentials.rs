//! `rm_credentials`: one row per connection of a tenant to a third-party service (issue 20,
//! seed 004's listing): kind, status, scopes, expiry, last refresh, last error, failures, the
//! key version its secret is sealed under and whose OAuth app made it. Never the secret. A
//! removed connection has no row.

use sqlx::AssertSqlSafe;
use tessera_event_schemas::events::{CredentialKind, Event, OAuthAppSource, RefreshFailure};
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, StreamId};
use uuid::Uuid;

use super::TableProjection;
use super::vault_secrets::stream_row_id;
use crate::decode::{Columns, parse_uuid, to_u64};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_i64, to_json};
use crate::store::{Dialect, ReadStore};

/// A connection as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialView {
    pub tenant_id: Uuid,
    pub integration: String,
    pub kind: CredentialKind,
    /// `active`, `refresh_failing` or `needs_reauth`.
    pub status: String,
    pub scopes: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub refreshable: bool,
    pub app: OAuthAppSource,
    pub last_refreshed_at: Option<Timestamp>,
    pub last_error: Option<RefreshFailure>,
    pub consecutive_failures: u64,
    pub next_attempt_at: Option<Timestamp>,
    pub key_version: u32,
    pub updated_at: Timestamp,
}

/// The wire names of the enums this table stores.
pub fn kind_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Oauth => "oauth",
        CredentialKind::ApiKey => "api_key",
    }
}

pub fn app_name(app: OAuthAppSource) -> &'static str {
    match app {
        OAuthAppSource::Platform => "platform",
        OAuthAppSource::Tenant => "tenant",
        OAuthAppSource::None => "none",
    }
}

pub fn failure_name(failure: RefreshFailure) -> &'static str {
    match failure {
        RefreshFailure::InvalidGrant => "invalid_grant",
        RefreshFailure::Unreachable => "unreachable",
        RefreshFailure::Rejected => "rejected",
    }
}

/// `rm_credentials`, keyed by the row id of the connection's stream.
#[derive(Debug)]
pub(crate) struct Credentials;

impl TableProjection for Credentials {
    const NAME: &'static str = "credentials";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_credentials",
        columns: &[
            Column::key("id"),
            Column::fixed("tenant_id", Kind::Text),
            Column::fixed("integration", Kind::Text),
            Column::updated("kind", Kind::Text),
            Column::updated("status", Kind::Text),
            Column::updated("scopes", Kind::Json),
            Column::updated("issued_at", Kind::Int),
            Column::updated("expires_at", Kind::Int),
            Column::updated("refreshable", Kind::Int),
            Column::updated("app", Kind::Text),
            Column::updated("last_refreshed_at", Kind::Int),
            Column::updated("last_error", Kind::Text),
            Column::updated("consecutive_failures", Kind::Int),
            Column::updated("next_attempt_at", Kind::Int),
            Column::updated("key_version", Kind::Int),
            Column::updated("updated_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT id, tenant_id, integration, kind, status, scopes, \
         issued_at, expires_at, refreshable, app, last_refreshed_at, last_error, \
         consecutive_failures, next_attempt_at, key_version, updated_at \
         FROM rm_credentials WHERE id";

    type Key = Uuid;
    type Row = CredentialView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_credentials (\
                id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                integration TEXT NOT NULL, \
                kind TEXT NOT NULL, \
                status TEXT NOT NULL, \
                scopes TEXT NOT NULL, \
                issued_at BIGINT NOT NULL, \
                expires_at BIGINT, \
                refreshable BIGINT NOT NULL, \
                app TEXT NOT NULL, \
                last_refreshed_at BIGINT, \
                last_error TEXT, \
                consecutive_failures BIGINT NOT NULL, \
                next_attempt_at BIGINT, \
                key_version BIGINT NOT NULL, \
                updated_at BIGINT NOT NULL)"
        ))
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_credentials_by_tenant \
             ON rm_credentials (tenant_id, integration)",
        )
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        let concerns = matches!(
            event,
            Event::CredentialStored(_)
                | Event::CredentialRefreshed(_)
                | Event::CredentialRefreshFailed(_)
                | Event::CredentialNeedsReauth(_)
                | Event::CredentialRewrapped(_)
                | Event::CredentialRemoved(_)
        );
        if concerns && envelope.stream_id.contains("/credential/") {
            each(stream_row_id(&envelope.stream_id));
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<CredentialView>,
        _key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<CredentialView> {
        reduce_credential(row, envelope, event)
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, CredentialView), ReadError> {
        let view = credential_from_row(row)?;
        Ok((parse_uuid(&row.text("id")?)?, view))
    }

    fn cells<'a>(id: &'a Uuid, view: &'a CredentialView) -> Result<Vec<Cell<'a>>, ReadError> {
        let time = |at: Option<Timestamp>| Cell::Int(at.map(Timestamp::as_micros));
        Ok(vec![
            Cell::text(id.to_string()),
            Cell::text(view.tenant_id.to_string()),
            Cell::text(view.integration.as_str()),
            Cell::text(kind_name(view.kind)),
            Cell::text(view.status.as_str()),
            Cell::text(to_json(&view.scopes, "credential scopes")?),
            Cell::int(view.issued_at.as_micros()),
            time(view.expires_at),
            Cell::int(i64::from(view.refreshable)),
            Cell::text(app_name(view.app)),
            time(view.last_refreshed_at),
            Cell::optional(view.last_error.map(failure_name)),
            Cell::int(to_i64(view.consecutive_failures)),
            time(view.next_attempt_at),
            Cell::int(i64::from(view.key_version)),
            Cell::int(view.updated_at.as_micros()),
        ])
    }

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

fn reduce_credential(
    row: Option<CredentialView>,
    envelope: &Envelope,
    event: &Event,
) -> Option<CredentialView> {
    let at = envelope.recorded_at;
    match event {
        Event::CredentialStored(e) => {
            let Some(StreamId::Credential {
                tenant_id,
                integration,
            }) = StreamId::parse(&envelope.stream_id)
            else {
                return row;
            };
            Some(CredentialView {
                tenant_id,
                integration,
                kind: e.kind,
                status: "active".into(),
                scopes: e.scopes.clone(),
                issued_at: e.issued_at,
                expires_at: e.expires_at,
                refreshable: e.refreshable,
                app: e.app,
                last_refreshed_at: None,
                last_error: None,
                consecutive_failures: 0,
                next_attempt_at: None,
                key_version: e.key_version,
                updated_at: at,
            })
        }
        Event::CredentialRefreshed(e) => row.map(|mut c| {
            c.status = "active".into();
            c.scopes = e.scopes.clone();
            c.issued_at = e.issued_at;
            c.expires_at = e.expires_at;
            c.refreshable = e.refreshable;
            c.last_refreshed_at = Some(e.issued_at);
            c.last_error = None;
            c.consecutive_failures = 0;
            c.next_attempt_at = None;
            c.key_version = e.key_version;
            c.updated_at = at;
            c
        }),
        Event::CredentialRefreshFailed(e) => row.map(|mut c| {
            if c.status == "active" {
                c.status = "refresh_failing".into();
            }
            c.last_error = Some(e.reason);
            c.consecutive_failures = u64::from(e.attempt);
            c.next_attempt_at = Some(e.next_attempt_at);
            c.updated_at = at;
            c
        }),
        Event::CredentialNeedsReauth(_) => row.map(|mut c| {
            c.status = "needs_reauth".into();
            c.next_attempt_at = None;
            c.updated_at = at;
            c
        }),
        Event::CredentialRewrapped(e) => row.map(|mut c| {
            c.key_version = e.key_version;
            c.updated_at = at;
            c
        }),
        Event::CredentialRemoved(_) => None,
        _ => row,
    }
}

fn credential_from_row(row: &impl Columns) -> Result<CredentialView, ReadError> {
    let corrupt = |column: &str, value: &str| {
        ReadError::Corrupt(format!("rm_credentials.{column} {value}"))
    };
    let kind = row.text("kind")?;
    let app = row.text("app")?;
    let scopes = row.text("scopes")?;
    let last_error = row.opt_text("last_error")?;
    let version = row.int("key_version")?;
    let time = |column: &str| -> Result<Option<Timestamp>, ReadError> {
        Ok(row.opt_int(column)?.map(Timestamp::from_micros))
    };
    Ok(CredentialView {
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        integration: row.text("integration")?,
        kind: match kind.as_str() {
            "oauth" => CredentialKind::Oauth,
            "api_key" => CredentialKind::ApiKey,
            _ => return Err(corrupt("kind", &kind)),
        },
        status: row.text("status")?,
        scopes: serde_json::from_str(&scopes).map_err(|_| corrupt("scopes", &scopes))?,
        issued_at: Timestamp::from_micros(row.int("issued_at")?),
        expires_at: time("expires_at")?,
        refreshable: row.int("refreshable")? != 0,
        app: match app.as_str() {
            "platform" => OAuthAppSource::Platform,
            "tenant" => OAuthAppSource::Tenant,
            "none" => OAuthAppSource::None,
            _ => return Err(corrupt("app", &app)),
        },
        last_refreshed_at: time("last_refreshed_at")?,
        last_error: match last_error.as_deref() {
            None => None,
            Some("invalid_grant") => Some(RefreshFailure::InvalidGrant),
            Some("unreachable") => Some(RefreshFailure::Unreachable),
            Some("rejected") => Some(RefreshFailure::Rejected),
            Some(other) => return Err(corrupt("last_error", other)),
        },
        consecutive_failures: to_u64(row.int("consecutive_failures")?)?,
        next_attempt_at: time("next_attempt_at")?,
        key_version: u32::try_from(version)
            .map_err(|_| corrupt("key_version", &version.to_string()))?,
        updated_at: Timestamp::from_micros(row.int("updated_at")?),
    })
}

/// A tenant lists at most this many connections at once (one per integration).
pub const MAX_CREDENTIALS: u32 = 1_000;

impl ReadStore {
    /// The tenant's connections, by integration name (at most [`MAX_CREDENTIALS`]).
    pub async fn list_credentials(&self, tenant_id: Uuid) -> Result<Vec<CredentialView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_credentials WHERE tenant_id = $1 ORDER BY integration LIMIT {}",
            Credentials::WRITE.column_list(),
            MAX_CREDENTIALS
        )))
        .bind(tenant_id.to_string());
        let rows = self.tenant_rows(tenant_id, query).await?;
        rows.iter().map(credential_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, envelope, sample};

    #[test]
    fn a_connection_is_listed_from_its_store_through_failures_to_its_removal() {
        let stream = streams::credential(TENANT, "notion");
        let env = |v: u64| envelope(stream.clone(), v, v, 1_000 * v as i64);
        let stored = sample("credential.stored");
        let mut keys = Vec::new();
        Credentials::keys(&env(1), &stored, |key| keys.push(key));
        assert_eq!(keys, [stream_row_id(&stream)]);
        let row = reduce_credential(None, &env(1), &stored).unwrap();
        assert_eq!(row.integration, "notion");
        assert_eq!(row.status, "active");
        let row = reduce_credential(Some(row), &env(2), &sample("credential.refresh_failed"))
            .unwrap();
        assert_eq!(row.status, "refresh_failing");
        assert!(row.consecutive_failures > 0);
        assert!(row.last_error.is_some());
        let row =
            reduce_credential(Some(row), &env(3), &sample("credential.needs_reauth")).unwrap();
        assert_eq!(row.status, "needs_reauth");
        let row = reduce_credential(Some(row), &env(4), &sample("credential.refreshed")).unwrap();
        assert_eq!(row.status, "active");
        assert_eq!(row.consecutive_failures, 0);
        assert!(row.last_refreshed_at.is_some());
        assert_eq!(
            Credentials::cells(&keys[0], &row).unwrap().len(),
            Credentials::WRITE.columns.len()
        );
        assert_eq!(
            reduce_credential(Some(row), &env(5), &sample("credential.removed")),
            None
        );
        // An access is on another stream and changes no row.
        let mut none = Vec::new();
        let access = envelope(streams::credential_access(TENANT, "notion"), 1, 9, 9);
        Credentials::keys(&access, &sample("credential.accessed"), |key| none.push(key));
        assert!(none.is_empty());
    }
}
