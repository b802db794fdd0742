//! The outbox's write side: a mail is queued as `email.queued` on a stream of its own
//! (`{tenant}/email/{email}`), in the same append as the fact it is about (an invitation, a
//! reset link, an address to verify), so that a mail exists exactly when its fact does.
//!
//! Its personal fields (address, name, link, message) are sealed under the data key of the
//! person it is about: the user, or the invitation for an invitee who has no user yet. The
//! delivery side (sending, retries, `email.sent` and `email.failed`) follows the log; see
//! `docs/adr/0004-invitations-and-email.md`.

use tessera_crypto::DataKey;
use tessera_event_log::{ExpectedVersion, StreamWrite};
use tessera_event_schemas::events::email::fields;
use tessera_event_schemas::events::{EmailQueuedV1, EmailTemplate};
use tessera_event_schemas::{Event, EventMetadata, Timestamp, streams};
use uuid::Uuid;

use super::CommandService;
use crate::CommandError;

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
}
