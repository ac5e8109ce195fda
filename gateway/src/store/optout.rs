//! Opt-outs: the `(local, remote)` pairs a STOP recorded, written in the
//! transaction that stores the keyword message itself.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::messages::{InsertOutcome, NewMessage, event, insert};
use crate::core::error::Result;

/// A compliance keyword, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Stop all messages from this sender.
    Stop(&'static str),
    /// Opt back in.
    Start(&'static str),
    /// Ask for help (recorded; the reply is the operator's business).
    Help(&'static str),
}

/// Applies `kw` (sent by `remote` to `local`) inside the transaction that
/// stores the message `id`.
fn apply(
    tx: &Connection,
    id: &str,
    local: &str,
    remote: &str,
    kw: Keyword,
    now: i64,
) -> Result<()> {
    match kw {
        Keyword::Stop(k) => {
            tx.prepare_cached(
                "INSERT INTO opt_outs (local_address, remote_address, keyword, at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (local_address, remote_address) DO UPDATE SET keyword = ?3, at = ?4",
            )?
            .execute(params![local, remote, k, now])?;
            event(tx, id, now, "opt_out", Some(&format!("keyword {k}")))
        }
        Keyword::Start(k) => {
            tx.prepare_cached(
                "DELETE FROM opt_outs WHERE local_address = ?1 AND remote_address = ?2",
            )?
            .execute(params![local, remote])?;
            event(tx, id, now, "opt_in", Some(&format!("keyword {k}")))
        }
        Keyword::Help(k) => event(tx, id, now, "help", Some(&format!("keyword {k}"))),
    }
}

impl Store {
    /// Inserts an inbound message and, when it is a keyword, records it in
    /// the same transaction (a retried webhook records nothing twice).
    pub async fn insert_inbound(
        &self,
        row: NewMessage,
        kw: Option<Keyword>,
    ) -> Result<InsertOutcome> {
        if let Some(pg) = self.pg() {
            return pg.insert_inbound(row, kw).await;
        }
        let now = row.created_at;
        self.write(move |tx| {
            let outcome = insert(tx, &row)?;
            if let (InsertOutcome::Inserted, Some(kw)) = (&outcome, kw) {
                // Inbound: the recipient is ours, the sender is the remote party.
                apply(tx, &row.id, &row.recipient, &row.sender, kw, now)?;
            }
            Ok(outcome)
        })
        .await
    }

    /// Every recorded `(local, remote)` opt-out pair, hashed with `hash`
    /// (blocking; read once at start).
    pub fn opt_out_pairs(&self, hash: fn(&str, &str) -> u64) -> Result<HashSet<u64>> {
        if let Some(pg) = self.pg() {
            return pg.block_on(pg.opt_out_pairs(hash));
        }
        self.read_blocking(|c| {
            let mut st = c.prepare("SELECT local_address, remote_address FROM opt_outs")?;
            let rows = st.query_map([], |r| {
                Ok(hash(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<HashSet<u64>>>()?)
        })
    }

    /// The keyword with which `remote` opted out of messages from `local`, if so.
    pub async fn opted_out(&self, local: String, remote: String) -> Result<Option<String>> {
        if let Some(pg) = self.pg() {
            return pg.opted_out(local, remote).await;
        }
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT keyword FROM opt_outs WHERE local_address = ?1 AND remote_address = ?2",
            )?
            .query_row(params![local, remote], |r| r.get(0))
            .optional()?)
        })
        .await
    }
}
