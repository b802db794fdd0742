//! The per-tenant OAuth 2.0 authorization server for machines, driven by a real OAuth client
//! (the `oauth2` crate): discovery, client credentials (RFC 6749 §4.4) with client_secret_basic
//! and client_secret_post, JWT access tokens (RFC 9068) checked against the tenant's JWKS with
//! `jsonwebtoken`, introspection (RFC 7662), revocation (RFC 7009), every error of RFC 6749 §5.2
//! the token endpoint can answer, and the OAuth client admin API.
//!
//! Where the `oauth2` crate cannot produce a request (both credential methods at once, an unknown
//! grant type) or does not show the response headers (`Cache-Control`, `WWW-Authenticate`), the
//! request is sent with plain reqwest instead.

use std::collections::HashSet;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AsyncHttpClient, AuthType, AuthorizationCode, Client, ClientId, ClientSecret,
    EndpointNotSet, EndpointSet, ExtraTokenFields, HttpClientError, HttpRequest, HttpResponse,
    IntrospectionUrl, RedirectUrl, RequestTokenError, RevocationUrl, Scope, StandardRevocableToken,
    StandardTokenIntrospectionResponse, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_event_schemas::Event;

use crate::helpers::{Store, TestServer, read_log, spawn_app};
use crate::on_both_stores;

// ---------------------------------------------------------------------------------------------
// The OAuth client: types and helpers.
// ---------------------------------------------------------------------------------------------

/// Tessera adds `tenant_id` to the RFC 7662 introspection fields.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct TesseraIntrospectionFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
}
impl ExtraTokenFields for TesseraIntrospectionFields {}

type Introspection = StandardTokenIntrospectionResponse<TesseraIntrospectionFields, BasicTokenType>;

/// An `oauth2` client with the token, introspection and revocation endpoints set.
type OAuthClient = Client<
    BasicErrorResponse,
    BasicTokenResponse,
    Introspection,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet, // authorization endpoint: none yet
    EndpointNotSet, // device authorization endpoint
    EndpointSet,    // introspection
    EndpointSet,    // revocation
    EndpointSet,    // token
>;

type HttpError = HttpClientError<reqwest::Error>;
type TokenError = RequestTokenError<HttpError, BasicErrorResponse>;
type RevocationError = RequestTokenError<HttpError, BasicRevocationErrorResponse>;

/// The discovery document (RFC 8414 / OpenID Connect Discovery), the fields these tests use.
#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    grant_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint_auth_methods_supported: Vec<String>,
}

/// A tenant as these tests see it: its id, its issuer and its discovery document.
struct Tenant {
    id: String,
    issuer: String,
    discovery: Discovery,
}

/// A registered OAuth client: the `client` object of the 201 and its secret.
struct Registered {
    client_id: String,
    secret: String,
    client: Value,
}

/// oauth2 5 requires an HTTP client that does not follow redirects.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Creates a tenant (optionally with a signing algorithm) and fetches its discovery document.
async fn tenant(app: &TestServer, slug: &str, signing_alg: Option<&str>) -> Tenant {
    let mut body = json!({"slug": slug, "name": format!("Tenant {slug}")});
    if let Some(alg) = signing_alg {
        body["signing_alg"] = json!(alg);
    }
    let created = app.create_tenant_with(body).await;
    Tenant {
        id: created["id"].as_str().unwrap().to_owned(),
        issuer: app.issuer(slug),
        discovery: discover(app, slug).await,
    }
}

async fn discover(app: &TestServer, slug: &str) -> Discovery {
    let url = format!("{}/.well-known/openid-configuration", app.issuer(slug));
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().await.unwrap()
}

/// `POST /v1/tenants/{id}/clients` with the platform admin key; asserts 201.
async fn register_client(app: &TestServer, tenant_id: &str, body: Value) -> Registered {
    let (status, created) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/clients"))
                .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["warning"].is_string(), "{created}");
    Registered {
        client_id: created["client"]["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        client: created["client"].clone(),
    }
}

/// A confidential client_credentials client with these scopes and the default TTL.
async fn machine_client(app: &TestServer, t: &Tenant, name: &str, scopes: &[&str]) -> Registered {
    register_client(app, &t.id, json!({"name": name, "allowed_scopes": scopes})).await
}

/// RFC 7009 §2: "Clients MUST verify that the URL is an HTTPS URL", and oauth2 does. The test
/// server speaks plain http on 127.0.0.1, so the client is handed the https spelling of the
/// revocation endpoint and [`loopback`] sends the request to the same host and port over http.
fn https_spelling(url: &str) -> String {
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    url.replacen("http://", "https://", 1)
}

async fn loopback(
    http: &reqwest::Client,
    mut request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let uri = request.uri().to_string().replacen("https://", "http://", 1);
    *request.uri_mut() = uri.parse().unwrap();
    http.call(request).await
}

fn oauth_client(t: &Tenant, client_id: &str, secret: &str, auth: AuthType) -> OAuthClient {
    let d = &t.discovery;
    Client::new(ClientId::new(client_id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_auth_type(auth)
        .set_token_uri(TokenUrl::new(d.token_endpoint.clone()).unwrap())
        .set_introspection_url(IntrospectionUrl::new(d.introspection_endpoint.clone()).unwrap())
        .set_revocation_url(RevocationUrl::new(https_spelling(&d.revocation_endpoint)).unwrap())
}

/// client_secret_basic.
fn basic(t: &Tenant, c: &Registered) -> OAuthClient {
    oauth_client(t, &c.client_id, &c.secret, AuthType::BasicAuth)
}

/// client_secret_post.
fn post(t: &Tenant, c: &Registered) -> OAuthClient {
    oauth_client(t, &c.client_id, &c.secret, AuthType::RequestBody)
}

async fn try_token(
    client: &OAuthClient,
    scopes: &[&str],
) -> Result<BasicTokenResponse, TokenError> {
    let http = http();
    client
        .exchange_client_credentials()
        .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
        .request_async(&http)
        .await
}

/// A client-credentials token; fails the test on an error response.
async fn token(client: &OAuthClient, scopes: &[&str]) -> BasicTokenResponse {
    match try_token(client, scopes).await {
        Ok(response) => response,
        Err(error) => panic!("token request failed: {}", describe(&error)),
    }
}

async fn introspect(client: &OAuthClient, token: &str) -> Introspection {
    let http = http();
    let token = AccessToken::new(token.to_owned());
    match client.introspect(&token).request_async(&http).await {
        Ok(response) => response,
        Err(error) => panic!("introspection failed: {}", describe(&error)),
    }
}

async fn try_introspect(client: &OAuthClient, token: &str) -> Result<Introspection, TokenError> {
    let http = http();
    let token = AccessToken::new(token.to_owned());
    client.introspect(&token).request_async(&http).await
}

async fn revoke(client: &OAuthClient, token: &str) -> Result<(), RevocationError> {
    let http = http();
    let transport = |request: HttpRequest| loopback(&http, request);
    let token: StandardRevocableToken = AccessToken::new(token.to_owned()).into();
    client
        .revoke_token(token)
        .unwrap()
        .request_async(&transport)
        .await
}

/// The error code of an OAuth error response; fails the test on anything else.
fn oauth_error<T: std::fmt::Debug>(result: Result<T, TokenError>) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(response)) => response.error().clone(),
        Err(other) => panic!("expected an OAuth error response, got {}", describe(&other)),
        Ok(ok) => panic!("expected an OAuth error response, got success: {ok:?}"),
    }
}

