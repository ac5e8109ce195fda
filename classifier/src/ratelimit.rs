//! Rate limits, counted in segments, on an injectable clock.
//!
//! Four independent keys are limited (protocols.md §8 explains why carriers
//! count this way): the sender (quota by sender type), the recipient (nobody
//! should be flooded, whoever sends), the (sender, recipient) pair, and the
//! outbound route (a carrier account or relay has its own ceiling). Each key
//! may have a per-second token bucket plus optional hourly and daily caps.
//!
//! The limiter is `governor`'s GCRA over a [`ManualClock`]: the caller sets the
//! time before each decision. Live, the gateway passes the wall clock; replay
//! passes each event's timestamp, so a week of traffic replays in seconds with
//! exactly the decisions it would have had.
//!
//! Keys are 64-bit hashes of the ids (no strings are stored), and stores are
//! pruned with governor's `retain_recent`, which drops keys whose buckets are
//! full again, so memory follows active keys, not history.

use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::sender::SenderKind;
use crate::timestamp::Timestamp;

/// An instant of the [`ManualClock`]: nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManualInstant(u64);

impl Add<Nanos> for ManualInstant {
    type Output = ManualInstant;
    fn add(self, other: Nanos) -> ManualInstant {
        ManualInstant(self.0.saturating_add(other.as_u64()))
    }
}

impl Reference for ManualInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        Nanos::new(self.0.saturating_sub(earlier.0))
    }
    fn saturating_sub(&self, duration: Nanos) -> Self {
        ManualInstant(self.0.saturating_sub(duration.as_u64()))
    }
}

/// The latest time the clock shows (about the year 2116). governor adds
/// quota periods to instants without checking for overflow, so a trace line
/// dated in the far future (found by the `trace` fuzz target) must not push
/// the clock to the end of `u64`; nothing real happens that late.
const CLOCK_END: u64 = u64::MAX / 4;

/// A clock that only moves when told to. Clones share the same time.
///
/// It never goes backwards: setting an earlier time is ignored, so slightly
/// out-of-order events cannot make a bucket refill twice.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at the Unix epoch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock to `t` (if later than now).
    pub fn set(&self, t: Timestamp) {
        let ns = u64::try_from(t.unix_millis())
            .unwrap_or(0)
            .saturating_mul(1_000_000)
            .min(CLOCK_END);
        self.nanos.fetch_max(ns, Ordering::Relaxed);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add(ns).min(CLOCK_END))
            });
    }
}

impl Clock for ManualClock {
    type Instant = ManualInstant;
    fn now(&self) -> ManualInstant {
        ManualInstant(self.nanos.load(Ordering::Relaxed))
    }
}

/// One key's quota, in segments.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Sustained rate in segments per second (may be fractional, e.g. 0.4).
    pub per_second: f64,
    /// Burst size: segments that may go at once from a full bucket.
    pub burst: u32,
    /// Optional hourly cap: a bucket of this many segments refilled at this
    /// many per hour (long-run rate exact; a single clock hour can see up to
    /// twice the cap after a long idle period, as with any token bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
    /// Optional daily cap, same semantics as `per_hour` over a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

impl QuotaConfig {
    /// A per-second quota with no hourly or daily cap.
    pub const fn per_second(per_second: f64, burst: u32) -> Self {
        QuotaConfig {
            per_second,
            burst,
            per_hour: None,
            per_day: None,
        }
    }

    fn validate(&self, name: &str) -> Result<(), Error> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(Error::Config(format!("{name}.per_second must be > 0")));
        }
        if self.burst == 0 || self.per_hour == Some(0) || self.per_day == Some(0) {
            return Err(Error::Config(format!("{name}: burst and caps must be > 0")));
        }
        Ok(())
    }
}

