//! Where a mail goes: an SMTP server (`lettre`, on tokio, TLS through rustls), or, without
//! one, the embedded default's outbox directory (`<data-dir>/outbox/{email_id}.eml`).
//!
//! A failed attempt is classified for the log (`email.failed`'s `reason`): a class and the
//! SMTP reply code, never the server's text, which may quote the address.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use crate::config::MailConfig;
use crate::data_dir;

/// How long one SMTP conversation may take before the attempt counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// An attempt that did not deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFailure {
    /// The class of failure and the SMTP code, e.g. `smtp 451` or `connection`.
    pub reason: String,
    /// Trying again would not help (a 5xx reply).
    pub permanent: bool,
}

/// Where mail goes.
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The embedded default: `.eml` files in this directory.
    Outbox(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Outbox(dir) => write!(f, "Transport::Outbox({})", dir.display()),
        }
    }
}

/// The settings of mail delivery, checked at startup.
#[derive(Debug)]
pub struct MailSettings {
    pub transport: Transport,
    pub from: Mailbox,
    /// The host of the public URL: the right-hand side of every `Message-ID`.
    pub host: String,
    pub retry_max: Duration,
}

impl MailSettings {
    /// Checks `config`: an SMTP URL lettre can use, a sender that is an address. `data_dir` is
    /// where the embedded default's outbox goes.
    pub fn from_config(
        config: &MailConfig,
        public_url: &str,
        data_dir: &Path,
    ) -> Result<Self, String> {
        let host = reqwest::Url::parse(public_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .ok_or_else(|| format!("the public URL {public_url} has no host"))?;
        let from = config
            .smtp_from
            .clone()
            .unwrap_or_else(|| format!("no-reply@{host}"));
        let from: Mailbox = from
            .parse()
            .map_err(|_| format!("TESSERA_SMTP_FROM {from:?} is not an address"))?;
        let transport = match config.smtp_url.as_ref().map(|url| url.expose().trim()) {
            Some(url) if !url.is_empty() => Transport::Smtp(smtp(url, &host)?),
            _ => Transport::Outbox(data_dir.join("outbox")),
        };
        Ok(Self {
            transport,
            from,
            host,
            retry_max: Duration::from_secs(config.smtp_retry_max_seconds.max(1)),
        })
    }

    /// The `Message-ID` of a mail: the same on every attempt.
    pub fn message_id(&self, email_id: Uuid) -> String {
        format!("<{email_id}@{}>", self.host)
    }
}

/// An SMTP transport from `TESSERA_SMTP_URL`. lettre reads `smtps://`, `?tls=required` and
/// credentials itself; a plain `smtp://` is made opportunistic (STARTTLS when offered), on
/// port 25 unless the URL names one.
fn smtp(url: &str, hello: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let invalid = || "TESSERA_SMTP_URL is not a valid smtp:// or smtps:// URL".to_owned();
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid())?;
    let tls_named = parsed.query_pairs().any(|(key, _)| key == "tls");
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|_| invalid())?;
    if parsed.scheme() == "smtp" && !tls_named {
        let server = parsed.host_str().ok_or_else(invalid)?;
        let tls = TlsParameters::new(server.to_owned()).map_err(|_| invalid())?;
        builder = builder
            .tls(Tls::Opportunistic(tls))
            .port(parsed.port().unwrap_or(25));
    }
    if parsed.path().len() <= 1 {
        builder = builder.hello_name(ClientId::Domain(hello.to_owned()));
    }
    Ok(builder.timeout(Some(SMTP_TIMEOUT)).build())
}

impl Transport {
    /// Delivers `message` (of mail `email_id`): the SMTP server accepted it, or its `.eml`
    /// file is durable. Returns the file's path on the embedded default.
    pub async fn send(
        &self,
        email_id: Uuid,
        message: &Message,
    ) -> Result<Option<PathBuf>, SendFailure> {
        match self {
            Transport::Smtp(smtp) => match smtp.send(message.clone()).await {
                Ok(_) => Ok(None),
                Err(error) => Err(classify(&error)),
            },
            Transport::Outbox(dir) => {
                let (dir, bytes) = (dir.clone(), message.formatted());
                tokio::task::spawn_blocking(move || write_eml(&dir, email_id, &bytes))
                    .await
                    .map_err(|_| io_failure())?
                    .map(Some)
                    .map_err(|error| {
                        tracing::warn!(%email_id, %error, "writing a mail to the outbox directory");
                        io_failure()
                    })
            }
        }
    }
}

