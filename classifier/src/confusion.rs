//! Sender-level counts of verdicts against labels, and the precision,
//! recall and F1 made from them: one definition for evaluation, training
//! (choosing lines) and the cluster figures, so that an empty case means
//! the same everywhere.

/// Spam senders flagged, legitimate senders flagged and spam senders
/// missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Spam senders flagged.
    pub true_positives: usize,
    /// Legitimate senders flagged.
    pub false_positives: usize,
    /// Spam senders not flagged.
    pub false_negatives: usize,
}

impl Confusion {
    /// Counts one sender.
    pub fn count(&mut self, spam: bool, flagged: bool) {
        match (spam, flagged) {
            (true, true) => self.true_positives += 1,
            (false, true) => self.false_positives += 1,
            (true, false) => self.false_negatives += 1,
            (false, false) => {}
        }
    }

    /// Share of flagged senders that are spam; 1 when nothing was flagged
    /// (no legitimate sender was).
    pub fn precision(&self) -> f64 {
        let flagged = self.true_positives + self.false_positives;
        if flagged == 0 {
            1.0
        } else {
            self.true_positives as f64 / flagged as f64
        }
    }

    /// Share of spam senders flagged; 0 when there was no spam to find.
    pub fn recall(&self) -> f64 {
        let spam = self.true_positives + self.false_negatives;
        if spam == 0 {
            0.0
        } else {
            self.true_positives as f64 / spam as f64
        }
    }

    /// Harmonic mean of precision and recall (0 when both are).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_cases_have_fixed_meanings() {
        let none = Confusion::default();
        assert_eq!(
            (none.precision(), none.recall(), none.f1()),
            (1.0, 0.0, 0.0)
        );
    }

    #[test]
    fn counts_make_the_figures() {
        let mut c = Confusion::default();
        for (spam, flagged) in [(true, true), (true, true), (true, true), (false, true)] {
            c.count(spam, flagged);
        }
        c.count(true, false);
        c.count(false, false);
        assert_eq!(c.precision(), 0.75);
        assert_eq!(c.recall(), 0.75);
        assert_eq!(c.f1(), 0.75);
    }
}
