//! Prometheus metrics. Labels are small closed sets (direction, status, route,
//! outcome) and never carry numbers or content.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the message counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// inbound / outbound.
    pub direction: &'static str,
    /// The status reached.
    pub status: &'static str,
}

/// Labels of delivery attempts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// `private` or the route name.
    pub target: String,
    /// ok / retry / dead.
    pub outcome: &'static str,
}

/// Labels of per-modem metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModemLabels {
    /// The modem's configured name.
    pub modem: String,
}

/// Labels of per-modem event counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModemEventLabels {
    /// The modem's configured name.
    pub modem: String,
    /// sent_part / send_refused / received / report / reset / timeout.
    pub event: &'static str,
}

/// Labels of an SMPP client bind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SmppBindLabels {
    /// The route, `smpp:<name>`.
    pub route: String,
    /// The bind's index within the route (0-based).
    pub bind: String,
}

/// Labels of an SMPP server client.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SmppClientLabels {
    /// The client's `system_id` (operator-chosen, a small set).
    pub system_id: String,
}

/// Labels of the spam gate's verdict counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// suspect / spam / refused / would_hold / would_block.
    pub verdict: &'static str,
    /// inbound / outbound.
    pub direction: &'static str,
}

/// Labels of the rate-limit counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// sender / pair / recipient / route.
    pub limit: &'static str,
}

/// Labels of HTTP latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route template, e.g. `/v1/messages/{id}`.
    pub route: String,
    /// The answer's status code, e.g. `202` (a closed set of a few dozen).
    pub status: u16,
}

/// Labels of `gateway_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The target OS, e.g. `linux`.
    pub os: &'static str,
    /// The target architecture, e.g. `x86_64`.
    pub arch: &'static str,
    /// `release` or `debug`.
    pub profile: &'static str,
}

