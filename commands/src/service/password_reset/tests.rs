//! Reset and verification links end to end on the command service: what a request appends
//! (and does not), and how a link works once, then is refused with a reason.

use tessera_crypto::DataKey;
use tessera_domain::user::LinkRefusal;
use tessera_event_schemas::Event;
use tessera_event_schemas::events::EmailTemplate;
use tessera_event_schemas::events::email::fields as mail_fields;

use super::LinkKind;
use crate::UpdateUser;
use crate::service::people_testing::{PUBLIC_URL, Store, TENANT, people};
use crate::service::tests::meta;

/// The links mailed so far, opened with the user's key, oldest first.
async fn mailed(
    fixture: &crate::service::people_testing::PeopleFixture,
) -> Vec<(EmailTemplate, String, String)> {
    let key: std::sync::Arc<DataKey> = fixture
        .keys
        .get(TENANT, fixture.user)
        .await
        .unwrap()
        .unwrap();
    fixture
        .events_of("email.queued")
        .await
        .into_iter()
        .map(|event| match event {
            Event::EmailQueued(queued) => (
                queued.template,
                key.open(mail_fields::RECIPIENT, queued.recipient.expose())
                    .unwrap(),
                key.open(mail_fields::LINK, queued.link.expose()).unwrap(),
            ),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn token_of(link: &str) -> &str {
    link.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn a_reset_request_mails_only_a_known_address_and_appends_nothing_otherwise() {
    let fixture = people(Store::Memory, None).await;
    let before = fixture.events().await.len();
    fixture
        .service
        .request_password_reset(meta(), TENANT, "nobody@example.com")
        .await
        .unwrap();
    assert_eq!(fixture.events().await.len(), before);

    fixture
        .service
        .request_password_reset(meta(), TENANT, " ADA@example.com ")
        .await
        .unwrap();
    let mails = mailed(&fixture).await;
    assert_eq!(mails.len(), 1);
    let (template, recipient, link) = &mails[0];
    assert_eq!(*template, EmailTemplate::PasswordReset);
    assert_eq!(recipient, "ada@example.com");
    assert!(link.starts_with(&format!("{PUBLIC_URL}/t/acme/password/reset/")));
    assert!(!fixture.log_contains(token_of(link).as_bytes()).await);

    // A second request within the minute sends nothing.
    fixture.clock.advance_seconds(30);
    fixture
        .service
        .request_password_reset(meta(), TENANT, "ada@example.com")
        .await
        .unwrap();
    assert_eq!(mailed(&fixture).await.len(), 1);
}

#[tokio::test]
async fn a_reset_link_works_once_and_only_while_it_is_the_latest_and_fresh() {
    let fixture = people(Store::Memory, None).await;
    let service = &fixture.service;
    service
        .request_password_reset(meta(), TENANT, "ada@example.com")
        .await
        .unwrap();
    fixture.clock.advance_seconds(61);
    service
        .request_password_reset(meta(), TENANT, "ada@example.com")
        .await
        .unwrap();
    let mails = mailed(&fixture).await;
    let (old, new) = (token_of(&mails[0].2), token_of(&mails[1].2));
    let reset = |token: &str| {
        let token = token.to_owned();
        async move {
            service
                .reset_password(meta(), TENANT, &token, "a brand new passphrase 42")
                .await
                .unwrap()
        }
    };
    assert_eq!(reset(old).await, Err(LinkRefusal::Replaced));
    assert_eq!(
        service
            .check_link(TENANT, new, LinkKind::PasswordReset)
            .await
            .unwrap(),
        Ok(fixture.user)
    );
    assert!(reset(new).await.is_ok());
    assert_eq!(fixture.events_of("user.password_set").await.len(), 1);
    assert_eq!(reset(new).await, Err(LinkRefusal::Used));
    assert_eq!(reset(&"A".repeat(64)).await, Err(LinkRefusal::Unknown));

    fixture.clock.advance_seconds(61);
    service
        .request_password_reset(meta(), TENANT, "ada@example.com")
        .await
        .unwrap();
    let latest = mailed(&fixture).await.pop().unwrap().2;
    fixture.clock.advance_seconds(31 * 60);
    assert_eq!(reset(token_of(&latest)).await, Err(LinkRefusal::Expired));
}

#[tokio::test]
async fn a_new_address_gets_a_verification_link_that_verifies_it_once() {
    let fixture = people(Store::Memory, None).await;
    let service = &fixture.service;
    let change = UpdateUser {
        email: Some("ada@new.example".into()),
        ..UpdateUser::default()
    };
    service
        .update_user(meta(), TENANT, fixture.user, change)
        .await
        .unwrap();
    let mails = mailed(&fixture).await;
    assert_eq!(mails.len(), 1);
    let (template, recipient, link) = &mails[0];
    assert_eq!(*template, EmailTemplate::EmailVerification);
    assert_eq!(recipient, "ada@new.example");
    assert!(link.starts_with(&format!("{PUBLIC_URL}/t/acme/email/verify/")));
    let user = service.load_user(TENANT, fixture.user).await.unwrap();
    assert!(!user.user.unwrap().email_verified);

    let token = token_of(link);
    assert_eq!(
        service
            .check_link(TENANT, token, LinkKind::PasswordReset)
            .await
            .unwrap(),
        Err(LinkRefusal::Unknown)
    );
    assert!(
        service
            .verify_email(meta(), TENANT, token)
            .await
            .unwrap()
            .is_ok()
    );
    let user = service.load_user(TENANT, fixture.user).await.unwrap();
    assert!(user.user.unwrap().email_verified);
    assert_eq!(
        service.verify_email(meta(), TENANT, token).await.unwrap(),
        Err(LinkRefusal::Used)
    );

    // Another change voids the link sent for the address before it.
    service
        .send_email_verification(meta(), TENANT, fixture.user)
        .await
        .unwrap();
    let resent = mailed(&fixture).await.pop().unwrap().2;
    let change = UpdateUser {
        email: Some("ada@newer.example".into()),
        ..UpdateUser::default()
    };
    service
        .update_user(meta(), TENANT, fixture.user, change)
        .await
        .unwrap();
    assert_eq!(
        service
            .verify_email(meta(), TENANT, token_of(&resent))
            .await
            .unwrap(),
        Err(LinkRefusal::Voided)
    );
}
