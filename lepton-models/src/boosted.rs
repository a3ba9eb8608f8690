//! Gradient-boosted trees for tables, the family tabular AutoML most often ends with
//! (LightGBM's design): histogram-based, leaf-wise trees, second-order gradients with L1/L2
//! regularization, row and column subsampling, and early stopping on the validation rows.
//! Missing values (NaN) need no imputation: each split sends them to the side that gains
//! more. Categorical features (category codes, see [`lepton_data::CategoricalEncoding::Native`])
//! need no one-hot encoding: a split sends a set of categories left. Classes are fitted with
//! the logistic loss (two classes) or one tree per class and round under the softmax loss,
//! values with the squared error.
//!
//! Written here because no maintained crate on stable Rust has both native categorical
//! splits and multi-class losses (measured in the commit that added it).

mod tree;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use lepton_core::{
    Dataset, Error, Features, Model, ParamValue, Predict, Prediction, Result as CoreResult, Scale,
    SearchSpace, Task, Trial, TrialContext,
};

use crate::bins::{Binned, FeatureBins, gather};
use crate::error::{ModelError, Result};
use crate::head::Head;
use crate::metrics::{self, ConfusionMatrix};
use crate::param;
use crate::training_summary::TrainingSummary;
use tree::{Growth, Tree};

/// Rounds between two checks of the trial's context (pruning, the search's deadline).
const CHECK_EVERY: usize = 10;

/// The hyper-parameters of a [`BoostedModel`]. Serializable; checked before any work starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedConfig {
    /// Shrinkage of each tree's values, in `(0, 1]`.
    pub learning_rate: f64,
    /// Leaves a tree may have (2..=4096).
    pub max_leaves: usize,
    /// Deepest a tree may grow (0: no limit besides the leaves, else 1..=64).
    pub max_depth: usize,
    /// Fewest training rows in a leaf (at least 1).
    pub min_leaf_rows: usize,
    /// Smallest hessian sum in a leaf (at least 0).
    pub min_leaf_hessian: f64,
    /// L1 regularization of the leaf values (at least 0).
    pub l1: f64,
    /// L2 regularization of the leaf values (at least 0).
    pub l2: f64,
    /// Share of the rows each round sees, in `(0, 1]`.
    pub row_subsample: f64,
    /// Share of the features each tree sees, in `(0, 1]` (at least one feature).
    pub col_subsample: f64,
    /// Most boosting rounds (1..=100000); early stopping usually ends sooner.
    pub max_rounds: usize,
    /// Rounds without a better validation loss after which training stops (at least 1).
    pub early_stopping: usize,
    /// Seed of the subsamples.
    pub seed: u64,
}

impl Default for BoostedConfig {
    fn default() -> Self {
        BoostedConfig {
            learning_rate: 0.1,
            max_leaves: 31,
            max_depth: 0,
            min_leaf_rows: 20,
            min_leaf_hessian: 1e-3,
            l1: 0.0,
            l2: 0.0,
            row_subsample: 1.0,
            col_subsample: 1.0,
            max_rounds: 1000,
            early_stopping: 50,
            seed: 0,
        }
    }
}

