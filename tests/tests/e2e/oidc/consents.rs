//! Consents seen and revoked: by the person on their account page, by an administrator
//! through the API. A revoked consent is asked for again.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{callback, decide, rp};
use crate::helpers::Store;
use crate::on_both_stores;

async fn a_person_revokes_an_application_on_the_account_page(store: Store) {
    let rp = rp(store, "photos").await;
    let browser = rp.signed_in_browser().await;
    let account = browser.get("/t/photos/account").await;
    assert!(account.body.contains("Connected applications"));
    assert!(!account.body.contains("Revoke access"));

    let page = browser
        .get(&rp.authorize(&[("scope", "openid profile")]))
        .await;
    callback(&decide(&browser, &page, "allow").await);
    let account = browser.get("/t/photos/account").await;
    let listed = &account.body[account.body.find("Connected applications").unwrap()..];
    assert!(listed.contains("Photo Album"), "{listed}");
    assert!(listed.contains("See your name"), "{listed}");
    assert!(listed.contains("<button type=\"submit\">Revoke access</button>"));

    let answer = browser
        .submit(
            "/t/photos/account",
            "/t/photos/account/consents/revoke",
            &[("client_id", &rp.client_id)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/t/photos/account?done=consent");
    let account = browser.get("/t/photos/account").await;
    assert!(
        !account.body.contains("Revoke access"),
        "gone from the list"
    );
    let (_, listed) = rp
        .app
        .send(rp.app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/users/{}/consents", rp.tenant_id, rp.user_id),
        ))
        .await;
    assert_eq!(listed, json!([]));

    // The next request asks again.
    let page = browser
        .get(&rp.authorize(&[("scope", "openid profile")]))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("See your name"));

    // Revoking what was never allowed is not found, and changes nothing.
    let answer = browser
        .submit(
            "/t/photos/account",
            "/t/photos/account/consents/revoke",
            &[("client_id", "someone-else")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
}
on_both_stores!(a_person_revokes_an_application_on_the_account_page);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_lists_and_revokes_a_persons_consents() {
    let rp = rp(Store::Embedded, "photos").await;
    let browser = rp.signed_in_browser().await;
    let page = browser.get(&rp.authorize(&[])).await;
    callback(&decide(&browser, &page, "allow").await);

    let path = format!("/v1/tenants/{}/users/{}/consents", rp.tenant_id, rp.user_id);
    let (status, listed) = rp.app.send(rp.app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["client_id"], rp.client_id.as_str());
    assert_eq!(listed[0]["client_name"], "Photo Album");
    assert_eq!(listed[0]["scopes"], json!(["openid", "email"]));

    let one = format!("{path}/{}", rp.client_id);
    let (status, _) = rp.app.send(rp.app.admin(Method::DELETE, &one)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = rp.app.send(rp.app.admin(Method::GET, &path)).await;
    assert_eq!(listed, json!([]));
    let (status, body) = rp.app.send(rp.app.admin(Method::DELETE, &one)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The person's page asks again.
    let page = browser.get(&rp.authorize(&[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    // Another tenant's id with this user, or an unknown user: not found.
    let other = rp.app.create_tenant("other").await;
    let elsewhere = format!(
        "/v1/tenants/{}/users/{}/consents",
        other["id"].as_str().unwrap(),
        rp.user_id
    );
    let (status, _) = rp.app.send(rp.app.admin(Method::GET, &elsewhere)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unknown = format!(
        "/v1/tenants/{}/users/{}/consents",
        rp.tenant_id,
        uuid::Uuid::nil()
    );
    let (status, _) = rp.app.send(rp.app.admin(Method::GET, &unknown)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
