//! A tree-ensemble baseline for tables, what tabular users compare neural nets against:
//! bagged CART trees (smartcore's), each grown on a stratified bootstrap sample of the rows and
//! a random subset of the features (random subspaces). Classes are predicted by the trees'
//! averaged votes, values by their mean. smartcore's own random forest is not used because it
//! exposes no class probabilities (it returns the majority vote only).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters,
};
use smartcore::tree::decision_tree_regressor::{
    DecisionTreeRegressor, DecisionTreeRegressorParameters,
};

use lepton_core::{
    Dataset, Error, Features, Model, ParamValue, Predict, Prediction, Result as CoreResult, Scale,
    SearchSpace, Target, Task, Trial, TrialContext,
};

use crate::error::{ModelError, Result};
use crate::fitted_mlp::Head;
use crate::metrics::{self, ConfusionMatrix};
use crate::param;
use crate::training::TrainingSummary;

/// The hyper-parameters of a [`ForestModel`]. Serialisable; checked before any work starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    /// Trees in the ensemble (1..=1000).
    pub n_trees: usize,
    /// Deepest a tree may grow (0: no limit, else 1..=64).
    pub max_depth: usize,
    /// Fewest training rows in a leaf (at least 1).
    pub min_samples_leaf: usize,
    /// Share of the features each tree sees, in `(0, 1]` (at least one feature).
    pub feature_fraction: f64,
    /// Seed of the bootstrap samples, the feature subsets and the trees.
    pub seed: u64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        ForestConfig {
            n_trees: 100,
            max_depth: 0,
            min_samples_leaf: 1,
            feature_fraction: 0.5,
            seed: 0,
        }
    }
}

impl ForestConfig {
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Refuses values that would make training fail.
    pub fn check(&self) -> Result<()> {
        if !(1..=1000).contains(&self.n_trees) {
            return Err(param::invalid(
                "n_trees",
                format!("{} is outside 1..=1000", self.n_trees),
            ));
        }
        if self.max_depth > 64 {
            return Err(param::invalid(
                "max_depth",
                format!("{} is above 64", self.max_depth),
            ));
        }
        if self.min_samples_leaf == 0 {
            return Err(param::invalid(
                "min_samples_leaf",
                "must be at least 1".into(),
            ));
        }
        let f = self.feature_fraction;
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            return Err(param::invalid(
                "feature_fraction",
                format!("{f} is outside (0, 1]"),
            ));
        }
        Ok(())
    }

    /// This configuration with the values a trial suggested (names as in [`ForestSpace`]);
    /// unknown names and values of the wrong type are refused.
    pub fn with_params<K: Borrow<str>>(mut self, params: &BTreeMap<K, ParamValue>) -> Result<Self> {
        param::apply(params, "forest", |name, value| {
            let count = || param::usize_value(name, value);
            match name {
                "n_trees" => self.n_trees = count()?,
                "max_depth" => self.max_depth = count()?,
                "min_samples_leaf" => self.min_samples_leaf = count()?,
                "feature_fraction" => self.feature_fraction = param::f64_value(name, value)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.check()?;
        Ok(self)
    }

    fn max_depth(&self) -> Option<u16> {
        (self.max_depth > 0).then_some(self.max_depth as u16)
    }
}

/// The forest's search space: trees (log scale), depth, leaf size (log scale) and the
/// feature share. The names match [`ForestConfig::with_params`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ForestSpace;

impl ForestSpace {
    /// The [`ForestConfig`] defaults within the space (depth 16 standing for "no limit"):
    /// a search may try them first.
    pub fn defaults() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("n_trees".to_owned(), ParamValue::from(100i64)),
            ("max_depth".to_owned(), ParamValue::from(16i64)),
            ("min_samples_leaf".to_owned(), ParamValue::from(1i64)),
            ("feature_fraction".to_owned(), ParamValue::from(0.5)),
        ])
    }
}

impl SearchSpace for ForestSpace {
    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        trial.suggest_int("n_trees", 20, 300, Scale::Log)?;
        trial.suggest_int("max_depth", 2, 24, Scale::Linear)?;
        trial.suggest_int("min_samples_leaf", 1, 16, Scale::Log)?;
        trial.suggest_float("feature_fraction", 0.1, 1.0, Scale::Linear)?;
        Ok(())
    }
}

type ClassTree = DecisionTreeClassifier<f32, u32, DenseMatrix<f32>, Vec<u32>>;
type ValueTree = DecisionTreeRegressor<f32, f64, DenseMatrix<f32>, Vec<f64>>;

