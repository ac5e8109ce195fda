//! Multipart messages arriving over SMPP (inbound `deliver_sm` on a client
//! bind, `submit_sm` from a server client): parts are reassembled in
//! memory and, until their message is complete, kept durably in
//! `pending_parts`, sealed to the edge key like the modem's. A part is
//! acknowledged only after that commit, so an acknowledged part survives a
//! crash; the store is read back when the side starts.
//!
//! Each message gets its id when its first part arrives (a server answers
//! every part's `submit_sm_resp` with an id derived from it); the id rides
//! in the stored part's envelope header so it survives a restart too.

use std::collections::HashMap;

use std::sync::Arc;

use adapters::sms::{Content as SmsContent, Inserted, Part, Reassembler, ReassemblyConfig};
use time::OffsetDateTime;

use crate::pipeline::Pipeline;
use crate::pipeline::parts as pending_parts;

/// Which message a part belongs to.
pub(super) type Key = (String, u16, u8);

/// What became of one part.
pub(super) enum Outcome {
    /// Seen before (a retry); nothing changed.
    Duplicate { group: String },
    /// Stored; waiting for its siblings.
    Pending { group: String },
    /// The message is complete: commit it, then call [`Parts::forget`].
    Complete {
        group: String,
        key: Key,
        content: SmsContent,
    },
}

pub(super) struct Parts {
    pipeline: Arc<Pipeline>,
    adapter: String,
    to: String,
    reassembler: Reassembler,
    rows: HashMap<Key, Vec<i64>>,
    groups: HashMap<Key, String>,
    timeout: time::Duration,
}

/// The content of a single-part message (8-bit data stays octets).
pub(super) fn content_of(part: &Part) -> SmsContent {
    match adapters::smpp::concat::text_of(part) {
        Some(t) => SmsContent::Text(t),
        None => SmsContent::Binary(part.body.data.clone()),
    }
}

fn key_of(p: &Part) -> Key {
    (p.source.clone(), p.reference, p.total)
}

impl Parts {
    /// Parts of `adapter` (the `pending_parts.adapter` value), addressed to `to`
    /// in the stored headers (metadata only).
    pub fn new(pipeline: Arc<Pipeline>, adapter: String, to: String, timeout_secs: u64) -> Self {
        let timeout = time::Duration::seconds(timeout_secs.min(i64::MAX as u64) as i64);
        Self {
            pipeline,
            adapter,
            to,
            reassembler: Reassembler::new(ReassemblyConfig {
                timeout,
                ..ReassemblyConfig::default()
            }),
            rows: HashMap::new(),
            groups: HashMap::new(),
            timeout,
        }
    }

    /// Adds a part; stores it when its message is not complete yet.
    pub async fn insert(&mut self, part: Part) -> crate::Result<Outcome> {
        let key = key_of(&part);
        let group = self
            .groups
            .entry(key.clone())
            .or_insert_with(|| uuid::Uuid::now_v7().to_string())
            .clone();
        let outcome = self
            .reassembler
            .insert(part.clone())
            .map_err(|e| crate::Error::invalid("short_message", e.to_string()))?;
        for inc in outcome.surfaced {
            // Evicted to stay within the reassembler's bounds.
            tracing::warn!(
                received = inc.received.len(),
                total = inc.total,
                "incomplete SMPP multipart message evicted"
            );
            self.forget(&(inc.source, inc.reference, inc.total)).await;
        }
        match outcome.inserted {
            Inserted::Duplicate => Ok(Outcome::Duplicate { group }),
            Inserted::Pending { .. } => {
                if let Err(e) = self.persist(&part, &group).await {
                    // Not stored, so not acknowledged: take it out again so a
                    // retry of this part is not mistaken for a duplicate.
                    self.reload().await?;
                    return Err(e);
                }
                Ok(Outcome::Pending { group })
            }
            Inserted::Complete(m) => Ok(Outcome::Complete {
                group,
                key,
                content: m.content,
            }),
        }
    }

    /// Messages whose time ran out: what arrived of them (text), oldest
    /// first; their stored parts stay until [`Parts::forget`].
    pub fn expire(&mut self) -> Vec<(String, Key, SmsContent)> {
        let now = OffsetDateTime::now_utc();
        self.reassembler
            .expire(now)
            .into_iter()
            .map(|inc| {
                let key = (inc.source.clone(), inc.reference, inc.total);
                let group = self
                    .groups
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
                (group, key, inc.content)
            })
            .collect()
    }

    /// When the next message runs out of time.
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        self.reassembler.next_deadline()
    }

    /// Deletes the stored parts of a message that was committed (or dropped).
    pub async fn forget(&mut self, key: &Key) {
        self.groups.remove(key);
        let Some(ids) = self.rows.remove(key) else {
            return;
        };
        let r = pending_parts::delete(&self.pipeline, ids).await;
        if let Err(e) = r {
            tracing::error!(error = %e, "deleting committed SMPP parts failed");
        }
    }

    async fn persist(&mut self, part: &Part, group: &str) -> crate::Result<()> {
        // The sender column is metadata for retention sweeps; the part's
        // own source key (which may carry a client id) stays sealed.
        let owner = pending_parts::Owner {
            adapter: self.adapter.clone(),
            sender: String::new(),
            group: group.to_string(),
            from: String::new(),
            to: self.to.clone(),
        };
        let id = pending_parts::insert(&self.pipeline, owner, part).await?;
        self.rows.entry(key_of(part)).or_default().push(id);
        Ok(())
    }

    /// Rebuilds the reassembler from the store (at start, or after a failed
    /// commit). Returns messages that are complete already (a crash between
    /// storing the last part and committing the message).
    pub async fn reload(&mut self) -> crate::Result<Vec<(String, Key, SmsContent)>> {
        let rows = pending_parts::load(&self.pipeline, self.adapter.clone()).await?;
        self.reassembler = Reassembler::new(ReassemblyConfig {
            timeout: self.timeout,
            ..ReassemblyConfig::default()
        });
        self.rows.clear();
        self.groups.clear();
        let mut complete = Vec::new();
        for (id, opened) in rows {
            let Ok((group, part)) = opened else {
                tracing::error!(
                    row = id,
                    "a stored SMPP part cannot be opened; left in place"
                );
                continue;
            };
            let key = key_of(&part);
            self.rows.entry(key.clone()).or_default().push(id);
            self.groups.entry(key.clone()).or_insert(group.clone());
            if let Ok(o) = self.reassembler.insert(part) {
                if let Inserted::Complete(m) = o.inserted {
                    complete.push((group, key, m.content));
                }
            }
        }
        Ok(complete)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use adapters::smpp::concat::{Incoming, to_part};

    use super::*;

    fn part(data_coding: u8, short_message: &[u8]) -> Part {
        let incoming = Incoming {
            data_coding,
            esm_class: 0,
            short_message,
            message_payload: None,
            sar: None,
        };
        to_part(&incoming, "+1\u{0}+2".into(), OffsetDateTime::now_utc()).unwrap()
    }

    #[test]
    fn eight_bit_data_stays_octets_and_text_stays_text() {
        let octets = [0x00, 0x1b, 0xff, 0x80];
        assert_eq!(
            content_of(&part(0x04, &octets)),
            SmsContent::Binary(octets.to_vec())
        );
        assert_eq!(
            content_of(&part(0x00, b"hello")),
            SmsContent::Text("hello".into())
        );
    }
}
