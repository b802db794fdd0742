//! The outbox's promises end to end: a mail queued before a kill -9 is sent after the restart;
//! while the SMTP server is down mail queues, each failed attempt is recorded, and everything
//! is delivered once it is back, with the `Message-ID` named after the mail.

use super::*;
use crate::http_browser::STRONG;
use crate::on_both_stores;
use crate::smtp::SmtpSink;

/// The attempts recorded on a mail's stream: (failed, sent) counts, and the `Message-ID` sent.
fn attempts(events: &[Event]) -> (usize, usize, Option<String>) {
    let failed = events
        .iter()
        .filter(|event| matches!(event, Event::EmailFailed(_)))
        .count();
    let sent: Vec<&String> = events
        .iter()
        .filter_map(|event| match event {
            Event::EmailSent(sent) => Some(&sent.message_id),
            _ => None,
        })
        .collect();
    (failed, sent.len(), sent.first().map(|id| (*id).clone()))
}

async fn a_mail_queued_before_a_kill_9_arrives_after_the_restart(store: Store) {
    let Some(mut sink) = SmtpSink::start() else {
        return;
    };
    // Nothing listens on the sink's port while the mail is queued.
    sink.stop();
    let mut app = mail_app(store, &sink.url()).await;
    let tenant = app.create_tenant("outbox-crash").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user(&app, &tenant, "ada@crash.test", STRONG).await;
    forgot(&Browser::new(&app), "outbox-crash", "ada@crash.test").await;
    app.kill9();

    sink.restart();
    app.start().await;
    let mails = sink.wait_for("ada@crash.test", 1, ARRIVAL).await;
    app.stop().await;
    let streams = email_streams(&app).await;
    assert_eq!(streams.len(), 1, "{streams:?}");
    let (stream, events) = &streams[0];
    let (_, sent, message_id) = attempts(events);
    assert_eq!(sent, 1);
    let email_id = stream.rsplit('/').next().unwrap();
    assert_eq!(message_id.as_deref(), Some(mails[0].message_id.as_str()));
    assert_eq!(mails[0].message_id, format!("<{email_id}@127.0.0.1>"));
}

on_both_stores!(a_mail_queued_before_a_kill_9_arrives_after_the_restart);

async fn while_the_smtp_server_is_down_mail_queues_and_is_all_delivered_when_it_is_back(
    store: Store,
) {
    let Some(mut sink) = SmtpSink::start() else {
        return;
    };
    let app = mail_app(store, &sink.url()).await;
    let tenant = app.create_tenant("outbox-down").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user(&app, &tenant, "ada@down.test", STRONG).await;
    user(&app, &tenant, "bob@down.test", STRONG).await;
    sink.stop();
    let browser = Browser::new(&app);
    forgot(&browser, "outbox-down", "ada@down.test").await;
    forgot(&browser, "outbox-down", "bob@down.test").await;
    // Both mails fail at least once (the server logs each failed attempt by the mail's id).
    let failing = eventually(ARRIVAL, || async {
        app.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains("mail not sent"))
            .count()
            >= 2
    })
    .await;
    assert!(failing, "no failed attempt was logged");
    assert!(sink.messages().is_empty());

    sink.restart();
    sink.wait_for("ada@down.test", 1, ARRIVAL).await;
    sink.wait_for("bob@down.test", 1, ARRIVAL).await;
    let mut app = app;
    app.stop().await;
    let streams = email_streams(&app).await;
    assert_eq!(streams.len(), 2);
    for (_, events) in &streams {
        let (failed, sent, _) = attempts(events);
        assert!(failed >= 1, "{events:?}");
        assert_eq!(sent, 1, "{events:?}");
        assert!(matches!(events.last(), Some(Event::EmailSent(_))));
    }
    assert_eq!(sink.messages().len(), 2, "each mail once");
    assert!(
        app.stderr
            .lock()
            .unwrap()
            .iter()
            .all(|line| !line.contains("@down.test")),
        "log lines name mails by id, never by address"
    );
}

on_both_stores!(while_the_smtp_server_is_down_mail_queues_and_is_all_delivered_when_it_is_back);

/// A mail whose person is erased before it could be sent fails for good and never leaves: the
/// key that opens it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_to_a_person_erased_before_sending_fails_for_good_and_never_arrives() {
    let Some(mut sink) = SmtpSink::start() else {
        return;
    };
    sink.stop();
    let mut app = mail_app(Store::Embedded, &sink.url()).await;
    let tenant = app.create_tenant("outbox-erased").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = user(&app, &tenant, "ada@erased.test", STRONG).await;
    forgot(&Browser::new(&app), "outbox-erased", "ada@erased.test").await;
    let path = format!("/v1/tenants/{tenant}/users/{id}");
    let (status, _) = app.send(app.admin(reqwest::Method::DELETE, &path)).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    sink.restart();
    let given_up = eventually(ARRIVAL, || async {
        app.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("person erased"))
    })
    .await;
    assert!(given_up, "the mail was not failed for good");
    app.stop().await;
    let streams = email_streams(&app).await;
    let last = streams[0].1.last().unwrap();
    assert!(
        matches!(last, Event::EmailFailed(failed) if failed.permanent && failed.reason == "person erased"),
        "{last:?}"
    );
    assert!(sink.messages().is_empty());
}

/// Credentials in `TESSERA_SMTP_URL` (percent-encoded) authenticate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_smtp_url_authenticate() {
    let options = crate::smtp::SinkOptions {
        auth: Some(("mailer".into(), "s3cret pass".into())),
        ..Default::default()
    };
    let Some(sink) = SmtpSink::start_with(options) else {
        return;
    };
    let url = format!("smtp://mailer:s3cret%20pass@127.0.0.1:{}", sink.port);
    let app = mail_app(Store::Embedded, &url).await;
    let tenant = app.create_tenant("outbox-auth").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user(&app, &tenant, "ada@auth.test", STRONG).await;
    forgot(&Browser::new(&app), "outbox-auth", "ada@auth.test").await;
    sink.wait_for("ada@auth.test", 1, ARRIVAL).await;
}