/// The grown trees, each with the feature columns it was grown on.
#[derive(Debug, Serialize, Deserialize)]
enum Trees {
    /// Classification: `classes[j]` is the class of a tree's `j`-th vote column (every tree
    /// saw every class of the training rows: the bootstrap samples are stratified).
    Classes {
        count: usize,
        classes: Vec<usize>,
        trees: Vec<(Vec<usize>, ClassTree)>,
    },
    /// Regression.
    Values { trees: Vec<(Vec<usize>, ValueTree)> },
}

/// A tree ensemble for the task of the training data (classification or regression).
#[derive(Debug, Clone)]
pub struct ForestModel {
    config: ForestConfig,
}

impl ForestModel {
    /// A model with a checked configuration.
    pub fn new(config: ForestConfig) -> Result<Self> {
        config.check()?;
        Ok(ForestModel { config })
    }

    /// Grows the trees on `train` and scores them on `valid` (accuracy or R², reported to
    /// `ctx` as step 1; may be empty).
    pub fn train(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> Result<FittedForest> {
        let schema = train.schema();
        if valid.schema() != schema && !valid.is_empty() {
            return Err(ModelError::InvalidData(
                "training and validation data have different schemas".into(),
            ));
        }
        let n_features = schema.features.len();
        if train.is_empty() || n_features == 0 {
            return Err(ModelError::InvalidData(
                "a forest needs training rows with at least one feature".into(),
            ));
        }
        let mut x = Vec::with_capacity(train.len() * n_features);
        let mut targets = Vec::with_capacity(train.len());
        for i in 0..train.len() {
            let (Some(row), Some(t)) = (train.features(i), train.target(i)) else {
                return Err(ModelError::InvalidData(format!("row {i} is missing")));
            };
            if row.len() != n_features || row.iter().any(|v| !v.is_finite()) {
                return Err(ModelError::InvalidData(format!(
                    "row {i} has {} values or a non-finite one; the data has {n_features} features",
                    row.len()
                )));
            }
            x.extend_from_slice(row);
            targets.push(t);
        }
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(self.config.seed);
        let m = ((n_features as f64 * self.config.feature_fraction).ceil() as usize)
            .clamp(1, n_features);
        let columns_for = |rng: &mut StdRng| {
            let mut all: Vec<usize> = (0..n_features).collect();
            all.shuffle(rng);
            let mut cols = all[..m].to_vec();
            cols.sort_unstable();
            cols
        };
        let matrix = |rows: &[usize], cols: &[usize]| select(&x, n_features, rows, cols);
        let (trees, head) = match &schema.task {
            Task::Classification { classes } => {
                let count = classes.len();
                let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); count];
                for (i, t) in targets.iter().enumerate() {
                    match t {
                        Target::Class(c) if *c < count => by_class[*c].push(i),
                        other => {
                            return Err(ModelError::InvalidData(format!(
                                "row {i}: target {other:?} is not one of {count} classes"
                            )));
                        }
                    }
                }
                let present: Vec<usize> = (0..count).filter(|&c| !by_class[c].is_empty()).collect();
                if present.len() < 2 {
                    return Err(ModelError::InvalidData(format!(
                        "classification needs at least 2 classes in the training rows, they have {}",
                        present.len()
                    )));
                }
                let mut trees = Vec::with_capacity(self.config.n_trees);
                for _ in 0..self.config.n_trees {
                    stop_if_asked(ctx)?;
                    let mut rows = Vec::with_capacity(train.len());
                    for members in by_class.iter().filter(|m| !m.is_empty()) {
                        for _ in 0..members.len() {
                            rows.push(members[rng.random_range(0..members.len())]);
                        }
                    }
                    let cols = columns_for(&mut rng);
                    let y: Vec<u32> = rows
                        .iter()
                        .map(|&r| match targets[r] {
                            Target::Class(c) => c as u32,
                            Target::Value(_) => 0,
                        })
                        .collect();
                    let params = DecisionTreeClassifierParameters {
                        max_depth: self.config.max_depth(),
                        min_samples_leaf: self.config.min_samples_leaf,
                        seed: Some(rng.next_u64()),
                        ..DecisionTreeClassifierParameters::default()
                    };
                    let tree = ClassTree::fit(&matrix(&rows, &cols)?, &y, params)
                        .map_err(|e| ModelError::InvalidData(e.to_string()))?;
                    trees.push((cols, tree));
                }
                (
                    Trees::Classes {
                        count,
                        classes: present,
                        trees,
                    },
                    Head::Classes { count },
                )
            }
            Task::Regression => {
                let mut y_all = Vec::with_capacity(targets.len());
                for (i, t) in targets.iter().enumerate() {
                    match t {
                        Target::Value(v) if v.is_finite() => y_all.push(*v),
                        other => {
                            return Err(ModelError::InvalidData(format!(
                                "row {i}: target {other:?} is not a finite number"
                            )));
                        }
                    }
                }
                let n = y_all.len() as f64;
                let mean = y_all.iter().sum::<f64>() / n;
                let sd = (y_all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
                let mut trees = Vec::with_capacity(self.config.n_trees);
                for _ in 0..self.config.n_trees {
                    stop_if_asked(ctx)?;
                    let rows: Vec<usize> = (0..y_all.len())
                        .map(|_| rng.random_range(0..y_all.len()))
                        .collect();
                    let cols = columns_for(&mut rng);
                    let y: Vec<f64> = rows.iter().map(|&r| y_all[r]).collect();
                    let params = DecisionTreeRegressorParameters {
                        max_depth: self.config.max_depth(),
                        min_samples_leaf: self.config.min_samples_leaf,
                        seed: Some(rng.next_u64()),
                        ..DecisionTreeRegressorParameters::default()
                    };
                    let tree = ValueTree::fit(&matrix(&rows, &cols)?, &y, params)
                        .map_err(|e| ModelError::InvalidData(e.to_string()))?;
                    trees.push((cols, tree));
                }
                (
                    Trees::Values { trees },
                    Head::Value {
                        mean,
                        sd: if sd > 1e-12 { sd } else { 1.0 },
                    },
                )
            }
        };
        let mut fitted = FittedForest {
            config: self.config.clone(),
            n_features,
            head,
            trees: Arc::new(trees),
            summary: TrainingSummary {
                epochs_run: 1,
                best_epoch: 1,
                best_valid_score: None,
                best_valid_loss: None,
                best_valid_confusion: None,
                final_train_loss: f64::NAN,
                train_seconds: started.elapsed().as_secs_f64(),
                valid_seconds: 0.0,
            },
        };
        // The training loss: log-loss (or squared error) of the grown forest on its own rows.
        fitted.summary.final_train_loss = fitted.validation(train)?.1;
        if !valid.is_empty() {
            let started = Instant::now();
            let found = fitted.validation(valid)?;
            fitted
                .summary
                .validated_once(found, started.elapsed(), ctx)?;
        }
        Ok(fitted)
    }
}

