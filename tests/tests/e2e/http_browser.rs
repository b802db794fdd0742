//! A browser, as far as the hosted pages can tell: a cookie-keeping HTTP client that does not
//! follow redirects (so that tests see each 303), reads forms' CSRF tokens from the pages and
//! posts forms as a browser would; plus the people helpers the sign-in and session tests share.
//! No JavaScript runs here, and the pages need none.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, spawn_app_with_env};

/// A password every default policy takes.
pub const STRONG: &str = "violet kettle marathon 1987";
/// Another one.
pub const OTHER_STRONG: &str = "orchid pylon harbour 42";
/// What the pages and the JSON sign-in say about any failed sign-in.
pub const GENERIC_FAILURE: &str = "The email address or password is incorrect.";

/// Cheap Argon2 parameters (these tests check behaviour, not cost) and sign-in rate limits
/// high enough for tests that are not about them.
pub const PEOPLE_ENV: &[(&str, &str)] = &[
    ("TESSERA_ARGON2_MEMORY_KIB", "1024"),
    ("TESSERA_ARGON2_ITERATIONS", "1"),
    ("TESSERA_SIGN_IN_ATTEMPTS_PER_ACCOUNT", "1000"),
    ("TESSERA_SIGN_IN_ATTEMPTS_PER_SOURCE", "1000"),
];

pub async fn people_app(store: Store) -> TestServer {
    spawn_app_with_env(store, PEOPLE_ENV).await
}

