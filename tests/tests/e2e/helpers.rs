//! `spawn_app()` and friends: start the real server, wait for it, talk to it, restart it, kill it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tessera_test_support::PgDatabase;

/// The platform admin key the tests bootstrap with (`TESSERA_BOOTSTRAP_ADMIN_KEY`).
pub const ADMIN_KEY: &str = "tsr_e2e-bootstrap-admin-key-0123456789abcdefABCDEF";
/// Master key for PostgreSQL runs (required there); 32 bytes, hex.
pub const PG_MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Embedded,
    Postgres,
}

/// A running `tessera serve` child process and what it needs to be restarted.
pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    pub client: reqwest::Client,
    data_dir: tempfile::TempDir,
    database: Option<PgDatabase>,
    /// Another node's database this server shares (see [`TestServer::spawn_node`]); the
    /// first node owns it.
    shared_database: Option<String>,
    /// Whether to pass `TESSERA_BOOTSTRAP_ADMIN_KEY` (otherwise the server generates one).
    preset_admin_key: bool,
    /// Everything the current and previous runs printed on stdout.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Everything the current and previous runs logged on stderr (also passed on to the test's
    /// own stderr).
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Extra environment for `serve` (e.g. `TESSERA_KAFKA_BROKERS`).
    env: Vec<(String, String)>,
}

pub async fn spawn_app(store: Store) -> TestServer {
    spawn(store, true, Vec::new()).await
}

/// A server started with extra environment variables.
#[allow(dead_code)]
pub async fn spawn_app_with_env(store: Store, env: &[(&str, &str)]) -> TestServer {
    let env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    spawn(store, true, env).await
}

/// A server that must generate its own bootstrap admin key.
pub async fn spawn_app_generating_its_admin_key() -> TestServer {
    spawn(Store::Embedded, false, Vec::new()).await
}

async fn spawn(store: Store, preset_admin_key: bool, env: Vec<(String, String)>) -> TestServer {
    let database = match store {
        Store::Embedded => None,
        Store::Postgres => Some(
            tokio::task::spawn_blocking(tessera_test_support::fresh_database)
                .await
                .unwrap(),
        ),
    };
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = TestServer {
        child: None,
        base: String::new(),
        client: reqwest::Client::new(),
        data_dir,
        database,
        shared_database: None,
        preset_admin_key,
        stdout: Default::default(),
        stderr: Default::default(),
        env,
    };
    server.start().await;
    server
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tessera-under-test"))
}

impl TestServer {
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Environment for the binary: the same for the server and offline subcommands.
    pub fn command(&self) -> Command {
        self.command_of(binary())
    }

