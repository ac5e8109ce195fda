//! The live spam gate: every inbound and outbound message is rate-limited and
//! scored from metadata before it is committed (the classifier never sees
//! text), and the operators' allow/block lists override the model.
//!
//! Three things decide what a verdict does:
//! - **Whose traffic it is.** Messages the gateway sends for its own
//!   private side (API keys, SMPP server clients) are governed by their
//!   route's rate limit and the SMPP client's throughput, not judged by the
//!   stranger model: an operator's burst of test messages never puts the
//!   gateway's own sender on hold. Everything from the phone network is a
//!   stranger's.
//! - **The mode.** A new deployment starts in shadow mode: it scores and
//!   records what it would have held (`gateway review stats`) but holds
//!   nothing, until it has scored `shadow_messages` messages or run
//!   `shadow_days` days (`[classifier] mode` fixes either mode). Rate limits
//!   apply in both modes: they protect capacity, not judgement.
//! - **Visibility.** Every hold, block, refusal and shadow verdict writes
//!   one log line (redacted sender, verdict, score, reason tags; never text)
//!   and counts in `gateway_spam_verdicts_total`; rate limits count in
//!   `gateway_rate_limited_total{limit}`.
//!
//! Lists and review decisions live in the database so the review CLI can
//! change them while the service runs; the gate re-reads them every
//! [`LIST_REFRESH`] (on PostgreSQL at once when any node changed them, by
//! the store's cache notices): lists take effect within seconds, and each
//! decision moves the classifier's calibrated suspect line at once.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use classifier::{Channel, Encoding, MessageMeta, MetadataEvent, Mode, Timestamp, VerdictKind};

use super::hold_notify::{HoldNotice, HoldNotifier};
use super::spam_share::{HandOver, OwnRouteCharge, Shared};
use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;
use crate::store::{CacheKind, Store};

/// How often the allow/block lists and review decisions are re-read.
pub const LIST_REFRESH: Duration = Duration::from_secs(2);

/// What the gate decided for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Deliver it.
    Deliver {
        /// Model score.
        score: f32,
    },
    /// Deliver it, but the model would have held (`suspect`) or blocked
    /// (`spam`) it: shadow mode records that.
    Shadow {
        /// What enforce mode would have done.
        verdict: VerdictKind,
        /// Model score.
        score: f32,
    },
    /// Keep it for an operator (`suspect`).
    Hold {
        /// Model score.
        score: f32,
        /// Reasons as JSON, for the review queue.
        reasons: String,
    },
    /// Keep it, blocked (`spam`), for an operator to confirm or overturn.
    Block {
        /// Model score.
        score: f32,
        /// Reasons as JSON.
        reasons: String,
    },
    /// Over a rate limit: refuse for now (API) or hold (inbound).
    RateLimited {
        /// Seconds until the sender conforms again.
        retry_after_secs: u64,
        /// Which limit: `sender`, `pair`, `recipient` or `route`.
        limit: &'static str,
    },
    /// The sender is on the block list: refuse.
    Refused,
}

#[derive(Default)]
struct Lists {
    allow: Vec<String>,
    block: Vec<String>,
    loaded: Option<Instant>,
    /// The lists' and decisions' cache generations when loaded.
    generation: (u64, u64),
}

fn matches(patterns: &[String], sender: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => sender.starts_with(prefix),
        None => p == sender,
    })
}

/// Whose message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From the phone network: judged by the model.
    Stranger,
    /// Sent for the gateway's own private side (an API key, an SMPP
    /// client): only its route's rate limit applies.
    Own,
}

/// Metadata of one message for [`SpamGate::check`].
pub struct MessageFacts<'a> {
    /// Message id.
    pub id: &'a str,
    /// Sender.
    pub from: &'a str,
    /// Recipient.
    pub to: &'a str,
    /// Segments.
    pub segments: u32,
    /// `gsm7` / `ucs2` / `8bit`.
    pub encoding: &'a str,
    /// Size of the content in bytes (a size, never the content).
    pub bytes: usize,
    /// Route or adapter.
    pub route: &'a str,
    /// Whose message it is.
    pub origin: Origin,
    /// `inbound` or `outbound` (for logs and metrics).
    pub direction: &'static str,
}

/// Shadow or enforce, and when a young deployment switches.
pub struct ModeSwitch {
    fixed: Option<Mode>,
    enforcing: AtomicBool,
    scored: AtomicU64,
    until_messages: u64,
    until_ms: i64,
}

