//! An application signs a person in through the authorization endpoint and the consent page,
//! in Chromium.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{browser_present, start_browser};
use crate::helpers::{Store, TestServer, eventually, spawn_app_with_env};
use crate::http_browser::{PEOPLE_ENV, STRONG, person, tenant_with};

/// A client's redirect URI on 127.0.0.1: answers every request with a small page and keeps
/// each request's target (`/callback?code=...`).
async fn redirect_listener() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = vec![0u8; 16 * 1024];
            let read = stream.read(&mut head).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&head[..read]).into_owned();
            if let Some(target) = text.split(' ').nth(1) {
                keep.lock().unwrap().push(target.to_owned());
            }
            let body = "<!DOCTYPE html><title>Photo Album</title><p>Back at the application.</p>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_signs_a_person_in_with_consent_in_chromium() {
    if !browser_present() {
        return;
    }
    let app: TestServer = spawn_app_with_env(Store::Embedded, PEOPLE_ENV).await;
    let tenant = tenant_with(&app, "browser", |_| {}).await;
    person(&app, &tenant, "ada@example.com", STRONG, false).await;
    let (status, client) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/clients"))
                .json(&json!({
                    "name": "Photo Album",
                    "grant_types": ["authorization_code"],
                    // A native app's loopback redirect: any port (RFC 8252 §7.3).
                    "redirect_uris": ["http://127.0.0.1/callback"],
                    "allowed_scopes": ["openid", "email"],
                })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{client}");
    let client_id = client["client"]["client_id"].as_str().unwrap();
    let (port, seen) = redirect_listener().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid email"),
            ("state", "chromium-state"),
            ("nonce", "chromium-nonce"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let (_driver, mut browser) = start_browser().await;
    browser.site = app.base.clone();

    browser
        .go(&format!("/t/browser/oauth/authorize?{query}"))
        .await;
    browser.fill("Email", "ada@example.com").await;
    browser.fill("Password", STRONG).await;
    browser.press("Sign in").await;
    // The consent page, by its buttons and words.
    browser.find("//button[normalize-space()='Allow']").await;
    let consent = browser.source().await;
    assert!(consent.contains("Photo Album"), "{consent}");
    assert!(consent.contains("See your email address"), "{consent}");
    browser.press("Allow").await;

    let arrived = eventually(Duration::from_secs(20), || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|target| target.starts_with("/callback?"))
    })
    .await;
    if !arrived {
        let requests = seen.lock().unwrap().clone();
        panic!(
            "never reached the application: at {} ({requests:?}): {}",
            browser.path().await,
            browser.source().await
        );
    }
    let target = seen
        .lock()
        .unwrap()
        .iter()
        .find(|target| target.starts_with("/callback?"))
        .unwrap()
        .clone();
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(target.trim_start_matches("/callback?").as_bytes())
            .into_owned()
            .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(get("state").as_deref(), Some("chromium-state"));
    assert_eq!(get("iss"), Some(app.issuer("browser")));
    assert!(
        get("code").is_some_and(|code| code.len() >= 64),
        "{pairs:?}"
    );

    // Again with prompt=login: the sign-in form itself now leads to the application, since
    // the consent is remembered (the sign-in page's form-action must allow that last hop);
    // login_hint fills the address in.
    let again = query.replace("chromium-state", "second-state")
        + "&prompt=login&login_hint=ada%40example.com";
    browser
        .go(&format!("/t/browser/oauth/authorize?{again}"))
        .await;
    assert_eq!(browser.value("Email").await, "ada@example.com");
    browser.fill("Password", STRONG).await;
    browser.press("Sign in").await;
    let back = eventually(Duration::from_secs(20), || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|target| target.contains("state=second-state"))
    })
    .await;
    assert!(back, "never came back: {}", browser.source().await);
}
