//! AutoML for any dataset: model selection and hyper-parameter search in one conditional
//! space over model families (as auto-sklearn does), within a wall-clock budget, then a refit
//! of the winner on every training row for as many epochs as the rest of the budget allows.
//!
//! The budget is split in two. The search trains each candidate briefly (a few epochs, on at
//! most `search_rows` rows) and scores it on a stratified validation hold-out; a pruner stops
//! poor candidates after their first epochs and the budget's deadline cuts the last one short.
//! The refit then trains the winner on all the training rows but the hold-out, for the epochs
//! its measured speed fits into what is left, and keeps the weights that validate best.
//!
//! With [`TrialBudgets::Hyperband`] the search is budget-aware instead: synchronous Hyperband
//! gives each trial a number of epochs, and a configuration promoted to a larger budget goes
//! on from its checkpoint (a temporary directory, removed after the search) rather than
//! training again from zero.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lepton_core::{
    Dataset, Direction, Error as CoreError, FrozenTrial, NopPruner, ParamValue, Prediction, Pruner,
    Result as CoreResult, Sampler, Storage, Subset, Target, Task, Trial, TrialContext, TrialState,
    scoped_params,
};
use lepton_data::{Preprocessor, holdout_indices, stratified_holdout_indices};
use lepton_deploy::{Examples, ModelArtifact};
use lepton_models::{Backend, Schedule};
use lepton_report::{CONFUSION_ATTR, Confusion};
use lepton_search::{
    Budget, HyperbandScheduler, OptimizeOptions, Study, StudyBuilder, pruners, samplers, storage,
};

use crate::builtin_family::Family;
use crate::ensemble::ENSEMBLE;
use crate::error::{Error, Result};
use crate::family::{ModelFamily, Searched, TrainRequest};
use crate::fitted_model::replay_sample;
use crate::metric::Metric;
use crate::predictor::Predictor;

/// How the search gives trials their epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialBudgets {
    /// Every trial may train all the search epochs; the pruner stops poor ones after any
    /// epoch (asynchronous, Optuna's way). The default.
    Pruned,
    /// Synchronous Hyperband from 1 to the search epochs (`lepton_search::HyperbandScheduler`):
    /// each trial gets a budget of epochs up front, and the best `1 / reduction_factor` of a
    /// rung are promoted to a budget that many times larger, continuing from their checkpoint
    /// rather than training again from zero. Brackets repeat until the search's time or trial
    /// limit; the pruner is not consulted.
    Hyperband {
        /// The reduction factor `eta` (at least 2; 3 is the paper's choice).
        reduction_factor: u64,
    },
}

/// Sees an [`AutoMl`] run as it goes (every method does nothing unless overridden).
pub trait Observer {
    /// A search trial finished (complete, pruned or failed).
    fn trial(&mut self, _trial: &FrozenTrial) {}
    /// The refit of the winner starts, for at most `epochs` epochs.
    fn refit_started(&mut self, _winner: &FrozenTrial, _epochs: usize) {}
    /// The refit finished an epoch with this validation score.
    fn refit_epoch(&mut self, _epoch: u64, _score: f64) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// The search and refit settings. A new study first tries each family's default
/// configuration, then the sampler's proposals. [`AutoMl::new`] suits tables (linear models
/// and MLPs trained to early stopping; tree ensembles on request); [`AutoMl::for_images`] adds CNNs and trains briefly on a
/// subsample during the search.
#[derive(Debug, Clone)]
pub struct AutoMl {
    pub(crate) families: Vec<Family>,
    pub(crate) custom: Vec<Custom>,
    pub(crate) image: Option<(usize, usize)>,
    pub(crate) budget: Duration,
    pub(crate) search_share: Option<f64>,
    pub(crate) max_trials: Option<usize>,
    pub(crate) search_rows: usize,
    pub(crate) search_epochs: usize,
    pub(crate) trial_time: Option<Duration>,
    pub(crate) patience: usize,
    pub(crate) max_refit_epochs: usize,
    pub(crate) validation_fraction: f64,
    pub(crate) validation: Validation,
    pub(crate) metric: Option<Metric>,
    pub(crate) preprocessor: Preprocessor,
    pub(crate) schedule: Schedule,
    pub(crate) sampler: Choice<dyn Sampler>,
    pub(crate) pruner: Choice<dyn Pruner>,
    pub(crate) trial_budgets: TrialBudgets,
    pub(crate) storage: Option<Choice<dyn Storage>>,
    pub(crate) study_name: String,
    pub(crate) warm_start: bool,
    pub(crate) ensemble: bool,
    pub(crate) bagging: bool,
    pub(crate) data_parallel: usize,
    pub(crate) seed: u64,
}

/// How a table run validates its trials ([`AutoMl::fit_table`]; [`AutoMl::fit`] always holds
/// out rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validation {
    /// 5-fold cross-validation where the budget affords it ([`Validation::cross_validates`]),
    /// a hold-out otherwise (the default).
    Auto,
    /// One hold-out of the validation fraction (stratified for a classification).
    Holdout,
    /// k-fold cross-validation (stratified for a classification), k at least 2.
    KFold(usize),
}

