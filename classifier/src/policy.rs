//! Policy: thresholds, allow/block lists, rate limits, tracking bounds, and
//! the verdict types they produce.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::ratelimit::{RateDecision, RateLimitConfig};

/// Everything an operator can tune. All fields have documented defaults, so
/// `{}` is a valid config; unknown fields are rejected to catch typos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Score thresholds; unset values use the ones tuned into the model.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Senders that are never flagged: exact ids, or prefixes ending in `*`
    /// (`"+1800*"`). The allow list wins over the block list.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Senders that are always `spam`, same syntax as `allow`.
    #[serde(default)]
    pub block: Vec<String>,
    /// Rate limits (see [`RateLimitConfig`] for defaults).
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
    /// Memory bounds of the feature tracker.
    #[serde(default)]
    pub tracking: TrackingConfig,
    /// How the suspect line follows the deployment (hold budget, reviews).
    #[serde(default)]
    pub calibration: crate::calibration::CalibrationConfig,
    /// Whether verdicts hold messages (`enforce`) or are only recorded
    /// (`shadow`). Unset: shadow on a young deployment, enforce once it has
    /// seen `shadow_messages` messages or run `shadow_days` days. This crate
    /// computes the same verdicts either way (replay always reports what
    /// enforce mode would do); the gateway decides what to do with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Messages a new deployment scores in shadow mode before enforcing
    /// (when `mode` is unset). Default 10 000.
    #[serde(default = "default_shadow_messages")]
    pub shadow_messages: u64,
    /// Days a new deployment stays in shadow mode at most (when `mode` is
    /// unset). Default 7.
    #[serde(default = "default_shadow_days")]
    pub shadow_days: u32,
}

/// What the gateway does with a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Score and record what would have been held; hold nothing.
    Shadow,
    /// Hold `suspect`, block `spam`.
    Enforce,
}

const fn default_shadow_messages() -> u64 {
    10_000
}
const fn default_shadow_days() -> u32 {
    7
}

impl Default for Config {
    fn default() -> Self {
        Config {
            thresholds: Thresholds::default(),
            allow: Vec::new(),
            block: Vec::new(),
            rate_limits: RateLimitConfig::default(),
            tracking: TrackingConfig::default(),
            calibration: crate::calibration::CalibrationConfig::default(),
            mode: None,
            shadow_messages: default_shadow_messages(),
            shadow_days: default_shadow_days(),
        }
    }
}

/// Score cut-offs. A score ≥ `spam` is `spam`, ≥ `suspect` is `suspect`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Hold for review at or above this score. Default: the model's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<f32>,
    /// Block at or above this score. Default: the model's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam: Option<f32>,
}

/// Bounds on what the tracker keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingConfig {
    /// Most senders tracked at once; the least recently active are evicted
    /// beyond it. Default 1 000 000 (about 0.4 GB at the 400-byte budget).
    #[serde(default = "default_max_senders")]
    pub max_senders: usize,
    /// A sender idle this long is forgotten. Default 168 hours (a week).
    #[serde(default = "default_idle_hours")]
    pub idle_hours: u32,
    /// log2 of the contact graph's 64-bit words per generation. Default 21:
    /// 16 MiB per generation, ~8 M pairs before it rotates.
    #[serde(default = "default_graph_log2")]
    pub contact_graph_log2_words: u32,
    /// log2 of the slots remembering message ids awaiting a delivery status.
    /// Default 18 (262 144 slots, 4 MiB).
    #[serde(default = "default_pending_log2")]
    pub pending_status_log2_slots: u32,
    /// log2 of the slots remembering which number of a block last wrote to
    /// a recipient (a passcode pool's resends; see the engine). Default
    /// 20 (1 048 576 slots of 12 bytes, 12 MiB).
    #[serde(default = "default_block_contacts_log2")]
    pub block_contacts_log2_slots: u32,
}

const fn default_max_senders() -> usize {
    1_000_000
}
const fn default_idle_hours() -> u32 {
    168
}
const fn default_graph_log2() -> u32 {
    21
}
const fn default_pending_log2() -> u32 {
    18
}
const fn default_block_contacts_log2() -> u32 {
    20
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            max_senders: default_max_senders(),
            idle_hours: default_idle_hours(),
            contact_graph_log2_words: default_graph_log2(),
            pending_status_log2_slots: default_pending_log2(),
            block_contacts_log2_slots: default_block_contacts_log2(),
        }
    }
}

impl Config {
    /// Semantic checks, all reported at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        for (name, v) in [
            ("suspect", self.thresholds.suspect),
            ("spam", self.thresholds.spam),
        ] {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    errors.push(format!("thresholds.{name} must be within [0, 1]"));
                }
            }
        }
        if let (Some(a), Some(b)) = (self.thresholds.suspect, self.thresholds.spam) {
            if a > b {
                errors.push("thresholds.suspect must not exceed thresholds.spam".into());
            }
        }
        if self.tracking.max_senders == 0 {
            errors.push("tracking.max_senders must be > 0".into());
        }
        if let Err(e) = self.rate_limits.validate() {
            errors.push(e.to_string());
        }
        errors.extend(self.calibration.problems());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(errors.join("; ")))
        }
    }
}

