//! A person signs in to a tenant through its upstream identity provider in Chromium: "Sign in
//! with Upstream" on the tenant's page, the upstream's own sign-in page (another tenant of the
//! same server), and back, signed in, to the account page.

use std::time::Duration;

use serde_json::json;

use super::{browser_present, free_port, start_browser};
use crate::federation::{PASSWORD, RP, configure, setup, upstream_person};
use crate::helpers::{Store, TestServer, eventually, spawn_app_with_env};
use crate::http_browser::PEOPLE_ENV;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_the_tenants_identity_provider_in_chromium() {
    if !browser_present() {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut env = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_LISTEN", &listen));
    let app: TestServer = spawn_app_with_env(Store::Embedded, &env).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert!(status.is_success(), "{body}");
    upstream_person(&app, &setup, "ada@example.com", true).await;
    let (_driver, mut browser) = start_browser().await;
    browser.site = app.base.clone();

    browser.go(&format!("/t/{RP}/login")).await;
    browser.follow("Sign in with Upstream").await;
    // The upstream's own sign-in page, once the browser is there.
    let upstream = eventually(Duration::from_secs(20), || async {
        browser.path().await.starts_with("/t/upstream/login")
    })
    .await;
    assert!(
        upstream,
        "never reached the upstream: at {}",
        browser.path().await
    );
    browser.fill("Email", "ada@example.com").await;
    browser.fill("Password", PASSWORD).await;
    browser.press("Sign in").await;
    browser.arrives(&format!("/t/{RP}/account")).await;
    assert!(browser.source().await.contains("ada@example.com"));
}
