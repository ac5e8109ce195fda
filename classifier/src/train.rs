//! Training with linfa: logistic regression vs a decision tree.
//!
//! 1. Every labeled trace is run through the same [`Detector`] the gateway
//!    uses, so training sees exactly the features scoring will see, computed
//!    incrementally as of each message (early messages included, which is
//!    what teaches the model to flag within a few messages).
//! 2. Senders are split into training and held-out sets by a seeded hash of
//!    the sender id (never by message, which would leak a sender into both).
//! 3. Training senders contribute their first 12 snapshots and a reservoir
//!    sample of up to `max_samples_per_sender` more, per label, so a
//!    marketing sender with 100 000 messages does not outweigh 1 000 people.
//! 4. Features are standardized with training means and deviations; linfa
//!    fits a logistic regression and a decision tree.
//! 5. Each candidate scores the held-out senders' snapshots; a sender's score
//!    is its maximum, as in replay. The spam threshold is the lowest that
//!    keeps held-out sender precision at `target_precision`; the candidate
//!    with the higher recall there (then F1) wins and is saved with its
//!    schema, parameters and thresholds.
//!
//! Labels from operators' review decisions are merged in as overrides.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

use linfa::Dataset;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::Error;
use crate::engine::Detector;
use crate::event::EventView;
use crate::features::{FEATURES, FeatureVector, NUM_FEATURES};
use crate::labels::{Label, LabelRecord, read_labels};
use crate::model::{FeatureColumn, MODEL_FORMAT_VERSION, Model, ModelFile, ModelKind, ModelThresholds, TreeNode};
use crate::policy::Config;
use crate::sketch::{fmix64, hash_str};
use crate::timestamp::Timestamp;
use crate::trace::TraceReader;

/// Training knobs. Defaults are what the committed model used.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    /// Share of senders held out for model selection and thresholds.
    pub holdout_fraction: f32,
    /// Reservoir size per (sender, label) beyond the first 12 snapshots.
    pub max_samples_per_sender: usize,
    /// Seed for the split and the reservoirs.
    pub seed: u64,
    /// L2 regularization of the logistic regression.
    pub logistic_alpha: f64,
    /// Depth limit of the decision tree.
    pub tree_max_depth: usize,
    /// Minimum samples in a tree leaf.
    pub tree_min_leaf: f32,
    /// Held-out sender precision the spam threshold must keep.
    pub target_precision: f32,
    /// Held-out sender precision the suspect threshold must keep.
    pub suspect_precision: f32,
    /// Provenance text stored in the model file.
    pub provenance: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            holdout_fraction: 0.3,
            max_samples_per_sender: 40,
            seed: 7,
            logistic_alpha: 1.0,
            tree_max_depth: 10,
            tree_min_leaf: 20.0,
            target_precision: 0.995,
            suspect_precision: 0.9,
            provenance: String::new(),
        }
    }
}

/// Held-out figures of one candidate.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateReport {
    /// `logistic` or `tree`.
    pub name: String,
    /// Tuned spam threshold.
    pub spam_threshold: f32,
    /// Tuned suspect threshold.
    pub suspect_threshold: f32,
    /// Held-out sender precision at the spam threshold.
    pub precision: f32,
    /// Held-out sender recall at the spam threshold.
    pub recall: f32,
    /// Held-out sender F1 at the spam threshold.
    pub f1: f32,
    /// Held-out per-snapshot log loss.
    pub log_loss: f32,
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Both candidates.
    pub candidates: Vec<CandidateReport>,
    /// The winner's name.
    pub chosen: String,
    /// Training senders (spam, ham).
    pub train_senders: (usize, usize),
    /// Held-out senders (spam, ham).
    pub holdout_senders: (usize, usize),
    /// Training snapshots.
    pub samples: usize,
}

struct Snapshot {
    x: FeatureVector,
    spam: bool,
}

