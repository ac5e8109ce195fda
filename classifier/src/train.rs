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
//!    fits a logistic regression, a decision tree, and a bagged forest of
//!    decision trees (bootstrap rows, random feature subsets).
//! 5. Each candidate scores the held-out senders' events with the detector's
//!    score smoothing; a sender's score is its maximum, as in replay. The spam threshold is the lowest that
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
use crate::confusion::Confusion;
use crate::engine::{Detector, SCORE_SMOOTHING};
use crate::event::EventView;
use crate::features::{FEATURES, FeatureVector, NUM_FEATURES};
use crate::labels::{Label, LabelRecord, read_labels};
use crate::model::{
    FeatureColumn, MODEL_FORMAT_VERSION, Model, ModelFile, ModelKind, ModelThresholds, TreeNode,
};
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
    /// Trees in the bagged forest (0 disables the forest candidate).
    pub forest_trees: usize,
    /// Depth limit of each forest tree.
    pub forest_max_depth: usize,
    /// Share of features each forest tree may use.
    pub forest_feature_fraction: f32,
    /// Held-out sender precision the spam threshold must keep.
    pub target_precision: f32,
    /// Margin added above the highest held-out legitimate score below the
    /// tuned spam threshold, so unseen legitimate senders a little more
    /// extreme than the held-out ones still pass.
    pub threshold_margin: f32,
    /// Held-out sender precision the suspect threshold must keep.
    pub suspect_precision: f32,
    /// Provenance text stored in the model file.
    pub provenance: String,
    /// Features the model must not use: held constant (zero) in training,
    /// so no split or weight can rest on them. For signals that describe
    /// how a traffic generator or a trace window works rather than what a
    /// sender does (see [`ARTIFACT_FEATURES`]).
    pub exclude: Vec<String>,
}

