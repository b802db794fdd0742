//! A person signs in on the hosted pages in Chromium: a password, an authenticator app's
//! code, then a passkey alone.

use reqwest::Method;
use serde_json::json;

use super::{browser_present, free_port, start_browser};
use crate::helpers::{Store, TestServer, spawn_app_with_env};
use crate::http_browser::{AuthenticatorApp, PEOPLE_ENV, STRONG, person, tenant_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_a_password_an_app_code_and_a_passkey_in_chromium() {
    if !browser_present() {
        return;
    }
    // WebAuthn needs a host name (not an address) in a secure context: http://localhost.
    let port = free_port();
    let (listen, public) = (
        format!("127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    );
    let mut env = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_LISTEN", &listen));
    env.push(("TESSERA_PUBLIC_URL", &public));
    let app: TestServer = spawn_app_with_env(Store::Embedded, &env).await;
    let acme = tenant_with(&app, "browser", |_| {}).await;
    person(&app, &acme, "ada@example.com", STRONG, false).await;
    let (_driver, mut browser) = start_browser().await;
    browser.site = public.clone();

    // A password, then an authenticator app set up on the account page.
    browser.sign_in_with_password("browser").await;
    browser.arrives("/t/browser/account").await;
    browser.press("Set up an authenticator app").await;
    let secret = browser.value("Secret for manual entry").await;
    let mut phone = AuthenticatorApp::new(&secret);
    browser.fill("Authentication code", &phone.code()).await;
    browser.press("Turn on authenticator app").await;
    // The codes' page, once it shows.
    browser.find("//a[normalize-space()='Continue']").await;
    let codes = browser.source().await;
    assert_eq!(codes.matches("<li><code>").count(), 10, "{codes}");
    browser.follow("Continue").await;
    browser.arrives("/t/browser/account?done=totp").await;

    // Out, and in again with the password and a code.
    browser.sign_out("browser").await;
    browser.sign_in_with_password("browser").await;
    browser.arrives("/t/browser/login/mfa").await;
    let code = phone.next_code(&app).await;
    browser.fill("Authentication code", &code).await;
    browser.press("Verify").await;
    browser.arrives("/t/browser/account").await;

    // A passkey, on Chromium's virtual authenticator.
    browser
        .call(
            Method::POST,
            "/webauthn/authenticator",
            Some(json!({"protocol": "ctap2", "transport": "internal",
                "hasResidentKey": true, "hasUserVerification": true, "isUserVerified": true})),
        )
        .await;
    browser.fill("Passkey name", "Chromium").await;
    browser.press("Add a passkey").await;
    browser.arrives("/t/browser/account?done=passkey").await;
    assert!(browser.source().await.contains("<td>Chromium</td>"));

    // Out, and in with the passkey alone: no address typed.
    browser.sign_out("browser").await;
    browser.go("/t/browser/login").await;
    browser.press("Sign in with a passkey").await;
    browser.arrives("/t/browser/account").await;
    assert!(browser.source().await.contains("ada@example.com"));
}
