//! Cross-world evaluation: a model trained on one traffic world, judged on
//! the others, in every direction.
//!
//! A model judged on the world it was fitted to describes that world: the
//! first bundled model scored precision 1.000 on its own generator and held
//! 91 % of ordinary people on one built by other hands. So the figures the
//! spam defense is judged by come from here: each world's model (trained on
//! its first seed) on every seed of every other world, with the lines of
//! the model under test and the deployment's policy (`gateway model eval
//! --world`, `examples/crossworld.rs`, `bench/crossworld.py`).

use std::io::BufReader;
use std::path::PathBuf;

use serde::Serialize;

use crate::Error;
use crate::eval::{CategoryStats, EvalReport, evaluate};
use crate::labels::read_labels;
use crate::model::{Model, ModelThresholds};
use crate::policy::Config;
use crate::train::{TrainOptions, train_files};

/// One seed of one world: a labelled trace.
#[derive(Debug, Clone)]
pub struct WorldSeed {
    /// The world it belongs to (seeds of one world are never judged by a
    /// model trained on another seed of it).
    pub world: String,
    /// How rows name it (a directory, `b2`).
    pub label: String,
    /// The metadata trace.
    pub trace: PathBuf,
    /// Its labels.
    pub labels: PathBuf,
}

/// The figures the spam defense's goals are stated in, for one model on
/// one labelled trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// What the model was trained on.
    pub trained_on: String,
    /// The trace it was judged on.
    pub judged_on: String,
    /// Sender precision at `spam`.
    pub precision: f64,
    /// Sender recall at `spam`.
    pub recall: f64,
    /// Legitimate senders held or blocked at some point.
    pub legit_held_share: f64,
    /// Legitimate messages sent after their sender was flagged.
    pub legit_messages_after_flag_share: f64,
    /// Legitimate senders of a one-time-passcode category judged `spam`.
    pub otp_spam: usize,
    /// Legitimate senders of a reminder category judged `spam`.
    pub reminder_spam: usize,
    /// How well the scores rank, apart from the lines.
    pub auc: f64,
    /// Legitimate senders by category: how many, how many blocked, held.
    pub legit: Vec<CategoryStats>,
}

impl Figures {
    /// The figures of `report`, named.
    pub fn of(report: &EvalReport, trained_on: &str, judged_on: &str) -> Self {
        let blocked_in = |part: &str| -> usize {
            report
                .legit
                .iter()
                .filter(|c| c.category.contains(part))
                .map(|c| c.spam)
                .sum()
        };
        Self {
            trained_on: trained_on.to_string(),
            judged_on: judged_on.to_string(),
            precision: report.precision,
            recall: report.recall,
            legit_held_share: report.legit_held_share(),
            legit_messages_after_flag_share: report.legit_messages_after_flag_share(),
            otp_spam: blocked_in("otp"),
            reminder_spam: blocked_in("remind"),
            auc: report.auc(),
            legit: report.legit.clone(),
        }
    }
}

/// Evaluates `model` on one seed.
/// Errors name the file they came from.
pub fn judge(model: &Model, seed: &WorldSeed, config: &Config) -> Result<EvalReport, Error> {
    let labels = std::fs::File::open(&seed.labels)
        .map_err(Error::from)
        .and_then(|f| read_labels(BufReader::new(f)))
        .map_err(|e| e.within(seed.labels.display()))?;
    let trace = std::fs::File::open(&seed.trace)
        .map_err(|e| Error::from(e).within(seed.trace.display()))?;
    evaluate(BufReader::new(trace), &labels, model, config)
        .map_err(|e| e.within(seed.trace.display()))
}

/// For each world (in the order they first appear): a model trained on its
/// first seed with `options`, its lines set to `lines` (the lines under
/// test, not the ones tuned on the world's own held-out senders), judged on
/// every seed of every other world. `progress` hears each step. Needs two
/// worlds at least.
pub fn cross_world(
    seeds: &[WorldSeed],
    lines: ModelThresholds,
    config: &Config,
    options: &TrainOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<Figures>, Error> {
    let mut worlds: Vec<&str> = Vec::new();
    for s in seeds {
        if !worlds.contains(&s.world.as_str()) {
            worlds.push(&s.world);
        }
    }
    if worlds.len() < 2 {
        return Err(Error::Training(
            "cross-world evaluation needs two worlds at least".into(),
        ));
    }
    let mut rows = Vec::new();
    for world in worlds {
        let Some(first) = seeds.iter().find(|s| s.world == world) else {
            continue;
        };
        progress(&format!("training on {} ({})", world, first.label));
        let options = TrainOptions {
            provenance: format!("cross-world: {} ({})", world, first.label),
            ..options.clone()
        };
        let (trained, _) = train_files(
            &[(first.trace.clone(), first.labels.clone())],
            &[],
            config,
            &options,
        )
        .map_err(|e| e.within(format!("training on {}", first.label)))?;
        let mut file = trained.file().clone();
        file.thresholds = lines;
        let model = Model::from_file(file)?;
        for other in seeds.iter().filter(|s| s.world != world) {
            progress(&format!("judging {} on {}", world, other.label));
            let report = judge(&model, other, config)?;
            rows.push(Figures::of(&report, world, &other.label));
        }
    }
    Ok(rows)
}

/// Legitimate senders held or blocked per (judged world, category), summed
/// over `rows` (every seed of a world, every model judged on it):
/// `(world, category, held, senders)`, sorted. The README's table of who
/// pays for the defense.
pub fn held_by_category(
    rows: &[Figures],
    world_of: impl Fn(&str) -> String,
) -> Vec<(String, String, usize, usize)> {
    let mut sums: std::collections::BTreeMap<(String, String), (usize, usize)> = Default::default();
    for r in rows {
        for c in &r.legit {
            let e = sums
                .entry((world_of(&r.judged_on), c.category.clone()))
                .or_default();
            e.0 += c.spam + c.suspect;
            e.1 += c.senders;
        }
    }
    sums.into_iter()
        .map(|((w, c), (held, senders))| (w, c, held, senders))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(judged_on: &str, legit: &[(&str, usize, usize, usize)]) -> Figures {
        Figures {
            trained_on: "x".into(),
            judged_on: judged_on.into(),
            precision: 1.0,
            recall: 1.0,
            legit_held_share: 0.0,
            legit_messages_after_flag_share: 0.0,
            otp_spam: 0,
            reminder_spam: 0,
            auc: 1.0,
            legit: legit
                .iter()
                .map(|&(category, senders, spam, suspect)| CategoryStats {
                    category: category.into(),
                    senders,
                    spam,
                    suspect,
                })
                .collect(),
        }
    }

    #[test]
    fn held_senders_are_summed_per_world_and_category_over_its_seeds() {
        let rows = [
            row("b1", &[("otp", 10, 1, 2), ("person", 100, 0, 0)]),
            row("b2", &[("otp", 12, 0, 1)]),
            row("c1", &[("otp", 5, 5, 0)]),
        ];
        let world = |label: &str| {
            label
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .to_string()
        };
        let got = held_by_category(&rows, world);
        let want = [
            ("b", "otp", 4, 22),
            ("b", "person", 0, 100),
            ("c", "otp", 5, 5),
        ];
        assert_eq!(got.len(), want.len());
        for ((w, c, h, n), (ww, wc, wh, wn)) in got.iter().zip(want) {
            assert_eq!((w.as_str(), c.as_str(), *h, *n), (ww, wc, wh, wn));
        }
    }
}