/// Features left out of the bundled model: each measures how numbers were
/// handed out or where the trace window starts rather than behaviour, and
/// each made the model's scores move between independently built worlds
/// (`bench/crossworld.py`): the sender's number block (allocation), its age
/// (in a trace every sender is new at the start), and message size (how a
/// generator pads content).
pub const ARTIFACT_FEATURES: [&str; 5] = [
    "BLOCK_NEW_SENDERS",
    "BLOCK_MSGS",
    "AGE_HOURS",
    "LOG_BYTES",
    "INACTIVE_RECIPIENT_SHARE",
];

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            holdout_fraction: 0.3,
            max_samples_per_sender: 40,
            seed: 7,
            logistic_alpha: 1.0,
            tree_max_depth: 10,
            tree_min_leaf: 20.0,
            forest_trees: 16,
            forest_max_depth: 9,
            forest_feature_fraction: 0.6,
            target_precision: 0.995,
            threshold_margin: 0.05,
            suspect_precision: 0.9,
            provenance: String::new(),
            exclude: ARTIFACT_FEATURES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Held-out figures of one candidate.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateReport {
    /// `logistic`, `tree` or `forest`.
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

/// A held-out sender: its label and the features after each of its events
/// (messages, statuses, complaints), in order, so threshold tuning can
/// replay the score smoothing exactly as the detector applies it.
struct Holdout {
    spam: bool,
    events: Vec<(FeatureVector, bool)>,
}

struct Collected {
    train: Vec<Snapshot>,
    holdout: Vec<Holdout>,
    train_senders: (usize, usize),
}

/// A tiny deterministic generator for sampling.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        fmix64(self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FIRST_SNAPSHOTS: usize = 12;
const HOLDOUT_EVENTS_CAP: usize = 6000;

struct SenderLabel {
    label: Label,
    spam_from: Option<Timestamp>,
    held: bool,
}

fn collect(
    traces: Vec<(String, Box<dyn BufRead + '_>)>,
    labels: &HashMap<String, (Label, Option<Timestamp>)>,
    config: &Config,
    options: &TrainOptions,
) -> Result<Collected, Error> {
    let mut rng = SplitMix(options.seed);
    let excluded: Vec<usize> = options
        .exclude
        .iter()
        .filter_map(|n| FEATURES.iter().position(|f| f.name == n))
        .collect();
    let masked = |mut x: FeatureVector| {
        for &i in &excluded {
            if let Some(v) = x.get_mut(i) {
                *v = 0.0;
            }
        }
        x
    };
    let holdout_cut =
        (f64::from(options.holdout_fraction.clamp(0.0, 0.9)) * u64::MAX as f64) as u64;
    let by_hash: HashMap<u64, SenderLabel> = labels
        .iter()
        .map(|(s, (label, spam_from))| {
            let h = hash_str(s);
            (
                h,
                SenderLabel {
                    label: *label,
                    spam_from: *spam_from,
                    held: fmix64(h ^ options.seed) < holdout_cut,
                },
            )
        })
        .collect();
    // keyed by (trace number, sender hash): the same id in two traces is two senders
    let mut train_map: HashMap<(usize, u64), SenderSamples> = HashMap::new();
    let mut holdout_map: HashMap<(usize, u64), Holdout> = HashMap::new();
    for (n, (name, trace)) in traces.into_iter().enumerate() {
        let mut det = Detector::new(Model::neutral(), config)?;
        let mut reader = TraceReader::new(trace);
        let mut step = |ev: EventView<'_>| {
            let at = ev.at();
            let Some(o) = det.observe(ev, at) else { return };
            let Some(sl) = by_hash.get(&o.sender) else {
                return;
            };
            let spam = sl.label == Label::Spam && sl.spam_from.is_none_or(|t| at >= t);
            if sl.held {
                let h = holdout_map.entry((n, o.sender)).or_insert_with(|| Holdout {
                    spam: sl.label == Label::Spam,
                    events: Vec::new(),
                });
                if h.events.len() < HOLDOUT_EVENTS_CAP {
                    h.events.push((masked(o.features), spam));
                }
                return;
            }
            if !o.is_message {
                return;
            }
            let s = train_map.entry((n, o.sender)).or_default();
            let snap = Snapshot {
                x: masked(o.features),
                spam,
            };
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
                    let j = rng.below(s.seen[li]);
                    if let Some(slot) = r.get_mut(j) {
                        *slot = snap;
                    }
                }
            }
        };
        while reader
            .next_view(&mut step)
            .map_err(|e| e.within(&name))?
            .is_some()
        {}
    }
    let mut train = Vec::new();
    let mut train_senders = (0, 0);
    let mut keys: Vec<(usize, u64)> = train_map.keys().copied().collect();
    keys.sort_unstable();
    for k in keys {
        let Some(s) = train_map.remove(&k) else {
            continue;
        };
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
    let mut hk: Vec<(usize, u64)> = holdout_map.keys().copied().collect();
    hk.sort_unstable();
    let holdout = hk
        .into_iter()
        .filter_map(|k| holdout_map.remove(&k))
        .collect();
    Ok(Collected {
        train,
        holdout,
        train_senders,
    })
}

