//! Server configuration: defaults, then command-line flags, then `TESSERA_*` environment variables
//! (clap resolves flag-or-env for each setting).
//!
//! Secrets are wrapped in [`Secret`] so that no `Debug` or log line can print them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use std::time::Duration;

use tessera_projections::retention::RetentionClock;
use tessera_projections::{AuditRetention, KafkaProperties, KafkaSettings, TopicCategory};

/// A value that must never be printed.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// `tessera serve` settings.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub storage: StorageConfig,

    /// Platform admin key to create at bootstrap instead of a generated one (for automation).
    #[arg(long, env = "TESSERA_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<Secret>,

    /// How long a write waits for read models to reflect it before answering 503.
    #[arg(
        long,
        env = "TESSERA_READ_YOUR_WRITES_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub read_your_writes_timeout_ms: u64,

    /// The externally reachable base URL; each tenant's issuer is `{public_url}/t/{slug}`.
    /// Must be https unless the host is localhost or a loopback address. Defaults to
    /// `http://` and the listen address (`localhost` when listening on all interfaces).
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How often aggregated API key usage is recorded on the log. A crash loses at most the
    /// uses of this last interval; a clean shutdown loses none.
    #[arg(long, env = "TESSERA_USAGE_FLUSH_SECS", default_value_t = 10)]
    pub usage_flush_secs: u64,

    /// How long a refresh token just rotated out still answers, with the family's current
    /// token, so that concurrent refreshes of one token share one successor (seconds).
    #[arg(long, env = "TESSERA_REFRESH_GRACE_SECS", default_value_t = tessera_commands::DEFAULT_REFRESH_GRACE_SECS)]
    pub refresh_grace_secs: u32,

    /// How often scheduled lifecycle transitions (cancellation at period end) are applied.
    #[arg(long, env = "TESSERA_LIFECYCLE_INTERVAL_SECS", default_value_t = 30)]
    pub lifecycle_interval_secs: u64,

    /// How often the last use of sessions is recorded on the log (`session.seen`). A crash
    /// loses at most this interval's uses (a session may then expire that much early).
    #[arg(long, env = "TESSERA_SESSION_USE_FLUSH_SECS", default_value_t = 60)]
    pub session_use_flush_secs: u64,

    /// How long before its expiry an OAuth connection's token is refreshed (seconds; never
    /// before half its lifetime has passed).
    #[arg(
        long,
        env = "TESSERA_CREDENTIAL_REFRESH_LEAD_SECS",
        default_value_t = 900
    )]
    pub credential_refresh_lead_secs: i64,

    /// How often the refresh scheduler looks for connections that are due (milliseconds).
    #[arg(
        long,
        env = "TESSERA_CREDENTIAL_REFRESH_TICK_MS",
        default_value_t = 1000
    )]
    pub credential_refresh_tick_ms: u64,

    #[command(flatten)]
    pub kafka: KafkaConfig,

    #[command(flatten)]
    pub mail: MailConfig,

    #[command(flatten)]
    pub argon2: Argon2Settings,

    #[command(flatten)]
    pub sign_in: SignInLimits,

    #[command(flatten)]
    pub federation: FederationSettings,

    #[command(flatten)]
    pub provider_keys: ProviderKeySettings,
}

/// Tenants' LLM provider keys (issue 20, seed 002).
#[derive(Args, Clone, Debug)]
pub struct ProviderKeySettings {
    /// Strict mode: a tenant without its own provider key gets an error, never the platform's
    /// default key. Also read from seed 002's `TENANT_CREDENTIALS_ENABLED` when not set.
    #[arg(long, env = "TESSERA_TENANT_CREDENTIALS_STRICT")]
    pub tenant_credentials_strict: Option<bool>,
}

impl ProviderKeySettings {
    /// Strict mode, falling back on seed 002's name; off by default (seed 002's default).
    pub fn strict(&self) -> Result<bool, String> {
        match (
            self.tenant_credentials_strict,
            std::env::var("TENANT_CREDENTIALS_ENABLED").ok(),
        ) {
            (Some(strict), _) => Ok(strict),
            (None, Some(text)) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err("TENANT_CREDENTIALS_ENABLED must be true or false".to_owned()),
            },
            (None, None) => Ok(false),
        }
    }
}

/// Federated sign-in (issue 19). Each setting also takes seed 002's name without the
/// `TESSERA_` prefix (`OIDC_STATE_TTL_SECONDS`, ...) when the prefixed one is not set.
#[derive(Args, Clone, Debug)]
pub struct FederationSettings {
    /// How long a federated sign-in's state works (seconds; allow for slow MFA upstream).
    #[arg(long, env = "TESSERA_OIDC_STATE_TTL_SECONDS")]
    pub oidc_state_ttl_seconds: Option<i64>,
    /// How long the old redirect URI keeps working after a provider's origin or path changes.
    #[arg(long, env = "TESSERA_OIDC_REDIRECT_GRACE_PERIOD_SECONDS")]
    pub oidc_redirect_grace_period_seconds: Option<i64>,
    /// The callback must arrive at the very path the sign-in was started for.
    #[arg(long, env = "TESSERA_STRICT_OIDC_REDIRECT_VALIDATION")]
    pub strict_oidc_redirect_validation: Option<bool>,
}

