//! Evaluation on a labeled trace: sender-level metrics, per-category
//! breakdowns, detection delay, and plots.
//!
//! The trace is replayed exactly as `gateway replay` does; a sender counts as
//! flagged when it was ever judged `spam` (the worst verdict, as in replay).
//! Detection delay is measured from a spammer's first spam message (its
//! first message, or its first at/after `spam_from` for hijacked accounts)
//! to the first message or event that made it `spam`, in messages
//! (inclusive: flagged on the first message = 1) and minutes. A hijacked
//! account that has not turned by the trace's end counts as legitimate,
//! in a category of its own (`hijacked (not yet turned)`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Error;
use crate::confusion::Confusion;
use crate::labels::{Label, LabelRecord};
use crate::model::Model;
use crate::policy::{Config, VerdictKind};
use crate::replay::Replay;
use crate::svg;
use crate::timestamp::Timestamp;
use crate::trace::TraceReader;

/// Outcome counts of one category.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CategoryStats {
    /// Category name from the labels file.
    pub category: String,
    /// Senders in the category that sent at least one message.
    pub senders: usize,
    /// Of those, judged `spam` at some point.
    pub spam: usize,
    /// Of those, at worst `suspect`.
    pub suspect: usize,
}

impl CategoryStats {
    /// `spam / senders`.
    pub fn spam_rate(&self) -> f64 {
        if self.senders == 0 {
            0.0
        } else {
            self.spam as f64 / self.senders as f64
        }
    }
}

/// Everything [`evaluate`] measures.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Events replayed.
    pub events: u64,
    /// Labeled senders that sent messages.
    pub senders: usize,
    /// Senders in the trace without a label (not scored).
    pub unlabeled: usize,
    /// (suspect, spam) thresholds in force.
    pub thresholds: (f32, f32),
    /// Spam-class sender precision.
    pub precision: f64,
    /// Spam-class sender recall.
    pub recall: f64,
    /// Spam-class sender F1.
    pub f1: f64,
    /// Legitimate senders that sent messages.
    pub legit_senders: usize,
    /// Of those, held or blocked at some point (worst verdict `suspect` or
    /// `spam`): their messages waited for an operator.
    pub legit_held: usize,
    /// Messages sent by legitimate senders (hijacked accounts before they
    /// turned included).
    pub legit_messages: u64,
    /// Of those, sent at or after the moment their sender was first held or
    /// blocked: the legitimate messages an operator would have had to free.
    pub legit_messages_after_flag: u64,
    /// Legitimate categories: how many were wrongly judged spam.
    pub legit: Vec<CategoryStats>,
    /// Spam categories: how many were caught.
    pub spam: Vec<CategoryStats>,
    /// Median messages from first spam message to the first `spam` verdict.
    pub median_delay_messages: Option<f64>,
    /// Median minutes from first spam message to the first `spam` verdict.
    pub median_delay_minutes: Option<f64>,
    /// 90th percentile of the delay in messages.
    pub p90_delay_messages: Option<f64>,
    /// Spammers (hijacked) judged spam before they turned.
    pub flagged_before_turning: usize,
    /// Per labeled sender: (is spam, highest score), for the plots.
    pub sender_scores: Vec<(bool, f32)>,
}

/// Whether a spam-labelled sender sent spam in the trace: an account
/// labelled as turning at `spam_from` that sent nothing from then on
/// behaved legitimately in every message the trace holds, so it is judged
/// as a legitimate sender (a verdict of `spam` on it is a false positive).
/// Trafficgen's one-day worlds are such a case: their hijacked accounts
/// turn after the first day.
fn turned(label: &LabelRecord, track: Option<&Track>) -> bool {
    label.spam_from.is_none() || track.is_some_and(|t| t.started.is_some())
}

fn median(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() - 1) as f64 * q).round() as usize;
    v.get(idx).copied()
}

#[derive(Default, Clone)]
struct Track {
    started: Option<Timestamp>,
    since_start: u32,
    delay: Option<(u32, f64)>,
    early: bool,
}

