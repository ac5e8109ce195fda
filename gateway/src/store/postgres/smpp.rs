//! SMPP's tables on PostgreSQL (as `store/smpp.rs`): server clients with
//! the same salted PBKDF2 password hashes, the SMSC's ids of the parts
//! sent through client binds, and the receipts owed to server clients.
//!
//! Several nodes may each have a bind of one server client, and every
//! node's sender looks for owed receipts. A receipt goes out once because
//! a node reads only the rows of clients bound to it, and reading claims
//! them (`FOR UPDATE SKIP LOCKED`, then `lease_owner` / `lease_until` as
//! the queue's entries): another node skips a row until its lease ends.
//! The claiming node sends and deletes the row; if its send failed it
//! claims the row again on its next pass (its own lease), and if it died
//! the row is another node's after the lease (the receipt may then reach
//! the client twice: `deliver_sm` carries no idempotency key).

use std::sync::Arc;

use tokio_postgres::error::SqlState;

use super::{PgStore, pg_error};
use crate::core::error::{Error, Result};
use crate::store::messages::parse_status;
use crate::store::smpp::{
    ClientInfo, ClientOps, OwedReceipt, Stored, addresses_json, addresses_of, check, new_secret,
};

/// Statuses after which a receipt is owed (the SQLite store's `FINAL`).
const FINAL: &[&str] = &[
    "delivered",
    "failed",
    "dead",
    "blocked",
    "expired",
    "dropped",
];

/// Claims owed rows (the CTE's selection, locked and skipped when another
/// node holds them) and returns them with their message's columns.
const CLAIM: &str = "UPDATE smpp_receipts r SET lease_owner = $1, lease_until = $2 \
     FROM claimed c, messages m WHERE r.message_id = c.message_id AND m.id = r.message_id \
     RETURNING r.message_id, r.system_id, r.parts, r.failures_only, m.status, m.sender, \
     m.recipient, m.created_at, m.updated_at";

/// Rows no other node holds: never claimed, lease over, or this node's.
const FREE: &str = "(r.lease_until IS NULL OR r.lease_until < $3 OR r.lease_owner = $1)";

fn owed_of(r: &tokio_postgres::Row) -> Result<OwedReceipt> {
    Ok(OwedReceipt {
        message_id: r.get(0),
        system_id: r.get(1),
        parts: r.get(2),
        failures_only: r.get(3),
        status: parse_status(r.get(4))?,
        sender: r.get(5),
        recipient: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    })
}

