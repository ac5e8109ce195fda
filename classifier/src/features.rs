//! Per-sender incremental features, from metadata events only.
//!
//! Each tracked sender has one fixed-size [`SenderState`] (no heap, ≤512
//! bytes including its map key). Every event updates it in O(1) and
//! [`SenderState::features`] turns it into a [`FeatureVector`] at any instant.
//! Why these features (anchors.md §3): spammers pick victims they never talked
//! to and who never answer (Greystar, RAID 2013), in bursts, often on fresh
//! numbers; pumping and dialers walk adjacent numbers and favour premium
//! ranges; random lists hit dead numbers (failures) and annoyed people
//! (complaints). Legitimate bulk senders (OTP, reminders, marketing) share the
//! fan-out but differ in sender type, timing and failure/complaint profile,
//! which is why sender type and timing are features too.
//!
//! Ratios use an adaptive exponential average: a plain mean over the first
//! 32 messages, then a moving window of about 32 messages. A hijacked account
//! with days of normal history therefore still shows its new behavior within
//! a few dozen messages, which lifetime ratios would hide.

use crate::countries::COUNTRIES;
use crate::event::{Channel, Encoding};
use crate::sender::SenderKind;
use crate::sketch::DistinctCounter;
use crate::timestamp::Timestamp;

/// Name, wording and meaning of one model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Stable SCREAMING_SNAKE tag, also the name in the model file.
    pub name: &'static str,
    /// Human words for the review CLI.
    pub words: &'static str,
}

const fn f(name: &'static str, words: &'static str) -> FeatureSpec {
    FeatureSpec { name, words }
}

/// Number of model inputs.
pub const NUM_FEATURES: usize = 35;

/// The feature schema, in model order. Changing it requires a new model file
/// (the loader refuses a model whose schema differs).
pub static FEATURES: [FeatureSpec; NUM_FEATURES] = [
    f("MSGS_1M", "messages in the last minute (log)"),
    f("MSGS_1H", "messages in the last hour (log)"),
    f("MSGS_24H", "messages in the last day (log)"),
    f("MSGS_TOTAL", "messages since first seen (log)"),
    f("DISTINCT_RECIPIENTS", "distinct recipients (log)"),
    f("FAN_OUT", "distinct recipients per message"),
    f(
        "NEW_RECIPIENT_SHARE",
        "share of messages to recipients never contacted before",
    ),
    f(
        "KNOWN_CONTACT_SHARE",
        "share of messages to people who had messaged the sender",
    ),
    f("REPLY_RATE", "share of recipients who replied"),
    f(
        "INBOUND_SHARE",
        "share of the sender's traffic that is inbound",
    ),
    f("FAILURE_RATE", "share of deliveries that failed"),
    f("COMPLAINTS", "spam complaints from recipients (log)"),
    f("COMPLAINT_RATE", "complaints per distinct recipient"),
    f(
        "SEQUENTIAL_SHARE",
        "share of recipients numerically adjacent to recent ones",
    ),
    f(
        "SAME_BLOCK_SHARE",
        "share of recipients in the same 10k number block as recent ones",
    ),
    f("COUNTRIES", "distinct destination countries"),
    f("FOREIGN_SHARE", "share of messages to other countries"),
    f(
        "PREMIUM_SHARE",
        "share of messages to high-risk (pumping) destinations",
    ),
    f(
        "GAP_LOG_MEAN",
        "typical time between messages (log seconds)",
    ),
    f("GAP_LOG_STD", "irregularity of time between messages"),
    f("NIGHT_SHARE", "share of messages sent at local night"),
    f("KIND_LONG_CODE", "sender is a long code"),
    f("KIND_TOLL_FREE", "sender is toll-free"),
    f("KIND_SHORT_CODE", "sender is a short code"),
    f("KIND_ALPHANUMERIC", "sender is an alphanumeric id"),
    f("KIND_ANDROID_SIM", "sender is an Android SIM relay"),
    f("AGE_HOURS", "hours since the sender was first seen (log)"),
    f("MEAN_SEGMENTS", "segments per message"),
    f("UCS2_SHARE", "share of UCS-2 encoded messages"),
    f("LOG_BYTES", "message size in bytes (log)"),
    f("RATE_LIMITED_SHARE", "share of messages over a rate limit"),
    f("RCS_SHARE", "share of messages over RCS"),
    f(
        "INACTIVE_RECIPIENT_SHARE",
        "share of recipients never seen sending anything (grey numbers)",
    ),
    f(
        "BLOCK_NEW_SENDERS",
        "new senders appearing in the sender's own 100-number block (log)",
    ),
    f(
        "BLOCK_MSGS",
        "messages from all senders in the sender's 100-number block (log)",
    ),
];

