//! Reassembly of concatenated SMS (TS 23.040 §9.2.3.24.1) as a pure state
//! machine: parts go in as plain values, complete or timed-out messages come
//! out. There is no clock: every part carries its arrival time and the caller
//! passes `now` to [`Reassembler::expire`].
//!
//! Why it is shaped this way:
//! * Parts are keyed by (source, reference width, reference, total), so
//!   several messages from one sender can interleave, and a 16-bit reference
//!   never merges with an 8-bit one.
//! * A completed message leaves the table, so a later message that reuses its
//!   reference starts afresh. A short memory of completed multipart messages
//!   (part fingerprints only, kept for one timeout) recognises late duplicates
//!   of their parts (modems redeliver when an acknowledgement is lost) without
//!   confusing them with a new message that reuses the reference: only an
//!   identical part body counts as duplicate. Single-part messages are not
//!   remembered: two identical texts are two messages.
//! * A message's deadline is its earliest part's arrival plus the timeout, so
//!   re-inserting the persisted parts after a restart, in arrival order, with
//!   their original arrival times, rebuilds the same state; re-inserting a
//!   part already held is a no-op.
//! * Memory is bounded: past the caps the message with the earliest deadline
//!   is surfaced as [`Incomplete`] (reason `Evicted`), never silently lost.
//! * Bodies are joined in their wire coding before decoding, which repairs
//!   escape pairs and surrogate pairs that other senders split across parts.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::gsm7::Gsm7Tables;
use super::segment::Encoding;
use super::tpdu::Deliver;
use super::ucs2;
use super::user_data::UserData;
use crate::Error;

/// The body of one part in its wire coding (septets for GSM 7-bit, octets
/// otherwise) and the tables it is written with. Plain data, so the gateway
/// can persist it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartBody {
    /// Alphabet of `data`.
    pub encoding: Encoding,
    /// National language tables for GSM 7-bit bodies.
    #[serde(default)]
    pub tables: Gsm7Tables,
    /// Septets (GSM 7-bit) or octets (UCS-2, 8-bit).
    pub data: Vec<u8>,
}

/// One part of a (possibly) concatenated message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Who sent it: the originator address, plus anything else the caller
    /// wants to keep apart (e.g. the receiving line).
    pub source: String,
    /// Concatenation reference (0 for single-part messages).
    pub reference: u16,
    /// True for 16-bit references (IEI 0x08).
    pub wide_reference: bool,
    /// Number of parts of the message (1..=255).
    pub total: u8,
    /// This part's number (1..=total).
    pub sequence: u8,
    /// When the part arrived (the caller's clock, persisted with the part).
    #[serde(with = "time::serde::rfc3339")]
    pub arrived_at: OffsetDateTime,
    /// The part's body.
    pub body: PartBody,
}

impl Part {
    /// The part an SMS-DELIVER carries; a message without a concatenation
    /// element is part 1 of 1 (reference 0) and completes at once.
    pub fn from_deliver(
        d: &Deliver,
        source: impl Into<String>,
        arrived_at: OffsetDateTime,
    ) -> Self {
        Self::from_user_data(&d.user_data, source, arrived_at)
    }

    /// The part any user data carries (e.g. an SMS-SUBMIT read back from SIM
    /// storage), like [`Part::from_deliver`].
    pub fn from_user_data(
        ud: &UserData,
        source: impl Into<String>,
        arrived_at: OffsetDateTime,
    ) -> Self {
        let concat = ud.header().and_then(|h| h.concat());
        Self {
            source: source.into(),
            reference: concat.map_or(0, |c| c.reference),
            wide_reference: concat.is_some_and(|c| c.wide_reference),
            total: concat.map_or(1, |c| c.total),
            sequence: concat.map_or(1, |c| c.part),
            arrived_at,
            body: PartBody {
                encoding: ud.encoding(),
                tables: ud.gsm7_tables(),
                data: ud.body().to_vec(),
            },
        }
    }