/// The file recording when this data directory first ran the classifier.
const SINCE_FILE: &str = "classifier-since";

impl ModeSwitch {
    /// The mode for a data directory: fixed by `policy.mode`, or shadow
    /// until the deployment has scored enough messages or run long enough
    /// (counted from the first start, recorded in the data directory).
    pub fn for_data_dir(policy: &classifier::Config, data_dir: &Path, scored: u64) -> Self {
        let now = crate::core::clock::now_ms();
        let since = first_start(data_dir, now);
        let until_ms = since.saturating_add(i64::from(policy.shadow_days) * 86_400_000);
        let switch = ModeSwitch {
            fixed: policy.mode,
            enforcing: AtomicBool::new(false),
            scored: AtomicU64::new(scored),
            until_messages: policy.shadow_messages,
            until_ms,
        };
        let enforcing = match policy.mode {
            Some(m) => m == Mode::Enforce,
            None => scored >= switch.until_messages || now >= until_ms,
        };
        switch.enforcing.store(enforcing, Ordering::Relaxed);
        if !enforcing {
            tracing::info!(
                scored,
                until_messages = switch.until_messages,
                until = %crate::core::clock::rfc3339_ms(until_ms),
                "spam gate in shadow mode: verdicts are recorded, nothing is held \
                 (`gateway review stats` shows what would have been)"
            );
        }
        switch
    }

    /// A fixed mode (tests, tools).
    pub fn fixed(mode: Mode) -> Self {
        ModeSwitch {
            fixed: Some(mode),
            enforcing: AtomicBool::new(mode == Mode::Enforce),
            scored: AtomicU64::new(0),
            until_messages: 0,
            until_ms: 0,
        }
    }

    /// Counts one scored message and says whether verdicts are enforced.
    fn enforcing_after_one(&self, now_ms: i64) -> bool {
        if self.enforcing.load(Ordering::Relaxed) {
            return true;
        }
        if self.fixed.is_some() {
            return false;
        }
        let n = self.scored.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.until_messages || now_ms >= self.until_ms {
            if !self.enforcing.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    scored = n,
                    "shadow mode over: the spam gate now holds and blocks"
                );
            }
            return true;
        }
        false
    }

    /// Whether verdicts are enforced now.
    pub fn is_enforcing(&self) -> bool {
        self.enforcing.load(Ordering::Relaxed)
    }
}

/// Reads (or, on the first start, writes) the data directory's first-start time.
fn first_start(data_dir: &Path, now: i64) -> i64 {
    let path = data_dir.join(SINCE_FILE);
    if let Some(t) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        return t;
    }
    if let Err(e) = std::fs::write(&path, format!("{now}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the shadow-mode start");
    }
    now
}

/// The classifier engine plus the operators' lists.
pub struct SpamGate {
    engine: classifier::Engine,
    lists: Mutex<Lists>,
    store: Store,
    metrics: Arc<Metrics>,
    mode: ModeSwitch,
    /// Audit-log id of the last review decision fed to the calibration.
    decisions_seen: AtomicI64,
    /// The operator's hold webhook, when `[review] notify_url` is set.
    hold_notifier: Option<HoldNotifier>,
    /// What this node observed, for the cluster's other nodes
    /// (`spam_share.rs`; off on SQLite).
    share: super::spam_share::Outbox,
}

impl SpamGate {
    /// Builds the gate with the configured model, policy and mode.
    pub fn new(
        model: classifier::Model,
        policy: &classifier::Config,
        store: Store,
        metrics: Arc<Metrics>,
        mode: ModeSwitch,
    ) -> Result<Self> {
        let engine = classifier::Engine::new(model, policy)
            .map_err(|e| Error::Config(format!("classifier: {e}")))?;
        Ok(Self {
            engine,
            lists: Mutex::new(Lists::default()),
            metrics,
            mode,
            decisions_seen: AtomicI64::new(-1),
            hold_notifier: None,
            share: super::spam_share::Outbox::new(store.is_postgres()),
            store,
        })
    }

    /// Tells the operator's webhook of every hold and block from now on.
    #[must_use]
    pub fn with_hold_notifier(mut self, notifier: Option<HoldNotifier>) -> Self {
        self.hold_notifier = notifier;
        self
    }