#[derive(Default)]
struct SenderSamples {
    seen: [usize; 2],
    kept: Vec<Snapshot>,
    reservoir: [Vec<Snapshot>; 2],
}

struct Collected {
    train: Vec<Snapshot>,
    /// Held-out senders: sender label and all snapshots.
    holdout: Vec<(bool, Vec<FeatureVector>, Vec<bool>)>,
    train_senders: (usize, usize),
}

/// A tiny deterministic generator for reservoir sampling.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        fmix64(self.0)
    }
}

const FIRST_SNAPSHOTS: usize = 12;

fn collect(
    traces: Vec<Box<dyn BufRead + '_>>,
    labels: &HashMap<String, (Label, Option<Timestamp>)>,
    config: &Config,
    options: &TrainOptions,
) -> Result<Collected, Error> {
    let mut rng = SplitMix(options.seed);
    let holdout_cut = (f64::from(options.holdout_fraction.clamp(0.0, 0.9)) * u64::MAX as f64) as u64;
    let mut train_map: HashMap<String, SenderSamples> = HashMap::new();
    let mut holdout_map: HashMap<String, (bool, Vec<FeatureVector>, Vec<bool>)> = HashMap::new();
    for (n, trace) in traces.into_iter().enumerate() {
        let mut det = Detector::new(Model::neutral(), config)?;
        let mut reader = TraceReader::new(trace);
        let mut step = |ev: EventView<'_>| {
            let EventView::Message(m) = ev else {
                det.observe(ev, ev.at());
                return;
            };
            let Some(o) = det.observe(ev, m.at) else { return };
            let Some(&(label, spam_from)) = labels.get(m.from) else { return };
            let spam = label == Label::Spam && spam_from.is_none_or(|t| m.at >= t);
            // one namespace per trace: the same id in two traces is two senders
            let key = format!("{n}\u{1f}{}", m.from);
            let held = fmix64(hash_str(m.from) ^ options.seed) < holdout_cut;
            if held {
                let e = holdout_map.entry(key).or_insert_with(|| (label == Label::Spam, Vec::new(), Vec::new()));
                if e.1.len() < 5000 {
                    e.1.push(o.features);
                    e.2.push(spam);
                }
                return;
            }
            let s = train_map.entry(key).or_default();
            let snap = Snapshot { x: o.features, spam };
            let li = usize::from(spam);
            s.seen[li] += 1;
            if s.seen[li] <= FIRST_SNAPSHOTS {
                s.kept.push(snap);
            } else {
                let k = options.max_samples_per_sender;
                let r = &mut s.reservoir[li];
                if r.len() < k {
                    r.push(snap);
                } else {
                    let j = (rng.next() % s.seen[li] as u64) as usize;
                    if j < k {
                        r[j] = snap;
                    }
                }
            }
        };
        while reader.next_view(&mut step)?.is_some() {}
    }
    let mut train = Vec::new();
    let mut train_senders = (0, 0);
    let mut keys: Vec<String> = train_map.keys().cloned().collect();
    keys.sort();
    for k in keys {
        let Some(s) = train_map.remove(&k) else { continue };
        if s.seen[1] > 0 {
            train_senders.0 += 1;
        } else {
            train_senders.1 += 1;
        }
        train.extend(s.kept);
        for r in s.reservoir {
            train.extend(r);
        }
    }
    let mut hk: Vec<String> = holdout_map.keys().cloned().collect();
    hk.sort();
    let holdout = hk.into_iter().filter_map(|k| holdout_map.remove(&k)).collect();
    Ok(Collected { train, holdout, train_senders })
}

