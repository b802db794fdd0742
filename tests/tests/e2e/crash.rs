//! Durability under kill -9: every write that got a 2xx survives (tenants and their changes,
//! users, sign-ins and the sessions they started), and the read models equal a fresh rebuild
//! from the log after recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::Mutex;

use crate::helpers::{Store, spawn_app_with_env};
use crate::http_browser::{PEOPLE_ENV, STRONG};
use crate::on_both_stores;

async fn acknowledged_writes_survive_kill_9_and_read_models_match_a_rebuild(store: Store) {
    let mut app = spawn_app_with_env(store, PEOPLE_ENV).await;
    let people = app.create_tenant("crash-people").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // (tenant id, stream version) of every acknowledged write.
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    // Every acknowledged user, and (user, session, cookie value) of every acknowledged sign-in.
    let users: Arc<Mutex<Vec<String>>> = Arc::default();
    let sign_ins: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    // At least three seconds of writes, and until enough are acknowledged that the kill lands
    // among many in flight: a tenant's creation makes an RSA key (its ID token key) too, and a
    // busy machine acknowledges fewer in three seconds.
    let write_at_least = Instant::now() + Duration::from_millis(3000);
    let give_up_at = Instant::now() + Duration::from_secs(60);
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
    for w in 0..4 {
        let client = app.client.clone();
        let base = app.base.clone();
        let (people, users, sign_ins) = (people.clone(), users.clone(), sign_ins.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let email = format!("person-{w}-{i}@example.com");
                let Ok(response) = client
                    .post(format!("{base}/v1/tenants/{people}/users"))
                    .bearer_auth(crate::helpers::ADMIN_KEY)
                    .json(&json!({"email": email, "password": STRONG}))
                    .send()
                    .await
                else {
                    return;
                };
                let status = response.status();
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                if !status.is_success() {
                    continue;
                }
                let user_id = body["id"].as_str().unwrap().to_owned();
                users.lock().await.push(user_id.clone());
                let Ok(response) = client
                    .post(format!("{base}/t/crash-people/login"))
                    .json(&json!({"email": email, "password": STRONG}))
                    .send()
                    .await
                else {
                    return;
                };
                let cookie = response
                    .headers()
                    .get("set-cookie")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .map(str::to_owned);
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                if let (Some(cookie), Some(session)) = (cookie, body["session_id"].as_str()) {
                    sign_ins
                        .lock()
                        .await
                        .push((user_id, session.to_owned(), cookie));
                }
            }
        }));
    }
    while Instant::now() < write_at_least
        || (acked.lock().await.len() <= 40 && Instant::now() < give_up_at)
    {
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
    let users = users.lock().await.clone();
    let sign_ins = sign_ins.lock().await.clone();
    assert!(
        users.len() > 5 && sign_ins.len() > 5,
        "too few people acknowledged before the kill: {} users, {} sign-ins",
        users.len(),
        sign_ins.len()
    );
    for user in &users {
        let path = format!("/v1/tenants/{people}/users/{user}");
        let (status, _) = app.send(app.admin(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "acknowledged user {user} lost");
    }
    // Redirects not followed: a lost session would redirect to the sign-in page.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (user, session, cookie) in &sign_ins {
        let path = format!("/v1/tenants/{people}/users/{user}/sessions");
        let (status, list) = app.send(app.admin(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == session.as_str()),
            "acknowledged sign-in {session} of {user} lost: {list}"
        );
        // The cookie the person got still signs them in.
        let account = browser
            .get(format!("{}/t/crash-people/account", app.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(account.status(), StatusCode::OK, "{session}");
    }
    app.stop().await;
    let (same, report) = app.check_read_models();
    assert!(same, "{report}");
}
on_both_stores!(acknowledged_writes_survive_kill_9_and_read_models_match_a_rebuild);
