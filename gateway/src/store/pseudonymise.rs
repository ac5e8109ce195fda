//! Metadata minimisation: after `[privacy] pseudonymise_after_secs` the
//! counterparty's number is replaced by its keyed pseudonym everywhere the
//! store keeps it about a message or a sender.
//!
//! Per message: the counterparty column (`sender` of an inbound message,
//! `recipient` of an outbound one), the same address in the stored envelope
//! header, and any mention in its history and error words. The gateway's own
//! number (the other side) and registered identity addresses stay. The
//! header is the body's AEAD associated data: changed, the body could not
//! be opened any more. So a message whose body is still kept (held for
//! review, dead-lettered, stored for a private side without a webhook) has
//! its columns and history done at once (`pseudonymised = 1`) and its
//! header once the body is gone (`pseudonymised = 2`); content is never
//! destroyed to hide metadata. A message still in the live queue waits
//! until it leaves it.
//!
//! Per sender: the review queue (`flagged_senders`) and the operators'
//! audit log, by their last activity. Opt-outs are kept in the clear: they
//! are the record that a person asked not to be messaged, and matching a
//! later message against them needs the number.

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use crate::core::error::Result;
use crate::core::pseudonym::{PREFIX, Pseudonyms};

/// Messages (or senders) handled per write, so the sweep never holds the
/// writer for long; the next sweep takes the rest.
const BATCH: i64 = 2000;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pseudonymised {
    /// Messages whose counterparty was replaced.
    pub messages: usize,
    /// Of those, messages whose envelope header was done too (their body
    /// was gone).
    pub headers: usize,
    /// Review and audit rows replaced.
    pub senders: usize,
}

impl Pseudonymised {
    /// Whether anything changed (the WAL then needs a checkpoint).
    pub fn touched(&self) -> usize {
        self.messages + self.senders
    }
}

/// One message as the pass reads it.
struct Row {
    id: String,
    inbound: bool,
    sender: String,
    recipient: String,
    header: Vec<u8>,
    sealed: bool,
}

impl Store {
    /// Replaces counterparty numbers in metadata older than `cutoff` (Unix
    /// ms) by their pseudonyms under `keys`.
    pub async fn pseudonymise(
        &self,
        cutoff: i64,
        keys: std::sync::Arc<Pseudonyms>,
    ) -> Result<Pseudonymised> {
        if let Some(pg) = self.pg() {
            return pg.pseudonymise(cutoff, &keys).await;
        }
        self.write(move |tx| {
            let mut done = messages(tx, cutoff, &keys)?;
            done.senders = senders(tx, cutoff, &keys)?;
            Ok(done)
        })
        .await
    }
}

