//! Opt-out at the edge: STOP / START / HELP keywords in inbound messages.
//!
//! Recognised in the pipeline, before sealing, for every adapter: the text is
//! looked at once, here, and only the fact (which keyword, between which two
//! addresses) is recorded, as a row of `opt_outs` and a message event. The
//! text itself is sealed like any other message. Later outbound messages
//! from that local address to that remote number are refused until START.
//!
//! This is compliance (CTIA / carrier rules, Twilio's and Telnyx's default
//! keywords), not spam detection; the classifier sees none of it.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::RwLock;

use super::Pipeline;
use crate::core::error::{Error, Result};
use crate::store::{InsertOutcome, NewMessage};

pub use crate::store::optout::Keyword;

const STOP: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
const START: &[&str] = &["START", "UNSTOP", "SUBSCRIBE"];
const HELP: &[&str] = &["HELP", "INFO"];

/// The keyword a message is, if it is one: the whole message, one word, in
/// any case, with surrounding whitespace and trailing punctuation ignored
/// ("Stop.", " stop! "). "Please stop texting me" is not a keyword: carriers
/// match the whole message, and so does this.
pub fn keyword(text: &str) -> Option<Keyword> {
    let t = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace());
    if t.is_empty() || t.len() > 16 {
        return None;
    }
    let up = t.to_ascii_uppercase();
    let find = |list: &[&'static str]| list.iter().find(|k| **k == up).copied();
    find(STOP)
        .map(Keyword::Stop)
        .or_else(|| find(START).map(Keyword::Start))
        .or_else(|| find(HELP).map(Keyword::Help))
}

/// Inserts an inbound message and, when it is a keyword, records it in the
/// same transaction (a retried webhook records nothing twice).
pub async fn insert_inbound(
    p: &Pipeline,
    row: NewMessage,
    kw: Option<Keyword>,
) -> Result<InsertOutcome> {
    let stop = matches!(kw, Some(Keyword::Stop(_)));
    let pair = (row.recipient.clone(), row.sender.clone());
    let outcome = p.store.insert_inbound(row, kw).await?;
    if stop {
        p.opt_outs.note(&pair.0, &pair.1);
    }
    Ok(outcome)
}

/// Which (local, remote) pairs may have opted out, as 64-bit hashes, so that
/// the check before every outbound message needs no database read unless
/// the pair was ever opted out (then the table answers). Opt-outs are rare
/// and only this process records them (inbound keywords), so the set is
/// loaded once at start and grown after each committed STOP; a START leaves
/// the hash in place and the table says "no longer". A hash collision only
/// costs one read.
#[derive(Debug, Default)]
pub struct OptOutFilter {
    pairs: RwLock<HashSet<u64>>,
}

fn pair_hash(local: &str, remote: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (local, remote).hash(&mut h);
    h.finish()
}

impl OptOutFilter {
    /// Loads every recorded pair (blocking; called once at start).
    pub fn load(store: &crate::store::Store) -> Result<Self> {
        let pairs = store.opt_out_pairs(pair_hash)?;
        Ok(Self {
            pairs: RwLock::new(pairs),
        })
    }

    /// Remembers a committed opt-out.
    pub fn note(&self, local: &str, remote: &str) {
        if let Ok(mut p) = self.pairs.write() {
            p.insert(pair_hash(local, remote));
        }
    }

    /// False when the pair certainly never opted out.
    pub fn may_contain(&self, local: &str, remote: &str) -> bool {
        self.pairs
            .read()
            .map(|p| p.contains(&pair_hash(local, remote)))
            // A poisoned lock must not let a message through unchecked.
            .unwrap_or(true)
    }
}

/// The keyword with which `remote` opted out of messages from `local`, if so.
///
/// On PostgreSQL another node may have recorded the opt-out, which this
/// node's in-memory filter never saw: the table answers every time (one
/// indexed read per send) until the filters are kept coherent across nodes.
pub async fn opted_out(p: &Pipeline, local: String, remote: String) -> Result<Option<String>> {
    if !p.store.is_postgres() && !p.opt_outs.may_contain(&local, &remote) {
        return Ok(None);
    }
    p.store.opted_out(local, remote).await
}

/// Refuses an outbound message from `from` (or the route's default sender)
/// to `to` when `to` opted out of that sender.
pub async fn check_outbound(p: &Pipeline, route: &str, from: &str, to: &str) -> Result<()> {
    let local = if from.is_empty() {
        match p.routes.get(route).and_then(|r| r.default_from()) {
            Some(f) => f.to_string(),
            None => return Ok(()),
        }
    } else {
        from.to_string()
    };
    if let Some(k) = opted_out(p, local, to.to_string()).await? {
        return Err(Error::invalid(
            "to",
            format!(
                "the recipient opted out of messages from this sender (keyword {k}); \
                 nothing is sent until they reply START"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_whole_messages() {
        assert_eq!(keyword("STOP"), Some(Keyword::Stop("STOP")));
        assert_eq!(keyword(" stop! "), Some(Keyword::Stop("STOP")));
        assert_eq!(keyword("Unsubscribe."), Some(Keyword::Stop("UNSUBSCRIBE")));
        for k in ["cancel", "End", "QUIT", "stopall"] {
            assert!(matches!(keyword(k), Some(Keyword::Stop(_))), "{k}");
        }
        assert_eq!(keyword("start"), Some(Keyword::Start("START")));
        assert_eq!(keyword("Help?"), Some(Keyword::Help("HELP")));
        assert_eq!(keyword("please stop"), None);
        assert_eq!(keyword("stopped"), None);
        assert_eq!(keyword(""), None);
        assert_eq!(keyword("STOP".repeat(10).as_str()), None);
        // Non-ASCII case folding must not panic or match.
        assert_eq!(keyword("ſtop"), None);
    }
}
