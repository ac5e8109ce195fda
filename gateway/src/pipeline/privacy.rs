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

use serde::Deserialize;

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
}
