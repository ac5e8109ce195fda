//! `[privacy]`: how long content and numbers stick around.
//!
//! Three promises, each a setting here and enforced elsewhere:
//! * a sealed body is erased once the next hop acknowledged it
//!   (`keep_after_delivery_secs`, enforced by the store in the commit that
//!   records the acknowledgement);
//! * counterparties in listed regions (or every message on a
//!   `transit_only` node) never have their body written to disk
//!   (`no_content_at_rest`, `transit_deadline_secs`);
//! * counterparty numbers in stored metadata are replaced by a keyed hash
//!   after `pseudonymise_after_secs`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use adapters::sms::Part;
use phonenumber::country::Id as Region;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::Pipeline;
use crate::core::error::Result;
use crate::delivery::transit::TransitJob;
use crate::store::privacy::NOT_RETAINED;
use crate::store::{MessageStatus, QueueItem, StatusReport};

/// Privacy settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Seconds a sealed body is kept after the private side (2xx) or the
    /// far end (carrier, SMSC, modem, phone) accepted the message. 0, the
    /// default, erases it in the commit that records the acceptance.
    pub keep_after_delivery_secs: u64,
    /// ISO 3166 regions (`"XX"`) of counterparty numbers whose messages
    /// never have their body written to disk.
    pub no_content_at_rest: Vec<String>,
    /// Seconds a message without content at rest may wait for its next
    /// hop before it fails with `content_not_retained`.
    pub transit_deadline_secs: u64,
    /// The whole node keeps no content at rest (a gateway placed in a
    /// country listed above).
    pub transit_only: bool,
    /// Seconds after which counterparty numbers in stored metadata are
    /// replaced by a keyed hash (7 days by default).
    pub pseudonymise_after_secs: u64,
}

/// Default of [`PrivacyConfig::transit_deadline_secs`].
pub const fn default_transit_deadline_secs() -> u64 {
    30
}

/// Default of [`PrivacyConfig::pseudonymise_after_secs`]: 7 days.
pub const fn default_pseudonymise_after_secs() -> u64 {
    7 * 24 * 3600
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            keep_after_delivery_secs: 0,
            no_content_at_rest: Vec::new(),
            transit_deadline_secs: default_transit_deadline_secs(),
            transit_only: false,
            pseudonymise_after_secs: default_pseudonymise_after_secs(),
        }
    }
}

impl PrivacyConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        for r in &self.no_content_at_rest {
            if r.parse::<phonenumber::country::Id>().is_err() {
                problems.push(format!(
                    "privacy.no_content_at_rest: {r:?} is not an ISO 3166 region code"
                ));
            }
        }
        if self.transit_deadline_secs == 0 {
            problems.push("privacy.transit_deadline_secs must be at least 1".into());
        }
        if self.pseudonymise_after_secs == 0 {
            problems.push("privacy.pseudonymise_after_secs must be at least 1".into());
        }
    }
}

/// Which messages have no content at rest, and the parts of such messages
/// waiting for their siblings (in memory only).
pub struct Transit {
    all: bool,
    regions: Vec<Region>,
    deadline: Duration,
    parts: Mutex<HashMap<i64, MemoryPart>>,
    next_part: AtomicI64,
}

/// A multipart part kept in memory: whose it is, its group, the part.
struct MemoryPart {
    adapter: String,
    group: String,
    part: Part,
}

impl Transit {
    /// The policy of `cfg` (region codes were checked by `validate`).
    pub fn new(cfg: &PrivacyConfig) -> Self {
        Self {
            all: cfg.transit_only,
            regions: cfg
                .no_content_at_rest
                .iter()
                .filter_map(|r| r.parse().ok())
                .collect(),
            deadline: Duration::from_secs(cfg.transit_deadline_secs.max(1)),
            parts: Mutex::default(),
            next_part: AtomicI64::new(-1),
        }
    }

    /// Whether a message between `a` and `b` (numbers, short codes or
    /// sender ids) may have no content at rest: the whole node is
    /// transit-only, or either number belongs to a listed region.
    pub fn applies(&self, a: &str, b: &str) -> bool {
        self.all || (!self.regions.is_empty() && (self.listed(a) || self.listed(b)))
    }