/// Index of a feature by name.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURES.iter().position(|s| s.name == name)
}

/// Index of a feature by name at compile time: `const I: usize =
/// feature_const("FAILURE_RATE");` fails the build if the name is unknown,
/// and costs nothing at run time (rules run on every message).
pub const fn feature_const(name: &str) -> usize {
    let mut i = 0;
    while i < NUM_FEATURES {
        let a = FEATURES[i].name.as_bytes();
        let b = name.as_bytes();
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("unknown feature name")
}

/// One snapshot of a sender's features, in [`FEATURES`] order.
pub type FeatureVector = [f32; NUM_FEATURES];

const RING: usize = 8;
/// Numeric distance under which two recipients count as "adjacent".
const ADJACENT: u64 = 16;
const EW_FLOOR: f32 = 1.0 / 32.0;
const PRIOR_FAILURE: f32 = 0.05;

/// Everything remembered about one sender. Fixed size, no heap.
#[derive(Debug, Clone)]
pub struct SenderState {
    first_seen: i64,
    last_msg: i64,
    /// Last event of any kind touching this sender (for eviction).
    pub(crate) last_event: i64,
    msgs: u32,
    statuses: u32,
    failures: u32,
    /// Of those, failures that came quickly ([`Outcome::dead_number`]).
    dead_numbers: u32,
    /// First messages to a recipient that failed quickly: dead numbers,
    /// counted once each (a person texting a friend whose phone is off
    /// fails again and again to one number; a bought list fails once per
    /// dead number).
    failed_first_contacts: u32,
    /// Outcomes of first messages to a recipient (failed or not).
    first_contact_outcomes: u32,
    /// Messages to a recipient another number of its block had just
    /// written to.
    block_resends: u32,
    repliers: u32,
    reports: u32,
    inbound_events: u32,
    r1m: f32,
    r1h: f32,
    r24h: f32,
    ew_new: f32,
    ew_known: f32,
    ew_inbound: f32,
    ew_fail: f32,
    /// The share of outcomes that were dead numbers, for the evidence (the
    /// model's `FAILURE_RATE` counts every failure, as it was trained).
    ew_dead: f32,
    ew_seq: f32,
    ew_block: f32,
    ew_foreign: f32,
    ew_premium: f32,
    ew_night: f32,
    ew_segments: f32,
    ew_ucs2: f32,
    ew_bytes: f32,
    ew_limited: f32,
    ew_rcs: f32,
    ew_inactive: f32,
    /// Smoothed model score (see `Detector`), kept with the sender.
    pub(crate) score: f32,
    /// The sender's 100-number block (`u64::MAX` if not E.164).
    pub(crate) block: u64,
    /// Calibration histogram bin of the sender's peak smoothed score.
    pub(crate) peak_bin: u16,
    gap_mean: f32,
    gap_var: f32,
    countries: u128,
    recent: [u64; RING],
    recent_len: u8,
    recent_pos: u8,
    home_country: u8,
    /// Whether `home_country` is the sender's own number's country (not
    /// guessed from its first recipient, as for an alphanumeric id).
    home_is_own: bool,
    kind: SenderKind,
    /// Cached estimate of `distinct`, refreshed only when a register grows
    /// (estimating walks all 256 registers; most inserts change none).
    distinct_est: f32,
    distinct: DistinctCounter,
}

/// What the engine learned about one outgoing message before updating state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageFacts {
    pub at: Timestamp,
    pub recipient_hash: u64,
    pub recipient_value: Option<u64>,
    pub recipient_country: Option<usize>,
    /// A flagged range in a country the deployment does not serve (see
    /// [`crate::countries::DestinationMix`]).
    pub premium_destination: bool,
    pub new_recipient: bool,
    pub known_contact: bool,
    /// Another number of the sender's block wrote to this recipient a
    /// moment before (see [`crate::evidence::Counts::block_resends`]).
    pub block_resend: bool,
    pub segments: u16,
    pub encoding: Encoding,
    pub channel: Channel,
    pub bytes: u32,
    pub rate_limited: bool,
    pub inactive_recipient: bool,
}