fn describe<E>(error: &RequestTokenError<HttpError, E>) -> String
where
    E: oauth2::ErrorResponse + std::fmt::Debug + 'static,
{
    match error {
        RequestTokenError::Parse(e, body) => {
            format!(
                "unparseable response ({e}): {}",
                String::from_utf8_lossy(body)
            )
        }
        other => format!("{other:?}"),
    }
}

fn scope_set<S: AsRef<str>>(scopes: impl IntoIterator<Item = S>) -> HashSet<String> {
    scopes.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

fn granted(response: &BasicTokenResponse) -> HashSet<String> {
    scope_set(response.scopes().into_iter().flatten().map(|s| s.as_str()))
}

fn introspected_scopes(response: &Introspection) -> HashSet<String> {
    scope_set(response.scopes().into_iter().flatten().map(|s| s.as_str()))
}

fn claim_scopes(claims: &Value) -> HashSet<String> {
    scope_set(
        claims["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .filter(|s| !s.is_empty()),
    )
}

// ---------------------------------------------------------------------------------------------
// JWKS and JWT validation.
// ---------------------------------------------------------------------------------------------

/// The tenant's JWKS as a `JwkSet`, its raw JSON and the response headers.
async fn jwks(t: &Tenant) -> (JwkSet, Value, HeaderMap) {
    let response = http().get(&t.discovery.jwks_uri).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let raw: Value = response.json().await.unwrap();
    let set: JwkSet = serde_json::from_value(raw.clone()).unwrap();
    (set, raw, headers)
}

fn kids(raw_jwks: &Value) -> Vec<String> {
    raw_jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Validates an access token as a resource server would: the header says `at+jwt` and names a
/// key of the JWKS, the signature verifies with it, `iss` and `aud` are the issuer, it has not
/// expired. Returns the header and the claims.
fn verify_jwt(
    token: &str,
    jwks: &JwkSet,
    t: &Tenant,
    alg: Algorithm,
) -> (jsonwebtoken::Header, Value) {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
    assert_eq!(header.alg, alg);
    let kid = header.kid.clone().expect("the header names its key");
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[&t.issuer]);
    validation.set_audience(&[&t.issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("the token does not validate: {e}"));
    (header, data.claims)
}

/// The RFC 9068 claims of a client-credentials token.
fn assert_claims(claims: &Value, t: &Tenant, client_id: &str, scopes: &[&str], ttl: u64) {
    assert_eq!(claims["iss"], t.issuer.as_str(), "{claims}");
    let aud = &claims["aud"];
    assert!(
        aud == t.issuer.as_str() || aud.as_array().is_some_and(|a| a.contains(&json!(t.issuer))),
        "aud is the issuer: {claims}"
    );
    assert_eq!(claims["sub"], client_id, "{claims}");
    assert_eq!(claims["client_id"], client_id, "{claims}");
    assert_eq!(claims["tenant_id"], t.id.as_str(), "{claims}");
    assert_eq!(claim_scopes(claims), scope_set(scopes), "{claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    let iat = claims["iat"].as_u64().unwrap();
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(exp - iat, ttl, "exp = iat + the client's TTL: {claims}");
    let now = jsonwebtoken::get_current_timestamp();
    assert!(iat.abs_diff(now) <= 60, "iat {iat} is now ({now})");
}

// ---------------------------------------------------------------------------------------------
// Raw requests, for headers and for requests the oauth2 crate cannot make.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Creds<'a> {
    None,
    /// client_secret_basic (RFC 6749 §2.3.1: both parts form-urlencoded, then Basic).
    Basic(&'a str, &'a str),
    /// client_secret_post.
    Post(&'a str, &'a str),
    /// Both at once, which RFC 6749 §2.3 forbids.
    Both(&'a str, &'a str),
}

impl<'a> Creds<'a> {
    fn basic(c: &'a Registered) -> Self {
        Creds::Basic(&c.client_id, &c.secret)
    }
}

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn raw_post(url: &str, creds: Creds<'_>, form: &[(&str, &str)]) -> Raw {
    let mut params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut request = http().post(url);
    if let Creds::Post(id, secret) | Creds::Both(id, secret) = creds {
        params.push(("client_id".to_owned(), id.to_owned()));
        params.push(("client_secret".to_owned(), secret.to_owned()));
    }
    if let Creds::Basic(id, secret) | Creds::Both(id, secret) = creds {
        let encode = |s: &str| {
            oauth2::url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        };
        request = request.basic_auth(encode(id), Some(encode(secret)));
    }
    let response = request.form(&params).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Raw {
        status,
        headers,
        body,
    }
}

async fn raw_token(t: &Tenant, creds: Creds<'_>, form: &[(&str, &str)]) -> Raw {
    raw_post(&t.discovery.token_endpoint, creds, form).await
}

async fn raw_introspect(t: &Tenant, creds: Creds<'_>, token: &str) -> Raw {
    raw_post(
        &t.discovery.introspection_endpoint,
        creds,
        &[("token", token)],
    )
    .await
}

async fn raw_revoke(t: &Tenant, creds: Creds<'_>, token: &str) -> Raw {
    raw_post(&t.discovery.revocation_endpoint, creds, &[("token", token)]).await
}

/// RFC 6749 §5.1 / RFC 7662 §2.2 / RFC 7009: responses carrying tokens or token state are never
/// cached.
fn assert_no_store(raw: &Raw, what: &str) {
    let cache_control = raw
        .headers
        .get("cache-control")
        .unwrap_or_else(|| panic!("{what}: no Cache-Control header ({})", raw.body))
        .to_str()
        .unwrap();
    assert!(
        cache_control.contains("no-store"),
        "{what}: Cache-Control is {cache_control:?}"
    );
}

/// An RFC 6749 §5.2 error: status, `error`, no-store, and a challenge on 401.
fn assert_oauth_error(raw: &Raw, status: StatusCode, error: &str, what: &str) {
    assert_eq!(raw.status, status, "{what}: {}", raw.body);
    assert_eq!(raw.body["error"], error, "{what}: {}", raw.body);
    assert!(
        raw.body["error_description"].is_string() || raw.body.get("error_description").is_none(),
        "{what}: {}",
        raw.body
    );
    assert_no_store(raw, what);
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            raw.headers.get("www-authenticate").is_some(),
            "{what}: a 401 carries WWW-Authenticate"
        );
    }
}

async fn admin_post(app: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    app.send(app.admin(Method::POST, path).json(&body)).await
}

// ---------------------------------------------------------------------------------------------
// 1. The whole story.
// ---------------------------------------------------------------------------------------------

async fn a_machine_gets_a_jwt_that_verifies_introspects_and_revokes(store: Store) {
    let mut app = spawn_app(store).await;

    // 1. A tenant.
    let created = app.create_tenant("acme").await;
    let tenant_id = created["id"].as_str().unwrap().to_owned();

    // 2. A confidential client.
    let reg = register_client(
        &app,
        &tenant_id,
        json!({
            "name": "billing-sync",
            "allowed_scopes": ["invoices:read", "invoices:write"],
            "access_token_ttl_secs": 900,
        }),
    )
    .await;
    assert!(
        !reg.secret.is_empty(),
        "a confidential client gets a secret"
    );
    let c = &reg.client;
    assert_eq!(c["tenant_id"], tenant_id.as_str());
    assert_eq!(c["name"], "billing-sync");
    assert_eq!(c["client_type"], "confidential");
    assert_eq!(c["grant_types"], json!(["client_credentials"]));
    assert_eq!(c["redirect_uris"], json!([]));
    assert_eq!(
        c["allowed_scopes"],
        json!(["invoices:read", "invoices:write"])
    );
    assert_eq!(c["access_token_ttl_secs"], 900);
    assert_eq!(c["active"], true);
    for field in ["created_by", "created_at", "updated_at"] {
        assert!(c[field].is_string(), "{field}: {c}");
    }
    assert!(c.get("client_secret").is_none() && !c.to_string().contains(&reg.secret));

    // 3. Discovery.
    let issuer = app.issuer("acme");
    let t = Tenant {
        id: tenant_id.clone(),
        issuer: issuer.clone(),
        discovery: discover(&app, "acme").await,
    };
    let d = &t.discovery;
    assert_eq!(d.issuer, issuer);
    assert_eq!(d.token_endpoint, format!("{issuer}/oauth/token"));
    assert_eq!(d.jwks_uri, format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(
        d.introspection_endpoint,
        format!("{issuer}/oauth/introspect")
    );
    assert_eq!(d.revocation_endpoint, format!("{issuer}/oauth/revoke"));

    // 4. Client credentials, client_secret_basic.
    let client = basic(&t, &reg);
    let response = token(&client, &[]).await;
    assert_eq!(*response.token_type(), BasicTokenType::Bearer);
    assert_eq!(response.expires_in().map(|d| d.as_secs()), Some(900));
    assert_eq!(
        granted(&response),
        scope_set(["invoices:read", "invoices:write"]),
        "no scope asked: every allowed scope"
    );
    let jwt = response.access_token().secret().clone();

    // 5. The JWT verifies against the JWKS.
    let (set, _, _) = jwks(&t).await;
    let (header, claims) = verify_jwt(&jwt, &set, &t, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), created["active_kid"].as_str());
    assert_claims(
        &claims,
        &t,
        &reg.client_id,
        &["invoices:read", "invoices:write"],
        900,
    );
    let jti = claims["jti"].as_str().unwrap().to_owned();

    // 6. Introspection says what the token says.
    let info = introspect(&client, &jwt).await;
    assert!(info.active());
    assert_eq!(
        introspected_scopes(&info),
        scope_set(["invoices:read", "invoices:write"])
    );
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(reg.client_id.as_str())
    );
    assert_eq!(info.sub(), Some(reg.client_id.as_str()));
    assert_eq!(info.iss(), Some(issuer.as_str()));
    assert_eq!(info.aud().cloned(), Some(vec![issuer.clone()]));
    assert_eq!(info.jti(), Some(jti.as_str()));
    assert_eq!(info.token_type(), Some(&BasicTokenType::Bearer));
    assert_eq!(
        info.exp().map(|e| e.timestamp()),
        claims["exp"].as_i64(),
        "introspected exp"
    );
    assert_eq!(info.iat().map(|e| e.timestamp()), claims["iat"].as_i64());
    assert_eq!(
        info.extra_fields().tenant_id.as_deref(),
        Some(tenant_id.as_str())
    );

    // 7. Revocation takes effect at once: no waiting, no retry.
    revoke(&client, &jwt).await.unwrap();
    let info = introspect(&client, &jwt).await;
    assert!(!info.active(), "revoked: {info:?}");
    assert!(
        info.scopes().is_none() && info.client_id().is_none() && info.sub().is_none(),
        "an inactive token reveals nothing: {info:?}"
    );
    // Revoking again, or revoking garbage, is still a 200 (RFC 7009 §2.2).
    revoke(&client, &jwt).await.unwrap();
    revoke(&client, "not-a-token").await.unwrap();

    // 8. Both are on the log, on the client's token stream.
    app.stop().await;
    let events = read_log(&app).await;
    let stream = format!("{tenant_id}/tokens/{}", reg.client_id);
    let on_stream: Vec<_> = events
        .iter()
        .filter(|e| e.envelope.stream_id == stream)
        .collect();
    let issued: Vec<_> = on_stream
        .iter()
        .filter_map(|e| match e.decode().unwrap() {
            Event::TokenIssued(p) if p.jti.to_string() == jti => Some((e.envelope.clone(), p)),
            _ => None,
        })
        .collect();
    assert_eq!(
        issued.len(),
        1,
        "one token.issued for jti {jti} on {stream}"
    );
    let (envelope, payload) = &issued[0];
    assert_eq!(envelope.event_type, "token.issued");
    assert_eq!(envelope.tenant_id.to_string(), tenant_id);
    assert_eq!(payload.client_id, reg.client_id);
    assert_eq!(payload.grant_type, "client_credentials");
    assert_eq!(Some(payload.kid.as_str()), header.kid.as_deref());
    assert_eq!(
        scope_set(&payload.scopes),
        scope_set(["invoices:read", "invoices:write"])
    );
    assert!(
        !serde_json::to_string(&Event::TokenIssued(payload.clone()).data_json())
            .unwrap()
            .contains(&jwt),
        "the token itself is not on the log"
    );
    let revoked = on_stream
        .iter()
        .filter(|e| e.envelope.event_type == "token.revoked")
        .filter(
            |e| matches!(e.decode().unwrap(), Event::TokenRevoked(p) if p.jti.to_string() == jti),
        )
        .count();
    assert!(revoked >= 1, "token.revoked for jti {jti} on {stream}");
}
on_both_stores!(a_machine_gets_a_jwt_that_verifies_introspects_and_revokes);