impl BoostedConfig {
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Refuses values that would make training fail.
    pub fn check(&self) -> Result<()> {
        let share = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(param::invalid(name, format!("{v} is outside (0, 1]")))
            }
        };
        let at_least_zero = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(param::invalid(
                    name,
                    format!("{v} is not a finite number >= 0"),
                ))
            }
        };
        let within = |name: &str, v: usize, low: usize, high: usize| {
            if (low..=high).contains(&v) {
                Ok(())
            } else {
                Err(param::invalid(
                    name,
                    format!("{v} is outside {low}..={high}"),
                ))
            }
        };
        share("learning_rate", self.learning_rate)?;
        share("row_subsample", self.row_subsample)?;
        share("col_subsample", self.col_subsample)?;
        within("max_leaves", self.max_leaves, 2, 4096)?;
        within("max_depth", self.max_depth, 0, 64)?;
        within("min_leaf_rows", self.min_leaf_rows, 1, usize::MAX)?;
        within("max_rounds", self.max_rounds, 1, 100_000)?;
        within("early_stopping", self.early_stopping, 1, usize::MAX)?;
        at_least_zero("min_leaf_hessian", self.min_leaf_hessian)?;
        at_least_zero("l1", self.l1)?;
        at_least_zero("l2", self.l2)
    }

    /// This configuration with the values a trial suggested (names as in [`BoostedSpace`]);
    /// unknown names and values of the wrong type are refused.
    pub fn with_params<K: Borrow<str>>(mut self, params: &BTreeMap<K, ParamValue>) -> Result<Self> {
        param::apply(params, "boosted trees", |name, value| {
            let count = || param::usize_value(name, value);
            let real = || param::f64_value(name, value);
            match name {
                "learning_rate" => self.learning_rate = real()?,
                "max_leaves" => self.max_leaves = count()?,
                "max_depth" => self.max_depth = count()?,
                "min_leaf_rows" => self.min_leaf_rows = count()?,
                "l1" => self.l1 = real()?,
                "l2" => self.l2 = real()?,
                "row_subsample" => self.row_subsample = real()?,
                "col_subsample" => self.col_subsample = real()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.check()?;
        Ok(self)
    }

    fn growth(&self) -> Growth {
        Growth {
            max_leaves: self.max_leaves,
            max_depth: self.max_depth,
            min_leaf_rows: self.min_leaf_rows,
            min_leaf_hessian: self.min_leaf_hessian,
            l1: self.l1,
            l2: self.l2,
            learning_rate: self.learning_rate,
        }
    }
}

/// The booster's search space, the knobs FLAML and Optuna's LightGBM tuner search: learning
/// rate, leaves, depth, leaf size (log scales), L1 and L2 (log scale), row and column
/// subsampling. Rounds are not searched: early stopping picks them. The names match
/// [`BoostedConfig::with_params`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BoostedSpace;

impl BoostedSpace {
    /// The [`BoostedConfig`] defaults within the space (LightGBM's, depth 0 standing for "no
    /// limit" and tiny L1 / L2 for none): a search tries them first.
    pub fn defaults() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("learning_rate".to_owned(), ParamValue::from(0.1)),
            ("max_leaves".to_owned(), ParamValue::from(31i64)),
            ("max_depth".to_owned(), ParamValue::from(0i64)),
            ("min_leaf_rows".to_owned(), ParamValue::from(20i64)),
            ("l1".to_owned(), ParamValue::from(1e-3)),
            ("l2".to_owned(), ParamValue::from(1e-3)),
            ("row_subsample".to_owned(), ParamValue::from(1.0)),
            ("col_subsample".to_owned(), ParamValue::from(1.0)),
        ])
    }
}

impl SearchSpace for BoostedSpace {
    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        trial.suggest_float("learning_rate", 0.01, 0.3, Scale::Log)?;
        trial.suggest_int("max_leaves", 4, 256, Scale::Log)?;
        trial.suggest_int("max_depth", 0, 12, Scale::Linear)?;
        trial.suggest_int("min_leaf_rows", 2, 100, Scale::Log)?;
        trial.suggest_float("l1", 1e-3, 10.0, Scale::Log)?;
        trial.suggest_float("l2", 1e-3, 10.0, Scale::Log)?;
        trial.suggest_float("row_subsample", 0.5, 1.0, Scale::Linear)?;
        trial.suggest_float("col_subsample", 0.3, 1.0, Scale::Linear)?;
        Ok(())
    }
}

/// What the trees predict: raw scores per output, turned into a prediction by the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Loss {
    /// Squared error; one output.
    Squared,
    /// Logistic loss of class 1 of two; one output.
    Logistic,
    /// Softmax cross-entropy; one output per class.
    Softmax { classes: usize },
}

