//! An invited person follows their link in Chromium: the invitation page, "Set password and
//! accept", and their account page, signed in; then a new tenant's administrator creates an
//! API key on that page. Another person follows the link from the mail they received: the
//! server sends the invitation to a real SMTP server the test started (`smtp.rs`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{browser_present, free_port, start_browser};
use crate::helpers::{Store, TestServer, spawn_app_with_env};
use crate::http_browser::{PEOPLE_ENV, STRONG, tenant_with};
use crate::smtp::SmtpSink;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_person_follows_the_mailed_link_to_a_signed_in_account_in_chromium() {
    if !browser_present() {
        return;
    }
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let mut env = PEOPLE_ENV.to_vec();
    let smtp = sink.url();
    env.push(("TESSERA_SMTP_URL", &smtp));
    env.push(("TESSERA_SMTP_FROM", "Tessera <no-reply@tessera.test>"));
    let app: TestServer = spawn_app_with_env(Store::Embedded, &env).await;
    let tenant = tenant_with(&app, "browser", |_| {}).await;
    let (status, invitation) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/invitations"))
                .json(&json!({
                    "email": "grace@example.com",
                    "roles": ["editor"],
                    "message": "Welcome to the team!",
                })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");

    let mails = sink
        .wait_for("grace@example.com", 1, Duration::from_secs(30))
        .await;
    let mail = &mails[0];
    assert!(
        mail.text
            .as_deref()
            .unwrap_or_default()
            .contains("Welcome to the team!"),
        "the inviter's message is in the mail: {:?}",
        mail.text
    );
    let link = mail
        .link_containing("/t/browser/invite/")
        .unwrap_or_else(|| panic!("no invitation link in {:?}", mail.text));
    assert!(link.starts_with(&app.base), "{link} is on the server");

    let (_driver, mut browser) = start_browser().await;
    browser.site = app.base.clone();
    browser.go(link.trim_start_matches(&app.base)).await;
    assert!(browser.source().await.contains("grace@example.com"));
    browser.fill("Your name", "Grace Hopper").await;
    browser.fill("Password", STRONG).await;
    browser.fill("Confirm password", STRONG).await;
    browser.press("Set password and accept").await;
    browser.arrives("/t/browser/account").await;
    let page = browser.source().await;
    assert!(page.contains("grace@example.com"), "{page}");
    assert!(page.contains("Grace Hopper"), "{page}");

    // The link worked once: opened again, it says it was used.
    browser.go(link.trim_start_matches(&app.base)).await;
    let again = browser.source().await;
    assert!(!again.contains("Set password and accept"), "{again}");
}
