//! The scoring model: a versioned JSON file scored without linfa.
//!
//! Training (see [`crate::train`]) uses linfa; scoring must not, because it
//! runs for every message inside the gateway's commit path. The file holds the
//! feature schema (names, order, means, standard deviations) and either
//! logistic-regression weights or a flattened decision tree with leaf
//! probabilities. Scoring is then a standardization and a dot product (or a
//! walk of a few nodes): tens of nanoseconds.
//!
//! Explanations: for the logistic model a feature's contribution is
//! `weight × standardized value` (log-odds); for the tree it is the change in
//! node probability at each split on the path (Saabas' method), so
//! contributions plus the root probability add up to the score.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::features::{FEATURES, FeatureVector, NUM_FEATURES};
use crate::policy::Reason;

/// The model format this build reads and writes.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// The default model, trained on synthetic traffic (see `fixtures/trafficgen`)
/// and embedded so the gateway works with no files.
pub const DEFAULT_MODEL_JSON: &str = include_str!("../model/default.json");

/// One input column of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureColumn {
    /// Feature tag; must match the build's schema in order.
    pub name: String,
    /// Training mean (subtracted before scoring).
    pub mean: f32,
    /// Training standard deviation (divided by; never zero in a valid file).
    pub std: f32,
}

/// A node of a flattened decision tree (over standardized features).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeNode {
    /// Feature index to split on; `None` for a leaf.
    pub feature: Option<u16>,
    /// Go left when the standardized value is `< threshold`.
    pub threshold: f32,
    /// Left child index.
    pub left: u32,
    /// Right child index.
    pub right: u32,
    /// Share of spam among training samples reaching this node.
    pub p: f32,
}

/// The learned function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelKind {
    /// Logistic regression: `sigmoid(intercept + Σ wᵢ zᵢ)`.
    Logistic {
        /// Bias term.
        intercept: f32,
        /// One weight per feature.
        weights: Vec<f32>,
    },
    /// A single decision tree; node 0 is the root.
    Tree {
        /// Flattened nodes.
        nodes: Vec<TreeNode>,
    },
    /// Bagged decision trees (each on a bootstrap sample and a random
    /// subset of features); the score is the mean leaf probability.
    Forest {
        /// One flattened tree per member.
        trees: Vec<Vec<TreeNode>>,
    },
}

fn validate_tree(nodes: &[TreeNode]) -> Result<(), Error> {
    if nodes.is_empty() {
        return Err(Error::Model("tree has no nodes".into()));
    }
    for (i, n) in nodes.iter().enumerate() {
        if let Some(f) = n.feature {
            let ok = usize::from(f) < NUM_FEATURES
                && (n.left as usize) > i
                && (n.right as usize) > i
                && (n.left as usize) < nodes.len()
                && (n.right as usize) < nodes.len()
                && n.threshold.is_finite();
            if !ok {
                return Err(Error::Model(format!("tree node {i} is malformed")));
            }
        }
        if !(0.0..=1.0).contains(&n.p) {
            return Err(Error::Model(format!("tree node {i} has p outside [0,1]")));
        }
    }
    Ok(())
}

/// Score cut-offs tuned on held-out data at training time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelThresholds {
    /// Hold for review at or above.
    pub suspect: f32,
    /// Block at or above.
    pub spam: f32,
}

/// The on-disk model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Always `"classifier-model"`.
    pub format: String,
    /// [`MODEL_FORMAT_VERSION`].
    pub version: u32,
    /// Free-text provenance (generator seeds, date, data sizes).
    #[serde(default)]
    pub trained_on: String,
    /// Input schema.
    pub features: Vec<FeatureColumn>,
    /// Parameters.
    pub model: ModelKind,
    /// Tuned thresholds.
    pub thresholds: ModelThresholds,
    /// Held-out comparison of the candidates, for the record.
    #[serde(default)]
    pub selection: serde_json::Value,
}

/// A loaded, validated model ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    file: ModelFile,
    mean: [f32; NUM_FEATURES],
    inv_std: [f32; NUM_FEATURES],
    weights: [f32; NUM_FEATURES],
    /// Trees compiled for scoring (empty for the logistic model).
    compiled: Vec<Vec<Compiled>>,
}