impl Loss {
    fn outputs(self) -> usize {
        match self {
            Loss::Softmax { classes } => classes,
            _ => 1,
        }
    }

    /// Gradients and hessians of every output (`g[k][r]`) for every row, at the round's
    /// start scores.
    fn gradients(self, scores: &[f64], y: &[f64], g: &mut [Vec<f64>], h: &mut [Vec<f64>]) {
        let m = self.outputs();
        for (r, &t) in y.iter().enumerate() {
            let s = &scores[r * m..(r + 1) * m];
            match self {
                Loss::Squared => (g[0][r], h[0][r]) = (s[0] - t, 1.0),
                Loss::Logistic => {
                    let p = sigmoid(s[0]);
                    (g[0][r], h[0][r]) = (p - t, (p * (1.0 - p)).max(1e-16));
                }
                Loss::Softmax { classes } => {
                    let factor = classes as f64 / (classes as f64 - 1.0);
                    for (k, p) in softmax(s).into_iter().enumerate() {
                        let truth = f64::from(u8::from(t as usize == k));
                        g[k][r] = p - truth;
                        h[k][r] = (factor * p * (1.0 - p)).max(1e-16);
                    }
                }
            }
        }
    }

    /// The mean loss of `scores` against `y`.
    fn mean_loss(self, scores: &[f64], y: &[f64]) -> f64 {
        let m = self.outputs();
        let total: f64 = y
            .iter()
            .enumerate()
            .map(|(r, &t)| {
                let s = &scores[r * m..(r + 1) * m];
                match self {
                    Loss::Squared => (s[0] - t).powi(2),
                    Loss::Logistic => {
                        let p = sigmoid(s[0]).clamp(1e-15, 1.0 - 1e-15);
                        if t > 0.5 { -p.ln() } else { -(1.0 - p).ln() }
                    }
                    Loss::Softmax { .. } => -softmax(s)[t as usize].max(1e-15).ln(),
                }
            })
            .sum();
        total / y.len().max(1) as f64
    }

    fn predict(self, s: &[f64]) -> Prediction {
        let class = Prediction::most_probable;
        match self {
            Loss::Squared => Prediction::Value(s[0]),
            Loss::Logistic => {
                let p = sigmoid(s[0]);
                class(vec![(1.0 - p) as f32, p as f32])
            }
            Loss::Softmax { .. } => class(softmax(s).into_iter().map(|p| p as f32).collect()),
        }
    }
}

fn sigmoid(s: f64) -> f64 {
    1.0 / (1.0 + (-s).exp())
}

fn softmax(s: &[f64]) -> Vec<f64> {
    let top = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - top).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// A gradient-boosted tree ensemble for the task of the training data.
#[derive(Debug, Clone)]
pub struct BoostedModel {
    config: BoostedConfig,
    categorical: Vec<usize>,
    time_limit: Option<Duration>,
}

impl BoostedModel {
    /// A model with a checked configuration, every feature numeric.
    pub fn new(config: BoostedConfig) -> Result<Self> {
        config.check()?;
        Ok(BoostedModel {
            config,
            categorical: Vec::new(),
            time_limit: None,
        })
    }

    /// The features (by index) that hold category codes (0, 1, ...; NaN where missing).
    pub fn with_categorical(mut self, features: Vec<usize>) -> Self {
        self.categorical = features;
        self
    }

    /// Stops adding rounds once `limit` has passed (the trees so far are kept).
    pub fn with_time_limit(mut self, limit: Option<Duration>) -> Self {
        self.time_limit = limit;
        self
    }

