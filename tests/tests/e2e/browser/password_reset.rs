//! A person who forgot their password resets it in Chromium: "Forgot your password?" on the
//! sign-in page, the address, the link from the mail a real SMTP server received (`smtp.rs`),
//! a new password twice, and a sign-in with it; the old password no longer works.

use std::time::Duration;

use super::{browser_present, start_browser};
use crate::helpers::{Store, TestServer, spawn_app_with_env};
use crate::http_browser::{OTHER_STRONG, PEOPLE_ENV, STRONG, person, tenant_with};
use crate::smtp::SmtpSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_resets_a_forgotten_password_from_the_mailed_link_in_chromium() {
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
    person(&app, &tenant, "ada@example.com", STRONG, false).await;
    let (_driver, mut browser) = start_browser().await;
    browser.site = app.base.clone();

    browser.go("/t/browser/login").await;
    browser.follow("Forgot your password?").await;
    browser.fill("Email", "ada@example.com").await;
    browser.press("Send reset link").await;
    let mails = sink
        .wait_for("ada@example.com", 1, Duration::from_secs(30))
        .await;
    let link = mails[0]
        .link_containing("/t/browser/password/reset/")
        .unwrap_or_else(|| panic!("no reset link in {:?}", mails[0].text));

    browser.go(link.trim_start_matches(&app.base)).await;
    browser.fill("New password", OTHER_STRONG).await;
    browser.fill("Confirm new password", OTHER_STRONG).await;
    browser.press("Set new password").await;
    browser
        .arrives("/t/browser/login?notice=password_reset")
        .await;

    // The old password is refused; the new one signs in.
    browser.fill("Email", "ada@example.com").await;
    browser.fill("Password", STRONG).await;
    browser.press("Sign in").await;
    browser.find("//*[@id='sign-in-error']").await;
    assert!(
        browser
            .source()
            .await
            .contains("The email address or password is incorrect."),
        "the old password was not refused"
    );
    browser.go("/t/browser/login").await;
    browser.fill("Email", "ada@example.com").await;
    browser.fill("Password", OTHER_STRONG).await;
    browser.press("Sign in").await;
    browser.arrives("/t/browser/account").await;
}
