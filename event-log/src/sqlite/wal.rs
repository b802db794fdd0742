//! Keeping a SQLite WAL file within a bound, for the log and for the read store alike.
//!
//! A PASSIVE checkpoint copies WAL frames into the database file without taking a lock anyone
//! waits on, but it never makes the WAL shorter: SQLite starts writing the WAL from its
//! beginning again only when a write transaction starts after a checkpoint has copied every
//! frame and no reader still reads from the WAL. Under continuous writes with readers that
//! never happens, so the file grows for as long as the load lasts (1.4 GiB after 626,000
//! tokens, issue 24) and stays that size. A TRUNCATE checkpoint waits for the writer and the
//! readers (busy handler), copies what is left, syncs the database file and cuts the WAL to
//! zero bytes; writers wait while it runs. [`WalBound`] runs one whenever the file has passed
//! its limit, called by the single writer between two of its transactions so that it never
//! competes with that writer for the lock, and `journal_size_limit` cuts a WAL that was
//! restarted the ordinary way back to the same limit.
//!
//! This module knows nothing of what the database holds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// A connection that checkpoints one database's WAL, and the bound it keeps it within.
pub struct WalBound {
    wal: PathBuf,
    limit: u64,
    connection: Connection,
}

impl std::fmt::Debug for WalBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalBound")
            .field("wal", &self.wal)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl WalBound {
    /// Opens a checkpointing connection on `database` (which must exist, in WAL mode).
    ///
    /// `synchronous = FULL`: a checkpoint from this connection syncs the WAL before copying it
    /// and the database file before the WAL may be reused or truncated, so frames that their
    /// writer committed without a sync (the log's writer does; see `writer`) are on disk
    /// before the WAL that held them is cut.
    pub fn open(database: &Path, limit: u64) -> rusqlite::Result<Self> {
        let connection = Connection::open_with_flags(
            database,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")?;
        Ok(Self {
            wal: wal_path(database),
            limit,
            connection,
        })
    }

    /// The WAL file's size in bytes; 0 when there is none.
    pub fn wal_size(&self) -> u64 {
        std::fs::metadata(&self.wal).map_or(0, |m| m.len())
    }

    /// Whether the WAL has grown past the bound.
    pub fn over_limit(&self) -> bool {
        self.wal_size() > self.limit
    }

    /// Checkpoints the whole WAL and truncates it to zero bytes. Returns whether it completed:
    /// `false` when a reader or another checkpoint kept it from finishing (it then copied what
    /// it could, and the next call tries again).
    pub fn truncate(&self) -> rusqlite::Result<bool> {
        self.checkpoint("TRUNCATE")
    }

    /// Copies what no reader still needs, waiting for nobody.
    pub fn passive(&self) -> rusqlite::Result<bool> {
        self.checkpoint("PASSIVE")
    }

    /// Truncates the WAL if it has passed the bound, logging (not returning) a failure: the
    /// caller's own work has already succeeded, and the next call tries again.
    pub fn enforce(&self, what: &str) {
        let size = self.wal_size();
        if size <= self.limit {
            return;
        }
        let started = std::time::Instant::now();
        match self.truncate() {
            // How long the writer waited is what appends (or the read models) waited too.
            Ok(true) => tracing::debug!(
                what,
                size,
                micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "WAL truncated past its bound"
            ),
            Ok(false) => tracing::debug!(what, "WAL truncation could not finish; retried later"),
            Err(error) => tracing::warn!(what, %error, "WAL truncation failed; retried later"),
        }
    }

    /// `PRAGMA data_version`: changes whenever another connection has committed since the
    /// previous call, which tells a periodic checkpointer that writes have paused.
    pub fn data_version(&self) -> rusqlite::Result<i64> {
        self.connection
            .query_row("PRAGMA data_version", [], |row| row.get(0))
    }

    fn checkpoint(&self, mode: &str) -> rusqlite::Result<bool> {
        // The row is (busy, frames in the WAL, frames checkpointed); busy is 1 when the
        // checkpoint could not run to completion.
        let busy: i64 =
            self.connection
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
                    row.get(0)
                })?;
        Ok(busy == 0)
    }
}