    /// Boosts on `train` until early stopping on `valid` (or `max_rounds` when `valid` is
    /// empty), then scores the kept rounds on `valid`, reported to `ctx` as step 1.
    pub fn train(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> Result<FittedBoosted> {
        let started = Instant::now();
        let schema = train.schema();
        if valid.schema() != schema && !valid.is_empty() {
            return Err(ModelError::InvalidData(
                "training and validation data have different schemas".into(),
            ));
        }
        let width = schema.features.len();
        if train.is_empty() || width == 0 {
            return Err(ModelError::InvalidData(
                "boosted trees need training rows with at least one feature".into(),
            ));
        }
        if let Some(f) = self.categorical.iter().find(|&&f| f >= width) {
            return Err(ModelError::InvalidData(format!(
                "categorical feature {f} is not one of the {width} features"
            )));
        }
        let (x, y, loss, head) = gathered(train, width)?;
        let (valid_x, valid_y) = if valid.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let (x, y, ..) = gathered(valid, width)?;
            (x, y)
        };
        let binned = Binned::fit(&x, width, &self.categorical)?;
        let valid_bins = Binned::rows(&binned.bins, &valid_x);
        let rows = y.len();
        let outputs = loss.outputs();
        let base = base_scores(loss, &y);
        let mut scores: Vec<f64> = (0..rows).flat_map(|_| base.iter().copied()).collect();
        let mut valid_scores: Vec<f64> = (0..valid_y.len())
            .flat_map(|_| base.iter().copied())
            .collect();
        let growth = self.config.growth();
        let mut rng = StdRng::seed_from_u64(self.config.seed);
        let (mut g, mut h) = (
            vec![vec![0.0; rows]; outputs],
            vec![vec![0.0; rows]; outputs],
        );
        let mut trees: Vec<Tree> = Vec::new();
        let (mut best_round, mut best_loss) = (0usize, f64::INFINITY);
        let n_features =
            ((width as f64 * self.config.col_subsample).ceil() as usize).clamp(1, width);
        let mut rounds = 0;
        while rounds < self.config.max_rounds {
            let sampled: Vec<u32> = if self.config.row_subsample < 1.0 {
                (0..rows as u32)
                    .filter(|_| rng.random::<f64>() < self.config.row_subsample)
                    .collect()
            } else {
                (0..rows as u32).collect()
            };
            loss.gradients(&scores, &y, &mut g, &mut h);
            for k in 0..outputs {
                let mut features = sample(&mut rng, width, n_features).into_vec();
                features.sort_unstable();
                let tree = growth.grow(&binned, &g[k], &h[k], sampled.clone(), &features);
                for r in 0..rows {
                    scores[r * outputs + k] += tree.value(|f| binned.columns[f][r]);
                }
                for r in 0..valid_y.len() {
                    valid_scores[r * outputs + k] += tree.value(|f| valid_bins[r * width + f]);
                }
                trees.push(tree);
            }
            rounds += 1;
            if valid_y.is_empty() {
                best_round = rounds;
            } else {
                let l = loss.mean_loss(&valid_scores, &valid_y);
                if l < best_loss - 1e-12 {
                    (best_round, best_loss) = (rounds, l);
                } else if rounds - best_round >= self.config.early_stopping {
                    break;
                }
            }
            if self.time_limit.is_some_and(|t| started.elapsed() >= t) {
                break;
            }
            if rounds % CHECK_EVERY == 0 && ctx.should_prune() {
                return Err(Error::Pruned {
                    step: rounds as u64,
                }
                .into());
            }
        }
        trees.truncate(best_round.max(1) * outputs);
        let train_seconds = started.elapsed().as_secs_f64();
        let mut fitted = FittedBoosted {
            config: self.config.clone(),
            head,
            model: Arc::new(Trees {
                loss,
                base,
                bins: binned.bins,
                trees,
            }),
            summary: TrainingSummary {
                epochs_run: rounds,
                best_epoch: best_round.max(1),
                best_valid_score: None,
                best_valid_loss: None,
                best_valid_confusion: None,
                final_train_loss: loss.mean_loss(&scores, &y),
                train_seconds,
                valid_seconds: 0.0,
            },
        };
        if !valid.is_empty() {
            let started = Instant::now();
            let found = fitted.validation(&valid_x, &valid_y)?;
            fitted
                .summary
                .validated_once(found, started.elapsed(), ctx)?;
        }
        Ok(fitted)
    }
}