/// Replays `trace` with `model` and `config` and scores the outcome against
/// `labels`.
pub fn evaluate(
    trace: impl BufRead,
    labels: &[LabelRecord],
    model: &Model,
    config: &Config,
) -> Result<EvalReport, Error> {
    let by_sender: HashMap<&str, &LabelRecord> =
        labels.iter().map(|l| (l.sender.as_str(), l)).collect();
    let mut replay = Replay::new(model, config)?;
    let thresholds = replay.detector().thresholds();
    let mut tracks: Vec<Track> = Vec::new();
    let mut row_labels: Vec<Option<&LabelRecord>> = Vec::new();
    let mut reader = TraceReader::new(trace);
    let mut events = 0u64;
    let (mut legit_messages, mut legit_messages_after_flag) = (0u64, 0u64);
    loop {
        let got = reader.next_view(|ev| {
            let at = ev.at();
            let step = replay.feed(ev)?;
            Some((step, at))
        })?;
        let Some(result) = got else { break };
        events += 1;
        let Some((step, at)) = result else { continue };
        if step.row >= tracks.len() {
            tracks.resize(step.row + 1, Track::default());
            let sender = replay
                .rows()
                .get(step.row)
                .map(|r| r.sender.as_str())
                .unwrap_or("");
            row_labels.resize(step.row + 1, None);
            if let Some(slot) = row_labels.get_mut(step.row) {
                *slot = by_sender.get(sender).copied();
            }
        }
        let Some(label) = row_labels.get(step.row).copied().flatten() else {
            continue;
        };
        let legitimate_now = label.label == Label::Ham || label.spam_from.is_some_and(|s| at < s);
        if step.is_message && legitimate_now {
            legit_messages += 1;
            let flagged = replay
                .rows()
                .get(step.row)
                .is_some_and(|r| r.first_flagged_at.is_some());
            if flagged {
                legit_messages_after_flag += 1;
            }
        }
        if label.label != Label::Spam {
            continue;
        }
        let Some(t) = tracks.get_mut(step.row) else {
            continue;
        };
        let in_spam_phase = label.spam_from.is_none_or(|s| at >= s);
        if step.is_message && in_spam_phase {
            if t.started.is_none() {
                t.started = Some(at);
            }
            t.since_start += 1;
        }
        if step.verdict == VerdictKind::Spam && t.delay.is_none() {
            match t.started {
                Some(start) => {
                    t.delay = Some((t.since_start.max(1), at.seconds_since(start) / 60.0))
                }
                None if !in_spam_phase => {
                    t.early = true;
                    t.delay = Some((0, 0.0));
                }
                None => {}
            }
        }
    }
    let rows = replay.finish();
    let mut confusion = Confusion::default();
    let mut legit: BTreeMap<String, CategoryStats> = BTreeMap::new();
    let mut spam: BTreeMap<String, CategoryStats> = BTreeMap::new();
    let mut delays_msgs = Vec::new();
    let mut delays_min = Vec::new();
    let mut sender_scores = Vec::new();
    let mut unlabeled = 0;
    let mut early = 0;
    let (mut legit_senders, mut legit_held) = (0usize, 0usize);
    for (i, row) in rows.iter().enumerate() {
        let Some(label) = row_labels.get(i).copied().flatten() else {
            unlabeled += 1;
            continue;
        };
        let is_spam = label.label == Label::Spam && turned(label, tracks.get(i));
        let flagged = row.verdict == VerdictKind::Spam;
        if !is_spam {
            legit_senders += 1;
            if row.verdict != VerdictKind::Ok {
                legit_held += 1;
            }
        }
        sender_scores.push((is_spam, row.score));
        let map = if is_spam { &mut spam } else { &mut legit };
        let category = if is_spam || label.label == Label::Ham {
            label.category.clone()
        } else {
            format!("{} (not yet turned)", label.category)
        };
        let c = map
            .entry(category.clone())
            .or_insert_with(|| CategoryStats {
                category,
                ..CategoryStats::default()
            });
        c.senders += 1;
        match row.verdict {
            VerdictKind::Spam => c.spam += 1,
            VerdictKind::Suspect => c.suspect += 1,
            VerdictKind::Ok => {}
        }
        confusion.count(is_spam, flagged);
        if let Some(t) = tracks.get(i).filter(|_| is_spam) {
            if t.early {
                early += 1;
            } else if let Some((m, min)) = t.delay {
                delays_msgs.push(f64::from(m));
                delays_min.push(min);
            }
        }
    }
    Ok(EvalReport {
        events,
        senders: sender_scores.len(),
        unlabeled,
        thresholds,
        precision: confusion.precision(),
        recall: confusion.recall(),
        f1: confusion.f1(),
        legit_senders,
        legit_held,
        legit_messages,
        legit_messages_after_flag,
        legit: legit.into_values().collect(),
        spam: spam.into_values().collect(),
        median_delay_messages: median(&mut delays_msgs.clone(), 0.5),
        median_delay_minutes: median(&mut delays_min, 0.5),
        p90_delay_messages: median(&mut delays_msgs, 0.9),
        flagged_before_turning: early,
        sender_scores,
    })
}

impl EvalReport {
    /// Share of legitimate senders held or blocked at some point.
    pub fn legit_held_share(&self) -> f64 {
        self.legit_held as f64 / self.legit_senders.max(1) as f64
    }