/// From this many training rows on, [`Validation::Auto`] holds out, whatever the budget.
pub const CV_MAX_ROWS: usize = 100_000;

/// The table cells (rows x input columns) per second of budget below which
/// [`Validation::Auto`] cross-validates: 150,000 at 60 s, 750,000 at 300 s.
pub const CV_CELLS_PER_SECOND: f64 = 2_500.0;

impl Validation {
    /// Whether [`Validation::Auto`] cross-validates a table of `rows` training rows and
    /// `columns` input columns searched for `budget`: below [`CV_MAX_ROWS`] rows, when the
    /// cells fit [`CV_CELLS_PER_SECOND`] (FLAML's rule, in the same units). k folds cost k
    /// times a hold-out per trial; where the budget pays for it, the folds' mean selects
    /// better than one hold-out (which the winner of hundreds of trials over-fits) and the
    /// fold models bag into the final model.
    pub fn cross_validates(rows: usize, columns: usize, budget: Duration) -> bool {
        rows < CV_MAX_ROWS
            && rows as f64 * columns.max(1) as f64 <= CV_CELLS_PER_SECOND * budget.as_secs_f64()
    }
}

/// A stage given by name (resolved when the run starts: a sampler takes the run's seed) or
/// as a value.
pub(crate) enum Choice<T: ?Sized> {
    Named(String),
    Given(Arc<T>),
}

impl<T: ?Sized> Clone for Choice<T> {
    fn clone(&self) -> Self {
        match self {
            Choice::Named(name) => Choice::Named(name.clone()),
            Choice::Given(value) => Choice::Given(value.clone()),
        }
    }
}

impl<T: ?Sized> fmt::Debug for Choice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Named(name) => write!(f, "{name:?}"),
            Choice::Given(_) => f.write_str("<given>"),
        }
    }
}

