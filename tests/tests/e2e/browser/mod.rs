//! The hosted pages in a real browser: Debian's Chromium, headless, driven over W3C WebDriver by
//! chromedriver (a few JSON calls with `reqwest`, no client library). Elements are found by
//! their label and button texts only, as a person finds them. A person signs in with a
//! password, sets up an authenticator app (the secret read from the page, the code computed by
//! `test-support`), signs out and in again with a code, adds a passkey on a virtual
//! authenticator (WebDriver's WebAuthn extension, which chromedriver maps to DevTools'
//! `WebAuthn.addVirtualAuthenticator`: CTAP2, internal, resident keys, user verified), signs
//! out and signs in with the passkey alone, through `/assets/passkeys.js`. A person resets a
//! forgotten password from the mailed link (`password_reset.rs`). An invited
//! administrator accepts their invitation and creates an API key on the account page
//! (`invitation.rs`). A person signs in through a tenant's upstream identity provider
//! (`federation.rs`).
//!
//! Without `/usr/bin/chromium` or `/usr/bin/chromedriver` the test says so and passes, except
//! under CI (`CI=true`), where it fails: `.ci/run` installs them.

mod federation;
mod invitation;
mod oidc;
mod password_reset;
mod signin;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::eventually;
use crate::http_browser::STRONG;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// WebDriver's key for an element reference.
pub(super) const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A port nothing listens on now.
pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver and its browser's profile, ended with the test (a test that failed half-way
/// still closes its browser: the session is deleted first, by hand, since a drop cannot wait
/// on an async client).
pub(super) struct Driver {
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
pub(super) struct Session {
    http: reqwest::Client,
    url: String,
    /// Where the server is, as the browser reaches it.
    pub(super) site: String,
}

impl Session {
    pub(super) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
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

    pub(super) async fn go(&self, page: &str) {
        let url = format!("{}{page}", self.site);
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub(super) async fn path(&self) -> String {
        let url = self.call(Method::GET, "/url", None).await;
        url.as_str()
            .unwrap()
            .trim_start_matches(&self.site)
            .to_owned()
    }

    /// Waits until the browser is at `page` (a script navigates on its own time).
    pub(super) async fn arrives(&self, page: &str) {
        let reached = eventually(Duration::from_secs(20), || async {
            self.path().await == page
        })
        .await;
        assert!(reached, "never reached {page}: at {}", self.path().await);
    }

    pub(super) async fn find(&self, xpath: &str) -> String {
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
    pub(super) async fn field(&self, label: &str) -> String {
        self.find(&format!(
            "//input[@id=//label[normalize-space()='{label}']/@for]"
        ))
        .await
    }

    pub(super) async fn fill(&self, label: &str, text: &str) {
        let field = self.field(label).await;
        self.call(
            Method::POST,
            &format!("/element/{field}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub(super) async fn value(&self, label: &str) -> String {
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

    pub(super) async fn press(&self, button: &str) {
        let button = self
            .find(&format!("//button[normalize-space()='{button}']"))
            .await;
        self.call(Method::POST, &format!("/element/{button}/click"), None)
            .await;
    }

    pub(super) async fn follow(&self, link: &str) {
        let link = self.find(&format!("//a[normalize-space()='{link}']")).await;
        self.call(Method::POST, &format!("/element/{link}/click"), None)
            .await;
    }

    pub(super) async fn source(&self) -> String {
        let source = self.call(Method::GET, "/source", None).await;
        source.as_str().unwrap().to_owned()
    }

    pub(super) async fn sign_out(&self, slug: &str) {
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

    pub(super) async fn sign_in_with_password(&self, slug: &str) {
        self.go(&format!("/t/{slug}/login")).await;
        self.fill("Email", "ada@example.com").await;
        self.fill("Password", STRONG).await;
        self.press("Sign in").await;
    }
}

/// Whether the browser is here; under CI its absence is a failure.
pub(super) fn browser_present() -> bool {
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

pub(super) async fn start_browser() -> (Driver, Session) {
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