impl FederationSettings {
    /// The settings, falling back on seed 002's unprefixed names, then on its defaults.
    pub fn resolve(&self) -> Result<crate::federation::FederationConfig, String> {
        let seed = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |value: Option<i64>, name: &str, default: i64| -> Result<i64, String> {
            let value = match (value, seed(name)) {
                (Some(value), _) => value,
                (None, Some(text)) => text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name} must be a number of seconds"))?,
                (None, None) => default,
            };
            if value <= 0 {
                return Err(format!("{name} must be positive"));
            }
            Ok(value)
        };
        let strict = match (
            self.strict_oidc_redirect_validation,
            seed("STRICT_OIDC_REDIRECT_VALIDATION"),
        ) {
            (Some(value), _) => value,
            (None, Some(text)) => !text.trim().eq_ignore_ascii_case("false"),
            (None, None) => true,
        };
        Ok(crate::federation::FederationConfig {
            state_ttl_seconds: number(self.oidc_state_ttl_seconds, "OIDC_STATE_TTL_SECONDS", 600)?,
            redirect_grace_seconds: number(
                self.oidc_redirect_grace_period_seconds,
                "OIDC_REDIRECT_GRACE_PERIOD_SECONDS",
                600,
            )?,
            strict_redirect_validation: strict,
        })
    }
}

/// Mail delivery (the outbox, ADR 0004). Without `TESSERA_SMTP_URL` every mail is written as
/// `<data-dir>/outbox/{email_id}.eml` (0600) and its path logged.
#[derive(Args, Clone, Debug)]
pub struct MailConfig {
    /// The SMTP server: `smtp://host:port` (STARTTLS when the server offers it),
    /// `smtp://host:port?tls=required` (STARTTLS required), `smtps://host:port` (implicit TLS),
    /// with `user:password@` for authentication.
    #[arg(long, env = "TESSERA_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// The sender: an address, or `Name <address>`. Without a name, the tenant's display name
    /// is shown. Default: `no-reply@` the public URL's host.
    #[arg(long, env = "TESSERA_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// The longest wait between two attempts at a mail (seconds); waits double from 1 second
    /// up to it, for 24 hours, after which the mail fails for good.
    #[arg(long, env = "TESSERA_SMTP_RETRY_MAX_SECONDS", default_value_t = 300)]
    pub smtp_retry_max_seconds: u64,
}

/// Sign-in rate limits, per minute, in this process's memory (see `rate_limit`).
#[derive(Args, Clone, Debug)]
pub struct SignInLimits {
    /// Attempts per minute for one address from one source address (seed 001: 5); 0 for no
    /// limit.
    #[arg(
        long,
        env = "TESSERA_SIGN_IN_ATTEMPTS_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub sign_in_attempts_per_account: u32,
    /// Attempts per minute from one source address, whatever the address typed; 0 for no
    /// limit.
    #[arg(
        long,
        env = "TESSERA_SIGN_IN_ATTEMPTS_PER_SOURCE",
        default_value_t = 30
    )]
    pub sign_in_attempts_per_source: u32,
}

/// The cost of password hashing (Argon2id). The defaults are OWASP's: 19 MiB, 2 passes, 1 lane.
/// Hashes carry their parameters, so changing these leaves existing passwords verifiable.
#[derive(Args, Clone, Debug)]
pub struct Argon2Settings {
    /// Memory per hash, in KiB.
    #[arg(long, env = "TESSERA_ARGON2_MEMORY_KIB", default_value_t = 19 * 1024)]
    pub argon2_memory_kib: u32,
    /// Passes over the memory.
    #[arg(long, env = "TESSERA_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// Lanes.
    #[arg(long, env = "TESSERA_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,
}

impl Argon2Settings {
    pub fn config(&self) -> tessera_crypto::Argon2Config {
        tessera_crypto::Argon2Config {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }
}

/// The Kafka audit publisher. Nothing about Kafka runs unless `TESSERA_KAFKA_BROKERS` is set.
#[derive(Args, Clone, Debug)]
pub struct KafkaConfig {
    /// Kafka bootstrap servers (`host:port,...`); enables publishing every event to Kafka.
    #[arg(long, env = "TESSERA_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// The topic that carries every event.
    #[arg(long, env = "TESSERA_KAFKA_TOPIC", default_value = tessera_projections::kafka::DEFAULT_TOPIC)]
    pub kafka_topic: String,

