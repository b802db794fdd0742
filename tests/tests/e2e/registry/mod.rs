//! The tenant registry's commercial side end to end (issue 21, ADR 0005): the catalog, requests
//! and trials, entitlements and their expiry (by the test clock, and across a restart), the
//! claims resolver's lookup order, the tenant claims in machines' and people's tokens, seed
//! 003's API-key aliases, and our answers checked against seed 003's schemas.
//!
//! # Layout
//! - [`catalog`]: `/v1/catalog`, `PUT`/`DELETE /v1/catalog/{key}`, requests, the trial rules.
//! - [`entitlements`]: the entitlement routes and expiry.
//! - [`claims`]: the resolver and the claims in tokens.
//! - [`seed`]: seed 003's API-key paths and the schema test.

mod catalog;
mod claims;
mod entitlements;
mod seed;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestServer;

/// A `tenant:admin` key of `tenant`: its plaintext.
pub async fn tenant_admin_key(app: &TestServer, tenant: &str) -> String {
    app.create_api_key(tenant, json!({"name": "it", "scopes": ["tenant:admin"]}))
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Defines (or replaces) a catalog product as the platform admin; returns the answer.
pub async fn define(app: &TestServer, key: &str, body: Value) -> (StatusCode, Value) {
    app.send(
        app.admin(Method::PUT, &format!("/v1/catalog/{key}"))
            .json(&body),
    )
    .await
}

/// A product anyone may try, on any plan.
pub async fn trial_product(app: &TestServer, key: &str) {
    let (status, body) = define(
        app,
        key,
        json!({"name": format!("Product {key}"), "description": "For tests", "supports_trial": true}),
    )
    .await;
    assert!(status.is_success(), "{body}");
}

/// Grants `product` to `tenant` as the platform admin.
pub async fn grant(app: &TestServer, tenant: &str, product: &str, body: Value) -> Value {
    let (status, granted) = app
        .send(
            app.admin(
                Method::PUT,
                &format!("/v1/tenants/{tenant}/entitlements/{product}"),
            )
            .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    granted
}

/// The tenant's entitlements as `GET /v1/tenants/{id}/entitlements` lists them.
pub async fn entitlements(app: &TestServer, tenant: &str) -> Vec<Value> {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/v1/tenants/{tenant}/entitlements")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// A client credentials token of `client` at `slug`; returns its (unverified) claims.
pub async fn machine_token(app: &TestServer, slug: &str, client: &(String, String)) -> Value {
    let response = app
        .client
        .post(format!("{}/t/{slug}/oauth/token", app.base))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    crate::oidc_tokens::claims_of(body["access_token"].as_str().unwrap())
}

/// Audit entries of `tenant` with `action`, once the read models caught up with the log.
pub async fn audited(app: &TestServer, tenant: &str, action: &str) -> Vec<Value> {
    crate::http_browser::settle(app).await;
    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/audit?tenant_id={tenant}&action={action}"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}
