//! Forests for tables, what FLAML and scikit-learn users find beside boosted trees: a random
//! forest (each tree on a bootstrap sample of the rows, each split the best cut of a random
//! subset of the features) or extra trees (every row, one random cut per feature looked at;
//! Geurts et al., 2006). Trees grow on the booster's bins, so missing values (NaN) and
//! categories (category codes) need no imputation or one-hot encoding. Classes are predicted
//! by the trees' averaged class shares, values by their mean. The trees grow on every thread.

mod tree;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use lepton_core::{
    Dataset, Error, Features, Model, ParamValue, Predict, Prediction, Result as CoreResult, Scale,
    SearchSpace, Task, Trial, TrialContext,
};

use crate::bins::{Bin, Binned, FeatureBins, gather};
use crate::error::{ModelError, Result};
use crate::head::Head;
use crate::metrics::{self, ConfusionMatrix};
use crate::param;
use crate::training_summary::TrainingSummary;
use tree::{Growth, Targets, Tree};

/// How a split cuts a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForestSplit {
    /// The best cut, each tree on a bootstrap sample: a random forest.
    Best,
    /// One random cut, each tree on every row: extra trees.
    Random,
}

impl ForestSplit {
    /// The split of configurations saved before there was a choice.
    fn earlier() -> ForestSplit {
        ForestSplit::Best
    }

    fn name(self) -> &'static str {
        match self {
            ForestSplit::Best => "best",
            ForestSplit::Random => "random",
        }
    }
}

/// The hyper-parameters of a [`ForestModel`]. Serializable; checked before any work starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    /// Trees in the ensemble (1..=1000).
    pub n_trees: usize,
    /// Deepest a tree may grow (0: no limit, else 1..=64).
    pub max_depth: usize,
    /// Fewest training rows in a leaf (at least 1).
    pub min_samples_leaf: usize,
    /// Share of the features each split looks at, in `(0, 1]` (at least one feature).
    pub feature_fraction: f64,
    /// Random forest or extra trees.
    #[serde(default = "ForestSplit::earlier")]
    pub split: ForestSplit,
    /// Seed of the bootstrap samples, the feature subsets and the cuts.
    pub seed: u64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        ForestConfig {
            n_trees: 100,
            max_depth: 0,
            min_samples_leaf: 1,
            feature_fraction: 0.5,
            split: ForestSplit::Random,
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
                "split" => {
                    self.split = match value.as_str() {
                        Some("best") => ForestSplit::Best,
                        Some("random") => ForestSplit::Random,
                        _ => {
                            return Err(param::invalid(
                                name,
                                format!("`{value}` is neither `best` nor `random`"),
                            ));
                        }
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.check()?;
        Ok(self)
    }

    fn growth(&self, width: usize) -> Growth {
        Growth {
            max_depth: self.max_depth,
            min_leaf_rows: self.min_samples_leaf,
            features_per_split: ((width as f64 * self.feature_fraction).ceil() as usize)
                .clamp(1, width),
            random_cuts: self.split == ForestSplit::Random,
        }
    }
}

/// The forest's search space: the split (random forest or extra trees), trees (log scale),
/// depth, leaf size (log scale) and the share of features a split looks at. The names match
/// [`ForestConfig::with_params`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ForestSpace;

impl ForestSpace {
    /// Extra trees of the [`ForestConfig`] defaults within the space (depth 24 standing for
    /// "no limit"): a search may try them first.
    pub fn defaults() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            (
                "split".to_owned(),
                ParamValue::from(ForestSplit::Random.name()),
            ),
            ("n_trees".to_owned(), ParamValue::from(100i64)),
            ("max_depth".to_owned(), ParamValue::from(24i64)),
            ("min_samples_leaf".to_owned(), ParamValue::from(1i64)),
            ("feature_fraction".to_owned(), ParamValue::from(0.5)),
        ])
    }
}

impl SearchSpace for ForestSpace {
    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        trial.suggest_categorical(
            "split",
            &[ForestSplit::Random.name(), ForestSplit::Best.name()],
        )?;
        trial.suggest_int("n_trees", 20, 300, Scale::Log)?;
        trial.suggest_int("max_depth", 2, 24, Scale::Linear)?;
        trial.suggest_int("min_samples_leaf", 1, 32, Scale::Log)?;
        trial.suggest_float("feature_fraction", 0.1, 1.0, Scale::Linear)?;
        Ok(())
    }
}