    /// Categories that also get a topic `tessera.audit.{category}.v1`: any of `tenants`,
    /// `oauth`, `security`, `products`, `people`, comma-separated; empty for none.
    #[arg(
        long,
        env = "TESSERA_KAFKA_CATEGORY_TOPICS",
        default_value = "tenants,oauth,security,products,people"
    )]
    pub kafka_category_topics: String,

    /// Create missing topics at start.
    #[arg(long, env = "TESSERA_KAFKA_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub kafka_create_topics: bool,

    /// Partitions of topics Tessera creates.
    #[arg(long, env = "TESSERA_KAFKA_PARTITIONS", default_value_t = 6)]
    pub kafka_partitions: i32,

    /// Replication factor of topics Tessera creates.
    #[arg(long, env = "TESSERA_KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i32,

    /// How long a message may stay unacknowledged before the publisher starts over from its
    /// checkpoint with a new producer.
    #[arg(
        long,
        env = "TESSERA_KAFKA_DELIVERY_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub kafka_delivery_timeout_ms: u64,

    /// librdkafka properties for every Kafka client, `key=value` separated by commas (`\,` for
    /// a comma inside a value), e.g. `security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-256,
    /// sasl.username=...,sasl.password=...`. They override the file's.
    #[arg(long, env = "TESSERA_KAFKA_PROPERTIES", hide_env_values = true)]
    pub kafka_properties: Option<Secret>,

    /// A Java properties file of librdkafka properties (the form of Kafka's
    /// `client.properties`), read at start.
    #[arg(long, env = "TESSERA_KAFKA_PROPERTIES_FILE")]
    pub kafka_properties_file: Option<PathBuf>,
}