/// A user's family.
#[derive(Clone)]
pub(crate) struct Custom(Arc<dyn ModelFamily>);

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl Default for AutoMl {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of an [`AutoMl`] run.
#[derive(Debug)]
pub struct AutoMlRun {
    /// The winner, refitted (with its preprocessing, for a table), ready to predict and save.
    pub predictor: Predictor,
    /// The search trial whose configuration won.
    pub winner: FrozenTrial,
    /// Complete trials, best first.
    pub leaderboard: Vec<FrozenTrial>,
    /// Every trial of the study, in number order (failed and pruned ones included).
    pub trials: Vec<FrozenTrial>,
    /// The metric the search optimized.
    pub metric: Metric,
    /// How the trials were validated (resolved: never [`Validation::Auto`]).
    pub validation: Validation,
    /// The winner's validation score in the metric: for a table, its trial's mean over the
    /// folds (for an ensemble, its blend's score on every out-of-fold row); for a dataset,
    /// the refit's score on the hold-out (when the model was then retrained on all rows,
    /// `on_all_rows`, the estimate for it).
    pub valid_score: f64,
    /// Whether the returned model was trained on every training row, validation rows
    /// included.
    pub on_all_rows: bool,
    /// The epochs the refit was given (for an ensemble, its heaviest member's; for bagged
    /// fold models, the winner's mean best epoch over its folds).
    pub refit_epochs: usize,
    /// The folds whose models each member averages ([`AutoMl::with_bagging`]), or 0 when
    /// every member was refitted on every training row.
    pub bagged_folds: usize,
    /// Wall time of the search.
    pub search_time: Duration,
    /// Wall time of the refit.
    pub refit_time: Duration,
    /// Up to 1,000 training rows, encoded as the model takes them, for online learning to
    /// replay ([`to_artifact`](Self::to_artifact) stores them as `replay.json`).
    pub replay: Examples,
    /// The trials whose configurations the model was refitted from, with their weights
    /// (summing to 1): several for an [`Ensemble`](crate::Ensemble) (heaviest first), else
    /// the winner with weight 1.
    pub members: Vec<(u64, f64)>,
    /// For a table: every completed trial's out-of-fold predictions of every training row
    /// (by trial number; the rows in the table's order), for ensembles; of the trials that
    /// joined processes ran, those of the best, read from the storage. A hold-out gives
    /// predictions of its rows only, listed in `out_of_fold_rows`.
    pub out_of_fold: BTreeMap<u64, Vec<Prediction>>,
    /// The training rows `out_of_fold`'s predictions are of, in order.
    pub out_of_fold_rows: Vec<usize>,
}

impl AutoMlRun {
    /// The model's artifact with its evaluation `metrics` and the run's replay sample, so
    /// that the prediction server can fine-tune it online.
    pub fn to_artifact(&self, metrics: BTreeMap<String, f64>) -> Result<ModelArtifact> {
        Ok(self
            .predictor
            .to_artifact(metrics)?
            .with_replay(&self.replay)?)
    }

    /// Saves [`to_artifact`](Self::to_artifact)'s artifact as a directory.
    pub fn save(&self, dir: impl AsRef<Path>, metrics: BTreeMap<String, f64>) -> Result<()> {
        self.to_artifact(metrics)?.save(dir)?;
        Ok(())
    }
}

impl AutoMl {
    /// Settings for tables: boosted trees, linear models and MLPs, each family's defaults
    /// tried first in that order (add [`Family::Forest`] with
    /// [`with_families`](Self::with_families) for bagged trees), as many trials as a
    /// 2-minute budget allows (its search share: half on a dataset, 90 % on a table; cap them
    /// with [`with_max_trials`](Self::with_max_trials)), up to 100 epochs per trial with
    /// patience 10, [`Validation::Auto`] on a table and a 20 % validation hold-out on a
    /// dataset, TPE with the median pruner, the metric's default, seed 42.
    pub fn new() -> Self {
        AutoMl {
            families: vec![Family::Boosted, Family::Linear, Family::Mlp],
            custom: Vec::new(),
            image: None,
            budget: Duration::from_secs(120),
            search_share: None,
            max_trials: None,
            search_rows: 10_000,
            search_epochs: 100,
            trial_time: None,
            patience: 10,
            max_refit_epochs: 100,
            validation_fraction: 0.2,
            validation: Validation::Auto,
            metric: None,
            preprocessor: Preprocessor::default(),
            schedule: Schedule::Constant,
            sampler: Choice::Named("tpe".into()),
            pruner: Choice::Named("median".into()),
            trial_budgets: TrialBudgets::Pruned,
            storage: None,
            study_name: "automl".into(),
            warm_start: true,
            ensemble: true,
            bagging: true,
            data_parallel: 1,
            seed: 42,
        }
    }

    /// Settings for `height x width` greyscale images (rows of pixels): linear models, MLPs
    /// and CNNs, a 20-minute budget of which 35 % searches, 4 epochs per trial on at most
    /// 10,000 rows with a cosine schedule and ASHA, then up to 40 refit epochs; a 10 %
    /// validation hold-out.
    pub fn for_images(height: usize, width: usize) -> Self {
        AutoMl {
            families: vec![Family::Linear, Family::Mlp, Family::Cnn],
            image: Some((height, width)),
            budget: Duration::from_secs(20 * 60),
            search_share: Some(0.35),
            max_trials: None,
            search_epochs: 4,
            patience: 4,
            max_refit_epochs: 40,
            validation_fraction: 0.1,
            schedule: Schedule::Cosine,
            pruner: Choice::Named("asha".into()),
            ..Self::new()
        }
    }

    /// Sets the built-in families to choose from (your own ones stay).
    pub fn with_families(mut self, families: &[Family]) -> Self {
        self.families = families.to_vec();
        self
    }

    /// Adds your own family: it competes with the built-in ones in the same search, and its
    /// models save into artifacts ([`Predictor::load_with`] loads them back).
    pub fn with_family(mut self, family: impl ModelFamily + 'static) -> Self {
        self.custom.push(Custom(Arc::new(family)));
        self
    }

    /// Sets the metric to optimize (default: accuracy for a classification, R² for a
    /// regression). A dataset run ([`fit`](Self::fit)) takes only those two.
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metric = Some(metric);
        self
    }

    /// Sets how a table run validates its trials (default [`Validation::Auto`]).
    pub fn with_validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// Sets the preprocessing of a table run (each family adapts it: trees get no scaling).
    pub fn with_preprocessor(mut self, preprocessor: Preprocessor) -> Self {
        self.preprocessor = preprocessor;
        self
    }

    /// Sets the whole wall-clock budget (search and refit).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the share of the budget the search may use, in `(0, 1)`.
    pub fn with_search_share(mut self, share: f64) -> Self {
        self.search_share = Some(share);
        self
    }

    /// Stops the search after this many trials even if budget is left.
    pub fn with_max_trials(mut self, trials: usize) -> Self {
        self.max_trials = Some(trials);
        self
    }

    /// Sets the most training rows a search trial sees.
    pub fn with_search_rows(mut self, rows: usize) -> Self {
        self.search_rows = rows;
        self
    }

    /// Sets the most epochs of a search trial and the early-stopping patience.
    pub fn with_search_epochs(mut self, epochs: usize, patience: usize) -> Self {
        (self.search_epochs, self.patience) = (epochs, patience);
        self
    }

    /// Limits each search trial's training time: no new epoch starts after `limit`, and the
    /// trial scores its best epoch so far, so fast and slow candidates compare at equal time.
    pub fn with_trial_time(mut self, limit: Duration) -> Self {
        self.trial_time = Some(limit);
        self
    }

    /// Sets the most epochs of the refit.
    pub fn with_max_refit_epochs(mut self, epochs: usize) -> Self {
        self.max_refit_epochs = epochs;
        self
    }

    /// Sets the share of the training rows held out for validation, in `(0, 1)`.
    pub fn with_validation_fraction(mut self, fraction: f64) -> Self {
        self.validation_fraction = fraction;
        self
    }

    /// Sets the learning-rate schedule of every training run.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the sampler (default: TPE with the run's seed). Runs of clones of these settings
    /// share it.
    pub fn with_sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        self.sampler = Choice::Given(Arc::new(sampler));
        self
    }

    /// Sets the sampler by name (`lepton_search::samplers::SAMPLER_NAMES`), seeded with the
    /// run's seed: the command line's way.
    pub fn with_sampler_name(mut self, name: &str) -> Self {
        self.sampler = Choice::Named(name.into());
        self
    }

    /// Sets the pruner (default: the median pruner; ASHA for images).
    pub fn with_pruner(mut self, pruner: impl Pruner + 'static) -> Self {
        self.pruner = Choice::Given(Arc::new(pruner));
        self
    }

    /// Sets the pruner by name (`none`, `median`, `asha`, `hyperband`, `bohb`).
    pub fn with_pruner_name(mut self, name: &str) -> Self {
        self.pruner = Choice::Named(name.into());
        self
    }

    /// Sets how trials get their epochs: pruned as they go (the default) or given budgets by
    /// synchronous Hyperband, promoted trials resuming from their checkpoints.
    pub fn with_trial_budgets(mut self, budgets: TrialBudgets) -> Self {
        self.trial_budgets = budgets;
        self
    }

    /// Names the study (`automl` unless set): its logs and report carry the name.
    pub fn with_study_name(mut self, study: &str) -> Self {
        self.study_name = study.into();
        self
    }

    /// Keeps the study in a storage under `study`; an
    /// existing study of that name is resumed and its trials count. The study keeps a
    /// heartbeat there (a persistent storage's default), so the trial of a run killed
    /// mid-trial is failed by the next run on the study once its heartbeat is 10 s old (or by
    /// `lepton study sweep`).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>, study: &str) -> Self {
        self.storage = Some(Choice::Given(storage));
        self.study_name = study.into();
        self
    }

    /// [`with_storage`](Self::with_storage) by URL (`sqlite://PATH`, `postgres://...`,
    /// `memory:`), opened when the run starts.
    pub fn with_storage_url(mut self, url: &str, study: &str) -> Self {
        self.storage = Some(Choice::Named(url.into()));
        self.study_name = study.into();
        self
    }

    /// Whether a new study first tries each family's default configuration (on by default,
    /// as auto-sklearn starts from known-good configurations) before the sampler's own.
    pub fn with_warm_start(mut self, on: bool) -> Self {
        self.warm_start = on;
        self
    }

    /// Whether a table run may end with an [`Ensemble`](crate::Ensemble): ensemble selection
    /// over its trials' out-of-fold predictions (on by default), kept when its blend
    /// validates better than the best model alone and its members' refits fit in the time
    /// left. Dataset runs ([`fit`](Self::fit)) always end with one model.
    pub fn with_ensemble(mut self, on: bool) -> Self {
        self.ensemble = on;
        self
    }

    /// Whether a table run validated by k-fold cross-validation keeps its best trials' fold
    /// models and ends with them averaged (bagging, as AutoGluon does; on by default): each
    /// fold model predicted the out-of-fold rows the winner (or ensemble) was chosen on, so
    /// the validation score is an estimate for the very models returned, and no refit
    /// spends the budget (the search gets 97 % of it, 90 % with a storage other processes
    /// may join, as their trials' models are not here). Off, under a hold-out, or for a
    /// winner or member that another process ran, the model is refitted on every row.
    /// Either way the artifact serves raw rows.
    pub fn with_bagging(mut self, on: bool) -> Self {
        self.bagging = on;
        self
    }

    /// Trains every network (MLPs and CNNs; forests are unaffected) data-parallel on
    /// `devices` devices of the backend, each batch split across them (see
    /// `TrainingRun::with_data_parallel`); 1, the default, trains on one device. 0 is
    /// refused by `fit`.
    pub fn with_data_parallel(mut self, devices: usize) -> Self {
        self.data_parallel = devices;
        self
    }

    /// Sets the seed of the split, the sampler and every training run.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The budget.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Searches and refits on `train`, a numeric dataset (the test rows must not be in it).
    pub fn fit<B: Backend>(&self, train: &(dyn Dataset + Sync)) -> Result<AutoMlRun> {
        self.fit_observed::<B>(train, &mut Quiet)
    }

    /// [`fit`](Self::fit), telling `observer` about every trial and refit epoch.
    pub fn fit_observed<B: Backend>(
        &self,
        train: &(dyn Dataset + Sync),
        observer: &mut (dyn Observer + Send),
    ) -> Result<AutoMlRun> {
        let started = Instant::now();
        self.check()?;
        let families = self.families_for::<B>(train.schema())?;
        let metric = Metric::default_for(&train.schema().task);
        if self.metric.is_some_and(|m| m != metric) {
            return Err(bad_setting(
                "metric",
                format!(
                    "a dataset run optimizes {metric} (the model's own score); other metrics \
                     need a table run (fit_table)"
                ),
            ));
        }
        check_rows(train)?;
        let n = train.len();
        let (fit_rows, valid_rows) = match &train.schema().task {
            Task::Classification { classes } => {
                let labels = class_labels(train, classes.len())?;
                stratified_holdout_indices(&labels, classes, self.validation_fraction, self.seed)?
            }
            Task::Regression => holdout_indices(n, self.validation_fraction, self.seed)?,
        };
        let search_rows = fit_rows[..fit_rows.len().min(self.search_rows)].to_vec();
        let fit: Subset<dyn Dataset + Sync> = Subset::new(train, fit_rows)?;
        let valid: Subset<dyn Dataset + Sync> = Subset::new(train, valid_rows)?;
        let search: Subset<dyn Dataset + Sync> = Subset::new(train, search_rows)?;

        let study = self.study(metric, matches!(self.trial_budgets, TrialBudgets::Pruned))?;
        self.enqueue_defaults(&study, &families)?;
        let search_budget = self
            .budget
            .mul_f64(self.search_share.unwrap_or(DATASET_SEARCH_SHARE));
        let search_data = SearchData {
            families: &families,
            search: &search,
            valid: &valid,
            deadline: started + search_budget,
        };
        match self.trial_budgets {
            TrialBudgets::Pruned => {
                let mut options = OptimizeOptions::timeout(search_budget);
                if let Some(max) = self.max_trials {
                    options = options.with_trials(max);
                }
                study.optimize_with_options(
                    options,
                    |trial| self.search_trial(trial, &search_data, None),
                    |t| observer.trial(t),
                )?;
            }
            TrialBudgets::Hyperband { reduction_factor } => {
                let mut scheduler = HyperbandScheduler::new(1, self.search_epochs as u64)?
                    .with_reduction_factor(reduction_factor)?
                    .with_rounds(usize::MAX)
                    .with_timeout(search_budget);
                if let Some(max) = self.max_trials {
                    scheduler = scheduler.with_max_trials(max);
                }
                // Removed when the search ends, however it ends.
                let checkpoints = tempfile::Builder::new()
                    .prefix("lepton-automl-")
                    .tempdir()
                    .map_err(|e| invalid(format!("no directory for checkpoints: {e}")))?;
                // Trees have no epochs: a promoted forest keeps its first score.
                let mut grown: BTreeMap<u64, f64> = BTreeMap::new();
                scheduler.run(
                    &study,
                    |trial, budget| {
                        if let Some(&score) = grown.get(&budget.config) {
                            return Ok(score);
                        }
                        let dir = checkpoints.path().join(budget.config.to_string());
                        let scheduled = Scheduled {
                            budget,
                            checkpoints: &dir,
                        };
                        let score = self.search_trial(trial, &search_data, Some(scheduled))?;
                        if trial
                            .params()
                            .get("family")
                            .and_then(ParamValue::as_str)
                            .is_some_and(|f| {
                                f == Family::Forest.name() || f == Family::Boosted.name()
                            })
                        {
                            grown.insert(budget.config, score);
                        }
                        Ok(score)
                    },
                    |t| observer.trial(t),
                )?;
            }
        }
        let search_time = started.elapsed();

        let trials = study.trials()?;
        let leaderboard = leaderboard(&trials, Direction::Maximize);
        // Does the rest of the budget cut a trial's refit short of its most epochs?
        let left = self.budget.saturating_sub(started.elapsed()).as_secs_f64() * 0.97;
        let time_binds = |t: &FrozenTrial| {
            epoch_seconds(t, fit.len(), valid.len()) * self.max_refit_epochs as f64 > left
        };
        let winner = choose(&leaderboard, &train.schema().task, valid.len(), time_binds)
            .ok_or_else(|| none_completed(&trials, search_budget))?
            .clone();

        // Refit: as many epochs as the winner's measured speed fits into the rest of the
        // budget (less a small reserve for the caller's test evaluation).
        let family = family_of(&winner, &families)?;
        let per_epoch = epoch_seconds(&winner, fit.len(), valid.len());
        let known = per_epoch.is_finite() && per_epoch > 0.0;
        let epochs = if known {
            ((left / per_epoch).floor() as usize).clamp(1, self.max_refit_epochs)
        } else {
            self.max_refit_epochs
        };
        // A guard should the machine slow down: no epoch starts that would end past the
        // budget (at the measured speed); the best epoch so far is kept.
        let guard = known.then(|| Duration::from_secs_f64((left - per_epoch).max(0.0)));
        let patience = (self.patience * epochs)
            .div_ceil(self.search_epochs.max(1))
            .max(1);
        observer.refit_started(&winner, epochs);
        let refit_started = Instant::now();
        let params = own_params(&winner, family.name());
        let mut model = {
            let request = self.request(
                params.clone(),
                &fit,
                &valid,
                epochs,
                patience,
                self.seed,
                guard,
            );
            family.train(&request, &mut Relay(observer))?
        };
        let valid_score = model
            .summary()
            .best_valid_score
            .ok_or_else(|| invalid("the refit has no validation score".into()))?;

        // When the budget still has room (small data), train once more on every training row,
        // hold-out included, for the epochs that validated best, as scikit-learn's refit does:
        // the hold-out has chosen the model and its epochs, and its rows now teach it.
        let best_epoch = model.summary().best_epoch.max(1);
        let all_rows = per_epoch * (n as f64 / fit.len().max(1) as f64) * best_epoch as f64;
        let left = self.budget.saturating_sub(started.elapsed()).as_secs_f64() * 0.97;
        let on_all_rows = known && all_rows < left;
        if on_all_rows {
            let everything: Subset<dyn Dataset + Sync> = Subset::new(train, (0..n).collect())?;
            let none: Subset<dyn Dataset + Sync> = Subset::new(train, Vec::new())?;
            let request = self.request(
                params,
                &everything,
                &none,
                best_epoch,
                best_epoch,
                self.seed,
                None,
            );
            model = family.train(&request, &mut Relay(&mut Quiet))?;
        }
        let winner_number = winner.number;
        Ok(AutoMlRun {
            predictor: Predictor::numeric(model, train.schema().clone())?,
            winner,
            leaderboard,
            trials,
            metric,
            validation: Validation::Holdout,
            valid_score,
            refit_epochs: epochs,
            bagged_folds: 0,
            on_all_rows,
            search_time,
            refit_time: refit_started.elapsed(),
            replay: replay_sample(train, self.seed)?,
            members: vec![(winner_number, 1.0)],
            out_of_fold: BTreeMap::new(),
            out_of_fold_rows: Vec::new(),
        })
    }

    /// A training request of these settings.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn request<'a>(
        &self,
        params: BTreeMap<String, ParamValue>,
        train: &'a (dyn Dataset + Sync),
        valid: &'a (dyn Dataset + Sync),
        max_epochs: usize,
        patience: usize,
        seed: u64,
        time_limit: Option<Duration>,
    ) -> TrainRequest<'a> {
        TrainRequest {
            params,
            train,
            valid,
            max_epochs,
            patience,
            seed,
            schedule: self.schedule,
            time_limit,
            devices: self.data_parallel,
            resume: None,
            categorical: Vec::new(),
        }
    }

    /// One search trial: suggests a family and its configuration, trains it on the search
    /// rows (when scheduled: up to its budget, continuing its checkpoint) and returns its best
    /// validation score, recording its speed for the refit.
    fn search_trial(
        &self,
        trial: &mut Trial,
        data: &SearchData,
        scheduled: Option<Scheduled>,
    ) -> CoreResult<f64> {
        let family = suggest_family(trial, data.families)?;
        // A configuration keeps its seed across promotions.
        let config = scheduled
            .as_ref()
            .map_or(trial.number(), |s| s.budget.config);
        let params = own_params_of(trial.params(), family.name());
        let mut request = self.request(
            params,
            data.search,
            data.valid,
            self.search_epochs,
            self.patience,
            self.seed.wrapping_add(config),
            self.trial_time,
        );
        request.resume = scheduled.map(|s| (s.budget.steps as usize, s.checkpoints));
        let model = {
            let mut ctx = Deadline {
                trial: &mut *trial,
                until: data.deadline,
            };
            family.train(&request, &mut ctx)?
        };
        let s = model.summary();
        let epochs = s.epochs_run.max(1) as f64;
        trial.set_user_attr(
            TRAIN_SECONDS_PER_ROW,
            s.train_seconds / (epochs * data.search.len() as f64),
        )?;
        trial.set_user_attr(
            VALID_SECONDS_PER_ROW,
            s.valid_seconds / (epochs * data.valid.len().max(1) as f64),
        )?;
        trial.set_user_attr("best_epoch", s.best_epoch as i64)?;
        let score = s
            .best_valid_score
            .ok_or_else(|| CoreError::InvalidInput("no validation score".into()))?;
        // A classifier's confusion matrix on the validation rows (from the pass that scored
        // its kept weights), for the study's report.
        if let (Task::Classification { classes }, Some(m)) =
            (&data.valid.schema().task, &s.best_valid_confusion)
        {
            let k = m.n_classes();
            let confusion = Confusion {
                labels: classes.clone(),
                counts: (0..k)
                    .map(|t| (0..k).map(|p| m.count(t, p) as u64).collect())
                    .collect(),
            };
            trial.set_user_attr(CONFUSION_ATTR, confusion.to_attr())?;
        }
        Ok(score)
    }

    /// Checks the settings' numbers.
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(share) = self.search_share
            && !(share > 0.0 && share < 1.0)
        {
            return Err(bad_setting(
                "search_share",
                format!("{share} is outside (0, 1)"),
            ));
        }
        if self.budget.is_zero() {
            return Err(bad_setting("budget", "must be positive".into()));
        }
        if self.trial_time.is_some_and(|t| t.is_zero()) {
            return Err(bad_setting("trial_time", "must be positive".into()));
        }
        if self.max_trials == Some(0) {
            return Err(bad_setting("max_trials", "must be at least 1".into()));
        }
        for (name, v) in [
            ("search_rows", self.search_rows),
            ("search_epochs", self.search_epochs),
            ("patience", self.patience),
            ("max_refit_epochs", self.max_refit_epochs),
            ("data_parallel", self.data_parallel),
        ] {
            if v == 0 {
                return Err(bad_setting(name, "must be at least 1".into()));
            }
        }
        if let Validation::KFold(k) = self.validation
            && k < 2
        {
            return Err(bad_setting("validation", format!("{k} folds: at least 2")));
        }
        Ok(())
    }

    /// The families on backend `B` that can learn data of `schema` (an error when none can).
    pub(crate) fn families_for<B: Backend>(
        &self,
        schema: &lepton_core::Schema,
    ) -> Result<Vec<Arc<dyn ModelFamily>>> {
        let mut families: Vec<Arc<dyn ModelFamily>> = Vec::new();
        let mut builtins = self.families.clone();
        builtins.dedup();
        let all = builtins
            .iter()
            .map(|f| f.on::<B>(self.image))
            .chain(self.custom.iter().map(|c| c.0.clone()));
        for family in all {
            if families.iter().any(|f| f.name() == family.name()) {
                return Err(bad_setting(
                    "families",
                    format!("two families are named `{}`", family.name()),
                ));
            }
            if family.name().is_empty() || family.name().contains('.') || family.name() == ENSEMBLE
            {
                return Err(bad_setting(
                    "families",
                    format!(
                        "`{}` is not a family name (non-empty, no dots, not `{ENSEMBLE}`)",
                        family.name()
                    ),
                ));
            }
            if family.supports(schema)? {
                families.push(family);
            }
        }
        if families.is_empty() {
            return Err(bad_setting(
                "families",
                format!(
                    "none of {:?} and {:?} fits this task",
                    self.families, self.custom
                ),
            ));
        }
        Ok(families)
    }

    /// The run's study: direction by the metric, the sampler, the pruner (the scheduler's
    /// own under Hyperband) and the storage.
    pub(crate) fn study(&self, metric: Metric, pruned: bool) -> Result<Study> {
        let mut builder: StudyBuilder =
            Study::builder(&self.study_name).with_direction(metric.direction());
        builder = match &self.sampler {
            Choice::Named(name) => builder.with_sampler(samplers::by_name(name, self.seed)?),
            Choice::Given(s) => builder.with_sampler(s.clone()),
        };
        builder = match (&self.pruner, pruned) {
            (_, false) => builder.with_pruner(NopPruner),
            (Choice::Named(name), true) => builder.with_pruner(pruners::by_name(name)?),
            (Choice::Given(p), true) => builder.with_pruner(p.clone()),
        };
        builder = match &self.storage {
            None => builder,
            Some(Choice::Named(url)) => builder.with_storage(storage::open(url)?),
            Some(Choice::Given(s)) => builder.with_storage(s.clone()),
        };
        Ok(builder.build()?)
    }

    /// On a new study (when warm-starting), enqueues each family's default configuration.
    pub(crate) fn enqueue_defaults<F: Searched + ?Sized>(
        &self,
        study: &Study,
        families: &[Arc<F>],
    ) -> Result<()> {
        if self.warm_start && study.trials()?.is_empty() {
            for f in families {
                let mut params: BTreeMap<String, ParamValue> = f
                    .defaults()
                    .into_iter()
                    .map(|(k, v)| (format!("{}.{k}", f.name()), v))
                    .collect();
                params.insert("family".into(), f.name().into());
                study.enqueue(params)?;
            }
        }
        Ok(())
    }
}