    fn key(&self) -> Key {
        Key {
            source: self.source.clone(),
            wide_reference: self.wide_reference,
            reference: self.reference,
            total: self.total,
        }
    }
}

/// What a message decodes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Content {
    /// Text (GSM 7-bit or UCS-2 parts).
    Text(String),
    /// Data of 8-bit parts, joined.
    Binary(Vec<u8>),
}

/// A message whose parts all arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Source of its parts.
    pub source: String,
    /// Concatenation reference.
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// The joined content.
    pub content: Content,
    /// Arrival of the earliest part.
    pub first_arrival: OffsetDateTime,
    /// Arrival of the latest part.
    pub last_arrival: OffsetDateTime,
}

/// Why an incomplete message was surfaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncompleteReason {
    /// Its deadline passed.
    Expired,
    /// It was pushed out to respect the memory caps.
    Evicted,
}

/// A message surfaced before all its parts arrived. The caller decides
/// whether to deliver what there is or drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// Source of its parts.
    pub source: String,
    /// Concatenation reference.
    pub reference: u16,
    /// Number of parts announced.
    pub total: u8,
    /// Part numbers that arrived, ascending.
    pub received: Vec<u8>,
    /// Part numbers that did not, ascending.
    pub missing: Vec<u8>,
    /// Content of the parts that arrived, in order.
    pub content: Content,
    /// Arrival of the earliest part.
    pub first_arrival: OffsetDateTime,
    /// When it was due.
    pub deadline: OffsetDateTime,
    /// Why it was surfaced.
    pub reason: IncompleteReason,
}

/// The result of inserting one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Stored; the message still waits for parts.
    Pending {
        /// Parts held so far.
        received: usize,
        /// Parts announced.
        total: u8,
    },
    /// Already held (or already delivered): ignored.
    Duplicate,
    /// This part completed the message.
    Complete(Message),
}

/// What [`Reassembler::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertOutcome {
    /// What happened to the part.
    pub inserted: Inserted,
    /// Messages surfaced incomplete while making room or because the part
    /// arrived after their deadline.
    pub surfaced: Vec<Incomplete>,
}

/// Limits of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReassemblyConfig {
    /// How long after its first part a message may wait for the others.
    pub timeout: Duration,
    /// Most messages waiting at once (at least 1).
    pub max_pending_messages: usize,
    /// Most parts held at once over all messages (at least 255).
    pub max_pending_parts: usize,
}

impl ReassemblyConfig {
    /// Ten minutes, like Gammu SMSD's `MultipartTimeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::minutes(10);
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            max_pending_messages: 10_000,
            max_pending_parts: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    source: String,
    wide_reference: bool,
    reference: u16,
    total: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    parts: BTreeMap<u8, (PartBody, OffsetDateTime)>,
    first_arrival: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Finished {
    key: Key,
    fingerprints: BTreeMap<u8, u64>,
    forget_at: OffsetDateTime,
}

/// Joins multipart SMS; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembler {
    config: ReassemblyConfig,
    pending: BTreeMap<Key, Pending>,
    part_count: usize,
    finished: VecDeque<Finished>,
}