    fn listed(&self, address: &str) -> bool {
        if !address.starts_with('+') {
            return false;
        }
        crate::core::numbers::region_of(address).is_some_and(|r| self.regions.contains(&r))
    }

    /// How long such a message may wait for its next hop.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Keeps a part in memory; returns its (negative) id.
    pub(super) fn keep_part(&self, adapter: String, group: String, part: Part) -> i64 {
        let id = self.next_part.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut m) = self.parts.lock() {
            m.insert(
                id,
                MemoryPart {
                    adapter,
                    group,
                    part,
                },
            );
        }
        id
    }

    /// Forgets parts kept in memory.
    pub(super) fn drop_parts(&self, ids: &[i64]) {
        if let Ok(mut m) = self.parts.lock() {
            for id in ids {
                m.remove(id);
            }
        }
    }

    /// The parts of `adapter` kept in memory, as `(id, group, part)`.
    pub(super) fn parts_of(&self, adapter: &str) -> Vec<(i64, String, Part)> {
        let Ok(m) = self.parts.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = m
            .iter()
            .filter(|(_, p)| p.adapter == adapter)
            .map(|(id, p)| (*id, p.group.clone(), p.part.clone()))
            .collect();
        // Oldest first, as the store answers: ids count down.
        out.sort_by_key(|(id, _, _)| std::cmp::Reverse(*id));
        out
    }
}

/// Hands a committed transit message (metadata row only) to its carrier
/// task. With `wait`, returns once the next hop took it (true) or it
/// failed (false); without, at once. A message that cannot even be handed
/// over (too many in flight) fails now.
pub async fn carry(p: &Pipeline, item: QueueItem, wait: bool) -> Result<bool> {
    let id = item.message_id.clone();
    let deadline = tokio::time::Instant::now() + p.transit.deadline();
    let (tx, rx) = oneshot::channel();
    let job = TransitJob {
        item,
        deadline,
        done: wait.then_some(tx),
    };
    if !p.handoff.transit(job) {
        fail(p, id, "too many messages in transit").await?;
        return Ok(false);
    }
    if !wait {
        return Ok(true);
    }
    // The carrier task answers by the deadline plus the time to commit.
    let margin = deadline + Duration::from_secs(10);
    match tokio::time::timeout_at(margin, rx).await {
        Ok(Ok(took)) => Ok(took),
        _ => Ok(false),
    }
}

/// Whether the receiver has message `id` already (a carrier's retry of a
/// transit message is acknowledged only then).
pub async fn taken(p: &Pipeline, id: &str) -> Result<bool> {
    Ok(p.store
        .message(id.to_string())
        .await?
        .is_some_and(|v| matches!(v.status, MessageStatus::Sent | MessageStatus::Delivered)))
}

/// Fails a transit message that could not be handed over.
async fn fail(p: &Pipeline, id: String, why: &str) -> Result<()> {
    let report = StatusReport::new(
        MessageStatus::Failed,
        Some(format!("{NOT_RETAINED}: {why}")),
    );
    p.status.report(id.clone(), report).await?;
    p.store.not_retained(id).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let c = PrivacyConfig::default();
        assert_eq!(c.keep_after_delivery_secs, 0);
        assert_eq!(c.pseudonymise_after_secs, 604_800);
        let mut p = Vec::new();
        c.validate(&mut p);
        assert!(p.is_empty());
        let bad = PrivacyConfig {
            no_content_at_rest: vec!["ZZZ".into()],
            transit_deadline_secs: 0,
            ..c
        };
        bad.validate(&mut p);
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn listed_regions_and_transit_only() {
        let t = Transit::new(&PrivacyConfig {
            no_content_at_rest: vec!["FR".into()],
            ..PrivacyConfig::default()
        });
        assert!(t.applies("+33612345678", "+14155550100"));
        assert!(t.applies("+14155550100", "+33612345678"));
        assert!(!t.applies("+14155550100", "+14155550101"));
        assert!(!t.applies("ACME", "12345"));
        let all = Transit::new(&PrivacyConfig {
            transit_only: true,
            ..PrivacyConfig::default()
        });
        assert!(all.applies("+14155550100", "+14155550101"));
        assert!(!Transit::new(&PrivacyConfig::default()).applies("+33612345678", ""));
    }
}
