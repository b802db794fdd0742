//! The outbox's write side: a mail is queued as `email.queued` on a stream of its own
//! (`{tenant}/email/{email}`), in the same append as the fact it is about (an invitation, a
//! reset link, an address to verify), so that a mail exists exactly when its fact does.
//!
//! Its personal fields (address, name, link, message) are sealed under the data key of the
//! person it is about: the user, or the invitation for an invitee who has no user yet. The
//! delivery side (sending, retries, `email.sent` and `email.failed`) follows the log; see
//! `docs/adr/0004-invitations-and-email.md`.

use tessera_crypto::DataKey;
use tessera_event_log::{AppendError, ExpectedVersion, StreamWrite};
use tessera_event_schemas::events::email::fields;
use tessera_event_schemas::events::{EmailQueuedV1, EmailTemplate};
use tessera_event_schemas::{Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use super::engine::{PAGE, decode};
use crate::CommandError;

/// A queued mail as its stream tells it: what the delivery loop reads before an attempt.
#[derive(Clone, Debug)]
pub struct QueuedEmail {
    pub queued: EmailQueuedV1,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// Whether an attempt was recorded as sent, or as failed for good: nothing more to do.
    pub done: bool,
    /// The stream's version: an attempt's outcome is appended expecting it.
    pub version: u64,
}

/// A mail to queue, in clear: sealed by [`CommandService::queue_email`].
#[derive(Clone, Copy)]
pub(super) struct OutgoingEmail<'a> {
    pub template: EmailTemplate,
    /// The user or invitation whose data key `key` is.
    pub person_id: Uuid,
    pub recipient: &'a str,
    pub name: Option<&'a str>,
    /// The absolute link, built from the public URL.
    pub link: &'a str,
    pub link_expires_at: Timestamp,
    pub message: Option<&'a str>,
}

impl CommandService {
    /// The write that queues `mail` on a new stream of its own (expected: no stream), for a
    /// [`super::engine::Plan`] that appends it together with the fact it is about.
    pub(super) fn queue_email(
        &self,
        meta: &EventMetadata,
        now: Timestamp,
        tenant_id: Uuid,
        key: &DataKey,
        mail: OutgoingEmail<'_>,
    ) -> Result<StreamWrite, CommandError> {
        let seal_optional = |field: &str, value: Option<&str>| {
            value.map(|value| key.seal(field, value)).transpose()
        };
        let queued = EmailQueuedV1 {
            template: mail.template,
            person_id: mail.person_id,
            recipient: key.seal(fields::RECIPIENT, mail.recipient)?.into(),
            name: seal_optional(fields::NAME, mail.name)?.into(),
            link: key.seal(fields::LINK, mail.link)?.into(),
            link_expires_at: mail.link_expires_at,
            message: seal_optional(fields::MESSAGE, mail.message)?.into(),
        };
        let email_id = self.ids.new_id();
        Ok(self.write(
            meta,
            now,
            streams::email(tenant_id, email_id),
            ExpectedVersion::NoStream,
            tenant_id,
            vec![Event::EmailQueued(queued)],
        ))
    }

    /// A mail of the outbox, read from its stream; `None` when there is no such mail.
    pub async fn load_email(
        &self,
        tenant_id: Uuid,
        email_id: Uuid,
    ) -> Result<Option<QueuedEmail>, CommandError> {
        let stream = streams::email(tenant_id, email_id);
        let mut mail: Option<QueuedEmail> = None;
        let mut version = 0;
        loop {
            let page = self.log.read_stream(&stream, version, PAGE).await?;
            for recorded in &page {
                version = recorded.envelope.stream_version;
                match (decode(recorded)?, mail.as_mut()) {
                    (Event::EmailQueued(queued), None) => {
                        mail = Some(QueuedEmail {
                            queued,
                            queued_at: recorded.envelope.recorded_at,
                            attempts: 0,
                            done: false,
                            version,
                        });
                    }
                    (Event::EmailSent(sent), Some(mail)) => {
                        mail.attempts = mail.attempts.max(sent.attempt);
                        mail.done = true;
                    }
                    (Event::EmailFailed(failed), Some(mail)) => {
                        mail.attempts = mail.attempts.max(failed.attempt);
                        mail.done |= failed.permanent;
                    }
                    _ => {}
                }
                if let Some(mail) = mail.as_mut() {
                    mail.version = version;
                }
            }
            if page.len() < PAGE {
                return Ok(mail);
            }
        }
    }

    /// Records an attempt's outcome (`email.sent` or `email.failed`) on the mail's stream,
    /// expecting the version read before the attempt: of two processes that sent the same mail,
    /// only one records it. `Ok(None)` when another recorded an attempt first.
    pub async fn record_email_attempt(
        &self,
        meta: &EventMetadata,
        tenant_id: Uuid,
        email_id: Uuid,
        version: u64,
        outcome: Event,
    ) -> Result<Option<u64>, CommandError> {
        if !matches!(outcome, Event::EmailSent(_) | Event::EmailFailed(_)) {
            return Err(CommandError::Internal(format!(
                "{} is not an attempt's outcome",
                outcome.event_type()
            )));
        }
        let write = self.write(
            meta,
            self.clock.now(),
            streams::email(tenant_id, email_id),
            ExpectedVersion::Exact(version),
            tenant_id,
            vec![outcome],
        );
        match self.log.append(vec![write]).await {
            Ok(outcome) => Ok(Some(outcome.last_position)),
            Err(AppendError::Conflict { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

#[cfg(test)]
mod tests;
