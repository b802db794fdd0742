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
