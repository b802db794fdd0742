//! An invited person follows their link in Chromium: the invitation page, "Set password and
//! accept", and their account page, signed in; then a new tenant's administrator creates an
//! API key on that page.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{browser_present, free_port, start_browser};
use crate::helpers::{Store, TestServer, spawn_app_with_env};
use crate::http_browser::{PEOPLE_ENV, STRONG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_administrator_accepts_in_chromium_and_creates_an_api_key() {
    if !browser_present() {
        return;
    }
    let port = free_port();
    let (listen, public) = (
        format!("127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    );
    let mut env = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_LISTEN", &listen));
    env.push(("TESSERA_PUBLIC_URL", &public));
    let app: TestServer = spawn_app_with_env(Store::Embedded, &env).await;
    let (status, created) = app
        .send(app.admin(Method::POST, "/v1/tenants").json(&json!({
            "slug": "handover",
            "name": "Handover Ltd",
            "admin_email": "owner@handover.test",
            "admin_name": "Olivia Owner",
        })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let link = created["invite_url"].as_str().unwrap().to_owned();
    let (_driver, mut browser) = start_browser().await;
    browser.site = public.clone();

    browser
        .go(link.strip_prefix(&public).unwrap_or(&link))
        .await;
    assert_eq!(browser.value("Your name").await, "Olivia Owner");
    browser.fill("Password", STRONG).await;
    browser.fill("Confirm password", STRONG).await;
    browser.press("Set password and accept").await;
    browser.arrives("/t/handover/account").await;
    let account = browser.source().await;
    assert!(account.contains("owner@handover.test"), "{account}");

    browser.fill("Key name", "deploy").await;
    let scope = browser
        .find("//input[@id=//label[contains(normalize-space(), 'Administer this organisation')]/@for]")
        .await;
    browser
        .call(Method::POST, &format!("/element/{scope}/click"), None)
        .await;
    browser.press("Create API key").await;
    let key = browser.value("API key").await;
    assert!(key.starts_with("tsr_"), "{key}");
    let tenant = created["id"].as_str().unwrap();
    let (status, _) = app
        .send(app.request(
            Method::GET,
            &format!("/v1/tenants/{tenant}/users"),
            Some(&key),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
}
