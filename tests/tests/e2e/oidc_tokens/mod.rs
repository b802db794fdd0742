//! People's tokens end to end (issue 17's back half): a person's authorization code exchanged
//! at the real token endpoint for an access token, an ID token and a refresh token; refresh
//! rotation, grace and reuse; userinfo; introspection and revocation of people's tokens.
//!
//! Codes are issued here the way the authorization endpoint issues them once the person
//! allowed the client, through the command service on the server's own storage
//! ([`offline_commands`]): a second node on PostgreSQL (beside the running server), the server
//! stopped on SQLite. The hosted sign-in and consent pages are driven in `third_party.rs`.

mod codes;
mod crash;
mod refresh;
mod third_party;
mod userinfo;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tessera_commands::CodeRequest;
use tessera_event_schemas::{Actor, ActorKind, EventMetadata};
use uuid::Uuid;

use crate::helpers::{Store, TestServer, offline_commands, spawn_app};
use crate::http_browser::person;

/// RFC 7636 appendix B's verifier.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const REDIRECT_URI: &str = "http://127.0.0.1:7777/callback";
pub const EMAIL: &str = "ada@example.com";
pub const PASSWORD: &str = "correct horse battery staple 42";

/// A server, a tenant, a public client `spa` (code + refresh, PKCE), a confidential client
/// `rs` (a resource server that introspects) and a person.
pub struct People {
    pub app: TestServer,
    pub store: Store,
    pub slug: String,
    pub tenant: Uuid,
    pub user: Uuid,
    pub spa: String,
    pub rs: (String, String),
}

pub async fn people(store: Store, slug: &str) -> People {
    let app = spawn_app(store).await;
    let tenant = app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let spa = register(
        &app,
        &tenant,
        json!({
            "name": "Single-page app",
            "client_type": "public",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT_URI],
            "allowed_scopes": ["openid", "profile", "email", "offline_access"],
            "access_token_ttl_secs": 300,
        }),
    )
    .await["client"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rs = register(
        &app,
        &tenant,
        json!({"name": "Resource server", "allowed_scopes": ["read"]}),
    )
    .await;
    let rs = (
        rs["client"]["client_id"].as_str().unwrap().to_owned(),
        rs["client_secret"].as_str().unwrap().to_owned(),
    );
    let user = person(&app, &tenant, EMAIL, PASSWORD, false).await;
    People {
        app,
        store,
        slug: slug.to_owned(),
        tenant: Uuid::parse_str(&tenant).unwrap(),
        user: Uuid::parse_str(&user).unwrap(),
        spa,
        rs,
    }
}

async fn register(app: &TestServer, tenant: &str, body: Value) -> Value {
    let (status, created) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/clients"))
                .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

pub fn as_person(user: Uuid) -> EventMetadata {
    EventMetadata {
        actor: Actor {
            kind: ActorKind::User,
            id: user.to_string(),
            name: None,
        },
        correlation_id: "e2e-oidc-tokens".into(),
        causation_id: None,
        source_ip: None,
        user_agent: None,
    }
}

/// The S256 challenge of [`VERIFIER`].
pub fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

/// Signs the person in (a new session) and issues `count` codes for `scopes` to the `spa`
/// client, each with nonce `nonce-{i}` and [`VERIFIER`]'s challenge, as the authorization
/// endpoint does after consent. Returns the session's id and the codes.
pub async fn sign_in_and_issue_codes(
    p: &mut People,
    scopes: &[&str],
    count: usize,
) -> (Uuid, Vec<String>) {
    let embedded = p.store == Store::Embedded;
    if embedded {
        p.app.stop().await;
    }
    let (commands, log) = offline_commands(&p.app).await;
    let (session, _) = commands
        .start_session(as_person(p.user), p.tenant, p.user, vec!["pwd".into()])
        .await
        .unwrap();
    let mut codes = Vec::new();
    for i in 0..count {
        let code = commands
            .grant_consent_and_issue(
                as_person(p.user),
                &CodeRequest {
                    tenant_id: p.tenant,
                    client_id: p.spa.clone(),
                    require_consent: true,
                    force_consent: false,
                    redirect_uri: REDIRECT_URI.into(),
                    scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
                    code_challenge: Some(challenge()),
                    nonce: Some(format!("nonce-{i}")),
                    user_id: p.user,
                    session_id: session.session_id,
                    auth_time: session.auth_time,
                    amr: session.amr.clone(),
                },
            )
            .await
            .unwrap()
            .code;
        codes.push(code);
    }
    log.close().await;
    if embedded {
        p.app.start().await;
    }
    (session.session_id, codes)
}

impl People {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/t/{}/oauth/{path}", self.app.base, self.slug)
    }

    pub fn issuer(&self) -> String {
        self.app.issuer(&self.slug)
    }

    /// POSTs a form to a tenant endpoint: the status, the JSON body (`Null` when empty) and
    /// the response's `Cache-Control`.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = self.app.client.post(self.endpoint(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let cache = response
            .headers()
            .get("cache-control")
            .map(|value| value.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body, cache)
    }

    /// Exchanges a code as the public `spa` client with [`VERIFIER`].
    pub async fn exchange(&self, code: &str) -> (StatusCode, Value) {
        let (status, body, _) = self
            .post_form(
                "token",
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", &self.spa),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
        (status, body)
    }

    /// Uses a refresh token as the `spa` client, with an optional `scope`.
    pub async fn refresh(&self, token: &str, scope: Option<&str>) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", self.spa.as_str()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let (status, body, _) = self.post_form("token", None, &form).await;
        (status, body)
    }

    /// Introspects `token` as the resource server.
    pub async fn introspect(&self, token: &str) -> Value {
        let (status, body, _) = self
            .post_form(
                "introspect",
                Some((&self.rs.0, &self.rs.1)),
                &[("token", token)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Verifies an ID token with the tenant's JWKS (signature, `iss`, `aud` = the `spa`
    /// client, not expired) and returns its claims.
    pub async fn id_token_claims(&self, id_token: &str) -> Value {
        let header = jsonwebtoken::decode_header(id_token).unwrap();
        assert_eq!(
            header.typ.as_deref(),
            Some("JWT"),
            "an ID token is no at+jwt"
        );
        let jwks: JwkSet = self
            .app
            .client
            .get(format!("{}/.well-known/jwks.json", self.issuer()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.spa]);
        validation.set_issuer(&[self.issuer()]);
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims
    }
}

/// The claims of a JWT, unverified.
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `at_hash` of an access token signed with a SHA-256 algorithm (OpenID Connect Core
/// §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}
