//! Federation commands against the in-memory log and key table: the sealed client secret,
//! just-in-time provisioning with its link, single-use states, one user for two concurrent
//! first sign-ins, and linking only after the account's holder signs in.

use std::collections::BTreeMap;

use tessera_domain::identity_provider::IdentityProvider;
use tessera_event_schemas::Hash32;

use super::*;
use crate::service::people_testing::{Store, TENANT, people};
use crate::service::tests::meta;

fn config() -> IdentityProvider {
    IdentityProvider {
        provider: "generic_oidc".into(),
        display_name: "Upstream".into(),
        canonical_public_origin: "https://id.example".into(),
        redirect_path: "/login/callback".into(),
        discovery_endpoint: None,
        issuer: "https://idp.example".into(),
        authorization_endpoint: "https://idp.example/authorize".into(),
        token_endpoint: "https://idp.example/token".into(),
        jwks_uri: "https://idp.example/jwks".into(),
        client_id: "tessera".into(),
        sealed_client_secret: vec![],
        scopes: vec!["openid".into(), "email".into()],
        allowed_domains: vec![],
        claims_mapping: BTreeMap::new(),
        trust_email: false,
        previous_redirect_uri: None,
        previous_until: None,
    }
}

fn identity(subject: &str, email: &str) -> FederatedIdentity {
    static NEXT_STATE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let state = NEXT_STATE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    FederatedIdentity {
        tenant_id: TENANT,
        alias: "default".into(),
        state_id: Uuid::from_u128(0xfed0_0000 + u128::from(state)),
        subject: subject.into(),
        email: email.into(),
        name: Some("Grace Hopper".into()),
        given_name: None,
        family_name: None,
        browser_hash: Hash32([3; 32]),
    }
}

fn signed_in(outcome: FederatedOutcome) -> (Uuid, bool) {
    match outcome {
        FederatedOutcome::SignedIn {
            session,
            created_user,
            ..
        } => (session.user_id, created_user),
        other => panic!("expected a session, got {other:?}"),
    }
}

#[tokio::test]
async fn the_client_secret_is_sealed_in_the_log_and_opens_for_the_token_endpoint() {
    let f = people(Store::Memory, None).await;
    let secret = "upstream-secret-value-0123456789";
    f.service
        .configure_identity_provider(meta(), TENANT, "default", config(), Some(secret), 600)
        .await
        .unwrap();
    assert!(!f.log_contains(secret.as_bytes()).await);
    let provider = f
        .service
        .identity_provider(TENANT, "default")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        f.service
            .open_client_secret(TENANT, "default", &provider)
            .unwrap(),
        secret
    );
    // Sealed for (tenant, alias): it does not open as another provider's.
    assert!(
        f.service
            .open_client_secret(TENANT, "okta", &provider)
            .is_err()
    );
}

#[tokio::test]
async fn a_first_sign_in_provisions_a_user_and_the_next_one_finds_the_link_and_a_state_works_once()
{
    let f = people(Store::Memory, None).await;
    let first = identity("sub-1", "grace@navy.example");
    let (user, created) = signed_in(
        f.service
            .federated_sign_in(meta(), first.clone())
            .await
            .unwrap(),
    );
    assert!(created);
    assert!(!f.log_contains(b"grace@navy.example").await);
    assert!(!f.log_contains(b"sub-1").await);
    let replay = f.service.federated_sign_in(meta(), first).await;
    assert!(
        matches!(
            replay,
            Err(CommandError::Rejected(DomainError::Conflict(_)))
        ),
        "{replay:?}"
    );
    let (again, created) = signed_in(
        f.service
            .federated_sign_in(meta(), identity("sub-1", "grace@navy.example"))
            .await
            .unwrap(),
    );
    assert_eq!((again, created), (user, false));
    assert_eq!(f.events_of("user.created").await.len(), 2);
}

#[tokio::test]
async fn two_concurrent_first_sign_ins_of_one_person_on_two_nodes_make_one_user() {
    let f = people(Store::Sqlite, None).await;
    let other = f.another_node();
    let (a, b) = tokio::join!(
        f.service
            .federated_sign_in(meta(), identity("sub-2", "kay@example.org")),
        other.federated_sign_in(meta(), identity("sub-2", "kay@example.org")),
    );
    let (a, b) = (signed_in(a.unwrap()), signed_in(b.unwrap()));
    assert_eq!(a.0, b.0);
    assert_ne!(a.1, b.1, "exactly one of them created the user");
    // The fixture's person, and one more.
    assert_eq!(f.events_of("user.created").await.len(), 2);
}

#[tokio::test]
async fn an_address_with_an_account_is_linked_only_for_its_holder_from_the_same_browser() {
    let f = people(Store::Memory, None).await;
    let claim = identity("sub-3", "ada@example.com");
    let outcome = f
        .service
        .federated_sign_in(meta(), claim.clone())
        .await
        .unwrap();
    assert!(
        matches!(outcome, FederatedOutcome::LinkRequired { user_id } if user_id == f.user),
        "{outcome:?}"
    );
    let stranger = Uuid::from_u128(0xdead);
    let wrong_user = f
        .service
        .link_federated_identity(
            meta(),
            TENANT,
            claim.state_id,
            stranger,
            &claim.browser_hash,
        )
        .await;
    assert!(matches!(wrong_user, Err(CommandError::Rejected(_))));
    let wrong_browser = f
        .service
        .link_federated_identity(meta(), TENANT, claim.state_id, f.user, &Hash32([9; 32]))
        .await;
    assert!(matches!(wrong_browser, Err(CommandError::Rejected(_))));
    f.service
        .link_federated_identity(meta(), TENANT, claim.state_id, f.user, &claim.browser_hash)
        .await
        .unwrap();
    let twice = f
        .service
        .link_federated_identity(meta(), TENANT, claim.state_id, f.user, &claim.browser_hash)
        .await;
    assert!(matches!(twice, Err(CommandError::Rejected(_))));
    let (user, created) = signed_in(
        f.service
            .federated_sign_in(meta(), identity("sub-3", "ada@example.com"))
            .await
            .unwrap(),
    );
    assert_eq!((user, created), (f.user, false));
}

#[tokio::test]
async fn a_link_held_by_an_erased_user_before_links_were_on_the_users_stream_is_released_at_the_next_sign_in()
 {
    let f = people(Store::Memory, None).await;
    let user = f
        .service
        .create_user(
            meta(),
            TENANT,
            CreateUser {
                email: "old@navy.example".into(),
                email_verified: true,
                ..CreateUser::default()
            },
        )
        .await
        .unwrap()
        .user_id;
    // A link as it was made before: the reservation only, nothing on the user's stream, so
    // the erasure cannot find it.
    let hash = f
        .service
        .crypto
        .federation()
        .subject_hash(TENANT, "default", "sub-old");
    let stream = streams::reservation(ReservationKind::FederatedIdentity.as_str(), &hash.to_hex());
    let service = &f.service;
    service
        .run(&stream, || async {
            let mut plan = Plan::new((), 0);
            service.plan_link(&mut plan, &meta(), &hash, user).await?;
            Ok(plan)
        })
        .await
        .unwrap();
    f.service.erase_user(meta(), TENANT, user).await.unwrap();
    assert!(
        f.events_of("reservation.released").await.len() == 1,
        "the address only"
    );

    let (fresh, created) = signed_in(
        f.service
            .federated_sign_in(meta(), identity("sub-old", "old@navy.example"))
            .await
            .unwrap(),
    );
    assert!(created);
    assert_ne!(fresh, user);
    assert_eq!(f.events_of("reservation.released").await.len(), 2);
}