impl Model for BoostedModel {
    type Fitted = FittedBoosted;

    fn fit(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> CoreResult<FittedBoosted> {
        Ok(self.train(train, valid, ctx)?)
    }
}

/// Row-major features, targets as numbers (class indices or values), the loss and the head.
fn gathered(data: &dyn Dataset, width: usize) -> Result<(Vec<f32>, Vec<f64>, Loss, Head)> {
    let (x, y) = gather(data, width)?;
    let task = &data.schema().task;
    let (loss, head) = match task {
        Task::Classification { classes } => {
            let mut present = vec![false; classes.len()];
            for &c in &y {
                present[c as usize] = true;
            }
            let n = present.iter().filter(|&&p| p).count();
            if n < 2 && !y.is_empty() {
                return Err(ModelError::InvalidData(format!(
                    "classification needs at least 2 classes in the training rows, they have {n}"
                )));
            }
            let count = classes.len();
            let loss = if count == 2 {
                Loss::Logistic
            } else {
                Loss::Softmax { classes: count }
            };
            (loss, Head::Classes { count })
        }
        Task::Regression => {
            let n = y.len().max(1) as f64;
            let mean = y.iter().sum::<f64>() / n;
            let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            (
                Loss::Squared,
                Head::Value {
                    mean,
                    sd: if sd > 1e-12 { sd } else { 1.0 },
                },
            )
        }
    };
    Ok((x, y, loss, head))
}

/// The constant scores boosting starts from: the mean, the log-odds, or the log class shares
/// (each class counted half a row more, so that an absent class has a finite score).
fn base_scores(loss: Loss, y: &[f64]) -> Vec<f64> {
    let n = y.len() as f64;
    match loss {
        Loss::Squared => vec![y.iter().sum::<f64>() / n],
        Loss::Logistic => {
            let p = (y.iter().sum::<f64>() + 0.5) / (n + 1.0);
            vec![(p / (1.0 - p)).ln()]
        }
        Loss::Softmax { classes } => {
            let mut counts = vec![0.5; classes];
            for &c in y {
                counts[c as usize] += 1.0;
            }
            let total: f64 = counts.iter().sum();
            counts.iter().map(|c| (c / total).ln()).collect()
        }
    }
}

/// The learnt ensemble: loss, starting scores, bins and trees (round-major, one per output).
#[derive(Debug, Serialize, Deserialize)]
struct Trees {
    loss: Loss,
    base: Vec<f64>,
    bins: Vec<FeatureBins>,
    trees: Vec<Tree>,
}

/// A trained booster, ready to predict; saved and restored exactly as bytes. Clones share the
/// trees.
#[derive(Debug, Clone)]
pub struct FittedBoosted {
    config: BoostedConfig,
    head: Head,
    model: Arc<Trees>,
    summary: TrainingSummary,
}

impl FittedBoosted {
    /// The configuration it was trained with.
    pub fn config(&self) -> &BoostedConfig {
        &self.config
    }

    /// Rounds run and kept, training time and loss, and the validation score.
    pub fn summary(&self) -> &TrainingSummary {
        &self.summary
    }

    /// Features per row.
    pub fn n_features(&self) -> usize {
        self.model.bins.len()
    }

    /// The classes it predicts, or the training target's mean and sd.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Trees kept (one per class and round for several classes).
    pub fn n_trees(&self) -> usize {
        self.model.trees.len()
    }