/// Rate-limit policy. Defaults follow protocols.md §8 ("derived defaults").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Ordinary long codes: 1 segment/s (unregistered P2P norm), burst 10,
    /// 2 000/day (T-Mobile's default daily cap for 10DLC brands).
    #[serde(default = "default_long_code")]
    pub long_code: QuotaConfig,
    /// Toll-free: 3 segments/s (Twilio default), burst 30.
    #[serde(default = "default_toll_free")]
    pub toll_free: QuotaConfig,
    /// Short codes: 100 segments/s (Plivo), burst 200.
    #[serde(default = "default_short_code")]
    pub short_code: QuotaConfig,
    /// Alphanumeric ids (no US norm; our choice): 10 segments/s, burst 100.
    #[serde(default = "default_alphanumeric")]
    pub alphanumeric: QuotaConfig,
    /// Android SIM relays: 0.4 segments/s, burst 5, 120/hour (Android's
    /// 30/min per app and carriers' 30–200/hour per SIM).
    #[serde(default = "default_android_sim")]
    pub android_sim: QuotaConfig,
    /// Per recipient, whoever sends: 0.5 segments/s, burst 20.
    #[serde(default = "default_recipient")]
    pub recipient: QuotaConfig,
    /// Per (sender, recipient) pair: 0.5 segments/s, burst 10, 200/day.
    #[serde(default = "default_pair")]
    pub pair: QuotaConfig,
    /// Per outbound route: 50 segments/s (Telnyx account default), burst 500.
    #[serde(default = "default_route")]
    pub route: QuotaConfig,
}

const fn default_long_code() -> QuotaConfig {
    QuotaConfig {
        per_second: 1.0,
        burst: 10,
        per_hour: None,
        per_day: Some(2000),
    }
}
const fn default_toll_free() -> QuotaConfig {
    QuotaConfig::per_second(3.0, 30)
}
const fn default_short_code() -> QuotaConfig {
    QuotaConfig::per_second(100.0, 200)
}
const fn default_alphanumeric() -> QuotaConfig {
    QuotaConfig::per_second(10.0, 100)
}
const fn default_android_sim() -> QuotaConfig {
    QuotaConfig {
        per_second: 0.4,
        burst: 5,
        per_hour: Some(120),
        per_day: None,
    }
}
const fn default_recipient() -> QuotaConfig {
    QuotaConfig::per_second(0.5, 20)
}
const fn default_pair() -> QuotaConfig {
    QuotaConfig {
        per_second: 0.5,
        burst: 10,
        per_hour: None,
        per_day: Some(200),
    }
}
const fn default_route() -> QuotaConfig {
    QuotaConfig::per_second(50.0, 500)
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            long_code: default_long_code(),
            toll_free: default_toll_free(),
            short_code: default_short_code(),
            alphanumeric: default_alphanumeric(),
            android_sim: default_android_sim(),
            recipient: default_recipient(),
            pair: default_pair(),
            route: default_route(),
        }
    }
}

impl RateLimitConfig {
    /// The quota for a sender type.
    pub fn for_sender(&self, kind: SenderKind) -> &QuotaConfig {
        match kind {
            SenderKind::LongCode => &self.long_code,
            SenderKind::TollFree => &self.toll_free,
            SenderKind::ShortCode => &self.short_code,
            SenderKind::Alphanumeric => &self.alphanumeric,
            SenderKind::AndroidSim => &self.android_sim,
        }
    }

    /// Checks every quota, reporting all problems at once.
    pub fn validate(&self) -> Result<(), Error> {
        let all = [
            ("long_code", &self.long_code),
            ("toll_free", &self.toll_free),
            ("short_code", &self.short_code),
            ("alphanumeric", &self.alphanumeric),
            ("android_sim", &self.android_sim),
            ("recipient", &self.recipient),
            ("pair", &self.pair),
            ("route", &self.route),
        ];
        let errors: Vec<String> = all
            .iter()
            .filter_map(|(n, q)| q.validate(n).err())
            .map(|e| e.to_string())
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(errors.join("; ")))
        }
    }
}

/// Which limit denied a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// The sender's quota.
    Sender,
    /// The (sender, recipient) pair quota.
    Pair,
    /// The recipient's quota.
    Recipient,
    /// The outbound route's quota.
    Route,
}

impl LimitScope {
    /// Stable lowercase name (metrics label, API error).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Sender => "sender",
            LimitScope::Pair => "pair",
            LimitScope::Recipient => "recipient",
            LimitScope::Route => "route",
        }
    }
}

/// The outcome of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateDecision {
    /// Whether the message may go now.
    pub allowed: bool,
    /// When denied: how long until it would conform (for `Retry-After`).
    pub retry_after: Option<Duration>,
    /// When denied: which limit said no.
    pub limited_by: Option<LimitScope>,
}

impl RateDecision {
    const ALLOW: RateDecision = RateDecision {
        allowed: true,
        retry_after: None,
        limited_by: None,
    };
}

