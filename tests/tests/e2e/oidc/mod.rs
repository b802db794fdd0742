//! OpenID Connect's front half, end to end: the authorization endpoint, the sign-in
//! continuation, the consent page, the codes it issues (their events on the log) and consents
//! revoked on the account page and through the admin API. The token exchange is tested with
//! the back half.
//!
//! A relying party here is a tenant, a person and a confidential client registered for the
//! authorization code grant; the browser is `http_browser`'s cookie-keeping client, which
//! never follows a redirect, so every 303 of the flow is seen and checked.

mod consents;
mod crash;
mod errors;
mod flow;
mod prompt;

use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use tessera_event_schemas::Event;
use tessera_event_schemas::events::AuthorizationCodeIssuedV1;

use crate::helpers::{Store, TestServer, read_log};
use crate::http_browser::{Answer, Browser, STRONG, people_app, person};

/// The client's web redirect URI.
pub const REDIRECT: &str = "https://photos.example/cb";
/// A registered redirect URI with a query of its own, which the answer must keep.
pub const REDIRECT_WITH_QUERY: &str = "https://photos.example/cb?flow=oidc";
/// A native app's loopback redirect URI: any port is accepted (RFC 8252 §7.3).
pub const LOOPBACK: &str = "http://127.0.0.1/native";
/// The PKCE challenge of RFC 7636's appendix B.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const EMAIL: &str = "ada@example.com";

/// A tenant, a person and a client that signs people in.
pub struct Rp {
    pub app: TestServer,
    pub slug: String,
    pub tenant_id: String,
    pub user_id: String,
    pub client_id: String,
}

/// Registers a client of `tenant_id` with `body`'s fields over sensible defaults; returns its id.
pub async fn register(app: &TestServer, tenant_id: &str, body: Value) -> String {
    register_with_secret(app, tenant_id, body).await.0
}

/// [`register`], returning the client's id and its secret (empty for a public client).
pub async fn register_with_secret(
    app: &TestServer,
    tenant_id: &str,
    body: Value,
) -> (String, String) {
    let mut fields = json!({
        "name": "Photo Album",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT, REDIRECT_WITH_QUERY, LOOPBACK],
        "allowed_scopes": ["openid", "profile", "email", "offline_access"],
    });
    for (key, value) in body.as_object().unwrap() {
        fields[key] = value.clone();
    }
    let (status, created) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/clients"))
                .json(&fields),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["client"]["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// A server on `store` with a tenant `slug`, a person ([`EMAIL`], [`STRONG`]) and a client.
pub async fn rp(store: Store, slug: &str) -> Rp {
    let app = people_app(store).await;
    let tenant_id = app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_id = person(&app, &tenant_id, EMAIL, STRONG, false).await;
    let client_id = register(&app, &tenant_id, json!({})).await;
    Rp {
        app,
        slug: slug.to_owned(),
        tenant_id,
        user_id,
        client_id,
    }
}

impl Rp {
    /// `/t/{slug}/oauth/authorize?...`: a valid request (code, PKCE S256, `openid email`,
    /// a state and a nonce) with `changes` applied: a pair replaces the default of its name,
    /// or is added; a pair whose value is `"-"` removes the parameter.
    pub fn authorize(&self, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email"),
            ("state", "st4te/with spaces&more"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (name, value) in changes {
            pairs.retain(|(k, _)| k != name);
            if *value != "-" {
                pairs.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        format!("/t/{}/oauth/authorize?{query}", self.slug)
    }

    /// Signs in on the page the authorization endpoint sent the browser to (`answer`, a 303
    /// to the sign-in page), and returns the answer to the form: a 303 back to the endpoint.
    pub async fn sign_in_at(&self, browser: &Browser, answer: &Answer) -> Answer {
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let login = answer.location().to_owned();
        assert!(
            login.starts_with(&format!("/t/{}/login?", self.slug)),
            "{login}"
        );
        let page = browser.get(&login).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let return_to = hidden_fields(&page.body)
            .into_iter()
            .find(|(name, _)| name == "return_to")
            .map(|(_, value)| value)
            .unwrap();
        let signed_in = browser
            .post_form(
                &format!("/t/{}/login", self.slug),
                &[
                    ("email", EMAIL),
                    ("password", STRONG),
                    ("return_to", &return_to),
                    ("csrf_token", &page.csrf()),
                ],
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        assert!(
            signed_in
                .location()
                .starts_with(&format!("/t/{}/oauth/authorize?", self.slug)),
            "{}",
            signed_in.location()
        );
        signed_in
    }

    /// The person's consents, as the admin API lists them.
    pub async fn consents(&self) -> Value {
        let (status, body) = self
            .app
            .send(self.app.admin(
                Method::GET,
                &format!(
                    "/v1/tenants/{}/users/{}/consents",
                    self.tenant_id, self.user_id
                ),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// A browser signed in at the tenant (on the account page).
    pub async fn signed_in_browser(&self) -> Browser {
        let browser = Browser::new(&self.app);
        browser.signed_in(&self.slug, EMAIL, STRONG).await;
        browser
    }
}

/// The consent page's answer: posts its form (hidden fields and CSRF token) with the button
/// `decision` (`allow` or `deny`).
pub async fn decide(browser: &Browser, page: &Answer, decision: &str) -> Answer {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>")
    );
    let action = unescape(&attribute_after(
        &page.body,
        "<form method=\"post\" action=\"",
        0,
    ));
    let mut fields: Vec<(String, String)> = hidden_fields(&page.body);
    fields.push(("decision".to_owned(), decision.to_owned()));
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post_form(&action, &fields).await
}

/// The hidden fields of a page's forms, unescaped.
pub fn hidden_fields(body: &str) -> Vec<(String, String)> {
    let marker = "<input type=\"hidden\" name=\"";
    let mut fields = Vec::new();
    let mut from = 0;
    while let Some(at) = body[from..].find(marker) {
        let start = from + at + marker.len();
        let name_end = start + body[start..].find('"').unwrap();
        let name = unescape(&body[start..name_end]);
        let value = unescape(&attribute_after(body, "value=\"", name_end));
        fields.push((name, value));
        from = name_end;
    }
    fields
}

fn attribute_after(body: &str, marker: &str, from: usize) -> String {
    let at = from + body[from..].find(marker).unwrap() + marker.len();
    body[at..at + body[at..].find('"').unwrap()].to_owned()
}

/// Undoes the template's HTML escaping.
pub fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#38;", "&")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The answer's redirect to the client: the URI before its query, and the query's pairs.
pub fn callback(answer: &Answer) -> (String, Vec<(String, String)>) {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let url = Url::parse(answer.location())
        .unwrap_or_else(|_| panic!("not an absolute URL: {}", answer.location()));
    let base = format!(
        "{}://{}{}{}",
        url.scheme(),
        url.host_str().unwrap(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default(),
        url.path()
    );
    let pairs = url.query_pairs().into_owned().collect();
    (base, pairs)
}

/// The value of `name` in a callback's pairs.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every `authorization_code.issued` on the log, oldest first (stops the server).
pub async fn issued_codes(app: &mut TestServer) -> Vec<AuthorizationCodeIssuedV1> {
    app.stop().await;
    read_log(app)
        .await
        .iter()
        .filter_map(|recorded| match recorded.decode().unwrap() {
            Event::AuthorizationCodeIssued(issued) => Some(issued),
            _ => None,
        })
        .collect()
}