/// One answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// Where a redirect goes.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The text of the page's alert (`role="alert"`), if any.
    pub fn alert(&self) -> Option<String> {
        let at = self.body.find("role=\"alert\">")?;
        let rest = &self.body[at + "role=\"alert\">".len()..];
        Some(rest[..rest.find('<')?].to_owned())
    }

    /// The value of the page's input `id`.
    pub fn input_value(&self, id: &str) -> String {
        let at = self
            .body
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in {}", self.body));
        let rest = &self.body[at..];
        let value = &rest[rest.find("value=\"").unwrap() + "value=\"".len()..];
        value[..value.find('"').unwrap()].to_owned()
    }

    /// The first form's CSRF token.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let at = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF token in {}", self.body));
        let rest = &self.body[at + marker.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// A browser: cookies kept, redirects not followed.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

impl Browser {
    pub fn new(app: &TestServer) -> Self {
        Self::with_agent(app, "e2e-browser/1.0")
    }

    pub fn with_agent(app: &TestServer, agent: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(agent)
            .build()
            .unwrap();
        Self {
            client,
            jar,
            base: app.base.clone(),
        }
    }

    async fn read(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        Self::read(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts `fields` as a form, exactly as given (no token added).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        Self::read(
            self.client
                .post(format!("{}{path}", self.base))
                .form(fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Loads `page`, then posts `fields` to `action` with the page's CSRF token, as a person
    /// filling the page's form would.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let shown = self.get(page).await;
        assert_eq!(shown.status, StatusCode::OK, "{page}: {}", shown.body);
        let token = shown.csrf();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_form(action, &all).await
    }

    /// Signs in on the tenant's page; returns the answer to the form (303 on success).
    pub async fn sign_in(&self, slug: &str, email: &str, password: &str) -> Answer {
        let login = format!("/t/{slug}/login");
        self.submit(&login, &login, &[("email", email), ("password", password)])
            .await
    }

    /// Signs in and expects to land on the account page.
    pub async fn signed_in(&self, slug: &str, email: &str, password: &str) {
        let answer = self.sign_in(slug, email, password).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(answer.location(), format!("/t/{slug}/account"));
    }

    /// Signs in with a password, then `code` (`("code", ...)` of the authenticator app or
    /// `("recovery_code", ...)`) on the second step, and expects to land on the account page.
    pub async fn signed_in_with_code(
        &self,
        slug: &str,
        email: &str,
        password: &str,
        code: (&str, &str),
    ) {
        let answer = self.sign_in(slug, email, password).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let step = format!("/t/{slug}/login/mfa");
        assert_eq!(answer.location(), step);
        let answer = self.submit(&step, &step, &[code]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(answer.location(), format!("/t/{slug}/account"));
    }

    /// The JSON sign-in.
    pub async fn sign_in_json(&self, slug: &str, email: &str, password: &str) -> Answer {
        Self::read(
            self.client
                .post(format!("{}/t/{slug}/login", self.base))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Whether the account page shows (rather than redirecting to sign-in).
    pub async fn is_signed_in(&self, slug: &str) -> bool {
        let answer = self.get(&format!("/t/{slug}/account")).await;
        match answer.status {
            StatusCode::OK => true,
            StatusCode::SEE_OTHER => {
                assert!(answer.location().starts_with(&format!("/t/{slug}/login")));
                false
            }
            other => panic!("account page answered {other}: {}", answer.body),
        }
    }

    /// The value of the cookie `name` the browser holds for the server.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }

    /// Plants a cookie, as someone who copied it from elsewhere would.
    pub fn plant_cookie(&self, name: &str, value: &str) {
        let url = self.base.parse().unwrap();
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }
}

/// A tenant `slug` with settings changed by `change`; returns its id.
pub async fn tenant_with(app: &TestServer, slug: &str, change: impl FnOnce(&mut Value)) -> String {
    let id = app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/tenants/{id}/settings");
    let (_, mut settings) = app.send(app.admin(Method::GET, &path)).await;
    change(&mut settings);
    let (status, body) = app
        .send(app.admin(Method::PUT, &path).json(&settings))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// A user of `tenant` with `email` and `password` (permanent unless `temporary`); returns
/// their id.
pub async fn person(
    app: &TestServer,
    tenant: &str,
    email: &str,
    password: &str,
    temporary: bool,
) -> String {
    let (status, user) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/users"))
                .json(&json!({
                    "email": email,
                    "name": "Test Person",
                    "password": password,
                    "temporary": temporary,
                })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["id"].as_str().unwrap().to_owned()
}

/// Moves the server's clock forward (only the test binary has this route).
pub async fn advance_clock(app: &TestServer, seconds: i64) {
    let response = app
        .client
        .post(format!("{}/__test/clock/advance", app.base))
        .body(seconds.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Waits until the read models have everything the log holds (only the test binary has this
/// route): a sign-in answers before the audit trail has it.
pub async fn settle(app: &TestServer) {
    let response = app
        .client
        .post(format!("{}/__test/settle", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// The audit entries of `target_id` with `action`, newest first, once the read models have
/// caught up.
pub async fn audit(app: &TestServer, target_id: &str, action: &str) -> Vec<Value> {
    settle(app).await;
    let (status, page) = app
        .send(app.admin(
            Method::GET,
            &format!("/v1/audit?target_id={target_id}&action={action}&limit=200"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// A person's authenticator app, on the server's clock (the wall clock plus what the test moved
/// it by): the code it shows now, and the next step's code after moving the server's clock on,
/// as waiting would (a code is good once, so a second sign-in needs a later step).
pub struct AuthenticatorApp {
    pub secret: String,
    offset_seconds: u64,
}

impl AuthenticatorApp {
    /// The app of `secret`, on a server whose clock was never moved.
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            offset_seconds: 0,
        }
    }

    /// The code shown now.
    #[allow(
        clippy::disallowed_methods,
        reason = "the person's app reads the wall clock, as the server under test does"
    )]
    pub fn code(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        tessera_test_support::totp::code_at(&self.secret, now + self.offset_seconds)
    }

    /// A code no earlier use spent: the server's clock moves one time step on first.
    pub async fn next_code(&mut self, app: &TestServer) -> String {
        advance_clock(app, 30).await;
        self.offset_seconds += 30;
        self.code()
    }

    /// A code the app does not show now (nor one step either side, but for a one-in-a-million
    /// coincidence): every digit of the current one moved by five.
    pub fn wrong_code(&self) -> String {
        self.code()
            .chars()
            .map(|d| char::from(b'0' + (d as u8 - b'0' + 5) % 10))
            .collect()
    }
}
