//! Per-tenant federation (issue 19), end to end against a real upstream OpenID provider:
//! another tenant of the same server (`upstream`), with its discovery document, JWKS, code
//! flow and hosted sign-in page, which the cookie-keeping browser fills in during the flow.
//!
//! The federating tenant (`rp`) is configured through seed 002's `PUT .../federation`, with
//! the upstream's discovery endpoint and a confidential client registered there for
//! `{server}/login/callback`.

mod flow;
mod links;
mod tls;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::http_browser::{Answer, Browser, STRONG};

/// The federating tenant's slug.
pub const RP: &str = "acme-rp";
/// The upstream's password of its people.
pub const PASSWORD: &str = STRONG;

/// The upstream tenant, its client for the RP's callback and the client's secret.
pub struct Setup {
    pub rp_id: String,
    pub upstream_id: String,
    pub client_id: String,
    pub client_secret: String,
}

/// A person of the upstream with a verified (or not) address.
pub async fn upstream_person(app: &TestServer, setup: &Setup, email: &str, verified: bool) {
    let (status, user) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{}/users", setup.upstream_id),
            )
            .json(&json!({
                "email": email,
                "email_verified": verified,
                "name": "Upstream Person",
                "password": PASSWORD,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
}

/// The upstream tenant and its client, and the RP tenant (not configured yet).
pub async fn setup(app: &TestServer) -> Setup {
    let upstream_id = app.create_tenant("upstream").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rp_id = app.create_tenant(RP).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, created) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{upstream_id}/clients"))
                .json(&json!({
                    "name": "Tessera RP",
                    "grant_types": ["authorization_code"],
                    "redirect_uris": [
                        format!("{}/login/callback", app.base),
                        format!("{}/login/callback", app.base.replace("127.0.0.1", "localhost")),
                    ],
                    "allowed_scopes": ["openid", "profile", "email"],
                    "require_consent": false,
                })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    Setup {
        rp_id,
        upstream_id,
        client_id: created["client"]["client_id"].as_str().unwrap().to_owned(),
        client_secret: created["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// Seed 002's configuration of the RP's federation, with `extra` fields over it.
pub async fn configure(app: &TestServer, setup: &Setup, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({
        "provider": "generic_oidc",
        "canonical_public_origin": app.base,
        "discovery_endpoint": format!("{}/t/upstream/.well-known/openid-configuration", app.base),
        "client_id": setup.client_id,
        "client_secret": setup.client_secret,
        "display_name": "Upstream",
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    app.send(
        app.admin(
            Method::PUT,
            &format!("/v1/tenants/{}/federation", setup.rp_id),
        )
        .json(&body),
    )
    .await
}

/// The server-relative part of an absolute URL of the server.
pub fn relative(app: &TestServer, url: &str) -> String {
    url.strip_prefix(&app.base)
        .or_else(|| url.strip_prefix(&app.base.replace("127.0.0.1", "localhost")))
        .unwrap_or(url)
        .to_owned()
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// From the upstream's authorization URL to the callback URL it sends the browser back to:
/// the upstream's sign-in page filled in as a person would.
pub async fn through_upstream(
    app: &TestServer,
    browser: &Browser,
    authorize: &str,
    email: &str,
) -> String {
    let answer = browser.get(&relative(app, authorize)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let mut location = answer.location().to_owned();
    if location.starts_with("/t/upstream/login") {
        let return_to = param(&location, "return_to").unwrap();
        let login = "/t/upstream/login";
        let signed_in = browser
            .submit(
                &location,
                login,
                &[
                    ("email", email),
                    ("password", PASSWORD),
                    ("return_to", &return_to),
                ],
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        let again = browser.get(signed_in.location()).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
        location = again.location().to_owned();
    }
    // The provider's `redirect_path`: `/login/callback` unless configured otherwise.
    assert!(location.contains("?code="), "{location}");
    location
}

/// The hosted flow from the RP's "Sign in with Upstream" to the callback's answer.
pub async fn hosted_sign_in(
    app: &TestServer,
    browser: &Browser,
    return_to: Option<&str>,
    email: &str,
) -> Answer {
    let mut start = format!("/t/{RP}/login/federation/default");
    if let Some(return_to) = return_to {
        start.push_str("?return_to=");
        start.extend(form_urlencoded::byte_serialize(return_to.as_bytes()));
    }
    let started = browser.get(&start).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let callback = through_upstream(app, browser, started.location(), email).await;
    browser.get(&relative(app, &callback)).await
}