type Keyed = RateLimiter<
    u64,
    HashMapStateStore<u64, FxBuildHasher>,
    ManualClock,
    NoOpMiddleware<ManualInstant>,
>;

/// A per-second bucket with optional hourly and daily caps for one key space.
struct Tiered {
    limiters: Vec<Keyed>,
    cap: NonZeroU32,
    /// Segments another node let through that this node's buckets could
    /// not take when they arrived (see [`Limiter::charge`]), by key: paid
    /// before the key's next message here may pass.
    debt: std::sync::Mutex<std::collections::HashMap<u64, u32, FxBuildHasher>>,
}

impl Tiered {
    fn new(q: &QuotaConfig, clock: &ManualClock) -> Self {
        let mk = |period: Duration, burst: u32| -> Keyed {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(burst))
                .allow_burst(burst);
            RateLimiter::hashmap_with_clock_and_hasher(quota, clock.clone(), FxBuildHasher)
        };
        let per_second = if q.per_second > 0.0 {
            q.per_second
        } else {
            1.0
        };
        let mut limiters = vec![mk(Duration::from_secs_f64(1.0 / per_second), q.burst)];
        let mut cap = q.burst;
        if let Some(h) = q.per_hour {
            limiters.push(mk(Duration::from_secs_f64(3600.0 / f64::from(h.max(1))), h));
            cap = cap.min(h);
        }
        if let Some(d) = q.per_day {
            limiters.push(mk(
                Duration::from_secs_f64(86_400.0 / f64::from(d.max(1))),
                d,
            ));
            cap = cap.min(d);
        }
        Tiered {
            limiters,
            cap: NonZeroU32::new(cap).unwrap_or(NonZeroU32::MIN),
            debt: std::sync::Mutex::default(),
        }
    }

    /// Ok, or the wait until the first failing tier would conform. Tiers
    /// checked before a failing one keep their consumption (governor has no
    /// dry-run for keyed checks); that makes a denied burst count against
    /// the shorter window, which errs on the strict side.
    fn check(&self, key: u64, segments: u32, clock: &ManualClock) -> Result<(), Duration> {
        let owed = self
            .debt
            .lock()
            .map(|d| d.get(&key).copied().unwrap_or(0))
            .unwrap_or(0);
        if owed > 0 {
            self.take(key, owed, clock)?;
            if let Ok(mut d) = self.debt.lock() {
                d.remove(&key);
            }
        }
        self.take(key, segments, clock)
    }

    /// Charges segments another node already let through: taken from the
    /// buckets when they have them, else owed (paid before this key's next
    /// message passes here), so the budget is spent once across the nodes.
    fn charge(&self, key: u64, segments: u32, clock: &ManualClock) {
        if self.take(key, segments, clock).is_err() {
            if let Ok(mut d) = self.debt.lock() {
                let owed = d.entry(key).or_insert(0);
                *owed = owed.saturating_add(segments).min(self.cap.get());
            }
        }
    }

    fn take(&self, key: u64, segments: u32, clock: &ManualClock) -> Result<(), Duration> {
        // A message larger than the smallest bucket could never pass; clamp so
        // it is charged a full bucket instead of being refused forever.
        let n = NonZeroU32::new(segments.max(1))
            .unwrap_or(NonZeroU32::MIN)
            .min(self.cap);
        for l in &self.limiters {
            match l.check_key_n(&key, n) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => return Err(not_until.wait_time_from(clock.now())),
                // Unreachable: `n` is clamped to the smallest burst of all
                // tiers. Deny for a second rather than panic if that changes.
                Err(_) => return Err(Duration::from_secs(1)),
            }
        }
        Ok(())
    }

    fn prune(&self) {
        if let Ok(mut d) = self.debt.lock() {
            // Debts are at most one exchange's worth; a key quiet for a
            // sweep is forgiven.
            d.clear();
        }
        for l in &self.limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.limiters.iter().map(|l| l.len()).sum()
    }
}

/// The four-way limiter. Not internally synchronized beyond what governor
/// does; the [`crate::Engine`] serializes access.
pub struct Limiter {
    clock: ManualClock,
    by_kind: Vec<Tiered>,
    recipient: Tiered,
    pair: Tiered,
    route: Tiered,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("tracked_keys", &self.tracked_keys())
            .finish()
    }
}

