//! Durability under kill -9: every write that got a 2xx survives, and the read models equal a
//! fresh rebuild from the log after recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::Mutex;

use crate::helpers::{Store, spawn_app};
use crate::on_both_stores;

async fn acknowledged_writes_survive_kill_9_and_read_models_match_a_rebuild(store: Store) {
    let mut app = spawn_app(store).await;
    // (tenant id, stream version) of every acknowledged write.
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = app.client.clone();
        let base = app.base.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            let mut mine: Option<String> = None;
            // Keep writing until the server dies under us.
            loop {
                let request = match &mine {
                    Some(id) if i % 2 == 1 => client
                        .patch(format!("{base}/v1/tenants/{id}"))
                        .json(&json!({"name": format!("writer {w} change {i}")})),
                    _ => client
                        .post(format!("{base}/v1/tenants"))
                        .json(&json!({"slug": format!("crash-{w}-{i}"), "name": "crash"})),
                };
                let Ok(response) = request.bearer_auth(crate::helpers::ADMIN_KEY).send().await
                else {
                    return;
                };
                let status = response.status();
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                if status.is_success() {
                    let id = body["id"].as_str().unwrap().to_owned();
                    acked
                        .lock()
                        .await
                        .push((id.clone(), body["version"].as_u64().unwrap()));
                    mine = Some(id);
                }
                i += 1;
            }
        }));
    }
    while Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.kill9();
    for writer in writers {
        let _ = writer.await;
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() > 20,
        "too few writes acknowledged before the kill: {}",
        acked.len()
    );

    app.start().await;
    for (id, version) in &acked {
        let (status, body) = app
            .send(app.admin(Method::GET, &format!("/v1/tenants/{id}")))
            .await;
        assert_eq!(status, StatusCode::OK, "acknowledged tenant {id} lost");
        assert!(
            body["version"].as_u64().unwrap() >= *version,
            "acknowledged write {id}@{version} lost: {body}"
        );
    }
    app.stop().await;
    let (same, report) = app.check_read_models();
    assert!(same, "{report}");
}
on_both_stores!(acknowledged_writes_survive_kill_9_and_read_models_match_a_rebuild);