/// A forest for the task of the training data (classification or regression).
#[derive(Debug, Clone)]
pub struct ForestModel {
    config: ForestConfig,
    categorical: Vec<usize>,
    time_limit: Option<Duration>,
}

impl ForestModel {
    /// A model with a checked configuration, every feature numeric.
    pub fn new(config: ForestConfig) -> Result<Self> {
        config.check()?;
        Ok(ForestModel {
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

    /// Stops growing trees once `limit` has passed (the trees so far are kept).
    pub fn with_time_limit(mut self, limit: Option<Duration>) -> Self {
        self.time_limit = limit;
        self
    }

    /// Grows the trees on `train` and scores them on `valid` (accuracy or R², reported to
    /// `ctx` as step 1; may be empty).
    pub fn train(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> Result<FittedForest> {
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
                "a forest needs training rows with at least one feature".into(),
            ));
        }
        if let Some(f) = self.categorical.iter().find(|&&f| f >= width) {
            return Err(ModelError::InvalidData(format!(
                "categorical feature {f} is not one of the {width} features"
            )));
        }
        let (x, y) = gather(train, width)?;
        let (targets, head) = targets_of(&schema.task, &y)?;
        let binned = Binned::fit(&x, width, &self.categorical)?;
        let growth = self.config.growth(width);
        let rows = y.len();
        let mut rng = StdRng::seed_from_u64(self.config.seed);
        let seeds: Vec<u64> = (0..self.config.n_trees).map(|_| rng.next_u64()).collect();
        let bootstrap = self.config.split == ForestSplit::Best;
        let one = |seed: &u64| {
            let mut rng = StdRng::seed_from_u64(*seed);
            let sample: Vec<u32> = if bootstrap {
                (0..rows)
                    .map(|_| rng.random_range(0..rows as u32))
                    .collect()
            } else {
                (0..rows as u32).collect()
            };
            growth.grow(&binned, &targets, sample, &mut rng)
        };
        // Trees grow a batch at a time on every thread; between batches the context may stop
        // the forest (the search's deadline) and the time limit end it.
        let batch = rayon::current_num_threads().max(1) * 2;
        let mut trees: Vec<Tree> = Vec::with_capacity(seeds.len());
        for seeds in seeds.chunks(batch) {
            if ctx.should_prune() {
                return Err(Error::Pruned { step: 0 }.into());
            }
            trees.par_extend(seeds.par_iter().map(one));
            if self.time_limit.is_some_and(|t| started.elapsed() >= t) {
                break;
            }
        }
        let mut fitted = FittedForest {
            config: self.config.clone(),
            head,
            model: Arc::new(Trees {
                outputs: targets.outputs,
                bins: binned.bins,
                trees,
            }),
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
        fitted.summary.final_train_loss = fitted.validation(&x, &y)?.1;
        if !valid.is_empty() {
            let started = Instant::now();
            let (valid_x, valid_y) = gather(valid, width)?;
            let found = fitted.validation(&valid_x, &valid_y)?;
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

/// What each row adds to a side's sums, and the head of the predictions.
fn targets_of(task: &Task, y: &[f64]) -> Result<(Targets, Head)> {
    Ok(match task {
        Task::Classification { classes } => {
            let count = classes.len();
            let mut present = vec![false; count];
            y.iter().for_each(|&c| present[c as usize] = true);
            let n = present.iter().filter(|&&p| p).count();
            if n < 2 {
                return Err(ModelError::InvalidData(format!(
                    "classification needs at least 2 classes in the training rows, they have {n}"
                )));
            }
            (
                Targets {
                    outputs: count,
                    of_row: y.iter().map(|&c| (c as u32, 1.0)).collect(),
                },
                Head::Classes { count },
            )
        }
        Task::Regression => {
            let n = y.len().max(1) as f64;
            let mean = y.iter().sum::<f64>() / n;
            let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            (
                Targets {
                    outputs: 1,
                    of_row: y.iter().map(|&v| (0, v)).collect(),
                },
                Head::Value {
                    mean,
                    sd: if sd > 1e-12 { sd } else { 1.0 },
                },
            )
        }
    })
}

/// The grown forest: outputs per leaf (classes, or one value), bins and trees.
#[derive(Debug, Serialize, Deserialize)]
struct Trees {
    outputs: usize,
    bins: Vec<FeatureBins>,
    trees: Vec<Tree>,
}

/// A grown forest, ready to predict; saved and restored exactly as bytes. Clones share the
/// trees, which never change once grown.
#[derive(Debug, Clone)]
pub struct FittedForest {
    config: ForestConfig,
    head: Head,
    model: Arc<Trees>,
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
        self.model.bins.len()
    }

    /// The classes it predicts, or the training target's mean and sd.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Trees grown (fewer than configured when a time limit stopped the growing).
    pub fn n_trees(&self) -> usize {
        self.model.trees.len()
    }

    /// The bins and trees as bytes (JSON).
    pub fn trees_to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&*self.model).map_err(|e| ModelError::Weights(e.to_string()))
    }

    /// Rebuilds a forest from its configuration, shape and saved trees; refuses trees that do
    /// not match them, and says so for the smartcore trees earlier versions saved.
    pub fn from_bytes(
        config: ForestConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
        bytes: &[u8],
    ) -> Result<Self> {
        config.check()?;
        let model: Trees = serde_json::from_slice(bytes).map_err(|e| {
            let earlier = serde_json::from_slice::<serde_json::Value>(bytes)
                .is_ok_and(|v| v.get("Classes").is_some() || v.get("Values").is_some());
            ModelError::Weights(if earlier {
                "this forest was saved by an earlier Lepton (smartcore trees), which this \
                 version no longer reads: train it again"
                    .into()
            } else {
                e.to_string()
            })
        })?;
        let fits_head = match head {
            Head::Classes { count } => model.outputs == count,
            Head::Value { .. } => model.outputs == 1,
        };
        if !fits_head
            || model.bins.len() != n_features
            || !(1..=config.n_trees).contains(&model.trees.len())
            || !model
                .trees
                .iter()
                .all(|t| t.fits(n_features, model.outputs))
        {
            return Err(ModelError::Weights(format!(
                "{} saved trees do not fit a forest of at most {} trees on {n_features} \
                 features with head {head:?}",
                model.trees.len(),
                config.n_trees
            )));
        }
        Ok(FittedForest {
            config,
            head,
            model: Arc::new(model),
            summary,
        })
    }

    /// The trees' mean leaf values of every row of `x`, row-major (`outputs` a row).
    fn means(&self, x: &[f32]) -> Vec<f64> {
        let m = &*self.model;
        let (width, outputs) = (m.bins.len(), m.outputs);
        let bins = Binned::rows(&m.bins, x);
        let n = m.trees.len().max(1) as f64;
        let row = |r: &[Bin]| {
            let mut sums = vec![0.0; outputs];
            for tree in &m.trees {
                let leaf = tree.leaf(outputs, |f| r[f]);
                sums.iter_mut().zip(leaf).for_each(|(s, v)| *s += v);
            }
            sums.into_iter().map(move |s| s / n)
        };
        bins.par_chunks(width).flat_map_iter(row).collect()
    }

    fn predictions(&self, x: &[f32]) -> Vec<Prediction> {
        let means = self.means(x);
        match self.head {
            Head::Value { .. } => means.into_iter().map(Prediction::Value).collect(),
            Head::Classes { count } => means
                .chunks(count)
                .map(|shares| Prediction::most_probable(shares.iter().map(|&p| p as f32).collect()))
                .collect(),
        }
    }

    /// Score (accuracy or R²), loss (log-loss or mean squared error) and, for classes, the
    /// confusion matrix on rows `x` with targets `y`.
    fn validation(&self, x: &[f32], y: &[f64]) -> Result<(f64, f64, Option<ConfusionMatrix>)> {
        metrics::head_scores(self.head, y, &self.predictions(x))
    }
}

impl Predict for FittedForest {
    fn predict(&self, x: Features<'_>) -> CoreResult<Vec<Prediction>> {
        if x.n_features() != self.n_features() {
            return Err(Error::InvalidInput(format!(
                "rows have {} features, the forest expects {}",
                x.n_features(),
                self.n_features()
            )));
        }
        Ok(self.predictions(x.values()))
    }
}