/// One delivery outcome of a sender's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The message failed.
    pub failed: bool,
    /// It failed within [`DEAD_NUMBER_SECS`] of leaving the gateway.
    pub quickly: bool,
    /// It was the sender's first message to that recipient.
    pub first_contact: bool,
}

/// How soon after a message left the gateway its failure says the number
/// does not exist. A network refuses a number nobody holds (unallocated,
/// disconnected) at once, with the submission or within seconds; a phone
/// that is switched off or out of coverage keeps the message waiting at the
/// carrier until it expires: minutes for a passcode, sent with a short
/// validity period, hours or days for anything else. Only the first kind
/// is what a bought or made-up list is; the second is what any sender
/// whose recipients are real people meets. So only failures within this
/// of the message leaving the gateway count as evidence (the model's
/// `FAILURE_RATE` counts every failure, as it was trained). In the traffic
/// worlds no failure arrives between one and five minutes after the send;
/// in Q, R, S and T 60-83 % of the passcode senders' failures came 5 to 60
/// minutes after it, and at most 7 % of the spam's after the first minute.
/// Chosen looking at those four (2026-12-07, eighth session), judged on
/// every world, three seeds: precision Q +6.1 to +7.7 points, S +6.7 to
/// +8.2, R +3.8 to +4.7, T +1.9 to +4.1, H, I, K and L +0.5 to +2.2, the
/// rest within 0.6; recall Q -1.3 to -2.6 and L -0.6 to -2.2 (some of
/// their spam fails late), the rest -1.1 to 0. Worlds written afterwards:
/// U precision +4.4 to +6.5 points, V +0 to +5.5, recall unchanged.
pub(crate) const DEAD_NUMBER_SECS: i64 = 60;

impl Outcome {
    /// A failure that says the number does not exist.
    pub fn dead_number(self) -> bool {
        self.failed && self.quickly
    }
}

#[inline]
fn ew(avg: &mut f32, n: u32, x: f32) {
    let a = (1.0 / n.max(1) as f32).max(EW_FLOOR);
    *avg += a * (x - *avg);
}

#[inline]
fn b(x: bool) -> f32 {
    if x { 1.0 } else { 0.0 }
}

impl SenderState {
    /// A fresh state for a sender first seen at `at`. `home_country` is the
    /// sender's own country when it is an E.164 number.
    pub(crate) fn new(at: Timestamp, kind: SenderKind, home_country: Option<usize>) -> Self {
        SenderState {
            first_seen: at.unix_millis(),
            last_msg: at.unix_millis(),
            last_event: at.unix_millis(),
            msgs: 0,
            statuses: 0,
            failures: 0,
            dead_numbers: 0,
            failed_first_contacts: 0,
            first_contact_outcomes: 0,
            block_resends: 0,
            repliers: 0,
            reports: 0,
            inbound_events: 0,
            r1m: 0.0,
            r1h: 0.0,
            r24h: 0.0,
            ew_new: 0.0,
            ew_known: 0.0,
            ew_inbound: 0.0,
            ew_fail: PRIOR_FAILURE,
            ew_dead: PRIOR_FAILURE,
            ew_seq: 0.0,
            ew_block: 0.0,
            ew_foreign: 0.0,
            ew_premium: 0.0,
            ew_night: 0.0,
            ew_segments: 1.0,
            ew_ucs2: 0.0,
            ew_bytes: 0.0,
            ew_limited: 0.0,
            ew_rcs: 0.0,
            ew_inactive: 0.0,
            score: 0.0,
            block: u64::MAX,
            peak_bin: crate::calibration::NO_BIN,
            gap_mean: 0.0,
            gap_var: 0.0,
            countries: 0,
            recent: [0; RING],
            recent_len: 0,
            recent_pos: 0,
            home_country: home_country
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(u8::MAX),
            home_is_own: home_country.is_some(),
            kind,
            distinct_est: 0.0,
            distinct: DistinctCounter::default(),
        }
    }

    /// Sender type.
    pub fn kind(&self) -> SenderKind {
        self.kind
    }

