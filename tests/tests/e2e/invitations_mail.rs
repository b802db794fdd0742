//! Invitations through a real SMTP server (`smtp.rs`'s aiosmtpd sink): the link a person
//! follows is the one in the mail they received. Invite, receive, accept, sign in; a resend's
//! mail carries a new link and the old one fails; a bulk resend mails each; an expired link; a
//! wrong domain sends nothing; a new tenant's first administrator is mailed their invitation.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Store, TestServer, spawn_app_with_env};
use crate::http_browser::{Browser, PEOPLE_ENV, STRONG, advance_clock, tenant_with};
use crate::on_both_stores;
use crate::smtp::SmtpSink;

const MAIL_DEADLINE: Duration = Duration::from_secs(30);

/// A server that sends its mail to `sink`.
async fn mailing_app(store: Store, sink: &SmtpSink) -> TestServer {
    let url = sink.url();
    let mut env = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_SMTP_URL", &url));
    env.push(("TESSERA_SMTP_FROM", "Tessera <no-reply@tessera.test>"));
    spawn_app_with_env(store, &env).await
}

/// The path of the invitation link in `mail`.
fn invite_path(app: &TestServer, mail: &crate::smtp::Mail) -> String {
    let link = mail
        .link_containing("/invite/")
        .unwrap_or_else(|| panic!("no invitation link in {:?}", mail.text));
    link.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{link} is not under {}", app.base))
        .to_owned()
}

async fn invite(app: &TestServer, tenant: &str, email: &str) -> Value {
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/invitations"))
                .json(&json!({
                    "email": email,
                    "roles": ["editor"],
                    "message": "Welcome aboard!",
                })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn accept(app: &TestServer, link: &str) -> Browser {
    let browser = Browser::new(app);
    let answer = browser
        .submit(
            link,
            link,
            &[
                ("choice", "password"),
                ("password", STRONG),
                ("password_confirmation", STRONG),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}

async fn an_invitation_mail_leads_to_a_signed_in_account(store: Store) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = mailing_app(store, &sink).await;
    let t = tenant_with(&app, "mailed", |_| {}).await;
    let created = invite(&app, &t, "ada@acme.test").await;

    let mails = sink.wait_for("ada@acme.test", 1, MAIL_DEADLINE).await;
    let mail = &mails[0];
    let text = mail.text.as_deref().unwrap_or_default();
    assert!(text.contains("Welcome aboard!"), "{text}");
    assert!(text.contains("Tenant mailed"), "the tenant's name: {text}");
    let link = invite_path(&app, mail);
    assert_eq!(
        Some(link.as_str()),
        created["invite_url"]
            .as_str()
            .and_then(|url| url.strip_prefix(&app.base))
    );

    let browser = accept(&app, &link).await;
    assert!(browser.is_signed_in("mailed").await);
    Browser::new(&app)
        .signed_in("mailed", "ada@acme.test", STRONG)
        .await;
}

on_both_stores!(an_invitation_mail_leads_to_a_signed_in_account);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_mail_carries_a_new_link_and_the_old_one_fails_and_bulk_resend_mails_each() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = mailing_app(Store::Embedded, &sink).await;
    let t = tenant_with(&app, "resent", |_| {}).await;
    let first = invite(&app, &t, "ada@acme.test").await;
    invite(&app, &t, "bob@acme.test").await;
    let old = invite_path(
        &app,
        &sink.wait_for("ada@acme.test", 1, MAIL_DEADLINE).await[0],
    );

    let id = first["id"].as_str().unwrap();
    let (status, body) = app
        .send(app.admin(
            Method::POST,
            &format!("/v1/tenants/{t}/invitations/{id}/resend"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mails = sink.wait_for("ada@acme.test", 2, MAIL_DEADLINE).await;
    let new = invite_path(&app, &mails[1]);
    assert_ne!(new, old);
    assert_ne!(mails[0].message_id, mails[1].message_id);
    assert_eq!(Browser::new(&app).get(&old).await.status, StatusCode::GONE);

    let (status, report) = app
        .send(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{t}/invitations/bulk-resend"),
            )
            .json(&json!({"status": "pending"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["resent"], 2, "{report}");
    let ada = sink.wait_for("ada@acme.test", 3, MAIL_DEADLINE).await;
    let bob = sink.wait_for("bob@acme.test", 2, MAIL_DEADLINE).await;
    assert_eq!(Browser::new(&app).get(&new).await.status, StatusCode::GONE);
    accept(&app, &invite_path(&app, &ada[2])).await;
    accept(&app, &invite_path(&app, &bob[1])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_mailed_link_gets_a_clear_page_and_a_wrong_domain_sends_nothing() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = mailing_app(Store::Embedded, &sink).await;
    let t = tenant_with(&app, "expiry", |settings| {
        settings["allowed_email_domains"] = json!(["acme.test"]);
    })
    .await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{t}/invitations"))
                .json(&json!({"email": "ada@elsewhere.test", "roles": []})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/v1/tenants/{t}/invitations"))
                .json(&json!({"email": "ada@acme.test", "roles": [], "expires_in": 600})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let link = invite_path(
        &app,
        &sink.wait_for("ada@acme.test", 1, MAIL_DEADLINE).await[0],
    );
    advance_clock(&app, 601).await;
    let page = Browser::new(&app).get(&link).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("expired"), "{}", page.body);
    assert!(
        sink.messages_for("ada@elsewhere.test").is_empty(),
        "a refused invitation mails nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tenants_administrator_is_mailed_their_invitation() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = mailing_app(Store::Embedded, &sink).await;
    let (status, created) = app
        .send(app.admin(Method::POST, "/v1/tenants").json(&json!({
            "slug": "freshco",
            "name": "FreshCo",
            "admin_email": "owner@freshco.test",
            "admin_name": "Olivia Owner",
        })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let mail = &sink.wait_for("owner@freshco.test", 1, MAIL_DEADLINE).await[0];
    assert!(mail.text.as_deref().unwrap_or_default().contains("FreshCo"));
    let browser = accept(&app, &invite_path(&app, mail)).await;
    let account = browser.get("/t/freshco/account").await;
    assert!(account.body.contains("Create API key"), "{}", account.body);
}
