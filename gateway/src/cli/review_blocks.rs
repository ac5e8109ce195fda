//! `gateway review list --by-block`: the review queue folded by 100-number
//! block. A campaign spread over consecutive numbers, and a passcode
//! provider's pool of consecutive long codes (which the campaign rule
//! blocks together), fill the queue with dozens of neighbours; one line per
//! block, with the pattern `review allow` / `review block` take, lets an
//! operator decide them in one command.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::review::QueueRow;

/// Flagged senders of one 100-number block (or one sender alone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockRow {
    /// `+1312555700*` for a block of several flagged senders (the pattern
    /// `review allow` and `review block` take), or the sender itself.
    pub pattern: String,
    /// Flagged senders in it.
    pub senders: usize,
    /// Of which `spam` (blocked).
    pub spam: usize,
    /// Messages held or blocked now.
    pub held: i64,
    /// Highest score.
    pub max_score: f64,
    /// The reason most of its senders show first.
    pub reason: Option<String>,
    /// RFC 3339 of the latest flag.
    pub last_seen: String,
}

/// The block key of an E.164 number: all but its last two digits. Other
/// senders (short codes, alphanumeric ids) stand alone.
fn block_of(sender: &str) -> Option<&str> {
    let digits = sender.strip_prefix('+')?;
    (digits.len() >= 8 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| &sender[..sender.len() - 2])
}

/// Folds queue rows by block, most held first. A block with one flagged
/// sender is shown as that sender.
pub fn by_block(rows: &[QueueRow]) -> Vec<BlockRow> {
    let mut groups: BTreeMap<&str, Vec<&QueueRow>> = BTreeMap::new();
    for r in rows {
        let key = block_of(&r.sender).unwrap_or(&r.sender);
        groups.entry(key).or_default().push(r);
    }
    let mut out: Vec<BlockRow> = groups
        .into_iter()
        .map(|(key, members)| fold(key, &members))
        .collect();
    out.sort_by(|a, b| {
        b.held
            .cmp(&a.held)
            .then(b.max_score.total_cmp(&a.max_score))
    });
    out
}

fn fold(key: &str, members: &[&QueueRow]) -> BlockRow {
    let pattern = if members.len() > 1 {
        format!("{key}*")
    } else {
        members[0].sender.clone()
    };
    let mut firsts: Vec<(&str, usize)> = Vec::new();
    for r in members {
        if let Some(first) = r.reasons.first() {
            match firsts.iter_mut().find(|(w, _)| *w == first.as_str()) {
                Some((_, n)) => *n += 1,
                None => firsts.push((first.as_str(), 1)),
            }
        }
    }
    BlockRow {
        pattern,
        senders: members.len(),
        spam: members.iter().filter(|r| r.verdict == "spam").count(),
        held: members.iter().map(|r| r.held).sum(),
        max_score: members.iter().map(|r| r.score).fold(0.0, f64::max),
        reason: firsts
            .iter()
            .max_by_key(|(_, n)| *n)
            .map(|(w, _)| (*w).to_string()),
        last_seen: members
            .iter()
            .map(|r| r.last_seen.as_str())
            .max()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Prints the folded queue as a table.
pub fn print(rows: &[BlockRow]) {
    println!(
        "{:<16} {:>7} {:>4} {:>5} {:>5} {:<20} TOP REASON",
        "SENDERS", "FLAGGED", "SPAM", "HELD", "SCORE", "LAST SEEN"
    );
    for r in rows {
        println!(
            "{:<16} {:>7} {:>4} {:>5} {:>5.2} {:<20} {}",
            r.pattern,
            r.senders,
            r.spam,
            r.held,
            r.max_score,
            r.last_seen.chars().take(19).collect::<String>(),
            r.reason.as_deref().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sender: &str, verdict: &str, score: f64, held: i64, reason: &str) -> QueueRow {
        QueueRow {
            sender: sender.into(),
            verdict: verdict.into(),
            score,
            reasons: vec![reason.into()],
            held,
            adapter: None,
            first_seen: "2026-12-07T08:00:00.000Z".into(),
            last_seen: format!("2026-12-07T08:{held:02}:00.000Z"),
            countries: vec![],
        }
    }

    #[test]
    fn neighbours_fold_into_the_pattern_review_takes() {
        let rows = [
            row("+6289718308901", "spam", 0.97, 12, "campaign"),
            row("+6289718308917", "spam", 0.99, 30, "campaign"),
            row("+6289718308955", "suspect", 0.81, 5, "broadcast"),
            row("+6289718309001", "spam", 0.90, 3, "failures"),
            row("MYBANK", "suspect", 0.70, 40, "fan-out"),
        ];
        let blocks = by_block(&rows);
        assert_eq!(
            blocks
                .iter()
                .map(|b| (b.pattern.as_str(), b.senders, b.spam, b.held))
                .collect::<Vec<_>>(),
            [
                ("+62897183089*", 3, 2, 47),
                ("MYBANK", 1, 0, 40),
                ("+6289718309001", 1, 1, 3),
            ]
        );
        let pool = &blocks[0];
        assert_eq!(pool.max_score, 0.99);
        assert_eq!(pool.reason.as_deref(), Some("campaign"));
        assert_eq!(pool.last_seen, "2026-12-07T08:30:00.000Z");
    }

    #[test]
    fn only_full_international_numbers_have_a_block() {
        assert_eq!(block_of("+14155550100"), Some("+141555501"));
        assert_eq!(block_of("+1415"), None, "too short to be a number");
        assert_eq!(block_of("72345"), None, "a short code");
        assert_eq!(block_of("+1415555ABCD"), None);
    }
}
