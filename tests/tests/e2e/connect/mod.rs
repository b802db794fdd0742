//! Third-party OAuth connections (issue 20, seed 004), end to end against a real OAuth
//! provider: a tenant (`saas`) of a **separate** `tessera` process, with the code flow, refresh
//! tokens rotated on use, a short access-token lifetime (60 s) and RFC 7009 revocation. The
//! connecting server's tenant (`acme`) defines it as a `generic_oauth2` integration
//! (`saas-app`), and a person who holds an account at the provider connects it with the
//! cookie-keeping browser.
//!
//! Time: the connecting server's clock is moved (its test route) to make a refresh due; the
//! provider keeps the wall clock, which is all its 60-second tokens need.
//!
//! - [`flow`]: connect, access, automatic refresh; the callback's refusals; disconnecting with
//!   revocation; a revoked grant becoming `needs_reauth`.
//! - [`outage`]: the provider down (a refresh fails and backs off), then up again (refreshed,
//!   nothing lost).
//! - [`nodes`]: two connecting servers on one PostgreSQL both refreshing one connection.

mod flow;
mod nodes;
mod outage;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, eventually, spawn_app_with_env};
use crate::http_browser::{Browser, PEOPLE_ENV, STRONG, person, settle};

/// The integration's name on the connecting server.
pub const INTEGRATION: &str = "saas-app";
/// The provider's tenant.
pub const SAAS: &str = "saas";
/// The person who holds the account at the provider.
pub const HOLDER: &str = "holder@saas.example";

/// The provider: a tessera process and its tenant's client for the connecting server.
pub struct Provider {
    pub app: TestServer,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub user_id: String,
}

