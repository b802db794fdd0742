//! A changed address end to end: unverified until its owner follows the link mailed to the
//! new address; the link works once and a GET alone verifies nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::http_browser::STRONG;
use crate::on_both_stores;
use crate::smtp::SmtpSink;

async fn a_changed_address_is_unverified_until_the_link_mailed_to_it_is_followed(store: Store) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = mail_app(store, &sink.url()).await;
    let tenant = app.create_tenant("verify-flow").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = user(&app, &tenant, "ada@old.test", STRONG).await;
    let path = format!("/v1/tenants/{tenant}/users/{id}");
    let (status, changed) = app
        .send(
            app.admin(Method::PATCH, &path)
                .json(&json!({"email": "ada@new.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["email_verified"], false);

    let mails = sink.wait_for("ada@new.test", 1, ARRIVAL).await;
    assert!(sink.messages_for("ada@old.test").is_empty());
    assert!(
        mails[0].subject.contains("Verify your email address"),
        "{}",
        mails[0].subject
    );
    let link = path_of(&app, &mails[0].link_containing("/email/verify/").unwrap());

    // Opening the link (as a mail scanner would) verifies nothing.
    let browser = Browser::new(&app);
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Verify my address"));
    let (_, read) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(read["email_verified"], false);

    let verified = browser.submit(&link, &link, &[]).await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
    assert_eq!(verified.location(), "/t/verify-flow/email/verified");
    let done = browser.get(verified.location()).await;
    assert!(done.body.contains("Your email address is verified"));
    let (_, read) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(read["email_verified"], true, "{read}");
    assert_eq!(read["email"], "ada@new.test");

    let again = browser.get(&link).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.body.contains("already been used"), "{}", again.body);

    // An administrator can send a new link (Keycloak's "send verify email").
    let send = format!("{path}/send-verification");
    let (status, _) = app.send(app.admin(Method::POST, &send)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    sink.wait_for("ada@new.test", 2, ARRIVAL).await;
}

on_both_stores!(a_changed_address_is_unverified_until_the_link_mailed_to_it_is_followed);

/// `email_verified` in ID tokens and userinfo follows the link (embedded default: the link is
/// read from the `.eml` file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_verified_in_id_tokens_and_userinfo_follows_the_verification_link() {
    use crate::oidc_tokens::{people, sign_in_and_issue_codes};
    let mut p = people(Store::Embedded, "verify-claims").await;
    let path = format!("/v1/tenants/{}/users/{}", p.tenant, p.user);
    let (status, _) = p
        .app
        .send(
            p.app
                .admin(Method::PATCH, &path)
                .json(&json!({"email": "ada@claims.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let files = wait_for_outbox(&p.app, 1).await;
    let link = path_of(
        &p.app,
        &eml_links(&files[0], "/email/verify/").pop().unwrap(),
    );
    let claims = |p: &crate::oidc_tokens::People, tokens: &serde_json::Value| {
        let id_token = tokens["id_token"].as_str().unwrap().to_owned();
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let (client, userinfo) = (p.app.client.clone(), p.endpoint("userinfo"));
        async move {
            let info: serde_json::Value = client
                .get(userinfo)
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (id_token, info)
        }
    };

    let scopes = ["openid", "email"];
    let (_, codes) = sign_in_and_issue_codes(&mut p, &scopes, 2).await;
    let (status, before) = p.exchange(&codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let (id_token, info) = claims(&p, &before).await;
    let id = p.id_token_claims(&id_token).await;
    assert_eq!(
        (id["email"].as_str(), &id["email_verified"]),
        (Some("ada@claims.test"), &json!(false))
    );
    assert_eq!(info["email_verified"], false, "{info}");

    let browser = Browser::new(&p.app);
    let verified = browser.submit(&link, &link, &[]).await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
    let (status, after) = p.exchange(&codes[1]).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let (id_token, info) = claims(&p, &after).await;
    assert_eq!(p.id_token_claims(&id_token).await["email_verified"], true);
    assert_eq!(info["email_verified"], true, "{info}");
}
