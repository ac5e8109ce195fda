//! The undo window of the review queue's drops: an operator's drop (drop,
//! mark spam, block) first only takes the messages out of the queue; the
//! drop becomes final, and the body is erased, when the window has passed.
//! Until then `gateway review undo SENDER` or the console's Undo puts them
//! back, held as before. A misclick in a queue of hundreds should cost a
//! click, not a customer's message.

use serde::Deserialize;

/// `[review]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Seconds a drop can be undone; its body is erased only after them.
    /// 0 makes drops final at once.
    pub undo_window_secs: u64,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            undo_window_secs: 30,
        }
    }
}