    /// Whether verdicts hold and block now (false in shadow mode).
    pub fn enforcing(&self) -> bool {
        self.mode.is_enforcing()
    }

    /// Re-reads the lists and decisions when [`LIST_REFRESH`] passed, or
    /// at once when another node changed them (PostgreSQL's notices).
    async fn refresh_lists(&self) -> Result<()> {
        let generation = (
            self.store.cache_generation(CacheKind::Lists),
            self.store.cache_generation(CacheKind::Reviews),
        );
        let stale = self
            .lists
            .lock()
            .map(|l| {
                l.loaded.is_none_or(|t| t.elapsed() >= LIST_REFRESH) || l.generation != generation
            })
            .unwrap_or(true);
        if !stale {
            return Ok(());
        }
        let now = crate::core::clock::now_ms();
        let (allow, block) = self.store.active_lists(now).await?;
        if let Ok(mut l) = self.lists.lock() {
            *l = Lists {
                allow,
                block,
                loaded: Some(Instant::now()),
                generation,
            };
        }
        self.learn_from_reviews().await?;
        self.metrics
            .review_queue
            .set(self.store.review_queue_depth().await?);
        Ok(())
    }

    /// Feeds review decisions made since the last look to the calibration.
    /// Decisions older than this process's start are history: the
    /// calibration starts from the model's lines and the hold budget.
    async fn learn_from_reviews(&self) -> Result<()> {
        let seen = self.decisions_seen.load(Ordering::Relaxed);
        if seen < 0 {
            let last = self.store.last_audit_id().await?;
            self.decisions_seen.store(last, Ordering::Relaxed);
            return Ok(());
        }
        for d in self.store.decisions_after(seen).await? {
            match d.model_score {
                Some(score) if d.undone => self.engine.unreviewed(score, d.spam),
                Some(score) => self.engine.reviewed(score, d.spam),
                None => {}
            }
            self.decisions_seen.fetch_max(d.id, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Rate-limits and scores one message from its metadata.
    pub async fn check(&self, m: MessageFacts<'_>) -> Result<Gate> {
        self.refresh_lists().await?;
        let (allowed, blocked) = self
            .lists
            .lock()
            .map(|l| (matches(&l.allow, m.from), matches(&l.block, m.from)))
            .unwrap_or((false, false));
        if blocked && !allowed {
            self.note(&m, "refused", 1.0, "");
            return Ok(Gate::Refused);
        }
        let now = Timestamp::now();
        if m.origin == Origin::Own {
            let rate = self.engine.check_own(m.route, m.segments, now);
            if rate.allowed {
                self.share.push(Shared::OwnRoute(OwnRouteCharge {
                    own_route: m.route.to_string(),
                    segments: m.segments,
                    at_ms: now.unix_millis(),
                }));
            }
            return Ok(self
                .rate_limited(&m, &rate)
                .unwrap_or(Gate::Deliver { score: 0.0 }));
        }
        let event = MetadataEvent::Message(MessageMeta {
            at: now,
            id: m.id.to_string(),
            from: m.from.to_string(),
            to: m.to.to_string(),
            channel: Channel::Sms,
            segments: u16::try_from(m.segments).unwrap_or(u16::MAX),
            encoding: match m.encoding {
                "ucs2" => Encoding::Ucs2,
                "8bit" => Encoding::Binary8,
                _ => Encoding::Gsm7,
            },
            bytes: u32::try_from(m.bytes).unwrap_or(u32::MAX),
            sender_type: None,
            route: Some(m.route.to_string()),
        });
        let observed = self.engine.observe(&event, now);
        let passed = observed.as_ref().is_none_or(|d| d.rate.allowed);
        self.share.push(Shared::Observed(event, passed));
        self.note_quiet_verdicts();
        let Some(d) = observed else {
            return Ok(Gate::Deliver { score: 0.0 });
        };
        if let Some(limited) = self.rate_limited(&m, &d.rate) {
            return Ok(limited);
        }
        let score = d.verdict.score;
        if allowed || d.verdict.verdict == VerdictKind::Ok {
            return Ok(Gate::Deliver { score });
        }
        let tags: Vec<&str> = d.verdict.tags.iter().map(|t| t.as_str()).collect();
        let tags = tags.join(",");
        if !self.mode.enforcing_after_one(now.unix_millis()) {
            let would = match d.verdict.verdict {
                VerdictKind::Spam => "would_block",
                _ => "would_hold",
            };
            self.note(&m, would, score, &tags);
            return Ok(Gate::Shadow {
                verdict: d.verdict.verdict,
                score,
            });
        }
        let reasons = review_reasons(&d.verdict);
        let verdict = match d.verdict.verdict {
            VerdictKind::Spam => "spam",
            _ => "suspect",
        };
        self.note(&m, verdict, score, &tags);
        self.tell_operator(&m, verdict, score, &d.verdict.tags, now);
        Ok(match d.verdict.verdict {
            VerdictKind::Spam => Gate::Block { score, reasons },
            _ => Gate::Hold { score, reasons },
        })
    }

    /// The gate's answer when a rate limit said no, counted and logged.
    fn rate_limited(&self, m: &MessageFacts<'_>, rate: &classifier::RateDecision) -> Option<Gate> {
        if rate.allowed {
            return None;
        }
        let limit = rate.limited_by.map_or("sender", |l| l.as_str());
        let retry_after_secs = rate
            .retry_after
            .map(|r| r.as_secs_f64().ceil() as u64)
            .unwrap_or(1)
            .max(1);
        self.metrics.rate_limited(limit);
        if m.direction == "inbound" {
            // inbound over a limit is held (outbound gets a 429): a hold
            let tag = [classifier::RuleTag::BurstOverRateLimit];
            self.tell_operator(m, "suspect", 0.0, &tag, Timestamp::now());
        }
        tracing::info!(
            sender = %crate::core::address::redact(m.from),
            direction = m.direction,
            limit,
            retry_after_secs,
            "message over a rate limit"
        );
        Some(Gate::RateLimited {
            retry_after_secs,
            limit,
        })
    }

    /// Queues a notice for the operator's hold webhook, when there is one.
    fn tell_operator(
        &self,
        m: &MessageFacts<'_>,
        verdict: &'static str,
        score: f32,
        tags: &[classifier::RuleTag],
        now: Timestamp,
    ) {
        let Some(n) = &self.hold_notifier else {
            return;
        };
        n.notify(
            HoldNotice {
                event: "hold",
                verdict,
                message_id: m.id.to_string(),
                sender: m.from.to_string(),
                direction: m.direction,
                score,
                reasons: tags.iter().map(|t| t.as_str().to_string()).collect(),
                at: now.to_string(),
            },
            now.unix_millis(),
        );
    }

    /// One log line and one count per hold, block, refusal or shadow verdict.
    fn note(&self, m: &MessageFacts<'_>, verdict: &'static str, score: f32, tags: &str) {
        self.metrics.spam_verdict(verdict, m.direction);
        tracing::info!(
            msg_id = m.id,
            sender = %crate::core::address::redact(m.from),
            direction = m.direction,
            verdict,
            score = f64::from(score),
            reasons = tags,
            "spam gate verdict"
        );
    }

    /// Message `id` left the gateway now: its failure is timed from here,
    /// here and on the other nodes of a cluster.
    pub fn handed_over(&self, id: &str) {
        let now = Timestamp::now();
        self.engine.handed_over(id, now);
        self.share.push(Shared::HandedOver(HandOver {
            handed_over: id.to_string(),
            at_ms: now.unix_millis(),
        }));
    }

    /// Another node handed message `id` over (see [`Self::handed_over`]);
    /// timed by this node's clock, as the message itself was when it
    /// arrived here.
    pub fn handed_over_remote(&self, id: &str) {
        self.engine.handed_over(id, Timestamp::now());
    }

    /// Feeds a delivery outcome back (failure rates are a spam signal).
    pub fn observe_status(&self, id: &str, delivered: bool) {
        let event = MetadataEvent::Status(classifier::StatusMeta {
            at: Timestamp::now(),
            id: id.to_string(),
            status: if delivered {
                classifier::DeliveryStatus::Delivered
            } else {
                classifier::DeliveryStatus::Failed
            },
        });
        let _ = self.engine.observe(&event, Timestamp::now());
        self.share.push(Shared::Observed(event, true));
        self.note_quiet_verdicts();
    }

    /// Keeps an observation for the next exchange again (it failed).
    pub fn share_again(&self, event: Shared) {
        self.share.push(event);
    }

    /// The observations made since the last call, for the other nodes.
    pub fn take_shared(&self) -> Vec<Shared> {
        self.share.take()
    }

    /// Feeds an observation another node made (see
    /// `classifier::Engine::observe_remote`): its sender's features and
    /// rate limits count here too; the verdict was that node's.
    pub fn observe_remote(&self, event: &MetadataEvent, allowed: bool) {
        self.engine.observe_remote(event, Timestamp::now(), allowed);
        self.note_quiet_verdicts();
    }

    /// Charges own traffic another node let through to its route's
    /// ceiling here (see `Shared::OwnRoute`).
    pub fn charge_own_remote(&self, c: &OwnRouteCharge) {
        self.engine
            .charge_own_remote(&c.own_route, c.segments, Timestamp::now());
    }

    /// One log line and one count (direction `quiet`) per sender the
    /// engine held or blocked while it sent nothing (see
    /// `classifier::Engine::take_quiet_verdicts`): nothing is queued for it,
    /// but its next message meets the verdict and an operator should know.
    fn note_quiet_verdicts(&self) {
        for (sender, v) in self.engine.take_quiet_verdicts() {
            let verdict = match (v.verdict, self.mode.is_enforcing()) {
                (VerdictKind::Spam, true) => "spam",
                (_, true) => "suspect",
                (VerdictKind::Spam, false) => "would_block",
                (_, false) => "would_hold",
            };
            let tags: Vec<&str> = v.tags.iter().map(|t| t.as_str()).collect();
            self.metrics.spam_verdict(verdict, "quiet");
            tracing::info!(
                sender = %crate::core::address::redact(&sender),
                verdict,
                score = f64::from(v.score),
                reasons = tags.join(","),
                "spam gate verdict on a quiet sender"
            );
        }
    }
}

/// The reasons the review queue shows for a flag (JSON, stored with the
/// flagged sender): the rules that let the score hold or block first, in
/// words only (`ONE_WAY_BROADCAST`, `CAMPAIGN_NEIGHBOUR`, ...: what an
/// operator decides on), then the model's top features with their values.
fn review_reasons(v: &classifier::Verdict) -> String {
    let rules = v
        .tags
        .iter()
        .map(|t| serde_json::json!({"tag": t.as_str(), "words": t.words()}));
    let model = v
        .reasons
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok());
    serde_json::Value::Array(rules.chain(model).collect()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_reasons_put_the_rules_first_in_words() {
        let v = classifier::Verdict {
            score: 0.9,
            verdict: VerdictKind::Spam,
            reasons: vec![classifier::Reason {
                tag: "FAN_OUT",
                words: "distinct recipients per message",
                value: 1.0,
                contribution: 2.0,
            }],
            tags: vec![classifier::RuleTag::CampaignNeighbour],
        };
        let words = crate::store::review::reason_words(&review_reasons(&v));
        assert_eq!(
            words,
            [
                classifier::RuleTag::CampaignNeighbour.words().to_string(),
                "distinct recipients per message (1.00)".to_string()
            ]
        );
    }

    #[test]
    fn list_patterns() {
        let p = vec!["+1900*".to_string(), "ACME".to_string()];
        assert!(matches(&p, "+19005550100"));
        assert!(matches(&p, "ACME"));
        assert!(!matches(&p, "ACME2"));
        assert!(!matches(&p, "+1800"));
    }

    #[test]
    fn young_deployment_shadows_until_enough_messages() {
        let dir = std::env::temp_dir().join(format!("spam-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let policy = classifier::Config {
            shadow_messages: 3,
            ..classifier::Config::default()
        };
        let m = ModeSwitch::for_data_dir(&policy, &dir, 0);
        let now = crate::core::clock::now_ms();
        assert!(!m.is_enforcing());
        assert!(!m.enforcing_after_one(now));
        assert!(!m.enforcing_after_one(now));
        assert!(m.enforcing_after_one(now), "the third message switches");
        assert!(m.is_enforcing());
        // the first start is remembered: a later start after the period enforces
        let old = classifier::Config {
            shadow_days: 0,
            ..classifier::Config::default()
        };
        assert!(ModeSwitch::for_data_dir(&old, &dir, 0).is_enforcing());
        let fixed = classifier::Config {
            mode: Some(Mode::Shadow),
            shadow_messages: 0,
            ..classifier::Config::default()
        };
        let s = ModeSwitch::for_data_dir(&fixed, &dir, 100);
        assert!(
            !s.enforcing_after_one(now),
            "a fixed shadow mode never switches"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
