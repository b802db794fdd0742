//! `rm_signing_keys`: the public half of every tenant's signing keys, for the JWKS and the
//! admin API.
//!
//! One row per `(tenant, kid)`, loaded and cached per tenant: a tenant has a few keys (an
//! active one per algorithm, its default and the RS256 key for ID tokens, and those rotated
//! out but not yet retired), and one lookup by the key's prefix
//! finds them all. The sealed private key an event carries is never copied into a row.

use sqlx::AssertSqlSafe;
use tessera_event_schemas::Envelope;
use tessera_event_schemas::events::{Event, PublicJwkV1, SigningAlg, SigningKeyV1};
use tessera_event_schemas::primitives::Timestamp;
use uuid::Uuid;

use tessera_domain::tenant::keeps_rs256;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_json};
use crate::store::{Dialect, ReadStore};
use crate::views::{SigningKeyStatus, SigningKeyView};

/// `rm_signing_keys`, keyed by `(tenant, kid)` and grouped by tenant.
#[derive(Debug)]
pub(crate) struct SigningKeys;

impl TableProjection for SigningKeys {
    const NAME: &'static str = "signing_keys";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_signing_keys",
        columns: &[
            Column::key("tenant_id"),
            Column::key("kid"),
            Column::updated("alg", Kind::Text),
            Column::updated("status", Kind::Text),
            Column::updated("created_at", Kind::Int),
            Column::updated("retired_at", Kind::Int),
            Column::updated("public_jwk", Kind::Json),
        ],
    };
    const SELECT: &'static str = "SELECT tenant_id, kid, alg, status, created_at, \
         retired_at, public_jwk FROM rm_signing_keys WHERE tenant_id";
    // A tenant has a few keys: its default and RS256 ones, and those rotated out but not yet
    // retired.
    const ROWS_PER_GROUP: usize = 4;

    type Key = (Uuid, String);
    type Row = SigningKeyView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_signing_keys (\
                tenant_id {key} NOT NULL, \
                kid {key} NOT NULL, \
                alg TEXT NOT NULL, \
                status TEXT NOT NULL, \
                created_at BIGINT NOT NULL, \
                retired_at BIGINT, \
                public_jwk TEXT NOT NULL, \
                PRIMARY KEY (tenant_id, kid))"
        ))
    }

    /// The `(tenant, kid)` rows an event changes: a rotation changes the new key and the one
    /// it replaces.
    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut((Uuid, String))) {
        each_kid(event, |kid| each((envelope.tenant_id, kid.to_owned())));
    }

    /// The envelope's tenant, for every event that changes one of its keys; without allocating
    /// each key's kid.
    fn groups(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        each_kid(event, |_| each(envelope.tenant_id));
    }

    fn group_of((tenant, _): &(Uuid, String)) -> Uuid {
        *tenant
    }

    fn reduce(
        row: Option<SigningKeyView>,
        (_, kid): &(Uuid, String),
        envelope: &Envelope,
        event: &Event,
    ) -> Option<SigningKeyView> {
        reduce_signing_key(row, kid, envelope, event)
    }

    fn from_row(row: &impl Columns) -> Result<((Uuid, String), SigningKeyView), ReadError> {
        let (tenant_id, key) = signing_key_from_row(row)?;
        Ok(((tenant_id, key.kid.clone()), key))
    }

    fn cells<'a>(
        (tenant_id, kid): &'a (Uuid, String),
        key: &'a SigningKeyView,
    ) -> Result<Vec<Cell<'a>>, ReadError> {
        Ok(vec![
            Cell::text(tenant_id.to_string()),
            Cell::text(kid.as_str()),
            Cell::text(key.alg.as_str()),
            Cell::text(key.status.as_str()),
            Cell::int(key.created_at.as_micros()),
            Cell::Int(key.retired_at.map(|t| t.as_micros())),
            Cell::text(to_json(&key.public_jwk, "public jwk")?),
        ])
    }

    fn key_cells((tenant_id, kid): &(Uuid, String)) -> Vec<Cell<'_>> {
        vec![Cell::text(tenant_id.to_string()), Cell::text(kid.as_str())]
    }
}

/// Calls `each` with the kid of every key `event` changes (of the envelope's tenant).
fn each_kid<'e>(event: &'e Event, mut each: impl FnMut(&'e str)) {
    match event {
        Event::TenantCreated(created) => each(created.signing_key.kid.as_str()),
        Event::SigningKeyAdded(added) => each(added.key.kid.as_str()),
        Event::SigningKeyRotated(rotated) => {
            each(rotated.key.kid.as_str());
            each(rotated.previous_kid.as_str());
        }
        Event::SigningKeyRetired(retired) => each(retired.kid.as_str()),
        _ => {}
    }
}

/// `rm_signing_keys`: the row of key `kid` of the envelope's tenant.
fn reduce_signing_key(
    row: Option<SigningKeyView>,
    kid: &str,
    envelope: &Envelope,
    event: &Event,
) -> Option<SigningKeyView> {
    match event {
        Event::TenantCreated(created) if created.signing_key.kid == kid => {
            Some(new_active_key(&created.signing_key))
        }
        Event::SigningKeyRotated(rotated) if rotated.key.kid == kid => {
            Some(new_active_key(&rotated.key))
        }
        Event::SigningKeyAdded(added) if added.key.kid == kid => Some(new_active_key(&added.key)),
        Event::SigningKeyRotated(rotated) if rotated.previous_kid == kid => {
            row.map(|mut key| {
                // Only the active key steps down to published; a key already retired stays out
                // of the JWKS. An RS256 key replaced by a key of another algorithm (a default
                // moved away from RS256) stays active as the tenant's ID token key, as the
                // domain's ring has it.
                if key.status == SigningKeyStatus::Active && !keeps_rs256(key.alg, rotated.key.alg) {
                    key.status = SigningKeyStatus::Published;
                }
                key
            })
        }
        Event::SigningKeyRetired(retired) if retired.kid == kid => row.map(|mut key| {
            if key.status != SigningKeyStatus::Retired {
                key.status = SigningKeyStatus::Retired;
                key.retired_at = Some(envelope.recorded_at);
            }
            key
        }),
        _ => row,
    }
}