    /// Share of legitimate messages sent after their sender was flagged.
    pub fn legit_messages_after_flag_share(&self) -> f64 {
        self.legit_messages_after_flag as f64 / self.legit_messages.max(1) as f64
    }

    /// Area under the ROC curve of the senders' peak scores: the chance
    /// that a random spammer outscores a random legitimate sender (ties
    /// count half). How well the model ranks, apart from where the lines
    /// are drawn; 0.5 when one of the two classes is missing.
    pub fn auc(&self) -> f64 {
        let mut ham: Vec<f32> = self
            .sender_scores
            .iter()
            .filter(|s| !s.0)
            .map(|s| s.1)
            .collect();
        ham.sort_by(f32::total_cmp);
        let spam = self.sender_scores.iter().filter(|s| s.0).map(|s| s.1);
        let (mut wins, mut spammers) = (0.0f64, 0usize);
        for s in spam {
            let below = ham.partition_point(|h| *h < s);
            let level = ham.partition_point(|h| *h <= s);
            wins += below as f64 + (level - below) as f64 / 2.0;
            spammers += 1;
        }
        if ham.is_empty() || spammers == 0 {
            return 0.5;
        }
        wins / (ham.len() * spammers) as f64
    }

    /// Precision/recall at every distinct sender score, highest first:
    /// `(threshold, precision, recall)`.
    pub fn pr_curve(&self) -> Vec<(f32, f64, f64)> {
        let mut s = self.sender_scores.clone();
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        let positives = s.iter().filter(|x| x.0).count().max(1) as f64;
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut out = Vec::new();
        for (i, (spam, score)) in s.iter().enumerate() {
            if *spam {
                tp += 1
            } else {
                fp += 1
            }
            let last_of_tie = s.get(i + 1).is_none_or(|n| n.1 != *score);
            if last_of_tie {
                out.push((*score, tp as f64 / (tp + fp) as f64, tp as f64 / positives));
            }
        }
        out
    }