    /// The bins and trees as bytes (JSON).
    pub fn trees_to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&*self.model).map_err(|e| ModelError::Weights(e.to_string()))
    }

    /// Rebuilds a booster from its configuration, shape and saved trees; refuses trees that do
    /// not match them.
    pub fn from_bytes(
        config: BoostedConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
        bytes: &[u8],
    ) -> Result<Self> {
        config.check()?;
        let model: Trees =
            serde_json::from_slice(bytes).map_err(|e| ModelError::Weights(e.to_string()))?;
        let fits_head = match (model.loss, head) {
            (Loss::Squared, Head::Value { .. }) => true,
            (Loss::Logistic, Head::Classes { count }) => count == 2,
            (Loss::Softmax { classes }, Head::Classes { count }) => classes == count,
            _ => false,
        };
        let outputs = model.loss.outputs();
        if !fits_head
            || model.bins.len() != n_features
            || model.base.len() != outputs
            || !model.trees.len().is_multiple_of(outputs)
            || !model.trees.iter().all(|t| t.fits(&model.bins))
        {
            return Err(ModelError::Weights(format!(
                "the saved trees do not fit a booster on {n_features} features with head {head:?}"
            )));
        }
        Ok(FittedBoosted {
            config,
            head,
            model: Arc::new(model),
            summary,
        })
    }

    fn scores(&self, x: &[f32]) -> Vec<f64> {
        let m = &*self.model;
        let width = m.bins.len();
        let outputs = m.loss.outputs();
        let bins = Binned::rows(&m.bins, x);
        let rows = x.len() / width;
        let mut scores: Vec<f64> = (0..rows).flat_map(|_| m.base.iter().copied()).collect();
        for (i, tree) in m.trees.iter().enumerate() {
            let k = i % outputs;
            for r in 0..rows {
                scores[r * outputs + k] += tree.value(|f| bins[r * width + f]);
            }
        }
        scores
    }

    fn predictions(&self, x: &[f32]) -> Vec<Prediction> {
        let outputs = self.model.loss.outputs();
        self.scores(x)
            .chunks(outputs)
            .map(|s| self.model.loss.predict(s))
            .collect()
    }

    /// Score (accuracy or R²), loss (log-loss or mean squared error) and, for classes, the
    /// confusion matrix on rows `x` with targets `y`.
    fn validation(&self, x: &[f32], y: &[f64]) -> Result<(f64, f64, Option<ConfusionMatrix>)> {
        metrics::head_scores(self.head, y, &self.predictions(x))
    }
}

impl Predict for FittedBoosted {
    fn predict(&self, x: Features<'_>) -> CoreResult<Vec<Prediction>> {
        if x.n_features() != self.n_features() {
            return Err(Error::InvalidInput(format!(
                "rows have {} features, the booster expects {}",
                x.n_features(),
                self.n_features()
            )));
        }
        Ok(self.predictions(x.values()))
    }
}

#[cfg(test)]
mod tests {
    use lepton_core::{DetachedContext, Schema, Target};
    use lepton_data::TabularDataset;

    use super::*;

    fn table(rows: Vec<Vec<f32>>, targets: Vec<Target>, task: Task) -> TabularDataset {
        let schema = Schema {
            features: (0..rows[0].len()).map(|i| format!("x{i}")).collect(),
            target: "y".into(),
            task,
        };
        TabularDataset::with_missing(schema, rows.concat(), targets).unwrap()
    }

    fn two_classes() -> Task {
        Task::Classification {
            classes: vec!["no".into(), "yes".into()],
        }
    }

    fn accuracy(fitted: &FittedBoosted, data: &TabularDataset) -> f64 {
        let p = fitted
            .predict(Features::with_missing(data.feature_values(), data.n_features()).unwrap())
            .unwrap();
        let right = p
            .iter()
            .zip(data.targets())
            .filter(|(p, t)| matches!((p, t), (Prediction::Class { index, .. }, Target::Class(c)) if index == c))
            .count();
        right as f64 / p.len() as f64
    }

