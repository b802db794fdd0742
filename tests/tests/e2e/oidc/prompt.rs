//! `prompt`, `max_age` and `id_token_hint`: when the endpoint must not show a page, and when
//! it must ask the person to sign in again.

use reqwest::StatusCode;

use super::{callback, decide, issued_codes, param, rp};
use crate::helpers::Store;
use crate::http_browser::{Browser, advance_clock};
use crate::on_both_stores;

async fn prompt_none_answers_without_a_page(store: Store) {
    let rp = rp(store, "photos").await;
    let browser = Browser::new(&rp.app);
    let iss = rp.app.issuer("photos");

    let answer = browser.get(&rp.authorize(&[("prompt", "none")])).await;
    let (_, pairs) = callback(&answer);
    assert_eq!(param(&pairs, "error"), Some("login_required"));
    assert_eq!(param(&pairs, "state"), Some("st4te/with spaces&more"));
    assert_eq!(param(&pairs, "iss"), Some(iss.as_str()));

    browser
        .signed_in("photos", super::EMAIL, crate::http_browser::STRONG)
        .await;
    let answer = browser.get(&rp.authorize(&[("prompt", "none")])).await;
    let (_, pairs) = callback(&answer);
    assert_eq!(param(&pairs, "error"), Some("consent_required"));

    let page = browser.get(&rp.authorize(&[])).await;
    callback(&decide(&browser, &page, "allow").await);
    let answer = browser.get(&rp.authorize(&[("prompt", "none")])).await;
    let (_, pairs) = callback(&answer);
    assert!(param(&pairs, "code").is_some(), "{pairs:?}");
    assert_eq!(param(&pairs, "iss"), Some(iss.as_str()));
}
on_both_stores!(prompt_none_answers_without_a_page);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_login_asks_for_a_new_sign_in_once_and_the_code_shows_its_time() {
    let mut rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    let page = browser.get(&rp.authorize(&[])).await;
    callback(&decide(&browser, &page, "allow").await);
    advance_clock(&rp.app, 5).await;

    let answer = browser.get(&rp.authorize(&[("prompt", "login")])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    // Signed in, yet the sign-in form shows: the request asked for a new sign-in.
    let back = rp.sign_in_at(&browser, &answer).await;
    assert!(
        !back.location().contains("prompt=login"),
        "{}",
        back.location()
    );
    // And the continuation does not loop: the new session is accepted.
    let (_, pairs) = callback(&browser.get(back.location()).await);
    assert!(param(&pairs, "code").is_some(), "{pairs:?}");

    let codes = issued_codes(&mut rp.app).await;
    assert_eq!(codes.len(), 2);
    assert!(
        codes[1].auth_time.as_micros() >= codes[0].auth_time.as_micros() + 5_000_000,
        "a new auth_time: {:?} then {:?}",
        codes[0].auth_time,
        codes[1].auth_time
    );
    assert_ne!(codes[1].session_id, codes[0].session_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_asks_for_a_new_sign_in_when_the_session_is_older() {
    let mut rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    let page = browser.get(&rp.authorize(&[("max_age", "60")])).await;
    callback(&decide(&browser, &page, "allow").await);

    advance_clock(&rp.app, 2).await;
    let answer = browser.get(&rp.authorize(&[("max_age", "1")])).await;
    let back = rp.sign_in_at(&browser, &answer).await;
    let (_, pairs) = callback(&browser.get(back.location()).await);
    assert!(param(&pairs, "code").is_some(), "{pairs:?}");

    // prompt=none with a session too old: login_required, no page.
    advance_clock(&rp.app, 2).await;
    let answer = browser
        .get(&rp.authorize(&[("max_age", "1"), ("prompt", "none")]))
        .await;
    let (_, pairs) = callback(&answer);
    assert_eq!(param(&pairs, "error"), Some("login_required"));

    let codes = issued_codes(&mut rp.app).await;
    assert_eq!(codes.len(), 2);
    assert!(codes[1].auth_time.as_micros() > codes[0].auth_time.as_micros());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_hint_that_does_not_verify_is_refused() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    let page = browser.get(&rp.authorize(&[])).await;
    callback(&decide(&browser, &page, "allow").await);
    let forged = "eyJhbGciOiJIUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2ln";
    let answer = browser
        .get(&rp.authorize(&[("id_token_hint", forged)]))
        .await;
    let (_, pairs) = callback(&answer);
    assert_eq!(param(&pairs, "error"), Some("invalid_request"), "{pairs:?}");
    assert!(param(&pairs, "code").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_hint_must_name_the_person_signed_in() {
    let rp = rp(Store::Embedded, "photos").await;
    let (client, secret) =
        super::register_with_secret(&rp.app, &rp.tenant_id, serde_json::json!({})).await;
    let browser = rp.signed_in_browser().await;
    let page = browser.get(&rp.authorize(&[("client_id", &client)])).await;
    let (_, pairs) = callback(&decide(&browser, &page, "allow").await);
    let code = param(&pairs, "code").unwrap().to_owned();
    let response = rp
        .app
        .client
        .post(format!("{}/t/photos/oauth/token", rp.app.base))
        .basic_auth(&client, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", super::REDIRECT),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();

    // The person it names: a code, without a page.
    let hinted = rp.authorize(&[
        ("client_id", &client),
        ("prompt", "none"),
        ("id_token_hint", &id_token),
    ]);
    let (_, pairs) = callback(&browser.get(&hinted).await);
    assert!(param(&pairs, "code").is_some(), "{pairs:?}");

    // Someone else signed in in another browser: login_required, whatever else.
    crate::http_browser::person(
        &rp.app,
        &rp.tenant_id,
        "grace@example.com",
        crate::http_browser::STRONG,
        false,
    )
    .await;
    let grace = Browser::new(&rp.app);
    grace
        .signed_in("photos", "grace@example.com", crate::http_browser::STRONG)
        .await;
    let (_, pairs) = callback(&grace.get(&hinted).await);
    assert_eq!(param(&pairs, "error"), Some("login_required"), "{pairs:?}");
}
