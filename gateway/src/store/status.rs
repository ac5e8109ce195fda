//! A message's status, as stored, and the one rule that moves it.
//!
//! Statuses reported from outside (carrier callbacks, status reports,
//! receipts, the delivery worker's own outcome) only ever move a message
//! forward along `queued -> sending -> sent -> delivered | failed | expired`
//! (and `dead`, the gateway giving up). The first final status wins. A
//! report that would move a message backwards is *late*: it is kept in the
//! history, flagged, and changes nothing; a report of the status the
//! message already has is a *repeat* and changes nothing either. The rule
//! sits here, beside the column it guards, so that every backend applies it
//! inside the transaction that reads the current status; the one path that
//! calls it, with its side effects, is `pipeline::status`.
//!
//! Operators and the gateway's own bookkeeping may still set a status
//! outright (release a held message, retry a dead letter, queue an RCS
//! message's SMS fallback): those are named store operations, not reports.

use serde::Serialize;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting in the delivery queue.
    Queued,
    /// Handed to a route that has not answered yet.
    Sending,
    /// Accepted by the far end (a carrier, an SMSC, a modem).
    Sent,
    /// Delivered to the recipient (or acknowledged by the private side).
    Delivered,
    /// The far end says it cannot be delivered.
    Failed,
    /// Its time ran out before it could be delivered; the body is erased.
    Expired,
    /// The gateway gave up (attempts or age); an operator may retry it.
    Dead,
    /// Kept for an operator: the classifier's `suspect`, or a rate limit.
    Held,
    /// Kept for an operator: the classifier's `spam`.
    Blocked,
    /// Inbound, stored without a private-side webhook to deliver it to.
    Stored,
    /// Inbound, waiting for its recipient's key (sealed to the edge key).
    WaitingKey,
    /// Dropped by an operator; the body is erased.
    Dropped,
    /// Refused by policy (never stored: the caller is answered instead).
    Refused,
}

/// What a reported status did to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The message moved on to this status.
    Moved(MessageStatus),
    /// The message already had this status.
    Repeated,
    /// The message is further along (or final): the report changes nothing.
    Late,
}

impl MessageStatus {
    /// Every status, for tests and parsing.
    pub const ALL: [Self; 13] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Expired,
        Self::Dead,
        Self::Held,
        Self::Blocked,
        Self::Stored,
        Self::WaitingKey,
        Self::Dropped,
        Self::Refused,
    ];

    /// The stored (and API) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Dead => "dead",
            Self::Held => "held",
            Self::Blocked => "blocked",
            Self::Stored => "stored",
            Self::WaitingKey => "waiting_key",
            Self::Dropped => "dropped",
            Self::Refused => "refused",
        }
    }

    /// The status with this stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A carrier's word for a delivery status (`undelivered` is Twilio's
    /// and the generic adapter's failure).
    pub fn reported(s: &str) -> Option<Self> {
        match s {
            "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "failed" | "undelivered" => Some(Self::Failed),
            _ => None,
        }
    }

    /// How far along the delivery path: 0 before any send (queued, held,
    /// blocked, stored, waiting for a key), 1 sending, 2 sent, 3 final.
    pub const fn stage(self) -> u8 {
        match self {
            Self::Queued | Self::Held | Self::Blocked | Self::Stored | Self::WaitingKey => 0,
            Self::Sending => 1,
            Self::Sent => 2,
            Self::Delivered
            | Self::Failed
            | Self::Expired
            | Self::Dead
            | Self::Dropped
            | Self::Refused => 3,
        }
    }

    /// True for a status nothing reported moves any more.
    pub const fn is_final(self) -> bool {
        self.stage() == 3
    }

    /// What a report of `to` does to a message that is `self`: moves it
    /// forward, or is a repeat, or is late (never backwards, and the first
    /// final status wins).
    pub fn advance(self, to: Self) -> Transition {
        if to == self {
            Transition::Repeated
        } else if !self.is_final() && to.stage() > self.stage() {
            Transition::Moved(to)
        } else {
            Transition::Late
        }
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classifier's verdict on a message, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Delivered.
    Ok,
    /// Held for an operator.
    Suspect,
    /// Blocked, for an operator to confirm or overturn.
    Spam,
    /// Shadow mode: delivered, but enforce mode would have held it.
    WouldHold,
    /// Shadow mode: delivered, but enforce mode would have blocked it.
    WouldBlock,
}

impl Verdict {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Suspect => "suspect",
            Self::Spam => "spam",
            Self::WouldHold => "would_hold",
            Self::WouldBlock => "would_block",
        }
    }
}

/// What the parts of a multipart message say, counted in any arrival
/// order: how many there are (when the far end said), how many were
/// delivered, how many failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Parts the message was sent in, once known.
    pub total: Option<u32>,
    /// Parts reported delivered.
    pub delivered: u32,
    /// Parts reported failed.
    pub failed: u32,
}

impl Tally {
    /// The message's status by its parts: failed at its first failed part,
    /// delivered once every part is; `None` while that is not known.
    pub fn status(&self) -> Option<MessageStatus> {
        if self.failed > 0 {
            Some(MessageStatus::Failed)
        } else if self.total.is_some_and(|t| self.delivered >= t) {
            Some(MessageStatus::Delivered)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(MessageStatus::parse("retrying"), None);
        assert_eq!(
            MessageStatus::reported("undelivered"),
            Some(MessageStatus::Failed)
        );
    }

    #[test]
    fn never_backwards_and_the_first_final_status_wins() {
        use MessageStatus::*;
        use Transition::*;
        assert_eq!(Queued.advance(Sending), Moved(Sending));
        assert_eq!(Queued.advance(Delivered), Moved(Delivered));
        assert_eq!(Sent.advance(Delivered), Moved(Delivered));
        assert_eq!(Delivered.advance(Sent), Late);
        assert_eq!(Delivered.advance(Failed), Late);
        assert_eq!(Failed.advance(Delivered), Late);
        assert_eq!(Sent.advance(Sending), Late);
        assert_eq!(Sent.advance(Queued), Late);
        assert_eq!(Expired.advance(Sent), Late);
        assert_eq!(Sent.advance(Sent), Repeated);
        for from in MessageStatus::ALL {
            for to in MessageStatus::ALL {
                if let Moved(x) = from.advance(to) {
                    assert!(x.stage() > from.stage(), "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn parts_in_any_order() {
        let t = |total, delivered, failed| Tally {
            total,
            delivered,
            failed,
        };
        assert_eq!(t(None, 2, 0).status(), None, "count not known yet");
        assert_eq!(t(Some(2), 1, 0).status(), None);
        assert_eq!(t(Some(2), 2, 0).status(), Some(MessageStatus::Delivered));
        assert_eq!(t(Some(2), 1, 1).status(), Some(MessageStatus::Failed));
        assert_eq!(t(None, 0, 1).status(), Some(MessageStatus::Failed));
    }
}
