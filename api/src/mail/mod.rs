//! The outbox's delivery loop (ADR 0004 §"The outbox"): each server process asks `rm_emails`
//! which mails are due, reads each one's `email.queued` from the log, opens its sealed fields
//! with the person's data key, renders it ([`render`]), sends it ([`smtp`]) and appends the
//! outcome, `email.sent` or `email.failed`, expecting the version it read.
//!
//! The queue is the log: a mail queued before a crash is still pending after the restart,
//! since `rm_emails` is folded from the log. A crash between the server's acceptance and the
//! append sends the mail once more after the restart, with the same `Message-ID`. Two processes
//! may both send a mail; only one records it. Failures are tried again after 1, 2, 4, ...
//! seconds up to `TESSERA_SMTP_RETRY_MAX_SECONDS`, for [`GIVE_UP_AFTER`]; a 5xx reply, an
//! erased person or an unusable address fail the mail at once.
//!
//! Log lines name mails by id, never by address.

pub mod render;
pub mod smtp;

use std::time::Duration;

use tessera_event_schemas::events::email::fields;
use tessera_event_schemas::events::{EmailFailedV1, EmailSentV1};
use tessera_event_schemas::{Event, EventMetadata, Timestamp};
use tessera_projections::EmailView;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::state::AppState;
use render::Contents;
use smtp::{MailSettings, SendFailure};

/// How often the loop looks for due mail when none is due sooner.
const POLL: Duration = Duration::from_millis(250);
/// Mails taken per look.
const BATCH: u32 = 32;
/// A mail still failing this long after it was queued fails for good.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The running delivery loop.
pub struct MailTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl MailTask {
    pub fn start(state: AppState, settings: MailSettings) -> Self {
        let (stop, stopped) = watch::channel(false);
        match &settings.transport {
            smtp::Transport::Smtp(_) => tracing::info!("mail goes to the SMTP server"),
            smtp::Transport::Outbox(dir) => tracing::info!(
                path = %dir.display(),
                "TESSERA_SMTP_URL is not set: mail is written to the outbox directory"
            ),
        }
        let handle = tokio::spawn(run(state, settings, stopped));
        Self { stop, handle }
    }

    /// Stops between two mails; what is not sent yet is sent after the next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

async fn run(state: AppState, settings: MailSettings, mut stop: watch::Receiver<bool>) {
    loop {
        let due = match state.store.due_emails(state.clock.now(), BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "mail delivery: reading the outbox");
                Vec::new()
            }
        };
        let mut recorded = 0;
        for mail in &due {
            if *stop.borrow() {
                return;
            }
            match deliver(&state, &settings, mail).await {
                Ok(Some(position)) => recorded = recorded.max(position),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(email_id = %mail.email_id, %error, "mail delivery: an attempt could not be recorded");
                }
            }
        }
        // The outcomes must be in `rm_emails` before the next look, or it would take the same
        // mails again.
        if recorded > 0 {
            let _ = state
                .projections
                .wait_for(recorded, Duration::from_secs(10))
                .await;
        }
        if due.len() < BATCH as usize {
            let stopped = tokio::select! {
                _ = tokio::time::sleep(POLL) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopped || *stop.borrow() {
                return;
            }
        }
    }
}

