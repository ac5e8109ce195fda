//! The live spam gate: every inbound and outbound message is rate-limited and
//! scored from metadata before it is committed (the classifier never sees
//! text), and the operators' allow/block lists override the model.
//!
//! Lists live in the database so the review CLI can change them while the
//! service runs; the gate re-reads them every [`LIST_REFRESH`], which is how
//! decisions take effect "within a few seconds" without a restart.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use classifier::{Channel, Encoding, MessageMeta, MetadataEvent, Timestamp, VerdictKind};

use crate::core::error::{Error, Result};
use crate::store::Store;

/// How often the allow/block lists are re-read from the database.
pub const LIST_REFRESH: Duration = Duration::from_secs(2);

/// What the gate decided for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Deliver it.
    Deliver {
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
    },
    /// The sender is on the block list: refuse.
    Refused,
}

#[derive(Default)]
struct Lists {
    allow: Vec<String>,
    block: Vec<String>,
    loaded: Option<Instant>,
}

fn matches(patterns: &[String], sender: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => sender.starts_with(prefix),
        None => p == sender,
    })
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
}

/// The classifier engine plus the operators' lists.
pub struct SpamGate {
    engine: classifier::Engine,
    lists: Mutex<Lists>,
    store: Store,
}

impl SpamGate {
    /// Builds the gate with the configured model and policy.
    pub fn new(
        model: classifier::Model,
        policy: &classifier::Config,
        store: Store,
    ) -> Result<Self> {
        let engine = classifier::Engine::new(model, policy)
            .map_err(|e| Error::Config(format!("classifier: {e}")))?;
        Ok(Self {
            engine,
            lists: Mutex::new(Lists::default()),
            store,
        })
    }

    async fn refresh_lists(&self) -> Result<()> {
        let stale = self
            .lists
            .lock()
            .map(|l| l.loaded.is_none_or(|t| t.elapsed() >= LIST_REFRESH))
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
            };
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
            return Ok(Gate::Refused);
        }
        let event = MetadataEvent::Message(MessageMeta {
            at: Timestamp::now(),
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
        let Some(d) = self.engine.observe(&event, Timestamp::now()) else {
            return Ok(Gate::Deliver { score: 0.0 });
        };
        if !d.rate.allowed {
            let secs = d
                .rate
                .retry_after
                .map(|r| r.as_secs_f64().ceil() as u64)
                .unwrap_or(1)
                .max(1);
            return Ok(Gate::RateLimited {
                retry_after_secs: secs,
            });
        }
        let score = d.verdict.score;
        if allowed {
            return Ok(Gate::Deliver { score });
        }
        let reasons = || serde_json::to_string(&d.verdict.reasons).unwrap_or_else(|_| "[]".into());
        Ok(match d.verdict.verdict {
            VerdictKind::Ok => Gate::Deliver { score },
            VerdictKind::Suspect => Gate::Hold {
                score,
                reasons: reasons(),
            },
            VerdictKind::Spam => Gate::Block {
                score,
                reasons: reasons(),
            },
        })
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns() {
        let p = vec!["+1900*".to_string(), "ACME".to_string()];
        assert!(matches(&p, "+19005550100"));
        assert!(matches(&p, "ACME"));
        assert!(!matches(&p, "ACME2"));
        assert!(!matches(&p, "+1800"));
    }
}