/// How a periodic checkpointer checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// Copy what no reader needs; wait for nobody.
    Passive,
    /// Copy everything and cut the WAL to zero bytes.
    Truncate,
}

/// When a periodic checkpointer (the log's, the read store's) checkpoints, and how.
///
/// Every [`Pacer::REGULAR`] a PASSIVE checkpoint, or once writes have paused (nothing committed
/// since the last regular one) a TRUNCATE, so that an idle file keeps no WAL. In between, every
/// [`Pacer::TICK`], a PASSIVE one whenever the WAL is past half its bound: the writer's own
/// truncation at the bound (see [`WalBound::enforce`]) then finds little left to copy, and the
/// appends waiting for it wait less (BENCHMARKS.md, issue 24).
#[derive(Debug)]
pub struct Pacer {
    wal: PathBuf,
    half_limit: u64,
    ticks: u32,
    truncated: bool,
}

impl Pacer {
    /// How often [`Pacer::next`] is to be called.
    pub const TICK: Duration = Duration::from_millis(100);
    /// How often a checkpoint runs whatever the WAL's size.
    pub const REGULAR: Duration = Duration::from_millis(500);

    /// A pacer that truncates only after a write of this process: one that only reads a
    /// file a server is writing (`tessera-replay`, `check-read-models` on a live log) must not
    /// hold that server's writer up with a truncation of its own.
    pub fn new(database: &Path, limit: u64) -> Self {
        Self {
            wal: wal_path(database),
            half_limit: limit / 2,
            ticks: 0,
            truncated: true,
        }
    }

    /// The checkpoint to run at this tick, if any. `paused` says whether nothing was committed
    /// since the last regular checkpoint; it is asked once per [`Pacer::REGULAR`].
    pub fn next(&mut self, paused: impl FnOnce() -> bool) -> Option<Checkpoint> {
        let per_regular = (Self::REGULAR.as_millis() / Self::TICK.as_millis()).max(1);
        self.ticks = self.ticks.wrapping_add(1);
        if u128::from(self.ticks) % per_regular == 0 {
            let paused = paused();
            // One truncation per pause: an idle file's WAL is then already empty.
            let checkpoint = if paused && !self.truncated {
                Checkpoint::Truncate
            } else {
                Checkpoint::Passive
            };
            self.truncated = paused;
            return Some(checkpoint);
        }
        let size = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        (size > self.half_limit).then_some(Checkpoint::Passive)
    }
}

/// `<database>-wal`.
pub fn wal_path(database: &Path) -> PathBuf {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// The pragma that makes SQLite cut a WAL file it restarts back to `limit` bytes.
pub fn journal_size_limit(limit: u64) -> String {
    format!(
        "PRAGMA journal_size_limit = {};",
        i64::try_from(limit).unwrap_or(i64::MAX)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regular_ticks() -> u32 {
        u32::try_from(Pacer::REGULAR.as_millis() / Pacer::TICK.as_millis()).unwrap_or(1)
    }

    #[test]
    fn a_pacer_truncates_once_per_pause_and_only_after_a_write() {
        let dir = std::env::temp_dir().join("tessera-pacer-test-no-wal");
        let mut pacer = Pacer::new(&dir.join("db"), 1024);
        let run = |pacer: &mut Pacer, paused: bool| -> Vec<Checkpoint> {
            (0..regular_ticks())
                .filter_map(|_| pacer.next(|| paused))
                .collect()
        };
        // A reader's pacer: paused from the start, never truncates.
        assert_eq!(run(&mut pacer, true), vec![Checkpoint::Passive]);
        assert_eq!(run(&mut pacer, true), vec![Checkpoint::Passive]);
        // Writes, then a pause: one truncation, then PASSIVE while the pause lasts.
        assert_eq!(run(&mut pacer, false), vec![Checkpoint::Passive]);
        assert_eq!(run(&mut pacer, true), vec![Checkpoint::Truncate]);
        assert_eq!(run(&mut pacer, true), vec![Checkpoint::Passive]);
        assert_eq!(run(&mut pacer, false), vec![Checkpoint::Passive]);
        assert_eq!(run(&mut pacer, true), vec![Checkpoint::Truncate]);
    }
}