/// A free loopback port, so that a provider restarted keeps its URLs.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The provider process on `port`, its tenant, person and client, registered for the
/// callbacks of `consumers` (connecting servers' base URLs).
pub async fn provider(store: Store, port: u16, consumers: &[&str]) -> Provider {
    let listen = format!("127.0.0.1:{port}");
    let mut env = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_LISTEN", &listen));
    let app = spawn_app_with_env(store, &env).await;
    let tenant_id = app.create_tenant(SAAS).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_id = person(&app, &tenant_id, HOLDER, STRONG, false).await;
    let redirect_uris: Vec<String> = consumers
        .iter()
        .map(|base| format!("{base}/oauth/callback/{INTEGRATION}"))
        .collect();
    let (status, created) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/clients"))
                .json(&json!({
                    "name": "Acme connector",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "redirect_uris": redirect_uris,
                    "allowed_scopes": ["openid", "profile", "offline_access"],
                    "require_consent": true,
                    "access_token_ttl_secs": 60,
                })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    Provider {
        app,
        tenant_id,
        client_id: created["client"]["client_id"].as_str().unwrap().to_owned(),
        client_secret: created["client_secret"].as_str().unwrap().to_owned(),
        user_id,
    }
}

impl Provider {
    pub fn url(&self, path: &str) -> String {
        format!("{}/t/{SAAS}/oauth/{path}", self.app.base)
    }

    /// Whether the provider takes `access_token` (its userinfo endpoint answers with it).
    pub async fn accepts(&self, access_token: &str) -> bool {
        let answer = self
            .app
            .client
            .get(self.url("userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        answer.status() == StatusCode::OK
    }

    /// How many entries of `action` the provider's audit trail holds.
    pub async fn count(&self, action: &str) -> usize {
        audit_count(&self.app, &self.tenant_id, action).await
    }
}

/// How many audit entries of `action` `app` holds for `tenant_id`.
pub async fn audit_count(app: &TestServer, tenant_id: &str, action: &str) -> usize {
    settle(app).await;
    let (status, page) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/audit?tenant_id={tenant_id}&action={action}&limit=500"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().len()
}

/// The connecting server's side: its tenant.
pub struct Consumer {
    pub tenant_id: String,
}

/// Settings of the connecting server: people (cheap hashing) and a quick refresh tick.
pub const CONSUMER_ENV: &[(&str, &str)] = &[
    ("TESSERA_ARGON2_MEMORY_KIB", "1024"),
    ("TESSERA_ARGON2_ITERATIONS", "1"),
    ("TESSERA_CREDENTIAL_REFRESH_TICK_MS", "100"),
];

/// The connecting tenant, its `vault:read` key, and the integration defined for `provider`.
pub async fn consumer(app: &TestServer, provider: &Provider) -> Consumer {
    let tenant_id = app.create_tenant("acme").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, defined) = define(app, provider).await;
    assert_eq!(status, StatusCode::OK, "{defined}");
    Consumer { tenant_id }
}

/// `PUT /v1/integrations/saas-app` for `provider`.
pub async fn define(app: &TestServer, provider: &Provider) -> (StatusCode, Value) {
    app.send(
        app.admin(Method::PUT, &format!("/v1/integrations/{INTEGRATION}"))
            .json(&json!({
                "provider": "generic_oauth2",
                "authorization_url": provider.url("authorize"),
                "token_url": provider.url("token"),
                "revocation_url": provider.url("revoke"),
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "scopes": ["openid", "offline_access"],
            })),
    )
    .await
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Starts a connect flow as JSON; returns the authorization URL.
pub async fn start(app: &TestServer, consumer: &Consumer) -> String {
    let (status, started) = app
        .send(app.admin(
            Method::GET,
            &format!(
                "/v1/tenants/{}/integrations/{INTEGRATION}/connect?response=json",
                consumer.tenant_id
            ),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    started["authorization_url"].as_str().unwrap().to_owned()
}

/// The person at the provider: from the authorization URL, signs in, allows the connector,
/// and returns the callback
/// URL the provider sends the browser back to (absolute, on the connecting server).
pub async fn consent_at_provider(provider: &Provider, authorization_url: &str) -> String {
    let browser = Browser::new(&provider.app);
    let path = authorization_url
        .strip_prefix(&provider.app.base)
        .unwrap()
        .to_owned();
    let answer = browser.get(&path).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let login = answer.location().to_owned();
    let return_to = param(&login, "return_to").unwrap();
    let signed_in = browser
        .submit(
            &login,
            &format!("/t/{SAAS}/login"),
            &[
                ("email", HOLDER),
                ("password", STRONG),
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
    let mut again = browser.get(signed_in.location()).await;
    if again.status == StatusCode::OK {
        // The provider asks the person to allow the connector (once: it remembers).
        again = crate::oidc::decide(&browser, &again, "allow").await;
    }
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let callback = again.location().to_owned();
    assert!(
        callback.contains(&format!("/oauth/callback/{INTEGRATION}?")),
        "{callback}"
    );
    callback
}

/// The browser back at the connecting server's callback: its status and page.
pub async fn back_at(callback: &str) -> (StatusCode, String) {
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(callback)
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

/// A whole connect flow, which must end connected.
pub async fn connect(app: &TestServer, provider: &Provider, consumer: &Consumer) {
    let authorization_url = start(app, consumer).await;
    let callback = consent_at_provider(provider, &authorization_url).await;
    let (status, page) = back_at(&callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Connected to saas-app"), "{page}");
}

/// A `vault:read` key of the consumer's tenant.
pub async fn vault_key(app: &TestServer, consumer: &Consumer) -> String {
    let key = app
        .create_api_key(
            &consumer.tenant_id,
            json!({"name": "connector", "scopes": ["vault:read"]}),
        )
        .await;
    key["plaintext"].as_str().unwrap().to_owned()
}

/// `POST .../credentials/access` with a `vault:read` key: status and answer.
pub async fn access(app: &TestServer, consumer: &Consumer, key: &str) -> (StatusCode, Value) {
    app.send(
        app.request(
            Method::POST,
            &format!(
                "/v1/tenants/{}/integrations/{INTEGRATION}/credentials/access",
                consumer.tenant_id
            ),
            Some(key),
        )
        .json(&json!({})),
    )
    .await
}

/// The connection as the tenant's listing shows it.
pub async fn listed(app: &TestServer, consumer: &Consumer) -> Value {
    let (status, listing) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/integrations", consumer.tenant_id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    listing["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["integration"] == INTEGRATION)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits (at most 20 s) until `app` has `count` audit entries of `action` for the consumer.
pub async fn wait_for(app: &TestServer, consumer: &Consumer, action: &str, count: usize) -> bool {
    eventually(Duration::from_secs(20), || async {
        audit_count(app, &consumer.tenant_id, action).await >= count
    })
    .await
}