    /// Whether nobody has written to this sender nor answered it: the
    /// senders whose failures its number block pools (see
    /// [`crate::evidence::Counts::broadcast_failure_rate`]); ordinary
    /// people in the same block talk to others and are left out.
    pub(crate) fn one_way(&self) -> bool {
        self.inbound_events == 0 && self.repliers == 0
    }

    /// Messages sent so far.
    pub fn messages(&self) -> u32 {
        self.msgs
    }

    /// Complaints received so far.
    pub fn reports(&self) -> u32 {
        self.reports
    }

    /// Delivery outcomes seen so far and how many of them failed.
    pub fn statuses(&self) -> (u32, u32) {
        (self.statuses, self.failures)
    }

    /// The counts behind the behavioural evidence.
    pub(crate) fn counts(&self, limited_now: bool) -> crate::evidence::Counts {
        crate::evidence::Counts {
            messages: self.msgs,
            statuses: self.statuses,
            failures: self.dead_numbers,
            failed_first_contacts: self.failed_first_contacts,
            failure_rate: self.ew_dead,
            first_contact_outcomes: self.first_contact_outcomes,
            block_resends: self.block_resends,
            block: crate::evidence::BlockFacts::default(),
            reports: self.reports,
            limited_now,
            bulk_sender: matches!(
                self.kind,
                SenderKind::ShortCode | SenderKind::Alphanumeric | SenderKind::TollFree
            ),
        }
    }

    /// Heap bytes owned by this state (none: it is fixed-size by design).
    pub const fn heap_bytes(&self) -> usize {
        0
    }

    /// Records an outgoing message.
    pub(crate) fn on_message(&mut self, m: &MessageFacts) {
        let now = m.at.unix_millis();
        let dt = ((now - self.last_msg).max(0) as f32) / 1000.0;
        if self.msgs > 0 {
            self.r1m *= (-dt / 60.0).exp();
            self.r1h *= (-dt / 3600.0).exp();
            self.r24h *= (-dt / 86_400.0).exp();
            let g = dt.ln_1p();
            let a = (1.0 / self.msgs as f32).max(EW_FLOOR);
            let d = g - self.gap_mean;
            self.gap_mean += a * d;
            self.gap_var = (1.0 - a) * (self.gap_var + a * d * d);
        }
        self.r1m += 1.0;
        self.r1h += 1.0;
        self.r24h += 1.0;
        self.msgs = self.msgs.saturating_add(1);
        self.last_msg = now;
        self.last_event = self.last_event.max(now);
        let n = self.msgs;

        if self.distinct.insert(m.recipient_hash) {
            self.distinct_est = self.distinct.estimate();
        }
        ew(&mut self.ew_new, n, b(m.new_recipient));
        self.block_resends = self.block_resends.saturating_add(u32::from(m.block_resend));
        ew(&mut self.ew_known, n, b(m.known_contact));
        self.inbound_push(false);

        let (mut seq, mut block) = (false, false);
        if let Some(v) = m.recipient_value {
            for &r in &self.recent[..usize::from(self.recent_len)] {
                if r != v {
                    seq |= r.abs_diff(v) <= ADJACENT;
                    block |= r / 10_000 == v / 10_000;
                }
            }
            self.recent[usize::from(self.recent_pos)] = v;
            self.recent_pos = (self.recent_pos + 1) % RING as u8;
            self.recent_len = (self.recent_len + 1).min(RING as u8);
        }
        ew(&mut self.ew_seq, n, b(seq));
        ew(&mut self.ew_block, n, b(block));

        if self.home_country == u8::MAX {
            if let Some(c) = m.recipient_country.and_then(|c| u8::try_from(c).ok()) {
                self.home_country = c;
            }
        }
        // A high-risk range is premium only abroad and where the deployment
        // does not serve (`premium_destination`): pumping and revenue share
        // fraud send from where numbers are cheap to where termination fees
        // are high, and for the people of a flagged country its own numbers
        // are everyday traffic. Abroad is known only for a sender with a
        // number of its own: an alphanumeric id's country is guessed from
        // its first recipient, which for a pumping bot is a premium range
        // itself (world C).
        let (foreign, premium) = match m.recipient_country {
            Some(c) => {
                self.countries |= 1u128 << (c % 128);
                let foreign = c != usize::from(self.home_country);
                (
                    foreign,
                    (foreign || !self.home_is_own) && m.premium_destination,
                )
            }
            None => (false, false),
        };
        ew(&mut self.ew_foreign, n, b(foreign));
        ew(&mut self.ew_premium, n, b(premium));

        let offset = COUNTRIES
            .get(usize::from(self.home_country))
            .map_or(0, |c| c.utc_offset);
        ew(&mut self.ew_night, n, b(m.at.hour_of_day(offset) < 6));
        ew(&mut self.ew_segments, n, f32::from(m.segments));
        ew(&mut self.ew_ucs2, n, b(m.encoding == Encoding::Ucs2));
        ew(&mut self.ew_bytes, n, (m.bytes as f32).ln_1p());
        ew(&mut self.ew_limited, n, b(m.rate_limited));
        ew(&mut self.ew_rcs, n, b(m.channel == Channel::Rcs));
        ew(&mut self.ew_inactive, n, b(m.inactive_recipient));
    }