fn standardize(train: &[Snapshot]) -> (Vec<f32>, Vec<f32>) {
    let n = train.len().max(1) as f64;
    let mut mean = vec![0.0f64; NUM_FEATURES];
    for s in train {
        for (m, x) in mean.iter_mut().zip(s.x) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; NUM_FEATURES];
    for s in train {
        for ((v, m), x) in var.iter_mut().zip(&mean).zip(s.x) {
            let d = f64::from(x) - m;
            *v += d * d;
        }
    }
    let std: Vec<f32> = var
        .iter()
        .map(|v| ((v / n).sqrt() as f32).max(1e-3))
        .collect();
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
            .map(|(s, (m, d))| FeatureColumn {
                name: s.name.into(),
                mean: *m,
                std: *d,
            })
            .collect(),
        model,
        thresholds: ModelThresholds {
            suspect: 0.5,
            spam: 0.9,
        },
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

fn fit_logistic(
    train: &[Snapshot],
    mean: &[f32],
    std: &[f32],
    options: &TrainOptions,
) -> Result<ModelKind, Error> {
    let x = matrix(train, mean, std);
    let y: Array1<usize> = train.iter().map(|s| usize::from(s.spam)).collect();
    let ds = Dataset::new(x, y);
    let fitted = LogisticRegression::default()
        .alpha(options.logistic_alpha)
        .max_iterations(300)
        .fit(&ds)
        .map_err(|e| Error::Training(format!("logistic regression: {e}")))?;
    // linfa's positive class is the larger one; flip so we predict spam.
    let sign = if fitted.labels().pos.class == 1 {
        1.0
    } else {
        -1.0
    };
    Ok(ModelKind::Logistic {
        intercept: (sign * fitted.intercept()) as f32,
        weights: fitted.params().iter().map(|w| (sign * w) as f32).collect(),
    })
}

/// Weight of a spam sample in a linfa tree (ham weighs 1). linfa-trees
/// names each node's class by the heavier weight and, once fitted, merges
/// sibling leaves that name the same class; on an exact tie it takes the
/// class its `HashMap` (seeded at random in every process) yields first, so
/// the same data gave different trees, and different models, from one run
/// of `model train` to the next. A hair more weight on spam means two class
/// weights are never equal below a few thousand samples a node, so every
/// run fits the same trees; the minimum-leaf checks are unchanged below
/// 4 096 samples.
const SPAM_TIE_BREAK_WEIGHT: f32 = 1.0 + 1.0 / 4096.0;

/// Fits one linfa tree on the given rows and feature columns of the
/// standardized matrix, flattens it in pre-order (so every child index
/// exceeds its parent's, which the loader checks) with feature indices
/// mapped back to the full schema, and sets node probabilities from `prob_rows`
/// (Laplace-smoothed), so leaves give probabilities rather than classes and
/// explanations can attribute probability changes to splits.
fn fit_one_tree(
    x: &Array2<f64>,
    y: &[bool],
    rows: &[usize],
    cols: &[usize],
    prob_rows: &[usize],
    max_depth: usize,
    min_leaf: f32,
) -> Result<Vec<TreeNode>, Error> {
    let mut sub = Array2::<f64>::zeros((rows.len(), cols.len()));
    for (r, &row) in rows.iter().enumerate() {
        for (c, &col) in cols.iter().enumerate() {
            sub[(r, c)] = x[(row, col)];
        }
    }
    let targets: Array1<usize> = rows
        .iter()
        .map(|&r| usize::from(y.get(r).copied().unwrap_or(false)))
        .collect();
    let weights: Array1<f32> = targets
        .iter()
        .map(|&spam| {
            if spam == 1 {
                SPAM_TIE_BREAK_WEIGHT
            } else {
                1.0
            }
        })
        .collect();
    let tree = DecisionTree::params()
        .max_depth(Some(max_depth))
        .min_weight_leaf(min_leaf)
        .min_weight_split(min_leaf * 2.0)
        .fit(&Dataset::new(sub, targets).with_weights(weights))
        .map_err(|e| Error::Training(format!("decision tree: {e}")))?;
    fn flatten(
        n: &linfa_trees::TreeNode<f64, usize>,
        cols: &[usize],
        nodes: &mut Vec<TreeNode>,
    ) -> u32 {
        let me = nodes.len();
        nodes.push(TreeNode {
            feature: None,
            threshold: 0.0,
            left: 0,
            right: 0,
            p: 0.0,
        });
        let children = n.children();
        if let (false, Some(Some(l)), Some(Some(r))) =
            (n.is_leaf(), children.first(), children.get(1))
        {
            let (f, split, _) = n.split();
            let left = flatten(l, cols, nodes);
            let right = flatten(r, cols, nodes);
            let feature = cols.get(f).and_then(|c| u16::try_from(*c).ok());
            if let Some(node) = nodes.get_mut(me) {
                *node = TreeNode {
                    feature,
                    threshold: split as f32,
                    left,
                    right,
                    p: 0.0,
                };
            }
        }
        me as u32
    }
    let mut nodes: Vec<TreeNode> = Vec::new();
    flatten(tree.root_node(), cols, &mut nodes);
    let mut counts = vec![(0u64, 0u64); nodes.len()];
    for &r in prob_rows {
        let spam = y.get(r).copied().unwrap_or(false);
        let mut i = 0usize;
        loop {
            if let Some(c) = counts.get_mut(i) {
                c.0 += 1;
                c.1 += u64::from(spam);
            }
            let Some(node) = nodes.get(i) else { break };
            let Some(f) = node.feature else { break };
            i = if (x[(r, usize::from(f))] as f32) < node.threshold {
                node.left
            } else {
                node.right
            } as usize;
        }
    }
    for (node, (n, k)) in nodes.iter_mut().zip(counts) {
        node.p = (k as f32 + 0.5) / (n as f32 + 1.0);
    }
    Ok(nodes)
}

fn fit_tree(
    train: &[Snapshot],
    mean: &[f32],
    std: &[f32],
    options: &TrainOptions,
) -> Result<ModelKind, Error> {
    let x = matrix(train, mean, std);
    let y: Vec<bool> = train.iter().map(|s| s.spam).collect();
    let all: Vec<usize> = (0..train.len()).collect();
    let cols: Vec<usize> = (0..NUM_FEATURES).collect();
    let nodes = fit_one_tree(
        &x,
        &y,
        &all,
        &cols,
        &all,
        options.tree_max_depth,
        options.tree_min_leaf,
    )?;
    Ok(ModelKind::Tree { nodes })
}

fn fit_forest(
    train: &[Snapshot],
    mean: &[f32],
    std: &[f32],
    options: &TrainOptions,
) -> Result<ModelKind, Error> {
    let x = matrix(train, mean, std);
    let y: Vec<bool> = train.iter().map(|s| s.spam).collect();
    let all: Vec<usize> = (0..train.len()).collect();
    let mut rng = SplitMix(options.seed ^ 0xF0_4E57);
    let n_cols = ((NUM_FEATURES as f32 * options.forest_feature_fraction.clamp(0.1, 1.0)).round()
        as usize)
        .max(1);
    let mut trees = Vec::with_capacity(options.forest_trees);
    for _ in 0..options.forest_trees {
        let rows: Vec<usize> = (0..train.len()).map(|_| rng.below(train.len())).collect();
        let mut cols: Vec<usize> = (0..NUM_FEATURES).collect();
        for i in (1..cols.len()).rev() {
            cols.swap(i, rng.below(i + 1));
        }
        cols.truncate(n_cols);
        cols.sort_unstable();
        trees.push(fit_one_tree(
            &x,
            &y,
            &rows,
            &cols,
            &all,
            options.forest_max_depth,
            options.tree_min_leaf,
        )?);
    }
    Ok(ModelKind::Forest { trees })
}

/// Sender-level precision/recall/F1 of max scores at threshold `t`.
fn prf(senders: &[(bool, f32)], t: f32) -> (f32, f32, f32) {
    let mut c = Confusion::default();
    for &(spam, s) in senders {
        c.count(spam, s >= t);
    }
    (c.precision() as f32, c.recall() as f32, c.f1() as f32)
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
    holdout: &[Holdout],
    options: &TrainOptions,
) -> Result<(CandidateReport, ModelThresholds), Error> {
    let model = Model::from_file(file.clone())?;
    let mut senders = Vec::with_capacity(holdout.len());
    let (mut loss, mut n) = (0.0f64, 0usize);
    for h in holdout {
        // the detector's smoothing, event by event
        let (mut smoothed, mut max) = (0.0f32, 0.0f32);
        for (x, y) in &h.events {
            let s = model.score(x);
            smoothed += SCORE_SMOOTHING * (s - smoothed);
            max = max.max(smoothed);
            let p = f64::from(s.clamp(1e-6, 1.0 - 1e-6));
            loss -= if *y { p.ln() } else { (1.0 - p).ln() };
            n += 1;
        }
        senders.push((h.spam, max));
    }
    let tuned = tune_threshold(&senders, options.target_precision);
    let ham_below = senders
        .iter()
        .filter(|s| !s.0 && s.1 < tuned)
        .map(|s| s.1)
        .fold(0.0f32, f32::max);
    let spam_t = tuned.max(ham_below + options.threshold_margin).min(0.999);
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
        ModelThresholds {
            suspect: suspect_t,
            spam: spam_t,
        },
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
    let count = sets.len();
    let named = sets
        .into_iter()
        .enumerate()
        .map(|(i, (trace, labels))| {
            let name = if count == 1 {
                "the trace".to_string()
            } else {
                format!("trace {} of {count}", i + 1)
            };
            (name, trace, labels)
        })
        .collect();
    train_named(named, extra, config, options)
}

/// A trace to train on: its name (its path, say: errors in it are reported
/// under it, `b2/trace.jsonl: line 5: …`), a reader over its JSON lines,
/// and its labels.
pub type NamedSet<'a> = (String, Box<dyn BufRead + 'a>, Vec<LabelRecord>);

