//! The invitation page offers the tenant's upstream providers: joining through one makes an
//! account linked by the upstream's subject, and the invitation is accepted only by an account
//! that holds the invited address, never by address alone.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::providers::buttons;
use crate::federation::{RP, configure, relative, setup, through_upstream, upstream_person};
use crate::helpers::{Store, TestServer};
use crate::http_browser::{Browser, people_app};

async fn invite(app: &TestServer, tenant: &str, email: &str) -> String {
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/invitations"))
                .json(&json!({"email": email, "roles": ["editor"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    relative(app, body["invite_url"].as_str().unwrap())
}

async fn users(app: &TestServer, tenant: &str) -> Vec<Value> {
    let (_, users) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/users")))
        .await;
    users["items"].as_array().unwrap().clone()
}

/// From the invitation page's "Sign in with Upstream" back to the invitation page.
async fn join_upstream(app: &TestServer, browser: &Browser, page: &str, email: &str) {
    let shown = browser.get(page).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let offered = buttons(&shown.body);
    assert_eq!(offered.len(), 1, "{}", shown.body);
    assert_eq!(offered[0].0, "Sign in with Upstream");
    let started = browser.get(&offered[0].1).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let callback = through_upstream(app, browser, started.location(), email).await;
    let back = browser.get(&relative(app, &callback)).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(back.location(), page);
}

#[tokio::test]
async fn an_invitation_is_accepted_by_joining_through_the_upstream_provider_with_the_invited_address()
 {
    let app = people_app(Store::Embedded).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "ivy@example.org", true).await;
    let page = invite(&app, &setup.rp_id, "ivy@example.org").await;

    let browser = Browser::new(&app);
    join_upstream(&app, &browser, &page, "ivy@example.org").await;
    let accept = browser.submit(&page, &page, &[("choice", "accept")]).await;
    assert_eq!(accept.status, StatusCode::SEE_OTHER, "{}", accept.body);
    let people = users(&app, &setup.rp_id).await;
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0]["email"], "ivy@example.org");
    assert_eq!(people[0]["roles"], json!(["editor"]), "{people:?}");

    // The upstream identity is linked: another browser signs in to the same account.
    let again = Browser::new(&app);
    let started = again
        .get(&format!("/t/{RP}/login/federation/default"))
        .await;
    let callback = through_upstream(&app, &again, started.location(), "ivy@example.org").await;
    let answer = again.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(users(&app, &setup.rp_id).await.len(), 1);
}

#[tokio::test]
async fn joining_upstream_with_another_address_does_not_accept_someone_elses_invitation() {
    let app = people_app(Store::Embedded).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "mallory@example.org", true).await;
    let page = invite(&app, &setup.rp_id, "zed@example.org").await;

    let browser = Browser::new(&app);
    join_upstream(&app, &browser, &page, "mallory@example.org").await;
    // Back on the page, signed in as mallory: nothing offers to accept with that account,
    // and accepting with it is refused.
    let shown = browser.get(&page).await;
    assert!(!shown.body.contains("Accept invitation"), "{}", shown.body);
    let refused = browser.submit(&page, &page, &[("choice", "accept")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("Sign in with the invited account"),
        "{}",
        refused.body
    );
    let people = users(&app, &setup.rp_id).await;
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0]["email"], "mallory@example.org");
    assert_eq!(people[0]["roles"], json!([]), "{people:?}");
}