fn standardize(train: &[Snapshot]) -> (Vec<f32>, Vec<f32>) {
    let n = train.len().max(1) as f64;
    let mut mean = vec![0.0f64; NUM_FEATURES];
    for s in train {
        for i in 0..NUM_FEATURES {
            mean[i] += f64::from(s.x[i]);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; NUM_FEATURES];
    for s in train {
        for i in 0..NUM_FEATURES {
            let d = f64::from(s.x[i]) - mean[i];
            var[i] += d * d;
        }
    }
    let std: Vec<f32> = var.iter().map(|v| ((v / n).sqrt() as f32).max(1e-3)).collect();
    (mean.iter().map(|m| *m as f32).collect(), std)
}

fn base_file(mean: &[f32], std: &[f32], model: ModelKind, provenance: &str) -> ModelFile {
    ModelFile {
        format: "classifier-model".into(),
        version: MODEL_FORMAT_VERSION,
        trained_on: provenance.to_owned(),
        features: FEATURES
            .iter()
            .zip(mean.iter().zip(std))
            .map(|(s, (m, d))| FeatureColumn { name: s.name.into(), mean: *m, std: *d })
            .collect(),
        model,
        thresholds: ModelThresholds { suspect: 0.5, spam: 0.9 },
        selection: serde_json::Value::Null,
    }
}

fn matrix(train: &[Snapshot], mean: &[f32], std: &[f32]) -> Array2<f64> {
    let mut x = Array2::<f64>::zeros((train.len(), NUM_FEATURES));
    for (r, s) in train.iter().enumerate() {
        for i in 0..NUM_FEATURES {
            x[(r, i)] = f64::from((s.x[i] - mean[i]) / std[i]);
        }
    }
    x
}

fn fit_logistic(train: &[Snapshot], mean: &[f32], std: &[f32], options: &TrainOptions) -> Result<ModelKind, Error> {
    let x = matrix(train, mean, std);
    let y: Array1<usize> = train.iter().map(|s| usize::from(s.spam)).collect();
    let ds = Dataset::new(x, y);
    let fitted = LogisticRegression::default()
        .alpha(options.logistic_alpha)
        .max_iterations(300)
        .fit(&ds)
        .map_err(|e| Error::Training(format!("logistic regression: {e}")))?;
    // linfa's positive class is the larger one; flip so we predict spam.
    let sign = if fitted.labels().pos.class == 1 { 1.0 } else { -1.0 };
    Ok(ModelKind::Logistic {
        intercept: (sign * fitted.intercept()) as f32,
        weights: fitted.params().iter().map(|w| (sign * w) as f32).collect(),
    })
}

fn fit_tree(train: &[Snapshot], mean: &[f32], std: &[f32], options: &TrainOptions) -> Result<ModelKind, Error> {
    let x = matrix(train, mean, std);
    let y: Array1<usize> = train.iter().map(|s| usize::from(s.spam)).collect();
    let ds = Dataset::new(x.clone(), y);
    let tree = DecisionTree::params()
        .max_depth(Some(options.tree_max_depth))
        .min_weight_leaf(options.tree_min_leaf)
        .min_weight_split(options.tree_min_leaf * 2.0)
        .fit(&ds)
        .map_err(|e| Error::Training(format!("decision tree: {e}")))?;
    // Flatten in pre-order so every child index exceeds its parent's.
    let mut nodes: Vec<TreeNode> = Vec::new();
    fn flatten(n: &linfa_trees::TreeNode<f64, usize>, nodes: &mut Vec<TreeNode>) -> u32 {
        let me = nodes.len();
        nodes.push(TreeNode { feature: None, threshold: 0.0, left: 0, right: 0, p: 0.0 });
        let children = n.children();
        if let (false, Some(Some(l)), Some(Some(r))) = (n.is_leaf(), children.first(), children.get(1)) {
            let (f, split, _) = n.split();
            let left = flatten(l, nodes);
            let right = flatten(r, nodes);
            if let Some(node) = nodes.get_mut(me) {
                *node = TreeNode { feature: u16::try_from(f).ok(), threshold: split as f32, left, right, p: 0.0 };
            }
        }
        me as u32
    }
    flatten(tree.root_node(), &mut nodes);
    // Node probabilities from the training samples that reach each node
    // (Laplace-smoothed), so leaves give probabilities rather than classes
    // and explanations can attribute probability changes to splits.
    let mut counts = vec![(0u64, 0u64); nodes.len()];
    for (r, s) in train.iter().enumerate() {
        let mut i = 0usize;
        loop {
            if let Some(c) = counts.get_mut(i) {
                c.0 += 1;
                c.1 += u64::from(s.spam);
            }
            let Some(node) = nodes.get(i) else { break };
            let Some(f) = node.feature else { break };
            i = if (x[(r, usize::from(f))] as f32) < node.threshold { node.left } else { node.right } as usize;
        }
    }
    for (node, (n, k)) in nodes.iter_mut().zip(counts) {
        node.p = (k as f32 + 0.5) / (n as f32 + 1.0);
    }
    Ok(ModelKind::Tree { nodes })
}

/// Sender-level precision/recall/F1 of max scores at threshold `t`.
fn prf(senders: &[(bool, f32)], t: f32) -> (f32, f32, f32) {
    let (mut tp, mut fp, mut fneg) = (0u32, 0u32, 0u32);
    for &(spam, s) in senders {
        match (spam, s >= t) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            _ => {}
        }
    }
    let p = if tp + fp == 0 { 1.0 } else { tp as f32 / (tp + fp) as f32 };
    let r = if tp + fneg == 0 { 0.0 } else { tp as f32 / (tp + fneg) as f32 };
    let f = if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) };
    (p, r, f)
}

