//! Metadata minimisation on PostgreSQL: the same pass as
//! `store/pseudonymise.rs` (counterparty numbers replaced by their keyed
//! pseudonyms after `[privacy] pseudonymise_after_secs`), run by one node
//! at a time under a transaction-scoped advisory lock. Every node must hold
//! the same pseudonym key (`pseudonym.key` in its data dir), or the same
//! number gets different pseudonyms depending on which node ran the pass.

use tokio_postgres::Transaction;

use super::schema::PSEUDONYMISE_LOCK;
use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::core::pseudonym::Pseudonyms;
use crate::store::pseudonymise::{Pseudonymised, rewrite_header};

/// Messages (or senders) handled per pass.
const BATCH: i64 = 2000;

impl PgStore {
    /// Replaces counterparty numbers in metadata older than `cutoff`.
    /// A node that finds another running the pass skips this round.
    pub async fn pseudonymise(&self, cutoff: i64, keys: &Pseudonyms) -> Result<Pseudonymised> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let got: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock($1)",
                &[&PSEUDONYMISE_LOCK],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        if !got {
            return Ok(Pseudonymised::default());
        }
        let mut done = messages(&tx, cutoff, keys).await?;
        done.senders = senders(&tx, cutoff, keys).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(done)
    }
}

async fn messages(tx: &Transaction<'_>, cutoff: i64, keys: &Pseudonyms) -> Result<Pseudonymised> {
    let rows = tx
        .query(
            "SELECT m.id, m.direction, m.sender, m.recipient, m.header, m.sealed IS NOT NULL FROM messages m \
             WHERE m.pseudonymised < 2 AND m.created_at < $1 \
             AND (m.pseudonymised = 0 OR m.sealed IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = m.id AND NOT q.dead) \
             ORDER BY m.created_at LIMIT $2",
            &[&cutoff, &BATCH],
        )
        .await
        .map_err(pg_error)?;
    let mut done = Pseudonymised::default();
    for r in rows {
        let id: String = r.get(0);
        let inbound = r.get::<_, String>(1) == "inbound";
        let (sender, recipient): (String, String) = (r.get(2), r.get(3));
        let header: Vec<u8> = r.get(4);
        let sealed: bool = r.get(5);
        let (field, number) = if inbound {
            ("from", &sender)
        } else {
            ("to", &recipient)
        };
        let pseudonym = keys.address(number);
        // The header is the body's associated data: only once it is gone.
        let new_header = if sealed {
            None
        } else {
            rewrite_header(&header, field, keys)
        };
        let (s, rcpt) = if inbound {
            (&pseudonym, &recipient)
        } else {
            (&sender, &pseudonym)
        };
        let level: i64 = if sealed { 1 } else { 2 };
        tx.execute(
            "UPDATE messages SET sender = $2, recipient = $3, header = coalesce($4, header), \
             pseudonymised = $7, last_error = replace(last_error, $5, $6) WHERE id = $1",
            &[&id, s, rcpt, &new_header, number, &pseudonym, &level],
        )
        .await
        .map_err(pg_error)?;
        if number.starts_with('+') {
            for sql in [
                "UPDATE message_events SET detail = replace(detail, $2, $3) \
                 WHERE message_id = $1 AND strpos(detail, $2) > 0",
                "UPDATE queue SET last_error = replace(last_error, $2, $3) \
                 WHERE message_id = $1 AND strpos(last_error, $2) > 0",
            ] {
                tx.execute(sql, &[&id, number, &pseudonym])
                    .await
                    .map_err(pg_error)?;
            }
        }
        done.messages += 1;
        done.headers += usize::from(!sealed);
    }
    Ok(done)
}

/// The review queue and audit log, by last activity.
async fn senders(tx: &Transaction<'_>, cutoff: i64, keys: &Pseudonyms) -> Result<usize> {
    let flagged: Vec<String> = tx
        .query(
            "SELECT sender FROM flagged_senders WHERE last_seen < $1 AND sender LIKE '+%' LIMIT $2",
            &[&cutoff, &BATCH],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for s in &flagged {
        let p = keys.of(s);
        // The same sender may already have a pseudonymised row: the newer wins.
        let clash = tx
            .query_opt("SELECT 1 FROM flagged_senders WHERE sender = $1", &[&p])
            .await
            .map_err(pg_error)?;
        if clash.is_some() {
            tx.execute("DELETE FROM flagged_senders WHERE sender = $1", &[s])
                .await
                .map_err(pg_error)?;
        } else {
            tx.execute(
                "UPDATE flagged_senders SET sender = $2 WHERE sender = $1",
                &[s, &p],
            )
            .await
            .map_err(pg_error)?;
        }
    }
    let audited: Vec<(i64, String)> = tx
        .query(
            "SELECT id, target FROM audit_log WHERE at < $1 AND target LIKE '+%' LIMIT $2",
            &[&cutoff, &BATCH],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (id, target) in &audited {
        tx.execute(
            "UPDATE audit_log SET target = $2 WHERE id = $1",
            &[id, &keys.of(target)],
        )
        .await
        .map_err(pg_error)?;
    }
    Ok(flagged.len() + audited.len())
}
