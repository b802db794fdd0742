//! Email events: the outbox. Every mail is a fact on the log before it is sent, one stream per
//! mail (`{tenant}/email/{email}`): `email.queued` at version 1, then one event per delivery
//! attempt, `email.sent` (terminal) or `email.failed` (terminal when `permanent`).
//!
//! A delivery projection follows the log, sends what is queued and not yet sent over SMTP (or
//! writes an `.eml` file on the embedded default), and appends the outcome. A crash between the
//! SMTP server's acceptance and the append sends the mail once more after the restart, with
//! the same `Message-ID` (`<{email_id}@{host of the public URL}>`), so that receivers can spot
//! the duplicate.
//!
//! Nothing personal is in clear: the recipient's address and name, the link (it carries a
//! single-use secret) and an inviter's message are sealed under the data key of
//! `person_id`, the user or invitation the mail is about, with the field names of [`fields`].
//! Erasing that person makes a mail not yet sent unsendable (`email.failed`, permanent).
//! An attempt's `reason` names the failure's class and SMTP code, never the address.
//! Frozen schema versions; see the note in `tenant.rs`. Enums may gain variants at the end.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::primitives::Timestamp;
use crate::sensitive::Personal;

/// The names a mail's personal fields are sealed under (part of each value's AAD). The
/// recipient's address and name use the person's own field names, so that they seal the same
/// way as on the person's stream.
pub mod fields {
    pub const RECIPIENT: &str = "email";
    pub const NAME: &str = "name";
    pub const LINK: &str = "email_link";
    pub const MESSAGE: &str = "message";
}

/// Which mail it is: chooses the subject, the text and the HTML (templates in `api/templates/email/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailTemplate {
    /// An invitation to join the tenant (`person_id` is the invitation).
    Invitation,
    /// A password reset link (`person_id` is the user).
    PasswordReset,
    /// A link that verifies a (changed) address (`person_id` is the user).
    EmailVerification,
}

impl EmailTemplate {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailTemplate::Invitation => "invitation",
            EmailTemplate::PasswordReset => "password_reset",
            EmailTemplate::EmailVerification => "email_verification",
        }
    }
}

/// `email.queued` v1: a mail to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmailQueuedV1 {
    pub template: EmailTemplate,
    /// The user or invitation whose data key seals the fields below.
    pub person_id: Uuid,
    /// The recipient's address, sealed (field `email`).
    pub recipient: Personal<Vec<u8>>,
    /// The recipient's name, sealed (field `name`), for the greeting.
    pub name: Personal<Option<Vec<u8>>>,
    /// The absolute link the mail exists for, built from the public URL, sealed (field
    /// `email_link`): it carries a single-use secret.
    pub link: Personal<Vec<u8>>,
    /// When the link stops working, for the text ("valid for 30 minutes").
    pub link_expires_at: Timestamp,
    /// An inviter's message, sealed (field `message`).
    pub message: Personal<Option<Vec<u8>>>,
}

/// `email.sent` v1: terminal. An SMTP server accepted the mail (or, on the embedded default,
/// it was written to the outbox directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmailSentV1 {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The `Message-ID` header it was sent with, `<{email_id}@{host}>`: the same on every
    /// attempt.
    pub message_id: String,
}

/// `email.failed` v1: an attempt failed. Unless `permanent`, the mail is tried again at
/// `retry_at` (exponential backoff).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmailFailedV1 {
    pub attempt: u32,
    /// The class of failure and the SMTP reply code, e.g. `"connection refused"` or
    /// `"smtp 451"`; never the server's text, which may quote the address.
    pub reason: String,
    /// No more attempts: a permanent SMTP rejection (5xx), a person erased before sending, or
    /// attempts exhausted.
    pub permanent: bool,
    pub retry_at: Option<Timestamp>,
}
