//! Test helpers shared by the workspace: a throwaway PostgreSQL database per call, a real
//! Kafka-protocol broker ([`kafka::Broker`]), free ports, and the person's side of second
//! factors: an authenticator app's codes ([`totp`]) and a software WebAuthn authenticator
//! ([`webauthn::SoftAuthenticator`]).
//!
//! [`fresh_database`] either creates a uniquely named database on the server named by
//! `TESSERA_TEST_DATABASE_URL`, or starts a private PostgreSQL cluster from the `initdb`,
//! `pg_ctl` and `postgres` binaries on `PATH`. A cluster is initialised once per PostgreSQL
//! version into a template directory and copied for every call, because `initdb` takes seconds
//! and a copy takes milliseconds. Dropping the returned [`PgDatabase`] stops the server (or drops
//! the database) and deletes its files.
//!
//! This crate is for tests and benchmarks only: it panics freely and must never become a
//! runtime dependency. It depends on no other Tessera crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

pub mod kafka;
pub mod totp;
pub mod webauthn;

/// The variable naming an existing server to create test databases on.
pub const DATABASE_URL_VAR: &str = "TESSERA_TEST_DATABASE_URL";

const HOW_TO_PROVIDE: &str = "tests need PostgreSQL: install the PostgreSQL 15 server binaries \
     (initdb, pg_ctl, postgres and pg_isready on PATH, e.g. `apt-get install postgresql-15` and \
     add /usr/lib/postgresql/15/bin to PATH) or set TESSERA_TEST_DATABASE_URL to a server URL \
     such as postgres://postgres@127.0.0.1:5432/postgres";

/// How long a fresh cluster may take to accept connections before we give up on it.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// A throwaway database. Dropping it stops its server or drops the database.
pub struct PgDatabase {
    /// A connection URL for the database, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
    pub url: String,
    owner: Owner,
}

enum Owner {
    /// A database created on a server someone else runs.
    External { server_url: String, name: String },
    /// A cluster we started; the temp dir holds its data directory and socket.
    Cluster {
        child: Child,
        data_dir: PathBuf,
        run_as: Option<String>,
        _dir: tempfile::TempDir,
    },
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("url", &self.url)
            .finish()
    }
}

/// A fresh, empty database. Panics with instructions when PostgreSQL is not available.
pub fn fresh_database() -> PgDatabase {
    match try_fresh_database() {
        Ok(db) => db,
        Err(message) => panic!("{message}"),
    }
}

/// A fresh, empty database, or an error that says how to provide PostgreSQL.
pub fn try_fresh_database() -> Result<PgDatabase, String> {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(server_url) if !server_url.trim().is_empty() => external_database(server_url.trim()),
        _ => start_cluster(),
    }
}

/// A TCP port that was free a moment ago. Another process may take it before the caller binds
/// it, so callers that can should bind port 0 themselves instead.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

fn external_database(server_url: &str) -> Result<PgDatabase, String> {
    #[allow(
        clippy::disallowed_methods,
        reason = "a throwaway database name must differ from every other test process's"
    )]
    let name = format!("tessera_test_{}", Uuid::now_v7().simple());
    run_psql(server_url, &format!("CREATE DATABASE {name}"))?;
    Ok(PgDatabase {
        url: with_database(server_url, &name),
        owner: Owner::External {
            server_url: server_url.to_owned(),
            name,
        },
    })
}

/// Replaces the database name (the URL path) of `url`, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

fn run_psql(url: &str, sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running psql: {e}; {HOW_TO_PROVIDE}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql `{sql}` on {url} failed: {}; {HOW_TO_PROVIDE}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The user to run PostgreSQL binaries as: `postgres` when we are root (initdb and postgres
/// refuse to run as root), ourselves otherwise.
fn run_as_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    (String::from_utf8_lossy(&uid.stdout).trim() == "0").then(|| "postgres".to_owned())
}

/// A command for a PostgreSQL binary, run as `user` if given.
fn pg_command(program: &str, user: Option<&str>) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--", program]);
            command
        }
        None => Command::new(program),
    }
}