    /// Runs `tessera-replay` with `args` against this server's storage, with the same
    /// environment as the server; returns whether it succeeded, and its stdout.
    #[allow(dead_code)]
    pub fn replay(&self, args: &[&str]) -> (bool, String) {
        let output = self
            .command_of(PathBuf::from(env!(
                "CARGO_BIN_EXE_tessera-replay-under-test"
            )))
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// The PostgreSQL database of a server started on it.
    #[allow(dead_code)]
    pub fn database_url(&self) -> Option<&str> {
        self.database
            .as_ref()
            .map(|db| db.url.as_str())
            .or(self.shared_database.as_deref())
    }

    /// Another node on this server's PostgreSQL database: a second `tessera serve` process
    /// with a data directory of its own and `env` added. The database lives as long as this
    /// server, which must outlive the node.
    #[allow(dead_code)]
    pub async fn spawn_node(&self, env: &[(&str, &str)]) -> TestServer {
        let url = self
            .database_url()
            .expect("nodes share a PostgreSQL database");
        let mut node = TestServer {
            child: None,
            base: String::new(),
            client: reqwest::Client::new(),
            data_dir: tempfile::tempdir().unwrap(),
            database: None,
            shared_database: Some(url.to_owned()),
            preset_admin_key: self.preset_admin_key,
            stdout: Default::default(),
            stderr: Default::default(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        node.start().await;
        node
    }

    fn command_of(&self, binary: PathBuf) -> Command {
        let mut command = Command::new(binary);
        command
            .env_remove("TESSERA_DATABASE_URL")
            .env_remove("TESSERA_MASTER_KEY")
            .env("TESSERA_DATA_DIR", self.data_dir.path())
            .env("TESSERA_LOG", "warn");
        if let Some(url) = self.database_url() {
            command
                .env("TESSERA_DATABASE_URL", url)
                .env("TESSERA_MASTER_KEY", PG_MASTER_KEY);
        }
        command
    }

    /// Starts the server on port 0 and waits for its "listening" line.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = self.command();
        // A test that needs a known port (a browser's origin) passes TESSERA_LISTEN.
        let listen = self
            .env
            .iter()
            .find(|(key, _)| key == "TESSERA_LISTEN")
            .map_or("127.0.0.1:0", |(_, value)| value.as_str())
            .to_owned();
        command
            .args(["serve", "--listen", &listen])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.preset_admin_key {
            command.env("TESSERA_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY);
        }
        let mut child = command.spawn().expect("spawn tessera");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let lines = self.stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("tessera listening on ") {
                    let _ = tx.send(url.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let logged = self.stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                logged.lock().unwrap().push(line);
            }
        });
        let base = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("server did not report that it was listening within 60 s");
        self.base = base;
        self.child = Some(child);
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let exit = tokio::task::spawn_blocking(move || child.wait())
                .await
                .unwrap()
                .unwrap();
            assert!(exit.success(), "server exited with {exit}");
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{}", self.base, path));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path, Some(ADMIN_KEY))
    }

    /// Sends and returns status and JSON body (Null when the body is not JSON).
    pub async fn send(&self, request: RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn create_tenant(&self, slug: &str) -> Value {
        let (status, body) = self
            .send(self.admin(Method::POST, "/v1/tenants").json(&json!({
                "slug": slug,
                "name": format!("Tenant {slug}"),
            })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// A tenant `slug` and a confidential client_credentials client of it allowed `read`:
    /// (tenant id, client id, client secret).
    pub async fn tenant_and_client(&self, slug: &str) -> (String, String, String) {
        let tenant_id = self.create_tenant(slug).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, created) = self
            .send(
                self.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/clients"))
                    .json(&json!({"name": "machine", "allowed_scopes": ["read"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        (
            tenant_id,
            created["client"]["client_id"].as_str().unwrap().to_owned(),
            created["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.request(Method::GET, "/metrics", None).send().await;
        response.unwrap().text().await.unwrap()
    }

    /// The log's head position, from `/readyz`.
    pub async fn log_head(&self) -> u64 {
        let (status, body) = self.send(self.request(Method::GET, "/readyz", None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["log_head"].as_u64().unwrap()
    }

    /// Runs `tessera check-read-models` against this server's storage (server stopped).
    pub fn check_read_models(&self) -> (bool, String) {
        let output = self.command().arg("check-read-models").output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

impl TestServer {
    /// Runs `tessera rebuild-read-models` against this server's storage (server stopped).
    pub fn rebuild_read_models(&self) -> String {
        let output = self.command().arg("rebuild-read-models").output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// Helpers for the OAuth and API key tests.
impl TestServer {
    /// Creates a tenant from a whole request body (e.g. with `signing_alg`).
    pub async fn create_tenant_with(&self, body: Value) -> Value {
        let (status, created) = self
            .send(self.admin(Method::POST, "/v1/tenants").json(&body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    /// Issues an API key for a tenant with the platform admin key; returns the 201 body
    /// (`api_key`, `plaintext`, `warning`).
    pub async fn create_api_key(&self, tenant_id: &str, body: Value) -> Value {
        let (status, created) = self
            .send(
                self.admin(Method::POST, &format!("/v1/tenants/{tenant_id}/api-keys"))
                    .json(&body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    /// The issuer URL of a tenant: `{base}/t/{slug}`.
    pub fn issuer(&self, slug: &str) -> String {
        format!("{}/t/{slug}", self.base)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` until it returns true or `deadline` passes.
#[allow(dead_code)]
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Runs the same async test body against both stores.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name($crate::helpers::Store::Embedded).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Store::Postgres).await;
            }
        }
    };
}

/// Every event in the server's log, read through the log library (server stopped).
pub async fn read_log(app: &TestServer) -> Vec<tessera_event_schemas::RecordedEvent> {
    use tessera_event_log::{Backend, LogConfig};
    let backend = match &app.database {
        Some(db) => Backend::Postgres {
            url: db.url.clone(),
        },
        None => Backend::Sqlite {
            path: app.data_dir().join("events.db"),
        },
    };
    let log = tessera_event_log::open(LogConfig::new(backend))
        .await
        .unwrap();
    let events = log.read_all(0, 100_000).await.unwrap();
    log.close().await;
    events
}

/// A command service on the server's own storage, as a second node would have it (server
/// stopped on SQLite, which one process writes at a time): for what no HTTP route does yet,
/// such as a person setting up their second factors. Passkeys are registered with the server's
/// public URL. Close the returned log before starting the server again.
#[allow(dead_code)]
pub async fn offline_commands(
    app: &TestServer,
) -> (
    tessera_commands::CommandService,
    std::sync::Arc<dyn tessera_event_log::EventLog>,
) {
    use std::sync::Arc;
    use tessera_api::config::{Secret, StorageConfig};
    use tessera_commands::{CommandService, People, RelyingParty, SystemClock, SystemIds};
    use tessera_crypto::{Argon2Config, Passwords, PersonalKeys};
    let config = StorageConfig {
        data_dir: app.data_dir().to_owned(),
        database_url: app.database.as_ref().map(|db| Secret::new(db.url.clone())),
        master_key: app
            .database
            .as_ref()
            .map(|_| Secret::new(PG_MASTER_KEY.to_owned())),
        // The server's defaults.
        wal_limit_mb: 64,
        audit_retention_days: None,
        audit_retention_secs: None,
        log_listen: true,
        tenant_isolation: true,
    };
    let storage = tessera_api::server::open_storage(&config).await.unwrap();
    let argon2 = Argon2Config {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    let service = CommandService::new(
        storage.log.clone(),
        storage.crypto.clone(),
        Arc::new(SystemClock),
        Arc::new(SystemIds),
    )
    .with_people(People {
        keys: Arc::new(PersonalKeys::new(storage.crypto.clone(), storage.keys)),
        passwords: Passwords::new(argon2, 1).unwrap(),
    })
    .with_relying_party(RelyingParty::from_public_url(&app.base).unwrap());
    (service, storage.log)
}
