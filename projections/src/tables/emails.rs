//! `rm_emails`: the outbox's state, one row per mail (ADR 0004 §"The outbox"): its template,
//! whether it is still to be sent, how many attempts it had and when the next is due. The
//! delivery loop (`api::mail`) asks it which mails are due; because it is a read model folded
//! from the log like the others, it survives restarts and kill -9, and a rebuild gives it back.
//!
//! Nothing personal: the recipient, the link and the message stay sealed on the mail's
//! `email.queued`, which the delivery loop reads from the log.

use sqlx::AssertSqlSafe;
use tessera_event_schemas::events::{EmailTemplate, Event};
use tessera_event_schemas::primitives::Timestamp;
use tessera_event_schemas::{Envelope, StreamId};
use uuid::Uuid;

use super::TableProjection;
use crate::decode::{Columns, parse_uuid};
use crate::error::ReadError;
use crate::schema::TableDdl;
use crate::sql::{Cell, Column, Kind, TableWrite, to_i64};
use crate::store::{Dialect, ReadStore};

/// Where a mail is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailStatus {
    /// Queued, or failed and to be tried again at `next_attempt_at`.
    Pending,
    /// An SMTP server accepted it (or the embedded default wrote it).
    Sent,
    /// Failed for good: a permanent rejection, an erased person, or attempts exhausted.
    Failed,
}

impl EmailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => EmailStatus::Pending,
            "sent" => EmailStatus::Sent,
            "failed" => EmailStatus::Failed,
            _ => return None,
        })
    }
}

/// A mail of the outbox, as `rm_emails` holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailView {
    pub email_id: Uuid,
    pub tenant_id: Uuid,
    pub template: EmailTemplate,
    pub status: EmailStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (`None` once the mail is sent or failed for good).
    pub next_attempt_at: Option<Timestamp>,
    /// When it was queued: the first attempt's reference for giving up.
    pub queued_at: Timestamp,
    /// The global position of its `email.queued`: mails due at once go in log order.
    pub queued_position: u64,
    pub updated_at: Timestamp,
}

/// `rm_emails`, keyed by email id.
#[derive(Debug)]
pub(crate) struct Emails;

impl TableProjection for Emails {
    const NAME: &'static str = "emails";
    const WRITE: &'static TableWrite = &TableWrite {
        table: "rm_emails",
        columns: &[
            Column::key("email_id"),
            Column::fixed("tenant_id", Kind::Text),
            Column::fixed("template", Kind::Text),
            Column::updated("status", Kind::Text),
            Column::updated("attempts", Kind::Int),
            Column::updated("next_attempt_at", Kind::Int),
            Column::fixed("queued_at", Kind::Int),
            Column::fixed("queued_position", Kind::Int),
            Column::updated("updated_at", Kind::Int),
        ],
    };
    const SELECT: &'static str = "SELECT email_id, tenant_id, template, status, attempts, \
         next_attempt_at, queued_at, queued_position, updated_at FROM rm_emails WHERE email_id";

    type Key = Uuid;
    type Row = EmailView;
    type Group = Uuid;

    fn ddl(dialect: Dialect) -> TableDdl {
        let key = dialect.key_type();
        TableDdl::new(format!(
            "CREATE TABLE IF NOT EXISTS rm_emails (\
                email_id {key} PRIMARY KEY, \
                tenant_id {key} NOT NULL, \
                template TEXT NOT NULL, \
                status TEXT NOT NULL, \
                attempts BIGINT NOT NULL, \
                next_attempt_at BIGINT, \
                queued_at BIGINT NOT NULL, \
                queued_position BIGINT NOT NULL, \
                updated_at BIGINT NOT NULL)"
        ))
        .lookup(
            "CREATE INDEX IF NOT EXISTS rm_emails_due \
             ON rm_emails (status, next_attempt_at, queued_position)",
        )
    }

    fn keys(envelope: &Envelope, event: &Event, mut each: impl FnMut(Uuid)) {
        if !matches!(
            event,
            Event::EmailQueued(_) | Event::EmailSent(_) | Event::EmailFailed(_)
        ) {
            return;
        }
        if let Some(StreamId::Email { email_id, .. }) = StreamId::parse(&envelope.stream_id) {
            each(email_id);
        }
    }

    fn group_of(key: &Uuid) -> Uuid {
        *key
    }

    fn reduce(
        row: Option<EmailView>,
        key: &Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Option<EmailView> {
        let at = envelope.recorded_at;
        match event {
            // A mail is queued once; the first stands.
            Event::EmailQueued(_) if row.is_some() => row,
            Event::EmailQueued(queued) => Some(EmailView {
                email_id: *key,
                tenant_id: envelope.tenant_id,
                template: queued.template,
                status: EmailStatus::Pending,
                attempts: 0,
                next_attempt_at: Some(at),
                queued_at: at,
                queued_position: envelope.global_position,
                updated_at: at,
            }),
            Event::EmailSent(sent) => row.map(|mail| EmailView {
                status: EmailStatus::Sent,
                attempts: sent.attempt.max(mail.attempts),
                next_attempt_at: None,
                updated_at: at,
                ..mail
            }),
            Event::EmailFailed(failed) => row.map(|mail| {
                // A mail already sent stays sent, whatever a late attempt of another node says.
                if mail.status == EmailStatus::Sent {
                    return mail;
                }
                let retry = failed.retry_at.filter(|_| !failed.permanent);
                EmailView {
                    status: match retry {
                        Some(_) => EmailStatus::Pending,
                        None => EmailStatus::Failed,
                    },
                    attempts: failed.attempt.max(mail.attempts),
                    next_attempt_at: retry,
                    updated_at: at,
                    ..mail
                }
            }),
            _ => row,
        }
    }

    fn from_row(row: &impl Columns) -> Result<(Uuid, EmailView), ReadError> {
        let view = email_from_row(row)?;
        Ok((view.email_id, view))
    }

    fn cells<'a>(id: &'a Uuid, mail: &'a EmailView) -> Result<Vec<Cell<'a>>, ReadError> {
        Ok(vec![
            Cell::text(id.to_string()),
            Cell::text(mail.tenant_id.to_string()),
            Cell::text(mail.template.as_str()),
            Cell::text(mail.status.as_str()),
            Cell::int(i64::from(mail.attempts)),
            Cell::Int(mail.next_attempt_at.map(Timestamp::as_micros)),
            Cell::int(mail.queued_at.as_micros()),
            Cell::int(to_i64(mail.queued_position)),
            Cell::int(mail.updated_at.as_micros()),
        ])
    }

    fn key_cells(id: &Uuid) -> Vec<Cell<'_>> {
        vec![Cell::text(id.to_string())]
    }
}