fn messages(tx: &Connection, cutoff: i64, keys: &Pseudonyms) -> Result<Pseudonymised> {
    let rows: Vec<Row> = tx
        .prepare_cached(
            "SELECT m.id, m.direction, m.sender, m.recipient, m.header, m.sealed IS NOT NULL FROM messages m \
             WHERE m.pseudonymised < 2 AND m.created_at < ?1 \
             AND (m.pseudonymised = 0 OR m.sealed IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = m.id AND q.dead = 0) \
             ORDER BY m.created_at LIMIT ?2",
        )?
        .query_map(params![cutoff, BATCH], |r| {
            Ok(Row {
                id: r.get(0)?,
                inbound: r.get::<_, String>(1)? == "inbound",
                sender: r.get(2)?,
                recipient: r.get(3)?,
                header: r.get(4)?,
                sealed: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut done = Pseudonymised::default();
    for row in rows {
        let (field, number) = if row.inbound {
            ("from", &row.sender)
        } else {
            ("to", &row.recipient)
        };
        let pseudonym = keys.address(number);
        // The header keeps the number while the body needs it as its AEAD
        // associated data; once the body is gone, the header's own value
        // is pseudonymised (the column may already be a pseudonym).
        let header = if row.sealed {
            None
        } else {
            rewrite_header(&row.header, field, keys)
        };
        let (sender, recipient) = if row.inbound {
            (&pseudonym, &row.recipient)
        } else {
            (&row.sender, &pseudonym)
        };
        tx.prepare_cached(
            "UPDATE messages SET sender = ?2, recipient = ?3, header = coalesce(?4, header), \
             pseudonymised = ?7, last_error = replace(last_error, ?5, ?6) WHERE id = ?1",
        )?
        .execute(params![
            row.id,
            sender,
            recipient,
            header,
            number,
            pseudonym,
            if row.sealed { 1 } else { 2 }
        ])?;
        if number.starts_with('+') {
            for sql in [
                "UPDATE message_events SET detail = replace(detail, ?2, ?3) \
                 WHERE message_id = ?1 AND instr(detail, ?2) > 0",
                "UPDATE queue SET last_error = replace(last_error, ?2, ?3) \
                 WHERE message_id = ?1 AND instr(last_error, ?2) > 0",
            ] {
                tx.prepare_cached(sql)?
                    .execute(params![row.id, number, pseudonym])?;
            }
        }
        done.messages += 1;
        done.headers += usize::from(!row.sealed);
    }
    Ok(done)
}

/// The header JSON with the number in `field` pseudonymised; `None` when
/// it does not parse (left as it is: a header the gateway cannot read names
/// nobody it could find either).
pub(super) fn rewrite_header(header: &[u8], field: &str, keys: &Pseudonyms) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(header).ok()?;
    let obj = v.as_object_mut()?;
    let number = obj.get(field)?.as_str()?.to_string();
    obj.insert(
        field.to_string(),
        serde_json::Value::String(keys.address(&number)),
    );
    serde_json::to_vec(&v).ok()
}

/// The review queue and audit log, by last activity.
fn senders(tx: &Connection, cutoff: i64, keys: &Pseudonyms) -> Result<usize> {
    let flagged: Vec<String> = tx
        .prepare_cached(
            "SELECT sender FROM flagged_senders WHERE last_seen < ?1 AND sender LIKE '+%' LIMIT ?2",
        )?
        .query_map(params![cutoff, BATCH], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for s in &flagged {
        let p = keys.of(s);
        // The same sender may already have a pseudonymised row: the newer wins.
        let clash: Option<i64> = tx
            .prepare_cached("SELECT 1 FROM flagged_senders WHERE sender = ?1")?
            .query_row(params![p], |r| r.get(0))
            .optional()?;
        if clash.is_some() {
            tx.prepare_cached("DELETE FROM flagged_senders WHERE sender = ?1")?
                .execute(params![s])?;
        } else {
            tx.prepare_cached("UPDATE flagged_senders SET sender = ?2 WHERE sender = ?1")?
                .execute(params![s, p])?;
        }
    }
    let audited: Vec<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, target FROM audit_log WHERE at < ?1 AND target LIKE '+%' LIMIT ?2",
        )?
        .query_map(params![cutoff, BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, target) in &audited {
        tx.prepare_cached("UPDATE audit_log SET target = ?2 WHERE id = ?1")?
            .execute(params![id, keys.of(target)])?;
    }
    debug_assert!(PREFIX.len() == 2);
    Ok(flagged.len() + audited.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counterparties_go_own_numbers_stay() {
        let db = crate::store::Db::open_in_memory().unwrap();
        let c = db.conn();
        let keys = Pseudonyms::new([1; 32]);
        for (id, dir, from, to, at) in [
            ("in", "inbound", "+33612345678", "+14155550101", 1_000),
            ("out", "outbound", "+14155550199", "+33612345678", 1_000),
            ("new", "outbound", "+14155550199", "+33612345678", 9_000),
        ] {
            let header = serde_json::to_vec(&serde_json::json!({"from": from, "to": to})).unwrap();
            c.execute(
                "INSERT INTO messages (id, direction, channel, sender, recipient, segments, encoding, size_class, status, \
                 created_at, updated_at, kid, header, sealed, last_error) \
                 VALUES (?1, ?2, 'sms', ?3, ?4, 1, 'gsm7', 0, 'failed', ?5, ?5, 'k', ?6, x'01', 'bad number ' || ?4)",
                params![id, dir, from, to, at, header],
            )
            .unwrap();
            c.execute(
                "INSERT INTO message_events (message_id, at, status, detail) VALUES (?1, 1, 'failed', 'to ' || ?2)",
                params![id, to],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO flagged_senders (sender, verdict, score, reasons, first_flagged_at, last_seen) \
             VALUES ('+33612345678', 'spam', 0.9, '[]', 1, 1)",
            [],
        )
        .unwrap();
        c.execute("UPDATE messages SET sealed = NULL WHERE id = 'out'", [])
            .unwrap();
        let done = messages(c, 5_000, &keys).unwrap();
        assert_eq!((done.messages, done.headers), (2, 1));
        assert_eq!(senders(c, 5_000, &keys).unwrap(), 1);
        let p = keys.of("+33612345678");
        let row = |id: &str| -> (String, String, Vec<u8>, Option<Vec<u8>>) {
            c.query_row(
                "SELECT sender, recipient, header, sealed FROM messages WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
        };
        // A body still kept: columns now, the header (its AEAD data) later.
        let (s, r, h, sealed) = row("in");
        assert_eq!((s.as_str(), r.as_str()), (p.as_str(), "+14155550101"));
        assert!(
            sealed.is_some(),
            "content is never destroyed to hide metadata"
        );
        let hv: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(hv["from"], "+33612345678");
        let (s, r, h, _) = row("out");
        assert_eq!((s.as_str(), r.as_str()), ("+14155550199", p.as_str()));
        let hv: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(hv["from"], "+14155550199");
        assert_eq!(hv["to"], p.as_str());
        // Its body goes: the next pass does the header.
        c.execute("UPDATE messages SET sealed = NULL WHERE id = 'in'", [])
            .unwrap();
        let done = messages(c, 5_000, &keys).unwrap();
        assert_eq!((done.messages, done.headers), (1, 1));
        let (s, _, h, _) = row("in");
        assert_eq!(s, p, "the pseudonym is not hashed again");
        let hv: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(hv["from"], p.as_str());
        let (_, r, _, sealed) = row("new");
        assert_eq!(r, "+33612345678", "younger than the cutoff");
        assert!(sealed.is_some());
        let left: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM message_events WHERE detail LIKE '%33612345678%' AND message_id != 'new'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        let flagged: String = c
            .query_row("SELECT sender FROM flagged_senders", [], |r| r.get(0))
            .unwrap();
        assert_eq!(flagged, p);
        // A second pass has nothing left to do.
        assert_eq!(messages(c, 5_000, &keys).unwrap().messages, 0);
    }
}