impl PgStore {
    /// Every SMPP server client, by system_id.
    pub async fn smpp_clients(&self) -> Result<Vec<ClientInfo>> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT system_id, throughput, addresses, created_at FROM smpp_clients ORDER BY system_id",
                &[],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| ClientInfo {
                system_id: r.get(0),
                throughput: r.get(1),
                addresses: addresses_of(r.get(2)),
                created_at: r.get(3),
            })
            .collect())
    }

    /// Adds a client with checked addresses; its password (shown once,
    /// stored hashed as on SQLite).
    pub async fn add_smpp_client(
        &self,
        system_id: &str,
        throughput: Option<f64>,
        addresses: &[String],
        now: i64,
    ) -> Result<String> {
        let (password, salt, hash) = new_secret();
        let iterations = i64::from(crate::store::smpp::ITERATIONS);
        self.client()
            .await?
            .execute(
                "INSERT INTO smpp_clients (system_id, salt, hash, iterations, throughput, addresses, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &system_id,
                    &salt.as_slice(),
                    &hash.as_slice(),
                    &iterations,
                    &throughput,
                    &addresses_json(addresses),
                    &now,
                ],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
                    Error::invalid("system_id", "a client with this system_id exists")
                }
                _ => pg_error(e),
            })?;
        Ok(password)
    }

    /// Replaces a client's addresses; false when there is no such client.
    pub async fn set_smpp_addresses(&self, system_id: &str, addresses: &[String]) -> Result<bool> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE smpp_clients SET addresses = $2 WHERE system_id = $1",
                &[&system_id, &addresses_json(addresses)],
            )
            .await
            .map_err(pg_error)?
            > 0)
    }

    /// Removes a client and the receipts owed to it (one transaction);
    /// true when it existed.
    pub async fn remove_smpp_client(&self, system_id: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute(
            "DELETE FROM smpp_receipts WHERE system_id = $1",
            &[&system_id],
        )
        .await
        .map_err(pg_error)?;
        let n = tx
            .execute(
                "DELETE FROM smpp_clients WHERE system_id = $1",
                &[&system_id],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(n > 0)
    }

    /// Checks a bind's credentials; the client's settings when they are
    /// right (the hash is computed off the runtime's threads).
    pub async fn verify_smpp_client(
        &self,
        system_id: &str,
        password: &str,
    ) -> Result<Option<ClientInfo>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT salt, hash, iterations, throughput, addresses, created_at FROM smpp_clients WHERE system_id = $1",
                &[&system_id],
            )
            .await
            .map_err(pg_error)?;
        let stored = row.map(|r| Stored {
            salt: r.get(0),
            hash: r.get(1),
            iterations: u32::try_from(r.get::<_, i64>(2)).unwrap_or(crate::store::smpp::ITERATIONS),
            info: ClientInfo {
                system_id: system_id.to_string(),
                throughput: r.get(3),
                addresses: addresses_of(r.get(4)),
                created_at: r.get(5),
            },
        });
        let password = password.to_string();
        tokio::task::spawn_blocking(move || check(&password, stored))
            .await
            .map_err(|e| Error::Store(format!("password check failed: {e}")))
    }

    /// Maps the SMSC's ids of a message's parts to the message (as SQLite:
    /// a known id is replaced, its state cleared).
    pub async fn map_smpp_parts(
        &self,
        route: String,
        message_id: String,
        smsc_ids: Vec<String>,
    ) -> Result<()> {
        let total = smsc_ids.len() as i64;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let st = tx
            .prepare(
                "INSERT INTO smpp_parts (route, smsc_id, message_id, part, total, state) \
                 VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (route, smsc_id) DO UPDATE \
                 SET message_id = EXCLUDED.message_id, part = EXCLUDED.part, total = EXCLUDED.total, state = NULL",
            )
            .await
            .map_err(pg_error)?;
        for (i, sid) in smsc_ids.iter().enumerate().filter(|(_, s)| !s.is_empty()) {
            tx.execute(&st, &[&route, sid, &message_id, &((i + 1) as i64), &total])
                .await
                .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    /// The part a receipt names: the first of `forms` that `route` knows.
    pub async fn smpp_part(
        &self,
        route: String,
        forms: Vec<String>,
    ) -> Result<Option<(String, String)>> {
        let c = self.client().await?;
        for form in &forms {
            if let Some(r) = c
                .query_opt(
                    "SELECT smsc_id, message_id FROM smpp_parts WHERE route = $1 AND smsc_id = $2",
                    &[&route, form],
                )
                .await
                .map_err(pg_error)?
            {
                return Ok(Some((r.get(0), r.get(1))));
            }
        }
        Ok(None)
    }

    /// Records that client `system_id` is owed receipts for `message_id`.
    pub async fn owe_smpp_receipt(
        &self,
        message_id: String,
        system_id: String,
        parts: i64,
        failures_only: bool,
        now: i64,
    ) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO smpp_receipts (message_id, system_id, parts, failures_only, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
                &[&message_id, &system_id, &parts, &failures_only, &now],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Claims owed receipts whose message is final, of clients in `bound`
    /// only: those of `ids`, and up to `per_client` of each of `clients`.
    pub async fn owed_smpp_receipts(
        &self,
        ids: Vec<String>,
        clients: Vec<String>,
        bound: Vec<String>,
        per_client: i64,
    ) -> Result<Vec<OwedReceipt>> {
        if bound.is_empty() {
            return Ok(Vec::new());
        }
        let now = crate::core::clock::now_ms();
        let until = now.saturating_add(self.lease_ms);
        let c = self.client().await?;
        let mut out = Vec::new();
        if !ids.is_empty() {
            let rows = c
                .query(
                    &format!(
                        "WITH claimed AS (SELECT r.message_id FROM smpp_receipts r JOIN messages m ON m.id = r.message_id \
                         WHERE r.message_id = ANY($4) AND r.system_id = ANY($5) AND m.status = ANY($6) AND {FREE} \
                         FOR UPDATE OF r SKIP LOCKED) {CLAIM}"
                    ),
                    &[&self.node, &until, &now, &ids, &bound, &FINAL],
                )
                .await
                .map_err(pg_error)?;
            for r in &rows {
                out.push(owed_of(r)?);
            }
        }
        for sid in clients.iter().filter(|s| bound.contains(s)) {
            let rows = c
                .query(
                    &format!(
                        "WITH claimed AS (SELECT r.message_id FROM smpp_receipts r JOIN messages m ON m.id = r.message_id \
                         WHERE r.system_id = $4 AND m.status = ANY($6) AND {FREE} \
                         LIMIT $5 FOR UPDATE OF r SKIP LOCKED) {CLAIM}"
                    ),
                    &[&self.node, &until, &now, sid, &per_client, &FINAL],
                )
                .await
                .map_err(pg_error)?;
            for r in &rows {
                if !out.iter().any(|o| o.message_id == r.get::<_, &str>(0)) {
                    out.push(owed_of(r)?);
                }
            }
        }
        Ok(out)
    }

    /// A receipt was delivered (or is not wanted): it is owed no more.
    pub async fn forget_smpp_receipt(&self, message_id: String) -> Result<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM smpp_receipts WHERE message_id = $1",
                &[&message_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }
}

/// The CLI's client operations on PostgreSQL (`gateway smpp client …`),
/// each run to completion on `runtime` from a synchronous caller.
pub struct PgSmppClients {
    pg: Arc<PgStore>,
    runtime: tokio::runtime::Handle,
}

impl PgSmppClients {
    /// Wraps a connected store; `runtime` must not be the caller's own.
    pub fn new(pg: Arc<PgStore>, runtime: tokio::runtime::Handle) -> Self {
        Self { pg, runtime }
    }
}

impl ClientOps for PgSmppClients {
    fn smpp_clients(&self) -> Result<Vec<ClientInfo>> {
        self.runtime.block_on(self.pg.smpp_clients())
    }
    fn add_smpp_client(
        &self,
        system_id: &str,
        throughput: Option<f64>,
        addresses: &[String],
        now: i64,
    ) -> Result<String> {
        self.runtime.block_on(
            self.pg
                .add_smpp_client(system_id, throughput, addresses, now),
        )
    }
    fn set_smpp_addresses(&self, system_id: &str, addresses: &[String]) -> Result<bool> {
        self.runtime
            .block_on(self.pg.set_smpp_addresses(system_id, addresses))
    }
    fn remove_smpp_client(&self, system_id: &str) -> Result<bool> {
        self.runtime.block_on(self.pg.remove_smpp_client(system_id))
    }
    fn verify_smpp_client(&self, system_id: &str, password: &str) -> Result<Option<ClientInfo>> {
        self.runtime
            .block_on(self.pg.verify_smpp_client(system_id, password))
    }
}