/// Suggests the trial's family among `families`, then that family's own parameters under
/// its prefix.
pub(crate) fn suggest_family<F: Searched + ?Sized>(
    trial: &mut Trial,
    families: &[Arc<F>],
) -> CoreResult<Arc<F>> {
    let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
    let name = trial.suggest_categorical("family", &names)?;
    let family = families
        .iter()
        .find(|f| name.as_str() == Some(f.name()))
        .ok_or_else(|| CoreError::InvalidInput(format!("unknown family {name}")))?
        .clone();
    trial.scoped(&format!("{}.", family.name()), |t| family.suggest(t))?;
    Ok(family)
}

/// The family of a trial among `families`.
pub(crate) fn family_of<F: Searched + ?Sized>(
    trial: &FrozenTrial,
    families: &[Arc<F>],
) -> Result<Arc<F>> {
    let name = trial.params.get("family").and_then(ParamValue::as_str);
    families
        .iter()
        .find(|f| Some(f.name()) == name)
        .cloned()
        .ok_or_else(|| invalid(format!("trial {} has no family of this run", trial.number)))
}

/// A trial's parameters of `family`, without their prefix.
pub(crate) fn own_params(trial: &FrozenTrial, family: &str) -> BTreeMap<String, ParamValue> {
    own_params_of(&trial.params, family)
}