/// Exact ids and prefixes, matched fast.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdList {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl IdList {
    pub(crate) fn new(entries: &[String]) -> Self {
        let mut list = IdList::default();
        for e in entries {
            match e.strip_suffix('*') {
                Some(p) => list.prefixes.push(p.to_owned()),
                None => {
                    list.exact.insert(e.clone());
                }
            }
        }
        list
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    pub(crate) fn matches(&self, id: &str) -> bool {
        self.exact.contains(id) || self.prefixes.iter().any(|p| id.starts_with(p.as_str()))
    }
}

/// The three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// Deliver.
    Ok,
    /// Hold for operator review.
    Suspect,
    /// Block.
    Spam,
}

impl VerdictKind {
    /// Lowercase name as in the replay output.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Ok => "ok",
            VerdictKind::Suspect => "suspect",
            VerdictKind::Spam => "spam",
        }
    }
}

/// One reason behind a score: a feature and how much it pushed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reason {
    /// Stable SCREAMING_SNAKE feature tag.
    pub tag: &'static str,
    /// Human words for the review CLI.
    pub words: &'static str,
    /// The feature's raw value.
    pub value: f32,
    /// Its contribution toward spam (log-odds for the logistic model,
    /// probability for the tree model). Positive pushes toward spam.
    pub contribution: f32,
}

/// Explainable rules evaluated beside the model. They do not change the
/// score (the model already sees the same signals); they name, in words an
/// operator recognises, what stood out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleTag {
    /// The sender is on the allow list.
    AllowListed,
    /// The sender is on the block list.
    BlockListed,
    /// Messages exceeded a rate limit.
    BurstOverRateLimit,
    /// Recipients are numerically adjacent (a dialer walking number space).
    SequentialRecipients,
    /// Traffic goes to high-risk (pumping) destinations.
    PremiumDestinations,
    /// Many deliveries fail (random or dead numbers).
    HighFailureRate,
    /// Recipients complained.
    RecipientComplaints,
    /// Many distinct recipients and nobody answers.
    FanOutWithoutReplies,
    /// A personal number that only broadcasts: every message to a new
    /// stranger, nobody answers, nobody writes to it.
    OneWayBroadcast,
    /// A number of the sender's 100-number block was blocked on strong
    /// evidence within the last day, and this one too writes to strangers
    /// who do not answer: numbers bought together for one campaign (or a
    /// pool of passcode numbers; `review allow PREFIX*` releases a pool).
    CampaignNeighbour,
}

impl RuleTag {
    /// Stable tag.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleTag::AllowListed => "ALLOW_LISTED",
            RuleTag::BlockListed => "BLOCK_LISTED",
            RuleTag::BurstOverRateLimit => "BURST_OVER_RATE_LIMIT",
            RuleTag::SequentialRecipients => "SEQUENTIAL_RECIPIENTS",
            RuleTag::PremiumDestinations => "PREMIUM_DESTINATIONS",
            RuleTag::HighFailureRate => "HIGH_FAILURE_RATE",
            RuleTag::RecipientComplaints => "RECIPIENT_COMPLAINTS",
            RuleTag::FanOutWithoutReplies => "FAN_OUT_WITHOUT_REPLIES",
            RuleTag::OneWayBroadcast => "ONE_WAY_BROADCAST",
            RuleTag::CampaignNeighbour => "CAMPAIGN_NEIGHBOUR",
        }
    }

    /// Human words.
    pub fn words(self) -> &'static str {
        match self {
            RuleTag::AllowListed => "sender is on the allow list",
            RuleTag::BlockListed => "sender is on the block list",
            RuleTag::BurstOverRateLimit => "sent faster than its rate limit",
            RuleTag::SequentialRecipients => {
                "recipients are adjacent numbers that do not write back"
            }
            RuleTag::PremiumDestinations => "sends to high-risk premium destinations",
            RuleTag::HighFailureRate => "many messages fail at once: numbers that do not exist",
            RuleTag::RecipientComplaints => "recipients complained",
            RuleTag::FanOutWithoutReplies => "many new recipients, nobody replies",
            RuleTag::OneWayBroadcast => {
                "a personal or toll-free number messaging only strangers, each once, with no answer, some of them dead"
            }
            RuleTag::CampaignNeighbour => {
                "neighbouring numbers were blocked within a day, and this one also writes to strangers who do not answer"
            }
        }
    }
}

/// The classifier's answer for one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Spam probability in [0, 1].
    pub score: f32,
    /// The outcome after thresholds and lists.
    pub verdict: VerdictKind,
    /// Top model reasons, strongest first.
    pub reasons: Vec<Reason>,
    /// Rules that fired.
    pub tags: Vec<RuleTag>,
}

/// What the live API returns for a message: classification and rate limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Classification of the sending identity after this message.
    pub verdict: Verdict,
    /// Rate-limit decision for this message (always allowed for status and
    /// report events).
    pub rate: RateDecision,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_default_and_valid() {
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
        assert!(serde_json::from_str::<Config>(r#"{"treshold":{}}"#).is_err());
    }

    #[test]
    fn bad_thresholds_are_all_reported() {
        let c = Config {
            thresholds: Thresholds {
                suspect: Some(0.9),
                spam: Some(-0.1),
            },
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("spam must be within") && e.contains("must not exceed"),
            "{e}"
        );
    }

    #[test]
    fn lists_match_exact_and_prefix() {
        let l = IdList::new(&["+14155550100".into(), "+1900*".into()]);
        assert!(l.matches("+14155550100"));
        assert!(!l.matches("+141555501001"));
        assert!(l.matches("+19005551234"));
        assert!(!l.matches("+18005551234"));
    }
}
