//! Issue 17's client side, end to end: clients' OpenID Connect settings through the admin API
//! (and seed 001's names), public clients at the token endpoint, the RS256 key every tenant
//! keeps beside its default, discovery at every path it is served from, and logout.
//!
//! # Layout
//! - [`settings`]: the client admin API's OpenID Connect fields, defaults, aliases and errors.
//! - [`public`]: a public client's registration, listing and token endpoint authentication.
//! - [`keys`]: the RS256 key: created with the tenant, rotated per algorithm, published.
//! - [`discovery`]: every field of the metadata, at all three paths.
//! - [`openid_client`]: node's openid-client discovers a tenant through RFC 8414's path.
//! - [`logout`]: RP-Initiated Logout's confirmation page, its errors, and going back.
//! - [`backchannel`]: Back-Channel Logout's token, delivered across a restart.

mod backchannel;
mod discovery;
mod keys;
mod logout;
mod openid_client;
mod public;
mod settings;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestServer;

/// Creates tenant `slug`; its id.
async fn tenant_id(app: &TestServer, slug: &str) -> String {
    app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Registers a client of `tenant` with `body`: the status and the whole answer.
async fn register(app: &TestServer, tenant: &str, body: Value) -> (StatusCode, Value) {
    app.send(
        app.admin(Method::POST, &format!("/v1/tenants/{tenant}/clients"))
            .json(&body),
    )
    .await
}

/// A web application signing people in: the authorization code flow's minimal client.
fn web_app(client_type: &str) -> Value {
    json!({
        "name": "Web app",
        "client_type": client_type,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example/callback"],
        "allowed_scopes": ["openid", "profile", "email", "offline_access"],
    })
}

/// The id of the relying party's person's only session (the `sid` of their tokens).
async fn only_session(rp: &crate::oidc::Rp) -> String {
    let path = format!("/v1/tenants/{}/users/{}/sessions", rp.tenant_id, rp.user_id);
    let (_, sessions) = rp.app.send(rp.app.admin(Method::GET, &path)).await;
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{sessions}");
    items[0]["id"].as_str().unwrap().to_owned()
}