pub(crate) fn own_params_of<K: std::borrow::Borrow<str>>(
    params: &BTreeMap<K, ParamValue>,
    family: &str,
) -> BTreeMap<String, ParamValue> {
    scoped_params(params, &format!("{family}."))
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// Complete trials, best first in `direction`.
pub(crate) fn leaderboard(trials: &[FrozenTrial], direction: Direction) -> Vec<FrozenTrial> {
    let mut board: Vec<FrozenTrial> = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete && t.value.is_some())
        .cloned()
        .collect();
    board.sort_by(|a, b| match direction {
        Direction::Maximize => value(b).total_cmp(&value(a)),
        Direction::Minimize => value(a).total_cmp(&value(b)),
    });
    board
}

pub(crate) fn none_completed(trials: &[FrozenTrial], search_budget: Duration) -> Error {
    invalid(format!(
        "none of the {} trials completed within the search budget of {:.1} s: give the run \
         a larger budget",
        trials.len(),
        search_budget.as_secs_f64()
    ))
}

/// Refuses data too small to search on.
fn check_rows(train: &dyn Dataset) -> Result<()> {
    if let Task::Classification { classes } = &train.schema().task
        && classes.len() < 2
    {
        return Err(invalid(format!(
            "classification needs at least 2 classes, the data has {}",
            classes.len()
        )));
    }
    if train.len() < 10 {
        return Err(invalid(format!(
            "{} training rows are too few to search on",
            train.len()
        )));
    }
    Ok(())
}

