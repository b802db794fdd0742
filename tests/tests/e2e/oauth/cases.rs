//! Wire-level requests and table-driven cases: the requests the `oauth2` crate cannot make
//! (both credential methods at once, an unknown grant type, a malformed header) and the
//! response headers it does not show (`Cache-Control`, `WWW-Authenticate`).
//!
//! A table is a list of [`Case`]s, one row each, written
//! `Token.case(name, credentials, form, EXPECTED)`: the endpoint, the credentials, the form,
//! and the [`Expect`]ed status, `error` code and headers. [`check_cases`] sends every row and
//! fails once, naming each row that did not get its answer and why.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Registered, Tenant, http};

/// The form field of the client credentials grant (RFC 6749 §4.4.2).
pub const CC: (&str, &str) = ("grant_type", "client_credentials");

/// How a request authenticates its client.
#[derive(Clone, Copy, Debug)]
pub enum Creds<'a> {
    None,
    /// client_secret_basic (RFC 6749 §2.3.1: both parts form-urlencoded, then Basic).
    Basic(&'a str, &'a str),
    /// client_secret_post; an empty secret is sent as an empty `client_secret`.
    Post(&'a str, &'a str),
    /// Both at once, which RFC 6749 §2.3 forbids.
    Both(&'a str, &'a str),
    /// An `Authorization` header sent as it is, for malformed or foreign schemes.
    Header(&'a str),
}

impl<'a> Creds<'a> {
    pub fn basic(c: &'a Registered) -> Self {
        Creds::Basic(&c.client_id, &c.secret)
    }

    pub fn post(c: &'a Registered) -> Self {
        Creds::Post(&c.client_id, &c.secret)
    }
}

/// A response as it came off the wire.
pub struct Raw {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body, or Null when there is none or it is not JSON.
    pub body: Value,
}

/// Sends `form` (a POST's `application/x-www-form-urlencoded` body; nothing for a GET) with
/// these credentials.
pub async fn raw_request(
    method: Method,
    url: &str,
    creds: Creds<'_>,
    form: &[(&str, &str)],
) -> Raw {
    let mut params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut request = http().request(method.clone(), url);
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
    if let Creds::Header(value) = creds {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    if method != Method::GET {
        request = request.form(&params);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Raw {
        status,
        headers,
        body,
    }
}

pub async fn raw_token(t: &Tenant, creds: Creds<'_>, form: &[(&str, &str)]) -> Raw {
    raw_request(Method::POST, Endpoint::Token.url(t), creds, form).await
}

pub async fn raw_introspect(t: &Tenant, creds: Creds<'_>, token: &str) -> Raw {
    let url = Endpoint::Introspection.url(t);
    raw_request(Method::POST, url, creds, &[("token", token)]).await
}

/// The tenant's endpoints that authenticate clients, at the URLs its discovery document gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Introspection,
    Revocation,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [
        Endpoint::Token,
        Endpoint::Introspection,
        Endpoint::Revocation,
    ];

    /// A row of a table: `name`, sent here with these credentials and form, must get `expect`.
    pub fn case<'a>(
        self,
        name: &'a str,
        creds: Creds<'a>,
        form: &[(&'a str, &'a str)],
        expect: Expect,
    ) -> Case<'a> {
        Case {
            name,
            endpoint: self,
            creds,
            form: form.to_vec(),
            expect,
        }
    }

    pub fn url(self, t: &Tenant) -> &str {
        let d = &t.discovery;
        match self {
            Endpoint::Token => &d.token_endpoint,
            Endpoint::Introspection => &d.introspection_endpoint,
            Endpoint::Revocation => &d.revocation_endpoint,
        }
    }
}

/// What a response must be: its status, its `error` code, its body, and its headers.
///
/// The answers the tables use are the constants below, named after what they mean; a new kind
/// of answer (say, a `Bearer` challenge from a userinfo endpoint) is a new constant there, so
/// that every table reads the same way.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    status: StatusCode,
    /// The RFC 6749 §5.2 `error` code; `error_description`, if any, must then be a string.
    error: Option<&'static str>,
    /// The whole JSON body, when it is known in advance.
    body: Option<&'static str>,
    /// `Cache-Control: no-store` (RFC 6749 §5.1, RFC 7662 §2.2, RFC 7009 §2.2).
    no_store: bool,
    /// The scheme `WWW-Authenticate` must challenge with; `None`: no such header.
    challenge: Option<&'static str>,
}

impl Expect {
    /// An OAuth answer, which is never cached.
    const fn oauth(status: StatusCode, error: Option<&'static str>) -> Self {
        Self {
            status,
            error,
            body: None,
            no_store: true,
            challenge: None,
        }
    }