fn fingerprint(body: &PartBody) -> u64 {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

impl Reassembler {
    /// An empty reassembler with these limits (raised to their minimums).
    pub fn new(config: ReassemblyConfig) -> Self {
        let config = ReassemblyConfig {
            timeout: config.timeout.max(Duration::ZERO),
            max_pending_messages: config.max_pending_messages.max(1),
            max_pending_parts: config.max_pending_parts.max(255),
        };
        Self {
            config,
            pending: BTreeMap::new(),
            part_count: 0,
            finished: VecDeque::new(),
        }
    }

    /// Messages waiting for parts.
    pub fn pending_messages(&self) -> usize {
        self.pending.len()
    }

    /// Parts held over all waiting messages.
    pub fn pending_parts(&self) -> usize {
        self.part_count
    }

    /// The earliest deadline of a waiting message: when to call
    /// [`Reassembler::expire`] next.
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        self.pending
            .values()
            .map(|p| p.first_arrival + self.config.timeout)
            .min()
    }

    /// Every part held, for inspection or persistence (ordered by message
    /// key, then part number).
    pub fn parts(&self) -> Vec<Part> {
        let mut out = Vec::with_capacity(self.part_count);
        for (k, p) in &self.pending {
            for (&sequence, (body, arrived_at)) in &p.parts {
                out.push(Part {
                    source: k.source.clone(),
                    reference: k.reference,
                    wide_reference: k.wide_reference,
                    total: k.total,
                    sequence,
                    arrived_at: *arrived_at,
                    body: body.clone(),
                });
            }
        }
        out
    }

    /// Adds a part. Errors only for parts that cannot belong to any message
    /// (total 0, sequence 0 or above total, body over 140 octets).
    pub fn insert(&mut self, part: Part) -> Result<InsertOutcome, Error> {
        if part.total == 0 || part.sequence == 0 || part.sequence > part.total {
            return Err(Error::Reassembly {
                reason: "part number must be within 1..=total",
            });
        }
        if part.body.data.len() > 160 {
            return Err(Error::Reassembly {
                reason: "part body longer than one segment",
            });
        }
        let mut surfaced = Vec::new();
        let key = part.key();
        let now = part.arrived_at;
        self.forget_finished(now);

        // A part arriving after the deadline of the message it would join
        // closes that message and starts a new one.
        if let Some(p) = self.pending.get(&key) {
            if now > p.first_arrival + self.config.timeout {
                if let Some(inc) = self.remove(&key, IncompleteReason::Expired) {
                    surfaced.push(inc);
                }
            }
        }

        if let Some(p) = self.pending.get(&key) {
            if p.parts.contains_key(&part.sequence) {
                return Ok(InsertOutcome {
                    inserted: Inserted::Duplicate,
                    surfaced,
                });
            }
        } else if self.is_finished_duplicate(&key, &part) {
            return Ok(InsertOutcome {
                inserted: Inserted::Duplicate,
                surfaced,
            });
        }

        if part.total == 1 {
            // Not remembered: two identical single-part messages ("ok",
            // "ok") are two messages. Redelivery of single messages is
            // caught by the caller's message ids, not here.
            let content = build_content(&[(1, &part.body)]);
            return Ok(InsertOutcome {
                inserted: Inserted::Complete(Message {
                    source: part.source,
                    reference: part.reference,
                    total: 1,
                    content,
                    first_arrival: now,
                    last_arrival: now,
                }),
                surfaced,
            });
        }

        self.make_room(&key, &mut surfaced);
        let entry = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            parts: BTreeMap::new(),
            first_arrival: now,
        });
        entry.first_arrival = entry.first_arrival.min(now);
        entry.parts.insert(part.sequence, (part.body, now));
        self.part_count += 1;
        let received = entry.parts.len();
        if received < usize::from(key.total) {
            return Ok(InsertOutcome {
                inserted: Inserted::Pending {
                    received,
                    total: key.total,
                },
                surfaced,
            });
        }
        let Some(done) = self.pending.remove(&key) else {
            // Unreachable: the entry was inserted above.
            return Ok(InsertOutcome {
                inserted: Inserted::Duplicate,
                surfaced,
            });
        };
        self.part_count -= done.parts.len();
        let bodies: Vec<(u8, &PartBody)> = done.parts.iter().map(|(&s, (b, _))| (s, b)).collect();
        let content = build_content(&bodies);
        let last_arrival = done
            .parts
            .values()
            .map(|(_, t)| *t)
            .max()
            .unwrap_or(done.first_arrival);
        let fingerprints = done
            .parts
            .iter()
            .map(|(&s, (b, _))| (s, fingerprint(b)))
            .collect();
        let message = Message {
            source: key.source.clone(),
            reference: key.reference,
            total: key.total,
            content,
            first_arrival: done.first_arrival,
            last_arrival,
        };
        self.remember_finished(key, fingerprints, last_arrival);
        Ok(InsertOutcome {
            inserted: Inserted::Complete(message),
            surfaced,
        })
    }

    /// Surfaces every waiting message whose deadline is at or before `now`,
    /// earliest deadline first.
    pub fn expire(&mut self, now: OffsetDateTime) -> Vec<Incomplete> {
        self.forget_finished(now);
        let timeout = self.config.timeout;
        let mut due: Vec<(OffsetDateTime, Key)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.first_arrival + timeout <= now)
            .map(|(k, p)| (p.first_arrival + timeout, k.clone()))
            .collect();
        due.sort();
        due.into_iter()
            .filter_map(|(_, k)| self.remove(&k, IncompleteReason::Expired))
            .collect()
    }

    fn remove(&mut self, key: &Key, reason: IncompleteReason) -> Option<Incomplete> {
        let p = self.pending.remove(key)?;
        self.part_count -= p.parts.len();
        let received: Vec<u8> = p.parts.keys().copied().collect();
        let missing = (1..=key.total)
            .filter(|s| !p.parts.contains_key(s))
            .collect();
        let bodies: Vec<(u8, &PartBody)> = p.parts.iter().map(|(&s, (b, _))| (s, b)).collect();
        Some(Incomplete {
            source: key.source.clone(),
            reference: key.reference,
            total: key.total,
            received,
            missing,
            content: build_content(&bodies),
            first_arrival: p.first_arrival,
            deadline: p.first_arrival + self.config.timeout,
            reason,
        })
    }

    /// Evicts earliest-deadline messages (other than `keep`) until one more
    /// part (and possibly one more message) fits.
    fn make_room(&mut self, keep: &Key, surfaced: &mut Vec<Incomplete>) {
        loop {
            let new_message = !self.pending.contains_key(keep);
            let over_messages =
                new_message && self.pending.len() >= self.config.max_pending_messages;
            let over_parts = self.part_count >= self.config.max_pending_parts;
            if !over_messages && !over_parts {
                return;
            }
            let victim = self
                .pending
                .iter()
                .filter(|(k, _)| *k != keep)
                .min_by(|a, b| (a.1.first_arrival, a.0).cmp(&(b.1.first_arrival, b.0)))
                .map(|(k, _)| k.clone());
            match victim.and_then(|k| self.remove(&k, IncompleteReason::Evicted)) {
                Some(inc) => surfaced.push(inc),
                None => return,
            }
        }
    }

    fn remember_finished(&mut self, key: Key, fingerprints: BTreeMap<u8, u64>, at: OffsetDateTime) {
        self.finished.push_back(Finished {
            key,
            fingerprints,
            forget_at: at + self.config.timeout,
        });
        while self.finished.len() > self.config.max_pending_messages {
            self.finished.pop_front();
        }
    }

    fn forget_finished(&mut self, now: OffsetDateTime) {
        self.finished.retain(|f| f.forget_at >= now);
    }

    fn is_finished_duplicate(&self, key: &Key, part: &Part) -> bool {
        let fp = fingerprint(&part.body);
        self.finished
            .iter()
            .any(|f| &f.key == key && f.fingerprints.get(&part.sequence) == Some(&fp))
    }
}

