//! A mail's text and HTML from its template (`templates/email/`), and the MIME message that
//! carries them, with the `Message-ID` every attempt at the mail shares.
//!
//! Nothing here reads the log or a key: it gets the mail's fields in clear.

use askama::Template;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use tessera_event_schemas::Timestamp;
use tessera_event_schemas::events::EmailTemplate;

/// A mail's fields, opened, and what the templates show with them.
pub struct Contents<'a> {
    pub template: EmailTemplate,
    pub tenant_name: &'a str,
    pub recipient: &'a str,
    pub name: Option<&'a str>,
    pub link: &'a str,
    pub message: Option<&'a str>,
    pub queued_at: Timestamp,
    pub link_expires_at: Timestamp,
}

/// Why a mail cannot be built: its recipient's or sender's address is not one SMTP takes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub &'static str);

/// A mail's plain text: `email/mail.txt`, which includes the body of its kind.
#[derive(Template)]
#[template(path = "email/mail.txt")]
struct MailText<'a> {
    kind: &'a str,
    tenant_name: &'a str,
    name: Option<&'a str>,
    link: &'a str,
    message: Option<&'a str>,
    validity: &'a str,
    expires_at: &'a str,
}

/// A mail's HTML: `email/mail.html`, which includes the body of its kind.
#[derive(Template)]
#[template(path = "email/mail.html")]
struct MailHtml<'a> {
    kind: &'a str,
    subject: &'a str,
    action: &'a str,
    tenant_name: &'a str,
    name: Option<&'a str>,
    link: &'a str,
    message: Option<&'a str>,
    validity: &'a str,
    expires_at: &'a str,
}

/// The subject and the button's words of each mail.
fn wording(template: EmailTemplate, tenant: &str) -> (String, &'static str) {
    match template {
        EmailTemplate::Invitation => (
            format!("You are invited to {tenant}"),
            "Accept the invitation",
        ),
        EmailTemplate::PasswordReset => (
            format!("Reset your password for {tenant}"),
            "Choose a new password",
        ),
        EmailTemplate::EmailVerification => (
            format!("Verify your email address for {tenant}"),
            "Verify my address",
        ),
    }
}

/// "for 30 minutes", "for 24 hours", "for 7 days": how long the link works, as sent.
pub fn validity(from: Timestamp, until: Timestamp) -> String {
    let seconds = (until.as_micros() - from.as_micros()).max(0) / 1_000_000;
    let plural = |n: i64, unit: &str| match n {
        1 => format!("for 1 {unit}"),
        n => format!("for {n} {unit}s"),
    };
    match seconds {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => plural(s / 3600, "hour"),
        s => plural((s + 59) / 60, "minute"),
    }
}

/// The subject, the text and the HTML of a mail.
pub fn render(contents: &Contents<'_>) -> Result<(String, String, String), askama::Error> {
    let (subject, action) = wording(contents.template, contents.tenant_name);
    let validity = validity(contents.queued_at, contents.link_expires_at);
    let expires_at = contents
        .link_expires_at
        .to_datetime()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    let kind = contents.template.as_str();
    let text = MailText {
        kind,
        tenant_name: contents.tenant_name,
        name: contents.name,
        link: contents.link,
        message: contents.message,
        validity: &validity,
        expires_at: &expires_at,
    }
    .render()?;
    let html = MailHtml {
        kind,
        subject: &subject,
        action,
        tenant_name: contents.tenant_name,
        name: contents.name,
        link: contents.link,
        message: contents.message,
        validity: &validity,
        expires_at: &expires_at,
    }
    .render()?;
    Ok((subject, text, html))
}

/// The sender: `from` as configured; without a display name of its own, the tenant's.
pub fn sender(from: &Mailbox, tenant_name: &str) -> Mailbox {
    match from.name {
        Some(_) => from.clone(),
        None => Mailbox::new(Some(tenant_name.to_owned()), from.email.clone()),
    }
}

/// The MIME message (multipart/alternative: text, then HTML) with `message_id`.
pub fn message(
    contents: &Contents<'_>,
    from: &Mailbox,
    message_id: &str,
) -> Result<Message, RenderError> {
    let (subject, text, html) =
        render(contents).map_err(|_| RenderError("the template did not render"))?;
    let to_address = contents
        .recipient
        .parse()
        .map_err(|_| RenderError("invalid recipient address"))?;
    let to = Mailbox::new(contents.name.map(str::to_owned), to_address);
    Message::builder()
        .from(sender(from, contents.tenant_name))
        .to(to)
        .subject(subject)
        .message_id(Some(message_id.to_owned()))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|_| RenderError("the message could not be built"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUED: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

    fn contents(template: EmailTemplate, message: Option<&'static str>) -> Contents<'static> {
        Contents {
            template,
            tenant_name: "Acme <Corp>",
            recipient: "ada@example.com",
            name: Some("Ada"),
            link: "https://id.example/t/acme/password/reset/TOKEN",
            message,
            queued_at: QUEUED,
            link_expires_at: QUEUED.plus_seconds(1800),
        }
    }

    #[test]
    fn a_reset_mail_names_the_tenant_the_link_and_its_validity_in_text_and_escaped_html() {
        let (subject, text, html) = render(&contents(EmailTemplate::PasswordReset, None)).unwrap();
        assert_eq!(subject, "Reset your password for Acme <Corp>");
        assert!(text.contains("Hello Ada,"));
        assert!(text.contains("https://id.example/t/acme/password/reset/TOKEN"));
        assert!(text.contains("for 30 minutes"), "{text}");
        assert!(text.contains("Acme <Corp>"));
        assert!(
            html.contains("Acme &#60;Corp&#62;") || html.contains("Acme &lt;Corp&gt;"),
            "{html}"
        );
        assert!(!html.contains("Acme <Corp>"));
        assert!(html.contains("Choose a new password"));
    }

    #[test]
    fn an_invitation_carries_the_inviters_message_escaped_in_html() {
        let mail = contents(EmailTemplate::Invitation, Some("Welcome <b>aboard</b>"));
        let (_, text, html) = render(&Contents {
            link_expires_at: QUEUED.plus_seconds(7 * 86_400),
            ..mail
        })
        .unwrap();
        assert!(text.contains("Welcome <b>aboard</b>"));
        assert!(text.contains("for 7 days"));
        assert!(!html.contains("<b>aboard</b>"));
    }

    #[test]
    fn the_message_carries_the_message_id_and_the_tenants_name_as_sender() {
        let from: Mailbox = "no-reply@id.example".parse().unwrap();
        let mail = message(
            &contents(EmailTemplate::EmailVerification, None),
            &from,
            "<m1@id.example>",
        )
        .unwrap();
        let formatted = String::from_utf8(mail.formatted()).unwrap();
        assert!(
            formatted.contains("Message-ID: <m1@id.example>"),
            "{formatted}"
        );
        assert!(formatted.contains("multipart/alternative"));
        assert!(
            formatted.contains("To: Ada <ada@example.com>"),
            "{formatted}"
        );
        assert!(formatted.contains("no-reply@id.example"));
        assert_eq!(
            validity(QUEUED, QUEUED.plus_seconds(86_400)),
            "for 24 hours"
        );
        assert_eq!(validity(QUEUED, QUEUED.plus_seconds(60)), "for 1 minute");
        let bad = Contents {
            recipient: "not an address",
            ..contents(EmailTemplate::PasswordReset, None)
        };
        assert!(message(&bad, &from, "<m2@id.example>").is_err());
    }
}
