//! `rm_users`: one row per user of a tenant, for the admin API's listings and lookups.
//!
//! Personal fields are stored as they are in the log: sealed under the user's data key
//! (base64 text of `nonce || ciphertext || tag`), never in clear; the API opens them for
//! display. Beside them, the keyed hash of the normalised address (for exact-match lookups
//! without the address) and the non-personal fields in clear: tenant, status, roles, whether
//! the address is verified, password facts and times. When a user is erased the row keeps only
//! those: the ciphertext and the hash are dropped (the store zeroes what it deletes, and
//! [`ReadStore::scrub`] is run after an erasure).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sqlx::AssertSqlSafe;
use tessera_domain::user::UserStatus;
use tessera_event_schemas::events::Event;
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, Hash32, StreamId};
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid, sealed_column};
use crate::error::ReadError;
use crate::paging::{Cursor, page};
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_json};
use crate::store::{Dialect, MAX_PAGE, ReadStore};
use crate::views::{Page, UserFilter, UserView};

/// `rm_users`, keyed by user id.
#[derive(Debug)]
pub(crate) struct Users;

impl TableProjection for Users {
    const NAME: &'static str = "users";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_users",
        columns: &[
            Column::key("user_id"),
            Column::fixed("tenant_id", Kind::Text),
            Column::updated("status", Kind::Text),
            Column::updated("email_hash", Kind::Text),
            Column::updated("email", Kind::Text),
            Column::updated("email_verified", Kind::Int),
            Column::updated("name", Kind::Text),
            Column::updated("given_name", Kind::Text),
            Column::updated("family_name", Kind::Text),
            Column::updated("roles", Kind::Json),
            Column::updated("has_password", Kind::Int),
            Column::updated("password_temporary", Kind::Int),
            Column::updated("password_changed_at", Kind::Int),
            Column::fixed("created_at", Kind::Int),
            Column::updated("updated_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT user_id, tenant_id, status, email_hash, email, \
         email_verified, name, given_name, family_name, roles, has_password, \
         password_temporary, password_changed_at, created_at, updated_at \
         FROM rm_users WHERE user_id";

    type Key = Uuid;
    type Row = UserView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_users (\
                user_id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                status TEXT NOT NULL, \
                email_hash {key}, \
                email TEXT, \
                email_verified BIGINT NOT NULL, \
                name TEXT, \
                given_name TEXT, \
                family_name TEXT, \
                roles TEXT NOT NULL, \
                has_password BIGINT NOT NULL, \
                password_temporary BIGINT NOT NULL, \
                password_changed_at BIGINT, \
                created_at BIGINT NOT NULL, \
                updated_at BIGINT NOT NULL)"
        ))
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_users_by_tenant \
             ON rm_users (tenant_id, created_at, user_id)",
        )
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_users_by_email ON rm_users (tenant_id, email_hash)",
        )
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if let Some(user_id) = user_key(envelope, event) {
            each(user_id);
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<UserView>,
        _key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<UserView> {
        reduce_user(row, envelope, event)
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, UserView), ReadError> {
        let user = user_from_row(row)?;
        Ok((user.user_id, user))
    }

    fn cells<'a>(id: &'a Uuid, user: &'a UserView) -> Result<Vec<Cell<'a>>, ReadError> {
        let sealed = |value: &Option<Vec<u8>>| Cell::Text(value.as_ref().map(|v| STANDARD.encode(v).into()));
        Ok(vec![
            Cell::text(id.to_string()),
            Cell::text(user.tenant_id.to_string()),
            Cell::text(user.status.as_str()),
            Cell::Text(user.email_hash.map(|hash| hash.to_hex().into())),
            sealed(&user.email),
            Cell::int(i64::from(user.email_verified)),
            sealed(&user.name),
            sealed(&user.given_name),
            sealed(&user.family_name),
            Cell::text(to_json(&user.roles, "user roles")?),
            Cell::int(i64::from(user.has_password)),
            Cell::int(i64::from(user.password_temporary)),
            Cell::Int(user.password_changed_at.map(Timestamp::as_micros)),
            Cell::int(user.created_at.as_micros()),
            Cell::int(user.updated_at.as_micros()),
        ])
    }

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

/// Whether `event` changes a row of `rm_users`: what a cache of user rows must not outlive
/// ([`crate::ProjectionRuntime::users_changed_at`]).
pub(crate) fn changes_a_user(envelope: &Envelope, event: &Event) -> bool {
    user_key(envelope, event).is_some()
}

/// The user row an event changes: `user.created` names its user, the others are read from the
/// stream id (`{tenant}/user/{user}`).
fn user_key(envelope: &Envelope, event: &Event) -> Option<Uuid> {
    match event {
        Event::UserCreated(created) => Some(created.user_id),
        Event::UserUpdated(_)
        | Event::UserEmailChanged(_)
        | Event::UserDisabled(_)
        | Event::UserEnabled(_)
        | Event::UserPasswordSet(_)
        | Event::UserEmailVerified(_)
        | Event::UserErased(_) => match StreamId::parse(&envelope.stream_id)? {
            StreamId::User { user_id, .. } => Some(user_id),
            _ => None,
        },
        _ => None,
    }
}

/// `rm_users`: one row per user. Every change moves `updated_at`; an erasure drops everything
/// personal (and the address's hash) and keeps the rest, so that the user still lists, as
/// erased.
fn reduce_user(row: Option<UserView>, envelope: &Envelope, event: &Event) -> Option<UserView> {
    let at = envelope.recorded_at;
    let change = |mut user: UserView, change: &dyn Fn(&mut UserView)| {
        if user.status != UserStatus::Erased {
            change(&mut user);
        }
        user.updated_at = at;
        user
    };
    match event {
        // A user is created once; the first creation stands.
        Event::UserCreated(_) if row.is_some() => row,
        Event::UserCreated(created) => Some(UserView {
            user_id: created.user_id,
            tenant_id: envelope.tenant_id,
            status: UserStatus::Active,
            email_hash: Some(*created.email_hash.expose()),
            email: Some(created.email.expose().clone()),
            email_verified: created.email_verified,
            name: created.name.expose().clone(),
            given_name: created.given_name.expose().clone(),
            family_name: created.family_name.expose().clone(),
            roles: created.roles.clone(),
            has_password: false,
            password_temporary: false,
            password_changed_at: None,
            created_at: at,
            updated_at: at,
        }),
        Event::UserUpdated(updated) => row.map(|user| {
            change(user, &|user| {
                user.name.clone_from(updated.name.expose());
                user.given_name.clone_from(updated.given_name.expose());
                user.family_name.clone_from(updated.family_name.expose());
                user.roles.clone_from(&updated.roles);
            })
        }),
        Event::UserEmailChanged(changed) => row.map(|user| {
            change(user, &|user| {
                user.email = Some(changed.email.expose().clone());
                user.email_hash = Some(*changed.email_hash.expose());
                user.email_verified = false;
            })
        }),
        Event::UserEmailVerified(_) => {
            row.map(|user| change(user, &|user| user.email_verified = true))
        }
        Event::UserDisabled(_) => {
            row.map(|user| change(user, &|user| user.status = UserStatus::Disabled))
        }
        Event::UserEnabled(_) => {
            row.map(|user| change(user, &|user| user.status = UserStatus::Active))
        }
        Event::UserPasswordSet(set) => row.map(|user| {
            change(user, &|user| {
                user.has_password = true;
                user.password_temporary = set.temporary;
                user.password_changed_at = Some(set.set_at);
            })
        }),
        Event::UserErased(_) => row.map(|user| {
            let mut user = change(user, &|_| {});
            user.status = UserStatus::Erased;
            user.email_hash = None;
            user.email = None;
            user.name = None;
            user.given_name = None;
            user.family_name = None;
            user.has_password = false;
            user.password_temporary = false;
            user
        }),
        _ => row,
    }
}

fn sealed_from(row: &impl Columns, column: &str) -> Result<Option<Vec<u8>>, ReadError> {
    sealed_column(row, "rm_users", column)
}

fn user_from_row(row: &impl Columns) -> Result<UserView, ReadError> {
    let status = row.text("status")?;
    let roles = row.text("roles")?;
    let email_hash = row
        .opt_text("email_hash")?
        .map(|hex| {
            Hash32::from_hex(&hex)
                .ok_or_else(|| ReadError::Corrupt(format!("rm_users.email_hash {hex}")))
        })
        .transpose()?;
    Ok(UserView {
        user_id: parse_uuid(&row.text("user_id")?)?,
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        status: UserStatus::parse(&status)
            .ok_or_else(|| ReadError::Corrupt(format!("rm_users.status {status}")))?,
        email_hash,
        email: sealed_from(row, "email")?,
        email_verified: row.int("email_verified")? != 0,
        name: sealed_from(row, "name")?,
        given_name: sealed_from(row, "given_name")?,
        family_name: sealed_from(row, "family_name")?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| ReadError::Corrupt(format!("rm_users.roles: {e}")))?,
        has_password: row.int("has_password")? != 0,
        password_temporary: row.int("password_temporary")? != 0,
        password_changed_at: row
            .opt_int("password_changed_at")?
            .map(Timestamp::from_micros),
        created_at: Timestamp::from_micros(row.int("created_at")?),
        updated_at: Timestamp::from_micros(row.int("updated_at")?),
    })
}

