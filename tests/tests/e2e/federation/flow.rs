//! The main federated flows: configuration (sealed secret, discovery checks), the hosted flow
//! with just-in-time provisioning and a second sign-in, continuing an authorization request,
//! seed 002's three-call frontend flow, and the refusals a person can meet.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::{Store, read_log};
use crate::http_browser::{Browser, advance_clock, people_app};

/// Seed 002's `POST /auth/callback` from `browser`.
async fn post_callback(
    app: &TestServer,
    browser: &Browser,
    body: &serde_json::Value,
) -> reqwest::Response {
    browser
        .client
        .post(format!("{}/auth/callback", app.base))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn configured(store: Store) -> (TestServer, Setup) {
    let app = people_app(store).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (app, setup)
}

async fn hosted_flow_provisions_then_signs_in_again(store: Store) {
    let (app, setup) = configured(store).await;
    upstream_person(&app, &setup, "grace@navy.example", true).await;
    let login = Browser::new(&app).get(&format!("/t/{RP}/login")).await;
    assert!(
        login.body.contains("Sign in with Upstream"),
        "{}",
        login.body
    );

    let browser = Browser::new(&app);
    let answer = hosted_sign_in(&app, &browser, None, "grace@navy.example").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), format!("/t/{RP}/account"));
    assert!(browser.is_signed_in(RP).await);
    let (_, users) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{}/users", setup.rp_id)))
        .await;
    let items = users["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{users}");
    assert_eq!(items[0]["email"], "grace@navy.example");
    assert_eq!(items[0]["email_verified"], true);

    // Another browser, another sign-in: the link finds the same user, no second one.
    let again = Browser::new(&app);
    let answer = hosted_sign_in(&app, &again, None, "grace@navy.example").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let (_, users) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{}/users", setup.rp_id)))
        .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1, "{users}");

    // The client secret is never returned, and is nowhere in the data in clear.
    let (status, view) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/federation", setup.rp_id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["client_secret_set"], true);
    assert!(!view.to_string().contains(&setup.client_secret));
    let events = read_log(&app).await;
    assert!(
        events
            .iter()
            .any(|e| e.envelope.event_type == "federation.signed_in")
    );
    assert!(
        events
            .iter()
            .any(|e| e.envelope.event_type == "federation.linked")
    );
    for event in &events {
        let payload = String::from_utf8_lossy(&event.payload);
        assert!(
            !payload.contains(&setup.client_secret),
            "{}",
            event.envelope.event_type
        );
    }
    if store == Store::Embedded {
        for entry in std::fs::read_dir(app.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let needle = setup.client_secret.as_bytes();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds the secret",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn a_hosted_federated_sign_in_provisions_a_user_then_finds_them_again_embedded() {
    hosted_flow_provisions_then_signs_in_again(Store::Embedded).await;
}

#[tokio::test]
async fn a_hosted_federated_sign_in_provisions_a_user_then_finds_them_again_on_postgres() {
    hosted_flow_provisions_then_signs_in_again(Store::Postgres).await;
}

#[tokio::test]
async fn the_seed_frontend_flow_lists_initiates_and_finishes_with_a_session() {
    let (app, setup) = configured(Store::Embedded).await;
    upstream_person(&app, &setup, "kay@example.org", true).await;
    let browser = Browser::new(&app);
    let tenants = browser.get("/auth/tenants").await.json();
    let listed = tenants["tenants"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{tenants}");
    assert_eq!(listed[0]["slug"], RP);
    assert_eq!(listed[0]["display_name"], "Upstream");

    let initiated = browser.get(&format!("/auth/initiate?tenant={RP}")).await;
    assert_eq!(initiated.status, StatusCode::OK, "{}", initiated.body);
    let initiated = initiated.json();
    let authorize = initiated["authorization_url"].as_str().unwrap();
    assert_eq!(
        param(authorize, "state").as_deref(),
        initiated["state"].as_str()
    );
    assert_eq!(
        param(authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(param(authorize, "nonce").is_some());
    let callback = through_upstream(&app, &browser, authorize, "kay@example.org").await;
    let code = param(&callback, "code").unwrap();
    let state = param(&callback, "state").unwrap();
    let answer = post_callback(&app, &browser, &json!({"code": code, "state": state})).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["tenant"], RP);
    assert!(browser.is_signed_in(RP).await);

    // The same state again: already used.
    let replay = post_callback(&app, &browser, &json!({"code": code, "state": state})).await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    assert!(replay.headers().contains_key("x-correlation-id"));
    let body: serde_json::Value = replay.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    assert!(body["correlation_id"].is_string());
}

#[tokio::test]
async fn a_hosted_sign_in_continues_the_authorization_request_that_was_waiting() {
    let (app, setup) = configured(Store::Embedded).await;
    upstream_person(&app, &setup, "ada@lovelace.example", true).await;
    let (status, created) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{}/clients", setup.rp_id),
            )
            .json(&json!({
                "name": "Photos",
                "grant_types": ["authorization_code"],
                "redirect_uris": ["https://photos.example/cb"],
                "allowed_scopes": ["openid", "email"],
                "require_consent": false,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let client_id = created["client"]["client_id"].as_str().unwrap();
    let browser = Browser::new(&app);
    let authorize = format!(
        "/t/{RP}/oauth/authorize?response_type=code&client_id={client_id}\
         &redirect_uri=https%3A%2F%2Fphotos.example%2Fcb&scope=openid%20email&state=app-state\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let to_login = browser.get(&authorize).await;
    assert_eq!(to_login.status, StatusCode::SEE_OTHER, "{}", to_login.body);
    let return_to = param(to_login.location(), "return_to").unwrap();
    let page = browser.get(to_login.location()).await;
    assert!(page.body.contains("Sign in with Upstream"), "{}", page.body);
    let answer = hosted_sign_in(&app, &browser, Some(&return_to), "ada@lovelace.example").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), return_to);
    let to_app = browser.get(answer.location()).await;
    assert_eq!(to_app.status, StatusCode::SEE_OTHER, "{}", to_app.body);
    let location = to_app.location();
    assert!(
        location.starts_with("https://photos.example/cb?"),
        "{location}"
    );
    assert_eq!(param(location, "state").as_deref(), Some("app-state"));
    assert!(param(location, "code").is_some());
}

#[tokio::test]
async fn a_disallowed_domain_and_an_unverified_address_are_refused_with_a_reference() {
    let app = people_app(Store::Embedded).await;
    let setup = setup(&app).await;
    let (status, body) =
        configure(&app, &setup, json!({"allowed_domains": ["sundsvall.se"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "eve@elsewhere.example", true).await;
    let browser = Browser::new(&app);
    let answer = hosted_sign_in(&app, &browser, None, "eve@elsewhere.example").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body.contains("Email domain not allowed"),
        "{}",
        answer.body
    );
    let reference = answer.headers["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(answer.body.contains(&reference), "{}", answer.body);
    assert!(!browser.is_signed_in(RP).await);

    let (status, body) = configure(&app, &setup, json!({"allowed_domains": []})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upstream_person(&app, &setup, "unverified@elsewhere.example", false).await;
    let browser = Browser::new(&app);
    let answer = hosted_sign_in(&app, &browser, None, "unverified@elsewhere.example").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(answer.body.contains("not verified"), "{}", answer.body);
    let (_, users) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{}/users", setup.rp_id)))
        .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 0, "{users}");
    let refused: Vec<String> = read_log(&app)
        .await
        .iter()
        .filter(|e| e.envelope.event_type == "federation.refused")
        .map(|e| format!("{:?}", e.decode().unwrap()))
        .collect();
    assert!(
        refused.iter().any(|r| r.contains("EmailDomain")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|r| r.contains("EmailUnverified")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn expired_foreign_and_other_tenants_states_are_refused() {
    let (app, setup) = configured(Store::Embedded).await;
    upstream_person(&app, &setup, "lin@example.org", true).await;

    // Another browser than the one that started: refused (login CSRF).
    let starter = Browser::new(&app);
    let started = starter
        .get(&format!("/t/{RP}/login/federation/default"))
        .await;
    let callback = through_upstream(&app, &starter, started.location(), "lin@example.org").await;
    let stranger = Browser::new(&app);
    let answer = stranger.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(answer.body.contains("another browser"), "{}", answer.body);
    // The starter can still finish it (the stranger used nothing up).
    let answer = starter.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    // And a second time it is a replay.
    let answer = starter.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(answer.body.contains("already used"), "{}", answer.body);

    // A state of the RP presented as another tenant's.
    let other = app.create_tenant("other").await;
    assert!(other["id"].is_string());
    let browser = Browser::new(&app);
    let started = browser
        .get(&format!("/auth/initiate?tenant={RP}"))
        .await
        .json();
    let callback = through_upstream(
        &app,
        &browser,
        started["authorization_url"].as_str().unwrap(),
        "lin@example.org",
    )
    .await;
    let answer = post_callback(
        &app,
        &browser,
        &json!({
            "code": param(&callback, "code"),
            "state": param(&callback, "state"),
            "tenant": "other",
        }),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another organisation"),
        "{body}"
    );

    // A state past OIDC_STATE_TTL_SECONDS (600 by default).
    let browser = Browser::new(&app);
    let started = browser
        .get(&format!("/t/{RP}/login/federation/default"))
        .await;
    let callback = through_upstream(&app, &browser, started.location(), "lin@example.org").await;
    advance_clock(&app, 601).await;
    let answer = browser.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(answer.body.contains("expired"), "{}", answer.body);
}

#[tokio::test]
async fn configuration_is_refused_for_an_unreachable_upstream_an_issuer_mismatch_and_missing_endpoints()
 {
    let app = people_app(Store::Embedded).await;
    let setup = setup(&app).await;
    // Nothing listens there: a clear 400, quickly.
    let began = std::time::Instant::now();
    let (status, body) = configure(
        &app,
        &setup,
        json!({"discovery_endpoint": "http://127.0.0.1:9/.well-known/openid-configuration"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{body}"
    );
    assert!(began.elapsed() < std::time::Duration::from_secs(10));
    // The upstream's discovery document behind another tenant's path names another issuer.
    let (status, body) = configure(
        &app,
        &setup,
        json!({"discovery_endpoint": format!("{}/t/upstream/.well-known/openid-configuration", app.base.replace("127.0.0.1", "localhost"))}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("issuer mismatch"),
        "{body}"
    );
    // No discovery and not every endpoint.
    let (status, body) = configure(
        &app,
        &setup,
        json!({"discovery_endpoint": "", "authorization_endpoint": format!("{}/t/upstream/oauth/authorize", app.base), "issuer": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("missing endpoints"),
        "{body}"
    );
    // Nothing was configured by any of them.
    let (status, _) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/federation", setup.rp_id),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
