//! Refused requests: an error page, never a redirect, while the client or its redirect URI is
//! in doubt; afterwards the error goes back to the client with `state` and `iss`.

use reqwest::StatusCode;
use serde_json::json;

use super::{LOOPBACK, REDIRECT, callback, param, register, rp};
use crate::helpers::Store;
use crate::http_browser::{Answer, Browser};

/// The answer is the HTML error page, with no redirect anywhere.
fn error_page(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(answer.headers.get("location").is_none());
    assert!(answer.body.contains("<html"), "{}", answer.body);
    assert_eq!(answer.headers["x-frame-options"], "DENY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_uri_not_registered_exactly_gets_an_error_page_and_no_redirect() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    for uri in [
        "https://evil.example/cb",
        "https://photos.example/cb/",
        "https://photos.example/cb/evil",
        "https://photos.example/other",
        "https://photos.example:8443/cb",
        "http://photos.example/cb",
        "https://photos.example/cb?flow=other",
        "https://PHOTOS.example/cb",
        "https://photos.example.evil.example/cb",
        "http://127.0.0.1:8080/native/",
    ] {
        let answer = browser.get(&rp.authorize(&[("redirect_uri", uri)])).await;
        error_page(&answer);
        assert!(!answer.body.contains("evil.example"), "{uri}: not echoed");
    }
    error_page(&browser.get(&rp.authorize(&[("redirect_uri", "-")])).await);
    error_page(&browser.get(&rp.authorize(&[("client_id", "-")])).await);
    error_page(&browser.get(&rp.authorize(&[("client_id", "nobody")])).await);
    let twice = format!("{}&client_id={}", rp.authorize(&[]), rp.client_id);
    error_page(&browser.get(&twice).await);
    let twice = format!("{}&redirect_uri={REDIRECT}", rp.authorize(&[]));
    error_page(&browser.get(&twice).await);
    // Even a bad response type is not sent to a redirect URI in doubt.
    let answer = browser
        .get(&rp.authorize(&[
            ("redirect_uri", "https://evil.example/cb"),
            ("response_type", "token"),
        ]))
        .await;
    error_page(&answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_tenant_gets_an_error_page() {
    let rp = rp(Store::Embedded, "photos").await;
    let other = rp.app.create_tenant("other").await;
    let other_id = other["id"].as_str().unwrap();
    let theirs = register(&rp.app, other_id, json!({})).await;
    let browser = Browser::new(&rp.app);
    let answer = browser.get(&rp.authorize(&[("client_id", &theirs)])).await;
    error_page(&answer);
    // And the other way round.
    let path = rp.authorize(&[]).replacen("/t/photos/", "/t/other/", 1);
    error_page(&browser.get(&path).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_after_the_redirect_uri_go_back_to_the_client_with_state_and_iss() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = Browser::new(&rp.app);
    let iss = rp.app.issuer("photos");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("response_type", "-")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (
            &[("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "-")], "invalid_request"),
        (&[("code_challenge", "short")], "invalid_request"),
        (
            &[("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            &[("request_uri", "https://photos.example/req")],
            "request_uri_not_supported",
        ),
        (&[("scope", "openid admin")], "invalid_scope"),
        (&[("scope", "-")], "invalid_scope"),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("max_age", "soon")], "invalid_request"),
    ];
    for (changes, error) in cases {
        let answer = browser.get(&rp.authorize(changes)).await;
        let (to, pairs) = callback(&answer);
        assert_eq!(to, REDIRECT, "{changes:?}");
        assert_eq!(
            param(&pairs, "error"),
            Some(*error),
            "{changes:?}: {pairs:?}"
        );
        assert_eq!(param(&pairs, "state"), Some("st4te/with spaces&more"));
        assert_eq!(param(&pairs, "iss"), Some(iss.as_str()));
        assert!(param(&pairs, "code").is_none());
    }
    let twice = format!("{}&state=again", rp.authorize(&[]));
    let (_, pairs) = callback(&browser.get(&twice).await);
    assert_eq!(param(&pairs, "error"), Some("invalid_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unused_parameters_are_accepted() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = Browser::new(&rp.app);
    let answer = browser
        .get(&rp.authorize(&[
            ("display", "popup"),
            ("ui_locales", "fr-CA fr en"),
            ("claims_locales", "de"),
            ("acr_values", "urn:mace:incommon:iap:silver"),
            ("vendor_extension", "42"),
        ]))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(
        answer.location().starts_with("/t/photos/login?"),
        "{}",
        answer.location()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_must_use_pkce() {
    let rp = rp(Store::Embedded, "photos").await;
    let public = register(
        &rp.app,
        &rp.tenant_id,
        json!({"name": "Phone app", "client_type": "public", "redirect_uris": [LOOPBACK]}),
    )
    .await;
    let browser = Browser::new(&rp.app);
    let without = rp.authorize(&[
        ("client_id", &public),
        ("redirect_uri", LOOPBACK),
        ("code_challenge", "-"),
        ("code_challenge_method", "-"),
    ]);
    let (_, pairs) = callback(&browser.get(&without).await);
    assert_eq!(param(&pairs, "error"), Some("invalid_request"), "{pairs:?}");
    let with = rp.authorize(&[("client_id", &public), ("redirect_uri", LOOPBACK)]);
    let answer = browser.get(&with).await;
    assert!(
        answer.location().starts_with("/t/photos/login?"),
        "{}",
        answer.location()
    );
    // A confidential client may go without (PKCE is still recommended).
    let confidential = rp.authorize(&[("code_challenge", "-"), ("code_challenge_method", "-")]);
    let answer = browser.get(&confidential).await;
    assert!(
        answer.location().starts_with("/t/photos/login?"),
        "{}",
        answer.location()
    );
}
