//! `gateway backup DIR` and `gateway restore DIR`: the data directory
//! (database and keys) copied while the service runs, and put back into a
//! new data directory.
//!
//! Consistency: the database is copied first, as of one commit (the store's
//! online backup), then the keys. Keys are only ever added (rotation keeps
//! the old ones), so every key a copied row was sealed to is among the keys
//! copied after it. `keys/current` is read before the walk over the files,
//! so the key it names was on disk before the walk and is copied too.
//!
//! A backup is complete when its `backup.json` exists (written last): the
//! list of files with their sizes and SHA-256. `restore` checks every file
//! against it and the database's integrity before it writes anything, and
//! refuses a data directory that already holds a database.
//!
//! A backup holds what the data directory holds: sealed bodies and the keys
//! that open outbound ones. It is written owner-only (0700/0600); keep it
//! as safe as the data directory itself.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CliError;
use crate::app::config::Config;
use crate::core::error::Error;
use crate::store::backup::{DatabaseSummary, backup_database, check_database};

/// The manifest's file name.
pub(super) const MANIFEST: &str = "backup.json";
/// The format of the manifest, for a future change.
pub(super) const FORMAT: u32 = 1;
/// How deep the walk over the data directory goes (it is two levels today).
const MAX_DEPTH: usize = 8;

/// Options of `gateway backup`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gateway --config /etc/gateway.toml backup /var/backups/gateway-$(date +%F)\n  gateway backup ./backup --json"
)]
pub struct BackupArgs {
    /// Directory to write the backup to (created; must be empty if it exists).
    pub(super) dir: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

/// Options of `gateway restore`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gateway --data-dir /var/lib/gateway restore /var/backups/gateway-2026-12-06"
)]
pub struct RestoreArgs {
    /// Directory a `gateway backup` wrote.
    pub(super) dir: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

/// One file of a backup.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    pub(super) path: String,
    pub(super) bytes: u64,
    pub(super) sha256: String,
}

/// `backup.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Manifest {
    pub(super) format: u32,
    pub(super) created_at: String,
    pub(super) gateway_version: String,
    pub(super) schema_version: i64,
    pub(super) messages: i64,
    pub(super) files: Vec<FileEntry>,
    /// `postgres` for a PostgreSQL store's snapshot; absent: SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) backend: Option<String>,
    /// PostgreSQL: the tables and their columns (files `postgres/<table>.copy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) tables: Vec<crate::store::postgres::TableDump>,
}

pub(super) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CliError + 'a {
    move |e| CliError::from(Error::io(action, path, e))
}

impl Manifest {
    /// The manifest of a backup made now of a database like `db`.
    pub(super) fn new(db: DatabaseSummary, files: Vec<FileEntry>) -> Self {
        Self {
            format: FORMAT,
            created_at: crate::core::clock::rfc3339_ms(crate::core::clock::now_ms()),
            gateway_version: env!("CARGO_PKG_VERSION").into(),
            schema_version: db.schema_version,
            messages: db.messages,
            files,
            backend: None,
            tables: Vec::new(),
        }
    }
}

/// Writes `backup.json`, last: a backup is complete when it exists.
pub(super) fn write_manifest(dest: &Path, manifest: &Manifest) -> Result<(), CliError> {
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| CliError {
        code: 1,
        message: e.to_string(),
    })?;
    Ok(crate::core::fs::write_private_file(
        &dest.join(MANIFEST),
        &text,
    )?)
}

/// Runs `gateway backup`.
pub fn backup(cfg: &Config, args: &BackupArgs) -> Result<(), CliError> {
    let dest = &args.dir;
    new_backup_dir(dest)?;
    let current = std::fs::read(cfg.data_dir.join("keys").join("current")).ok();
    let summary = backup_database(&cfg.data_dir, &dest.join(crate::store::DB_FILE))?;
    let mut files = vec![entry_of(dest, crate::store::DB_FILE)?];
    copy_data_dir(cfg, dest, current.as_deref(), &mut files)?;
    let manifest = Manifest::new(summary, files);
    write_manifest(dest, &manifest)?;
    report(
        args.json,
        &format!(
            "backed up {} to {}: database ({} messages, schema {}) and {} other files",
            cfg.data_dir.display(),
            dest.display(),
            summary.messages,
            summary.schema_version,
            manifest.files.len() - 1
        ),
        &manifest,
        summary,
    )
}

/// Creates the backup directory `dest` (owner-only); an existing one must
/// be empty.
pub(super) fn new_backup_dir(dest: &Path) -> Result<(), CliError> {
    let not_empty = std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some());
    if not_empty {
        return Err(CliError::input(format!(
            "{} is not empty; back up into a new directory",
            dest.display()
        )));
    }
    Ok(crate::core::fs::create_private_dir(dest)?)
}

/// Copies the data directory's files but the database's own (keys, the
/// promoted model) into the backup `dest`, listing each in `files`;
/// `keys/current` as it was read before the store's copy (`current`).
pub(super) fn copy_data_dir(
    cfg: &Config,
    dest: &Path,
    current: Option<&[u8]>,
    files: &mut Vec<FileEntry>,
) -> Result<(), CliError> {
    for rel in walk(&cfg.data_dir)? {
        let to = dest.join(&rel);
        if let Some(parent) = to.parent() {
            crate::core::fs::create_private_dir(parent)?;
        }
        match (current, rel.as_str()) {
            (Some(c), "keys/current") => crate::core::fs::write_private_file(&to, c)?,
            _ => copy_private(&cfg.data_dir.join(&rel), &to)?,
        }
        files.push(entry_of(dest, &rel)?);
    }
    Ok(())
}