/// The lowest threshold keeping precision ≥ `target` (maximizing recall);
/// falls back to the best-F1 threshold when no threshold reaches it.
pub(crate) fn tune_threshold(senders: &[(bool, f32)], target: f32) -> f32 {
    let mut cands: Vec<f32> = senders.iter().map(|s| s.1).collect();
    cands.sort_by(f32::total_cmp);
    cands.dedup();
    let mut best: Option<(f32, f32)> = None;
    let mut best_f1 = (0.0f32, 0.99f32);
    for &t in &cands {
        let (p, r, f) = prf(senders, t);
        if f > best_f1.0 {
            best_f1 = (f, t);
        }
        if p >= target && best.is_none_or(|(br, _)| r > br) {
            best = Some((r, t));
        }
    }
    // Place the cut just below the chosen sender's score: a hair of margin
    // toward ham scores that were just under it.
    best.map_or(best_f1.1, |(_, t)| t).clamp(0.0, 1.0)
}

fn evaluate_candidate(
    name: &str,
    file: &ModelFile,
    holdout: &[(bool, Vec<FeatureVector>, Vec<bool>)],
    options: &TrainOptions,
) -> Result<(CandidateReport, ModelThresholds), Error> {
    let model = Model::from_file(file.clone())?;
    let mut senders = Vec::with_capacity(holdout.len());
    let (mut loss, mut n) = (0.0f64, 0usize);
    for (spam, xs, ys) in holdout {
        let mut max = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let s = model.score(x);
            max = max.max(s);
            let p = f64::from(s.clamp(1e-6, 1.0 - 1e-6));
            loss -= if *y { p.ln() } else { (1.0 - p).ln() };
            n += 1;
        }
        senders.push((*spam, max));
    }
    let spam_t = tune_threshold(&senders, options.target_precision);
    let suspect_t = tune_threshold(&senders, options.suspect_precision).min(spam_t);
    let (p, r, f) = prf(&senders, spam_t);
    Ok((
        CandidateReport {
            name: name.into(),
            spam_threshold: spam_t,
            suspect_threshold: suspect_t,
            precision: p,
            recall: r,
            f1: f,
            log_loss: (loss / n.max(1) as f64) as f32,
        },
        ModelThresholds { suspect: suspect_t, spam: spam_t },
    ))
}