impl BuildLabels {
    /// This binary's build.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

/// Labels of a counter by a small closed set of outcomes or reasons.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The outcome (or reason), a fixed word.
    pub outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// Every metric the gateway exports.
pub struct Metrics {
    /// The root registry: `process_*` unprefixed, the rest under `gateway_`.
    registry: Registry,
    /// Constant 1, labelled with the build (version, os, arch, profile).
    pub build_info: Family<BuildLabels, Gauge<i64, AtomicI64>>,
    /// Messages held for review from undecided senders (set at scrape time).
    pub held_messages: Gauge<i64, AtomicI64>,
    /// Messages reaching a status, by direction.
    pub messages: Family<MessageLabels, Counter>,
    /// Delivery attempts by target and outcome.
    pub attempts: Family<AttemptLabels, Counter>,
    /// Writes folded into each group commit.
    pub commit_batch: Histogram,
    /// Duration of each group commit (including fsync).
    pub commit_seconds: Histogram,
    /// Duration of each fsync of the store's WAL (the writer's second stage).
    pub sync_seconds: Histogram,
    /// HTTP handling latency by route.
    pub http_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Live queue entries (set at scrape time).
    pub queue_live: Gauge<i64, AtomicI64>,
    /// Dead-lettered entries (set at scrape time).
    pub queue_dead: Gauge<i64, AtomicI64>,
    /// 1 while a modem is brought up and answering.
    pub modem_up: Family<ModemLabels, Gauge<i64, AtomicI64>>,
    /// Modem events by modem.
    pub modem_events: Family<ModemEventLabels, Counter>,
    /// 1 while an SMPP client bind is bound.
    pub smpp_bind_up: Family<SmppBindLabels, Gauge<i64, AtomicI64>>,
    /// Live binds per SMPP server client.
    pub smpp_server_binds: Family<SmppClientLabels, Gauge<i64, AtomicI64>>,
    /// Spam gate verdicts that held, blocked, refused or (shadow) would have.
    pub spam_verdicts: Family<VerdictLabels, Counter>,
    /// Messages over a rate limit, by limit.
    pub rate_limited_total: Family<LimitLabels, Counter>,
    /// Senders waiting in the review queue.
    pub review_queue: Gauge<i64, AtomicI64>,
    /// Bodies erased but possibly still in the WAL (a checkpoint pending).
    pub erasures_pending: Gauge<i64, AtomicI64>,
    /// When a group commit last failed (Unix seconds; 0: never).
    pub store_commit_failed_at: Gauge<i64, AtomicI64>,
    /// Requests refused before their handler: `slow_body_peer`,
    /// `body_timeout`, `in_flight`.
    pub http_refused: Family<OutcomeLabels, Counter>,
    /// Status callback POSTs: `ok`, `retry`, `given_up`.
    pub status_callbacks: Family<OutcomeLabels, Counter>,
    /// Hold webhook notices by outcome (sent, failed, dropped).
    pub review_notify: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Builds and registers every metric.
    // Long on purpose: it registers every metric the service exports, a list
    // rather than logic; each family is documented where it is declared.
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(super::process_metrics::ProcessCollector));
        let registry = root.sub_registry_with_prefix("gateway");
        let build_info = Family::<BuildLabels, Gauge<i64, AtomicI64>>::default();
        build_info.get_or_create(&BuildLabels::current()).set(1);
        registry.register(
            "build_info",
            "Always 1; the labels say which build is running",
            build_info.clone(),
        );
        let held_messages = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "held_messages",
            "Messages held for review (held or spam-blocked) from senders not yet decided",
            held_messages.clone(),
        );
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Messages that reached a status",
            messages.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts by target and outcome",
            attempts.clone(),
        );
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "commit_batch_size",
            "Writes per group commit",
            commit_batch.clone(),
        );
        let commit_seconds = latency_histogram();
        registry.register(
            "commit_seconds",
            "Group commit duration including fsync",
            commit_seconds.clone(),
        );
        let sync_seconds = latency_histogram();
        registry.register(
            "store_sync_seconds",
            "Duration of each fsync of the store's write-ahead log",
            sync_seconds.clone(),
        );
        let http_seconds: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_seconds",
            "HTTP request latency by route and status",
            http_seconds.clone(),
        );
        let queue_live = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "queue_depth",
            "Messages waiting for delivery",
            queue_live.clone(),
        );
        let queue_dead = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "dead_letters",
            "Messages that exhausted their attempts",
            queue_dead.clone(),
        );
        let modem_up = Family::<ModemLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "modem_up",
            "1 while the modem is up and answering",
            modem_up.clone(),
        );
        let modem_events = Family::<ModemEventLabels, Counter>::default();
        registry.register(
            "modem_events",
            "Modem events (parts sent, refusals, received, reports, resets, timeouts)",
            modem_events.clone(),
        );
        let smpp_bind_up = Family::<SmppBindLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "smpp_bind_up",
            "1 while the SMPP client bind is bound to its SMSC",
            smpp_bind_up.clone(),
        );
        let smpp_server_binds = Family::<SmppClientLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "smpp_server_binds",
            "Live binds of each SMPP server client",
            smpp_server_binds.clone(),
        );
        let spam_verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "spam_verdicts",
            "Spam gate verdicts that held, blocked or refused a message (would_* in shadow mode)",
            spam_verdicts.clone(),
        );
        let rate_limited_total = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Messages over a rate limit, by the limit that said no",
            rate_limited_total.clone(),
        );
        let review_queue = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "review_queue_depth",
            "Flagged senders waiting for an operator's decision",
            review_queue.clone(),
        );
        let erasures_pending = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "erasures_pending",
            "Erased bodies whose WAL frames a checkpoint has not yet truncated",
            erasures_pending.clone(),
        );
        let store_commit_failed_at = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "store_commit_failed_at_seconds",
            "When a group commit last failed (Unix time; 0: never): disk full, size cap, I/O",
            store_commit_failed_at.clone(),
        );
        let http_refused = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "http_refused",
            "Requests refused before their handler (slow_body_peer, body_timeout, in_flight)",
            http_refused.clone(),
        );
        let status_callbacks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "status_callbacks",
            "Status callback POSTs by outcome (ok, retry, given_up)",
            status_callbacks.clone(),
        );
        let review_notify = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "review_notify",
            "Hold webhook notices ([review] notify_url) by outcome (sent, failed, dropped)",
            review_notify.clone(),
        );
        Self {
            registry: root,
            http_refused,
            status_callbacks,
            review_notify,
            build_info,
            held_messages,
            store_commit_failed_at,
            erasures_pending,
            spam_verdicts,
            rate_limited_total,
            review_queue,
            smpp_bind_up,
            smpp_server_binds,
            modem_up,
            modem_events,
            messages,
            attempts,
            commit_batch,
            commit_seconds,
            sync_seconds,
            http_seconds,
            queue_live,
            queue_dead,
        }
    }

    /// Counts a message reaching `status`.
    pub fn message(&self, direction: &'static str, status: &'static str) {
        self.messages
            .get_or_create(&MessageLabels { direction, status })
            .inc();
    }

    /// Counts a spam gate verdict.
    pub fn spam_verdict(&self, verdict: &'static str, direction: &'static str) {
        self.spam_verdicts
            .get_or_create(&VerdictLabels { verdict, direction })
            .inc();
    }

    /// Counts a hold webhook notice by outcome.
    pub fn review_notify(&self, outcome: &'static str) {
        self.review_notify
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a message over a rate limit.
    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited_total
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// Counts a modem event.
    pub fn modem_event(&self, modem: &str, event: &'static str) {
        self.modem_events
            .get_or_create(&ModemEventLabels {
                modem: modem.to_string(),
                event,
            })
            .inc();
    }

    /// Sets a modem's up gauge.
    pub fn modem_up(&self, modem: &str, up: bool) {
        self.modem_up
            .get_or_create(&ModemLabels {
                modem: modem.to_string(),
            })
            .set(i64::from(up));
    }

    /// Records one group commit.
    pub fn observe_commit(&self, jobs: usize, took: Duration) {
        self.commit_batch.observe(jobs as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// Records one fsync of the store's WAL.
    pub fn observe_sync(&self, took: Duration) {
        self.sync_seconds.observe(took.as_secs_f64());
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
