//! Erasing a user forgets their upstream identities: the link's reservation is released with
//! the erasure, and the same person signing in upstream afterwards gets a fresh account.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::federation::{RP, configure, hosted_sign_in, setup, upstream_person};
use crate::helpers::{Store, TestServer, read_log};
use crate::http_browser::{Browser, people_app};

async fn users(app: &TestServer, tenant: &str) -> Vec<Value> {
    let (status, users) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/users")))
        .await;
    assert_eq!(status, StatusCode::OK, "{users}");
    users["items"].as_array().unwrap().clone()
}

fn released(events: &[tessera_event_schemas::RecordedEvent]) -> usize {
    events
        .iter()
        .filter(|e| {
            e.envelope.event_type == "reservation.released"
                && e.envelope.stream_id.contains("federated-identity")
        })
        .count()
}

async fn erasure_forgets_the_link(store: Store) {
    let app = people_app(store).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "mae@example.org", true).await;

    let browser = Browser::new(&app);
    let answer = hosted_sign_in(&app, &browser, None, "mae@example.org").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let first = users(&app, &setup.rp_id).await;
    assert_eq!(first.len(), 1);
    let erased_id = first[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(released(&read_log(&app).await), 0);

    let (status, body) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{}/users/{erased_id}", setup.rp_id),
        ))
        .await;
    assert!(status.is_success(), "{status} {body}");
    // The erasure itself released the link, not a later sign-in.
    assert_eq!(released(&read_log(&app).await), 1);

    let again = Browser::new(&app);
    let answer = hosted_sign_in(&app, &again, None, "mae@example.org").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), format!("/t/{RP}/account"));
    assert!(again.is_signed_in(RP).await);
    let after = users(&app, &setup.rp_id).await;
    assert_eq!(after.len(), 2, "{after:?}");
    let fresh = after
        .iter()
        .find(|user| user["id"] != erased_id.as_str())
        .unwrap();
    assert_eq!(fresh["status"], "active", "{fresh}");
    assert_eq!(fresh["email"], "mae@example.org", "{fresh}");
    let old = after
        .iter()
        .find(|user| user["id"] == erased_id.as_str())
        .unwrap();
    assert_eq!(old["status"], "erased", "{old}");
}

#[tokio::test]
async fn an_erased_users_upstream_identity_signs_in_to_a_fresh_account_embedded() {
    erasure_forgets_the_link(Store::Embedded).await;
}

#[tokio::test]
async fn an_erased_users_upstream_identity_signs_in_to_a_fresh_account_on_postgres() {
    erasure_forgets_the_link(Store::Postgres).await;
}
