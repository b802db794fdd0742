//! Invitation commands against the in-memory log and key table: what one append holds, what
//! is sealed, what a refusal leaves behind, and revocation's destroyed key.

use tessera_event_schemas::Event;
use tessera_event_schemas::events::EmailTemplate;

use super::*;
use crate::service::tests::meta;
use crate::service::user::tests::{STRONG, TENANT, fixture};

fn input(email: &str) -> CreateInvitation {
    CreateInvitation {
        email: email.into(),
        name: Some("Ada Lovelace".into()),
        roles: vec!["editor".into()],
        message: Some("Welcome aboard".into()),
        expires_in: None,
        public_url: "https://id.example/".into(),
    }
}

#[tokio::test]
async fn an_invitation_and_its_mail_are_one_append_with_nothing_personal_in_clear() {
    let f = fixture(None).await;
    let link = f
        .service
        .create_invitation(meta(), TENANT, input("ada@acme.test"))
        .await
        .unwrap();
    assert!(
        link.invite_url
            .starts_with("https://id.example/t/acme/invite/")
    );
    let token = link.invite_url.rsplit('/').next().unwrap();
    assert_eq!(LinkSecrets::link_id(token), Some(link.invitation_id));
    let events = f.log.read_all(0, 100).await.unwrap();
    let last: Vec<&str> = events
        .iter()
        .rev()
        .take(2)
        .map(|e| e.envelope.event_type.as_str())
        .collect();
    assert_eq!(last, ["email.queued", "invitation.created"]);
    let (queued, created) = (&events[events.len() - 1], &events[events.len() - 2]);
    assert_eq!(
        queued.envelope.global_position,
        created.envelope.global_position + 1
    );
    match queued.decode().unwrap() {
        Event::EmailQueued(mail) => {
            assert_eq!(mail.template, EmailTemplate::Invitation);
            assert_eq!(mail.person_id, link.invitation_id);
        }
        other => panic!("{other:?}"),
    }
    for event in &events {
        for needle in ["ada@acme.test", "Lovelace", "Welcome aboard", token] {
            assert!(
                !event
                    .payload
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes()),
                "{} carries {needle}",
                event.envelope.event_type
            );
        }
    }
}

#[tokio::test]
async fn a_refused_invitation_appends_nothing() {
    let f = fixture(None).await;
    let before = f.log.read_all(0, 1000).await.unwrap().len();
    let refused = f
        .service
        .create_invitation(meta(), TENANT, input("not an address"))
        .await;
    assert!(matches!(
        refused,
        Err(CommandError::Rejected(DomainError::Validation { ref field, .. })) if field == "email"
    ));
    let too_long = CreateInvitation {
        expires_in: Some(31 * 24 * 3600),
        ..input("ada@acme.test")
    };
    assert!(
        f.service
            .create_invitation(meta(), TENANT, too_long)
            .await
            .is_err()
    );
    assert_eq!(f.log.read_all(0, 1000).await.unwrap().len(), before);
}

#[tokio::test]
async fn accepting_makes_the_user_once_and_revoking_destroys_the_key() {
    let f = fixture(None).await;
    let link = f
        .service
        .create_invitation(meta(), TENANT, input("ada@acme.test"))
        .await
        .unwrap();
    let token = link.invite_url.rsplit('/').next().unwrap().to_owned();
    let new_user = || Acceptance::NewUser {
        password: Some(STRONG.into()),
        name: None,
    };
    let accepted = f
        .service
        .accept_invitation(meta(), TENANT, &token, new_user())
        .await
        .unwrap();
    assert!(accepted.created_user);
    let user = f.service.load_user(TENANT, accepted.user_id).await.unwrap();
    let user = user.user.unwrap();
    assert!(user.email_verified);
    assert_eq!(user.roles, ["editor"]);
    let again = f
        .service
        .accept_invitation(meta(), TENANT, &token, new_user())
        .await;
    assert!(matches!(again, Err(CommandError::Rejected(_))), "{again:?}");
    // An accepted invitation cannot be revoked; a pending one can, and its key goes first.
    assert!(
        f.service
            .revoke_invitation(meta(), TENANT, link.invitation_id)
            .await
            .is_err()
    );
    let other = f
        .service
        .create_invitation(meta(), TENANT, input("bob@acme.test"))
        .await
        .unwrap();
    f.service
        .revoke_invitation(meta(), TENANT, other.invitation_id)
        .await
        .unwrap();
    assert!(
        f.keys
            .get(TENANT, other.invitation_id)
            .await
            .unwrap()
            .is_none()
    );
    let token = other.invite_url.rsplit('/').next().unwrap();
    let offer = f
        .service
        .invitation_offer(TENANT, token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offer.state, LinkState::Revoked);
    assert_eq!(offer.email, None);
}
