//! Linking an upstream identity to an existing account, an ID token signed by another key,
//! an upstream that is down, and the redirect grace period after an origin change.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::helpers::{Store, spawn_app_with_env};
use crate::http_browser::{Browser, PEOPLE_ENV, advance_clock, people_app, person};

#[tokio::test]
async fn an_existing_account_is_linked_only_after_its_holder_signs_in_and_then_signs_in_directly() {
    let app = people_app(Store::Embedded).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let local = person(&app, &setup.rp_id, "ada@example.com", PASSWORD, false).await;
    upstream_person(&app, &setup, "ada@example.com", true).await;

    let browser = Browser::new(&app);
    let answer = hosted_sign_in(&app, &browser, None, "ada@example.com").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let link = answer.location().to_owned();
    assert!(
        link.starts_with(&format!("/t/{RP}/login/federation/link/")),
        "{link}"
    );
    // Not signed in here yet: the address alone links nothing.
    assert!(!browser.is_signed_in(RP).await);
    let to_login = browser.get(&link).await;
    assert_eq!(to_login.status, StatusCode::SEE_OTHER);
    let login = to_login.location().to_owned();
    assert!(
        login.starts_with(&format!("/t/{RP}/login?return_to=")),
        "{login}"
    );
    let signed_in = browser
        .submit(
            &login,
            &format!("/t/{RP}/login"),
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("return_to", &link),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), link);
    let page = browser.get(&link).await;
    assert!(page.body.contains("Link account"), "{}", page.body);
    let linked = browser.submit(&link, &link, &[]).await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER, "{}", linked.body);

    // From now on the upstream signs this very account in, in any browser.
    let later = Browser::new(&app);
    let answer = hosted_sign_in(&app, &later, None, "ada@example.com").await;
    assert_eq!(
        answer.location(),
        format!("/t/{RP}/account"),
        "{}",
        answer.body
    );
    let (_, users) = app
        .send(app.admin(
            reqwest::Method::GET,
            &format!("/v1/tenants/{}/users", setup.rp_id),
        ))
        .await;
    let items = users["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{users}");
    assert_eq!(items[0]["id"], local.as_str());
}

#[tokio::test]
async fn an_id_token_that_another_tenants_keys_do_not_verify_is_refused() {
    let app = people_app(Store::Embedded).await;
    let setup = setup(&app).await;
    app.create_tenant("stranger-idp").await;
    // The upstream's endpoints, but another issuer's JWKS: the signature cannot verify.
    let (status, body) = configure(
        &app,
        &setup,
        json!({"jwks_uri": format!("{}/t/stranger-idp/.well-known/jwks.json", app.base)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "mal@example.org", true).await;
    let browser = Browser::new(&app);
    let answer = hosted_sign_in(&app, &browser, None, "mal@example.org").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body.contains("could not confirm who you are"),
        "{}",
        answer.body
    );
    assert!(!browser.is_signed_in(RP).await);
}

#[tokio::test]
async fn an_upstream_token_endpoint_that_is_down_gets_a_clear_error_without_hanging() {
    let app = people_app(Store::Embedded).await;
    let setup = setup(&app).await;
    let (status, body) = configure(
        &app,
        &setup,
        json!({"token_endpoint": "http://127.0.0.1:9/token"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "bob@example.org", true).await;
    let browser = Browser::new(&app);
    let began = std::time::Instant::now();
    let answer = hosted_sign_in(&app, &browser, None, "bob@example.org").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body.contains("could not confirm who you are"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("Reference: "), "{}", answer.body);
    assert!(began.elapsed() < std::time::Duration::from_secs(15));
}

#[tokio::test]
async fn the_old_redirect_uri_works_within_the_grace_period_after_an_origin_change_only() {
    let mut env = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_OIDC_REDIRECT_GRACE_PERIOD_SECONDS", "60"));
    let app = spawn_app_with_env(Store::Embedded, &env).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "joan@example.org", true).await;
    let moved = json!({"canonical_public_origin": app.base.replace("127.0.0.1", "localhost")});

    // Started for the old origin, finished after the change, within the grace period.
    let browser = Browser::new(&app);
    let started = browser
        .get(&format!("/t/{RP}/login/federation/default"))
        .await;
    let callback = through_upstream(&app, &browser, started.location(), "joan@example.org").await;
    let (status, body) = configure(&app, &setup, moved.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["redirect_uri"].as_str().unwrap().contains("localhost"),
        "{body}"
    );
    let answer = browser.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);

    // Back to the first origin (the second is now the old one), then past the grace period.
    let (status, body) =
        configure(&app, &setup, json!({"canonical_public_origin": app.base})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let browser = Browser::new(&app);
    let started = browser
        .get(&format!("/t/{RP}/login/federation/default"))
        .await;
    let callback = through_upstream(&app, &browser, started.location(), "joan@example.org").await;
    let (status, body) = configure(&app, &setup, moved).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    advance_clock(&app, 61).await;
    let answer = browser.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(answer.body.contains("no longer valid"), "{}", answer.body);
}