// ---------------------------------------------------------------------------------------------
// Discovery and JWKS.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_documents_describe_the_tenant_and_unknown_slugs_are_404() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "disco", None).await;
    let mut documents = Vec::new();
    for doc in ["openid-configuration", "oauth-authorization-server"] {
        let url = format!("{}/.well-known/{doc}", t.issuer);
        let (status, body) = app.send(app.client.get(&url)).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        let d: Discovery = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(d.issuer, t.issuer);
        assert_eq!(d.token_endpoint, format!("{}/oauth/token", t.issuer));
        assert_eq!(d.jwks_uri, format!("{}/.well-known/jwks.json", t.issuer));
        assert_eq!(
            d.introspection_endpoint,
            format!("{}/oauth/introspect", t.issuer)
        );
        assert_eq!(d.revocation_endpoint, format!("{}/oauth/revoke", t.issuer));
        assert_eq!(d.grant_types_supported, vec!["client_credentials"]);
        let methods = scope_set(["client_secret_basic", "client_secret_post"]);
        assert_eq!(scope_set(&d.token_endpoint_auth_methods_supported), methods);
        assert_eq!(
            scope_set(&d.introspection_endpoint_auth_methods_supported),
            methods
        );
        assert_eq!(
            scope_set(&d.revocation_endpoint_auth_methods_supported),
            methods
        );
        documents.push(body);
    }

    let other = tenant(&app, "disco-two", None).await;
    assert_eq!(other.discovery.issuer, app.issuer("disco-two"));
    assert_ne!(other.discovery.jwks_uri, t.discovery.jwks_uri);

    for doc in [
        "openid-configuration",
        "oauth-authorization-server",
        "jwks.json",
    ] {
        let url = format!("{}/t/nobody-here/.well-known/{doc}", app.base);
        let (status, body) = app.send(app.client.get(&url)).await;
        if doc == "jwks.json" {
            assert_eq!(status, StatusCode::NOT_FOUND, "{url}");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{url}: {body}");
            assert!(body["error"].is_string(), "a JSON 404: {body}");
        }
    }
}

