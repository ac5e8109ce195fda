//! The spam-review store: flagged senders (the review queue), allow/block
//! lists with expiry, and the audit log of operators' decisions, which double
//! as training labels for `gateway model train`.
//!
//! Everything here is metadata; there is no text to show, by design.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// Operators' spam/ham decisions, last one per sender, as training labels.
pub fn decisions_as_labels(data_dir: &Path) -> Result<Vec<(String, classifier::Label)>> {
    let db = data_dir.join(crate::store::DB_FILE);
    if !db.exists() {
        return Ok(Vec::new());
    }
    let conn = crate::store::open_for_cli(data_dir)?;
    labels(&conn)
}

/// See [`decisions_as_labels`].
pub fn labels(conn: &Connection) -> Result<Vec<(String, classifier::Label)>> {
    let mut stmt = conn.prepare(
        "SELECT target, action FROM audit_log WHERE action IN ('mark_spam', 'mark_ham') \
         AND id IN (SELECT MAX(id) FROM audit_log WHERE action IN ('mark_spam', 'mark_ham') GROUP BY target)",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (sender, action) = row?;
        let label = if action == "mark_spam" {
            classifier::Label::Spam
        } else {
            classifier::Label::Ham
        };
        out.push((sender, label));
    }
    Ok(out)
}

/// Which list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Never flagged.
    Allow,
    /// Always refused.
    Block,
}

impl ListKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
        }
    }
}

/// Whether `sender` is on `kind` now: an exact entry or a prefix entry
/// (`+1900*`) that has not expired.
pub fn listed(conn: &Connection, kind: ListKind, sender: &str, now: i64) -> Result<bool> {
    let found: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM lists WHERE kind = ?1 AND (expires_at IS NULL OR expires_at > ?3) AND \
             (pattern = ?2 OR (substr(pattern, -1) = '*' AND substr(?2, 1, length(pattern) - 1) = substr(pattern, 1, length(pattern) - 1))) LIMIT 1",
        )?
        .query_row(params![kind.as_str(), sender, now], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_match_exact_and_prefix_until_expiry() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&mut c).unwrap();
        c.execute(
            "INSERT INTO lists (kind, pattern, expires_at, created_at) VALUES ('block', '+1900*', NULL, 0), \
             ('block', '+14155550100', 1000, 0), ('allow', 'ACME', NULL, 0)",
            [],
        )
        .unwrap();
        assert!(listed(&c, ListKind::Block, "+19005551234", 0).unwrap());
        assert!(!listed(&c, ListKind::Block, "+1800", 0).unwrap());
        assert!(listed(&c, ListKind::Block, "+14155550100", 999).unwrap());
        assert!(
            !listed(&c, ListKind::Block, "+14155550100", 1000).unwrap(),
            "expired"
        );
        assert!(listed(&c, ListKind::Allow, "ACME", 0).unwrap());
        assert!(!listed(&c, ListKind::Allow, "ACM", 0).unwrap());
        c.execute(
            "INSERT INTO audit_log (at, actor, action, target) VALUES (1, 'op', 'mark_spam', 'A'), (2, 'op', 'mark_ham', 'A'), (3, 'op', 'mark_spam', 'B')",
            [],
        )
        .unwrap();
        let mut l = labels(&c).unwrap();
        l.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            l,
            vec![
                ("A".to_string(), classifier::Label::Ham),
                ("B".to_string(), classifier::Label::Spam)
            ]
        );
    }
}
