//! `gateway replay`: the metadata pipeline over a recorded trace.
//!
//! Every event goes through the rate limiter and the classifier on the
//! trace's own clock (each event's `at`), exactly as it would have live. The
//! per-sender outcome is the *worst* verdict the sender received at any point
//! (a sender blocked once was blocked, whatever it did afterwards) and the
//! highest score, which is what an operator backtesting a policy needs.
//!
//! Output, one JSON line per sender in order of first appearance:
//! `{"sender","verdict":"spam"|"suspect"|"ok","score","messages","first_flagged_at"}`
//! where `first_flagged_at` is when the sender was first held or blocked
//! (RFC 3339) or `null`.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use rustc_hash::FxBuildHasher;
use serde::Serialize;

use crate::Error;
use crate::engine::Detector;
use crate::event::EventView;
use crate::model::Model;
use crate::policy::{Config, VerdictKind};
use crate::sketch::hash_str;
use crate::timestamp::Timestamp;
use crate::trace::TraceReader;

/// One sender's replay outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SenderVerdict {
    /// Sender id as in the trace.
    pub sender: String,
    /// Worst verdict reached.
    pub verdict: VerdictKind,
    /// Highest score reached, in [0, 1].
    pub score: f32,
    /// Messages sent in the trace.
    pub messages: u64,
    /// When first held or blocked.
    pub first_flagged_at: Option<Timestamp>,
    /// When first blocked (`spam`); not part of the contract line.
    #[serde(skip)]
    pub first_spam_at: Option<Timestamp>,
}

/// What one event did, for callers that follow along (evaluation).
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Index into the replay's sender table.
    pub row: usize,
    /// Whether the event was a message sent by that sender.
    pub is_message: bool,
    /// Score after the event.
    pub score: f32,
    /// Verdict after the event.
    pub verdict: VerdictKind,
    /// Whether a rate limit refused the message (false for other events).
    pub rate_limited: bool,
}

/// A streaming replay: feed events, then take the per-sender verdicts.
#[derive(Debug)]
pub struct Replay {
    detector: Detector,
    rows: Vec<SenderVerdict>,
    index: HashMap<u64, usize, FxBuildHasher>,
}

impl Replay {
    /// A replay with a fresh pipeline.
    pub fn new(model: &Model, policy: &Config) -> Result<Self, Error> {
        Ok(Replay {
            detector: Detector::new(model.clone(), policy)?,
            rows: Vec::new(),
            index: HashMap::with_hasher(FxBuildHasher),
        })
    }

