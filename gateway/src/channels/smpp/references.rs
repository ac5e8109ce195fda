//! Concatenation references that do not collide at the far end.
//!
//! A long message travels as parts that the SMSC or the handset puts back
//! together by (sender, recipient, reference, part count). With the 8-bit
//! reference of the usual concatenation header there are 256 values, so two
//! long messages to one recipient in flight at the same time share one with
//! a chance of 1 in 256 if the reference is drawn from the message id alone,
//! and their parts are then mixed up. Kannel avoids that with a counter; we
//! also need every attempt of a message to reuse its reference (a retry
//! sends only the parts not yet accepted, which must match the ones that
//! were). So the reference starts from a hash of the message id and moves
//! to the next value not held by another message to the same recipient;
//! it is held from the first attempt until the message is accepted or
//! refused for good.

use std::collections::HashMap;
use std::sync::Mutex;

use adapters::smpp::SmPart;

/// Recipients tracked before the table is cleared (a bound on memory; the
/// messages then in flight fall back to their hashed references).
const MAX_RECIPIENTS: usize = 4096;

/// The references held by messages in flight, per recipient.
#[derive(Default)]
pub(super) struct References {
    held: Mutex<HashMap<String, Vec<(String, u16)>>>,
}

pub(super) use crate::channels::concat_reference as hashed;

impl References {
    /// The parts of message `id` to `to`, made by `encode` from a
    /// concatenation reference: a single part keeps the hashed one (it
    /// travels without a header), a long message the one [`Self::hold`]
    /// gives it (re-encoded only when that differs from the hash).
    pub(super) fn parts<E>(
        &self,
        id: &str,
        to: &str,
        wide: bool,
        encode: impl Fn(u16) -> Result<Vec<SmPart>, E>,
    ) -> Result<Vec<SmPart>, E> {
        let start = hashed(id);
        let parts = encode(start)?;
        if parts.len() < 2 {
            return Ok(parts);
        }
        match self.hold(id, to, wide) {
            r if r == start => Ok(parts),
            r => encode(r),
        }
    }

    /// The reference for message `id` to `to`: the one it already holds
    /// (a retry), else the first value from its hash on that no other
    /// message to `to` holds. `wide` is a 16-bit reference (SAR TLVs or
    /// 16-bit headers), else only the low byte travels.
    pub(super) fn hold(&self, id: &str, to: &str, wide: bool) -> u16 {
        let start = hashed(id);
        let Ok(mut held) = self.held.lock() else {
            return start;
        };
        if held.len() > MAX_RECIPIENTS && !held.contains_key(to) {
            held.clear();
        }
        let taken = held.entry(to.to_string()).or_default();
        if let Some(&(_, r)) = taken.iter().find(|(m, _)| m == id) {
            return r;
        }
        let mask: u16 = if wide { u16::MAX } else { 0xFF };
        let used = |r: u16| taken.iter().any(|&(_, t)| t & mask == r & mask);
        let free = (0..=mask)
            .map(|k| start.wrapping_add(k))
            .find(|&r| !used(r))
            .unwrap_or(start);
        taken.push((id.to_string(), free));
        free
    }

    /// Gives the reference of message `id` to `to` back: the message was
    /// accepted or refused for good, no attempt will follow.
    pub(super) fn release(&self, id: &str, to: &str) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if let Some(taken) = held.get_mut(to) {
            taken.retain(|(m, _)| m != id);
            if taken.is_empty() {
                held.remove(to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Two message ids whose hashed references share the low byte.
    fn colliding_ids() -> (String, String) {
        let first = "m-0".to_string();
        let low = hashed(&first) & 0xFF;
        let second = (1..100_000)
            .map(|i| format!("m-{i}"))
            .find(|id| hashed(id) & 0xFF == low)
            .unwrap();
        (first, second)
    }

    #[test]
    fn two_long_messages_to_one_recipient_never_share_a_reference() {
        let refs = References::default();
        let (a, b) = colliding_ids();
        let ra = refs.hold(&a, "+14155550101", false);
        let rb = refs.hold(&b, "+14155550101", false);
        assert_ne!(ra & 0xFF, rb & 0xFF);
        // a retry keeps its reference, so its remaining parts still match
        assert_eq!(refs.hold(&b, "+14155550101", false), rb);
        // another recipient reassembles apart: the hash is kept
        assert_eq!(refs.hold(&b, "+14155550102", false), hashed(&b));
        // once the first is done, the value is free again
        refs.release(&a, "+14155550101");
        refs.release(&b, "+14155550101");
        assert_eq!(refs.hold(&b, "+14155550101", false), hashed(&b));
    }

    #[test]
    fn a_wide_reference_compares_all_sixteen_bits() {
        let refs = References::default();
        let (a, b) = colliding_ids();
        refs.hold(&a, "+14155550101", true);
        if hashed(&a) != hashed(&b) {
            assert_eq!(refs.hold(&b, "+14155550101", true), hashed(&b));
        }
    }

    #[test]
    fn every_value_taken_falls_back_to_the_hash() {
        let refs = References::default();
        for i in 0..256 {
            refs.hold(&format!("m-{i}"), "+1", false);
        }
        let lows: std::collections::HashSet<u16> = (0..256)
            .map(|i| refs.hold(&format!("m-{i}"), "+1", false) & 0xFF)
            .collect();
        assert_eq!(lows.len(), 256, "256 messages, 256 distinct references");
        assert_eq!(refs.hold("one-more", "+1", false), hashed("one-more"));
    }
}