/// A tree node compiled for speed: thresholds moved into raw feature space
/// (`x < t·std + mean` instead of standardizing at every node), the left
/// child implicit (pre-order: it is the next node), 12 bytes per node.
#[derive(Debug, Clone, Copy)]
struct Compiled {
    /// Raw-space threshold, or the leaf probability.
    value: f32,
    /// Right child index.
    right: u32,
    /// Feature index, `u16::MAX` for a leaf.
    feature: u16,
}

fn compile(
    nodes: &[TreeNode],
    mean: &[f32; NUM_FEATURES],
    std: &[f32; NUM_FEATURES],
) -> Result<Vec<Compiled>, Error> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match n.feature {
            None => Ok(Compiled {
                value: n.p,
                right: 0,
                feature: u16::MAX,
            }),
            Some(f) if n.left as usize == i + 1 => {
                let fi = usize::from(f);
                Ok(Compiled {
                    value: n.threshold * std[fi] + mean[fi],
                    right: n.right,
                    feature: f,
                })
            }
            Some(_) => Err(Error::Model(format!(
                "tree node {i}: left child must follow its parent"
            ))),
        })
        .collect()
}

#[inline]
fn walk_compiled(nodes: &[Compiled], x: &FeatureVector) -> f32 {
    let mut i = 0usize;
    while let Some(n) = nodes.get(i) {
        if n.feature == u16::MAX {
            return n.value;
        }
        let v = x.get(usize::from(n.feature)).copied().unwrap_or(0.0);
        i = if v < n.value { i + 1 } else { n.right as usize };
    }
    0.0
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Model {
    /// Validates a model file against this build's feature schema.
    pub fn from_file(file: ModelFile) -> Result<Self, Error> {
        if file.format != "classifier-model" {
            return Err(Error::Model(format!("unknown format {:?}", file.format)));
        }
        if file.version != MODEL_FORMAT_VERSION {
            return Err(Error::Model(format!(
                "model version {} is not supported (this build reads {MODEL_FORMAT_VERSION})",
                file.version
            )));
        }
        if file.features.len() != NUM_FEATURES {
            return Err(Error::Model(format!(
                "model has {} features, this build computes {NUM_FEATURES}",
                file.features.len()
            )));
        }
        let mut mean = [0.0; NUM_FEATURES];
        let mut inv_std = [0.0; NUM_FEATURES];
        for (i, (col, spec)) in file.features.iter().zip(FEATURES.iter()).enumerate() {
            if col.name != spec.name {
                return Err(Error::Model(format!(
                    "feature {i} is {:?} in the model but {:?} in this build",
                    col.name, spec.name
                )));
            }
            if !(col.mean.is_finite() && col.std.is_finite() && col.std > 0.0) {
                return Err(Error::Model(format!(
                    "feature {} has invalid mean/std",
                    col.name
                )));
            }
            mean[i] = col.mean;
            inv_std[i] = 1.0 / col.std;
        }
        let mut weights = [0.0; NUM_FEATURES];
        match &file.model {
            ModelKind::Logistic {
                intercept,
                weights: w,
            } => {
                if w.len() != NUM_FEATURES
                    || !intercept.is_finite()
                    || w.iter().any(|x| !x.is_finite())
                {
                    return Err(Error::Model(
                        "logistic weights do not match the schema".into(),
                    ));
                }
                weights.copy_from_slice(w);
            }
            ModelKind::Tree { nodes } => validate_tree(nodes)?,
            ModelKind::Forest { trees } => {
                if trees.is_empty() {
                    return Err(Error::Model("forest has no trees".into()));
                }
                trees.iter().try_for_each(|t| validate_tree(t))?;
            }
        }
        let t = file.thresholds;
        if !(0.0..=1.0).contains(&t.suspect) || !(0.0..=1.0).contains(&t.spam) || t.suspect > t.spam
        {
            return Err(Error::Model(
                "thresholds must satisfy 0 ≤ suspect ≤ spam ≤ 1".into(),
            ));
        }
        let std: [f32; NUM_FEATURES] = std::array::from_fn(|i| 1.0 / inv_std[i]);
        let compiled = match &file.model {
            ModelKind::Logistic { .. } => Vec::new(),
            ModelKind::Tree { nodes } => vec![compile(nodes, &mean, &std)?],
            ModelKind::Forest { trees } => trees
                .iter()
                .map(|t| compile(t, &mean, &std))
                .collect::<Result<_, _>>()?,
        };
        Ok(Model {
            file,
            mean,
            inv_std,
            weights,
            compiled,
        })
    }

    /// A model that scores everything 0.5: used to compute features for
    /// training, where no model exists yet.
    pub(crate) fn neutral() -> Self {
        let file = ModelFile {
            format: "classifier-model".into(),
            version: MODEL_FORMAT_VERSION,
            trained_on: "neutral".into(),
            features: FEATURES
                .iter()
                .map(|s| FeatureColumn {
                    name: s.name.into(),
                    mean: 0.0,
                    std: 1.0,
                })
                .collect(),
            model: ModelKind::Logistic {
                intercept: 0.0,
                weights: vec![0.0; NUM_FEATURES],
            },
            thresholds: ModelThresholds {
                suspect: 1.0,
                spam: 1.0,
            },
            selection: serde_json::Value::Null,
        };
        Model {
            file,
            mean: [0.0; NUM_FEATURES],
            inv_std: [1.0; NUM_FEATURES],
            weights: [0.0; NUM_FEATURES],
            compiled: Vec::new(),
        }
    }

    /// Parses and validates a model from JSON text.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let file: ModelFile =
            serde_json::from_str(text).map_err(|e| Error::Model(e.to_string()))?;
        Self::from_file(file)
    }

    /// Loads a model file from disk.
    pub fn load(path: &std::path::Path) -> Result<Self, Error> {
        Self::from_json(&std::fs::read_to_string(path)?)
    }

    /// The embedded default model.
    pub fn default_model() -> Result<Self, Error> {
        Self::from_json(DEFAULT_MODEL_JSON)
    }

    /// Pretty JSON for saving.
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(serde_json::to_string_pretty(&self.file)?)
    }

    /// The underlying file (schema, parameters, provenance).
    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// Thresholds tuned at training time.
    pub fn thresholds(&self) -> ModelThresholds {
        self.file.thresholds
    }

    #[inline]
    fn z(&self, x: &FeatureVector, i: usize) -> f32 {
        (x[i] - self.mean[i]) * self.inv_std[i]
    }

    /// Spam probability in [0, 1].
    #[inline]
    pub fn score(&self, x: &FeatureVector) -> f32 {
        match &self.file.model {
            ModelKind::Logistic { intercept, .. } => {
                let mut s = *intercept;
                for i in 0..NUM_FEATURES {
                    s += self.weights[i] * self.z(x, i);
                }
                sigmoid(s)
            }
            ModelKind::Tree { .. } | ModelKind::Forest { .. } => {
                let sum: f32 = self.compiled.iter().map(|t| walk_compiled(t, x)).sum();
                sum / self.compiled.len().max(1) as f32
            }
        }
    }

    /// Walks one tree to its leaf probability, reporting each split's
    /// (feature, probability change) to `on_split`.
    #[inline]
    fn walk(
        &self,
        nodes: &[TreeNode],
        x: &FeatureVector,
        mut on_split: impl FnMut(usize, f32),
    ) -> f32 {
        let mut i = 0usize;
        while let Some(n) = nodes.get(i) {
            let Some(f) = n.feature else { return n.p };
            let f = usize::from(f);
            i = if self.z(x, f) < n.threshold {
                n.left
            } else {
                n.right
            } as usize;
            if let Some(child) = nodes.get(i) {
                on_split(f, child.p - n.p);
            }
        }
        0.0
    }

    /// The `k` features that pushed the score up the most, strongest first.
    pub fn explain(&self, x: &FeatureVector, k: usize) -> Vec<Reason> {
        let mut contrib = [0.0f32; NUM_FEATURES];
        match &self.file.model {
            ModelKind::Logistic { .. } => {
                for (i, c) in contrib.iter_mut().enumerate() {
                    *c = self.weights[i] * self.z(x, i);
                }
            }
            ModelKind::Tree { nodes } => {
                self.walk(nodes, x, |f, d| contrib[f] += d);
            }
            ModelKind::Forest { trees } => {
                let w = 1.0 / trees.len() as f32;
                for t in trees {
                    self.walk(t, x, |f, d| contrib[f] += w * d);
                }
            }
        }
        // top-k by repeated selection: k is tiny, no need to sort all
        let mut out = Vec::with_capacity(k);
        let mut taken = [false; NUM_FEATURES];
        for _ in 0..k {
            let mut best: Option<usize> = None;
            for i in 0..NUM_FEATURES {
                if !taken[i] && contrib[i] > 0.0 && best.is_none_or(|b| contrib[i] > contrib[b]) {
                    best = Some(i);
                }
            }
            let Some(i) = best else { break };
            taken[i] = true;
            out.push(Reason {
                tag: FEATURES[i].name,
                words: FEATURES[i].words,
                value: x[i],
                contribution: contrib[i],
            });
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn logistic(weights: Vec<f32>) -> ModelFile {
        ModelFile {
            format: "classifier-model".into(),
            version: MODEL_FORMAT_VERSION,
            trained_on: String::new(),
            features: FEATURES
                .iter()
                .map(|s| FeatureColumn {
                    name: s.name.into(),
                    mean: 0.0,
                    std: 1.0,
                })
                .collect(),
            model: ModelKind::Logistic {
                intercept: 0.0,
                weights,
            },
            thresholds: ModelThresholds {
                suspect: 0.5,
                spam: 0.9,
            },
            selection: serde_json::Value::Null,
        }
    }

    #[test]
    fn default_model_loads() {
        let m = Model::default_model().unwrap();
        let s = m.score(&[0.0; NUM_FEATURES]);
        assert!((0.0..=1.0).contains(&s));
    }

    #[test]
    fn logistic_scores_and_explains() {
        let mut w = vec![0.0; NUM_FEATURES];
        w[13] = 2.0;
        w[7] = -1.0;
        let m = Model::from_file(logistic(w)).unwrap();
        let mut x = [0.0; NUM_FEATURES];
        assert!((m.score(&x) - 0.5).abs() < 1e-6);
        x[13] = 1.0;
        x[7] = 1.0;
        assert!((m.score(&x) - sigmoid(1.0)).abs() < 1e-6);
        let r = m.explain(&x, 3);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].tag, "SEQUENTIAL_SHARE");
        assert!((r[0].contribution - 2.0).abs() < 1e-6);
        let back = Model::from_json(&m.to_json().unwrap()).unwrap();
        assert_eq!(back.score(&x), m.score(&x));
    }

    #[test]
    fn tree_scores_and_contributions_add_up() {
        let mut file = logistic(vec![0.0; NUM_FEATURES]);
        let leaf = |p| TreeNode {
            feature: None,
            threshold: 0.0,
            left: 0,
            right: 0,
            p,
        };
        file.model = ModelKind::Tree {
            nodes: vec![
                TreeNode {
                    feature: Some(10),
                    threshold: 0.5,
                    left: 1,
                    right: 2,
                    p: 0.3,
                },
                leaf(0.1),
                TreeNode {
                    feature: Some(17),
                    threshold: 0.2,
                    left: 3,
                    right: 4,
                    p: 0.7,
                },
                leaf(0.4),
                leaf(0.95),
            ],
        };
        let m = Model::from_file(file).unwrap();
        let mut x = [0.0; NUM_FEATURES];
        assert_eq!(m.score(&x), 0.1);
        x[10] = 0.9;
        x[17] = 0.9;
        assert_eq!(m.score(&x), 0.95);
        let r = m.explain(&x, 5);
        let total: f32 = r.iter().map(|r| r.contribution).sum();
        assert!((0.3 + total - 0.95).abs() < 1e-6);
    }

    #[test]
    fn schema_mismatch_is_refused() {
        let mut file = logistic(vec![0.0; NUM_FEATURES]);
        file.features.swap(0, 1);
        let e = Model::from_file(file).unwrap_err().to_string();
        assert!(e.contains("feature 0"), "{e}");
        let mut file = logistic(vec![0.0; NUM_FEATURES]);
        file.version = 99;
        assert!(Model::from_file(file).is_err());
        let mut file = logistic(vec![0.0; NUM_FEATURES]);
        file.features[3].std = 0.0;
        assert!(Model::from_file(file).is_err());
        assert!(Model::from_json("{").is_err());
    }
}