/// [`train`] with a name for each trace ([`NamedSet`]).
pub fn train_named(
    sets: Vec<NamedSet<'_>>,
    extra: &[(String, Label)],
    config: &Config,
    options: &TrainOptions,
) -> Result<(Model, TrainReport), Error> {
    let mut labels: HashMap<String, (Label, Option<Timestamp>)> = HashMap::new();
    let mut traces = Vec::new();
    for (name, trace, recs) in sets {
        for r in recs {
            labels.insert(r.sender, (r.label, r.spam_from));
        }
        traces.push((name, trace));
    }
    for (sender, label) in extra {
        labels.insert(sender.clone(), (*label, None));
    }
    let data = collect(traces, &labels, config, options)?;
    let spam = data.train.iter().filter(|s| s.spam).count();
    if spam == 0 || spam == data.train.len() {
        return Err(Error::Training(
            "training data needs both spam and ham senders".into(),
        ));
    }
    if data.holdout.iter().all(|h| h.spam) || data.holdout.iter().all(|h| !h.spam) {
        return Err(Error::Training(
            "held-out senders need both classes; add more senders".into(),
        ));
    }
    let (mean, std) = standardize(&data.train);
    let mut candidates = vec![
        ("logistic", fit_logistic(&data.train, &mean, &std, options)?),
        ("tree", fit_tree(&data.train, &mean, &std, options)?),
    ];
    if options.forest_trees > 0 {
        candidates.push(("forest", fit_forest(&data.train, &mean, &std, options)?));
    }
    let mut results = Vec::new();
    for (name, kind) in candidates {
        let mut file = base_file(&mean, &std, kind, &options.provenance);
        let (report, thresholds) = evaluate_candidate(name, &file, &data.holdout, options)?;
        file.thresholds = thresholds;
        results.push((report, file));
    }
    let best = results
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            // meeting the precision target first, then recall, then F1
            let key =
                |r: &CandidateReport| (r.precision >= options.target_precision, r.recall, r.f1);
            let (ka, kb) = (key(&a.0), key(&b.0));
            ka.0.cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(ka.2.total_cmp(&kb.2))
        })
        .map_or(0, |(i, _)| i);
    let report = TrainReport {
        candidates: results.iter().map(|r| r.0.clone()).collect(),
        chosen: results
            .get(best)
            .map(|r| r.0.name.clone())
            .unwrap_or_default(),
        train_senders: data.train_senders,
        holdout_senders: (
            data.holdout.iter().filter(|h| h.spam).count(),
            data.holdout.iter().filter(|h| !h.spam).count(),
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
    let mut inputs: Vec<NamedSet<'static>> = Vec::new();
    for (trace, labels) in sets {
        let labels = std::fs::File::open(labels)
            .map_err(Error::from)
            .and_then(|f| read_labels(std::io::BufReader::new(f)))
            .map_err(|e| e.within(labels.display()))?;
        let name = trace.display().to_string();
        let file = std::fs::File::open(trace).map_err(|e| Error::from(e).within(&name))?;
        inputs.push((name, Box::new(std::io::BufReader::new(file)), labels));
    }
    train_named(inputs, extra, config, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_keeps_precision() {
        let s = [
            (false, 0.1),
            (false, 0.5),
            (false, 0.7),
            (true, 0.6),
            (true, 0.8),
            (true, 0.9),
        ];
        let t = tune_threshold(&s, 0.99);
        assert!((t - 0.8).abs() < 1e-6);
        let t = tune_threshold(&s, 0.7);
        assert!((t - 0.6).abs() < 1e-6);
    }
}
