//! `gateway backup DIR` and `gateway restore DIR` on PostgreSQL: the same
//! backup directory and `backup.json` as on SQLite, with the database as a
//! logical snapshot (`postgres/<table>.copy`, one consistent transaction;
//! see `store/postgres/backup.rs`) beside the node's data directory files
//! (keys, `pseudonym.key`, a promoted model).
//!
//! Written by the gateway itself rather than by `pg_dump`: a node need not
//! have PostgreSQL's client tools (of the server's major version) installed,
//! the backup leaves out the cluster's runtime state (nodes, channel
//! leases, shared spam observations) and carries the keys without which the
//! sealed bodies cannot be opened, and `restore` checks every file against
//! the manifest before it writes anything, as on SQLite. `pg_dump` remains
//! the tool for a server-wide backup; a database it restored works too.
//!
//! `restore` loads into an empty database only (`createdb` a new one; no
//! node may have started on it) and into a data directory that does not
//! already hold any of the backup's files. The other nodes then take the
//! keys with `gateway keys export|import`, as when a cluster is set up.

use std::path::Path;

use super::backup_cmd::{BackupArgs, RestoreArgs};
use super::backup_cmd::{
    FileEntry, MANIFEST, Manifest, copy_data_dir, copy_private, entry_of, new_backup_dir,
    read_manifest, report, verify, write_manifest,
};
use super::{CliError, runtime};
use crate::app::config::Config;
use crate::store::backup::DatabaseSummary;
use crate::store::postgres::PgStore;

/// The backend name in a PostgreSQL backup's manifest.
const POSTGRES: &str = "postgres";
/// The folder of the table files inside a backup.
const TABLES_DIR: &str = "postgres";

/// Refuses a backup of the other backend: `postgres` says which one the
/// configuration runs.
pub(super) fn check_backend(src: &Path, m: &Manifest, postgres: bool) -> Result<(), CliError> {
    let is_postgres = m.backend.as_deref() == Some(POSTGRES);
    if is_postgres == postgres {
        return Ok(());
    }
    let (of, want) = if is_postgres {
        ("a PostgreSQL store", "backend = \"postgres\"")
    } else {
        ("a SQLite store", "backend = \"sqlite\" (the default)")
    };
    Err(CliError::input(format!(
        "{} is a backup of {of}; restore it with [store] {want}",
        src.display()
    )))
}

/// `gateway backup DIR` on PostgreSQL.
pub(super) fn backup(cfg: &Config, args: &BackupArgs) -> Result<(), CliError> {
    let dest = &args.dir;
    new_backup_dir(dest)?;
    let tables_dir = dest.join(TABLES_DIR);
    crate::core::fs::create_private_dir(&tables_dir)?;
    // Read before the snapshot: every key a row was sealed to is on disk
    // by then (keys are only added), see backup_cmd.
    let current = std::fs::read(cfg.data_dir.join("keys").join("current")).ok();
    let snap = runtime()?.block_on(async {
        let pg = PgStore::connect(&cfg.store).await?;
        let snap = pg.snapshot(&tables_dir).await;
        pg.close();
        snap
    })?;
    let mut files = Vec::new();
    for t in &snap.tables {
        files.push(entry_of(dest, &format!("{TABLES_DIR}/{}.copy", t.name))?);
    }
    let table_files = files.len();
    if cfg.data_dir.is_dir() {
        copy_data_dir(cfg, dest, current.as_deref(), &mut files)?;
    }
    let db = DatabaseSummary {
        schema_version: snap.schema_version,
        messages: snap.messages,
    };
    let manifest = Manifest {
        backend: Some(POSTGRES.into()),
        tables: snap.tables,
        ..Manifest::new(db, files)
    };
    write_manifest(dest, &manifest)?;
    report(
        args.json,
        &format!(
            "backed up the PostgreSQL database ({} messages, schema {}, {table_files} tables) and {} files of {} to {}",
            snap.messages,
            snap.schema_version,
            manifest.files.len() - table_files,
            cfg.data_dir.display(),
            dest.display(),
        ),
        &manifest,
        db,
    )
}

/// `gateway restore DIR` on PostgreSQL.
pub(super) fn restore(cfg: &Config, args: &RestoreArgs) -> Result<(), CliError> {
    let src = &args.dir;
    let manifest = read_manifest(src)?;
    check_backend(src, &manifest, true)?;
    verify(src, &manifest)?;
    for t in &manifest.tables {
        let listed = manifest
            .files
            .iter()
            .any(|f| f.path == format!("{TABLES_DIR}/{}.copy", t.name));
        if !listed {
            return Err(CliError::input(format!(
                "{MANIFEST} lists table {} without its file; nothing restored",
                t.name
            )));
        }
    }
    let node_files: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| !f.path.starts_with(&format!("{TABLES_DIR}/")))
        .collect();
    let target = &cfg.data_dir;
    if let Some(f) = node_files.iter().find(|f| target.join(&f.path).exists()) {
        return Err(CliError::input(format!(
            "{} already holds {}; restore into a new data directory (or move it away first)",
            target.display(),
            f.path
        )));
    }
    // The sealed bodies are useless without the keys: they must load from
    // the backup before the database is written.
    crate::envelope::keys::Keyring::open(src)?;
    let (messages, schema_version) = runtime()?.block_on(PgStore::restore(
        &cfg.store,
        &src.join(TABLES_DIR),
        manifest.schema_version,
        &manifest.tables,
    ))?;
    crate::core::fs::create_private_dir(target)?;
    for f in &node_files {
        let to = target.join(&f.path);
        if let Some(parent) = to.parent() {
            crate::core::fs::create_private_dir(parent)?;
        }
        copy_private(&src.join(&f.path), &to)?;
    }
    crate::envelope::keys::Keyring::open(target)?;
    let migrated = if schema_version == manifest.schema_version {
        String::new()
    } else {
        format!(
            ", schema migrated {} -> {schema_version}",
            manifest.schema_version
        )
    };
    report(
        args.json,
        &format!(
            "restored {} into the PostgreSQL database ({messages} messages{migrated}) and {} files into {}",
            src.display(),
            node_files.len(),
            target.display()
        ),
        &manifest,
        DatabaseSummary {
            schema_version,
            messages,
        },
    )
}
