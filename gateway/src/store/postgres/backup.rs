//! `gateway backup` and `gateway restore` on PostgreSQL: a logical
//! snapshot of the gateway's tables, written and read by the gateway
//! itself (no `pg_dump` needed on the node, and the same backup directory
//! and manifest as on SQLite).
//!
//! **Backup**: one `REPEATABLE READ, READ ONLY` transaction, so every table
//! is copied as of the same moment while the nodes keep running; each
//! table goes out with `COPY … TO STDOUT` (text format) into its own file.
//! The cluster's runtime state (`nodes`, `channel_leases`, `spam_events`)
//! is left out: a restored cluster starts with no node and no lease, as a
//! new one does.
//!
//! **Restore**: only into an empty database (no table at all in its
//! schema; `createdb` one), in one transaction: the schema of the backup's
//! version, `COPY … FROM STDIN` of every table, identity counters moved
//! past the restored ids, and the leases of queue entries, callbacks,
//! fallback timers and SMPP receipts cleared (the nodes that held them are
//! gone). Any failure rolls all of it back. The later migrations then run
//! as on any start.

use std::io::{Read, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};

use super::schema::{MIGRATION_LOCK, create_at, migrate};
use super::{PgStore, pg_error};
use crate::core::error::{Error, Result};
use crate::store::config::StoreConfig;

/// Tables of the cluster's runtime state, not of its data.
const RUNTIME_TABLES: &[&str] = &["schema_version", "nodes", "channel_leases", "spam_events"];

/// One table of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableDump {
    /// The table.
    pub name: String,
    /// Its columns in the order of the copied rows.
    pub columns: Vec<String>,
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSnapshot {
    /// The schema version it was taken at.
    pub schema_version: i64,
    /// Messages in it.
    pub messages: i64,
    /// Its tables, each in `<dir>/<name>.copy`.
    pub tables: Vec<TableDump>,
}

/// A SQL identifier, quoted (names come from the server's catalog or a
/// backup's manifest checked against it; quoting keeps either inert).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn copy_sql(t: &TableDump, direction: &str) -> String {
    let cols: Vec<String> = t.columns.iter().map(|c| ident(c)).collect();
    format!("COPY {} ({}) {direction}", ident(&t.name), cols.join(", "))
}

/// The tables of the current schema with their columns, by name.
async fn tables(c: &tokio_postgres::Transaction<'_>) -> Result<Vec<TableDump>> {
    let rows = c
        .query(
            "SELECT t.table_name::TEXT, array_agg(c.column_name::TEXT ORDER BY c.ordinal_position) \
             FROM information_schema.tables t JOIN information_schema.columns c \
               ON c.table_schema = t.table_schema AND c.table_name = t.table_name \
             WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
             GROUP BY t.table_name ORDER BY t.table_name",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows
        .into_iter()
        .map(|r| TableDump {
            name: r.get(0),
            columns: r.get(1),
        })
        .collect())
}

impl PgStore {
    /// Writes a snapshot of every gateway table into `dir` (which exists),
    /// one owner-only `<table>.copy` file each, as of one moment.
    pub async fn snapshot(&self, dir: &Path) -> Result<PgSnapshot> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let schema_version: i64 = tx
            .query_one("SELECT MAX(version) FROM schema_version", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        let messages: i64 = tx
            .query_one("SELECT COUNT(*) FROM messages", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        let mut out = Vec::new();
        for t in tables(&tx).await? {
            if RUNTIME_TABLES.contains(&t.name.as_str()) {
                continue;
            }
            let path = dir.join(format!("{}.copy", t.name));
            let mut file = crate::core::fs::private_file_options()
                .open(&path)
                .map_err(|e| Error::io("create", &path, e))?;
            let stream = tx
                .copy_out(&copy_sql(&t, "TO STDOUT"))
                .await
                .map_err(pg_error)?;
            let mut stream = std::pin::pin!(stream);
            while let Some(chunk) = stream.try_next().await.map_err(pg_error)? {
                file.write_all(&chunk)
                    .map_err(|e| Error::io("write", &path, e))?;
            }
            file.sync_all().map_err(|e| Error::io("sync", &path, e))?;
            out.push(t);
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(PgSnapshot {
            schema_version,
            messages,
            tables: out,
        })
    }

    /// Loads the snapshot in `dir` (its tables as listed) into the empty
    /// database `cfg` names, then migrates it to this gateway's version.
    /// Returns the messages restored and the schema version after.
    pub async fn restore(
        cfg: &StoreConfig,
        dir: &Path,
        schema_version: i64,
        dumped: &[TableDump],
    ) -> Result<(i64, i64)> {
        let this = Self::open(cfg)?;
        let out = this.restore_into(dir, schema_version, dumped).await;
        this.close();
        out
    }

    async fn restore_into(
        &self,
        dir: &Path,
        schema_version: i64,
        dumped: &[TableDump],
    ) -> Result<(i64, i64)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        // No node migrates (or starts on a half-restored database) meanwhile.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error)?;
        let existing = tables(&tx).await?;
        if let Some(t) = existing.first() {
            return Err(Error::Config(format!(
                "the database is not empty (it has table {}, and {} more); restore into a new database (createdb) before any node starts on it",
                t.name,
                existing.len() - 1
            )));
        }
        create_at(&tx, schema_version).await?;
        let created = tables(&tx).await?;
        for t in dumped {
            if !created
                .iter()
                .any(|c| c.name == t.name && t.columns.iter().all(|col| c.columns.contains(col)))
            {
                return Err(Error::Config(format!(
                    "the backup's table {} does not match schema version {schema_version}; nothing restored",
                    t.name
                )));
            }
            copy_in(&tx, t, &dir.join(format!("{}.copy", t.name))).await?;
        }
        after_load(&tx, &created).await?;
        tx.commit().await.map_err(pg_error)?;
        migrate(&mut c).await?;
        let row = c
            .query_one(
                "SELECT (SELECT COUNT(*) FROM messages), (SELECT MAX(version) FROM schema_version)",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok((row.get(0), row.get(1)))
    }
}

/// Copies one table's file into it.
async fn copy_in(tx: &tokio_postgres::Transaction<'_>, t: &TableDump, path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let sink = tx
        .copy_in::<_, Bytes>(&copy_sql(t, "FROM STDIN"))
        .await
        .map_err(pg_error)?;
    let mut sink = std::pin::pin!(sink);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        sink.send(Bytes::copy_from_slice(&buf[..n]))
            .await
            .map_err(pg_error)?;
    }
    sink.as_mut().finish().await.map_err(pg_error)?;
    Ok(())
}

/// After the rows are in: identity counters past the restored ids, and no
/// claim left to a node of the old cluster.
async fn after_load(tx: &tokio_postgres::Transaction<'_>, created: &[TableDump]) -> Result<()> {
    let identities = tx
        .query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
            &[],
        )
        .await
        .map_err(pg_error)?;
    for r in identities {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
                ident(&column),
                ident(&table)
            ),
            &[&ident(&table), &column],
        )
        .await
        .map_err(pg_error)?;
    }
    for t in created {
        let leased = ["lease_owner", "lease_until"]
            .iter()
            .all(|c| t.columns.iter().any(|have| have == c));
        if leased {
            tx.execute(
                &format!(
                    "UPDATE {} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
                    ident(&t.name)
                ),
                &[],
            )
            .await
            .map_err(pg_error)?;
        }
    }
    Ok(())
}
