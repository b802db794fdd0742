//! People's grants under kill -9: a code issued before the crash is redeemed after it, and
//! the refresh token of every acknowledged rotation still works after the restart (rotating
//! once more, or, when a rotation landed whose answer the crash lost, within the grace period
//! with the family's current token). The read models equal a rebuild afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::Mutex;

use super::*;
use crate::on_both_stores;

async fn acknowledged_exchanges_and_rotations_survive_kill_9(store: Store) {
    let mut p = people(store, "crash-grants").await;
    let writers = 4;
    let (_, codes) =
        sign_in_and_issue_codes(&mut p, &["openid", "offline_access"], writers + 1).await;
    // Per writer: the last acknowledged token response.
    let acked: Arc<Mutex<Vec<Option<Value>>>> = Arc::new(Mutex::new(vec![None; writers]));
    let mut tasks = Vec::new();
    for (w, code) in codes.iter().take(writers).cloned().enumerate() {
        let acked = acked.clone();
        let (client, endpoint, spa) = (p.app.client.clone(), p.endpoint("token"), p.spa.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(response) = client
                .post(&endpoint)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", spa.as_str()),
                    ("code_verifier", VERIFIER),
                ])
                .send()
                .await
            else {
                return;
            };
            let mut current = match response.json::<Value>().await {
                Ok(body) if body["refresh_token"].is_string() => body,
                _ => return,
            };
            acked.lock().await[w] = Some(current.clone());
            // Rotate until the server dies under us.
            loop {
                let token = current["refresh_token"].as_str().unwrap().to_owned();
                let Ok(response) = client
                    .post(&endpoint)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.as_str()),
                        ("client_id", spa.as_str()),
                    ])
                    .send()
                    .await
                else {
                    return;
                };
                let status = response.status();
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                assert_eq!(status, StatusCode::OK, "{body}");
                acked.lock().await[w] = Some(body.clone());
                current = body;
            }
        }));
    }
    let stop_at = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.app.kill9();
    for task in tasks {
        let _ = task.await;
    }
    p.app.start().await;

    let acked = acked.lock().await.clone();
    assert!(
        acked.iter().all(Option::is_some),
        "every exchange was acknowledged"
    );
    for last in acked.into_iter().flatten() {
        let token = last["refresh_token"].as_str().unwrap();
        let (status, next) = p.refresh(token, None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "an acknowledged rotation was lost: {next}"
        );
        assert!(next["refresh_token"].as_str().unwrap().starts_with("trt_"));
    }
    // The code issued before the crash and never used is redeemed after it.
    let (status, body) = p.exchange(&codes[writers]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    p.app.stop().await;
    let (same, report) = p.app.check_read_models();
    assert!(same, "{report}");
}
on_both_stores!(acknowledged_exchanges_and_rotations_survive_kill_9);
