//! Seed 002's three-call frontend flow ends in an access token of the tenant's issuer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::federation::{RP, configure, param, setup, through_upstream, upstream_person};
use crate::helpers::Store;
use crate::http_browser::{Browser, people_app};

/// The claims of a compact JWT, unverified (the tenant's endpoints verify it).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn frontend_token_is_the_tenants_and_only_the_tenants(store: Store) {
    let app = people_app(store).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "kay@example.org", true).await;

    let browser = Browser::new(&app);
    let initiated = browser
        .get(&format!("/auth/initiate?tenant={RP}"))
        .await
        .json();
    let callback = through_upstream(
        &app,
        &browser,
        initiated["authorization_url"].as_str().unwrap(),
        "kay@example.org",
    )
    .await;
    let answer = browser
        .client
        .post(format!("{}/auth/callback", app.base))
        .json(&json!({
            "code": param(&callback, "code"),
            "state": param(&callback, "state"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 3600, "{body}");
    assert_eq!(body["tenant"], RP, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let user_id = body["user_id"].as_str().unwrap();
    let claims = claims(token);
    let issuer = format!("{}/t/{RP}", app.base);
    assert_eq!(claims["iss"], issuer, "{claims}");
    assert_eq!(claims["aud"], issuer, "{claims}");
    assert_eq!(claims["sub"], user_id, "{claims}");
    assert_eq!(claims["client_id"], "tessera-federation", "{claims}");
    // The session cookie is set too, as before.
    assert!(browser.is_signed_in(RP).await);

    // The tenant's userinfo accepts it and knows the person.
    let userinfo = app
        .client
        .get(format!("{}/t/{RP}/oauth/userinfo", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let info: Value = userinfo.json().await.unwrap();
    assert_eq!(info["sub"], user_id, "{info}");
    assert_eq!(info["email"], "kay@example.org", "{info}");

    // Another tenant's userinfo (the upstream's) refuses it.
    let elsewhere = app
        .client
        .get(format!("{}/t/upstream/oauth/userinfo", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::UNAUTHORIZED);

    // A second sign-in through the frontend flow reuses the tenant's built-in client.
    let again = Browser::new(&app);
    let initiated = again
        .get(&format!("/auth/initiate?tenant={RP}"))
        .await
        .json();
    let callback = through_upstream(
        &app,
        &again,
        initiated["authorization_url"].as_str().unwrap(),
        "kay@example.org",
    )
    .await;
    let answer = again
        .client
        .post(format!("{}/auth/callback", app.base))
        .json(&json!({
            "code": param(&callback, "code"),
            "state": param(&callback, "state"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let second: Value = answer.json().await.unwrap();
    assert_ne!(second["access_token"], body["access_token"]);
    let (status, clients) = app
        .send(app.admin(
            reqwest::Method::GET,
            &format!("/v1/tenants/{}/clients", setup.rp_id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{clients}");
    let builtin = clients["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["client_id"] == "tessera-federation")
        .count();
    assert_eq!(builtin, 1, "{clients}");
}

#[tokio::test]
async fn the_frontend_flow_answers_an_access_token_the_tenants_userinfo_accepts_and_another_refuses_embedded()
 {
    frontend_token_is_the_tenants_and_only_the_tenants(Store::Embedded).await;
}

#[tokio::test]
async fn the_frontend_flow_answers_an_access_token_the_tenants_userinfo_accepts_and_another_refuses_on_postgres()
 {
    frontend_token_is_the_tenants_and_only_the_tenants(Store::Postgres).await;
}