impl KafkaConfig {
    /// The publisher's settings, or `None` when no brokers are configured.
    pub fn settings(&self) -> Result<Option<KafkaSettings>, String> {
        let Some(brokers) = self.kafka_brokers.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if brokers.is_empty() {
            return Ok(None);
        }
        let categories = self
            .kafka_category_topics
            .split(',')
            .filter(|name| !name.trim().is_empty())
            .map(|name| {
                TopicCategory::parse(name).ok_or_else(|| {
                    format!(
                        "TESSERA_KAFKA_CATEGORY_TOPICS: unknown category {:?} (known: tenants, oauth, security, products, people)",
                        name.trim()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.kafka_topic.trim().is_empty() {
            return Err("TESSERA_KAFKA_TOPIC must not be empty".to_owned());
        }
        if self.kafka_partitions < 1 || self.kafka_replication_factor < 1 {
            return Err(
                "TESSERA_KAFKA_PARTITIONS and TESSERA_KAFKA_REPLICATION_FACTOR must be at least 1"
                    .to_owned(),
            );
        }
        let mut settings = KafkaSettings::new(brokers);
        settings.topic = self.kafka_topic.trim().to_owned();
        settings.categories = categories;
        settings.create_topics = self.kafka_create_topics;
        settings.partitions = self.kafka_partitions;
        settings.replication_factor = self.kafka_replication_factor;
        settings.delivery_timeout =
            std::time::Duration::from_millis(self.kafka_delivery_timeout_ms.max(1000));
        settings.properties = self.properties()?;
        settings.check_client()?;
        Ok(Some(settings))
    }

    /// The pass-through properties: the file's, then the variable's over them, each checked
    /// against librdkafka with errors that name their source and never a secret's value.
    fn properties(&self) -> Result<KafkaProperties, String> {
        let mut properties = KafkaProperties::new();
        if let Some(path) = &self.kafka_properties_file {
            let name = format!("TESSERA_KAFKA_PROPERTIES_FILE {}", path.display());
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("{name}: cannot be read: {error}"))?;
            let from_file =
                KafkaProperties::parse_java(&text, &name).map_err(|error| error.to_string())?;
            from_file
                .validate(&name)
                .map_err(|error| error.to_string())?;
            properties.extend(from_file);
        }
        if let Some(list) = &self.kafka_properties {
            let name = "TESSERA_KAFKA_PROPERTIES";
            let from_env =
                KafkaProperties::parse_list(list.expose(), name).map_err(|e| e.to_string())?;
            from_env.validate(name).map_err(|error| error.to_string())?;
            properties.extend(from_env);
        }
        Ok(properties)
    }
}

/// Whether cookies for `public_url` can be `Secure` (with the `__Host-` prefix): anything but
/// plain http, which [`public_url`] allows only on loopback.
pub fn secure_cookies(public_url: &str) -> bool {
    !public_url.starts_with("http://")
}

/// The public base URL: `configured` (validated, without a trailing slash), or one derived
/// from the address actually listened on.
pub fn public_url(configured: Option<&str>, listening: SocketAddr) -> Result<String, String> {
    let Some(configured) = configured.map(str::trim).filter(|u| !u.is_empty()) else {
        let host = if listening.ip().is_unspecified() {
            "localhost".to_owned()
        } else {
            listening.ip().to_string()
        };
        let host = if listening.is_ipv6() && host != "localhost" {
            format!("[{host}]")
        } else {
            host
        };
        return Ok(format!("http://{host}:{}", listening.port()));
    };
    let url = configured.trim_end_matches('/');
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("TESSERA_PUBLIC_URL {url:?} is not an absolute URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.contains(['?', '#']) {
        return Err(format!(
            "TESSERA_PUBLIC_URL {url:?} must be scheme://host[:port][/path] without user info, query or fragment"
        ));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => Ok(url.to_owned()),
        "http" if loopback => Ok(url.to_owned()),
        "http" => Err(format!(
            "TESSERA_PUBLIC_URL {url:?} must use https (plain http is allowed only for localhost)"
        )),
        other => Err(format!(
            "TESSERA_PUBLIC_URL scheme {other:?} is not http or https"
        )),
    }
}

/// Where the log, read models and master key live; shared by every subcommand.
#[derive(Args, Clone, Debug)]
pub struct StorageConfig {
    /// Directory for the embedded SQLite files, the generated master key and the bootstrap key.
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// PostgreSQL URL; when set, the log and read models live there instead of SQLite.
    #[arg(long, env = "TESSERA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// 32-byte master key (base64 or hex). Required with PostgreSQL; generated into the data
    /// directory for the embedded default when unset.
    #[arg(long, env = "TESSERA_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<Secret>,

    /// Embedded SQLite only: the size in MiB past which a WAL file (the log's, the read
    /// models') is checkpointed and truncated, and which a restarted WAL is cut back to.
    #[arg(long, env = "TESSERA_WAL_LIMIT_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub wal_limit_mb: u64,

    /// Days the audit read model keeps a row; unlimited when unset. Older rows leave
    /// `rm_audit` in small batches and a rebuild does not bring them back; the log keeps every
    /// event, so `tessera-replay` still answers for any period.
    #[arg(long, env = "TESSERA_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_retention_days: Option<u32>,

    /// Tests only: the audit retention in seconds, instead of days (the server runs on the wall
    /// clock, so a test cannot wait days or back-date what it writes).
    #[arg(long, env = "TESSERA_AUDIT_RETENTION_SECS", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_retention_secs: Option<u64>,

    /// Tests only: `false` keeps a PostgreSQL node from listening for other nodes' commits,
    /// so that it learns of them only by polling, as when notifications are lost; a test
    /// shows that its answers stay right (see `api::catch_up`).
    #[arg(long, env = "TESSERA_LOG_LISTEN", hide = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub log_listen: bool,

    /// PostgreSQL only: run each tenant's read-model queries under row-level security, as a
    /// role that sees that tenant's rows only (defence in depth behind the queries' filters;
    /// README "Tenant isolation in the database"). `false` runs them as the connecting user.
    #[arg(long, env = "TESSERA_TENANT_ISOLATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub tenant_isolation: bool,
}

impl StorageConfig {
    /// [`StorageConfig::wal_limit_mb`] in bytes.
    pub fn wal_limit_bytes(&self) -> u64 {
        self.wal_limit_mb.saturating_mul(1024 * 1024)
    }

    /// How long audit rows are kept (`None`: for ever), judged by `clock`.
    pub fn audit_retention(&self, clock: RetentionClock) -> Option<AuditRetention> {
        let seconds = self.audit_retention_secs.or_else(|| {
            self.audit_retention_days
                .map(|days| u64::from(days) * 86_400)
        })?;
        Some(AuditRetention::new(Duration::from_secs(seconds), clock))
    }
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn public_url_defaults_to_the_listen_address_and_must_be_https_off_loopback() {
        let addr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(public_url(None, addr).unwrap(), "http://127.0.0.1:8080");
        let any = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(public_url(None, any).unwrap(), "http://localhost:9000");
        assert_eq!(
            public_url(Some("https://id.example.com/"), addr).unwrap(),
            "https://id.example.com"
        );
        assert_eq!(
            public_url(Some("http://localhost:3000/auth"), addr).unwrap(),
            "http://localhost:3000/auth"
        );
        assert_eq!(
            public_url(Some("http://[::1]:3000"), addr).unwrap(),
            "http://[::1]:3000"
        );
        assert!(public_url(Some("http://id.example.com"), addr).is_err());
        assert!(public_url(Some("ftp://localhost"), addr).is_err());
        assert!(public_url(Some("id.example.com"), addr).is_err());
        assert!(public_url(Some("https://u:p@id.example.com"), addr).is_err());
        assert!(public_url(Some("https://id.example.com/?x=1"), addr).is_err());
    }
}