/// Key hashes of one message, computed once by the caller.
#[derive(Debug, Clone, Copy)]
pub struct LimitKeys {
    /// Sender id hash.
    pub sender: u64,
    /// Recipient id hash.
    pub recipient: u64,
    /// Directed pair hash.
    pub pair: u64,
    /// Route hash.
    pub route: u64,
}

impl Limiter {
    /// Builds limiters for a validated config on the given clock.
    pub fn new(config: &RateLimitConfig, clock: ManualClock) -> Result<Self, Error> {
        config.validate()?;
        let by_kind = SenderKind::ALL
            .iter()
            .map(|k| Tiered::new(config.for_sender(*k), &clock))
            .collect();
        Ok(Limiter {
            recipient: Tiered::new(&config.recipient, &clock),
            pair: Tiered::new(&config.pair, &clock),
            route: Tiered::new(&config.route, &clock),
            by_kind,
            clock,
        })
    }

    /// The clock this limiter reads.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Checks one message of `segments` at time `now`. Stops at the first
    /// denying scope, so a message refused for its sender does not also use
    /// up its recipient's allowance.
    pub fn check(
        &self,
        now: Timestamp,
        kind: SenderKind,
        keys: LimitKeys,
        segments: u32,
    ) -> RateDecision {
        self.clock.set(now);
        let scopes: [(&Tiered, u64, LimitScope); 4] = [
            (&self.by_kind[kind.index()], keys.sender, LimitScope::Sender),
            (&self.pair, keys.pair, LimitScope::Pair),
            (&self.recipient, keys.recipient, LimitScope::Recipient),
            (&self.route, keys.route, LimitScope::Route),
        ];
        for (tier, key, scope) in scopes {
            if let Err(wait) = tier.check(key, segments, &self.clock) {
                return RateDecision {
                    allowed: false,
                    retry_after: Some(wait),
                    limited_by: Some(scope),
                };
            }
        }
        RateDecision::ALLOW
    }

    /// Charges a message another node let through (several gateway nodes,
    /// see [`crate::cluster`]) to every key it was charged to there, owing
    /// what the buckets here cannot take at once.
    pub fn charge(&self, now: Timestamp, kind: SenderKind, keys: LimitKeys, segments: u32) {
        self.clock.set(now);
        self.by_kind[kind.index()].charge(keys.sender, segments, &self.clock);
        self.pair.charge(keys.pair, segments, &self.clock);
        self.recipient.charge(keys.recipient, segments, &self.clock);
        self.route.charge(keys.route, segments, &self.clock);
    }

    /// Checks one message of the gateway's own traffic (sent for an API
    /// key or an SMPP client, from the route's own numbers): only the
    /// route's ceiling applies. The sender, pair and recipient limits exist
    /// to slow strangers down, and an operator's test burst to neighbouring
    /// numbers is not a stranger's.
    pub fn check_route(&self, now: Timestamp, route: u64, segments: u32) -> RateDecision {
        self.clock.set(now);
        match self.route.check(route, segments, &self.clock) {
            Ok(()) => RateDecision::ALLOW,
            Err(wait) => RateDecision {
                allowed: false,
                retry_after: Some(wait),
                limited_by: Some(LimitScope::Route),
            },
        }
    }

    /// Charges a message of the gateway's own traffic that another node let
    /// through to the route's ceiling (owed when the bucket is empty), so a
    /// route's limit is one limit across the nodes of a cluster.
    pub fn charge_route(&self, now: Timestamp, route: u64, segments: u32) {
        self.clock.set(now);
        self.route.charge(route, segments, &self.clock);
    }

    /// Drops keys whose buckets are full again (indistinguishable from new).
    pub fn prune(&self) {
        self.by_kind.iter().for_each(Tiered::prune);
        self.recipient.prune();
        self.pair.prune();
        self.route.prune();
    }

    /// Number of keys currently held across all stores.
    pub fn tracked_keys(&self) -> usize {
        self.by_kind.iter().map(Tiered::len).sum::<usize>()
            + self.recipient.len()
            + self.pair.len()
            + self.route.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys(sender: u64, recipient: u64) -> LimitKeys {
        LimitKeys {
            sender,
            recipient,
            pair: sender * 1000 + recipient,
            route: 7,
        }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_772_366_400_000 + ms)
    }

