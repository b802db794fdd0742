//! A tenant with several upstream providers: each has its button on the sign-in page (also
//! after a wrong password), each button starts its own round trip, and seed 002's frontend
//! calls find a tenant whose only provider is not `default`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::federation::{
    RP, Setup, configure, param, relative, setup, through_upstream, upstream_person,
};
use crate::helpers::{Store, TestServer, read_log};
use crate::http_browser::{Browser, people_app};

/// Configures the provider `alias` of the RP, like `configure` does `default`.
async fn configure_alias(app: &TestServer, setup: &Setup, alias: &str, display_name: &str) {
    let (status, body) = app
        .send(
            app.admin(
                Method::PUT,
                &format!("/v1/tenants/{}/identity-providers/{alias}", setup.rp_id),
            )
            .json(&json!({
                "provider": "okta",
                "canonical_public_origin": app.base,
                "discovery_endpoint": format!("{}/t/upstream/.well-known/openid-configuration", app.base),
                "client_id": setup.client_id,
                "client_secret": setup.client_secret,
                "display_name": display_name,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The `href`s of the sign-in page's "Sign in with {name}" links, by name.
pub(super) fn buttons(page: &str) -> Vec<(String, String)> {
    page.split("<a class=\"button\" href=\"")
        .skip(1)
        .filter_map(|rest| {
            let (href, rest) = rest.split_once("\">")?;
            let (label, _) = rest.split_once("</a>")?;
            Some((label.to_owned(), href.replace("&amp;", "&")))
        })
        .collect()
}

async fn several_providers(store: Store) {
    let app = people_app(store).await;
    let setup = setup(&app).await;
    let (status, body) = configure(&app, &setup, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    configure_alias(&app, &setup, "partners", "Partner Login").await;
    upstream_person(&app, &setup, "ines@partner.example", true).await;

    let browser = Browser::new(&app);
    let page = browser.get(&format!("/t/{RP}/login")).await;
    let shown = buttons(&page.body);
    let labels: Vec<&str> = shown.iter().map(|(label, _)| label.as_str()).collect();
    assert_eq!(
        labels,
        ["Sign in with Upstream", "Sign in with Partner Login"],
        "{}",
        page.body
    );

    // A wrong password shows the same page again, with the same ways in.
    let wrong = browser
        .sign_in(RP, "ines@partner.example", "not the password")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let again: Vec<String> = buttons(&wrong.body).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        again,
        ["Sign in with Upstream", "Sign in with Partner Login"],
        "{}",
        wrong.body
    );

    // The partners' button starts a round trip of its own, which signs the person in through
    // that provider.
    let (_, partners) = &shown[1];
    assert!(
        partners.starts_with(&format!("/t/{RP}/login/federation/partners?")),
        "{partners}"
    );
    let started = browser.get(partners).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let callback =
        through_upstream(&app, &browser, started.location(), "ines@partner.example").await;
    let answer = browser.get(&relative(&app, &callback)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(browser.is_signed_in(RP).await);
    let linked: Vec<String> = read_log(&app)
        .await
        .iter()
        .filter(|e| e.envelope.event_type == "federation.linked")
        .map(|e| format!("{:?}", e.decode().unwrap()))
        .collect();
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert!(linked[0].contains("\"partners\""), "{linked:?}");

    // Seed 002's calls with the provider named, either way.
    for query in ["provider=partners", "alias=partners"] {
        let initiated = Browser::new(&app)
            .get(&format!("/auth/initiate?tenant={RP}&{query}"))
            .await;
        assert_eq!(initiated.status, StatusCode::OK, "{}", initiated.body);
    }
    let unknown = Browser::new(&app)
        .get(&format!("/auth/initiate?tenant={RP}&provider=nope"))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);

    // Without `default`, the tenant's only provider is the one listed and started.
    let (status, _) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{}/federation", setup.rp_id),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let tenants = Browser::new(&app).get("/auth/tenants").await.json();
    assert_eq!(
        tenants["tenants"],
        json!([{"slug": RP, "name": format!("Tenant {RP}"), "display_name": "Partner Login"}]),
        "{tenants}"
    );
    let initiated = Browser::new(&app)
        .get(&format!("/auth/initiate?tenant={RP}"))
        .await;
    assert_eq!(initiated.status, StatusCode::OK, "{}", initiated.body);
    let url = initiated.json()["authorization_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(param(&url, "client_id"), Some(setup.client_id.clone()));
    let page = Browser::new(&app).get(&format!("/t/{RP}/login")).await;
    let labels: Vec<String> = buttons(&page.body).into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["Sign in with Partner Login"], "{}", page.body);

    // Two providers and no `default`: the caller must choose, and is told the choices.
    configure_alias(&app, &setup, "staff", "Staff Login").await;
    let ambiguous = Browser::new(&app)
        .get(&format!("/auth/initiate?tenant={RP}"))
        .await;
    assert_eq!(
        ambiguous.status,
        StatusCode::BAD_REQUEST,
        "{}",
        ambiguous.body
    );
    let body: Value = ambiguous.json();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("partners, staff"),
        "{body}"
    );
}

#[tokio::test]
async fn every_provider_has_its_button_and_its_own_round_trip_embedded() {
    several_providers(Store::Embedded).await;
}

#[tokio::test]
async fn every_provider_has_its_button_and_its_own_round_trip_on_postgres() {
    several_providers(Store::Postgres).await;
}
