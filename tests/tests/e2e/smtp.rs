//! A real SMTP server for the tests that send mail: `tests/smtp/sink.py`, aiosmtpd run by
//! Debian's `/usr/bin/python3` (package `python3-aiosmtpd`, which `.ci/run` installs), on a free
//! port of 127.0.0.1. It saves every message it accepts; [`SmtpSink`] reads them back
//! ([`Mail`]), waits for them, and stops and restarts the server on the same port (a mail
//! server that is down, then back).
//!
//! Without the interpreter or the module, [`SmtpSink::start`] returns `None` and says so, so
//! that a developer's machine without them skips the mail tests; under CI (`CI=true`) their
//! absence is a failure.

// A harness for the mail tests of several files: not every one reads every field or option.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::helpers::eventually;

/// Debian's interpreter, which sees Debian's `python3-aiosmtpd` (the `python3` on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// One message the server accepted, as `sink.py` saved it.
#[derive(Clone, Debug, Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    /// The decoded `text/plain` part, if any.
    pub text: Option<String>,
    /// The decoded `text/html` part, if any.
    pub html: Option<String>,
    /// The whole message as received.
    pub raw: String,
}

impl Mail {
    /// Whether the envelope names `address` as a recipient (case-insensitively).
    pub fn is_for(&self, address: &str) -> bool {
        self.rcpt_tos
            .iter()
            .any(|rcpt| rcpt.eq_ignore_ascii_case(address))
    }

    /// Every `http://` and `https://` link of the text part, in order.
    pub fn links(&self) -> Vec<String> {
        let text = self.text.as_deref().unwrap_or_default();
        text.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
            .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
            .map(|word| word.trim_end_matches(['.', ',', ')', ';', ':']).to_owned())
            .collect()
    }

    /// The first link of the text part that contains `fragment` (e.g. `/invite/`).
    pub fn link_containing(&self, fragment: &str) -> Option<String> {
        self.links()
            .into_iter()
            .find(|link| link.contains(fragment))
    }
}

/// Extra behaviour of the server (`sink.py`'s options).
#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    /// Require SMTP AUTH with this user and password.
    pub auth: Option<(String, String)>,
    /// Offer (and require) STARTTLS with this certificate and key (PEM files).
    pub starttls: Option<(PathBuf, PathBuf)>,
    /// Speak TLS from the first byte (smtps) with this certificate and key.
    pub implicit_tls: Option<(PathBuf, PathBuf)>,
}

/// A running (or stopped) SMTP server and the messages it saved.
pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    options: SinkOptions,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether Debian's interpreter and its aiosmtpd module are here; under CI their absence is a
/// failure.
fn aiosmtpd_available() -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{PYTHON} with python3-aiosmtpd is required under CI (.ci/run installs it)"
        );
        eprintln!("skipping: {PYTHON} with python3-aiosmtpd is not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/sink.py")
}

impl SmtpSink {
    /// A plain SMTP server on a free port; `None` (after saying why) when aiosmtpd is missing
    /// outside CI.
    pub fn start() -> Option<Self> {
        Self::start_with(SinkOptions::default())
    }

    pub fn start_with(options: SinkOptions) -> Option<Self> {
        if !aiosmtpd_available() {
            return None;
        }
        let mut sink = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            options,
        };
        sink.restart();
        Some(sink)
    }

    /// `smtp://127.0.0.1:{port}`, for `TESSERA_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Kills the server: connections are refused until [`SmtpSink::restart`]. Saved messages
    /// stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (it keeps counting the saved messages) and
    /// returns once it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(PYTHON);
        command
            .arg(script())
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((user, password)) = &self.options.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        if let Some((cert, key)) = &self.options.starttls {
            command.arg("--starttls").arg(cert).arg(key);
        }
        if let Some((cert, key)) = &self.options.implicit_tls {
            command.arg("--implicit-tls").arg(cert).arg(key);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(
            line.starts_with("ready"),
            "the SMTP server did not start: {line:?}"
        );
        self.child = Some(child);
    }

    /// Every message saved so far, in the order the server accepted them.
    pub fn messages(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
            .collect()
    }

    /// The messages to `address`, in order.
    pub fn messages_for(&self, address: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|mail| mail.is_for(address))
            .collect()
    }

    /// Waits (up to `deadline`) until at least `count` messages to `address` arrived, and
    /// returns them all; panics when they do not.
    pub async fn wait_for(&self, address: &str, count: usize, deadline: Duration) -> Vec<Mail> {
        let arrived = eventually(deadline, || async {
            self.messages_for(address).len() >= count
        })
        .await;
        let mails = self.messages_for(address);
        assert!(
            arrived,
            "expected {count} mail(s) to {address} within {deadline:?}, got {}: {:?}",
            mails.len(),
            mails.iter().map(|mail| &mail.subject).collect::<Vec<_>>()
        );
        mails
    }
}

/// The test of the harness itself: what a client hands the server is what the tests read,
/// and a restart on the same port loses no saved message.
mod harness {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;

    use super::SmtpSink;

    /// One SMTP conversation by hand (RFC 5321): the server's reply to each line must be the
    /// expected code.
    fn send(port: u16, from: &str, to: &str, message: &str) {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut expect = |code: &str| loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            // A multi-line reply continues with `code-`.
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        };
        expect("220");
        for (line, code) in [
            ("EHLO tests.example".to_owned(), "250"),
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".to_owned(), "354"),
        ] {
            writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            expect(code);
        }
        writer
            .write_all(format!("{message}\r\n.\r\n").as_bytes())
            .unwrap();
        expect("250");
        writer.write_all(b"QUIT\r\n").unwrap();
        expect("221");
    }

    #[tokio::test]
    async fn the_sink_keeps_what_it_accepted_and_reads_it_back_across_a_restart() {
        let Some(mut sink) = SmtpSink::start() else {
            return;
        };
        let message = "From: Tessera <no-reply@tessera.test>\r\nTo: ada@acme.test\r\n\
                       Subject: You are invited\r\nMessage-ID: <m1@tessera.test>\r\n\
                       Content-Type: text/plain; charset=utf-8\r\n\r\n\
                       Follow http://127.0.0.1:1/t/acme/invite/abc. Thanks.";
        send(sink.port, "no-reply@tessera.test", "ada@acme.test", message);
        sink.stop();
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", sink.port)).is_err(),
            "a stopped sink refuses connections"
        );
        sink.restart();
        send(sink.port, "no-reply@tessera.test", "bob@acme.test", message);
        let mails = sink
            .wait_for("ada@acme.test", 1, std::time::Duration::from_secs(5))
            .await;
        assert_eq!(mails[0].subject, "You are invited");
        assert_eq!(mails[0].message_id, "<m1@tessera.test>");
        assert_eq!(mails[0].mail_from, "no-reply@tessera.test");
        assert_eq!(
            mails[0].link_containing("/invite/").as_deref(),
            Some("http://127.0.0.1:1/t/acme/invite/abc")
        );
        assert_eq!(sink.messages().len(), 2);
        assert_eq!(sink.messages_for("bob@acme.test").len(), 1);
    }
}
