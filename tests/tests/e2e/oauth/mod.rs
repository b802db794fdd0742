//! The per-tenant OAuth 2.0 authorization server for machines, end to end: discovery, client
//! credentials (RFC 6749 §4.4) with client_secret_basic and client_secret_post, JWT access tokens
//! (RFC 9068) checked against the tenant's JWKS with `jsonwebtoken`, introspection (RFC 7662),
//! revocation (RFC 7009), every error of RFC 6749 §5.2 the endpoints can answer, and the OAuth
//! client admin API.
//!
//! This module owns what the files below share: the `oauth2` client the tests drive, tenants
//! and registered clients, JWT validation and the [`Fixture`] most tables start from. Wire-level
//! requests and the table-driven cases live in [`cases`].
//!
//! # Layout
//! - [`cases`]: raw requests, the expected answers ([`cases::Expect`]) and the table runner.
//! - [`token`]: the token endpoint's RFC 6749 §5.2 errors, its success response, and scopes.
//! - [`client_auth`]: client authentication, alike at every endpoint that authenticates clients.
//! - [`introspection`]: RFC 7662 answers, altered and expired tokens.
//! - [`revocation`]: RFC 7009 answers.
//! - [`discovery`]: discovery documents, the JWKS, key rotation and signing algorithms.
//! - [`third_party`]: the whole story through the `oauth2` crate, and how it reads our errors.
//! - [`lifecycle`]: what secret regeneration, deactivation, suspension and tenancy do to tokens.
//! - [`admin`]: the OAuth client admin API (`/v1/tenants/{id}/clients`).
//!
//! A new flow adds its endpoints to [`cases::Endpoint`], its error branches as rows of a table
//! (one [`cases::Case`] a row, answers from the constants of [`cases::Expect`]), and a file of
//! its own for its happy path.

mod admin;
mod cases;
mod client_auth;
mod discovery;
mod introspection;
mod lifecycle;
mod revocation;
mod third_party;
mod token;

use std::collections::HashSet;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AsyncHttpClient, AuthType, Client, ClientId, ClientSecret, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpClientError, HttpRequest, HttpResponse, IntrospectionUrl,
    RequestTokenError, RevocationUrl, Scope, StandardRevocableToken,
    StandardTokenIntrospectionResponse, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, spawn_app};

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

/// The redirect URI of the fixture's `web` client.
const WEB_REDIRECT_URI: &str = "https://app.example/callback";

/// A server with one tenant and the clients most tables need.
struct Fixture {
    app: TestServer,
    t: Tenant,
    /// A confidential client_credentials client allowed the scope `read`.
    machine: Registered,
    /// A confidential client registered for authorization_code only, so not for
    /// client_credentials.
    web: Registered,
}

/// An embedded server, a tenant `slug` and its `machine` and `web` clients.
async fn fixture(slug: &str) -> Fixture {
    let app = spawn_app(Store::Embedded).await;
    let t = tenant(&app, slug, None).await;
    let machine = machine_client(&app, &t, "machine", &["read"]).await;
    let web = register_client(
        &app,
        &t.id,
        json!({
            "name": "web",
            "grant_types": ["authorization_code"],
            "redirect_uris": [WEB_REDIRECT_URI],
        }),
    )
    .await;
    assert!(!web.secret.is_empty());
    Fixture {
        app,
        t,
        machine,
        web,
    }
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

/// Just the access token of a client-credentials grant with every allowed scope.
async fn access_token(client: &OAuthClient) -> String {
    token(client, &[]).await.access_token().secret().clone()
}

async fn introspect(client: &OAuthClient, token: &str) -> Introspection {
    match try_introspect(client, token).await {
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

async fn admin_post(app: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    app.send(app.admin(Method::POST, path).json(&body)).await
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
