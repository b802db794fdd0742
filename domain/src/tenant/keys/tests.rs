//! Given/when/then tests of the key ring with keys of several algorithms: one active key per
//! algorithm, the default key, the RS256 key added at creation and at a start.

use tessera_event_schemas::events::{
    PublicJwkV1, SigningAlg, SigningKeyAddedV1, SigningKeyRotatedV1, SigningKeyV1, TenantKind,
};
use tessera_event_schemas::{Event, Timestamp};
use uuid::Uuid;

use crate::tenant::{KeyStatus, NewTenant, TenantCommand, TenantState, default_settings};
use crate::testing::given;
use crate::{Aggregate, DomainError};

const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

fn key(kid: &str, alg: SigningAlg) -> SigningKeyV1 {
    let public_jwk = match alg {
        SigningAlg::ES256 => PublicJwkV1::Ec {
            x: "x".into(),
            y: "y".into(),
        },
        SigningAlg::EdDSA => PublicJwkV1::Okp { x: "x".into() },
        SigningAlg::RS256 => PublicJwkV1::Rsa {
            n: "n".into(),
            e: "AQAB".into(),
        },
    };
    SigningKeyV1 {
        kid: kid.to_owned(),
        alg,
        public_jwk,
        sealed_private_key: vec![9; 60].into(),
        created_at: NOW,
    }
}

fn new_tenant(added_keys: Vec<SigningKeyV1>) -> NewTenant {
    NewTenant {
        tenant_id: Uuid::from_u128(7),
        slug: "acme-corp".into(),
        name: "Acme".into(),
        plan: "starter".into(),
        kind: TenantKind::Customer,
        domains: Vec::new(),
        settings: default_settings(),
        config_json: "{}".into(),
        sales_owner: None,
        signing_key: key("es-1", SigningAlg::ES256),
        added_keys,
        now: NOW,
        initial_status: None,
    }
}

/// A tenant created with an ES256 default and an RS256 key beside it.
fn both() -> Vec<Event> {
    given::<TenantState>([])
        .when(TenantCommand::Create(Box::new(new_tenant(vec![key(
            "rs-1",
            SigningAlg::RS256,
        )]))))
        .unwrap_or_default()
}

fn added(kid: &str, alg: SigningAlg) -> Event {
    Event::SigningKeyAdded(SigningKeyAddedV1 { key: key(kid, alg) })
}

fn rotated(kid: &str, alg: SigningAlg, previous_kid: &str) -> Event {
    Event::SigningKeyRotated(SigningKeyRotatedV1 {
        key: key(kid, alg),
        previous_kid: previous_kid.into(),
    })
}

fn statuses(events: &[Event]) -> Vec<(String, KeyStatus)> {
    TenantState::replay(events)
        .tenant
        .map(|t| t.keys.iter().map(|k| (k.kid.clone(), k.status)).collect())
        .unwrap_or_default()
}

#[test]
fn a_creation_adds_the_rs256_key_in_the_same_append() {
    let events = both();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1], added("rs-1", SigningAlg::RS256));
    let tenant = TenantState::replay(&events)
        .tenant
        .unwrap_or_else(|| panic!("created"));
    assert_eq!(
        tenant.active_key().map(|k| k.kid.as_str()),
        Some("es-1"),
        "the default key stays the creation key"
    );
    assert_eq!(
        tenant
            .active_key_for(SigningAlg::RS256)
            .map(|k| k.kid.as_str()),
        Some("rs-1")
    );
    assert_eq!(
        tenant
            .active_key_for(SigningAlg::ES256)
            .map(|k| k.kid.as_str()),
        Some("es-1")
    );
    assert!(tenant.active_key_for(SigningAlg::EdDSA).is_none());
}

#[test]
fn a_creation_refuses_a_second_key_of_the_default_algorithm() {
    let refused =
        given::<TenantState>([]).when(TenantCommand::Create(Box::new(new_tenant(vec![key(
            "es-2",
            SigningAlg::ES256,
        )]))));
    assert!(
        matches!(&refused, Err(DomainError::Validation { field, .. }) if field == "added_keys[0].alg"),
        "{refused:?}"
    );
}

#[test]
fn adding_a_key_of_an_algorithm_with_an_active_key_is_a_conflict() {
    let state = given::<TenantState>(both());
    assert!(matches!(
        state.when(TenantCommand::AddKey {
            key: key("rs-2", SigningAlg::RS256)
        }),
        Err(DomainError::Conflict(_))
    ));
    assert!(
        matches!(
            state.when(TenantCommand::AddKey {
                key: key("ed-1", SigningAlg::EdDSA)
            }),
            Err(DomainError::Validation { field, .. }) if field == "key.alg"
        ),
        "only RS256 keys are added beside the default"
    );
}

