//! A provider's own `redirect_path`: Tessera serves the callback there when the origin is its
//! own, and refuses, at configuration, a path under one of its own routes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::federation::{RP, configure, relative, setup, through_upstream, upstream_person};
use crate::helpers::Store;
use crate::http_browser::{Browser, people_app};

async fn own_redirect_path(store: Store) {
    let app = people_app(store).await;
    let setup = setup(&app).await;
    // An upstream client registered for the RP's own callback path.
    let (status, created) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{}/clients", setup.upstream_id),
            )
            .json(&json!({
                "name": "Tessera RP at /sso/return",
                "grant_types": ["authorization_code"],
                "redirect_uris": [format!("{}/sso/return", app.base)],
                "allowed_scopes": ["openid", "profile", "email"],
                "require_consent": false,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let client = json!({
        "client_id": created["client"]["client_id"],
        "client_secret": created["client_secret"],
    });

    // Paths under Tessera's own routes are refused on its own origin, naming the field.
    for path in [
        "/v1/callback",
        "/t/acme-rp/callback",
        "/auth/callback",
        "/",
        "/healthz",
    ] {
        let mut body = client.clone();
        body["redirect_path"] = json!(path);
        let (status, answer) = configure(&app, &setup, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["field"], "redirect_path", "{path}: {answer}");
    }
    // A frontend elsewhere may use any path: Tessera does not serve it.
    let mut elsewhere = client.clone();
    elsewhere["canonical_public_origin"] = json!("https://app.example");
    elsewhere["redirect_path"] = json!("/auth/callback");
    let (status, answer) = configure(&app, &setup, elsewhere).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let mut own = client.clone();
    own["canonical_public_origin"] = json!(app.base);
    own["redirect_path"] = json!("/sso/return");
    let (status, answer) = configure(&app, &setup, own).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["redirect_uri"], format!("{}/sso/return", app.base));
    upstream_person(&app, &setup, "noor@example.org", true).await;

    let browser = Browser::new(&app);
    let started = browser
        .get(&format!("/t/{RP}/login/federation/default"))
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let callback = through_upstream(&app, &browser, started.location(), "noor@example.org").await;
    assert!(
        callback.starts_with(&format!("{}/sso/return?", app.base)),
        "{callback}"
    );
    let answer = browser.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), format!("/t/{RP}/account"));
    assert!(browser.is_signed_in(RP).await);

    // The path serves nothing else: without a state of its own it is the API's 404.
    let stray = browser.get("/sso/return?state=forged&code=x").await;
    assert_eq!(stray.status, StatusCode::NOT_FOUND, "{}", stray.body);
    let unknown = browser.get("/no/such/page").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
}

#[tokio::test]
async fn a_provider_with_its_own_redirect_path_is_served_there_embedded() {
    own_redirect_path(Store::Embedded).await;
}

#[tokio::test]
async fn a_provider_with_its_own_redirect_path_is_served_there_on_postgres() {
    own_redirect_path(Store::Postgres).await;
}