#[tokio::test]
async fn the_jwks_publishes_public_signing_keys_with_a_short_cache_lifetime() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "jwks", None).await;
    let (set, raw, headers) = jwks(&t).await;
    let keys = raw["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{raw}");
    for key in keys {
        assert!(key["kid"].is_string(), "{key}");
        assert_eq!(key["alg"], "ES256", "{key}");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key.get("d").is_none(), "private key material: {key}");
    }
    assert_eq!(set.keys.len(), 1);
    let cache_control = headers["cache-control"].to_str().unwrap();
    let max_age: u64 = cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"))
        .parse()
        .unwrap();
    assert!(max_age <= 300, "max-age {max_age} > 300");
}

// ---------------------------------------------------------------------------------------------
// 2. client_secret_post.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_secret_post_works_and_both_methods_at_once_is_invalid_request() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "post-auth", None).await;
    let reg = machine_client(&app, &t, "poster", &["reports:read"]).await;

    let client = post(&t, &reg);
    let response = token(&client, &["reports:read"]).await;
    let jwt = response.access_token().secret().clone();
    let (set, _, _) = jwks(&t).await;
    let (_, claims) = verify_jwt(&jwt, &set, &t, Algorithm::ES256);
    assert_claims(&claims, &t, &reg.client_id, &["reports:read"], 3600);

    // Introspection and revocation accept client_secret_post too.
    assert!(introspect(&client, &jwt).await.active());
    revoke(&client, &jwt).await.unwrap();
    assert!(!introspect(&client, &jwt).await.active());

    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    let both = raw_token(
        &t,
        Creds::Both(&reg.client_id, &reg.secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(
        &both,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "basic and post",
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Secret regeneration.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_regenerated_secret_replaces_the_old_one_at_once() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "regen", None).await;
    let reg = machine_client(&app, &t, "rotating", &["a"]).await;
    let before = token(&basic(&t, &reg), &[]).await;

    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{}/clients/{}/secret", t.id, reg.client_id),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["warning"].is_string(), "{body}");
    assert_eq!(body["client"]["client_id"], reg.client_id.as_str());
    assert_eq!(body["client"]["active"], true);
    let new_secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, reg.secret);

    // The old secret: invalid_client, through the library and on the wire.
    assert_eq!(
        oauth_error(try_token(&basic(&t, &reg), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    assert_eq!(
        oauth_error(try_token(&post(&t, &reg), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    let raw = raw_token(
        &t,
        Creds::basic(&reg),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "old secret",
    );

    // The new one works, and tokens issued before stay valid (the client is still active).
    let renewed = Registered {
        secret: new_secret,
        client_id: reg.client_id.clone(),
        client: body["client"].clone(),
    };
    let client = basic(&t, &renewed);
    let after = token(&client, &[]).await;
    let (set, _, _) = jwks(&t).await;
    verify_jwt(after.access_token().secret(), &set, &t, Algorithm::ES256);
    assert!(
        introspect(&client, before.access_token().secret())
            .await
            .active()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Deactivation.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_deactivated_client_loses_its_tokens_and_gets_no_new_ones() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "deact", None).await;
    let doomed = machine_client(&app, &t, "doomed", &["a"]).await;
    let witness = machine_client(&app, &t, "witness", &[]).await;
    let jwt = token(&basic(&t, &doomed), &[])
        .await
        .access_token()
        .secret()
        .clone();
    let observer = basic(&t, &witness);
    assert!(introspect(&observer, &jwt).await.active());

    let (status, body) = app
        .send(app.admin(
            Method::DELETE,
            &format!("/v1/tenants/{}/clients/{}", t.id, doomed.client_id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], doomed.client_id.as_str());
    assert_eq!(body["active"], false);
    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/clients/{}", t.id, doomed.client_id),
        ))
        .await;
    assert_eq!((status, &body["active"]), (StatusCode::OK, &json!(false)));

    assert!(
        !introspect(&observer, &jwt).await.active(),
        "a deactivated client's tokens are inactive at once"
    );
    assert_eq!(
        oauth_error(try_token(&basic(&t, &doomed), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    let raw = raw_token(
        &t,
        Creds::basic(&doomed),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "deactivated",
    );
    // Nor can it call introspection itself.
    let raw = raw_introspect(&t, Creds::basic(&doomed), &jwt).await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "deactivated caller",
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Tenants are isolated.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn clients_and_tokens_do_not_cross_tenants() {
    let app = spawn_app(Store::Embedded).await;
    let a = tenant(&app, "tenant-a", None).await;
    let b = tenant(&app, "tenant-b", None).await;
    let a1 = machine_client(&app, &a, "a-one", &["read"]).await;
    let a2 = machine_client(&app, &a, "a-two", &[]).await;
    let b1 = machine_client(&app, &b, "b-one", &["read"]).await;

    // B's client at A's issuer is unknown there.
    assert_eq!(
        oauth_error(try_token(&basic(&a, &b1), &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    let raw = raw_token(
        &a,
        Creds::basic(&b1),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "B's client at A",
    );
    let raw = raw_introspect(&a, Creds::basic(&b1), "whatever").await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "B introspects at A",
    );

    // Any client of A may introspect A's tokens.
    let a_jwt = token(&basic(&a, &a1), &[])
        .await
        .access_token()
        .secret()
        .clone();
    let info = introspect(&basic(&a, &a2), &a_jwt).await;
    assert!(info.active());
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(a1.client_id.as_str())
    );

    // A's token means nothing at B, and does not verify with B's keys.
    assert!(!introspect(&basic(&b, &b1), &a_jwt).await.active());
    let (b_keys, _, _) = jwks(&b).await;
    let a_kid = jsonwebtoken::decode_header(&a_jwt).unwrap().kid.unwrap();
    assert!(b_keys.find(&a_kid).is_none(), "tenants share no keys");

    // Revoking A's token at B does nothing to it.
    revoke(&basic(&b, &b1), &a_jwt).await.unwrap();
    assert!(introspect(&basic(&a, &a2), &a_jwt).await.active());

    // And B's token at A.
    let b_jwt = token(&basic(&b, &b1), &[])
        .await
        .access_token()
        .secret()
        .clone();
    assert!(!introspect(&basic(&a, &a1), &b_jwt).await.active());
    assert!(introspect(&basic(&b, &b1), &b_jwt).await.active());
}

// ---------------------------------------------------------------------------------------------
// 6. Suspension.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_suspended_tenant_issues_nothing_and_its_tokens_are_inactive_until_reactivated() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "suspendable", None).await;
    let reg = machine_client(&app, &t, "worker", &["jobs:run"]).await;
    let client = basic(&t, &reg);
    let jwt = token(&client, &[]).await.access_token().secret().clone();
    assert!(introspect(&client, &jwt).await.active());

    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{}/suspend", t.id),
        json!({"reason": "unpaid"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(
        oauth_error(try_token(&client, &[]).await),
        BasicErrorResponseType::UnauthorizedClient
    );
    let raw = raw_token(
        &t,
        Creds::basic(&reg),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(
        &raw,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        "suspended",
    );
    assert!(
        !introspect(&client, &jwt).await.active(),
        "a suspended tenant's tokens are inactive"
    );

    let (status, body) =
        admin_post(&app, &format!("/v1/tenants/{}/reactivate", t.id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        introspect(&client, &jwt).await.active(),
        "reactivation brings unexpired tokens back"
    );
    token(&client, &[]).await;
}

// ---------------------------------------------------------------------------------------------
// 7. Signing keys: rotation, retirement, algorithms.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tokens_survive_key_rotation_until_their_key_is_retired_from_the_jwks() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "rotation", None).await;
    let reg = machine_client(&app, &t, "svc", &["a"]).await;
    let client = basic(&t, &reg);

    let t1 = token(&client, &[]).await.access_token().secret().clone();
    let (set, _, _) = jwks(&t).await;
    let (h1, _) = verify_jwt(&t1, &set, &t, Algorithm::ES256);
    let kid1 = h1.kid.unwrap();

    let (status, keys) = admin_post(
        &app,
        &format!("/v1/tenants/{}/keys/rotate", t.id),
        json!({}),
    )
    .await;
    assert!(status.is_success(), "{status}: {keys}");
    let kid2 = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "active")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(kid1, kid2);

    let t2 = token(&client, &[]).await.access_token().secret().clone();
    let (set, raw, _) = jwks(&t).await;
    let published = kids(&raw);
    assert!(
        published.contains(&kid1) && published.contains(&kid2),
        "{published:?}"
    );
    let (h2, _) = verify_jwt(&t2, &set, &t, Algorithm::ES256);
    assert_eq!(h2.kid.as_deref(), Some(kid2.as_str()));
    verify_jwt(&t1, &set, &t, Algorithm::ES256);
    assert!(
        introspect(&client, &t1).await.active(),
        "T1 outlives the rotation"
    );
    assert!(introspect(&client, &t2).await.active());

    let (status, body) = admin_post(
        &app,
        &format!("/v1/tenants/{}/keys/{kid1}/retire", t.id),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (set, raw, _) = jwks(&t).await;
    assert_eq!(
        kids(&raw),
        vec![kid2.clone()],
        "a retired key is unpublished"
    );
    verify_jwt(&t2, &set, &t, Algorithm::ES256);
}

#[tokio::test]
async fn eddsa_and_rs256_tenants_issue_tokens_that_verify_with_their_jwks() {
    let app = spawn_app(Store::Embedded).await;
    for (alg_name, alg) in [("EdDSA", Algorithm::EdDSA), ("RS256", Algorithm::RS256)] {
        let slug = format!("alg-{}", alg_name.to_lowercase());
        let t = tenant(&app, &slug, Some(alg_name)).await;
        let (set, raw, _) = jwks(&t).await;
        assert_eq!(raw["keys"][0]["alg"], alg_name, "{raw}");
        let reg = machine_client(&app, &t, "svc", &["x"]).await;
        let client = basic(&t, &reg);
        let jwt = token(&client, &["x"]).await.access_token().secret().clone();
        let (_, claims) = verify_jwt(&jwt, &set, &t, alg);
        assert_claims(&claims, &t, &reg.client_id, &["x"], 3600);
        assert!(introspect(&client, &jwt).await.active(), "{alg_name}");

        // A rotation to the default algorithm: the new key signs, the old one still verifies.
        let (status, body) = admin_post(
            &app,
            &format!("/v1/tenants/{}/keys/rotate", t.id),
            json!({"alg": "ES256"}),
        )
        .await;
        assert!(status.is_success(), "{status}: {body}");
        let after = token(&client, &[]).await.access_token().secret().clone();
        let (set, _, _) = jwks(&t).await;
        verify_jwt(&after, &set, &t, Algorithm::ES256);
        verify_jwt(&jwt, &set, &t, alg);
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Scopes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn scopes_are_granted_within_the_allowed_set_only() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "scopes", None).await;
    let reg = machine_client(&app, &t, "scoped", &["a:read", "a:write", "b:read"]).await;
    let client = basic(&t, &reg);
    let (set, _, _) = jwks(&t).await;

    let subset = token(&client, &["a:read", "b:read"]).await;
    assert_eq!(granted(&subset), scope_set(["a:read", "b:read"]));
    let (_, claims) = verify_jwt(subset.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_eq!(claim_scopes(&claims), scope_set(["a:read", "b:read"]));
    let info = introspect(&client, subset.access_token().secret()).await;
    assert_eq!(introspected_scopes(&info), scope_set(["a:read", "b:read"]));

    let one = token(&client, &["a:write"]).await;
    let (_, claims) = verify_jwt(one.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_eq!(claims["scope"], "a:write");

    for asked in [
        &["a:read", "admin"][..],
        &["admin"][..],
        &["a:read:extra"][..],
    ] {
        assert_eq!(
            oauth_error(try_token(&client, asked).await),
            BasicErrorResponseType::InvalidScope,
            "{asked:?}"
        );
    }
    let raw = raw_token(
        &t,
        Creds::basic(&reg),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "a:read admin"),
        ],
    )
    .await;
    assert_oauth_error(&raw, StatusCode::BAD_REQUEST, "invalid_scope", "escalation");

    let all = token(&client, &[]).await;
    assert_eq!(granted(&all), scope_set(["a:read", "a:write", "b:read"]));
    let (_, claims) = verify_jwt(all.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_eq!(
        claim_scopes(&claims),
        scope_set(["a:read", "a:write", "b:read"])
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Every error of the token, introspection and revocation endpoints.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_token_endpoint_error_is_an_rfc6749_error_and_nothing_is_cached() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "errors", None).await;
    let machine = machine_client(&app, &t, "machine", &["read"]).await;
    let web = register_client(
        &app,
        &t.id,
        json!({
            "name": "web",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://app.example/callback"],
        }),
    )
    .await;
    assert!(!web.secret.is_empty());
    let cc = [("grant_type", "client_credentials")];

    // Success responses are not cached either.
    let ok = raw_token(&t, Creds::basic(&machine), &cc).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["expires_in"], 3600);
    assert_eq!(ok.body["scope"], "read");
    assert_no_store(&ok, "token success");
    let jwt = ok.body["access_token"].as_str().unwrap().to_owned();

    // invalid_request: no grant_type; two authentication methods.
    let raw = raw_token(&t, Creds::basic(&machine), &[]).await;
    assert_oauth_error(
        &raw,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "no grant_type",
    );
    let raw = raw_token(&t, Creds::Both(&machine.client_id, &machine.secret), &cc).await;
    assert_oauth_error(
        &raw,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "basic and post",
    );

    // No credentials at all: never a token.
    let raw = raw_token(&t, Creds::None, &cc).await;
    assert!(
        matches!(
            (raw.status, raw.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client"))
                | (StatusCode::BAD_REQUEST, Some("invalid_request"))
        ),
        "no credentials: {} {}",
        raw.status,
        raw.body
    );
    assert_no_store(&raw, "no credentials");

    // invalid_client: unknown client, wrong secret (basic and post).
    let raw = raw_token(&t, Creds::Basic("no-such-client", "secret"), &cc).await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "unknown client",
    );
    let raw = raw_token(&t, Creds::Basic(&machine.client_id, "wrong-secret"), &cc).await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "wrong secret",
    );
    let raw = raw_token(&t, Creds::Post(&machine.client_id, "wrong-secret"), &cc).await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "wrong secret, post",
    );
    let stranger = oauth_client(&t, "no-such-client", "secret", AuthType::BasicAuth);
    assert_eq!(
        oauth_error(try_token(&stranger, &[]).await),
        BasicErrorResponseType::InvalidClient
    );
    let wrong = oauth_client(
        &t,
        &machine.client_id,
        "wrong-secret",
        AuthType::RequestBody,
    );
    assert_eq!(
        oauth_error(try_token(&wrong, &[]).await),
        BasicErrorResponseType::InvalidClient
    );

    // unsupported_grant_type.
    for grant in ["password", "urn:example:made-up"] {
        let raw = raw_token(
            &t,
            Creds::basic(&machine),
            &[("grant_type", grant), ("username", "u"), ("password", "p")],
        )
        .await;
        assert_oauth_error(
            &raw,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            grant,
        );
    }

    // unauthorized_client: a client not registered for client_credentials.
    let web_client = basic(&t, &web);
    assert_eq!(
        oauth_error(try_token(&web_client, &[]).await),
        BasicErrorResponseType::UnauthorizedClient
    );
    let raw = raw_token(&t, Creds::basic(&web), &cc).await;
    assert_oauth_error(
        &raw,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        "grant not registered",
    );

    // invalid_grant: no authorization code is valid yet.
    let transport = http();
    let exchange = web_client
        .clone()
        .set_redirect_uri(RedirectUrl::new("https://app.example/callback".to_owned()).unwrap())
        .exchange_code(AuthorizationCode::new("whatever".to_owned()))
        .request_async(&transport)
        .await;
    assert_eq!(oauth_error(exchange), BasicErrorResponseType::InvalidGrant);
    let raw = raw_token(
        &t,
        Creds::basic(&web),
        &[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("redirect_uri", "https://app.example/callback"),
        ],
    )
    .await;
    assert_oauth_error(
        &raw,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "made-up code",
    );

    // invalid_scope.
    let raw = raw_token(
        &t,
        Creds::basic(&machine),
        &[("grant_type", "client_credentials"), ("scope", "write")],
    )
    .await;
    assert_oauth_error(
        &raw,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
        "scope not allowed",
    );

    // Introspection: success and inactive answers are not cached; bad callers are 401.
    let raw = raw_introspect(&t, Creds::basic(&machine), &jwt).await;
    assert_eq!(
        (raw.status, &raw.body["active"]),
        (StatusCode::OK, &json!(true)),
        "{}",
        raw.body
    );
    assert_eq!(raw.body["tenant_id"], t.id.as_str());
    assert_no_store(&raw, "introspection");
    // Garbage, including an unsigned (`alg: none`) token, is simply inactive.
    for garbage in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        let raw = raw_introspect(&t, Creds::basic(&web), garbage).await;
        assert_eq!(raw.status, StatusCode::OK, "{garbage:?}: {}", raw.body);
        assert_eq!(raw.body, json!({"active": false}), "{garbage:?}");
        assert_no_store(&raw, "inactive introspection");
    }
    // No token at all is a malformed request (RFC 7662 §2.1: `token` is REQUIRED).
    let raw = raw_introspect(&t, Creds::basic(&web), "").await;
    assert_oauth_error(
        &raw,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "empty token",
    );
    let raw = raw_post(&t.discovery.introspection_endpoint, Creds::basic(&web), &[]).await;
    assert_oauth_error(&raw, StatusCode::BAD_REQUEST, "invalid_request", "no token");
    let raw = raw_introspect(&t, Creds::Basic(&machine.client_id, "wrong-secret"), &jwt).await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "introspect, wrong secret",
    );
    let raw = raw_introspect(&t, Creds::Basic("no-such-client", "x"), &jwt).await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "introspect, unknown",
    );
    let wrong_caller = oauth_client(&t, &machine.client_id, "wrong-secret", AuthType::BasicAuth);
    assert_eq!(
        oauth_error(try_introspect(&wrong_caller, &jwt).await),
        BasicErrorResponseType::InvalidClient
    );

    // Revocation: 200 for anything, not cached; bad callers are 401 and revoke nothing.
    let raw = raw_revoke(&t, Creds::Basic(&machine.client_id, "wrong-secret"), &jwt).await;
    assert_oauth_error(
        &raw,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "revoke, wrong secret",
    );
    assert!(introspect(&basic(&t, &machine), &jwt).await.active());
    for garbage in ["garbage", "a.b.c"] {
        let raw = raw_revoke(&t, Creds::basic(&machine), garbage).await;
        assert_eq!(raw.status, StatusCode::OK, "{garbage:?}: {}", raw.body);
        assert_no_store(&raw, "revoke garbage");
    }
    let raw = raw_revoke(&t, Creds::basic(&machine), &jwt).await;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.body);
    assert_no_store(&raw, "revoke");
    let raw = raw_revoke(&t, Creds::basic(&machine), &jwt).await;
    assert_eq!(raw.status, StatusCode::OK, "revoking twice: {}", raw.body);
    assert!(!introspect(&basic(&t, &machine), &jwt).await.active());
}

// ---------------------------------------------------------------------------------------------
// 10. Expiry and tampering.
// ---------------------------------------------------------------------------------------------

/// The shortest TTL is 60 s, too long to wait out in the default run; `exp` is checked to be
/// `iat + ttl` here and the wait is in the slow test below. A token whose claims were altered
/// (here: `exp` pushed out a year, or a scope added) no longer verifies and introspects inactive.
#[tokio::test]
async fn a_short_ttl_sets_exp_and_altered_tokens_are_inactive() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "expiry", None).await;
    let reg = register_client(
        &app,
        &t.id,
        json!({"name": "short", "allowed_scopes": ["a"], "access_token_ttl_secs": 60}),
    )
    .await;
    assert_eq!(reg.client["access_token_ttl_secs"], 60);
    let client = basic(&t, &reg);
    let response = token(&client, &[]).await;
    assert_eq!(response.expires_in().map(|d| d.as_secs()), Some(60));
    let jwt = response.access_token().secret().clone();
    let (set, _, _) = jwks(&t).await;
    let (_, claims) = verify_jwt(&jwt, &set, &t, Algorithm::ES256);
    assert_claims(&claims, &t, &reg.client_id, &["a"], 60);
    let info = introspect(&client, &jwt).await;
    assert_eq!(info.exp().map(|e| e.timestamp()), claims["exp"].as_i64());

    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 86_400);
    let mut wider = claims.clone();
    wider["scope"] = json!("a admin");
    for forged_claims in [longer, wider] {
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            engine.encode(forged_claims.to_string()),
            parts[2]
        );
        assert!(
            !introspect(&client, &forged).await.active(),
            "an altered token is inactive: {forged_claims}"
        );
    }
    assert!(introspect(&client, &jwt).await.active());
}

/// Waits out the shortest lifetime (60 s); it runs alongside the rest of the suite.
#[tokio::test]
async fn an_expired_token_introspects_inactive() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "expiry-wait", None).await;
    let reg = register_client(
        &app,
        &t.id,
        json!({"name": "short", "access_token_ttl_secs": 60}),
    )
    .await;
    let client = basic(&t, &reg);
    let jwt = token(&client, &[]).await.access_token().secret().clone();
    assert!(introspect(&client, &jwt).await.active());
    tokio::time::sleep(std::time::Duration::from_secs(62)).await;
    assert!(!introspect(&client, &jwt).await.active());
}

