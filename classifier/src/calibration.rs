//! Where the lines are drawn, learned from the deployment itself.
//!
//! A score of 0.4 means different things in different deployments: the
//! bundled model's scores rank spammers above ordinary people on traffic it
//! never saw, but the level at which ordinary people sit moves with the
//! population (how many bulk senders, how new the users, how the numbers
//! were handed out). So the `suspect` line is not an absolute score alone:
//!
//! 1. **A hold budget.** The calibration keeps a histogram of every tracked
//!    sender's peak score. The suspect line is raised to the score above
//!    which at most `hold_budget` of the active senders lie (default 0.5 %),
//!    so however the deployment's scores shift, holds stay a small, bounded
//!    share of its senders. Until `warmup_senders` have been seen the budget
//!    is counted as if that many had.
//! 2. **Operators' decisions.** Each review decision (a held sender marked
//!    spam or ham) is remembered with its score; once there are a few, the
//!    suspect line is raised past the scores where operators kept finding
//!    ordinary people (the cut that best separates their decisions). Decisions take effect at once, without a retrain.
//!
//! The `spam` line stays the model's (or the configured) absolute score:
//! a block also needs strong behavioural evidence (see
//! [`crate::evidence`]), which does not drift with the population.
//! Everything runs on the event clock, so replay sees what a deployment that
//! had carried the traffic would have seen.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Histogram resolution over [0, 1].
const BINS: usize = 1000;
/// Recompute the budget line after this many score changes.
const RECOMPUTE_EVERY: u32 = 256;
/// Review decisions remembered.
const REVIEWS_KEPT: usize = 200;
/// Decisions needed before they move the line.
const REVIEWS_NEEDED: usize = 10;
/// "Not in the histogram".
pub(crate) const NO_BIN: u16 = u16::MAX;

/// Calibration settings (`[classifier.calibration]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    /// Largest share of active senders that may be held as `suspect`.
    /// Default 0.005 (0.5 %).
    #[serde(default = "default_budget")]
    pub hold_budget: f32,
    /// Senders counted as active before the deployment has seen that many,
    /// so a young deployment does not hold its first few senders. Default 1000.
    #[serde(default = "default_warmup")]
    pub warmup_senders: u32,
    /// Whether review decisions move the suspect line. Default true.
    #[serde(default = "default_true")]
    pub learn_from_reviews: bool,
    /// Whether a hold or block needs behavioural evidence besides the
    /// score (see [`crate::evidence`]). Default true; off only to measure
    /// what the evidence rule changes.
    #[serde(default = "default_true")]
    pub require_evidence: bool,
}

const fn default_budget() -> f32 {
    0.005
}
const fn default_warmup() -> u32 {
    1000
}
const fn default_true() -> bool {
    true
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig {
            hold_budget: default_budget(),
            warmup_senders: default_warmup(),
            learn_from_reviews: default_true(),
            require_evidence: default_true(),
        }
    }
}

impl CalibrationConfig {
    /// Problems with the settings, if any.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(0.0..=1.0).contains(&self.hold_budget) {
            out.push("calibration.hold_budget must be within [0, 1]".into());
        }
        out
    }
}

/// What the calibration currently says, for `review stats` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationState {
    /// Senders in the histogram.
    pub senders: u32,
    /// The line the hold budget draws (1.0 when nothing may be held yet).
    pub budget_line: f32,
    /// The line review decisions draw (0 until there are enough).
    pub review_floor: f32,
    /// Review decisions remembered.
    pub reviews: usize,
}

/// The live calibration.
#[derive(Debug, Clone)]
pub(crate) struct Calibration {
    config: CalibrationConfig,
    bins: Vec<u32>,
    senders: u32,
    budget_line: f32,
    changes: u32,
    reviews: VecDeque<(f32, bool)>,
    review_floor: f32,
}

/// The histogram bin of a score.
pub(crate) fn bin_of(score: f32) -> u16 {
    ((score.clamp(0.0, 1.0) * (BINS - 1) as f32) as usize).min(BINS - 1) as u16
}