#[test]
fn ensuring_a_key_adds_it_once() {
    let created = both();
    let old_log = vec![created[0].clone()];
    let ensure = TenantCommand::EnsureKey {
        key: key("rs-9", SigningAlg::RS256),
    };
    assert_eq!(
        given::<TenantState>(old_log).when(ensure.clone()),
        Ok(vec![added("rs-9", SigningAlg::RS256)]),
        "a tenant without an RS256 key gets one"
    );
    assert_eq!(
        given::<TenantState>(created).when(ensure),
        Ok(Vec::new()),
        "a tenant with one gets nothing"
    );
}

#[test]
fn rotating_an_algorithm_replaces_only_its_own_active_key() {
    let mut log = both();
    let state = given::<TenantState>(log.clone());
    let rotation = state.when(TenantCommand::RotateKey {
        key: key("rs-2", SigningAlg::RS256),
    });
    assert_eq!(
        rotation,
        Ok(vec![rotated("rs-2", SigningAlg::RS256, "rs-1")])
    );
    log.extend(rotation.unwrap_or_default());
    assert_eq!(
        statuses(&log),
        vec![
            ("es-1".to_owned(), KeyStatus::Active),
            ("rs-1".to_owned(), KeyStatus::Published),
            ("rs-2".to_owned(), KeyStatus::Active),
        ]
    );
    let tenant = TenantState::replay(&log)
        .tenant
        .unwrap_or_else(|| panic!("created"));
    assert_eq!(tenant.active_kid, "es-1", "the default key is untouched");

    let rotation = given::<TenantState>(log.clone()).when(TenantCommand::RotateKey {
        key: key("es-2", SigningAlg::ES256),
    });
    assert_eq!(
        rotation,
        Ok(vec![rotated("es-2", SigningAlg::ES256, "es-1")])
    );
    log.extend(rotation.unwrap_or_default());
    let tenant = TenantState::replay(&log)
        .tenant
        .unwrap_or_else(|| panic!("created"));
    assert_eq!(tenant.active_kid, "es-2");
    assert_eq!(
        tenant
            .active_key_for(SigningAlg::RS256)
            .map(|k| k.kid.as_str()),
        Some("rs-2")
    );
}

#[test]
fn rotating_to_an_algorithm_without_an_active_key_replaces_the_default_key() {
    let mut log = both();
    let rotation = given::<TenantState>(log.clone()).when(TenantCommand::RotateKey {
        key: key("ed-1", SigningAlg::EdDSA),
    });
    assert_eq!(
        rotation,
        Ok(vec![rotated("ed-1", SigningAlg::EdDSA, "es-1")])
    );
    log.extend(rotation.unwrap_or_default());
    let tenant = TenantState::replay(&log)
        .tenant
        .unwrap_or_else(|| panic!("created"));
    assert_eq!(tenant.active_kid, "ed-1");
    assert!(tenant.active_key_for(SigningAlg::ES256).is_none());
    assert!(tenant.active_key_for(SigningAlg::RS256).is_some());
}

#[test]
fn an_active_rs256_key_cannot_be_retired() {
    let state = given::<TenantState>(both());
    assert!(matches!(
        state.when(TenantCommand::RetireKey { kid: "rs-1".into() }),
        Err(DomainError::Conflict(message)) if message.contains("rotate first")
    ));
}

#[test]
fn an_rs256_default_rotated_to_another_algorithm_stays_the_rs256_key() {
    let rsa_default = NewTenant {
        signing_key: key("rs-1", SigningAlg::RS256),
        ..new_tenant(Vec::new())
    };
    let mut log = given::<TenantState>([])
        .when(TenantCommand::Create(Box::new(rsa_default)))
        .unwrap_or_default();
    assert_eq!(log.len(), 1, "an RS256 default needs no second RS256 key");
    let rotation = given::<TenantState>(log.clone()).when(TenantCommand::RotateKey {
        key: key("es-1", SigningAlg::ES256),
    });
    assert_eq!(
        rotation,
        Ok(vec![rotated("es-1", SigningAlg::ES256, "rs-1")])
    );
    log.extend(rotation.unwrap_or_default());
    let tenant = TenantState::replay(&log)
        .tenant
        .unwrap_or_else(|| panic!("created"));
    assert_eq!(tenant.active_kid, "es-1");
    assert_eq!(
        tenant
            .active_key_for(SigningAlg::RS256)
            .map(|k| k.kid.as_str()),
        Some("rs-1")
    );
}