    fn inbound_push(&mut self, inbound: bool) {
        let n = self.msgs.saturating_add(self.inbound_events);
        ew(&mut self.ew_inbound, n, b(inbound));
    }

    /// Records a message this sender received.
    pub(crate) fn on_received(&mut self, at: Timestamp) {
        self.inbound_events = self.inbound_events.saturating_add(1);
        self.inbound_push(true);
        self.last_event = self.last_event.max(at.unix_millis());
    }

    /// Records that a recipient answered this sender for the first time.
    pub(crate) fn on_reply(&mut self) {
        self.repliers = self.repliers.saturating_add(1);
    }

    /// Records a delivery outcome of one of this sender's messages.
    pub(crate) fn on_status(&mut self, at: Timestamp, o: Outcome) {
        self.statuses = self.statuses.saturating_add(1);
        if o.first_contact {
            self.first_contact_outcomes = self.first_contact_outcomes.saturating_add(1);
        }
        if o.failed {
            self.failures = self.failures.saturating_add(1);
        }
        if o.dead_number() {
            self.dead_numbers = self.dead_numbers.saturating_add(1);
            if o.first_contact {
                self.failed_first_contacts = self.failed_first_contacts.saturating_add(1);
            }
        }
        // the prior counts as one observation
        ew(&mut self.ew_fail, self.statuses + 1, b(o.failed));
        ew(&mut self.ew_dead, self.statuses + 1, b(o.dead_number()));
        self.last_event = self.last_event.max(at.unix_millis());
    }

    /// Records a recipient's complaint.
    pub(crate) fn on_report(&mut self, at: Timestamp) {
        self.reports = self.reports.saturating_add(1);
        self.last_event = self.last_event.max(at.unix_millis());
    }

