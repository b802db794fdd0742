//! Durability of the front half under kill -9: every consent and every code the browser was
//! given (a 303 to the client with a code) is on the log after a crash.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tessera_crypto::GrantSecrets;
use tokio::sync::Mutex;

use super::{EMAIL, register, rp};
use crate::helpers::{Store, eventually, read_log};
use crate::http_browser::{Answer, Browser, STRONG};
use crate::on_both_stores;

/// One request of a writer; `None` once the server is gone.
async fn send(request: reqwest::RequestBuilder) -> Option<Answer> {
    let response = request.send().await.ok()?;
    Some(Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.ok()?,
    })
}

async fn acknowledged_consents_and_codes_survive_kill_9(store: Store) {
    let mut rp = rp(store, "photos").await;
    let codes: Arc<Mutex<Vec<String>>> = Arc::default();
    let consents: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let client_id = register(&rp.app, &rp.tenant_id, json!({"name": format!("App {w}")})).await;
        let browser = Browser::new(&rp.app);
        browser.signed_in("photos", EMAIL, STRONG).await;
        // prompt=consent: every round shows the page and posts "Allow".
        let authorize = format!(
            "{}{}",
            browser.base,
            rp.authorize(&[("client_id", &client_id), ("prompt", "consent")])
        );
        let (codes, consents) = (codes.clone(), consents.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let Some(page) = send(browser.client.get(&authorize)).await else {
                    return;
                };
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                let mut fields = super::hidden_fields(&page.body);
                fields.push(("decision".to_owned(), "allow".to_owned()));
                let action = format!("{}/t/photos/oauth/authorize/consent", browser.base);
                let Some(answer) = send(browser.client.post(&action).form(&fields)).await else {
                    return;
                };
                let (_, pairs) = super::callback(&answer);
                let code = super::param(&pairs, "code").unwrap().to_owned();
                codes.lock().await.push(code);
                let mut allowed = consents.lock().await;
                if !allowed.contains(&client_id) {
                    allowed.push(client_id.clone());
                }
            }
        }));
    }
    let enough = eventually(Duration::from_secs(30), || async {
        codes.lock().await.len() >= 40
    })
    .await;
    assert!(enough, "too few codes before the kill");
    rp.app.kill9();
    for writer in writers {
        writer.await.unwrap();
    }

    rp.app.start().await;
    let listed = rp.consents().await;
    for client_id in consents.lock().await.iter() {
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|consent| consent["client_id"] == client_id.as_str()),
            "the acknowledged consent to {client_id} was lost: {listed}"
        );
    }
    rp.app.stop().await;
    let log = read_log(&rp.app).await;
    for code in codes.lock().await.iter() {
        let code_id = GrantSecrets::code_id(code).unwrap();
        let stream = format!("{}/code/{code_id}", rp.tenant_id);
        assert!(
            log.iter().any(|e| e.envelope.stream_id == stream
                && e.envelope.event_type == "authorization_code.issued"),
            "the acknowledged code {code_id} was lost"
        );
    }
    let (same, report) = rp.app.check_read_models();
    assert!(same, "{report}");
}
on_both_stores!(acknowledged_consents_and_codes_survive_kill_9);