/// Decodes the bodies of parts (ascending part numbers). Consecutive parts
/// with the same coding are joined before decoding, so pairs split across a
/// part boundary survive; a gap (missing part) or a change of coding starts
/// a new run.
fn build_content(parts: &[(u8, &PartBody)]) -> Content {
    if !parts.is_empty() && parts.iter().all(|(_, b)| b.encoding == Encoding::EightBit) {
        return Content::Binary(
            parts
                .iter()
                .flat_map(|(_, b)| b.data.iter().copied())
                .collect(),
        );
    }
    let mut text = String::new();
    let mut run: Vec<u8> = Vec::new();
    let mut run_kind: Option<(Encoding, Gsm7Tables)> = None;
    let mut prev_seq: Option<u8> = None;
    let flush = |run: &mut Vec<u8>, kind: Option<(Encoding, Gsm7Tables)>, text: &mut String| {
        match kind {
            Some((Encoding::Gsm7, t)) => t.decode(run, text),
            Some((Encoding::Ucs2, _)) => ucs2::decode(run, text),
            // 8-bit data among text parts: shown as Latin-1.
            Some((Encoding::EightBit, _)) => text.extend(run.iter().map(|&b| char::from(b))),
            None => {}
        }
        run.clear();
    };
    for &(seq, body) in parts {
        let kind = (body.encoding, body.tables);
        let contiguous = prev_seq.is_some_and(|p| u16::from(p) + 1 == u16::from(seq));
        // An odd-length UCS-2 body cannot be joined without misaligning the next.
        let aligned = body.encoding != Encoding::Ucs2 || run.len().is_multiple_of(2);
        if run_kind != Some(kind) || !contiguous || !aligned {
            flush(&mut run, run_kind, &mut text);
            run_kind = Some(kind);
        }
        run.extend_from_slice(&body.data);
        prev_seq = Some(seq);
    }
    flush(&mut run, run_kind, &mut text);
    Content::Text(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    fn gsm(text: &str) -> PartBody {
        let mut data = Vec::new();
        Gsm7Tables::DEFAULT.encode(text, &mut data).unwrap();
        PartBody {
            encoding: Encoding::Gsm7,
            tables: Gsm7Tables::DEFAULT,
            data,
        }
    }

    fn part(source: &str, reference: u16, total: u8, sequence: u8, secs: i64, text: &str) -> Part {
        Part {
            source: source.into(),
            reference,
            wide_reference: false,
            total,
            sequence,
            arrived_at: datetime!(2026-03-01 12:00 UTC) + Duration::seconds(secs),
            body: gsm(text),
        }
    }

    fn text(o: &InsertOutcome) -> Option<&str> {
        match &o.inserted {
            Inserted::Complete(Message {
                content: Content::Text(t),
                ..
            }) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn out_of_order_duplicates_and_interleaving() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let a3 = r.insert(part("+1", 5, 3, 3, 0, "C")).unwrap();
        assert_eq!(
            a3.inserted,
            Inserted::Pending {
                received: 1,
                total: 3
            }
        );
        r.insert(part("+1", 6, 2, 1, 1, "x")).unwrap();
        assert_eq!(
            r.insert(part("+1", 5, 3, 3, 2, "C")).unwrap().inserted,
            Inserted::Duplicate
        );
        r.insert(part("+1", 5, 3, 1, 3, "A")).unwrap();
        let done = r.insert(part("+1", 5, 3, 2, 4, "B")).unwrap();
        assert_eq!(text(&done), Some("ABC"));
        let done = r.insert(part("+1", 6, 2, 2, 5, "y")).unwrap();
        assert_eq!(text(&done), Some("xy"));
        assert_eq!(r.pending_messages(), 0);
        assert_eq!(r.pending_parts(), 0);
    }

    #[test]
    fn reused_reference_starts_a_new_message() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        r.insert(part("+1", 9, 2, 1, 0, "old1")).unwrap();
        assert_eq!(
            text(&r.insert(part("+1", 9, 2, 2, 1, "old2")).unwrap()),
            Some("old1old2")
        );
        // Late redelivery of an old part: duplicate, not a new message.
        assert_eq!(
            r.insert(part("+1", 9, 2, 2, 2, "old2")).unwrap().inserted,
            Inserted::Duplicate
        );
        // New message with the same reference and different text.
        r.insert(part("+1", 9, 2, 2, 3, "new2")).unwrap();
        assert_eq!(
            text(&r.insert(part("+1", 9, 2, 1, 4, "new1")).unwrap()),
            Some("new1new2")
        );
    }

    #[test]
    fn identical_single_part_messages_both_complete() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        assert_eq!(
            text(&r.insert(part("+1", 0, 1, 1, 0, "ok")).unwrap()),
            Some("ok")
        );
        assert_eq!(
            text(&r.insert(part("+1", 0, 1, 1, 1, "ok")).unwrap()),
            Some("ok")
        );
    }

    #[test]
    fn deadline_surfaces_incomplete() {
        let mut r = Reassembler::new(ReassemblyConfig {
            timeout: Duration::seconds(60),
            ..ReassemblyConfig::default()
        });
        r.insert(part("+1", 1, 3, 1, 0, "A")).unwrap();
        r.insert(part("+1", 1, 3, 3, 10, "C")).unwrap();
        let t0 = datetime!(2026-03-01 12:00 UTC);
        assert_eq!(r.next_deadline(), Some(t0 + Duration::seconds(60)));
        assert!(r.expire(t0 + Duration::seconds(59)).is_empty());
        let out = r.expire(t0 + Duration::seconds(60));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].received, vec![1, 3]);
        assert_eq!(out[0].missing, vec![2]);
        assert_eq!(out[0].content, Content::Text("AC".into()));
        assert_eq!(out[0].reason, IncompleteReason::Expired);
        assert_eq!(r.pending_parts(), 0);
    }

    #[test]
    fn reinsertion_rebuilds_the_same_state() {
        let parts = vec![
            part("+1", 1, 3, 2, 0, "B"),
            part("+2", 1, 2, 1, 1, "x"),
            part("+1", 1, 3, 1, 2, "A"),
        ];
        let mut a = Reassembler::new(ReassemblyConfig::default());
        for p in &parts {
            a.insert(p.clone()).unwrap();
        }
        let mut b = Reassembler::new(ReassemblyConfig::default());
        for p in a.parts() {
            b.insert(p).unwrap();
        }
        assert_eq!(a.parts(), b.parts());
        assert_eq!(a.next_deadline(), b.next_deadline());
        // Inserting everything again changes nothing.
        for p in &parts {
            assert_eq!(b.insert(p.clone()).unwrap().inserted, Inserted::Duplicate);
        }
        assert_eq!(a.parts(), b.parts());
    }

    #[test]
    fn caps_evict_oldest() {
        let mut r = Reassembler::new(ReassemblyConfig {
            max_pending_messages: 2,
            ..ReassemblyConfig::default()
        });
        r.insert(part("+1", 1, 2, 1, 0, "a")).unwrap();
        r.insert(part("+2", 1, 2, 1, 1, "b")).unwrap();
        let o = r.insert(part("+3", 1, 2, 1, 2, "c")).unwrap();
        assert_eq!(o.surfaced.len(), 1);
        assert_eq!(o.surfaced[0].source, "+1");
        assert_eq!(o.surfaced[0].reason, IncompleteReason::Evicted);
        assert_eq!(r.pending_messages(), 2);
    }

    #[test]
    fn rejects_impossible_parts() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        assert!(r.insert(part("+1", 1, 0, 0, 0, "a")).is_err());
        assert!(r.insert(part("+1", 1, 2, 3, 0, "a")).is_err());
    }

    #[test]
    fn split_escape_and_surrogate_are_repaired() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut p1 = part("+1", 1, 2, 1, 0, "a");
        p1.body.data.push(0x1B); // ESC at the end of part 1
        let p2 = part("+1", 1, 2, 2, 1, "e"); // 'e' = 0x65: with ESC -> '€'
        r.insert(p1).unwrap();
        assert_eq!(text(&r.insert(p2).unwrap()), Some("a€"));
        let ucs = |data: Vec<u8>| PartBody {
            encoding: Encoding::Ucs2,
            tables: Gsm7Tables::DEFAULT,
            data,
        };
        let mut q1 = part("+1", 2, 2, 1, 0, "");
        q1.body = ucs(vec![0xD8, 0x3D]);
        let mut q2 = part("+1", 2, 2, 2, 0, "");
        q2.body = ucs(vec![0xDE, 0x00]);
        r.insert(q2).unwrap();
        assert_eq!(text(&r.insert(q1).unwrap()), Some("😀"));
    }
}
