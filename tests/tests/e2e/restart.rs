//! Restarts and the OAuth directory: a start restores the directory's snapshot and folds only
//! the log after it, a corrupt snapshot means a full fold and a warning, and no acknowledged
//! token or revocation is lost, whether the server stopped cleanly or was killed with `kill -9`
//! during concurrent grants; and a SIGTERM as soon as the server says it listens is a clean stop.
//!
//! Tokens are requested and introspected with plain HTTP here: the server comes back on another
//! port after each restart, and a token stays valid across that (its issuer path, not the
//! deployment's base URL, names its tenant).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::helpers::{Store, TestServer, spawn_app};
use crate::on_both_stores;

/// A confidential client_credentials client: its tenant's slug, id and secret.
#[derive(Clone)]
struct Client {
    slug: String,
    id: String,
    secret: String,
}

async fn client(app: &TestServer, slug: &str) -> Client {
    let (_, id, secret) = app.tenant_and_client(slug).await;
    Client {
        slug: slug.to_owned(),
        id,
        secret,
    }
}

/// `POST /t/{slug}/oauth/{endpoint}` as the client; `None` when the server is gone.
async fn oauth(
    http: &reqwest::Client,
    base: &str,
    client: &Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Option<(StatusCode, Value)> {
    let response = http
        .post(format!("{base}/t/{}/oauth/{endpoint}", client.slug))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .ok()?;
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Some((status, body))
}

/// `POST /t/{slug}/oauth/{endpoint}` as the client on a running server; asserts 200.
async fn oauth_ok(
    app: &TestServer,
    client: &Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Value {
    let (status, body) = oauth(&app.client, &app.base, client, endpoint, form)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{endpoint}: {body}");
    body
}

async fn issue(app: &TestServer, client: &Client) -> String {
    let grant = [("grant_type", "client_credentials")];
    let body = oauth_ok(app, client, "token", &grant).await;
    body["access_token"].as_str().unwrap().to_owned()
}

async fn active(app: &TestServer, client: &Client, token: &str) -> bool {
    let body = oauth_ok(app, client, "introspect", &[("token", token)]).await;
    body["active"].as_bool().unwrap()
}

async fn revoke(app: &TestServer, client: &Client, token: &str) {
    oauth_ok(app, client, "revoke", &[("token", token)]).await;
}

/// A gauge of `/metrics`, if present.
async fn metric(app: &TestServer, name: &str) -> Option<u64> {
    app.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// (snapshot position restored, events folded to reach the head) of the current start.
async fn start_of_directory(app: &TestServer) -> (u64, u64) {
    (
        metric(app, "tessera_directory_snapshot_position")
            .await
            .unwrap(),
        metric(app, "tessera_directory_start_folded_events")
            .await
            .unwrap(),
    )
}

async fn a_start_restores_the_directory_snapshot_and_folds_only_the_tail(store: Store) {
    let mut app = spawn_app(store).await;
    let machine = client(&app, "restart-tail").await;
    let first = issue(&app, &machine).await;
    let (restored, folded) = start_of_directory(&app).await;
    assert_eq!(restored, 0, "the first start has no snapshot");
    assert!(folded > 0);

    // A clean stop leaves a snapshot at the head (its last write included: the admin key's
    // usage): the next start folds nothing.
    app.restart().await;
    let stopped_at = app.log_head().await;
    assert_eq!(start_of_directory(&app).await, (stopped_at, 0));
    assert!(active(&app, &machine, &first).await);

    // Writes after it and a kill -9 (no snapshot at the stop): the next start restores the
    // same snapshot and folds exactly the events written since.
    let second = issue(&app, &machine).await;
    revoke(&app, &machine, &first).await;
    let other = client(&app, "restart-tail-other").await;
    app.kill9();
    app.start().await;
    let head = app.log_head().await;
    assert!(head > stopped_at);
    assert_eq!(
        start_of_directory(&app).await,
        (stopped_at, head - stopped_at)
    );
    assert!(!active(&app, &machine, &first).await, "revoked in the tail");
    assert!(active(&app, &machine, &second).await);
    let third = issue(&app, &other).await;
    assert!(active(&app, &other, &third).await, "registered in the tail");
}
on_both_stores!(a_start_restores_the_directory_snapshot_and_folds_only_the_tail);

async fn a_revoked_token_stays_inactive_across_a_restart_from_a_snapshot(store: Store) {
    let mut app = spawn_app(store).await;
    let machine = client(&app, "restart-revoked").await;
    let revoked = issue(&app, &machine).await;
    let kept = issue(&app, &machine).await;
    revoke(&app, &machine, &revoked).await;
    assert!(!active(&app, &machine, &revoked).await);
    app.restart().await;
    let (restored, folded) = start_of_directory(&app).await;
    assert!(restored > 0 && folded == 0, "restored from the snapshot");
    assert!(!active(&app, &machine, &revoked).await);
    assert!(active(&app, &machine, &kept).await);
}
on_both_stores!(a_revoked_token_stays_inactive_across_a_restart_from_a_snapshot);

#[tokio::test]
async fn a_corrupt_snapshot_falls_back_to_a_full_fold_with_a_warning() {
    let mut app = spawn_app(Store::Embedded).await;
    let machine = client(&app, "restart-corrupt").await;
    let revoked = issue(&app, &machine).await;
    let kept = issue(&app, &machine).await;
    revoke(&app, &machine, &revoked).await;
    app.stop().await;

    let path = app.data_dir().join("directory.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    app.start().await;
    let head = app.log_head().await;
    assert_eq!(start_of_directory(&app).await, (0, head));
    let warned = app.stderr.lock().unwrap().iter().any(|line| {
        line.contains("WARN") && line.contains("snapshot is not used") && line.contains("corrupt")
    });
    assert!(warned, "the fallback is logged as a warning");
    assert!(!active(&app, &machine, &revoked).await);
    assert!(active(&app, &machine, &kept).await);

    // The clean stop after the full fold writes a good snapshot again.
    app.restart().await;
    let head = app.log_head().await;
    assert_eq!(start_of_directory(&app).await, (head, 0));
}

/// What the server acknowledged about a token before the kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acked {
    Issued,
    Revoked,
    /// Issued, and its revocation was sent but not answered before the kill: it may or may not
    /// have been recorded.
    RevocationInFlight,
}

/// Grants from 16 concurrent tasks until `kill -9`, with a revocation after every fourth
/// grant: after the restart, every acknowledged token introspects active and every
/// acknowledged revocation holds.
async fn acknowledged_tokens_and_revocations_survive_kill_9(store: Store) {
    let mut app = spawn_app(store).await;
    let machine = client(&app, "crash-grants").await;
    let acked: Arc<Mutex<Vec<(String, Acked)>>> = Arc::default();
    let mut grants = Vec::new();
    for _ in 0..16 {
        let (http, base, machine, acked) = (
            app.client.clone(),
            app.base.clone(),
            machine.clone(),
            acked.clone(),
        );
        grants.push(tokio::spawn(async move {
            for i in 0.. {
                let grant = [("grant_type", "client_credentials")];
                let Some((StatusCode::OK, body)) =
                    oauth(&http, &base, &machine, "token", &grant).await
                else {
                    return;
                };
                let token = body["access_token"].as_str().unwrap().to_owned();
                if i % 4 != 3 {
                    acked.lock().await.push((token, Acked::Issued));
                    continue;
                }
                let form = [("token", token.as_str())];
                let revoked = oauth(&http, &base, &machine, "revoke", &form).await;
                let ok = matches!(revoked, Some((StatusCode::OK, _)));
                let outcome = if ok {
                    Acked::Revoked
                } else {
                    Acked::RevocationInFlight
                };
                acked.lock().await.push((token, outcome));
                if !ok {
                    return;
                }
            }
        }));
    }
    let stop_at = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.kill9();
    for grant in grants {
        let _ = grant.await;
    }
    let acked = acked.lock().await.clone();
    let count = |outcome| acked.iter().filter(|(_, o)| *o == outcome).count();
    assert!(
        count(Acked::Issued) > 50 && count(Acked::Revoked) > 5,
        "too little acknowledged before the kill: {acked:?}"
    );

    app.start().await;
    for (token, outcome) in &acked {
        let is_active = active(&app, &machine, token).await;
        match outcome {
            Acked::Issued => assert!(is_active, "an acknowledged token was lost"),
            Acked::Revoked => assert!(!is_active, "an acknowledged revocation was lost"),
            Acked::RevocationInFlight => {}
        }
    }
}
on_both_stores!(acknowledged_tokens_and_revocations_survive_kill_9);

/// Scripts stop a server as soon as it says it is listening; the signal handlers must already
/// be installed then, or SIGTERM's default action kills the process mid-start instead of a
/// clean stop (`stop` asserts a successful exit).
#[tokio::test]
async fn a_sigterm_right_after_the_listening_line_stops_the_server_cleanly() {
    let mut app = spawn_app(Store::Embedded).await;
    for _ in 0..5 {
        app.stop().await;
        app.start().await;
    }
    app.stop().await;
}
