//! TLS to the SMTP server through rustls: `?tls=required` (STARTTLS) and `smtps://` (implicit
//! TLS), with credentials, against the sink with a certificate of a test authority that the
//! server trusts through `SSL_CERT_FILE` (the system roots' override).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::http_browser::{PEOPLE_ENV, STRONG};
use crate::smtp::{SinkOptions, SmtpSink};

/// A test certificate authority and a certificate for 127.0.0.1 that it signed, made with the
/// `openssl` command: (authority, certificate, key).
pub(crate) fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(
        path("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Tessera test mail CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    (path("ca.pem"), path("leaf.pem"), path("leaf.key"))
}

async fn delivered_over(
    url_of: impl Fn(u16) -> String,
    options: SinkOptions,
    ca: &Path,
    slug: &str,
) {
    let Some(sink) = SmtpSink::start_with(options) else {
        return;
    };
    let url = url_of(sink.port);
    let ca = ca.to_string_lossy().into_owned();
    let mut env: Vec<(&str, &str)> = PEOPLE_ENV.to_vec();
    env.push(("TESSERA_SMTP_URL", &url));
    env.push(("TESSERA_SMTP_RETRY_MAX_SECONDS", "1"));
    env.push(("SSL_CERT_FILE", &ca));
    let app = spawn_app_with_env(Store::Embedded, &env).await;
    let tenant = app.create_tenant(slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let address = format!("ada@{slug}.test");
    user(&app, &tenant, &address, STRONG).await;
    forgot(&Browser::new(&app), slug, &address).await;
    sink.wait_for(&address, 1, ARRIVAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls_required_with_credentials_and_over_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let auth = Some(("mailer".to_owned(), "secret".to_owned()));
    let starttls = SinkOptions {
        auth: auth.clone(),
        starttls: Some((cert.clone(), key.clone())),
        ..Default::default()
    };
    let required = |port| format!("smtp://mailer:secret@127.0.0.1:{port}?tls=required");
    delivered_over(required, starttls, &ca, "starttls").await;
    // The sink does not offer AUTH over implicit TLS (aiosmtpd counts only STARTTLS as TLS),
    // so this one goes without credentials.
    let implicit = SinkOptions {
        implicit_tls: Some((cert, key)),
        ..Default::default()
    };
    let smtps = |port| format!("smtps://127.0.0.1:{port}");
    delivered_over(smtps, implicit, &ca, "smtps").await;
}
