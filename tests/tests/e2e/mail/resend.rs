//! A kill -9 after the SMTP server accepted a mail and before `email.sent` is appended: the
//! mail is sent once more after the restart, with the same `Message-ID`.
//!
//! The window is made wide and certain, not raced: a stand-in SMTP server accepts the mail
//! (`250` after `DATA`) and then never answers `QUIT`, so the sender is held between the
//! acceptance and its record until the test kills it.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::*;
use crate::http_browser::STRONG;
use crate::smtp::SmtpSink;

/// Accepts one mail on `listener` and hands its raw text over; then holds the connection
/// without answering `QUIT`.
async fn accept_and_hold(listener: TcpListener, accepted: oneshot::Sender<String>) {
    let (stream, _) = listener.accept().await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 stand-in ESMTP\r\n").await.unwrap();
    let mut accepted = Some(accepted);
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.to_ascii_uppercase();
        let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            b"250 stand-in\r\n"
        } else if verb.starts_with("MAIL") || verb.starts_with("RCPT") {
            b"250 OK\r\n"
        } else if verb.starts_with("DATA") {
            write.write_all(b"354 go on\r\n").await.unwrap();
            let mut message = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "." {
                    break;
                }
                message.push_str(&line);
                message.push('\n');
            }
            // Accepted first, then handed over: the sender has its 250 before the test acts.
            write.write_all(b"250 accepted\r\n").await.unwrap();
            write.flush().await.unwrap();
            if let Some(accepted) = accepted.take() {
                let _ = accepted.send(message);
            }
            continue;
        } else if verb.starts_with("QUIT") {
            // Held: the sender waits here, after the acceptance, until it is killed.
            std::future::pending::<()>().await;
            unreachable!()
        } else {
            b"250 OK\r\n"
        };
        write.write_all(reply).await.unwrap();
    }
}

fn message_id(raw: &str) -> String {
    raw.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Message-ID in {raw}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_accepted_before_a_kill_9_is_sent_again_with_the_same_message_id() {
    let Some(mut sink) = SmtpSink::start() else {
        return;
    };
    // The stand-in takes the sink's port while the sink is down.
    sink.stop();
    let listener = TcpListener::bind(("127.0.0.1", sink.port)).await.unwrap();
    let (accepted, first) = oneshot::channel();
    let stand_in = tokio::spawn(accept_and_hold(listener, accepted));
    let mut app = mail_app(Store::Embedded, &sink.url()).await;
    let tenant = app.create_tenant("resend").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user(&app, &tenant, "ada@resend.test", STRONG).await;
    forgot(&Browser::new(&app), "resend", "ada@resend.test").await;
    let first = tokio::time::timeout(ARRIVAL, first).await.unwrap().unwrap();
    app.kill9();
    stand_in.abort();
    let _ = stand_in.await;

    sink.restart();
    app.start().await;
    let mails = sink.wait_for("ada@resend.test", 1, ARRIVAL).await;
    assert_eq!(mails[0].message_id, message_id(&first));
    app.stop().await;
    let streams = email_streams(&app).await;
    let sent: Vec<&Event> = streams[0]
        .1
        .iter()
        .filter(|event| matches!(event, Event::EmailSent(_)))
        .collect();
    assert_eq!(sent.len(), 1, "recorded once: {streams:?}");
}
