//! Passkey ceremonies end to end below HTTP: real registrations and discoverable sign-ins with
//! a software authenticator (`tessera_test_support::webauthn`), the tenant's policy, ceremony
//! state used once and expiring, and what the log records.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_domain::mfa::MfaState;
use tessera_event_schemas::Event;
use tessera_test_support::webauthn::SoftAuthenticator;

use super::*;
use crate::service::people_testing::{PUBLIC_URL, PeopleFixture, Store, TENANT, people, person};
use crate::service::tests::meta;

fn rejected<T: std::fmt::Debug>(result: Result<T, CommandError>) -> DomainError {
    match result {
        Err(CommandError::Rejected(error)) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Registers a passkey named `name` for `user` with `authenticator`.
async fn register(
    f: &PeopleFixture,
    user: Uuid,
    authenticator: &mut SoftAuthenticator,
    name: &str,
) -> RegisteredPasskey {
    let challenge = f
        .service
        .start_passkey_registration(TENANT, user, name)
        .await
        .unwrap();
    let response = authenticator.create(&challenge.options, PUBLIC_URL);
    f.service
        .finish_passkey_registration(meta(), TENANT, user, &challenge.ceremony_id, response)
        .await
        .unwrap()
}

/// A sign-in ceremony and the authenticator's answer to it.
async fn sign_in_response(
    f: &PeopleFixture,
    authenticator: &mut SoftAuthenticator,
) -> (String, Value) {
    let challenge = f.service.start_passkey_sign_in(TENANT).await.unwrap();
    let response = authenticator.get(&challenge.options, PUBLIC_URL);
    (challenge.ceremony_id, response)
}

async fn sign_in(
    f: &PeopleFixture,
    authenticator: &mut SoftAuthenticator,
) -> Result<PasskeySignIn, CommandError> {
    let (ceremony, response) = sign_in_response(f, authenticator).await;
    f.service
        .finish_passkey_sign_in(meta(), TENANT, &ceremony, response)
        .await
}

async fn mfa_state(f: &PeopleFixture, user: Uuid) -> MfaState {
    f.service.load_mfa(TENANT, user).await.unwrap()
}

#[tokio::test]
async fn registration_options_follow_the_default_policy_and_name_the_relying_party() {
    let f = people(Store::Memory, None).await;
    let challenge = f
        .service
        .start_passkey_registration(TENANT, f.user, "  Laptop ")
        .await
        .unwrap();
    let options = &challenge.options["publicKey"];
    assert_eq!(options["rp"]["id"], "id.example");
    assert_eq!(options["rp"]["name"], "Acme: Corp");
    assert_eq!(options["user"]["name"], "ada@example.com");
    assert_eq!(options["user"]["displayName"], "Ada Lovelace");
    let user_handle = URL_SAFE_NO_PAD
        .decode(options["user"]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(user_handle, f.user.as_bytes());
    assert_eq!(options["attestation"], "none");
    let selection = &options["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(challenge.ceremony_id.len(), 43, "256 random bits");
    assert_eq!(f.service.ceremonies_in_progress(), 1);
}

#[tokio::test]
async fn a_passkey_registers_and_then_signs_in_without_an_address() {
    let f = people(Store::Sqlite, None).await;
    let mut phone = SoftAuthenticator::default();
    let registered = register(&f, f.user, &mut phone, "Phone").await;
    assert_eq!(registered.credential_id, phone.credentials[0].id);
    let [Event::PasskeyRegistered(event)] = &f.events_of("mfa.passkey_registered").await[..] else {
        panic!("one registration")
    };
    assert_eq!(event.credential_id, registered.credential_id);
    assert_eq!(event.attestation_format, "none");
    assert!(event.user_verified && !event.backup_eligible);
    // The name is sealed under the person's data key; the public key is a COSE_Key.
    assert!(!f.log_contains(b"Phone").await);
    let name = f
        .keys
        .open(TENANT, f.user, PASSKEY_NAME_FIELD, event.name.expose())
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Phone"));
    let cbor: Cbor = serde_cbor_2::from_slice(&event.public_key).unwrap();
    assert!(COSEKey::try_from(&cbor).is_ok());

    let challenge = f.service.start_passkey_sign_in(TENANT).await.unwrap();
    let options = &challenge.options["publicKey"];
    assert_eq!(options["allowCredentials"], serde_json::json!([]));
    assert_eq!(options["rpId"], "id.example");
    assert_eq!(options["userVerification"], "required");
    let response = phone.get(&challenge.options, PUBLIC_URL);
    let signed_in = f
        .service
        .finish_passkey_sign_in(meta(), TENANT, &challenge.ceremony_id, response)
        .await
        .unwrap();
    assert_eq!(signed_in.user_id, f.user);
    assert_eq!(signed_in.credential_id, registered.credential_id);
    assert_eq!(signed_in.amr, ["hwk", "user", "mfa"]);
    assert!(signed_in.multi_factor());
    assert_eq!(mfa_state(&f, f.user).await.passkeys[0].counter, 1);
    let factors = f.service.second_factors(TENANT, f.user).await.unwrap();
    assert_eq!((factors.passkeys, factors.has_second_factor), (1, true));
    assert_eq!(f.service.ceremonies_in_progress(), 0);
}

#[tokio::test]
async fn each_person_signs_in_as_themselves_and_a_borrowed_user_handle_does_not_verify() {
    let f = people(Store::Memory, None).await;
    let grace = f
        .service
        .create_user(meta(), TENANT, person("grace@example.com", "Grace Hopper"))
        .await
        .unwrap()
        .user_id;
    let (mut ada_key, mut grace_key) = (SoftAuthenticator::default(), SoftAuthenticator::default());
    register(&f, f.user, &mut ada_key, "Ada's key").await;
    register(&f, grace, &mut grace_key, "Grace's key").await;
    assert_eq!(sign_in(&f, &mut ada_key).await.unwrap().user_id, f.user);
    assert_eq!(sign_in(&f, &mut grace_key).await.unwrap().user_id, grace);
    // Grace's authenticator claims to be Ada: her credential is not one of Ada's.
    let (ceremony, mut response) = sign_in_response(&f, &mut grace_key).await;
    response["response"]["userHandle"] = URL_SAFE_NO_PAD.encode(f.user.as_bytes()).into();
    let refused = f
        .service
        .finish_passkey_sign_in(meta(), TENANT, &ceremony, response)
        .await;
    assert_eq!(
        rejected(refused),
        DomainError::invalid("credential", "is not a passkey of this site")
    );
}

#[tokio::test]
async fn a_ceremony_is_finished_once_and_not_after_it_expired() {
    let f = people(Store::Memory, None).await;
    let mut key = SoftAuthenticator::default();
    register(&f, f.user, &mut key, "Key").await;
    let (ceremony, response) = sign_in_response(&f, &mut key).await;
    f.service
        .finish_passkey_sign_in(meta(), TENANT, &ceremony, response.clone())
        .await
        .unwrap();
    let again = f
        .service
        .finish_passkey_sign_in(meta(), TENANT, &ceremony, response.clone())
        .await;
    let expired = DomainError::invalid("ceremony_id", "is unknown or expired; start again");
    assert_eq!(rejected(again), expired);
    // The same answer to a new ceremony signs a challenge that is not this one.
    let challenge = f.service.start_passkey_sign_in(TENANT).await.unwrap();
    let replayed = f
        .service
        .finish_passkey_sign_in(meta(), TENANT, &challenge.ceremony_id, response)
        .await;
    assert!(
        matches!(rejected(replayed), DomainError::Validation { field, .. } if field == "credential")
    );
    let (late, response) = sign_in_response(&f, &mut key).await;
    f.clock.advance_seconds(CEREMONY_TTL_SECS + 1);
    let too_late = f
        .service
        .finish_passkey_sign_in(meta(), TENANT, &late, response)
        .await;
    assert_eq!(rejected(too_late), expired);
    // A registration started for one person cannot be finished for another.
    let challenge = f
        .service
        .start_passkey_registration(TENANT, f.user, "Other")
        .await
        .unwrap();
    let response = key.create(&challenge.options, PUBLIC_URL);
    let stolen = f
        .service
        .finish_passkey_registration(
            meta(),
            TENANT,
            Uuid::from_u128(5),
            &challenge.ceremony_id,
            response,
        )
        .await;
    assert_eq!(rejected(stolen), expired);
}

#[tokio::test]
async fn a_counter_that_does_not_move_on_is_refused_as_a_cloned_authenticator() {
    let f = people(Store::Memory, None).await;
    let mut key = SoftAuthenticator::default();
    register(&f, f.user, &mut key, "Key").await;
    sign_in(&f, &mut key).await.unwrap();
    sign_in(&f, &mut key).await.unwrap();
    // A clone of the key, still at the counter of the first sign-in.
    key.credentials[0].counter = Some(0);
    let cloned = sign_in(&f, &mut key).await;
    assert!(
        matches!(rejected(cloned), DomainError::Validation { field, .. } if field == "credential")
    );
    assert_eq!(f.events_of("mfa.passkey_used").await.len(), 2);
    // Synchronised passkeys keep no counter: 0 every time, and that is fine.
    let mut synced = SoftAuthenticator {
        synced: true,
        counts: false,
        ..SoftAuthenticator::default()
    };
    register(&f, f.user, &mut synced, "Synced").await;
    for _ in 0..2 {
        assert_eq!(
            sign_in(&f, &mut synced).await.unwrap().amr,
            ["swk", "user", "mfa"]
        );
    }
}

#[tokio::test]
async fn the_same_assertion_raced_on_two_nodes_signs_in_once() {
    let f = people(Store::Sqlite, None).await;
    let mut key = SoftAuthenticator::default();
    register(&f, f.user, &mut key, "Key").await;
    let other = f.another_node();
    // Two ceremonies, one on each node, answered with the same counter (a cloned key).
    let first = f.service.start_passkey_sign_in(TENANT).await.unwrap();
    let second = other.start_passkey_sign_in(TENANT).await.unwrap();
    let a = key.get(&first.options, PUBLIC_URL);
    key.credentials[0].counter = Some(0);
    let b = key.get(&second.options, PUBLIC_URL);
    let (a, b) = tokio::join!(
        f.service
            .finish_passkey_sign_in(meta(), TENANT, &first.ceremony_id, a),
        other.finish_passkey_sign_in(meta(), TENANT, &second.ceremony_id, b),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    assert_eq!(f.events_of("mfa.passkey_used").await.len(), 1);
}

#[tokio::test]
async fn the_tenants_policy_shapes_the_ceremonies_and_can_turn_passkeys_off() {
    let f = people(Store::Memory, None).await;
    let policy = WebauthnPolicyV1 {
        enabled: true,
        attestation_preference: AttestationPreference::Direct,
        user_verification: Requirement::Discouraged,
        resident_key: Requirement::Preferred,
    };
    f.service
        .set_webauthn_policy(meta(), TENANT, policy.clone())
        .await
        .unwrap();
    assert_eq!(f.service.webauthn_policy(TENANT).await.unwrap(), policy);
    let challenge = f
        .service
        .start_passkey_registration(TENANT, f.user, "Key")
        .await
        .unwrap();
    let options = &challenge.options["publicKey"];
    assert_eq!(options["attestation"], "direct");
    assert_eq!(
        options["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "discouraged"
    );
    // An authenticator that does not verify its user: a sign-in, but a single factor.
    let mut key = SoftAuthenticator {
        user_verification: false,
        ..SoftAuthenticator::default()
    };
    let response = key.create(&challenge.options, PUBLIC_URL);
    f.service
        .finish_passkey_registration(meta(), TENANT, f.user, &challenge.ceremony_id, response)
        .await
        .unwrap();
    let signed_in = sign_in(&f, &mut key).await.unwrap();
    assert_eq!(signed_in.amr, ["hwk", "user"]);
    assert!(!signed_in.multi_factor());
    // Turned off: no ceremony starts, and one started before cannot finish.
    let (ceremony, response) = sign_in_response(&f, &mut key).await;
    let off = WebauthnPolicyV1 {
        enabled: false,
        ..policy
    };
    f.service
        .set_webauthn_policy(meta(), TENANT, off)
        .await
        .unwrap();
    let disabled = DomainError::Conflict("passkeys are disabled in this tenant".into());
    assert_eq!(
        rejected(f.service.start_passkey_sign_in(TENANT).await),
        disabled
    );
    assert_eq!(
        rejected(
            f.service
                .start_passkey_registration(TENANT, f.user, "Key 2")
                .await
        ),
        disabled
    );
    let finished = f
        .service
        .finish_passkey_sign_in(meta(), TENANT, &ceremony, response)
        .await;
    assert_eq!(rejected(finished), disabled);
}

#[tokio::test]
async fn user_verification_required_at_registration_is_required_at_every_sign_in() {
    let f = people(Store::Memory, None).await;
    let mut key = SoftAuthenticator::default();
    register(&f, f.user, &mut key, "Key").await;
    key.user_verification = false;
    let unverified = sign_in(&f, &mut key).await;
    assert!(
        matches!(rejected(unverified), DomainError::Validation { field, .. } if field == "credential")
    );
}

#[tokio::test]
async fn a_response_from_another_origin_does_not_verify() {
    let f = people(Store::Memory, None).await;
    let mut key = SoftAuthenticator::default();
    let challenge = f
        .service
        .start_passkey_registration(TENANT, f.user, "Key")
        .await
        .unwrap();
    let response = key.create(&challenge.options, "https://evil.example");
    let refused = f
        .service
        .finish_passkey_registration(meta(), TENANT, f.user, &challenge.ceremony_id, response)
        .await;
    assert!(
        matches!(rejected(refused), DomainError::Validation { field, .. } if field == "credential")
    );
    assert!(mfa_state(&f, f.user).await.passkeys.is_empty());
}

#[tokio::test]
async fn a_removed_or_reset_passkey_signs_in_no_more_and_a_disabled_person_not_at_all() {
    let f = people(Store::Memory, None).await;
    let (mut one, mut two) = (SoftAuthenticator::default(), SoftAuthenticator::default());
    let first = register(&f, f.user, &mut one, "One").await;
    register(&f, f.user, &mut two, "Two").await;
    // Registering the same authenticator's credentials again is excluded by the options.
    let options = f
        .service
        .start_passkey_registration(TENANT, f.user, "Three")
        .await
        .unwrap()
        .options;
    assert_eq!(
        options["publicKey"]["excludeCredentials"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    f.service
        .remove_passkey(meta(), TENANT, f.user, &first.credential_id)
        .await
        .unwrap();
    let removed = sign_in(&f, &mut one).await;
    assert_eq!(
        rejected(removed),
        DomainError::invalid("credential", "is not a passkey of this site")
    );
    sign_in(&f, &mut two).await.unwrap();
    f.service
        .disable_user(meta(), TENANT, f.user)
        .await
        .unwrap();
    let disabled = sign_in(&f, &mut two).await;
    assert_eq!(
        rejected(disabled),
        DomainError::invalid("credential", "is not a passkey of this site")
    );
    f.service.enable_user(meta(), TENANT, f.user).await.unwrap();
    let reset = f.service.reset_mfa(meta(), TENANT, f.user).await.unwrap();
    assert_eq!((reset.passkeys, reset.totp), (1, false));
    assert!(sign_in(&f, &mut two).await.is_err());
}

#[tokio::test]
async fn a_stored_public_key_is_a_cose_key_that_encodes_back_to_the_same_bytes() {
    let f = people(Store::Memory, None).await;
    register(&f, f.user, &mut SoftAuthenticator::default(), "Key").await;
    let stored = &mfa_state(&f, f.user).await.passkeys[0];
    let key = credential(stored).unwrap().cred;
    assert!(matches!(key.key, COSEKeyType::EC_EC2(_)));
    assert_eq!(cose_key_bytes(&key).unwrap(), stored.public_key);
}

#[test]
fn the_relying_party_is_the_public_urls_host_and_origin() {
    let rp = RelyingParty::from_public_url("https://login.acme.example:8443/base").unwrap();
    assert_eq!(rp.id(), "login.acme.example");
    assert_eq!(rp.origin.as_str(), "https://login.acme.example:8443/");
    assert!(RelyingParty::from_public_url("not a url").is_err());
}
