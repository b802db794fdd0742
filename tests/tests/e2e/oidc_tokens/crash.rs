//! People's grants under kill -9: codes the authorization endpoint handed out (and the consent
//! they rest on) are redeemed after the crash, and the refresh token of every acknowledged
//! rotation still works after the restart (rotating once more, or, when a rotation landed whose
//! answer the crash lost, within the grace period with the family's current token). The read
//! models equal a rebuild afterwards.

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

/// Codes the authorization endpoint handed out under load, and the consent given before, survive
/// kill -9: every acknowledged code is redeemed after the restart (within its minute), and the
/// next authorization needs no consent page.
async fn acknowledged_codes_and_consents_survive_kill_9(store: Store) {
    let mut rp = crate::oidc::rp(store, "crash-authorize").await;
    rp.client_id =
        crate::oidc::register(&rp.app, &rp.tenant_id, json!({"client_type": "public"})).await;
    let browser = Arc::new(rp.signed_in_browser().await);
    let consent = browser.get(&rp.authorize(&[])).await;
    let allowed = crate::oidc::decide(&browser, &consent, "allow").await;
    let (_, pairs) = crate::oidc::callback(&allowed);
    let codes: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![
        crate::oidc::param(&pairs, "code").unwrap().to_owned(),
    ]));
    let url = format!("{}{}", rp.app.base, rp.authorize(&[]));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (browser, codes, url) = (browser.clone(), codes.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            // Ask for codes until the server dies under us.
            loop {
                let Ok(response) = browser.client.get(&url).send().await else {
                    return;
                };
                if response.status() != StatusCode::SEE_OTHER {
                    return;
                }
                let Some(location) = response
                    .headers()
                    .get("location")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| reqwest::Url::parse(value).ok())
                else {
                    return;
                };
                if let Some((_, code)) = location.query_pairs().find(|(name, _)| name == "code") {
                    codes.lock().await.push(code.into_owned());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    rp.app.kill9();
    for task in tasks {
        let _ = task.await;
    }
    rp.app.start().await;

    let codes = codes.lock().await.clone();
    assert!(
        codes.len() > 5,
        "too few codes before the kill: {}",
        codes.len()
    );
    // The last ones were handed out just before the kill; a sample of the rest.
    let sample = codes.iter().rev().take(20).chain(codes.iter().take(5));
    for code in sample {
        let response = rp
            .app
            .client
            .post(format!("{}/t/{}/oauth/token", rp.app.base, rp.slug))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", crate::oidc::REDIRECT),
                ("client_id", rp.client_id.as_str()),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "an acknowledged code was lost: {body}"
        );
    }
    // The restarted server listens on another port; the browser keeps its cookies.
    let again = browser
        .client
        .get(format!("{}{}", rp.app.base, rp.authorize(&[])))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::SEE_OTHER,
        "the consent was lost"
    );
    let location = again.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(crate::oidc::REDIRECT) && location.contains("code="),
        "{location}"
    );
}
on_both_stores!(acknowledged_codes_and_consents_survive_kill_9);