fn chown(path: &Path, user: Option<&str>) -> Result<(), String> {
    let Some(user) = user else { return Ok(()) };
    let status = Command::new("chown")
        .args(["-R", user])
        .arg(path)
        .status()
        .map_err(|e| format!("running chown: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("chown {user} {} failed", path.display()))
    }
}

fn postgres_version() -> Result<String, String> {
    let output = Command::new("postgres")
        .arg("--version")
        .output()
        .map_err(|e| format!("running `postgres --version`: {e}; {HOW_TO_PROVIDE}"))?;
    if !output.status.success() {
        return Err(format!("`postgres --version` failed; {HOW_TO_PROVIDE}"));
    }
    // "postgres (PostgreSQL) 15.18 (Debian ...)": the third word is the version.
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .split_whitespace()
        .nth(2)
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect::<String>();
    Ok(version)
}

/// The initialised template data directory for this PostgreSQL version, created on first use.
fn template_dir(user: Option<&str>) -> Result<PathBuf, String> {
    let version = postgres_version()?;
    let tmp = std::env::temp_dir();
    let template = tmp.join(format!("tessera-pg-template-{version}"));
    if template.join("PG_VERSION").exists() {
        return Ok(template);
    }
    // Build in a private sibling and rename into place, so that concurrent test processes
    // never see (or copy) a half-initialised template; the loser of the race just discards its
    // copy.
    #[allow(
        clippy::disallowed_methods,
        reason = "a scratch directory name must differ from every other test process's"
    )]
    let building = tmp.join(format!(
        "tessera-pg-template-{version}.building-{}",
        Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&building).map_err(|e| format!("creating {building:?}: {e}"))?;
    chown(&building, user)?;
    let output = pg_command("initdb", user)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        .arg("-D")
        .arg(&building)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running initdb: {e}; {HOW_TO_PROVIDE}"))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        return Err(format!(
            "initdb failed: {}; {HOW_TO_PROVIDE}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    if std::fs::rename(&building, &template).is_err() || !template.join("PG_VERSION").exists() {
        let _ = std::fs::remove_dir_all(&building);
    }
    if template.join("PG_VERSION").exists() {
        Ok(template)
    } else {
        Err(format!(
            "could not create the template cluster {template:?}"
        ))
    }
}

fn start_cluster() -> Result<PgDatabase, String> {
    let user = run_as_user();
    let template = template_dir(user.as_deref())?;
    let dir = tempfile::Builder::new()
        .prefix("tessera-pg-")
        .tempdir()
        .map_err(|e| format!("creating a temp dir: {e}"))?;
    let data_dir = dir.path().join("data");
    // `cp -a` keeps the ownership and 0700 mode that postgres insists on.
    let status = Command::new("cp")
        .arg("-a")
        .arg(&template)
        .arg(&data_dir)
        .status()
        .map_err(|e| format!("running cp: {e}"))?;
    if !status.success() {
        return Err(format!("copying {template:?} to {data_dir:?} failed"));
    }
    // The server writes its socket and log into the temp dir itself.
    chown(dir.path(), user.as_deref())?;

    let mut last_error = String::new();
    for _attempt in 0..5 {
        let port = free_port();
        match start_server(&dir, &data_dir, port, user.as_deref()) {
            Ok(child) => {
                return Ok(PgDatabase {
                    url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    owner: Owner::Cluster {
                        child,
                        data_dir,
                        run_as: user,
                        _dir: dir,
                    },
                });
            }
            Err(e) => last_error = e,
        }
    }
    Err(format!(
        "could not start a PostgreSQL server: {last_error}; {HOW_TO_PROVIDE}"
    ))
}

fn start_server(
    dir: &tempfile::TempDir,
    data_dir: &Path,
    port: u16,
    user: Option<&str>,
) -> Result<Child, String> {
    let log_path = dir.path().join(format!("postgres-{port}.log"));
    let log = File::create(&log_path).map_err(|e| format!("creating {log_path:?}: {e}"))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cloning a file: {e}"))?;
    let port_text = port.to_string();
    let mut child = pg_command("postgres", user)
        .arg("-D")
        .arg(data_dir)
        .args(["-p", &port_text, "-k"])
        .arg(dir.path())
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            // Durability stays on: tests include crash checks and benchmarks must be honest.
            "-c",
            "fsync=on",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
            "-c",
            "logging_collector=off",
        ])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("spawning postgres: {e}"))?;

    let deadline = Instant::now() + STARTUP_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "postgres exited with {status} on port {port}: {log}"
            ));
        }
        let ready = Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", &port_text, "-t", "1"])
            .status()
            .map(|status| status.success())
            .unwrap_or(false);
        if ready {
            return Ok(child);
        }
        if Instant::now() > deadline {
            stop_server(&mut child, data_dir, user);
            return Err(format!(
                "postgres did not accept connections on port {port}"
            ));
        }
        // A short pause between probes, not a wait for a condition: the loop polls readiness.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_server(child: &mut Child, data_dir: &Path, user: Option<&str>) {
    // An immediate stop is what a crash looks like, which is all a throwaway cluster needs, and
    // it takes the backends down with the postmaster (killing only our child would not).
    let _ = pg_command("pg_ctl", user)
        .args(["stop", "-m", "immediate", "-w", "-D"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(child.try_wait(), Ok(Some(_))) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        match &mut self.owner {
            Owner::External { server_url, name } => {
                let _ = run_psql(
                    server_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
            }
            Owner::Cluster {
                child,
                data_dir,
                run_as,
                ..
            } => stop_server(child, data_dir, run_as.as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }

    #[test]
    fn fresh_database_accepts_queries_and_is_removed_on_drop() {
        let db = fresh_database();
        run_psql(&db.url, "select 1").unwrap();
        let url = db.url.clone();
        drop(db);
        assert!(run_psql(&url, "select 1").is_err());
    }
}
