//! Mail end to end (issue 18, part "mail"): the outbox delivering to a real SMTP server
//! (`crate::smtp`), or to `.eml` files without one; the password reset and address
//! verification flows driven through the hosted pages by their emailed links.

mod outbox;
mod resend;
mod reset;
pub(crate) mod tls;
mod verification;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tessera_event_schemas::{Event, RecordedEvent};

use crate::helpers::{Store, TestServer, eventually, spawn_app_with_env};
use crate::http_browser::{Browser, PEOPLE_ENV};

/// How long a mail may take to arrive.
pub const ARRIVAL: Duration = Duration::from_secs(20);

/// A server that sends mail to `smtp_url`, retrying every second at most.
pub async fn mail_app(store: Store, smtp_url: &str) -> TestServer {
    let mut env: Vec<(&str, &str)> = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_SMTP_URL", smtp_url));
    env.push(("TESSERA_SMTP_RETRY_MAX_SECONDS", "1"));
    spawn_app_with_env(store, &env).await
}

/// The server-relative path of an emailed link (they are built from the public URL, which is
/// the server's own base here).
pub fn path_of(app: &TestServer, link: &str) -> String {
    link.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{link} is not under {}", app.base))
        .to_owned()
}

/// Asks for a reset link for `email` on `slug`'s "Forgot your password?" page and checks the
/// answer: the same whatever the address.
pub async fn forgot(browser: &Browser, slug: &str, email: &str) {
    let page = format!("/t/{slug}/password/forgot");
    let answer = browser.submit(&page, &page, &[("email", email)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), format!("{page}?sent=1"));
}

/// The `.eml` files the embedded default wrote, oldest first by name order of arrival.
pub fn outbox_files(app: &TestServer) -> Vec<PathBuf> {
    let dir = app.data_dir().join("outbox");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
    files
}

/// The links containing `fragment` in an `.eml` file, its quoted-printable soft line breaks
/// undone.
pub fn eml_links(path: &PathBuf, fragment: &str) -> Vec<String> {
    let raw = std::fs::read_to_string(path).unwrap();
    let text = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    text.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .filter(|word| word.starts_with("http") && word.contains(fragment))
        .map(|word| word.trim_end_matches(['.', ',', ')']).to_owned())
        .collect()
}

/// Waits until the outbox directory holds `count` files.
pub async fn wait_for_outbox(app: &TestServer, count: usize) -> Vec<PathBuf> {
    let arrived = eventually(ARRIVAL, || async { outbox_files(app).len() >= count }).await;
    assert!(arrived, "expected {count} .eml file(s)");
    outbox_files(app)
}

/// The events of every `{tenant}/email/{id}` stream, by stream, in order (server stopped on
/// SQLite).
pub async fn email_streams(app: &TestServer) -> Vec<(String, Vec<Event>)> {
    let log: Vec<RecordedEvent> = crate::helpers::read_log(app).await;
    let mut streams: Vec<(String, Vec<Event>)> = Vec::new();
    for recorded in log {
        if !recorded.envelope.stream_id.contains("/email/") {
            continue;
        }
        let event = recorded.decode().unwrap();
        match streams
            .iter_mut()
            .find(|(id, _)| *id == recorded.envelope.stream_id)
        {
            Some((_, events)) => events.push(event),
            None => streams.push((recorded.envelope.stream_id.clone(), vec![event])),
        }
    }
    streams
}

/// A user of `tenant` with a name, an address and a password; returns their id.
pub async fn user(app: &TestServer, tenant: &str, email: &str, password: &str) -> String {
    let (status, user) = app
        .send(
            app.admin(
                reqwest::Method::POST,
                &format!("/v1/tenants/{tenant}/users"),
            )
            .json(&json!({"email": email, "name": "Ada Lovelace", "password": password})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["id"].as_str().unwrap().to_owned()
}
