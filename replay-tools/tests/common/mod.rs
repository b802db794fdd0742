//! Shared by the replay-tools tests: a command service over a real log (SQLite in a temp dir,
//! or a throwaway PostgreSQL), with a fixed clock the tests move by hand.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use tessera_commands::{CommandService, FixedClock, IdGen, SystemIds};
use tessera_crypto::{Crypto, MasterKey};
use tessera_event_log::{Backend, EventLog, LogConfig};
use tessera_event_schemas::events::{GrantType, TokenIssuedV2};
use tessera_event_schemas::{Actor, ActorKind, EventMetadata, Timestamp};

/// 2027-01-15T08:00:00Z.
pub const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

pub enum Store {
    Sqlite(tempfile::TempDir),
    Postgres(tessera_test_support::PgDatabase, tempfile::TempDir),
}

impl Store {
    pub async fn fresh(postgres: bool) -> Self {
        if postgres {
            let db = tokio::task::spawn_blocking(tessera_test_support::fresh_database)
                .await
                .unwrap();
            Store::Postgres(db, tempfile::tempdir().unwrap())
        } else {
            Store::Sqlite(tempfile::tempdir().unwrap())
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(dir) => Backend::Sqlite {
                path: dir.path().join("events.db"),
            },
            Store::Postgres(db, _) => Backend::Postgres {
                url: db.url.clone(),
            },
        }
    }

    pub fn data_dir(&self) -> &Path {
        match self {
            Store::Sqlite(dir) | Store::Postgres(_, dir) => dir.path(),
        }
    }

    pub fn database_url(&self) -> Option<&str> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(db, _) => Some(&db.url),
        }
    }

    /// `tessera-replay <args> --data-dir <dir>` (and the database URL on PostgreSQL).
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-replay"));
        command
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .env_remove("TESSERA_DATABASE_URL")
            .env_remove("TESSERA_DATA_DIR");
        if let Some(url) = self.database_url() {
            command.env("TESSERA_DATABASE_URL", url);
        }
        command.output().unwrap()
    }
}

pub struct Harness {
    pub log: Arc<dyn EventLog>,
    pub clock: Arc<FixedClock>,
    pub service: CommandService,
}

impl Harness {
    pub async fn new(store: &Store) -> Self {
        let log = tessera_event_log::open(LogConfig::new(store.backend()))
            .await
            .unwrap();
        let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([3; 32])).unwrap());
        let clock = Arc::new(FixedClock::new(NOW));
        let service = CommandService::new(log.clone(), crypto, clock.clone(), Arc::new(SystemIds));
        Self {
            log,
            clock,
            service,
        }
    }

    pub async fn head(&self) -> u64 {
        self.log.head_position().await.unwrap()
    }

    pub fn now(&self) -> Timestamp {
        use tessera_commands::Clock;
        self.clock.now()
    }
}

/// Metadata as an administrator's request would carry it.
pub fn meta(correlation_id: &str) -> EventMetadata {
    EventMetadata {
        actor: Actor {
            kind: ActorKind::User,
            id: "u-1".to_owned(),
            name: Some("Alice Admin".to_owned()),
        },
        correlation_id: correlation_id.to_owned(),
        causation_id: None,
        source_ip: Some("10.0.0.1".to_owned()),
        user_agent: None,
    }
}

/// A token issued at `at`, valid for `ttl_secs`, as the token endpoint records it.
#[derive(Clone)]
pub struct Token {
    pub jti: uuid::Uuid,
    pub issued: TokenIssuedV2,
    pub at: Timestamp,
    pub expires_at: Timestamp,
}

/// A token issued now (`now`), valid for `ttl_secs`: `token.issued` v2, recorded with
/// `record_token_issued(meta, tenant, client_id, token.issued, token.at)`.
pub fn token(kid: &str, now: Timestamp, ttl_secs: i64) -> Token {
    let issued = TokenIssuedV2 {
        jti: SystemIds.new_id(),
        grant_type: GrantType::ClientCredentials,
        scopes: vec!["read".to_owned()],
        audience: Vec::new(),
        kid: kid.to_owned(),
        ttl_secs: u32::try_from(ttl_secs).unwrap(),
    };
    Token {
        jti: issued.jti,
        expires_at: issued.expires_at(now),
        at: now,
        issued,
    }
}
