//! Owner-only files and directories for keys and the database.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

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

/// Writes `contents` to `path` (0600) and fsyncs it, so a key written on first
/// run is not lost to a crash right after.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = private_file_options()
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_all(contents)
        .map_err(|e| Error::io("write", path, e))?;
    f.sync_all().map_err(|e| Error::io("sync", path, e))
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
    use std::sync::atomic::{AtomicU64, Ordering};
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