impl Calibration {
    pub(crate) fn new(config: CalibrationConfig) -> Self {
        Calibration {
            config,
            bins: vec![0; BINS],
            senders: 0,
            budget_line: 1.0,
            changes: RECOMPUTE_EVERY,
            reviews: VecDeque::new(),
            review_floor: 0.0,
        }
    }

    /// Moves a sender from bin `old` (or nowhere) to `new`.
    pub(crate) fn moved(&mut self, old: u16, new: u16) {
        if old == new {
            return;
        }
        if let Some(c) = self.bins.get_mut(usize::from(old)) {
            *c = c.saturating_sub(1);
        } else {
            self.senders += 1;
        }
        if let Some(c) = self.bins.get_mut(usize::from(new)) {
            *c += 1;
        }
        self.changed();
    }

    /// A sender left (idle or evicted).
    pub(crate) fn forget(&mut self, bin: u16) {
        if let Some(c) = self.bins.get_mut(usize::from(bin)) {
            *c = c.saturating_sub(1);
            self.senders = self.senders.saturating_sub(1);
            self.changed();
        }
    }

    fn changed(&mut self) {
        self.changes += 1;
        if self.changes >= RECOMPUTE_EVERY {
            self.recompute();
        }
    }

    /// Walks the histogram from the top until the budget is spent.
    fn recompute(&mut self) {
        self.changes = 0;
        let active = self.senders.max(self.config.warmup_senders);
        let allowed = (f64::from(self.config.hold_budget) * f64::from(active)).floor() as u64;
        let mut above = 0u64;
        let mut line = 1.0f32;
        for (i, &count) in self.bins.iter().enumerate().rev() {
            above += u64::from(count);
            if above > allowed {
                break;
            }
            line = i as f32 / (BINS - 1) as f32;
        }
        // the line sits at the bottom of the lowest bin that fits the budget
        // (a sender whose peak is in that bin is inside the budget)
        self.budget_line = line;
    }

    /// Remembers an operator's decision on a sender with this score.
    pub(crate) fn reviewed(&mut self, score: f32, spam: bool) {
        if !self.config.learn_from_reviews {
            return;
        }
        if self.reviews.len() == REVIEWS_KEPT {
            self.reviews.pop_front();
        }
        self.reviews.push_back((score, spam));
        self.review_floor = review_floor(&self.reviews);
    }

    /// Forgets an operator's decision that was undone (the newest
    /// remembered one with this label and score); nothing when it is no
    /// longer remembered.
    pub(crate) fn unreviewed(&mut self, score: f32, spam: bool) {
        let Some(i) = self
            .reviews
            .iter()
            .rposition(|&(s, l)| l == spam && (s - score).abs() < 1e-4)
        else {
            return;
        };
        self.reviews.remove(i);
        self.review_floor = review_floor(&self.reviews);
    }

    /// Whether holds need evidence.
    #[inline]
    pub(crate) fn requires_evidence(&self) -> bool {
        self.config.require_evidence
    }

    /// The suspect line in force given the model's (or configured) one.
    #[inline]
    pub(crate) fn suspect_line(&self, absolute: f32) -> f32 {
        absolute.max(self.budget_line).max(self.review_floor)
    }

    pub(crate) fn state(&self) -> CalibrationState {
        CalibrationState {
            senders: self.senders,
            budget_line: self.budget_line,
            review_floor: self.review_floor,
            reviews: self.reviews.len(),
        }
    }
}

