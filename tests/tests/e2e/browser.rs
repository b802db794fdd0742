//! The hosted pages in a real browser: Debian's Chromium, headless, driven over W3C WebDriver by
//! chromedriver (a few JSON calls with `reqwest`, no client library). Elements are found by
//! their label and button texts only, as a person finds them. A person signs in with a
//! password, sets up an authenticator app (the secret read from the page, the code computed by
//! `test-support`), signs out and in again with a code, adds a passkey on a virtual
//! authenticator (WebDriver's WebAuthn extension, which chromedriver maps to DevTools'
//! `WebAuthn.addVirtualAuthenticator`: CTAP2, internal, resident keys, user verified), signs
//! out and signs in with the passkey alone, through `/assets/passkeys.js`.
//!
//! Without `/usr/bin/chromium` or `/usr/bin/chromedriver` the test says so and passes, except
//! under CI (`CI=true`), where it fails: `.ci/run` installs them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, eventually, spawn_app_with_env};
use crate::http_browser::{AuthenticatorApp, PEOPLE_ENV, STRONG, person, tenant_with};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver and its browser's profile, ended with the test (a test that failed half-way
/// still closes its browser: the session is deleted first, by hand, since a drop cannot wait
/// on an async client).
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = &self.session
            && let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port))
        {
            use std::io::{Read, Write};
            let request = format!(
                "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session on headless Chromium.
struct Session {
    http: reqwest::Client,
    url: String,
    /// Where the server is, as the browser reaches it.
    site: String,
}

impl Session {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer["value"].clone()
    }

    async fn go(&self, page: &str) {
        let url = format!("{}{page}", self.site);
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn path(&self) -> String {
        let url = self.call(Method::GET, "/url", None).await;
        url.as_str()
            .unwrap()
            .trim_start_matches(&self.site)
            .to_owned()
    }

    /// Waits until the browser is at `page` (a script navigates on its own time).
    async fn arrives(&self, page: &str) {
        let reached = eventually(Duration::from_secs(20), || async {
            self.path().await == page
        })
        .await;
        assert!(reached, "never reached {page}: at {}", self.path().await);
    }

    async fn find(&self, xpath: &str) -> String {
        let found = self
            .call(
                Method::POST,
                "/element",
                Some(json!({"using": "xpath", "value": xpath})),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    /// The input labelled `label`.
    async fn field(&self, label: &str) -> String {
        self.find(&format!(
            "//input[@id=//label[normalize-space()='{label}']/@for]"
        ))
        .await
    }

    async fn fill(&self, label: &str, text: &str) {
        let field = self.field(label).await;
        self.call(
            Method::POST,
            &format!("/element/{field}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn value(&self, label: &str) -> String {
        let field = self.field(label).await;
        let value = self
            .call(
                Method::GET,
                &format!("/element/{field}/property/value"),
                None,
            )
            .await;
        value.as_str().unwrap().to_owned()
    }

    async fn press(&self, button: &str) {
        let button = self
            .find(&format!("//button[normalize-space()='{button}']"))
            .await;
        self.call(Method::POST, &format!("/element/{button}/click"), None)
            .await;
    }

    async fn follow(&self, link: &str) {
        let link = self.find(&format!("//a[normalize-space()='{link}']")).await;
        self.call(Method::POST, &format!("/element/{link}/click"), None)
            .await;
    }

    async fn source(&self) -> String {
        let source = self.call(Method::GET, "/source", None).await;
        source.as_str().unwrap().to_owned()
    }

    async fn sign_out(&self, slug: &str) {
        self.go(&format!("/t/{slug}/logout")).await;
        self.press("Sign out").await;
        self.arrives(&format!("/t/{slug}/login")).await;
        self.go(&format!("/t/{slug}/account")).await;
        let path = self.path().await;
        assert!(
            path.starts_with(&format!("/t/{slug}/login")),
            "still signed in: at {path}: {}",
            self.source().await
        );
    }

    async fn sign_in_with_password(&self, slug: &str) {
        self.go(&format!("/t/{slug}/login")).await;
        self.fill("Email", "ada@example.com").await;
        self.fill("Password", STRONG).await;
        self.press("Sign in").await;
    }
}

/// Whether the browser is here; under CI its absence is a failure.
fn browser_present() -> bool {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{CHROMIUM} and {CHROMEDRIVER} are required under CI (.ci/run installs them)"
        );
        eprintln!(
            "skipped: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
    }
    present
}

async fn start_browser() -> (Driver, Session) {
    let port = free_port();
    let mut driver = Driver {
        child: Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver"),
        port,
        session: None,
        profile: tempfile::tempdir().unwrap(),
    };
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let ready = eventually(Duration::from_secs(30), || async {
        match http.get(format!("{url}/status")).send().await {
            Ok(response) => response
                .json::<Value>()
                .await
                .is_ok_and(|status| status["value"]["ready"] == true),
            Err(_) => false,
        }
    })
    .await;
    assert!(ready, "chromedriver did not start");
    let session = http
        .post(format!("{url}/session"))
        .json(&json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", driver.profile.path().display())],
            },
        }}}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
        .to_owned();
    driver.session = Some(id.clone());
    let session = Session {
        http,
        url: format!("{url}/session/{id}"),
        site: String::new(),
    };
    // Finding an element waits for it to show (a page loads, a script navigates).
    session
        .call(Method::POST, "/timeouts", Some(json!({"implicit": 10_000})))
        .await;
    (driver, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_a_password_an_app_code_and_a_passkey_in_chromium() {
    if !browser_present() {
        return;
    }
    // WebAuthn needs a host name (not an address) in a secure context: http://localhost.
    let port = free_port();
    let (listen, public) = (
        format!("127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    );
    let mut env = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_LISTEN", &listen));
    env.push(("TESSERA_PUBLIC_URL", &public));
    let app: TestServer = spawn_app_with_env(Store::Embedded, &env).await;
    let acme = tenant_with(&app, "browser", |_| {}).await;
    person(&app, &acme, "ada@example.com", STRONG, false).await;
    let (_driver, mut browser) = start_browser().await;
    browser.site = public.clone();

    // A password, then an authenticator app set up on the account page.
    browser.sign_in_with_password("browser").await;
    browser.arrives("/t/browser/account").await;
    browser.press("Set up an authenticator app").await;
    let secret = browser.value("Secret for manual entry").await;
    let mut phone = AuthenticatorApp::new(&secret);
    browser.fill("Authentication code", &phone.code()).await;
    browser.press("Turn on authenticator app").await;
    // The codes' page, once it shows.
    browser.find("//a[normalize-space()='Continue']").await;
    let codes = browser.source().await;
    assert_eq!(codes.matches("<li><code>").count(), 10, "{codes}");
    browser.follow("Continue").await;
    browser.arrives("/t/browser/account?done=totp").await;

    // Out, and in again with the password and a code.
    browser.sign_out("browser").await;
    browser.sign_in_with_password("browser").await;
    browser.arrives("/t/browser/login/mfa").await;
    let code = phone.next_code(&app).await;
    browser.fill("Authentication code", &code).await;
    browser.press("Verify").await;
    browser.arrives("/t/browser/account").await;

    // A passkey, on Chromium's virtual authenticator.
    browser
        .call(
            Method::POST,
            "/webauthn/authenticator",
            Some(json!({"protocol": "ctap2", "transport": "internal",
                "hasResidentKey": true, "hasUserVerification": true, "isUserVerified": true})),
        )
        .await;
    browser.fill("Passkey name", "Chromium").await;
    browser.press("Add a passkey").await;
    browser.arrives("/t/browser/account?done=passkey").await;
    assert!(browser.source().await.contains("<td>Chromium</td>"));

    // Out, and in with the passkey alone: no address typed.
    browser.sign_out("browser").await;
    browser.go("/t/browser/login").await;
    browser.press("Sign in with a passkey").await;
    browser.arrives("/t/browser/account").await;
    assert!(browser.source().await.contains("ada@example.com"));
}

/// A client's redirect URI on 127.0.0.1: answers every request with a small page and keeps
/// each request's target (`/callback?code=...`).
async fn redirect_listener() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = vec![0u8; 16 * 1024];
            let read = stream.read(&mut head).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&head[..read]).into_owned();
            if let Some(target) = text.split(' ').nth(1) {
                keep.lock().unwrap().push(target.to_owned());
            }
            let body = "<!DOCTYPE html><title>Photo Album</title><p>Back at the application.</p>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_signs_a_person_in_with_consent_in_chromium() {
    if !browser_present() {
        return;
    }
    let app: TestServer = spawn_app_with_env(Store::Embedded, PEOPLE_ENV).await;
    let tenant = tenant_with(&app, "browser", |_| {}).await;
    person(&app, &tenant, "ada@example.com", STRONG, false).await;
    let (status, client) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/clients"))
                .json(&json!({
                    "name": "Photo Album",
                    "grant_types": ["authorization_code"],
                    // A native app's loopback redirect: any port (RFC 8252 §7.3).
                    "redirect_uris": ["http://127.0.0.1/callback"],
                    "allowed_scopes": ["openid", "email"],
                })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{client}");
    let client_id = client["client"]["client_id"].as_str().unwrap();
    let (port, seen) = redirect_listener().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid email"),
            ("state", "chromium-state"),
            ("nonce", "chromium-nonce"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let (_driver, mut browser) = start_browser().await;
    browser.site = app.base.clone();

    browser
        .go(&format!("/t/browser/oauth/authorize?{query}"))
        .await;
    browser.fill("Email", "ada@example.com").await;
    browser.fill("Password", STRONG).await;
    browser.press("Sign in").await;
    // The consent page, by its buttons and words.
    browser.find("//button[normalize-space()='Allow']").await;
    let consent = browser.source().await;
    assert!(consent.contains("Photo Album"), "{consent}");
    assert!(consent.contains("See your email address"), "{consent}");
    browser.press("Allow").await;

    let arrived = eventually(Duration::from_secs(20), || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|target| target.starts_with("/callback?"))
    })
    .await;
    if !arrived {
        let requests = seen.lock().unwrap().clone();
        panic!(
            "never reached the application: at {} ({requests:?}): {}",
            browser.path().await,
            browser.source().await
        );
    }
    let target = seen
        .lock()
        .unwrap()
        .iter()
        .find(|target| target.starts_with("/callback?"))
        .unwrap()
        .clone();
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(target.trim_start_matches("/callback?").as_bytes())
            .into_owned()
            .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(get("state").as_deref(), Some("chromium-state"));
    assert_eq!(get("iss"), Some(app.issuer("browser")));
    assert!(
        get("code").is_some_and(|code| code.len() >= 64),
        "{pairs:?}"
    );

    // Again with prompt=login: the sign-in form itself now leads to the application, since
    // the consent is remembered (the sign-in page's form-action must allow that last hop);
    // login_hint fills the address in.
    let again = query.replace("chromium-state", "second-state")
        + "&prompt=login&login_hint=ada%40example.com";
    browser
        .go(&format!("/t/browser/oauth/authorize?{again}"))
        .await;
    assert_eq!(browser.value("Email").await, "ada@example.com");
    browser.fill("Password", STRONG).await;
    browser.press("Sign in").await;
    let back = eventually(Duration::from_secs(20), || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|target| target.contains("state=second-state"))
    })
    .await;
    assert!(back, "never came back: {}", browser.source().await);
}