impl Model for ForestModel {
    type Fitted = FittedForest;

    fn fit(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> CoreResult<FittedForest> {
        Ok(self.train(train, valid, ctx)?)
    }
}

/// A grown forest, ready to predict; saved and restored exactly as bytes. Clones share the
/// trees, which never change once grown.
#[derive(Debug, Clone)]
pub struct FittedForest {
    config: ForestConfig,
    n_features: usize,
    head: Head,
    trees: Arc<Trees>,
    summary: TrainingSummary,
}

impl FittedForest {
    /// The configuration it was grown with.
    pub fn config(&self) -> &ForestConfig {
        &self.config
    }

    /// Training time, loss on the training rows, and the validation score (one "epoch").
    pub fn summary(&self) -> &TrainingSummary {
        &self.summary
    }

    /// Features per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The classes it predicts, or the training target's mean and sd.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The trees as bytes (JSON).
    pub fn trees_to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&*self.trees).map_err(|e| ModelError::Weights(e.to_string()))
    }

    /// Rebuilds a forest from its configuration, shape and saved trees; refuses trees that do
    /// not match them.
    pub fn from_bytes(
        config: ForestConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
        bytes: &[u8],
    ) -> Result<Self> {
        config.check()?;
        let trees: Trees =
            serde_json::from_slice(bytes).map_err(|e| ModelError::Weights(e.to_string()))?;
        let (n_trees, columns_ok, head_ok) = match (&trees, head) {
            (
                Trees::Classes {
                    count,
                    classes,
                    trees,
                },
                Head::Classes { count: h },
            ) => (
                trees.len(),
                trees.iter().all(|(c, _)| c.iter().all(|&c| c < n_features)),
                *count == h && classes.iter().all(|&c| c < h),
            ),
            (Trees::Values { trees }, Head::Value { .. }) => (
                trees.len(),
                trees.iter().all(|(c, _)| c.iter().all(|&c| c < n_features)),
                true,
            ),
            _ => (0, false, false),
        };
        if n_trees != config.n_trees || !columns_ok || !head_ok {
            return Err(ModelError::Weights(format!(
                "{n_trees} trees do not fit a forest of {} trees on {n_features} features with \
                 head {head:?}",
                config.n_trees
            )));
        }
        Ok(FittedForest {
            config,
            n_features,
            head,
            trees: Arc::new(trees),
            summary,
        })
    }

    /// Accuracy (or R²) and log-loss (or mean squared error) on `data`.
    /// Score, loss and (classification) confusion matrix on `data`.
    fn validation(&self, data: &dyn Dataset) -> Result<(f64, f64, Option<ConfusionMatrix>)> {
        let mut x = Vec::with_capacity(data.len() * self.n_features);
        let mut targets = Vec::with_capacity(data.len());
        for i in 0..data.len() {
            let (Some(row), Some(t)) = (data.features(i), data.target(i)) else {
                return Err(ModelError::InvalidData(format!("row {i} is missing")));
            };
            x.extend_from_slice(row);
            targets.push(t);
        }
        let predictions = self.predict_values(&x)?;
        let truth: Vec<f64> = targets
            .iter()
            .map(|t| match t {
                Target::Value(v) => *v,
                Target::Class(c) => *c as f64,
            })
            .collect();
        metrics::head_scores(self.head, &truth, &predictions)
    }

    fn predict_values(&self, x: &[f32]) -> Result<Vec<Prediction>> {
        let rows = x.len() / self.n_features;
        let all: Vec<usize> = (0..rows).collect();
        let matrix = |cols: &[usize]| select(x, self.n_features, &all, cols);
        match &*self.trees {
            Trees::Classes {
                count,
                classes,
                trees,
            } => {
                let mut votes = vec![0.0f64; rows * count];
                for (cols, tree) in trees {
                    let p = tree
                        .predict_proba(&matrix(cols)?)
                        .map_err(|e| ModelError::InvalidData(e.to_string()))?;
                    for r in 0..rows {
                        for (j, &class) in classes.iter().enumerate() {
                            votes[r * count + class] += *p.get((r, j));
                        }
                    }
                }
                let n = trees.len().max(1) as f64;
                Ok(votes
                    .chunks(*count)
                    .map(|v| {
                        let probabilities: Vec<f32> = v.iter().map(|&s| (s / n) as f32).collect();
                        let index = probabilities
                            .iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .map_or(0, |(i, _)| i);
                        Prediction::Class {
                            index,
                            probabilities,
                        }
                    })
                    .collect())
            }
            Trees::Values { trees } => {
                let mut sums = vec![0.0f64; rows];
                for (cols, tree) in trees {
                    let p = tree
                        .predict(&matrix(cols)?)
                        .map_err(|e| ModelError::InvalidData(e.to_string()))?;
                    for (s, v) in sums.iter_mut().zip(p) {
                        *s += v;
                    }
                }
                let n = trees.len().max(1) as f64;
                Ok(sums.into_iter().map(|s| Prediction::Value(s / n)).collect())
            }
        }
    }
}

/// Stops growing when the context says so (the search's deadline has passed): a forest on
/// many rows takes long, and its trees are grown before any score is reported.
fn stop_if_asked(ctx: &dyn TrialContext) -> Result<()> {
    if ctx.should_prune() {
        return Err(Error::Pruned { step: 0 }.into());
    }
    Ok(())
}

/// The `cols` of the `rows` of row-major `x` (`width` values a row), as a smartcore matrix.
fn select(x: &[f32], width: usize, rows: &[usize], cols: &[usize]) -> Result<DenseMatrix<f32>> {
    let mut values = Vec::with_capacity(rows.len() * cols.len());
    for &r in rows {
        values.extend(cols.iter().map(|&c| x[r * width + c]));
    }
    DenseMatrix::new(rows.len(), cols.len(), values, false)
        .map_err(|e| ModelError::InvalidData(e.to_string()))
}

impl Predict for FittedForest {
    fn predict(&self, x: Features<'_>) -> CoreResult<Vec<Prediction>> {
        if x.n_features() != self.n_features {
            return Err(Error::InvalidInput(format!(
                "rows have {} features, the forest expects {}",
                x.n_features(),
                self.n_features
            )));
        }
        Ok(self.predict_values(x.values())?)
    }
}