/// Every row's class index.
fn class_labels(data: &dyn Dataset, classes: usize) -> Result<Vec<usize>> {
    (0..data.len())
        .map(|i| match data.target(i) {
            Some(Target::Class(c)) if c < classes => Ok(c),
            other => Err(invalid(format!(
                "row {i}: target {other:?} is not one of {classes} classes"
            ))),
        })
        .collect()
}

pub(crate) fn bad_setting(name: &str, reason: String) -> Error {
    CoreError::InvalidParameter {
        name: name.into(),
        reason,
    }
    .into()
}

/// The share of a dataset run's budget its search may use when none is set; the refit of a
/// network on every row but the hold-out takes the rest.
const DATASET_SEARCH_SHARE: f64 = 0.5;

/// The user attribute with a trial's training seconds per row and epoch.
pub const TRAIN_SECONDS_PER_ROW: &str = "train_seconds_per_row";
/// The user attribute with a trial's validation seconds per row and epoch.
pub const VALID_SECONDS_PER_ROW: &str = "valid_seconds_per_row";

/// The winner among `leaderboard` (best first): the best, unless `time_binds` says the budget
/// would cut its refit short. Then, for a classification, every trial within one standard
/// error of the best accuracy on `n_valid` rows is as good as the best (the
/// one-standard-error rule), and the fastest of them wins: it gets the most refit epochs.
fn choose<'a>(
    leaderboard: &'a [FrozenTrial],
    task: &Task,
    n_valid: usize,
    time_binds: impl Fn(&FrozenTrial) -> bool,
) -> Option<&'a FrozenTrial> {
    let best = leaderboard.first()?;
    if !matches!(task, Task::Classification { .. }) || !time_binds(best) {
        return Some(best);
    }
    let p = value(best);
    let se = (p * (1.0 - p) / n_valid.max(1) as f64).sqrt();
    leaderboard
        .iter()
        .take_while(|t| value(t) >= p - se)
        .min_by(|a, b| speed(a).total_cmp(&speed(b)))
}