// ---------------------------------------------------------------------------------------------
// 11. The OAuth client admin API.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_registration_is_validated_and_rejections_append_nothing() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "validation", None).await;
    let path = format!("/v1/tenants/{}/clients", t.id);
    let head = app.log_head().await;

    let web = |uris: Value| json!({"name": "web", "grant_types": ["authorization_code"], "redirect_uris": uris});
    let cases: Vec<(Value, &[&str])> = vec![
        (
            web(json!(["https://app.example/cb#fragment"])),
            &["redirect_uris[0]"][..],
        ),
        (
            web(json!(["http://app.example/cb"])),
            &["redirect_uris[0]"][..],
        ),
        (web(json!(["/relative/cb"])), &["redirect_uris[0]"][..]),
        (web(json!(["not a uri"])), &["redirect_uris[0]"][..]),
        (
            web(json!(["https://ok.example/cb", "http://evil.example/cb"])),
            &["redirect_uris[1]"][..],
        ),
        (
            json!({"name": "spa", "client_type": "public", "grant_types": ["client_credentials"]}),
            &["grant_types", "client_type"][..],
        ),
        (
            json!({"name": "spa", "client_type": "public"}),
            &["grant_types", "client_type"][..],
        ),
        (
            json!({"name": "m", "access_token_ttl_secs": 59}),
            &["access_token_ttl_secs"][..],
        ),
        (
            json!({"name": "m", "access_token_ttl_secs": 86_401}),
            &["access_token_ttl_secs"][..],
        ),
        (
            json!({"name": "m", "access_token_ttl_secs": 0}),
            &["access_token_ttl_secs"][..],
        ),
        (
            json!({"name": "m", "client_type": "robot"}),
            &["client_type"][..],
        ),
    ];
    for (i, (body, fields)) in cases.into_iter().enumerate() {
        let (status, error) = app.send(app.admin(Method::POST, &path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "case {i} {body}: {error}");
        assert!(
            error["error"].is_string()
                && error["message"].is_string()
                && error["correlation_id"].is_string(),
            "case {i}: {error}"
        );
        let field = error["field"].as_str().unwrap_or_default();
        assert!(
            fields.contains(&field),
            "case {i} {body}: field {field:?} in {error}"
        );
    }
    assert_eq!(
        app.log_head().await,
        head,
        "rejected registrations appended events"
    );

    // Loopback http redirect URIs are allowed (RFC 8252 §7.3); so is https with a path and query.
    let loopback = register_client(
        &app,
        &t.id,
        web(json!([
            "http://localhost:8080/cb",
            "http://127.0.0.1:9000/cb",
            "http://[::1]:7000/cb",
            "https://app.example/cb?x=1"
        ])),
    )
    .await;
    assert_eq!(
        loopback.client["redirect_uris"].as_array().unwrap().len(),
        4
    );
    // A public client has no secret.
    let (status, public) = app
        .send(app.admin(Method::POST, &path).json(&json!({
            "name": "cli", "client_type": "public", "grant_types": ["authorization_code"],
            "redirect_uris": ["http://127.0.0.1:5000/cb"]})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{public}");
    assert_eq!(public["client"]["client_type"], "public");
    assert!(
        public.get("client_secret").is_none_or(Value::is_null),
        "{public}"
    );
    // Boundary TTLs are accepted.
    for ttl in [60, 86_400] {
        let reg = register_client(
            &app,
            &t.id,
            json!({"name": "m", "access_token_ttl_secs": ttl}),
        )
        .await;
        assert_eq!(reg.client["access_token_ttl_secs"], ttl);
    }
    // An unknown tenant.
    let (status, _) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{}/clients", uuid::Uuid::now_v7()),
            )
            .json(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn clients_are_listed_in_pages_without_secrets() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "listing", None).await;
    let other = tenant(&app, "listing-other", None).await;
    machine_client(&app, &other, "not mine", &[]).await;
    let mut secrets = Vec::new();
    let mut ids = HashSet::new();
    for i in 0..5 {
        let reg = machine_client(&app, &t, &format!("client-{i}"), &[]).await;
        secrets.push(reg.secret);
        ids.insert(reg.client_id);
    }

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants/{}/clients?limit=2&cursor={c}", t.id),
            None => format!("/v1/tenants/{}/clients?limit=2", t.id),
        };
        let (status, page) = app.send(app.admin(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let text = page.to_string();
        assert!(
            !text.contains("client_secret") && !text.contains("secret_hash"),
            "{page}"
        );
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret is listed");
        }
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        for item in items {
            assert_eq!(item["tenant_id"], t.id.as_str());
            seen.push(item["client_id"].as_str().unwrap().to_owned());
        }
        match page.get("next_cursor") {
            Some(next) => cursor = Some(next.as_str().unwrap().to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), ids);
    assert_eq!(seen.len(), 5, "{seen:?}");

    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/clients?limit=0", t.id),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/clients?cursor=garbage", t.id),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn client_updates_show_in_reads_and_in_new_tokens() {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, "updates", None).await;
    let reg = machine_client(&app, &t, "before", &["old"]).await;
    let path = format!("/v1/tenants/{}/clients/{}", t.id, reg.client_id);

    let (status, got) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, reg.client, "GET returns what the 201 did");

    let (status, updated) = app
        .send(app.admin(Method::PUT, &path).json(&json!({
            "name": "after",
            "allowed_scopes": ["new:read", "new:write"],
            "access_token_ttl_secs": 120,
        })))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "after");
    assert_eq!(updated["allowed_scopes"], json!(["new:read", "new:write"]));
    assert_eq!(updated["access_token_ttl_secs"], 120);
    assert_eq!(
        updated["grant_types"], reg.client["grant_types"],
        "untouched"
    );
    assert_eq!(updated["created_at"], reg.client["created_at"]);
    assert_eq!(updated["active"], true);
    assert_eq!(app.send(app.admin(Method::GET, &path)).await.1, updated);

    // The same secret still works, and new tokens follow the new settings.
    let client = basic(&t, &reg);
    let response = token(&client, &[]).await;
    assert_eq!(granted(&response), scope_set(["new:read", "new:write"]));
    let (set, _, _) = jwks(&t).await;
    let (_, claims) = verify_jwt(response.access_token().secret(), &set, &t, Algorithm::ES256);
    assert_claims(&claims, &t, &reg.client_id, &["new:read", "new:write"], 120);
    assert_eq!(
        oauth_error(try_token(&client, &["old"]).await),
        BasicErrorResponseType::InvalidScope
    );

    // Adding authorization_code needs valid redirect URIs; bad ones change nothing.
    let head = app.log_head().await;
    for (body, field) in [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "redirect_uris[0]",
        ),
        (
            json!({"access_token_ttl_secs": 10}),
            "access_token_ttl_secs",
        ),
    ] {
        let (status, error) = app.send(app.admin(Method::PUT, &path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["field"], field, "{error}");
    }
    assert_eq!(app.log_head().await, head);
    let (status, body) = app
        .send(app.admin(Method::PUT, &path).json(&json!({
            "grant_types": ["client_credentials", "authorization_code"],
            "redirect_uris": ["https://app.example/cb"],
        })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redirect_uris"], json!(["https://app.example/cb"]));
    assert_eq!(app.send(app.admin(Method::GET, &path)).await.1, body);

    let unknown = format!("/v1/tenants/{}/clients/no-such-client", t.id);
    assert_eq!(
        app.send(app.admin(Method::GET, &unknown)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.send(app.admin(Method::PUT, &unknown).json(&json!({"name": "x"})))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.send(app.admin(Method::DELETE, &unknown)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn tenant_scoped_keys_manage_only_their_own_tenants_clients() {
    let app = spawn_app(Store::Embedded).await;
    let a = tenant(&app, "keys-a", None).await;
    let b = tenant(&app, "keys-b", None).await;
    let b_client = machine_client(&app, &b, "b's", &[]).await;
    let admin_key = app
        .create_api_key(
            &a.id,
            json!({"name": "a-admin", "scopes": ["tenant:admin"]}),
        )
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let weak_key = app
        .create_api_key(
            &a.id,
            json!({"name": "a-reader", "scopes": ["reports:read"]}),
        )
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_a = |method: Method, path: &str| app.request(method, path, Some(&admin_key));

    // A's own clients: the whole lifecycle.
    let a_clients = format!("/v1/tenants/{}/clients", a.id);
    let (status, created) = app
        .send(
            as_a(Method::POST, &a_clients).json(&json!({"name": "mine", "allowed_scopes": ["x"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let one = format!("{a_clients}/{id}");
    let (status, page) = app.send(as_a(Method::GET, &a_clients)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.send(as_a(Method::GET, &one)).await.0, StatusCode::OK);
    let (status, body) = app
        .send(as_a(Method::PUT, &one).json(&json!({"name": "renamed"})))
        .await;
    assert_eq!(
        (status, &body["name"]),
        (StatusCode::OK, &json!("renamed")),
        "{body}"
    );
    let (status, body) = app
        .send(as_a(Method::POST, &format!("{one}/secret")).json(&json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["client_secret"].is_string());

    // B's: as if it did not exist.
    let b_clients = format!("/v1/tenants/{}/clients", b.id);
    let b_one = format!("{b_clients}/{}", b_client.client_id);
    for (method, path, body) in [
        (Method::GET, b_clients.clone(), None),
        (
            Method::POST,
            b_clients.clone(),
            Some(json!({"name": "sneaky"})),
        ),
        (Method::GET, b_one.clone(), None),
        (Method::PUT, b_one.clone(), Some(json!({"name": "sneaky"}))),
        (Method::POST, format!("{b_one}/secret"), Some(json!({}))),
        (Method::DELETE, b_one.clone(), None),
    ] {
        let mut request = as_a(method.clone(), &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, body) = app.send(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    // B's client through A's path is not found either, even for the platform admin.
    let (status, _) = app
        .send(app.admin(Method::GET, &format!("{a_clients}/{}", b_client.client_id)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And B's client is untouched.
    let (status, body) = app.send(app.admin(Method::GET, &b_one)).await;
    assert_eq!(
        (status, &body["name"], &body["active"]),
        (StatusCode::OK, &json!("b's"), &json!(true))
    );
    token(&basic(&b, &b_client), &[]).await;

    // A key of A without tenant:admin manages nothing.
    for (method, path) in [(Method::GET, a_clients.clone()), (Method::GET, one.clone())] {
        let (status, body) = app
            .send(app.request(method.clone(), &path, Some(&weak_key)))
            .await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "{method} {path} without tenant:admin: {status} {body}"
        );
    }
    let (status, body) = app
        .send(
            app.request(Method::POST, &a_clients, Some(&weak_key))
                .json(&json!({"name": "weak"})),
        )
        .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
        "register without tenant:admin: {status} {body}"
    );

    // Deactivation by the tenant's key.
    let (status, body) = app.send(as_a(Method::DELETE, &one)).await;
    assert_eq!(
        (status, &body["active"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    // No secret, no credentials: nothing without a key.
    assert_eq!(
        app.send(app.request(Method::GET, &a_clients, None)).await.0,
        StatusCode::UNAUTHORIZED
    );
}