    /// XOR of the signs of two uniform features, with a distractor feature.
    fn xor(n: usize, seed: u64) -> TabularDataset {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut rows, mut targets) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (a, b): (f32, f32) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
            rows.push(vec![a, b, rng.random()]);
            targets.push(Target::Class(usize::from((a > 0.0) != (b > 0.0))));
        }
        table(rows, targets, two_classes())
    }

    #[test]
    fn it_learns_an_interaction_no_single_feature_shows() {
        let (train, valid) = (xor(2000, 1), xor(500, 2));
        let fitted = BoostedModel::new(BoostedConfig::default())
            .unwrap()
            .train(&train, &valid, &mut DetachedContext::new())
            .unwrap();
        assert!(accuracy(&fitted, &valid) > 0.97, "{:?}", fitted.summary());
        // A stump (one split a tree, no interactions) cannot.
        let stumps = BoostedConfig {
            max_leaves: 2,
            ..BoostedConfig::default()
        };
        let fitted = BoostedModel::new(stumps)
            .unwrap()
            .train(&train, &valid, &mut DetachedContext::new())
            .unwrap();
        assert!(accuracy(&fitted, &valid) < 0.7);
    }

    #[test]
    fn missing_values_and_categories_need_no_encoding() {
        // y is 1 for categories 3 and 7 of feature 0, or when feature 1 is missing.
        let (mut rows, mut targets) = (Vec::new(), Vec::new());
        for i in 0..3000 {
            let category = (i % 10) as f32;
            let value = if i % 7 == 0 {
                f32::NAN
            } else {
                (i % 13) as f32
            };
            rows.push(vec![category, value]);
            let yes = category == 3.0 || category == 7.0 || value.is_nan();
            targets.push(Target::Class(usize::from(yes)));
        }
        let data = table(rows, targets, two_classes());
        let (train, valid) = (
            data.select(&(0..2400).collect::<Vec<_>>()).unwrap(),
            data.select(&(2400..3000).collect::<Vec<_>>()).unwrap(),
        );
        let fitted = BoostedModel::new(BoostedConfig::default())
            .unwrap()
            .with_categorical(vec![0])
            .train(&train, &valid, &mut DetachedContext::new())
            .unwrap();
        assert_eq!(accuracy(&fitted, &valid), 1.0);
        // An unseen category and a missing one are answered, not refused.
        let p = fitted
            .predict(Features::with_missing(&[42.0, 1.0, f32::NAN, f32::NAN], 2).unwrap())
            .unwrap();
        assert!(matches!(p[1], Prediction::Class { index: 1, .. }), "{p:?}");
        let Prediction::Class { probabilities, .. } = &p[0] else {
            panic!("{p:?}")
        };
        assert!(probabilities.iter().all(|q| q.is_finite()));
    }

    #[test]
    fn early_stopping_keeps_the_best_round_and_refits_for_a_fixed_count() {
        // Pure noise: the validation loss is best after very few rounds.
        let noise = |n: usize, seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed);
            let rows: Vec<Vec<f32>> = (0..n).map(|_| vec![rng.random(), rng.random()]).collect();
            let targets = (0..n)
                .map(|_| Target::Class(usize::from(rng.random::<bool>())))
                .collect();
            table(rows, targets, two_classes())
        };
        let config = BoostedConfig {
            early_stopping: 10,
            ..BoostedConfig::default()
        };
        let fitted = BoostedModel::new(config.clone())
            .unwrap()
            .train(&noise(600, 1), &noise(300, 2), &mut DetachedContext::new())
            .unwrap();
        let s = fitted.summary();
        assert!(s.epochs_run < 100, "{s:?}");
        assert_eq!(s.epochs_run, s.best_epoch + 10, "{s:?}");
        assert_eq!(fitted.n_trees(), s.best_epoch);
        // Without validation rows it runs max_rounds.
        let fixed = BoostedConfig {
            max_rounds: 7,
            ..config
        };
        let empty = noise(1, 3).select(&[]).unwrap();
        let fitted = BoostedModel::new(fixed)
            .unwrap()
            .train(&noise(600, 1), &empty, &mut DetachedContext::new())
            .unwrap();
        assert_eq!((fitted.summary().epochs_run, fitted.n_trees()), (7, 7));
    }

    #[test]
    fn regression_and_several_classes_fit_and_survive_saving() {
        let rows: Vec<Vec<f32>> = (0..900)
            .map(|i| vec![(i % 30) as f32, (i / 30) as f32])
            .collect();
        let values = rows
            .iter()
            .map(|r| Target::Value(f64::from(r[0] * r[0]) - 3.0 * f64::from(r[1])))
            .collect();
        let data = table(rows.clone(), values, Task::Regression);
        let fitted = BoostedModel::new(BoostedConfig::default())
            .unwrap()
            .train(&data, &data, &mut DetachedContext::new())
            .unwrap();
        assert!(fitted.summary().best_valid_score.unwrap() > 0.99);
        let classes = rows
            .iter()
            .map(|r| Target::Class((r[0] as usize / 10 + usize::from(r[1] >= 20.0)) % 3))
            .collect();
        let task = Task::Classification {
            classes: vec!["a".into(), "b".into(), "c".into()],
        };
        let data = table(rows, classes, task);
        let fitted = BoostedModel::new(BoostedConfig::default())
            .unwrap()
            .train(&data, &data, &mut DetachedContext::new())
            .unwrap();
        assert!(
            accuracy(&fitted, &data) > 0.99,
            "{}",
            accuracy(&fitted, &data)
        );
        assert_eq!(fitted.n_trees() % 3, 0);
        let bytes = fitted.trees_to_bytes().unwrap();
        let back = FittedBoosted::from_bytes(
            fitted.config().clone(),
            2,
            fitted.head(),
            fitted.summary().clone(),
            &bytes,
        )
        .unwrap();
        let x = Features::new(data.feature_values(), 2).unwrap();
        assert_eq!(back.predict(x).unwrap(), fitted.predict(x).unwrap());
        // Trees that do not fit the shape are refused.
        let wrong = FittedBoosted::from_bytes(
            fitted.config().clone(),
            3,
            fitted.head(),
            fitted.summary().clone(),
            &bytes,
        );
        assert!(wrong.is_err());
        // A split that points back at itself (a hostile file) is refused, not walked forever.
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["trees"][0]["nodes"][0]["Split"]["left"] = 0.into();
        let looped = FittedBoosted::from_bytes(
            fitted.config().clone(),
            2,
            fitted.head(),
            fitted.summary().clone(),
            &serde_json::to_vec(&json).unwrap(),
        );
        assert!(looped.is_err());
    }

    #[test]
    fn bad_parameters_and_data_are_refused_with_reasons() {
        for bad in [
            BoostedConfig {
                learning_rate: 0.0,
                ..BoostedConfig::default()
            },
            BoostedConfig {
                max_leaves: 1,
                ..BoostedConfig::default()
            },
            BoostedConfig {
                l2: f64::NAN,
                ..BoostedConfig::default()
            },
        ] {
            assert!(BoostedModel::new(bad).is_err());
        }
        let unknown = BTreeMap::from([("depth".to_owned(), ParamValue::from(3i64))]);
        assert!(BoostedConfig::default().with_params(&unknown).is_err());
        let one_class = table(
            vec![vec![1.0], vec![2.0]],
            vec![Target::Class(0); 2],
            two_classes(),
        );
        let err = BoostedModel::new(BoostedConfig::default())
            .unwrap()
            .train(&one_class, &one_class, &mut DetachedContext::new())
            .unwrap_err();
        assert!(err.to_string().contains("at least 2 classes"), "{err}");
        let halves = table(
            vec![vec![0.5], vec![1.0]],
            vec![Target::Class(0), Target::Class(1)],
            two_classes(),
        );
        let err = BoostedModel::new(BoostedConfig::default())
            .unwrap()
            .with_categorical(vec![0])
            .train(&halves, &halves, &mut DetachedContext::new())
            .unwrap_err();
        assert!(err.to_string().contains("category code"), "{err}");
    }
}