/// Seconds a trial's configuration needs per epoch on `n_fit` training and `n_valid`
/// validation rows, at the speed its search run measured (NaN when unmeasured).
fn epoch_seconds(t: &FrozenTrial, n_fit: usize, n_valid: usize) -> f64 {
    attr(t, TRAIN_SECONDS_PER_ROW) * n_fit as f64 + attr(t, VALID_SECONDS_PER_ROW) * n_valid as f64
}

fn value(t: &FrozenTrial) -> f64 {
    t.value.unwrap_or(f64::NEG_INFINITY)
}

/// Training seconds per row (infinite when unknown, so an unmeasured trial is never "fastest").
fn speed(t: &FrozenTrial) -> f64 {
    let s = attr(t, TRAIN_SECONDS_PER_ROW);
    if s.is_finite() { s } else { f64::INFINITY }
}

/// A numeric user attribute of a trial (NaN when absent).
pub fn attr(t: &FrozenTrial, key: &str) -> f64 {
    t.user_attrs
        .get(key)
        .and_then(ParamValue::as_f64)
        .unwrap_or(f64::NAN)
}

pub(crate) fn invalid(message: String) -> Error {
    CoreError::InvalidInput(message).into()
}

/// What every search trial trains and validates on, and when the search ends.
struct SearchData<'a> {
    families: &'a [Arc<dyn ModelFamily>],
    search: &'a (dyn Dataset + Sync + 'a),
    valid: &'a (dyn Dataset + Sync + 'a),
    deadline: Instant,
}

/// A trial's budget under [`TrialBudgets::Hyperband`], and where its configuration keeps its
/// checkpoints.
#[derive(Clone, Copy)]
struct Scheduled<'a> {
    budget: Budget,
    checkpoints: &'a Path,
}

/// A trial's context that also asks to stop once the search's deadline has passed, so the
/// last trial cannot overrun the budget by more than an epoch.
struct Deadline<'a> {
    trial: &'a mut Trial,
    until: Instant,
}

impl TrialContext for Deadline<'_> {
    fn report(&mut self, step: u64, value: f64) -> CoreResult<()> {
        self.trial.report(step, value)
    }

    fn should_prune(&self) -> bool {
        Instant::now() >= self.until || self.trial.should_prune()
    }
}

/// The refit's context: passes every epoch's score to the observer; never prunes.
pub(crate) struct Relay<'a>(pub(crate) &'a mut (dyn Observer + Send));

impl TrialContext for Relay<'_> {
    fn report(&mut self, step: u64, value: f64) -> CoreResult<()> {
        self.0.refit_epoch(step, value);
        Ok(())
    }

    fn should_prune(&self) -> bool {
        false
    }
}
