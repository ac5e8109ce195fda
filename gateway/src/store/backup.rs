//! Copies of the database for `gateway backup` and `gateway restore`.
//!
//! The copy uses SQLite's online backup API in one step: one read
//! transaction over the whole file, so the copy is the database as it was at
//! one commit, while the service keeps writing (in WAL mode a reader never
//! blocks the writer, and the writer never disturbs the reader's snapshot).
//! Copying in small steps instead would restart whenever the service commits
//! between two steps, which under steady traffic may be forever.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::DB_FILE;
use crate::core::error::{Error, Result};

/// What a copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseSummary {
    /// `PRAGMA user_version`: the schema migrations applied.
    pub schema_version: i64,
    /// Messages stored.
    pub messages: i64,
}

/// How long a copy waits for a lock (a checkpoint in progress) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies the database in `data_dir` to `dest` (a new file, 0600) as of one
/// moment, while the service may be running, and checks the copy.
pub fn backup_database(data_dir: &Path, dest: &Path) -> Result<DatabaseSummary> {
    let src_path = data_dir.join(DB_FILE);
    if !src_path.exists() {
        return Err(Error::NotFound(format!(
            "no database at {}",
            src_path.display()
        )));
    }
    // Read-write without create: a WAL database's reader may need to
    // create the shared-memory file; it never creates the database.
    let src = Connection::open_with_flags(
        &src_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(BUSY_TIMEOUT)?;
    {
        // Created owner-only before SQLite opens it.
        crate::core::fs::private_file_options()
            .open(dest)
            .map_err(|e| Error::io("create", dest, e))?;
        let mut dst = Connection::open(dest)?;
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // -1: every page in one step, one snapshot (see the module's doc).
        backup.step(-1)?;
    }
    // A self-contained file: no WAL beside it.
    let dst = Connection::open(dest)?;
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    drop(dst);
    check_database(dest)
}

/// Checks a database file (`PRAGMA quick_check`) without changing it, and
/// says what it holds.
pub fn check_database(path: &Path) -> Result<DatabaseSummary> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(Error::Store(format!(
            "{} fails its integrity check: {verdict}",
            path.display()
        )));
    }
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let has_messages: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'messages'",
        [],
        |r| r.get(0),
    )?;
    let messages = if has_messages {
        conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?
    } else {
        0
    };
    Ok(DatabaseSummary {
        schema_version,
        messages,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn copy_is_checked_and_counted() {
        let dir = crate::core::fs::test_dir("store-backup");
        let db = super::super::open_for_cli(&dir).unwrap();
        let key = crate::store::NewApiKey {
            name: "k",
            tenant: None,
            scopes: crate::core::tenants::Scopes::APPLICATION,
            expires_at: None,
        };
        db.create_api_key(&key, 1).unwrap();
        drop(db);
        let dest = dir.join("copy.db");
        let s = backup_database(&dir, &dest).unwrap();
        assert_eq!(s.messages, 0);
        assert_eq!(s.schema_version, super::super::schema::CURRENT_VERSION);
        assert!(!dir.join("copy.db-wal").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(
            dir.join("junk.db"),
            b"not a database at all, not even close",
        )
        .unwrap();
        assert!(check_database(&dir.join("junk.db")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