fn io_failure() -> SendFailure {
    SendFailure {
        reason: "outbox write".into(),
        permanent: false,
    }
}

/// The class of an SMTP failure, and whether it is permanent (a 5xx reply).
fn classify(error: &lettre::transport::smtp::Error) -> SendFailure {
    if let Some(code) = error.status() {
        return SendFailure {
            reason: format!("smtp {code}"),
            permanent: error.is_permanent(),
        };
    }
    // The classes lettre tells apart; a client error is one of ours (no authentication
    // mechanism in common, for example), a response error a reply that is not SMTP.
    let class = if error.is_timeout() {
        "timeout"
    } else if error.is_tls() {
        "tls"
    } else if error.is_client() {
        "client"
    } else if error.is_response() {
        "protocol"
    } else {
        "connection"
    };
    SendFailure {
        reason: class.into(),
        permanent: false,
    }
}

/// Writes `{email_id}.eml` in `dir` (0700) as 0600: to a temporary name, synced, then renamed,
/// so that a crash leaves either the whole mail or none.
fn write_eml(dir: &Path, email_id: Uuid, bytes: &[u8]) -> std::io::Result<PathBuf> {
    data_dir::create_private_dir(dir)?;
    let path = dir.join(format!("{email_id}.eml"));
    let temporary = dir.join(format!(".{email_id}.eml.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(data_dir::FILE_MODE)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::Secret;

    fn config(url: Option<&str>, from: Option<&str>) -> MailConfig {
        MailConfig {
            smtp_url: url.map(|url| Secret::new(url.to_owned())),
            smtp_from: from.map(str::to_owned),
            smtp_retry_max_seconds: 300,
        }
    }

    #[test]
    fn the_smtp_url_takes_the_three_tls_modes_with_credentials_and_refuses_others() {
        let dir = Path::new("/nonexistent");
        for url in [
            "smtp://mail.example:2525",
            "smtp://user:p%40ss@mail.example:587?tls=required",
            "smtps://user:pass@mail.example",
        ] {
            let settings =
                MailSettings::from_config(&config(Some(url), None), "https://id.example", dir)
                    .unwrap();
            assert!(matches!(settings.transport, Transport::Smtp(_)), "{url}");
        }
        for url in [
            "http://mail.example",
            "smtp://mail.example?tls=sometimes",
            "nonsense",
        ] {
            let error =
                MailSettings::from_config(&config(Some(url), None), "https://id.example", dir)
                    .unwrap_err();
            assert!(error.contains("TESSERA_SMTP_URL"), "{error}");
            assert!(
                !error.contains("mail.example"),
                "the URL may hold a password: {error}"
            );
        }
        assert!(
            MailSettings::from_config(
                &config(None, Some("not an address")),
                "https://id.example",
                dir
            )
            .is_err()
        );
    }

    #[test]
    fn without_smtp_mail_goes_to_the_outbox_directory_as_private_eml_files() {
        let data = tempfile::tempdir().unwrap();
        let settings =
            MailSettings::from_config(&config(None, None), "https://id.example:8443", data.path())
                .unwrap();
        assert_eq!(settings.from.email.to_string(), "no-reply@id.example");
        let id = Uuid::from_u128(7);
        assert_eq!(
            settings.message_id(id),
            "<00000000-0000-0000-0000-000000000007@id.example>"
        );
        let Transport::Outbox(dir) = &settings.transport else {
            panic!("{:?}", settings.transport);
        };
        let path = write_eml(dir, id, b"Subject: hi\r\n\r\nhello").unwrap();
        assert_eq!(path, data.path().join("outbox").join(format!("{id}.eml")));
        assert_eq!(std::fs::read(&path).unwrap(), b"Subject: hi\r\n\r\nhello");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }
}