    /// Writes `pr_curve.svg` and `score_histogram.svg` into `dir`.
    pub fn write_svgs(&self, dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
        std::fs::create_dir_all(dir)?;
        let pr = dir.join("pr_curve.svg");
        let hist = dir.join("score_histogram.svg");
        let points: Vec<(f64, f64)> = self.pr_curve().iter().map(|(_, p, r)| (*r, *p)).collect();
        std::fs::write(
            &pr,
            svg::line_chart(
                "Sender-level precision / recall (spam)",
                "recall",
                "precision",
                &points,
            ),
        )?;
        let ham: Vec<f32> = self
            .sender_scores
            .iter()
            .filter(|s| !s.0)
            .map(|s| s.1)
            .collect();
        let spam: Vec<f32> = self
            .sender_scores
            .iter()
            .filter(|s| s.0)
            .map(|s| s.1)
            .collect();
        std::fs::write(
            &hist,
            svg::histogram(
                "Highest score per sender",
                &ham,
                &spam,
                self.thresholds.0,
                self.thresholds.1,
            ),
        )?;
        Ok((pr, hist))
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        writeln!(f, "events replayed        {}", self.events)?;
        writeln!(
            f,
            "labeled senders        {} ({} unlabeled ignored)",
            self.senders, self.unlabeled
        )?;
        writeln!(
            f,
            "thresholds             suspect {:.3}  spam {:.3}",
            self.thresholds.0, self.thresholds.1
        )?;
        writeln!(f, "spam precision         {:.4}", self.precision)?;
        writeln!(f, "spam recall            {:.4}", self.recall)?;
        writeln!(f, "spam F1                {:.4}", self.f1)?;
        writeln!(
            f,
            "legitimate held        {} of {} senders ({:.2} %); {} of {} messages after the flag ({:.3} %)",
            self.legit_held,
            self.legit_senders,
            self.legit_held_share() * 100.0,
            self.legit_messages_after_flag,
            self.legit_messages,
            self.legit_messages_after_flag_share() * 100.0
        )?;
        writeln!(
            f,
            "detection delay        median {} messages / {} minutes; p90 {} messages",
            opt(self.median_delay_messages),
            opt(self.median_delay_minutes),
            opt(self.p90_delay_messages)
        )?;
        if self.flagged_before_turning > 0 {
            writeln!(f, "flagged before turning {}", self.flagged_before_turning)?;
        }
        writeln!(
            f,
            "false positives by legitimate category (spam / suspect / senders):"
        )?;
        for c in &self.legit {
            writeln!(
                f,
                "  {:<22} {:>5} / {:>5} / {:>6}   FPR {:.4}",
                c.category,
                c.spam,
                c.suspect,
                c.senders,
                c.spam_rate()
            )?;
        }
        writeln!(f, "recall by spam category (spam / suspect / senders):")?;
        for c in &self.spam {
            writeln!(
                f,
                "  {:<22} {:>5} / {:>5} / {:>6}   recall {:.4}",
                c.category,
                c.spam,
                c.suspect,
                c.senders,
                c.spam_rate()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(scores: Vec<(bool, f32)>) -> EvalReport {
        EvalReport {
            events: 0,
            senders: scores.len(),
            unlabeled: 0,
            thresholds: (0.5, 0.9),
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
            legit_senders: 0,
            legit_held: 0,
            legit_messages: 0,
            legit_messages_after_flag: 0,
            legit: vec![],
            spam: vec![],
            median_delay_messages: None,
            median_delay_minutes: None,
            p90_delay_messages: None,
            flagged_before_turning: 0,
            sender_scores: scores,
        }
    }

    #[test]
    fn auc_is_the_chance_a_spammer_outscores_a_legitimate_sender() {
        // Spammers 0.9 and 0.4 against legitimate 0.4 and 0.1: 0.9 beats
        // both, 0.4 beats one and ties one (half): 3.5 of 4 pairs.
        let r = report(vec![(true, 0.9), (true, 0.4), (false, 0.4), (false, 0.1)]);
        assert!((r.auc() - 0.875).abs() < 1e-9, "{}", r.auc());
        assert_eq!(report(vec![(true, 1.0), (false, 0.0)]).auc(), 1.0);
        assert_eq!(report(vec![(true, 0.0), (false, 1.0)]).auc(), 0.0);
        // one class missing: no ranking to speak of
        assert_eq!(report(vec![(false, 0.3), (false, 0.2)]).auc(), 0.5);
    }

    #[test]
    fn an_account_that_turns_after_the_trace_is_judged_legitimate() {
        let msg = |at: &str, id: &str, from: &str, to: &str| {
            format!(
                "{{\"at\":\"{at}\",\"event\":\"message\",\"id\":\"{id}\",\"from\":\"{from}\",\"to\":\"{to}\",\"channel\":\"sms\",\"segments\":1,\"encoding\":\"gsm7\",\"bytes\":40}}\n"
            )
        };
        let (a, b) = ("+14155550101", "+14155550102");
        let trace = [
            msg("2026-03-01T10:00:00.000Z", "m1", a, b),
            msg("2026-03-01T10:05:00.000Z", "m2", b, a),
            msg("2026-03-01T11:00:00.000Z", "m3", a, b),
        ]
        .concat();
        let label = |sender: &str, spam_from: Option<i64>| LabelRecord {
            sender: sender.into(),
            label: if spam_from.is_some() {
                Label::Spam
            } else {
                Label::Ham
            },
            category: if spam_from.is_some() {
                "hijacked".into()
            } else {
                "person".into()
            },
            spam_from: spam_from.map(Timestamp::from_unix_millis),
        };
        let model = Model::default_model().unwrap();
        let after_the_trace = 1_900_000_000_000;
        let labels = [label(a, Some(after_the_trace)), label(b, None)];
        let r = evaluate(trace.as_bytes(), &labels, &model, &Config::default()).unwrap();
        assert_eq!(r.legit_senders, 2);
        assert!(r.spam.is_empty(), "{:?}", r.spam);
        let cats: Vec<&str> = r.legit.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(cats, ["hijacked (not yet turned)", "person"]);
        // Turning within the trace, it is a spam sender again.
        let before_the_last = Timestamp::parse("2026-03-01T10:30:00.000Z")
            .unwrap()
            .unix_millis();
        let labels = [label(a, Some(before_the_last)), label(b, None)];
        let r = evaluate(trace.as_bytes(), &labels, &model, &Config::default()).unwrap();
        assert_eq!(r.legit_senders, 1);
        assert_eq!(r.spam.len(), 1);
        assert_eq!(r.spam[0].category, "hijacked");
    }

    #[test]
    fn pr_curve_is_monotone_in_recall() {
        let r = report(vec![(true, 0.9), (false, 0.8), (true, 0.7), (false, 0.1)]);
        let c = r.pr_curve();
        assert_eq!(c.len(), 4);
        assert_eq!((c[0].1, c[0].2), (1.0, 0.5));
        assert_eq!((c[1].1, c[1].2), (0.5, 0.5));
        assert!(c.windows(2).all(|w| w[0].2 <= w[1].2));
        assert_eq!(c[3].2, 1.0);
    }

    #[test]
    fn svgs_are_written() {
        let dir = std::env::temp_dir().join(format!("classifier-eval-{}", std::process::id()));
        let r = report(vec![(true, 0.9), (false, 0.2), (true, 0.95), (false, 0.4)]);
        let (a, b) = r.write_svgs(&dir).unwrap();
        for p in [a, b] {
            let s = std::fs::read_to_string(p).unwrap();
            assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
