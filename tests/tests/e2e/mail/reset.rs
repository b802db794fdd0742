//! "Forgot your password?" end to end: no account enumeration, a link that works once and
//! only while it is the latest and fresh, every session and refresh token ended.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;

use super::*;
use crate::http_browser::{OTHER_STRONG, STRONG, advance_clock, settle};
use crate::on_both_stores;
use crate::smtp::SmtpSink;

async fn a_reset_link_is_mailed_to_known_addresses_only_and_works_once(store: Store) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let app = mail_app(store, &sink.url()).await;
    let tenant = app.create_tenant("reset-flow").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user(&app, &tenant, "ada@reset.test", STRONG).await;
    let signed_in = Browser::new(&app);
    signed_in
        .signed_in("reset-flow", "ada@reset.test", STRONG)
        .await;

    // The sign-in page leads to the form.
    let browser = Browser::new(&app);
    let login = browser.get("/t/reset-flow/login").await;
    assert!(
        login.body.contains("Forgot your password?"),
        "{}",
        login.body
    );
    assert!(login.body.contains("/t/reset-flow/password/forgot"));

    // An unknown address and a known one get the same answer and the same page.
    forgot(&browser, "reset-flow", "nobody@reset.test").await;
    forgot(&browser, "reset-flow", "ADA@reset.test").await;
    let sent = browser.get("/t/reset-flow/password/forgot?sent=1").await;
    assert!(sent.body.contains("If an account exists for that address"));
    let mails = sink.wait_for("ada@reset.test", 1, ARRIVAL).await;
    settle(&app).await;
    assert!(sink.messages_for("nobody@reset.test").is_empty());
    assert_eq!(sink.messages().len(), 1, "only the known address gets mail");
    let first = &mails[0];
    assert!(
        first.subject.contains("Reset your password"),
        "{}",
        first.subject
    );
    assert!(
        first.message_id.ends_with("@127.0.0.1>"),
        "{}",
        first.message_id
    );
    assert!(first.text.as_deref().unwrap().contains("for 30 minutes"));
    assert!(
        first
            .html
            .as_deref()
            .unwrap()
            .contains("Choose a new password")
    );
    let old = path_of(&app, &first.link_containing("/password/reset/").unwrap());

    // A newer link replaces it (a minute later: a second request within it sends nothing).
    advance_clock(&app, 61).await;
    forgot(&browser, "reset-flow", "ada@reset.test").await;
    let mails = sink.wait_for("ada@reset.test", 2, ARRIVAL).await;
    let new = path_of(&app, &mails[1].link_containing("/password/reset/").unwrap());
    assert_ne!(old, new);
    let replaced = browser.get(&old).await;
    assert_eq!(replaced.status, StatusCode::GONE);
    assert!(
        replaced.body.contains("A newer link was sent"),
        "{}",
        replaced.body
    );

    // The form wants the same password twice; then the link sets it and signs out everywhere.
    let mismatch = browser
        .submit(
            &new,
            &new,
            &[("new_password", OTHER_STRONG), ("confirm_password", "nope")],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.body.contains("not the same"));
    let reset = browser
        .submit(
            &new,
            &new,
            &[
                ("new_password", OTHER_STRONG),
                ("confirm_password", OTHER_STRONG),
            ],
        )
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    assert_eq!(
        reset.location(),
        "/t/reset-flow/login?notice=password_reset"
    );
    let notice = browser.get(reset.location()).await;
    assert!(notice.body.contains("Your password has been changed"));
    assert!(
        !signed_in.is_signed_in("reset-flow").await,
        "the old session ended"
    );
    let old_password = browser
        .sign_in("reset-flow", "ada@reset.test", STRONG)
        .await;
    assert_eq!(
        old_password.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        old_password.body
    );
    Browser::new(&app)
        .signed_in("reset-flow", "ada@reset.test", OTHER_STRONG)
        .await;

    // Used: the link works once.
    let used = browser.get(&new).await;
    assert_eq!(used.status, StatusCode::GONE);
    assert!(used.body.contains("already been used"), "{}", used.body);
    let unknown = browser
        .get(&format!("/t/reset-flow/password/reset/{}", "A".repeat(64)))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Expired: 31 minutes later, a fresh link gets a clear page.
    advance_clock(&app, 61).await;
    forgot(&browser, "reset-flow", "ada@reset.test").await;
    let mails = sink.wait_for("ada@reset.test", 3, ARRIVAL).await;
    let late = path_of(&app, &mails[2].link_containing("/password/reset/").unwrap());
    advance_clock(&app, 31 * 60).await;
    let expired = browser.get(&late).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.body.contains("has expired"), "{}", expired.body);
}

on_both_stores!(a_reset_link_is_mailed_to_known_addresses_only_and_works_once);

/// Without SMTP the mail is an `.eml` file (0600) in the data directory, and its link ends the
/// person's refresh tokens (through their revocation horizon).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_reset_mail_is_an_eml_file_and_its_link_ends_refresh_tokens() {
    use crate::oidc_tokens::{EMAIL, people, sign_in_and_issue_codes};
    let mut p = people(Store::Embedded, "reset-eml").await;
    let scopes = ["openid", "email", "offline_access"];
    let (_, codes) = sign_in_and_issue_codes(&mut p, &scopes, 1).await;
    let (status, tokens) = p.exchange(&codes[0]).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let browser = Browser::new(&p.app);
    forgot(&browser, "reset-eml", EMAIL).await;
    let files = wait_for_outbox(&p.app, 1).await;
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        p.app
            .stderr
            .lock()
            .unwrap()
            .iter()
            .all(|line| !line.contains(EMAIL)),
        "no log line names the address"
    );
    let link = eml_links(&files[0], "/password/reset/").pop().unwrap();
    let path = path_of(&p.app, &link);
    let fields = [
        ("new_password", OTHER_STRONG),
        ("confirm_password", OTHER_STRONG),
    ];
    let reset = browser.submit(&path, &path, &fields).await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);

    let (status, refused) = p.refresh(&refresh_token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    assert!(name.ends_with(".eml"));
}

/// The sign-in limits count reset requests too, alike for every address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_from_one_source_are_limited_whatever_the_address() {
    let env = [("TESSERA_SIGN_IN_ATTEMPTS_PER_SOURCE", "3")];
    let app = crate::helpers::spawn_app_with_env(Store::Embedded, &env).await;
    app.create_tenant("reset-limit").await;
    let browser = Browser::new(&app);
    for address in ["a@limit.test", "b@limit.test", "c@limit.test"] {
        forgot(&browser, "reset-limit", address).await;
    }
    let page = "/t/reset-limit/password/forgot";
    let limited = browser
        .submit(page, page, &[("email", "d@limit.test")])
        .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(limited.body.contains("Too many requests"));
}
