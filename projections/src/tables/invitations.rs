//! `rm_invitations`: one row per invitation, for the invitations API's listings (by status,
//! with cursor paging), its reads, the slug-less accept alias (which tenant an invitation id
//! belongs to) and erasure (the invitations a user accepted).
//!
//! The address and name are stored as the log has them: sealed under the invitation's data key
//! (base64 text), never in clear; a revocation drops them (the key is destroyed anyway). The
//! status is the recorded one; "expired" is computed at query time from `expires_at` against
//! the caller's clock, since no event marks it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sqlx::AssertSqlSafe;
use tessera_domain::invitation::InvitationStatus;
use tessera_event_schemas::events::Event;
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, StreamId};
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid, sealed_column};
use crate::error::ReadError;
use crate::paging::{Cursor, page};
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_json};
use crate::store::{Dialect, MAX_PAGE, ReadStore};
use crate::views::{InvitationFilter, InvitationView, Page};

/// `rm_invitations`, keyed by invitation id.
#[derive(Debug)]
pub(crate) struct Invitations;

impl TableProjection for Invitations {
    const NAME: &'static str = "invitations";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_invitations",
        columns: &[
            Column::key("invitation_id"),
            Column::fixed("tenant_id", Kind::Text),
            Column::updated("status", Kind::Text),
            Column::updated("email", Kind::Text),
            Column::updated("name", Kind::Text),
            Column::fixed("roles", Kind::Json),
            Column::updated("expires_at", Kind::Int),
            Column::updated("accepted_user_id", Kind::Text),
            Column::updated("resent_count", Kind::Int),
            Column::fixed("created_at", Kind::Int),
            Column::updated("updated_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT invitation_id, tenant_id, status, email, name, roles, \
         expires_at, accepted_user_id, resent_count, created_at, updated_at \
         FROM rm_invitations WHERE invitation_id";

    type Key = Uuid;
    type Row = InvitationView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_invitations (\
                invitation_id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                status TEXT NOT NULL, \
                email TEXT, \
                name TEXT, \
                roles TEXT NOT NULL, \
                expires_at BIGINT NOT NULL, \
                accepted_user_id {key}, \
                resent_count BIGINT NOT NULL, \
                created_at BIGINT NOT NULL, \
                updated_at BIGINT NOT NULL)"
        ))
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_invitations_by_tenant \
             ON rm_invitations (tenant_id, created_at, invitation_id)",
        )
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_invitations_by_user \
             ON rm_invitations (tenant_id, accepted_user_id)",
        )
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if let Some(id) = invitation_key(envelope, event) {
            each(id);
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<InvitationView>,
        key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<InvitationView> {
        reduce_invitation(row, *key, envelope, event)
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, InvitationView), ReadError> {
        let view = invitation_from_row(row)?;
        Ok((view.invitation_id, view))
    }

    fn cells<'a>(
        id: &'a Uuid,
        view: &'a InvitationView,
    ) -> Result<Vec<Cell<'a>>, ReadError> {
        let sealed = |value: &Option<Vec<u8>>| {
            Cell::Text(value.as_ref().map(|v| STANDARD.encode(v).into()))
        };
        Ok(vec![
            Cell::text(id.to_string()),
            Cell::text(view.tenant_id.to_string()),
            Cell::text(view.status.as_str()),
            sealed(&view.email),
            sealed(&view.name),
            Cell::text(to_json(&view.roles, "invitation roles")?),
            Cell::int(view.expires_at.as_micros()),
            Cell::Text(view.accepted_user_id.map(|id| id.to_string().into())),
            Cell::int(i64::from(view.resent_count)),
            Cell::int(view.created_at.as_micros()),
            Cell::int(view.updated_at.as_micros()),
        ])
    }

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

/// The invitation an event changes: every invitation event lives on its invitation's stream.
fn invitation_key(envelope: &Envelope, event: &Event) -> Option<Uuid> {
    match event {
        Event::InvitationCreated(_)
        | Event::InvitationResent(_)
        | Event::InvitationAccepted(_)
        | Event::InvitationRevoked(_) => match StreamId::parse(&envelope.stream_id)? {
            StreamId::Invitation { invitation_id, .. } => Some(invitation_id),
            _ => None,
        },
        _ => None,
    }
}