/// `%"role"%` for a `LIKE` over the roles' JSON text, with `LIKE`'s wildcards escaped (a role
/// may contain `_`).
fn role_pattern(role: &str) -> String {
    let escaped = role
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%\"{escaped}\"%")
}

impl ReadStore {
    /// One user of a tenant, erased ones included.
    pub async fn user(&self, tenant_id: Uuid, user_id: Uuid) -> Result<Option<UserView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_users WHERE user_id = $1 AND tenant_id = $2",
            Users::WRITE.column_list()
        )))
        .bind(user_id.to_string())
        .bind(tenant_id.to_string());
        let row = self.tenant_row(tenant_id, query).await?;
        row.map(|row| user_from_row(&row)).transpose()
    }

    /// A tenant's users in creation order, `limit` (at most [`MAX_PAGE`]) at a time, narrowed
    /// by `filter`: a status, a role, and an address by its keyed hash (exact match).
    pub async fn list_users(
        &self,
        tenant_id: Uuid,
        filter: &UserFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<UserView>, ReadError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = cursor.map(Cursor::parse).transpose()?;
        let mut sql = format!(
            "SELECT {} FROM rm_users WHERE tenant_id = $1",
            Users::WRITE.column_list()
        );
        let mut binds: Vec<String> = vec![tenant_id.to_string()];
        let mut next = |sql: &mut String, condition: &str, value: String| {
            binds.push(value);
            sql.push_str(&condition.replace('?', &format!("${}", binds.len())));
        };
        if let Some(status) = filter.status {
            next(&mut sql, " AND status = ?", status.as_str().to_owned());
        }
        if let Some(hash) = &filter.email_hash {
            next(&mut sql, " AND email_hash = ?", hash.to_hex());
        }
        if let Some(role) = &filter.role {
            next(&mut sql, " AND roles LIKE ? ESCAPE '\\'", role_pattern(role));
        }
        let mut created_after = None;
        if let Some(after) = &after {
            let at = binds.len() + 1;
            sql.push_str(&format!(
                " AND (created_at > ${at} OR (created_at = ${at} AND user_id > ${}))",
                at + 1
            ));
            created_after = Some(after.created_at);
        }
        sql.push_str(&format!(
            " ORDER BY created_at, user_id LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = query.bind(bind);
        }
        if let (Some(after), Some(created_at)) = (&after, created_after) {
            query = query.bind(created_at).bind(after.id.to_string());
        }
        let rows = self.tenant_rows(tenant_id, query).await?;
        let items = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, limit, |user| Cursor {
            created_at: user.created_at.as_micros(),
            id: user.user_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, USER, envelope, sample};

    fn fold(events: &[&str]) -> Option<UserView> {
        let stream = streams::user(TENANT, USER);
        events.iter().enumerate().fold(None, |row, (i, event_type)| {
            let v = i as u64 + 1;
            let env = envelope(stream.clone(), v, v, 1_000 * v as i64);
            let event = sample(event_type);
            assert_eq!(user_key(&env, &event), Some(USER));
            reduce_user(row, &env, &event)
        })
    }

    #[test]
    fn a_user_row_keeps_sealed_fields_and_clear_facts() {
        let user = fold(&["user.created", "user.password_set"]).unwrap();
        assert_eq!(user.tenant_id, TENANT);
        assert_eq!(user.status, UserStatus::Active);
        assert_eq!(user.email, Some(vec![21; 40]));
        assert_eq!(user.email_hash, Some(Hash32([22; 32])));
        assert_eq!(user.roles, ["user", "editor"]);
        assert!(user.has_password && user.password_temporary);
        assert_eq!(user.created_at, Timestamp::from_micros(1_000));
        assert_eq!(user.updated_at, Timestamp::from_micros(2_000));
        let cells = Users::cells(&USER, &user).unwrap();
        let Cell::Text(Some(email)) = &cells[4] else {
            panic!("{cells:?}")
        };
        assert_eq!(STANDARD.decode(email.as_bytes()).unwrap(), vec![21; 40]);
    }

    #[test]
    fn changes_fold_into_the_row_and_a_new_address_is_unverified() {
        let user = fold(&[
            "user.created",
            "user.updated",
            "user.email_changed",
            "user.disabled",
        ])
        .unwrap();
        assert_eq!(user.family_name, Some(vec![26; 37]));
        assert_eq!(user.roles, ["tenant:admin"]);
        assert_eq!(user.email, Some(vec![27; 44]));
        assert!(!user.email_verified);
        assert_eq!(user.status, UserStatus::Disabled);
        let enabled = fold(&["user.created", "user.disabled", "user.enabled"]).unwrap();
        assert_eq!(enabled.status, UserStatus::Active);
    }

    #[test]
    fn an_erased_user_keeps_nothing_personal_and_changes_no_more() {
        let erased = fold(&["user.created", "user.password_set", "user.erased", "user.updated"])
            .unwrap();
        assert_eq!(erased.status, UserStatus::Erased);
        assert_eq!(
            (&erased.email, &erased.name, &erased.given_name, &erased.family_name),
            (&None, &None, &None, &None)
        );
        assert_eq!(erased.email_hash, None);
        assert!(!erased.has_password);
        assert_eq!(erased.roles, ["user", "editor"]);
    }

    #[test]
    fn role_patterns_escape_like_wildcards() {
        assert_eq!(role_pattern("tenant:admin"), "%\"tenant:admin\"%");
        assert_eq!(role_pattern("a_b%"), "%\"a\\_b\\%\"%");
    }
}
