//! Server configuration: defaults, then command-line flags, then `TESSERA_*` environment variables
//! (clap resolves flag-or-env for each setting).
//!
//! Secrets are wrapped in [`Secret`] so that no `Debug` or log line can print them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

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

    /// How often scheduled lifecycle transitions (cancellation at period end) are applied.
    #[arg(long, env = "TESSERA_LIFECYCLE_INTERVAL_SECS", default_value_t = 30)]
    pub lifecycle_interval_secs: u64,
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
}