fn reduce_invitation(
    row: Option<InvitationView>,
    invitation_id: Uuid,
    envelope: &Envelope,
    event: &Event,
) -> Option<InvitationView> {
    let at = envelope.recorded_at;
    let touch = |mut view: InvitationView, change: &dyn Fn(&mut InvitationView)| {
        change(&mut view);
        view.updated_at = at;
        view
    };
    match event {
        // An invitation is created once; the first creation stands.
        Event::InvitationCreated(_) if row.is_some() => row,
        Event::InvitationCreated(created) => Some(InvitationView {
            invitation_id,
            tenant_id: envelope.tenant_id,
            status: InvitationStatus::Pending,
            email: Some(created.email.expose().clone()),
            name: created.name.expose().clone(),
            roles: created.roles.clone(),
            expires_at: created.expires_at,
            accepted_user_id: None,
            resent_count: 0,
            created_at: at,
            updated_at: at,
        }),
        Event::InvitationResent(resent) => row.map(|view| {
            touch(view, &|view| {
                view.expires_at = resent.expires_at;
                view.resent_count = view.resent_count.saturating_add(1);
            })
        }),
        Event::InvitationAccepted(accepted) => row.map(|view| {
            touch(view, &|view| {
                view.status = InvitationStatus::Accepted;
                view.accepted_user_id = Some(accepted.user_id);
            })
        }),
        Event::InvitationRevoked(_) => row.map(|view| {
            touch(view, &|view| {
                view.status = InvitationStatus::Revoked;
                view.email = None;
                view.name = None;
            })
        }),
        _ => row,
    }
}

fn sealed_from(row: &impl Columns, column: &str) -> Result<Option<Vec<u8>>, ReadError> {
    sealed_column(row, "rm_invitations", column)
}

fn invitation_from_row(row: &impl Columns) -> Result<InvitationView, ReadError> {
    let status = row.text("status")?;
    let roles = row.text("roles")?;
    Ok(InvitationView {
        invitation_id: parse_uuid(&row.text("invitation_id")?)?,
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        status: InvitationStatus::parse(&status)
            .ok_or_else(|| ReadError::Corrupt(format!("rm_invitations.status {status}")))?,
        email: sealed_from(row, "email")?,
        name: sealed_from(row, "name")?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| ReadError::Corrupt(format!("rm_invitations.roles: {e}")))?,
        expires_at: Timestamp::from_micros(row.int("expires_at")?),
        accepted_user_id: row
            .opt_text("accepted_user_id")?
            .map(|id| parse_uuid(&id))
            .transpose()?,
        resent_count: u32::try_from(row.int("resent_count")?).unwrap_or(u32::MAX),
        created_at: Timestamp::from_micros(row.int("created_at")?),
        updated_at: Timestamp::from_micros(row.int("updated_at")?),
    })
}

