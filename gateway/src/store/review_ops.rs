//! The review queue's operations as one interface over both backends: the
//! CLI's `gateway review` and the console's review pages call these, on
//! the SQLite file through [`Db`] or on PostgreSQL through
//! `postgres::PgReview`, so neither caller branches on the backend and the
//! two cannot drift apart.

use super::Db;
use super::db::SenderActivity;
use super::review::{self, AuditEntry, ListKind, QueueFilter, QueueRow, Stats};
use super::undo::{self, PendingDrop};
use crate::core::error::Result;

/// A held message as the console lists it: id, recipient, status, RFC
/// 3339 acceptance time.
pub type HeldRow = (String, String, String, String);

/// What an operator reviewing held traffic can read and decide. Each
/// decision is one transaction with its audit entry.
pub trait ReviewOps: Send {
    /// The undecided flagged senders, filtered.
    fn queue(&mut self, f: &QueueFilter) -> Result<Vec<QueueRow>>;
    /// A sender's held messages, oldest first (at most 1000).
    fn held_of(&mut self, sender: &str) -> Result<Vec<HeldRow>>;
    /// The drops still undoable, of `sender` (or all).
    fn pending(&mut self, sender: Option<&str>) -> Result<Vec<PendingDrop>>;
    /// The newest `limit` audit entries, oldest first.
    fn log(&mut self, limit: usize) -> Result<Vec<AuditEntry>>;
    /// How the model's verdicts compared with the operators' decisions.
    fn stats(&mut self) -> Result<Stats>;
    /// What is stored about a sender (or a message id's sender).
    fn sender_activity(&mut self, target: &str) -> Result<SenderActivity>;
    /// The sender of message `id`.
    fn sender_of(&mut self, id: &str) -> Result<Option<String>>;
    /// Releases or drops one held message; false if it is not held.
    fn decide(&mut self, actor: &str, id: &str, release: bool, note: Option<&str>) -> Result<bool>;
    /// `mark SENDER spam|ham`; the messages affected.
    fn mark(&mut self, actor: &str, sender: &str, spam: bool, note: Option<&str>) -> Result<usize>;
    /// Adds a list entry; the messages a block dropped or an allow released.
    fn list_add(
        &mut self,
        actor: &str,
        kind: ListKind,
        pattern: &str,
        expires_at: Option<i64>,
        note: Option<&str>,
    ) -> Result<usize>;
    /// Removes a list entry; false when there was none.
    fn list_remove(&mut self, actor: &str, kind: ListKind, pattern: &str) -> Result<bool>;
    /// Undoes a sender's drops in their window; the messages held again.
    fn undo(&mut self, actor: &str, sender: &str) -> Result<usize>;
}

impl ReviewOps for Db {
    fn queue(&mut self, f: &QueueFilter) -> Result<Vec<QueueRow>> {
        review::queue(self, f)
    }
    fn held_of(&mut self, sender: &str) -> Result<Vec<HeldRow>> {
        review::held_of(self, sender)
    }
    fn pending(&mut self, sender: Option<&str>) -> Result<Vec<PendingDrop>> {
        undo::pending(self, sender)
    }
    fn log(&mut self, limit: usize) -> Result<Vec<AuditEntry>> {
        review::log(self, limit)
    }
    fn stats(&mut self) -> Result<Stats> {
        review::stats(self)
    }
    fn sender_activity(&mut self, target: &str) -> Result<SenderActivity> {
        Db::sender_activity(self, target)
    }
    fn sender_of(&mut self, id: &str) -> Result<Option<String>> {
        Ok(self.message(id)?.map(|m| m.from))
    }
    fn decide(&mut self, actor: &str, id: &str, release: bool, note: Option<&str>) -> Result<bool> {
        review::decide_message(self, actor, id, release, note)
    }
    fn mark(&mut self, actor: &str, sender: &str, spam: bool, note: Option<&str>) -> Result<usize> {
        review::mark(self, actor, sender, spam, note)
    }
    fn list_add(
        &mut self,
        actor: &str,
        kind: ListKind,
        pattern: &str,
        expires_at: Option<i64>,
        note: Option<&str>,
    ) -> Result<usize> {
        review::list_add(self, actor, kind, pattern, expires_at, note)
    }
    fn list_remove(&mut self, actor: &str, kind: ListKind, pattern: &str) -> Result<bool> {
        review::list_remove(self, actor, kind, pattern)
    }
    fn undo(&mut self, actor: &str, sender: &str) -> Result<usize> {
        undo::undo(self, actor, sender)
    }
}
