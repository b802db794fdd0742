//! Rebuilding a SQLite store beside itself and swapping the result in.
//!
//! A rebuild of a SQLite store writes a scratch file next to it (`readmodels.db.rebuild`)
//! with a rollback journal in memory and no syncs: every page is written once, straight into
//! the file, where the live store's WAL would take each page twice (into the WAL, then into
//! the file by a checkpoint). Nothing reads the scratch file until it is complete. Then
//! [`ReadStore::swap_in`] carries the publishers' positions over, syncs the file, closes the
//! store's connections (SQLite then copies the WAL into the old file and deletes it), renames
//! the scratch file over the old one, syncs the directory and reopens. So the store is
//! consistent at every moment, also across a crash: before the rename it is the old file with
//! its WAL, after it the new file, and a scratch file left behind is deleted by the next
//! rebuild. Readers see the old read models until the swap, and every clone of the
//! [`ReadStore`] the new ones after it.

use std::path::{Path, PathBuf};

use crate::error::ReadError;
use crate::store::{ReadStore, SqliteMode};

/// `path` with `suffix` appended: the scratch file, SQLite's `-wal` and `-shm` files.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(action: &str, path: &Path, error: &std::io::Error) -> ReadError {
    ReadError::Unavailable(format!("{action} {}: {error}", path.display()))
}

fn remove_if_present(path: &Path) -> Result<(), ReadError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("removing", path, &error))
        }
        _ => Ok(()),
    }
}

/// Opens an empty scratch store for rebuilding the SQLite store at `path`, deleting whatever a
/// rebuild that did not finish left there.
pub(crate) async fn open_scratch(path: &Path, wal_limit: u64) -> Result<ReadStore, ReadError> {
    let scratch = sibling(path, ".rebuild");
    remove_if_present(&scratch)?;
    // A rollback journal in memory leaves no file; one on disk would be a previous build's.
    remove_if_present(&sibling(&scratch, "-journal"))?;
    // The scratch file has no WAL; the limit is what the store it becomes keeps.
    ReadStore::open_sqlite_as(&scratch, SqliteMode::Scratch, wal_limit).await
}

/// Closes a scratch store that will not be swapped in and deletes its file.
pub(crate) async fn discard(scratch: ReadStore) {
    scratch.close_sqlite().await;
    if let Some(Err(error)) = scratch.sqlite_path().map(remove_if_present) {
        tracing::warn!(%error, "a failed rebuild's scratch file stays behind");
    }
}

impl ReadStore {
    /// Replaces this SQLite store's file with `scratch`, a complete rebuild of it (see the
    /// module doc). If the file is still open elsewhere (another process), nothing is
    /// replaced: the scratch file is deleted and this store keeps its connections.
    pub(crate) async fn swap_in(&self, scratch: ReadStore) -> Result<(), ReadError> {
        let (Some(path), Some(scratch_file)) = (self.sqlite_path(), scratch.sqlite_path()) else {
            return Err(ReadError::Unavailable(
                "only a SQLite store swaps in a rebuilt file".to_owned(),
            ));
        };
        let (path, scratch_file) = (path.to_path_buf(), scratch_file.to_path_buf());
        // Where publishers stand is not a read model: it survives a rebuild.
        for (publisher, position) in self.publisher_checkpoints().await? {
            scratch
                .set_publisher_checkpoint(&publisher, position)
                .await?;
        }
        scratch.close_sqlite().await;
        if let Err(error) = std::fs::File::open(&scratch_file).and_then(|file| file.sync_all()) {
            remove_if_present(&scratch_file)?;
            return Err(io_error("syncing", &scratch_file, &error));
        }
        self.close_sqlite().await;
        let wal = sibling(&path, "-wal");
        if wal.exists() {
            // SQLite deletes the WAL when the last connection closes: someone else has the
            // file open, and would go on using the old one after a rename.
            let reopened = self.reopen_sqlite().await;
            remove_if_present(&scratch_file)?;
            reopened?;
            return Err(ReadError::Unavailable(format!(
                "{} is open in another process; stop it, then rebuild again",
                path.display()
            )));
        }
        // Freeing the old file's pages and blocks takes a while; the last handle on it closes
        // on a thread of its own, after the swap.
        let old_file = std::fs::File::open(&path).ok();
        // Nobody has the old file open, so its shared-memory index is stale.
        let renamed = remove_if_present(&sibling(&path, "-shm")).and_then(|()| {
            std::fs::rename(&scratch_file, &path).map_err(|e| io_error("replacing", &path, &e))
        });
        let synced = renamed.and_then(|()| sync_directory(&path));
        let reopened = self.reopen_sqlite().await;
        if let Some(old_file) = old_file {
            let _ = std::thread::Builder::new()
                .name("tessera-rm-unlink".into())
                .spawn(move || drop(old_file));
        }
        synced?;
        reopened
    }
}

/// Makes a rename in `path`'s directory durable.
fn sync_directory(path: &Path) -> Result<(), ReadError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_error("syncing", directory, &e))
}