fn new_active_key(key: &SigningKeyV1) -> SigningKeyView {
    // The sealed private key is deliberately not copied: read models hold public data only.
    SigningKeyView {
        kid: key.kid.clone(),
        alg: key.alg,
        status: SigningKeyStatus::Active,
        created_at: key.created_at,
        retired_at: None,
        public_jwk: key.public_jwk.clone(),
    }
}

fn signing_key_from_row(row: &impl Columns) -> Result<(Uuid, SigningKeyView), ReadError> {
    let tenant_id = parse_uuid(&row.text("tenant_id")?)?;
    let alg = row.text("alg")?;
    let status = row.text("status")?;
    let jwk = row.text("public_jwk")?;
    let key = SigningKeyView {
        kid: row.text("kid")?,
        alg: SigningAlg::parse(&alg)
            .ok_or_else(|| ReadError::Corrupt(format!("unknown signing alg {alg}")))?,
        status: SigningKeyStatus::parse(&status)
            .ok_or_else(|| ReadError::Corrupt(format!("unknown key status {status}")))?,
        created_at: Timestamp::from_micros(row.int("created_at")?),
        retired_at: row.opt_int("retired_at")?.map(Timestamp::from_micros),
        public_jwk: serde_json::from_str::<PublicJwkV1>(&jwk)
            .map_err(|e| ReadError::Corrupt(format!("rm_signing_keys.public_jwk: {e}")))?,
    };
    Ok((tenant_id, key))
}

impl ReadStore {
    /// A tenant's signing keys, oldest first (then by kid).
    pub async fn signing_keys(&self, tenant_id: Uuid) -> Result<Vec<SigningKeyView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "{} = $1 ORDER BY created_at, kid",
            SigningKeys::SELECT
        )))
        .bind(tenant_id.to_string());
        let rows = self.tenant_rows(tenant_id, query).await?;
        rows.iter()
            .map(|row| signing_key_from_row(row).map(|(_, key)| key))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::samples;
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, envelope, sample, tenant_env};

    fn keys_of(envelope: &Envelope, event: &Event) -> Vec<(Uuid, String)> {
        let mut keys = Vec::new();
        SigningKeys::keys(envelope, event, |key| keys.push(key));
        keys
    }

    #[test]
    fn rotation_publishes_the_old_key_and_retirement_retires_it() {
        let created = sample("tenant.created");
        let rotated = sample("tenant.signing_key_rotated");
        let retired = sample("tenant.signing_key_retired");
        let old = "k-2026-11-23-a";
        let new = "k-2026-11-24-b";
        let e1 = tenant_env(1, 1_000);
        let e2 = tenant_env(2, 2_000);
        let e3 = tenant_env(3, 3_000);

        let old_key = reduce_signing_key(None, old, &e1, &created).unwrap();
        assert_eq!(old_key.status, SigningKeyStatus::Active);
        assert_eq!(old_key.alg, SigningAlg::ES256);
        assert_eq!(
            old_key.created_at,
            Timestamp::from_micros(1_795_000_000_000_000)
        );

        let old_key = reduce_signing_key(Some(old_key), old, &e2, &rotated).unwrap();
        assert_eq!(old_key.status, SigningKeyStatus::Published);
        let new_key = reduce_signing_key(None, new, &e2, &rotated).unwrap();
        assert_eq!(new_key.status, SigningKeyStatus::Active);
        assert_eq!(new_key.alg, SigningAlg::EdDSA);

        let old_key = reduce_signing_key(Some(old_key), old, &e3, &retired).unwrap();
        assert_eq!(old_key.status, SigningKeyStatus::Retired);
        assert_eq!(old_key.retired_at, Some(Timestamp::from_micros(3_000)));
        let untouched = reduce_signing_key(Some(new_key.clone()), new, &e3, &retired);
        assert_eq!(untouched, Some(new_key));
    }

    #[test]
    fn rotation_names_both_the_new_and_the_previous_key() {
        let rotated = sample("tenant.signing_key_rotated");
        let keys = keys_of(&tenant_env(2, 2), &rotated);
        assert_eq!(
            keys,
            vec![
                (TENANT, "k-2026-11-24-b".to_owned()),
                (TENANT, "k-2026-11-23-a".to_owned())
            ]
        );
    }

    #[test]
    fn the_groups_of_an_event_are_the_groups_of_its_keys() {
        for event in samples::current() {
            let env = envelope(streams::tenant(TENANT), 1, 1, 1);
            let mut groups = Vec::new();
            SigningKeys::groups(&env, &event, |group| groups.push(group));
            let of_keys: Vec<Uuid> = keys_of(&env, &event)
                .iter()
                .map(SigningKeys::group_of)
                .collect();
            assert_eq!(groups, of_keys, "{}", event.event_type());
        }
    }

    #[test]
    fn reservations_touch_no_signing_key() {
        for event in [
            sample("reservation.claimed"),
            sample("reservation.released"),
        ] {
            let env = envelope(streams::reservation("slug", "acme"), 1, 1, 1);
            assert!(keys_of(&env, &event).is_empty());
        }
    }
}
