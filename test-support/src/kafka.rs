//! A real Kafka-protocol broker for tests: [tansu](https://crates.io/crates/tansu), with
//! in-memory storage, on a free port of 127.0.0.1.
//!
//! The binary is `TESSERA_TEST_TANSU` if set, else `tansu` on `PATH`, else
//! `$CARGO_HOME/bin/tansu` (`~/.cargo/bin/tansu`). Without one, [`Broker::start`] panics and
//! says how to install it: Kafka tests never skip.
//!
//! [`Broker::pause`] and [`Broker::resume`] freeze and thaw the broker with its state intact.
//! [`Broker::stop`] kills the broker and [`Broker::start_again`] starts a new one on the same
//! port. With memory storage the new broker starts empty: topics, messages and consumer-group
//! offsets are gone, as after losing a single-node cluster's disk.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming the tansu binary to use.
pub const TANSU_VAR: &str = "TESSERA_TEST_TANSU";

const HOW_TO_PROVIDE: &str = "Kafka tests need the tansu broker: install it with \
     `cargo install tansu --locked --features dynostore` (about 11 minutes; .ci/run does this \
     when it is missing), or set TESSERA_TEST_TANSU to its path";

const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// A running (or stopped) tansu broker. Dropping it kills the process.
pub struct Broker {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Whether clients must authenticate with SASL (`tansu broker --authentication`).
    authentication: bool,
    /// The port the broker tells clients to reach it on: its own, or a proxy's in front of it.
    advertised_port: Option<u16>,
}

impl Broker {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start() -> Broker {
        Self::start_with(false)
    }

    /// Starts a broker that answers only clients authenticated with SASL. tansu 0.6 accepts
    /// any user name and password with PLAIN, and with its in-memory storage it keeps no SCRAM
    /// credentials, so SCRAM never succeeds against it.
    pub fn start_requiring_sasl() -> Broker {
        Self::start_with(true)
    }

    /// Starts a broker that tells clients (in its metadata) to reach it on `advertised_port`,
    /// where a proxy in front of it listens; [`Broker::bootstrap_servers`] stays its own port.
    pub fn start_behind_proxy(advertised_port: u16) -> Broker {
        Self::start_with_options(false, Some(advertised_port))
    }

    fn start_with(authentication: bool) -> Broker {
        Self::start_with_options(authentication, None)
    }

    fn start_with_options(authentication: bool, advertised_port: Option<u16>) -> Broker {
        let binary = find_binary().unwrap_or_else(|| panic!("{HOW_TO_PROVIDE}"));
        let mut broker = Broker {
            binary,
            port: crate::free_port(),
            child: None,
            authentication,
            advertised_port,
        };
        broker.start_again();
        broker
    }

    /// `bootstrap.servers` for clients.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the broker (SIGSTOP): connections stay open but nothing answers, as in a
    /// network partition or a long GC pause. Its state survives, unlike [`Broker::stop`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused broker run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the broker is not running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts a broker on the same port (after [`Broker::stop`]).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!(
            "tcp://127.0.0.1:{}",
            self.advertised_port.unwrap_or(self.port)
        );
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let child = loop {
            let mut child = Command::new(&self.binary)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &advertised,
                    "--storage-engine",
                    "memory://tansu/",
                ])
                .args(self.authentication.then_some("--authentication"))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("starting {}: {e}; {HOW_TO_PROVIDE}", self.binary.display())
                });
            if wait_until_listening(self.port, &mut child, deadline) {
                break child;
            }
            // It exited (the port may still be held by the previous broker's socket): retry.
            assert!(
                Instant::now() < deadline,
                "tansu did not accept connections on port {} within {STARTUP_DEADLINE:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        self.child = Some(child);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused process ignores SIGKILL until it runs again.
            self.signal("-CONT");
        }
        self.stop();
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var(TANSU_VAR)
        && !path.trim().is_empty()
    {
        return Some(PathBuf::from(path.trim()));
    }
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .collect::<Vec<_>>()
    });
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin").join("tansu"));
    on_path.chain(cargo_home).find(|path| path.is_file())
}

/// True once the port accepts a connection; false if the process exited first or the
/// deadline passed.
fn wait_until_listening(port: u16, child: &mut Child, deadline: Instant) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}