    /// The feature vector as of `now`. `block` holds the decayed counts of
    /// new senders and of messages in this sender's number block, which live
    /// outside the per-sender state (see `Detector`).
    pub fn features(&self, now: Timestamp, block: (f32, f32)) -> FeatureVector {
        let now_ms = now.unix_millis();
        let dt = ((now_ms - self.last_msg).max(0) as f32) / 1000.0;
        let (r1m, r1h, r24h) = if dt > 0.0 {
            (
                self.r1m * (-dt / 60.0).exp(),
                self.r1h * (-dt / 3600.0).exp(),
                self.r24h * (-dt / 86_400.0).exp(),
            )
        } else {
            (self.r1m, self.r1h, self.r24h)
        };
        let msgs = self.msgs.max(1) as f32;
        let distinct = self
            .distinct_est
            .min(msgs)
            .max(if self.msgs > 0 { 1.0 } else { 0.0 });
        let age_h = ((now_ms - self.first_seen).max(0) as f32) / 3_600_000.0;
        let kind = self.kind.index();
        let mut v = [0.0f32; NUM_FEATURES];
        v[0] = r1m.ln_1p();
        v[1] = r1h.ln_1p();
        v[2] = r24h.ln_1p();
        v[3] = (self.msgs as f32).ln_1p();
        v[4] = distinct.ln_1p();
        v[5] = (distinct / msgs).min(1.0);
        v[6] = self.ew_new;
        v[7] = self.ew_known;
        v[8] = (self.repliers as f32 / distinct.max(1.0)).min(1.0);
        v[9] = self.ew_inbound;
        v[10] = self.ew_fail;
        v[11] = (self.reports as f32).ln_1p();
        v[12] = (self.reports as f32 / distinct.max(1.0)).min(1.0);
        v[13] = self.ew_seq;
        v[14] = self.ew_block;
        v[15] = self.countries.count_ones() as f32;
        v[16] = self.ew_foreign;
        v[17] = self.ew_premium;
        v[18] = self.gap_mean;
        v[19] = self.gap_var.max(0.0).sqrt();
        v[20] = self.ew_night;
        v[21 + kind] = 1.0;
        v[26] = age_h.ln_1p();
        v[27] = self.ew_segments;
        v[28] = self.ew_ucs2;
        v[29] = self.ew_bytes;
        v[30] = self.ew_limited;
        v[31] = self.ew_rcs;
        v[32] = self.ew_inactive;
        v[33] = block.0.ln_1p();
        v[34] = block.1.ln_1p();
        v
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sketch::hash_str;

    fn facts(at_s: i64, to: u64) -> MessageFacts {
        MessageFacts {
            at: Timestamp::from_unix_millis(1_772_366_400_000 + at_s * 1000),
            recipient_hash: hash_str(&to.to_string()),
            recipient_value: Some(to),
            recipient_country: Some(0),
            premium_destination: false,
            new_recipient: true,
            known_contact: false,
            block_resend: false,
            segments: 1,
            encoding: Encoding::Gsm7,
            channel: Channel::Sms,
            bytes: 40,
            rate_limited: false,
            inactive_recipient: true,
        }
    }

    #[test]
    fn per_sender_memory_is_bounded() {
        // what one tracked sender costs in the tracker's map: the state, its
        // u64 key, hashbrown's control byte, and any heap it owns (none)
        let mut s = SenderState::new(facts(0, 0).at, SenderKind::LongCode, Some(0));
        for i in 0..5000u64 {
            s.on_message(&facts(i as i64, 14_155_550_000 + i * 7919));
        }
        let per_sender =
            std::mem::size_of::<SenderState>() + std::mem::size_of::<u64>() + 1 + s.heap_bytes();
        eprintln!("{per_sender} bytes per tracked sender");
        assert!(per_sender <= 512, "{per_sender} bytes per sender");
        assert_eq!(
            std::mem::size_of_val(&s),
            std::mem::size_of::<SenderState>(),
            "fixed size whatever the traffic"
        );
    }

    #[test]
    fn schema_names_are_unique_screaming_snake() {
        for (i, s) in FEATURES.iter().enumerate() {
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            );
            assert_eq!(feature_index(s.name), Some(i));
        }
    }

    #[test]
    fn sequential_dialer_is_visible() {
        let mut s = SenderState::new(facts(0, 0).at, SenderKind::LongCode, Some(0));
        for i in 0..20 {
            s.on_message(&facts(i * 10, 14_155_550_000 + i as u64));
        }
        let v = s.features(facts(200, 0).at, (0.0, 0.0));
        assert!(v[feature_index("SEQUENTIAL_SHARE").unwrap()] > 0.9);
        assert!(v[feature_index("FAN_OUT").unwrap()] > 0.8);
        // perfectly regular 10 s gaps
        assert!(v[feature_index("GAP_LOG_STD").unwrap()] < 0.01);
    }

    #[test]
    fn windows_decay_with_time() {
        let mut s = SenderState::new(facts(0, 0).at, SenderKind::LongCode, Some(0));
        for i in 0..30 {
            s.on_message(&facts(i, 14_155_550_000 + i as u64 * 7919));
        }
        let busy = s.features(facts(30, 0).at, (0.0, 0.0));
        let later = s.features(facts(30 + 3600, 0).at, (0.0, 0.0));
        assert!(busy[0] > 2.5, "{}", busy[0]);
        assert!(later[0] < 0.01);
        assert!(later[1] < busy[1] && later[1] > 0.5 * busy[1]);
        assert_eq!(later[3], busy[3], "lifetime count does not decay");
    }

    #[test]
    fn failure_rate_moves_from_prior() {
        let mut s = SenderState::new(facts(0, 0).at, SenderKind::LongCode, Some(0));
        let at = facts(0, 0).at;
        assert!((s.features(at, (0.0, 0.0))[10] - PRIOR_FAILURE).abs() < 1e-6);
        let failed = Outcome {
            failed: true,
            quickly: true,
            first_contact: true,
        };
        for _ in 0..10 {
            s.on_status(at, failed);
        }
        assert!(s.features(at, (0.0, 0.0))[10] > 0.8);
    }
}