    #[test]
    fn long_code_burst_then_one_per_second() {
        let l = Limiter::new(&RateLimitConfig::default(), ManualClock::new()).unwrap();
        // burst 10 to ten different recipients passes at one instant
        for r in 0..10 {
            assert!(l.check(t(0), SenderKind::LongCode, keys(1, r), 1).allowed);
        }
        let d = l.check(t(0), SenderKind::LongCode, keys(1, 99), 1);
        assert!(!d.allowed);
        assert_eq!(d.limited_by, Some(LimitScope::Sender));
        let wait = d.retry_after.unwrap();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // after the advertised wait it conforms again
        let later = t(wait.as_millis() as i64);
        assert!(
            l.check(later, SenderKind::LongCode, keys(1, 100), 1)
                .allowed
        );
        // another sender is unaffected
        assert!(l.check(t(0), SenderKind::LongCode, keys(2, 0), 1).allowed);
    }

    #[test]
    fn segments_count_not_messages() {
        let l = Limiter::new(&RateLimitConfig::default(), ManualClock::new()).unwrap();
        assert!(l.check(t(0), SenderKind::LongCode, keys(1, 1), 6).allowed);
        assert!(l.check(t(0), SenderKind::LongCode, keys(1, 2), 4).allowed);
        assert!(!l.check(t(0), SenderKind::LongCode, keys(1, 3), 1).allowed);
    }

    #[test]
    fn android_sim_hourly_cap_holds_even_when_paced() {
        let l = Limiter::new(&RateLimitConfig::default(), ManualClock::new()).unwrap();
        // One segment every 5 s is under 0.4/s but far over 120/hour. The hourly
        // tier is a GCRA bucket of 120 refilled at 120/hour, so over two hours
        // 120 (initial bucket) + 240 (refill) pass, never more.
        let allowed = (0..1440)
            .filter(|i| {
                l.check(t(i * 5000), SenderKind::AndroidSim, keys(3, *i as u64), 1)
                    .allowed
            })
            .count();
        assert!((355..=362).contains(&allowed), "{allowed}");
    }

    #[test]
    fn recipient_is_protected_from_many_senders() {
        let l = Limiter::new(&RateLimitConfig::default(), ManualClock::new()).unwrap();
        let allowed = (0..50)
            .filter(|s| {
                l.check(t(0), SenderKind::ShortCode, keys(*s, 42), 1)
                    .allowed
            })
            .count();
        assert_eq!(allowed, 20);
        let d = l.check(t(0), SenderKind::ShortCode, keys(77, 42), 1);
        assert_eq!(d.limited_by, Some(LimitScope::Recipient));
    }

    #[test]
    fn clock_never_goes_back_and_prune_forgets_idle_keys() {
        let l = Limiter::new(&RateLimitConfig::default(), ManualClock::new()).unwrap();
        for r in 0..10 {
            l.check(t(10_000), SenderKind::LongCode, keys(1, r), 1);
        }
        // an older timestamp does not refill the bucket
        assert!(!l.check(t(0), SenderKind::LongCode, keys(1, 50), 1).allowed);
        assert!(l.tracked_keys() > 0);
        l.clock().set(t(3 * 86_400_000));
        l.prune();
        assert_eq!(l.tracked_keys(), 0);
    }

    #[test]
    fn config_rejects_zero_rates_and_unknown_fields() {
        let mut c = RateLimitConfig::default();
        c.pair.per_second = 0.0;
        c.route.burst = 0;
        let err = Limiter::new(&c, ManualClock::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("pair") && err.contains("route"), "{err}");
        let bad = r#"{"long_code":{"per_second":1,"burst":1,"per_week":3}}"#;
        assert!(serde_json::from_str::<RateLimitConfig>(bad).is_err());
        let partial: RateLimitConfig =
            serde_json::from_str(r#"{"toll_free":{"per_second":20,"burst":40}}"#).unwrap();
        assert_eq!(partial.toll_free.per_second, 20.0);
        assert_eq!(partial.short_code, RateLimitConfig::default().short_code);
    }

    #[test]
    fn a_route_charged_by_another_node_is_one_ceiling() {
        let l = Limiter::new(&RateLimitConfig::default(), ManualClock::new()).unwrap();
        let burst = RateLimitConfig::default().route.burst;
        // the other node let the whole burst through; this node owes it
        l.charge_route(t(0), 7, burst);
        assert!(!l.check_route(t(0), 7, 1).allowed, "the burst is spent");
        // another route is its own ceiling
        assert!(l.check_route(t(0), 8, 1).allowed);
    }
}