/// One attempt at `mail`: returns the position of the outcome recorded, if this process
/// recorded one.
async fn deliver(
    state: &AppState,
    settings: &MailSettings,
    mail: &EmailView,
) -> Result<Option<u64>, String> {
    let (tenant_id, email_id) = (mail.tenant_id, mail.email_id);
    let loaded = state
        .commands
        .load_email(tenant_id, email_id)
        .await
        .map_err(|error| error.to_string())?;
    // The read model may lag behind an outcome another process recorded.
    let Some(loaded) = loaded.filter(|loaded| !loaded.done) else {
        return Ok(None);
    };
    let attempt = loaded.attempts + 1;
    let message_id = settings.message_id(email_id);
    let outcome = match attempt_once(state, settings, &loaded, (tenant_id, email_id), &message_id)
        .await
    {
        Ok(()) => {
            tracing::info!(%email_id, attempt, "mail sent");
            Event::EmailSent(EmailSentV1 {
                attempt,
                message_id,
            })
        }
        Err(failure) => {
            let now = state.clock.now();
            let expired = now >= gives_up_at(loaded.queued_at);
            let retry_at = (!failure.permanent && !expired)
                .then(|| now.plus_seconds(backoff(attempt, settings.retry_max).as_secs() as i64));
            tracing::warn!(%email_id, attempt, reason = %failure.reason, permanent = retry_at.is_none(), "mail not sent");
            Event::EmailFailed(EmailFailedV1 {
                attempt,
                reason: failure.reason,
                permanent: retry_at.is_none(),
                retry_at,
            })
        }
    };
    let meta = EventMetadata::system(format!("mail-{email_id}-{attempt}"));
    state
        .commands
        .record_email_attempt(&meta, tenant_id, email_id, loaded.version, outcome)
        .await
        .map_err(|error| error.to_string())
}

/// Opens, renders and sends a mail once.
async fn attempt_once(
    state: &AppState,
    settings: &MailSettings,
    loaded: &tessera_commands::QueuedEmail,
    (tenant_id, email_id): (Uuid, Uuid),
    message_id: &str,
) -> Result<(), SendFailure> {
    let permanent = |reason: &str| SendFailure {
        reason: reason.to_owned(),
        permanent: true,
    };
    let transient = |reason: &str| SendFailure {
        reason: reason.to_owned(),
        permanent: false,
    };
    let queued = &loaded.queued;
    let key = state
        .personal
        .get(tenant_id, queued.person_id)
        .await
        .map_err(|_| transient("key store"))?
        .ok_or_else(|| permanent("person erased"))?;
    let open = |field: &str, sealed: &[u8]| key.open(field, sealed);
    let unreadable = |_| permanent("unreadable");
    let recipient = open(fields::RECIPIENT, queued.recipient.expose()).map_err(unreadable)?;
    let link = open(fields::LINK, queued.link.expose()).map_err(unreadable)?;
    let name = queued
        .name
        .expose()
        .as_deref()
        .map(|sealed| open(fields::NAME, sealed))
        .transpose()
        .map_err(unreadable)?;
    let message = queued
        .message
        .expose()
        .as_deref()
        .map(|sealed| open(fields::MESSAGE, sealed))
        .transpose()
        .map_err(unreadable)?;
    let tenant = state
        .store
        .tenant(tenant_id)
        .await
        .map_err(|_| transient("read model"))?;
    let tenant_name = tenant.map_or_else(|| "Tessera".to_owned(), |tenant| tenant.name);
    let contents = Contents {
        template: queued.template,
        tenant_name: &tenant_name,
        recipient: &recipient,
        name: name.as_deref(),
        link: &link,
        message: message.as_deref(),
        queued_at: loaded.queued_at,
        link_expires_at: queued.link_expires_at,
    };
    let built = render::message(&contents, &settings.from, message_id)
        .map_err(|error| permanent(error.0))?;
    if let Some(path) = settings.transport.send(email_id, &built).await? {
        tracing::info!(%email_id, path = %path.display(), "mail written to the outbox directory");
    }
    Ok(())
}

/// The wait after failed attempt `attempt`: 1 second, doubling, at most `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let seconds = 1u64 << attempt.saturating_sub(1).min(30);
    Duration::from_secs(seconds).min(max)
}

/// When the first attempt of a mail queued at `queued_at` is given up on.
pub fn gives_up_at(queued_at: Timestamp) -> Timestamp {
    queued_at.plus_seconds(GIVE_UP_AFTER.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_one_second_up_to_the_cap() {
        let max = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=10).map(|a| backoff(a, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff(1000, max).as_secs(), 300);
    }
}