    const fn challenge(self, scheme: &'static str) -> Self {
        Self {
            challenge: Some(scheme),
            ..self
        }
    }

    const fn body(self, json: &'static str) -> Self {
        Self {
            body: Some(json),
            ..self
        }
    }

    /// Everything this expectation finds wrong with `raw`; empty when it holds.
    fn mismatches(&self, raw: &Raw) -> Vec<String> {
        let mut wrong = Vec::new();
        if raw.status != self.status {
            wrong.push(format!("status {}, expected {}", raw.status, self.status));
        }
        if let Some(error) = self.error {
            if raw.body["error"] != error {
                wrong.push(format!("error {}, expected {error:?}", raw.body["error"]));
            }
            let description = raw.body.get("error_description");
            if !description.is_none_or(Value::is_string) {
                wrong.push("error_description is not a string".to_owned());
            }
        }
        if let Some(body) = self.body {
            let expected: Value = serde_json::from_str(body).unwrap();
            if raw.body != expected {
                wrong.push(format!("the body is not {expected}"));
            }
        }
        let header = |name: &str| raw.headers.get(name).map(|v| v.to_str().unwrap_or("?"));
        if self.no_store {
            match header("cache-control") {
                Some(value) if value.contains("no-store") => {}
                other => wrong.push(format!("Cache-Control is {other:?}, expected no-store")),
            }
        }
        let challenge = header("www-authenticate");
        match (self.challenge, challenge) {
            (None, None) => {}
            (Some(scheme), Some(value))
                if value
                    .split_once(' ')
                    .is_some_and(|(s, _)| s.eq_ignore_ascii_case(scheme)) => {}
            (expected, got) => wrong.push(format!(
                "WWW-Authenticate is {got:?}, expected a challenge of {expected:?}"
            )),
        }
        wrong
    }

    /// Fails the test, naming `what`, unless `raw` is as expected.
    pub fn assert(&self, raw: &Raw, what: &str) {
        let wrong = self.mismatches(raw);
        assert!(
            wrong.is_empty(),
            "{what}: {} ({} {})",
            wrong.join("; "),
            raw.status,
            raw.body
        );
    }
}

/// A success: 200, not cached, no challenge.
pub const OK: Expect = Expect::oauth(StatusCode::OK, None);
/// RFC 7662 §2.2: an inactive token reveals nothing but that.
pub const INACTIVE: Expect = OK.body(r#"{"active": false}"#);
/// RFC 6749 §5.2 `invalid_request`: a parameter missing, repeated or contradicting another.
pub const INVALID_REQUEST: Expect = Expect::oauth(StatusCode::BAD_REQUEST, Some("invalid_request"));
/// RFC 6749 §5.2 `invalid_client`: 401 with a `WWW-Authenticate` challenge for Basic, the
/// scheme the client used or should use.
pub const INVALID_CLIENT: Expect =
    Expect::oauth(StatusCode::UNAUTHORIZED, Some("invalid_client")).challenge("Basic");
pub const INVALID_GRANT: Expect = Expect::oauth(StatusCode::BAD_REQUEST, Some("invalid_grant"));
pub const UNAUTHORIZED_CLIENT: Expect =
    Expect::oauth(StatusCode::BAD_REQUEST, Some("unauthorized_client"));
pub const UNSUPPORTED_GRANT_TYPE: Expect =
    Expect::oauth(StatusCode::BAD_REQUEST, Some("unsupported_grant_type"));
pub const INVALID_SCOPE: Expect = Expect::oauth(StatusCode::BAD_REQUEST, Some("invalid_scope"));
/// No tenant has this issuer: an OAuth-shaped 404.
pub const NOT_FOUND: Expect = Expect::oauth(StatusCode::NOT_FOUND, Some("not_found"));

/// One row of a table: a request to one of a tenant's endpoints and the answer it must get.
pub struct Case<'a> {
    name: &'a str,
    endpoint: Endpoint,
    creds: Creds<'a>,
    form: Vec<(&'a str, &'a str)>,
    expect: Expect,
}

/// Sends every case, in order, to tenant `t`; fails naming every case that was not answered
/// as expected.
pub async fn check_cases(t: &Tenant, cases: &[Case<'_>]) {
    let mut failures = Vec::new();
    for case in cases {
        let raw = raw_request(Method::POST, case.endpoint.url(t), case.creds, &case.form).await;
        let wrong = case.expect.mismatches(&raw);
        if !wrong.is_empty() {
            failures.push(format!(
                "{:?} {:?}: {} ({} {})",
                case.endpoint,
                case.name,
                wrong.join("; "),
                raw.status,
                raw.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