    /// Feeds one event on its own clock.
    pub fn feed(&mut self, ev: EventView<'_>) -> Option<Step> {
        let at = ev.at();
        let o = self.detector.observe(ev, at);
        self.apply_rechecks();
        let o = o?;
        let (score, verdict) = self.detector.judge(&o);
        let row = match self.index.get(&o.sender) {
            Some(&r) => r,
            None => {
                // Statuses and complaints only reach tracked senders, and
                // every tracked sender has sent a message, so this is the
                // sender's first message.
                let EventView::Message(m) = ev else {
                    return None;
                };
                debug_assert_eq!(hash_str(m.from), o.sender);
                self.rows.push(SenderVerdict {
                    sender: m.from.to_owned(),
                    verdict: VerdictKind::Ok,
                    score: 0.0,
                    messages: 0,
                    first_flagged_at: None,
                    first_spam_at: None,
                });
                self.index.insert(o.sender, self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        let r = self.rows.get_mut(row)?;
        if o.is_message {
            r.messages += 1;
        }
        r.score = r.score.max(score);
        r.verdict = r.verdict.max(verdict);
        if verdict != VerdictKind::Ok && r.first_flagged_at.is_none() {
            r.first_flagged_at = Some(at);
        }
        if verdict == VerdictKind::Spam && r.first_spam_at.is_none() {
            r.first_spam_at = Some(at);
        }
        Some(Step {
            row,
            is_message: o.is_message,
            score,
            verdict,
            rate_limited: o.is_message && !o.rate.allowed,
        })
    }

    /// Feeds one event another node observed (and judged), at `now` on
    /// this node's clock: its features and rate-limit charges count here
    /// too, its verdict is the other node's (see [`crate::cluster`]).
    /// `allowed`: that node's rate-limit decision on it.
    pub fn feed_remote(&mut self, ev: EventView<'_>, now: Timestamp, allowed: bool) {
        let _ = self.detector.observe_remote(ev, now, allowed);
        self.apply_rechecks();
    }

    /// Senders judged again while quiet (see the engine's quiet recheck):
    /// their verdict counts like any other, on the time they were judged.
    fn apply_rechecks(&mut self) {
        for r in self.detector.take_rechecked() {
            let (score, verdict) = self.detector.judge(&r.observed);
            let Some(row) = self
                .index
                .get(&r.observed.sender)
                .and_then(|&i| self.rows.get_mut(i))
            else {
                continue;
            };
            row.score = row.score.max(score);
            row.verdict = row.verdict.max(verdict);
            if verdict != VerdictKind::Ok && row.first_flagged_at.is_none() {
                row.first_flagged_at = Some(r.at);
            }
            if verdict == VerdictKind::Spam && row.first_spam_at.is_none() {
                row.first_spam_at = Some(r.at);
            }
        }
    }

    /// The sender table so far.
    pub fn rows(&self) -> &[SenderVerdict] {
        &self.rows
    }

    /// The pipeline (for inspection).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The per-sender verdicts, in order of first appearance.
    pub fn finish(self) -> Vec<SenderVerdict> {
        self.rows
    }
}

/// Replays a whole trace. A broken line stops the replay with an error
/// naming its line number.
pub fn run(
    trace: impl BufRead,
    model: &Model,
    policy: &Config,
) -> Result<Vec<SenderVerdict>, Error> {
    let mut replay = Replay::new(model, policy)?;
    let mut reader = TraceReader::new(trace);
    while reader
        .next_view(|ev| {
            replay.feed(ev);
        })?
        .is_some()
    {}
    Ok(replay.finish())
}

/// Writes the contract output, one JSON line per sender.
pub fn write_verdicts(mut out: impl Write, verdicts: &[SenderVerdict]) -> Result<(), Error> {
    for v in verdicts {
        serde_json::to_writer(&mut out, v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The trace `check.py` uses.
    const CONTRACT_TRACE: &str = r#"{"at": "2026-03-01T12:00:00.000Z", "event": "message", "id": "m-1", "from": "+14155550100", "to": "+14155550101", "channel": "sms", "segments": 1, "encoding": "gsm7", "bytes": 20}
{"at": "2026-03-01T12:00:03.000Z", "event": "status", "id": "m-1", "status": "delivered"}
{"at": "2026-03-01T12:01:00.000Z", "event": "message", "id": "m-2", "from": "+14155550101", "to": "+14155550100", "channel": "sms", "segments": 1, "encoding": "gsm7", "bytes": 12}
{"at": "2026-03-01T12:05:00.000Z", "event": "report", "reporter": "+14155550101", "sender": "+14155550100"}
"#;

    /// Regression (trace fuzz target): a line dated centuries ahead used to
    /// overflow the rate limiter's instant arithmetic.
    #[test]
    fn far_future_and_backward_times_do_not_break_the_limiter() {
        let model = Model::default_model().unwrap();
        let trace = r#"{"at": "9999-12-31T23:59:59.000Z", "event": "message", "id": "a", "from": "+14155550100", "to": "+14155550101", "channel": "sms", "segments": 9, "encoding": "gsm7", "bytes": 20}
{"at": "2026-03-01T12:00:00.000Z", "event": "message", "id": "b", "from": "+14155550100", "to": "+14155550102", "channel": "sms", "segments": 1, "encoding": "gsm7", "bytes": 20}
{"at": "9999-12-31T23:59:59.999Z", "event": "message", "id": "c", "from": "+14155550100", "to": "+14155550103", "channel": "sms", "segments": 200, "encoding": "ucs2", "bytes": 20}
"#;
        let v = run(trace.as_bytes(), &model, &Config::default()).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].messages, 3);
    }

    #[test]
    fn contract_trace_gives_one_line_per_sender() {
        let model = Model::default_model().unwrap();
        let v = run(CONTRACT_TRACE.as_bytes(), &model, &Config::default()).unwrap();
        let mut out = Vec::new();
        write_verdicts(&mut out, &v).unwrap();
        let lines: Vec<serde_json::Value> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["sender"], "+14155550100");
        assert_eq!(lines[1]["sender"], "+14155550101");
        for l in &lines {
            let obj = l.as_object().unwrap();
            let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["first_flagged_at", "messages", "score", "sender", "verdict"]
            );
            assert!(["ok", "suspect", "spam"].contains(&l["verdict"].as_str().unwrap()));
            let s = l["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&s));
            assert_eq!(l["messages"].as_u64(), Some(1));
            let flagged = &l["first_flagged_at"];
            assert!(flagged.is_null() || Timestamp::parse(flagged.as_str().unwrap()).is_ok());
        }
    }

    #[test]
    fn broken_line_names_its_number() {
        let text = format!("{CONTRACT_TRACE}{{not json\n");
        let err = run(
            text.as_bytes(),
            &Model::default_model().unwrap(),
            &Config::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("line 5: "), "{err}");
    }

    #[test]
    fn block_list_flags_at_first_message() {
        let cfg = Config {
            block: vec!["+14155550100".into()],
            ..Config::default()
        };
        let v = run(
            CONTRACT_TRACE.as_bytes(),
            &Model::default_model().unwrap(),
            &cfg,
        )
        .unwrap();
        assert_eq!(v[0].verdict, VerdictKind::Spam);
        assert_eq!(
            v[0].first_flagged_at,
            Some(Timestamp::parse("2026-03-01T12:00:00Z").unwrap())
        );
    }

    /// A trace of a personal number sending `n` messages to scattered
    /// strangers, 40 s apart, where the messages `failed` says fail, and a
    /// function giving another sender's message at a second after the start
    /// (it moves the trace's clock).
    fn silent_broadcast(n: i64, failed: impl Fn(i64) -> bool) -> (String, impl Fn(i64) -> String) {
        let line = |at_s: i64, body: String| {
            let at = Timestamp::from_unix_millis(1_772_366_400_000 + at_s * 1000);
            format!("{{\"at\": \"{at}\", {body}}}\n")
        };
        let mut trace = String::new();
        for i in 0..n {
            let to = format!("+1415{:07}", (i * 7_919_113 + 12_345) % 10_000_000);
            trace += &line(
                i * 40,
                format!(
                    "\"event\": \"message\", \"id\": \"b-{i}\", \"from\": \"+12125550100\", \"to\": \"{to}\", \"channel\": \"sms\", \"segments\": 1, \"encoding\": \"gsm7\", \"bytes\": 40"
                ),
            );
            let status = if failed(i) { "failed" } else { "delivered" };
            trace += &line(
                i * 40 + 5,
                format!("\"event\": \"status\", \"id\": \"b-{i}\", \"status\": \"{status}\""),
            );
        }
        let later = move |at_s: i64| {
            line(at_s, "\"event\": \"message\", \"id\": \"o-1\", \"from\": \"+13125550111\", \"to\": \"+13125550112\", \"channel\": \"sms\", \"segments\": 1, \"encoding\": \"gsm7\", \"bytes\": 40".into())
        };
        (trace, later)
    }

    /// The verdicts of `trace` with both lines at zero: only the evidence
    /// rules decide.
    fn evidence_only(trace: String) -> Vec<SenderVerdict> {
        let cfg = Config {
            thresholds: crate::policy::Thresholds {
                suspect: Some(0.0),
                spam: Some(0.0),
            },
            ..Config::default()
        };
        let model = Model::default_model().unwrap();
        run(trace.as_bytes(), &model, &cfg).unwrap()
    }

    /// Minutes from the trace's first message to `at`.
    fn minutes_in(at: Timestamp) -> f64 {
        at.seconds_since(Timestamp::from_unix_millis(1_772_366_400_000)) / 60.0
    }

    /// A personal number that sends its share to strangers in ten minutes,
    /// sees a few fail and falls silent is judged again once it is old
    /// enough for the broadcast rule, on that moment (here while another
    /// sender's message moves the trace's clock past it).
    #[test]
    fn a_silent_broadcaster_is_judged_when_old_enough() {
        let (trace, later) = silent_broadcast(15, |i| i % 5 == 0);
        let before = evidence_only(format!("{trace}{}", later(20 * 60)));
        assert_eq!(before[0].first_spam_at, None, "not old enough yet");
        let after = evidence_only(format!("{trace}{}", later(45 * 60)));
        assert_eq!(after[0].verdict, VerdictKind::Spam);
        let minutes = minutes_in(after[0].first_spam_at.unwrap());
        assert!((30.0..31.0).contains(&minutes), "judged at {minutes} min");
        assert_eq!(after[0].messages, 15);
    }

    /// One failed delivery in ten silent messages is not enough at half an
    /// hour; the second quiet recheck, at two hours, blocks it.
    #[test]
    fn a_thin_broadcast_is_judged_at_two_hours() {
        let (trace, later) = silent_broadcast(10, |i| i == 3);
        let early = evidence_only(format!("{trace}{}", later(90 * 60)));
        assert_eq!(early[0].first_spam_at, None, "one failure, 90 minutes");
        let after = evidence_only(format!("{trace}{}", later(150 * 60)));
        assert_eq!(after[0].verdict, VerdictKind::Spam);
        let minutes = minutes_in(after[0].first_spam_at.unwrap());
        assert!((120.0..121.0).contains(&minutes), "judged at {minutes} min");
    }
}