fn email_from_row(row: &impl Columns) -> Result<EmailView, ReadError> {
    let corrupt = |column: &str, value: &str| ReadError::Corrupt(format!("rm_emails.{column} {value}"));
    let template = row.text("template")?;
    let status = row.text("status")?;
    let count = |column: &str| -> Result<i64, ReadError> { row.int(column) };
    Ok(EmailView {
        email_id: parse_uuid(&row.text("email_id")?)?,
        tenant_id: parse_uuid(&row.text("tenant_id")?)?,
        template: match template.as_str() {
            "invitation" => EmailTemplate::Invitation,
            "password_reset" => EmailTemplate::PasswordReset,
            "email_verification" => EmailTemplate::EmailVerification,
            _ => return Err(corrupt("template", &template)),
        },
        status: EmailStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        attempts: u32::try_from(count("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: row.opt_int("next_attempt_at")?.map(Timestamp::from_micros),
        queued_at: Timestamp::from_micros(count("queued_at")?),
        queued_position: u64::try_from(count("queued_position")?).unwrap_or_default(),
        updated_at: Timestamp::from_micros(count("updated_at")?),
    })
}

impl ReadStore {
    /// Up to `limit` mails still to send whose next attempt is due at `now`, the longest due
    /// first (then in log order).
    pub async fn due_emails(&self, now: Timestamp, limit: u32) -> Result<Vec<EmailView>, ReadError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM rm_emails WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, queued_position LIMIT $2",
            Emails::WRITE.column_list()
        )))
        .bind(now.as_micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool())
        .await?;
        rows.iter().map(email_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use tessera_event_schemas::events::{EmailFailedV1, EmailSentV1};
    use tessera_event_schemas::streams;

    use super::*;
    use crate::tables::testing::{TENANT, envelope, sample};

    const MAIL: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00e1);

    fn fold(events: &[Event]) -> Option<EmailView> {
        (1..).zip(events).fold(None, |row, (v, event)| {
            let env = envelope(streams::email(TENANT, MAIL), v, 10 + v, 1_000 * v as i64);
            let mut keys = Vec::new();
            Emails::keys(&env, event, |key| keys.push(key));
            assert_eq!(keys, [MAIL]);
            Emails::reduce(row, &MAIL, &env, event)
        })
    }

    fn failed(attempt: u32, retry_at: Option<i64>, permanent: bool) -> Event {
        Event::EmailFailed(EmailFailedV1 {
            attempt,
            reason: "connection refused".into(),
            permanent,
            retry_at: retry_at.map(Timestamp::from_micros),
        })
    }

    #[test]
    fn a_queued_mail_is_due_at_once_then_at_each_retry_until_it_is_sent() {
        let queued = sample("email.queued");
        let mail = fold(std::slice::from_ref(&queued)).unwrap();
        assert_eq!(mail.status, EmailStatus::Pending);
        assert_eq!(mail.next_attempt_at, Some(Timestamp::from_micros(1_000)));
        assert_eq!(mail.queued_position, 11);

        let retried = fold(&[queued.clone(), failed(1, Some(9_000), false)]).unwrap();
        assert_eq!(retried.status, EmailStatus::Pending);
        assert_eq!(retried.attempts, 1);
        assert_eq!(retried.next_attempt_at, Some(Timestamp::from_micros(9_000)));

        let sent = Event::EmailSent(EmailSentV1 {
            attempt: 2,
            message_id: "<x@id.example>".into(),
        });
        let done = fold(&[queued.clone(), failed(1, Some(9_000), false), sent]).unwrap();
        assert_eq!((done.status, done.attempts, done.next_attempt_at), (EmailStatus::Sent, 2, None));

        let given_up = fold(&[queued, failed(1, None, true)]).unwrap();
        assert_eq!((given_up.status, given_up.next_attempt_at), (EmailStatus::Failed, None));
        let cells = Emails::cells(&MAIL, &given_up).unwrap();
        assert_eq!(cells.len(), Emails::WRITE.columns.len());
    }
}
