//! Owner-only files and directories for keys and the database.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::error::{Error, Result};

/// Creates `dir` (and parents) and restricts it to its owner (0700).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("chmod", dir, e))?;
    }
    Ok(())
}

/// Options that create a new file readable and writable by its owner only.
pub fn private_file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Writes `contents` to `path` (0600), all or nothing: into a temporary
/// file beside it, fsynced, then renamed over `path`, and the directory
/// fsynced. A reader (another process copying a new node's keys, the next
/// start after a crash) sees the old file or the whole new one, never an
/// empty or half-written key, and a key written on first run is not lost
/// to a crash right after.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    // Ends in `.tmp`: backups skip such files, the keyring ignores them.
    name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(name);
    let written = (|| {
        let mut f = private_file_options()
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(contents)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_parent(path)
}

/// Fsyncs the directory holding `path`, so a rename into it survives a crash.
fn sync_parent(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", dir, e))?;
    }
    let _ = path;
    Ok(())
}

/// Restricts an existing file to its owner (used on SQLite's files).
pub fn restrict_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("chmod", path, e))?;
        }
    }
    let _ = path;
    Ok(())
}

/// A fresh, empty directory for a unit test.
#[cfg(test)]
pub fn test_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "gw-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&d);
    let _ = fs::create_dir_all(&d);
    d
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_private_file_is_replaced_whole_and_leaves_nothing_beside_it() {
        let dir = test_dir("private-file");
        let path = dir.join("pseudonym.key");
        write_private_file(&path, &[1; 32]).unwrap();
        write_private_file(&path, &[2; 32]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), [2; 32]);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pseudonym.key"], "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A write that cannot finish leaves the old file as it was.
        let missing = dir.join("no-such-dir").join("key");
        assert!(write_private_file(&missing, &[3; 32]).is_err());
        assert_eq!(fs::read(&path).unwrap(), [2; 32]);
        let _ = fs::remove_dir_all(&dir);
    }
}
