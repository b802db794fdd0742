//! The outbox's write side: a mail's stream as the delivery loop reads it, and an attempt
//! recorded once even when two processes sent the same mail.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::{EmailFailedV1, EmailSentV1, EmailTemplate};

use crate::service::people_testing::{Store, TENANT, people};
use crate::service::tests::meta;

fn sent(attempt: u32) -> Event {
    Event::EmailSent(EmailSentV1 {
        attempt,
        message_id: "<m@id.example>".into(),
    })
}

#[tokio::test]
async fn an_attempt_is_recorded_once_at_the_version_read_and_ends_the_mail() {
    let fixture = people(Store::Memory, None).await;
    let service = &fixture.service;
    service
        .request_password_reset(meta(), TENANT, "ada@example.com")
        .await
        .unwrap();
    let stream = fixture
        .events()
        .await
        .into_iter()
        .find(|e| e.envelope.event_type == "email.queued")
        .unwrap()
        .envelope
        .stream_id;
    let email_id = stream.rsplit('/').next().unwrap().parse().unwrap();
    let mail = service.load_email(TENANT, email_id).await.unwrap().unwrap();
    assert_eq!(mail.queued.template, EmailTemplate::PasswordReset);
    assert_eq!((mail.attempts, mail.done, mail.version), (0, false, 1));

    let failed = Event::EmailFailed(EmailFailedV1 {
        attempt: 1,
        reason: "connection".into(),
        permanent: false,
        retry_at: None,
    });
    let recorded = service
        .record_email_attempt(&meta(), TENANT, email_id, 1, failed)
        .await
        .unwrap();
    assert!(recorded.is_some());
    let mail = service.load_email(TENANT, email_id).await.unwrap().unwrap();
    assert_eq!((mail.attempts, mail.done, mail.version), (1, false, 2));

    let meta = meta();
    // Two processes sent attempt 2 after reading version 2: only the first records it.
    let first = service.record_email_attempt(&meta, TENANT, email_id, 2, sent(2));
    assert!(first.await.unwrap().is_some());
    let other = fixture.another_node();
    let second = other.record_email_attempt(&meta, TENANT, email_id, 2, sent(2));
    assert_eq!(second.await.unwrap(), None);
    let mail = service.load_email(TENANT, email_id).await.unwrap().unwrap();
    assert_eq!((mail.attempts, mail.done, mail.version), (2, true, 3));
    assert_eq!(fixture.events_of("email.sent").await.len(), 1);

    // Only an attempt's outcome is recorded there.
    let wrong = service.record_email_attempt(
        &meta,
        TENANT,
        email_id,
        3,
        fixture.events_of("email.queued").await.remove(0),
    );
    assert!(wrong.await.is_err());
}