/// The score that best separates the reviewed senders: the cut with the
/// fewest reviewed hams at or above it plus spams below it (the lowest such
/// cut on ties), placed halfway between the scores around it; 0 with too few
/// reviews. Holds are all above the line in force, so this only ever moves
/// the line up past scores where operators kept finding ordinary people.
fn review_floor(reviews: &VecDeque<(f32, bool)>) -> f32 {
    if reviews.len() < REVIEWS_NEEDED {
        return 0.0;
    }
    let mut sorted: Vec<(f32, bool)> = reviews.iter().copied().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let hams_total = sorted.iter().filter(|r| !r.1).count();
    // cut below everything: every ham is a false hold
    let (mut best_errors, mut best_cut) = (hams_total, 0.0f32);
    let (mut spams_below, mut hams_below) = (0usize, 0usize);
    for (i, (score, spam)) in sorted.iter().enumerate() {
        if *spam {
            spams_below += 1;
        } else {
            hams_below += 1;
        }
        let Some(next) = sorted.get(i + 1) else {
            // cut above everything
            let errors = spams_below;
            if errors < best_errors {
                best_cut = (*score + 1.0) / 2.0;
            }
            break;
        };
        if next.0 == *score {
            continue;
        }
        let errors = spams_below + (hams_total - hams_below);
        if errors < best_errors {
            best_errors = errors;
            best_cut = (*score + next.0) / 2.0;
        }
    }
    best_cut
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn calibration_with(scores: &[f32], budget: f32) -> Calibration {
        let mut c = Calibration::new(CalibrationConfig {
            hold_budget: budget,
            warmup_senders: 0,
            ..CalibrationConfig::default()
        });
        for &s in scores {
            c.moved(NO_BIN, bin_of(s));
        }
        c.recompute();
        c
    }

    #[test]
    fn budget_line_holds_at_most_the_budget() {
        // 1000 senders: 990 at 0.5, 10 between 0.9 and 0.99
        let mut scores = vec![0.5f32; 990];
        scores.extend((0..10).map(|i| 0.9 + i as f32 / 100.0));
        let c = calibration_with(&scores, 0.005);
        let line = c.suspect_line(0.3);
        let held = scores.iter().filter(|&&s| s >= line).count();
        assert!(held <= 5, "{held} held at line {line}");
        assert!(held >= 4, "the budget is used, {held} held at {line}");
    }

    #[test]
    fn absolute_line_wins_when_higher() {
        let c = calibration_with(&vec![0.1f32; 1000], 0.005);
        // everyone ties at 0.1: over budget, so the line stays above them
        assert!(c.suspect_line(0.3) > 0.1);
        assert_eq!(c.suspect_line(0.95), 0.95);
    }

    #[test]
    fn warmup_counts_as_active_senders() {
        let mut c = Calibration::new(CalibrationConfig {
            hold_budget: 0.005,
            warmup_senders: 1000,
            ..CalibrationConfig::default()
        });
        for s in [0.2, 0.4, 0.8] {
            c.moved(NO_BIN, bin_of(s));
        }
        c.recompute();
        // 5 may be held out of a counted 1000: all three fit
        assert!(c.suspect_line(0.0) <= 0.2);
    }

    #[test]
    fn forgetting_and_moving_keep_the_count() {
        let mut c = calibration_with(&[0.1, 0.2], 0.5);
        c.moved(bin_of(0.1), bin_of(0.7));
        assert_eq!(c.state().senders, 2);
        c.forget(bin_of(0.7));
        assert_eq!(c.state().senders, 1);
    }

    #[test]
    fn reviews_raise_the_line_above_false_holds() {
        let mut c = calibration_with(&[], 1.0);
        assert_eq!(c.suspect_line(0.3), 0.3);
        for i in 0..10 {
            // hams at 0.40-0.49, spams at 0.8-0.89
            c.reviewed(0.4 + i as f32 / 100.0, false);
            c.reviewed(0.8 + i as f32 / 100.0, true);
        }
        let line = c.suspect_line(0.3);
        assert!(line > 0.49 && line <= 0.8, "{line}");
    }

    #[test]
    fn an_undone_decision_no_longer_moves_the_line() {
        let mut c = calibration_with(&[], 1.0);
        for i in 0..10 {
            c.reviewed(0.4 + i as f32 / 100.0, false);
            c.reviewed(0.8 + i as f32 / 100.0, true);
        }
        // a ham at 0.6 puts the line between it and the spams
        c.reviewed(0.6, false);
        let before = c.suspect_line(0.3);
        assert!(before > 0.6 && before < 0.8, "{before}");
        // a spam mark at 0.55 pulls the line below it...
        c.reviewed(0.55, true);
        let marked = c.suspect_line(0.3);
        assert!(marked < 0.55, "{marked} vs {before}");
        // ...and undoing it puts the line back
        c.unreviewed(0.55, true);
        assert_eq!(c.suspect_line(0.3), before);
        // undoing what was never remembered changes nothing
        c.unreviewed(0.11, true);
        assert_eq!(c.suspect_line(0.3), before);
    }
}