/// Runs `gateway restore` into the configured data directory.
pub fn restore(cfg: &Config, args: &RestoreArgs) -> Result<(), CliError> {
    let src = &args.dir;
    let manifest = read_manifest(src)?;
    super::pg_backup_cmd::check_backend(src, &manifest, false)?;
    verify(src, &manifest)?;
    let db_src = src.join(crate::store::DB_FILE);
    let before = check_database(&db_src)?;
    let target = &cfg.data_dir;
    if target.join(crate::store::DB_FILE).exists() {
        return Err(CliError::input(format!(
            "{} already holds a database; restore into a new data directory (or move it away first)",
            target.display()
        )));
    }
    crate::core::fs::create_private_dir(target)?;
    for f in &manifest.files {
        let to = target.join(&f.path);
        if let Some(parent) = to.parent() {
            crate::core::fs::create_private_dir(parent)?;
        }
        copy_private(&src.join(&f.path), &to)?;
    }
    // Migrates a backup made by an older gateway; the keys must load.
    drop(crate::store::open_for_cli(target)?);
    crate::envelope::keys::Keyring::open(target)?;
    let after = check_database(&target.join(crate::store::DB_FILE))?;
    let migrated = if after.schema_version == before.schema_version {
        String::new()
    } else {
        format!(
            ", schema migrated {} -> {}",
            before.schema_version, after.schema_version
        )
    };
    report(
        args.json,
        &format!(
            "restored {} into {}: database ({} messages{migrated}) and {} other files",
            src.display(),
            target.display(),
            after.messages,
            manifest.files.len() - 1
        ),
        &manifest,
        after,
    )
}

/// Checks a backup's format and every file against its manifest (before
/// anything is written).
pub(super) fn verify(src: &Path, manifest: &Manifest) -> Result<(), CliError> {
    if manifest.format != FORMAT {
        return Err(CliError::input(format!(
            "{}: backup format {} is not known to this gateway (it reads {FORMAT})",
            src.display(),
            manifest.format
        )));
    }
    for f in &manifest.files {
        let rel = safe_relative(&f.path).ok_or_else(|| {
            CliError::input(format!("{MANIFEST} names an unsafe path: {}", f.path))
        })?;
        let (bytes, sha) = hash_file(&src.join(&rel))?;
        if bytes != f.bytes || sha != f.sha256 {
            return Err(CliError::input(format!(
                "{} does not match {MANIFEST} (changed or damaged); nothing restored",
                src.join(&rel).display()
            )));
        }
    }
    Ok(())
}

pub(super) fn report(
    json: bool,
    line: &str,
    manifest: &Manifest,
    db: DatabaseSummary,
) -> Result<(), CliError> {
    if json {
        let v = serde_json::json!({
            "messages": db.messages,
            "schema_version": db.schema_version,
            "files": manifest.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "created_at": manifest.created_at,
        });
        println!("{v}");
    } else {
        println!("{line}");
    }
    Ok(())
}

pub(super) fn read_manifest(src: &Path) -> Result<Manifest, CliError> {
    let path = src.join(MANIFEST);
    let text = std::fs::read(&path).map_err(|_| {
        CliError::input(format!(
            "{} is not a complete backup: it has no {MANIFEST}",
            src.display()
        ))
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        CliError::input(format!(
            "{}: {}",
            path.display(),
            adapters::json::describe_error(&e)
        ))
    })
}

/// A manifest path as a relative path with no `..`, root or prefix.
pub(super) fn safe_relative(p: &str) -> Option<PathBuf> {
    let path = PathBuf::from(p);
    let ok = !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then_some(path)
}

/// The data directory's files other than the database's own (copied by
/// the store) and half-written `*.tmp` files, relative, sorted.
pub(super) fn walk(root: &Path) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io_err("read", &dir))?;
        for e in entries {
            let e = e.map_err(io_err("read", &dir))?;
            let path = e.path();
            let kind = e.file_type().map_err(io_err("read", &path))?;
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((path, depth + 1));
            } else if kind.is_file() {
                let rel = path.strip_prefix(root).map_err(|_| {
                    CliError::input(format!("{} escapes the data directory", path.display()))
                })?;
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let is_db = rel.starts_with(crate::store::DB_FILE);
                if !is_db && !rel.ends_with(".tmp") {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(super) fn copy_private(from: &Path, to: &Path) -> Result<(), CliError> {
    let mut src = std::fs::File::open(from).map_err(io_err("open", from))?;
    let mut dst = crate::core::fs::private_file_options()
        .open(to)
        .map_err(io_err("create", to))?;
    std::io::copy(&mut src, &mut dst).map_err(io_err("copy", to))?;
    dst.flush().map_err(io_err("write", to))?;
    dst.sync_all().map_err(io_err("sync", to))
}

pub(super) fn entry_of(root: &Path, rel: &str) -> Result<FileEntry, CliError> {
    let (bytes, sha256) = hash_file(&root.join(rel))?;
    Ok(FileEntry {
        path: rel.to_string(),
        bytes,
        sha256,
    })
}

pub(super) fn hash_file(path: &Path) -> Result<(u64, String), CliError> {
    let mut f = std::fs::File::open(path).map_err(io_err("open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::safe_relative;

    #[test]
    fn manifest_paths_stay_inside() {
        assert!(safe_relative("keys/current").is_some());
        assert!(safe_relative("gateway.db").is_some());
        for bad in ["", "/etc/passwd", "../x", "keys/../../x", "./x"] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }
}
