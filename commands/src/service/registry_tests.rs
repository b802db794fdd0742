//! Issue 21's commands on the log: one trial per tenant and product and one expiry, also when
//! two nodes decide at once; grants and trials guarded by the product's stream; requests as
//! facts that check tenant and product first.

use tessera_domain::DomainError;
use tessera_domain::product::Product;
use tessera_event_schemas::Event;

use super::people_testing::{Store, TENANT, people};
use super::tests::meta;
use super::*;
use crate::CommandError;

fn entry(supports_trial: bool) -> Product {
    Product {
        name: "Suite".into(),
        description: String::new(),
        plans_required: vec![],
        demo_url: None,
        supports_trial,
    }
}

#[tokio::test]
async fn two_nodes_starting_a_trial_at_once_start_one() {
    let fixture = people(Store::Memory, None).await;
    fixture
        .service
        .put_product(meta(), "suite", entry(true))
        .await
        .unwrap();
    let other = fixture.another_node();
    let (first, second) = tokio::join!(
        fixture.service.start_trial(meta(), TENANT, "suite"),
        other.start_trial(meta(), TENANT, "suite"),
    );
    let refused = [&first, &second]
        .iter()
        .filter(|outcome| {
            matches!(
                outcome,
                Err(CommandError::Rejected(DomainError::Conflict(_)))
            )
        })
        .count();
    assert_eq!(refused, 1, "{first:?} {second:?}");
    assert_eq!(
        fixture.events_of("entitlement.trial_started").await.len(),
        1
    );
}

#[tokio::test]
async fn two_nodes_expiring_at_once_append_one_expiry_and_only_when_due() {
    let fixture = people(Store::Memory, None).await;
    fixture
        .service
        .put_product(meta(), "suite", entry(true))
        .await
        .unwrap();
    fixture
        .service
        .start_trial(meta(), TENANT, "suite")
        .await
        .unwrap();
    // Not due yet: nothing.
    fixture
        .service
        .expire_entitlement(meta(), TENANT, "suite")
        .await
        .unwrap();
    assert!(fixture.events_of("entitlement.expired").await.is_empty());

    fixture.clock.advance_seconds(14 * 86_400);
    let other = fixture.another_node();
    let (a, b) = tokio::join!(
        fixture.service.expire_entitlement(meta(), TENANT, "suite"),
        other.expire_entitlement(meta(), TENANT, "suite"),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(fixture.events_of("entitlement.expired").await.len(), 1);
}

#[tokio::test]
async fn grants_and_requests_need_the_product_in_the_catalog() {
    let fixture = people(Store::Memory, None).await;
    let grant = || GrantEntitlement {
        enabled: true,
        config_json: "{}".into(),
        expires_at: None,
    };
    let missing = fixture
        .service
        .grant_entitlement(meta(), TENANT, "suite", grant())
        .await;
    assert!(
        matches!(
            missing,
            Err(CommandError::NotFound {
                kind: "product",
                ..
            })
        ),
        "{missing:?}"
    );
    let missing = fixture
        .service
        .request_product(meta(), TENANT, "suite", None)
        .await;
    assert!(matches!(
        missing,
        Err(CommandError::NotFound {
            kind: "product",
            ..
        })
    ));

    fixture
        .service
        .put_product(meta(), "suite", entry(false))
        .await
        .unwrap();
    fixture
        .service
        .grant_entitlement(meta(), TENANT, "suite", grant())
        .await
        .unwrap();
    // The same grant again appends nothing; a request is recorded each time.
    let before = fixture.events().await.len();
    fixture
        .service
        .grant_entitlement(meta(), TENANT, "suite", grant())
        .await
        .unwrap();
    assert_eq!(fixture.events().await.len(), before);
    fixture
        .service
        .request_product(meta(), TENANT, "suite", Some("ops".into()))
        .await
        .unwrap();
    let requests = fixture.events_of("product.requested").await;
    assert!(
        matches!(&requests[..], [Event::ProductRequested(r)] if r.requested_by.as_deref() == Some("ops"))
    );

    // A removed product takes no new grant.
    fixture
        .service
        .remove_product(meta(), "suite")
        .await
        .unwrap();
    let removed = fixture
        .service
        .grant_entitlement(
            meta(),
            TENANT,
            "suite",
            GrantEntitlement {
                enabled: false,
                ..grant()
            },
        )
        .await;
    assert!(matches!(removed, Err(CommandError::NotFound { .. })));
}