impl ReadStore {
    /// One invitation of a tenant.
    pub async fn invitation(
        &self,
        tenant_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<Option<InvitationView>, ReadError> {
        let query = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_invitations WHERE invitation_id = $1 AND tenant_id = $2",
            Invitations::WRITE.column_list()
        )))
        .bind(invitation_id.to_string())
        .bind(tenant_id.to_string());
        let row = self.tenant_row(tenant_id, query).await?;
        row.map(|row| invitation_from_row(&row)).transpose()
    }

    /// The tenant an invitation belongs to (for links that name no tenant).
    pub async fn invitation_tenant(&self, invitation_id: Uuid) -> Result<Option<Uuid>, ReadError> {
        let row = sqlx::query("SELECT tenant_id FROM rm_invitations WHERE invitation_id = $1")
            .bind(invitation_id.to_string())
            .fetch_optional(&self.pool())
            .await?;
        row.map(|row| parse_uuid(&row.text("tenant_id")?)).transpose()
    }

    /// The invitations `user_id` accepted: whose data keys an erasure destroys.
    pub async fn invitations_accepted_by(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Vec<Uuid>, ReadError> {
        let query = sqlx::query(
            "SELECT invitation_id FROM rm_invitations \
             WHERE tenant_id = $1 AND accepted_user_id = $2",
        )
        .bind(tenant_id.to_string())
        .bind(user_id.to_string());
        let rows = self.tenant_rows(tenant_id, query).await?;
        rows.iter()
            .map(|row| parse_uuid(&row.text("invitation_id")?))
            .collect()
    }

    /// A tenant's invitations in creation order, `limit` (at most [`MAX_PAGE`]) at a time,
    /// narrowed by `filter`, where expired and pending are told apart at `now`.
    pub async fn list_invitations(
        &self,
        tenant_id: Uuid,
        filter: InvitationFilter,
        now: Timestamp,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<InvitationView>, ReadError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = cursor.map(Cursor::parse).transpose()?;
        let mut sql = format!(
            "SELECT {} FROM rm_invitations WHERE tenant_id = $1",
            Invitations::WRITE.column_list()
        );
        sql.push_str(match filter {
            InvitationFilter::All => "",
            InvitationFilter::Pending => " AND status = 'pending' AND expires_at > $2",
            InvitationFilter::Expired => " AND status = 'pending' AND expires_at <= $2",
            InvitationFilter::Accepted => " AND status = 'accepted' AND $2 = $2",
            InvitationFilter::Revoked => " AND status = 'revoked' AND $2 = $2",
        });
        let uses_now = filter != InvitationFilter::All;
        let next = if uses_now { 3 } else { 2 };
        if after.is_some() {
            sql.push_str(&format!(
                " AND (created_at > ${next} OR (created_at = ${next} AND invitation_id > ${}))",
                next + 1
            ));
        }
        sql.push_str(&format!(
            " ORDER BY created_at, invitation_id LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id.to_string());
        if uses_now {
            query = query.bind(now.as_micros());
        }
        if let Some(after) = &after {
            query = query.bind(after.created_at).bind(after.id.to_string());
        }
        let rows = self.tenant_rows(tenant_id, query).await?;
        let items = rows
            .iter()
            .map(invitation_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, limit, |view| Cursor {
            created_at: view.created_at.as_micros(),
            id: view.invitation_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, envelope, sample};

    const INVITATION: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_1a1a);

    fn fold(events: &[&str]) -> Option<InvitationView> {
        let stream = streams::invitation(TENANT, INVITATION);
        events.iter().enumerate().fold(None, |row, (i, event_type)| {
            let v = i as u64 + 1;
            let env = envelope(stream.clone(), v, v, 1_000 * v as i64);
            let event = sample(event_type);
            assert_eq!(invitation_key(&env, &event), Some(INVITATION));
            reduce_invitation(row, INVITATION, &env, &event)
        })
    }

    #[test]
    fn an_invitation_row_keeps_its_sealed_address_and_follows_resends_and_acceptance() {
        let view = fold(&["invitation.created", "invitation.resent", "invitation.accepted"])
            .unwrap();
        assert_eq!(view.tenant_id, TENANT);
        assert_eq!(view.status, InvitationStatus::Accepted);
        assert_eq!(view.email, Some(vec![43; 45]));
        assert_eq!(view.resent_count, 1);
        assert_eq!(
            view.expires_at,
            Timestamp::from_micros(1_796_691_200_000_000)
        );
        assert!(view.accepted_user_id.is_some());
        assert_eq!(view.created_at, Timestamp::from_micros(1_000));
        assert_eq!(view.updated_at, Timestamp::from_micros(3_000));
    }

    #[test]
    fn a_revoked_invitation_keeps_nothing_personal() {
        let view = fold(&["invitation.created", "invitation.revoked"]).unwrap();
        assert_eq!(view.status, InvitationStatus::Revoked);
        assert_eq!((view.email, view.name), (None, None));
        assert_eq!(view.roles, ["user", "editor"]);
    }
}
