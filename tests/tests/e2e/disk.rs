//! Disk that stays within bounds (issue 24): the embedded store's WAL files under sustained
//! grants, and the audit trail's retention.
//!
//! The WAL test runs with a 1 MiB bound (`TESSERA_WAL_LIMIT_MB=1`) so that a few seconds of
//! grants cross it several times; `bench/disk-load.sh` shows the default 64 MiB bound under 60
//! seconds of full load (BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Store, TestServer, eventually, spawn_app_with_env};
use crate::on_both_stores;

const MIB: u64 = 1024 * 1024;

/// A confidential client of a new tenant `slug`: (client id, secret).
async fn client(app: &TestServer, slug: &str) -> (String, String) {
    let tenant = app.create_tenant(slug).await;
    let tenant_id = tenant["id"].as_str().unwrap();
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/clients"))
                .json(&json!({"name": "load", "allowed_scopes": ["orders:read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["client"]["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// One client_credentials grant; whether it succeeded.
async fn grant(http: &reqwest::Client, url: &str, id: &str, secret: &str) -> bool {
    let response = http
        .post(url)
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
        ])
        .send()
        .await;
    response.is_ok_and(|r| r.status() == StatusCode::OK)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The WAL files of the embedded store.
fn wal_files(data_dir: &Path) -> [PathBuf; 2] {
    ["events.db-wal", "readmodels.db-wal"].map(|name| data_dir.join(name))
}

/// What a sampler saw of one WAL file: the largest size, and how many times it shrank.
#[derive(Default)]
struct Seen {
    largest: AtomicU64,
    shrank: AtomicU64,
}

async fn wal_files_stay_within_their_bound_under_sustained_grants() {
    let mut app = spawn_app_with_env(Store::Embedded, &[("TESSERA_WAL_LIMIT_MB", "1")]).await;
    let (id, secret) = client(&app, "wal-bound").await;
    let url = format!("{}/t/wal-bound/oauth/token", app.base);
    let files = wal_files(app.data_dir());
    let seen: Arc<[Seen; 2]> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // Samples both files every 5 ms while the grants run.
    let sampler = {
        let (files, seen, stop) = (files.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last = [0; 2];
            while !stop.load(Ordering::Relaxed) {
                for (i, file) in files.iter().enumerate() {
                    let now = size(file);
                    seen[i].largest.fetch_max(now, Ordering::Relaxed);
                    if now < last[i] {
                        seen[i].shrank.fetch_add(1, Ordering::Relaxed);
                    }
                    last[i] = now;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut granters = Vec::new();
    for _ in 0..16 {
        let (http, url, id, secret, stop) = (
            app.client.clone(),
            url.clone(),
            id.clone(),
            secret.clone(),
            stop.clone(),
        );
        granters.push(tokio::spawn(async move {
            let mut granted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert!(grant(&http, &url, &id, &secret).await, "a grant failed");
                granted += 1;
            }
            granted
        }));
    }
    // Grants run until both files have been cut back at least three times each, which takes
    // several times the bound's worth of WAL frames.
    let cycled = eventually(Duration::from_secs(120), || {
        let seen = seen.clone();
        async move { seen.iter().all(|s| s.shrank.load(Ordering::Relaxed) >= 3) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut granted = 0;
    for granter in granters {
        granted += granter.await.unwrap();
    }
    sampler.join().unwrap();
    let largest = seen.each_ref().map(|s| s.largest.load(Ordering::Relaxed));
    let shrank = seen.each_ref().map(|s| s.shrank.load(Ordering::Relaxed));
    assert!(
        cycled,
        "{granted} grants did not cycle both WALs: largest {largest:?} bytes, shrank {shrank:?} times"
    );
    // The writer truncates a WAL after the commit that took it past 1 MiB, so it passes the
    // bound by at most one transaction: a few hundred grants at the head.
    for (file, largest) in files.iter().zip(largest) {
        assert!(
            largest <= 2 * MIB,
            "{} reached {largest} bytes with a 1 MiB bound",
            file.display()
        );
    }

    // Once writes pause, both files are emptied.
    let emptied = eventually(Duration::from_secs(10), || {
        let files = files.clone();
        async move { files.iter().all(|file| size(file) == 0) }
    })
    .await;
    assert!(
        emptied,
        "WAL sizes after the load: {:?}",
        files.each_ref().map(|f| size(f))
    );
    // A clean stop leaves none behind.
    app.stop().await;
    for file in &files {
        assert_eq!(size(file), 0, "{} after a clean stop", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_files_stay_within_their_bound_under_sustained_grants_embedded() {
    wal_files_stay_within_their_bound_under_sustained_grants().await;
}

/// The audit entries of `tenant_id`, newest first.
async fn audit_of(app: &TestServer, tenant_id: &str) -> Vec<serde_json::Value> {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/v1/audit?tenant_id={tenant_id}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Retention given in seconds (`TESSERA_AUDIT_RETENTION_SECS`, hidden, for tests): the server
/// runs on the wall clock, so a test can neither wait days nor back-date what it writes, and
/// forging old events would break the log's hash chain. Seconds run the same sweep and fold.
async fn audit_rows_past_the_retention_leave_the_read_model_but_not_the_log(store: Store) {
    let mut app = spawn_app_with_env(store, &[("TESSERA_AUDIT_RETENTION_SECS", "2")]).await;
    let old = app.create_tenant("retention-old").await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    assert!(!audit_of(&app, &old_id).await.is_empty());

    let swept = eventually(Duration::from_secs(30), || {
        let (app, old_id) = (&app, &old_id);
        async move { audit_of(app, old_id).await.is_empty() }
    })
    .await;
    assert!(swept, "the tenant's audit rows outlived a 2 s retention");
    // A fresh event is listed at once.
    let new = app.create_tenant("retention-new").await;
    assert!(!audit_of(&app, new["id"].as_str().unwrap()).await.is_empty());

    // The log keeps everything.
    app.stop().await;
    let log = crate::helpers::read_log(&app).await;
    assert!(
        log.iter()
            .any(|e| e.envelope.tenant_id.to_string() == old_id
                && e.envelope.event_type == "tenant.created")
    );
    // A restart (which folds nothing old again) and a rebuild (which skips expired rows) do
    // not bring the rows back, and the read models still equal a rebuild under the same
    // retention.
    let output = app
        .command()
        .env("TESSERA_AUDIT_RETENTION_SECS", "2")
        .arg("check-read-models")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let output = app
        .command()
        .env("TESSERA_AUDIT_RETENTION_SECS", "2")
        .arg("rebuild-read-models")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    app.start().await;
    assert!(audit_of(&app, &old_id).await.is_empty());
}

on_both_stores!(audit_rows_past_the_retention_leave_the_read_model_but_not_the_log);
