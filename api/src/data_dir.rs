//! The data directory of the embedded deployment, private to the user the server runs as: the
//! directory mode 0700 and every file Tessera keeps in it 0600 (the event log, the read models,
//! the key table, their SQLite `-wal` and `-shm` files, the generated master key, the
//! bootstrap admin key and the OAuth and session directories' snapshots).
//!
//! The log holds every tenant's history and the key files unlock it, so no other local user
//! may read them. Three measures keep it so:
//! - the `tessera` binary runs with the umask 077 ([`restrict_umask`]), so that whatever the
//!   process creates later (a rebuilt read-model file, SQLite's side files) is private too;
//! - [`prepare`] creates the SQLite databases empty with mode 0600 before SQLite opens them,
//!   since SQLite gives a database's `-wal` and `-shm` files the mode of the database itself;
//! - [`prepare`] tightens a directory and files that an older version left readable.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tessera_crypto::MASTER_KEY_FILE;

/// The event log's SQLite database.
pub const EVENTS_DB: &str = "events.db";
/// The read models' SQLite database.
pub const READ_MODELS_DB: &str = "readmodels.db";
/// The key table's SQLite database (per-person data keys, outside the log).
pub const KEYS_DB: &str = tessera_event_log::keys::KEYS_FILE;
/// The generated bootstrap platform admin key.
pub const BOOTSTRAP_ADMIN_KEY: &str = "bootstrap-admin-key";
/// The OAuth directory's snapshot (written 0600 by the projections crate itself).
pub const DIRECTORY_SNAPSHOT: &str = tessera_projections::directory::snapshot::FILE_NAME;
/// The session directory's snapshot (likewise written 0600 by the projections crate).
pub const SESSION_SNAPSHOT: &str = tessera_projections::sessions::snapshot::FILE_NAME;

/// The data directory's mode: its owner only.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file in it: its owner may read and write.
pub const FILE_MODE: u32 = 0o600;

/// Makes every file and directory this process creates private to its user (umask 077), as
/// PostgreSQL and OpenSSH do.
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates the data directory (mode 0700) and its parents if missing, and makes it private:
/// the directory 0700, each file Tessera keeps in it 0600, the SQLite databases created empty
/// with mode 0600 if they do not exist yet.
pub fn prepare(dir: &Path) -> io::Result<()> {
    create_private_dir(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    for database in [EVENTS_DB, READ_MODELS_DB, KEYS_DB] {
        create_private_file(&dir.join(database))?;
    }
    let files = [
        EVENTS_DB,
        "events.db-wal",
        "events.db-shm",
        READ_MODELS_DB,
        "readmodels.db-wal",
        "readmodels.db-shm",
        KEYS_DB,
        "keys.db-wal",
        "keys.db-shm",
        MASTER_KEY_FILE,
        BOOTSTRAP_ADMIN_KEY,
        DIRECTORY_SNAPSHOT,
        SESSION_SNAPSHOT,
    ];
    for file in files {
        match std::fs::set_permissions(dir.join(file), Permissions::from_mode(FILE_MODE)) {
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Creates `dir` with mode 0700 if it is missing (its missing parents with the default mode).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Err(error) if error.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// Creates an empty file with mode 0600 unless one exists.
fn create_private_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_data_directory_is_private_with_its_databases() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("nested").join("data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        for database in [EVENTS_DB, READ_MODELS_DB, KEYS_DB] {
            assert_eq!(mode(&dir.join(database)), FILE_MODE, "{database}");
            assert_eq!(std::fs::metadata(dir.join(database)).unwrap().len(), 0);
        }
    }

    #[test]
    fn a_readable_data_directory_is_tightened_and_its_files_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::set_permissions(dir, Permissions::from_mode(0o755)).unwrap();
        for file in [
            EVENTS_DB,
            "events.db-wal",
            MASTER_KEY_FILE,
            BOOTSTRAP_ADMIN_KEY,
        ] {
            std::fs::write(dir.join(file), b"kept").unwrap();
            std::fs::set_permissions(dir.join(file), Permissions::from_mode(0o644)).unwrap();
        }
        prepare(dir).unwrap();
        assert_eq!(mode(dir), DIR_MODE);
        for file in [
            EVENTS_DB,
            "events.db-wal",
            MASTER_KEY_FILE,
            BOOTSTRAP_ADMIN_KEY,
        ] {
            assert_eq!(mode(&dir.join(file)), FILE_MODE, "{file}");
            assert_eq!(std::fs::read(dir.join(file)).unwrap(), b"kept");
        }
    }
}