/// Trains from traces with their labels, plus operator review decisions.
///
/// `sets` pairs each trace (a reader over JSON lines) with its labels;
/// `extra` adds or overrides labels by sender id (for example from `gateway
/// review` marks); such senders must appear in one of the traces to
/// contribute. The rate-limit and tracking parts of `config` shape the
/// features exactly as they will at scoring time.
pub fn train<'a>(
    sets: Vec<(Box<dyn BufRead + 'a>, Vec<LabelRecord>)>,
    extra: &[(String, Label)],
    config: &Config,
    options: &TrainOptions,
) -> Result<(Model, TrainReport), Error> {
    let mut labels: HashMap<String, (Label, Option<Timestamp>)> = HashMap::new();
    let mut traces = Vec::new();
    for (trace, recs) in sets {
        for r in recs {
            labels.insert(r.sender, (r.label, r.spam_from));
        }
        traces.push(trace);
    }
    for (sender, label) in extra {
        labels.insert(sender.clone(), (*label, None));
    }
    let data = collect(traces, &labels, config, options)?;
    let spam = data.train.iter().filter(|s| s.spam).count();
    if spam == 0 || spam == data.train.len() {
        return Err(Error::Training("training data needs both spam and ham senders".into()));
    }
    if data.holdout.iter().all(|h| h.0) || data.holdout.iter().all(|h| !h.0) {
        return Err(Error::Training("held-out senders need both classes; add more senders".into()));
    }
    let (mean, std) = standardize(&data.train);
    let mut results = Vec::new();
    for (name, kind) in [
        ("logistic", fit_logistic(&data.train, &mean, &std, options)?),
        ("tree", fit_tree(&data.train, &mean, &std, options)?),
    ] {
        let mut file = base_file(&mean, &std, kind, &options.provenance);
        let (report, thresholds) = evaluate_candidate(name, &file, &data.holdout, options)?;
        file.thresholds = thresholds;
        results.push((report, file));
    }
    let best = results
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            let key = |r: &CandidateReport| (r.precision >= 0.99 * 1.0_f32.min(0.995), r.recall, r.f1);
            let (ka, kb) = (key(&a.0), key(&b.0));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(ka.2.total_cmp(&kb.2))
        })
        .map_or(0, |(i, _)| i);
    let report = TrainReport {
        candidates: results.iter().map(|r| r.0.clone()).collect(),
        chosen: results.get(best).map(|r| r.0.name.clone()).unwrap_or_default(),
        train_senders: data.train_senders,
        holdout_senders: (
            data.holdout.iter().filter(|h| h.0).count(),
            data.holdout.iter().filter(|h| !h.0).count(),
        ),
        samples: data.train.len(),
    };
    let mut file = results
        .into_iter()
        .nth(best)
        .map(|r| r.1)
        .ok_or_else(|| Error::Training("no candidate model".into()))?;
    file.selection = serde_json::to_value(&report)?;
    Ok((Model::from_file(file)?, report))
}

/// [`train`] over (trace path, labels path) pairs.
pub fn train_files(
    sets: &[(PathBuf, PathBuf)],
    extra: &[(String, Label)],
    config: &Config,
    options: &TrainOptions,
) -> Result<(Model, TrainReport), Error> {
    let mut inputs: Vec<(Box<dyn BufRead>, Vec<LabelRecord>)> = Vec::new();
    for (trace, labels) in sets {
        let labels = read_labels(std::io::BufReader::new(std::fs::File::open(labels)?))?;
        inputs.push((Box::new(std::io::BufReader::new(std::fs::File::open(trace)?)), labels));
    }
    train(inputs, extra, config, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_keeps_precision() {
        let s = [(false, 0.1), (false, 0.5), (false, 0.7), (true, 0.6), (true, 0.8), (true, 0.9)];
        let t = tune_threshold(&s, 0.99);
        assert!((t - 0.8).abs() < 1e-6);
        let t = tune_threshold(&s, 0.7);
        assert!((t - 0.6).abs() < 1e-6);
    }
}
