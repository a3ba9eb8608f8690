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
use std::path::Path;
use std::time::{Duration, Instant};

use lepton_core::{
    Dataset, Direction, Error as CoreError, FrozenTrial, NopPruner, ParamValue,
    Result as CoreResult, Schema, SearchSpace, Subset, Target, Task, Trial, TrialContext,
    TrialState, scoped_params,
};
use lepton_data::{holdout_indices, stratified_holdout_indices};
use lepton_deploy::{Examples, ModelArtifact};
use lepton_models::{
    Backend, CnnClassifier, CnnConfig, CnnSpace, ForestConfig, ForestModel, ForestSpace,
    LinearSpace, MlpClassifier, MlpConfig, MlpRegressor, MlpSpace, Schedule,
};
use lepton_report::{CONFUSION_ATTR, Confusion};
use lepton_search::{Budget, HyperbandScheduler, Optimize, Study, pruners, samplers, storage};

use crate::error::{Error, Result};
use crate::fitted_model::{FittedModel, replay_sample};
use crate::tabular_automl::attr;

/// A model family [`AutoMl`] can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Logistic or least-squares regression ([`LinearSpace`]).
    Linear,
    /// A multi-layer perceptron ([`MlpSpace`]).
    Mlp,
    /// A convolutional network for images, classification only ([`CnnSpace`]).
    Cnn,
    /// Bagged decision trees, the tabular baseline ([`ForestSpace`]).
    Forest,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 4] = [Family::Linear, Family::Mlp, Family::Cnn, Family::Forest];

    /// The name used in the search space and in artifacts.
    pub fn name(self) -> &'static str {
        match self {
            Family::Linear => "linear",
            Family::Mlp => "mlp",
            Family::Cnn => "cnn",
            Family::Forest => "forest",
        }
    }

    /// The family called `name`.
    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The family's default configuration, as values of its own space.
    fn defaults(self) -> BTreeMap<String, ParamValue> {
        match self {
            Family::Linear => LinearSpace::defaults(),
            Family::Mlp => MlpSpace::defaults(),
            Family::Cnn => CnnSpace::defaults(),
            Family::Forest => ForestSpace::defaults(),
        }
    }

    /// The prefix of the family's parameters in the conditional space (`cnn.learning_rate`).
    fn prefix(self) -> &'static str {
        match self {
            Family::Linear => "linear.",
            Family::Mlp => "mlp.",
            Family::Cnn => "cnn.",
            Family::Forest => "forest.",
        }
    }
}

/// A family's configuration, ready to train.
#[derive(Debug, Clone)]
enum Candidate {
    Mlp(MlpConfig),
    Cnn(CnnConfig),
    Forest(ForestConfig),
}

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
    families: Vec<Family>,
    image: Option<(usize, usize)>,
    budget: Duration,
    search_share: f64,
    max_trials: Option<usize>,
    search_rows: usize,
    search_epochs: usize,
    trial_time: Option<Duration>,
    patience: usize,
    max_refit_epochs: usize,
    validation_fraction: f64,
    schedule: Schedule,
    sampler: String,
    pruner: String,
    trial_budgets: TrialBudgets,
    storage: Option<String>,
    study_name: String,
    warm_start: bool,
    data_parallel: usize,
    seed: u64,
}

impl Default for AutoMl {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of an [`AutoMl`] run.
#[derive(Debug)]
pub struct AutoMlRun<B: Backend> {
    /// The winner, refitted on every training row but the validation hold-out.
    pub model: FittedModel<B>,
    /// The search trial whose configuration won.
    pub winner: FrozenTrial,
    /// Complete trials, best validation score first.
    pub leaderboard: Vec<FrozenTrial>,
    /// Every trial of the study, in number order (failed and pruned ones included).
    pub trials: Vec<FrozenTrial>,
    /// The refit's validation score (accuracy or R²) on the hold-out. When the model was then
    /// retrained on all rows (`on_all_rows`), this is the estimate for it.
    pub valid_score: f64,
    /// Whether the returned model was retrained on every training row, hold-out included, for
    /// the refit's best epoch count (done when the budget has room for it).
    pub on_all_rows: bool,
    /// The epochs the refit was given (it keeps its best epoch's weights).
    pub refit_epochs: usize,
    /// Wall time of the search.
    pub search_time: Duration,
    /// Wall time of the refit.
    pub refit_time: Duration,
    /// The training data's schema (the model's input columns and task).
    pub schema: Schema,
    /// Up to 1,000 training rows for online learning to replay
    /// ([`to_artifact`](Self::to_artifact) stores them as `replay.json`).
    pub replay: Examples,
}

impl<B: Backend> AutoMlRun<B> {
    /// The model's artifact for the training data's schema, with its evaluation `metrics` and
    /// the run's replay sample, so that the prediction server can fine-tune it online.
    pub fn to_artifact(&self, metrics: BTreeMap<String, f64>) -> Result<ModelArtifact> {
        Ok(self
            .model
            .to_artifact(self.schema.clone(), metrics)?
            .with_replay(&self.replay)?)
    }
}

impl AutoMl {
    /// Settings for tables: linear models and MLPs (add [`Family::Forest`] with
    /// [`with_families`](Self::with_families) for tree ensembles), at most 100 trials within a 2-minute
    /// budget (half for the search), up to 100 epochs per trial with patience 10, a 20 %
    /// validation hold-out, TPE with the median pruner, seed 42.
    pub fn new() -> Self {
        AutoMl {
            families: vec![Family::Linear, Family::Mlp],
            image: None,
            budget: Duration::from_secs(120),
            search_share: 0.5,
            max_trials: Some(100),
            search_rows: 10_000,
            search_epochs: 100,
            trial_time: None,
            patience: 10,
            max_refit_epochs: 100,
            validation_fraction: 0.2,
            schedule: Schedule::Constant,
            sampler: "tpe".into(),
            pruner: "median".into(),
            trial_budgets: TrialBudgets::Pruned,
            storage: None,
            study_name: "automl".into(),
            warm_start: true,
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
            search_share: 0.35,
            max_trials: None,
            search_epochs: 4,
            patience: 4,
            max_refit_epochs: 40,
            validation_fraction: 0.1,
            schedule: Schedule::Cosine,
            pruner: "asha".into(),
            ..Self::new()
        }
    }

    /// Sets the families to choose from.
    pub fn with_families(mut self, families: &[Family]) -> Self {
        self.families = families.to_vec();
        self
    }

    /// Sets the whole wall-clock budget (search and refit).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the share of the budget the search may use, in `(0, 1)`.
    pub fn with_search_share(mut self, share: f64) -> Self {
        self.search_share = share;
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

    /// Sets the sampler, by name (`lepton_search::samplers::SAMPLER_NAMES`).
    pub fn with_sampler(mut self, name: &str) -> Self {
        self.sampler = name.into();
        self
    }

    /// Sets the pruner, by name (`none`, `median`, `asha`, `hyperband`, `bohb`).
    pub fn with_pruner(mut self, name: &str) -> Self {
        self.pruner = name.into();
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

    /// Keeps the study in a storage (`sqlite://PATH`, `postgres://...`) under `study`; an
    /// existing study of that name is resumed and its trials count. The study keeps a
    /// heartbeat there (a persistent storage's default), so the trial of a run killed
    /// mid-trial is failed by the next run on the study once its heartbeat is 10 s old (or by
    /// `lepton study sweep`).
    pub fn with_storage(mut self, url: &str, study: &str) -> Self {
        self.storage = Some(url.into());
        self.study_name = study.into();
        self
    }

    /// Whether a new study first tries each family's default configuration (on by default,
    /// as auto-sklearn starts from known-good configurations) before the sampler's own.
    pub fn with_warm_start(mut self, on: bool) -> Self {
        self.warm_start = on;
        self
    }

    /// Trains every network (MLPs and CNNs; forests are unaffected) data-parallel on
    /// `devices` devices of the backend, each batch split across them (see
    /// `MlpClassifier::with_data_parallel`); 1, the default, trains on one device. 0 is
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

    /// Searches and refits on `train` (the test rows must not be in it).
    pub fn fit<B: Backend>(&self, train: &(dyn Dataset + Sync)) -> Result<AutoMlRun<B>> {
        self.fit_observed(train, &mut Quiet)
    }

    /// [`fit`](Self::fit), telling `observer` about every trial and refit epoch.
    pub fn fit_observed<B: Backend>(
        &self,
        train: &(dyn Dataset + Sync),
        observer: &mut (dyn Observer + Send),
    ) -> Result<AutoMlRun<B>> {
        let started = Instant::now();
        let families = self.check(train)?;
        let n = train.len();
        let (fit_rows, valid_rows) = match &train.schema().task {
            Task::Classification { classes } => {
                let labels = (0..n)
                    .map(|i| match train.target(i) {
                        Some(Target::Class(c)) if c < classes.len() => Ok(c),
                        other => Err(invalid(format!(
                            "row {i}: target {other:?} is not one of {} classes",
                            classes.len()
                        ))),
                    })
                    .collect::<Result<Vec<usize>>>()?;
                stratified_holdout_indices(&labels, classes, self.validation_fraction, self.seed)?
            }
            Task::Regression => holdout_indices(n, self.validation_fraction, self.seed)?,
        };
        let search_rows = fit_rows[..fit_rows.len().min(self.search_rows)].to_vec();
        let fit: Subset<dyn Dataset + Sync> = Subset::new(train, fit_rows)?;
        let valid: Subset<dyn Dataset + Sync> = Subset::new(train, valid_rows)?;
        let search: Subset<dyn Dataset + Sync> = Subset::new(train, search_rows)?;

        let mut builder = Study::builder(&self.study_name)
            .with_direction(Direction::Maximize)
            .with_sampler(samplers::by_name(&self.sampler, self.seed)?)
            .with_pruner(match self.trial_budgets {
                TrialBudgets::Pruned => pruners::by_name(&self.pruner)?,
                // The scheduler decides who goes on.
                TrialBudgets::Hyperband { .. } => Box::new(NopPruner),
            });
        if let Some(url) = &self.storage {
            builder = builder.with_storage(storage::open(url)?);
        }
        let study = builder.build()?;
        if self.warm_start && study.trials()?.is_empty() {
            for &f in &families {
                let mut params: BTreeMap<String, ParamValue> = f
                    .defaults()
                    .into_iter()
                    .map(|(k, v)| (format!("{}{k}", f.prefix()), v))
                    .collect();
                params.insert("family".into(), f.name().into());
                study.enqueue(params)?;
            }
        }
        let search_budget = self.budget.mul_f64(self.search_share);
        let search_data = SearchData {
            families: &families,
            search: &search,
            valid: &valid,
            deadline: started + search_budget,
        };
        match self.trial_budgets {
            TrialBudgets::Pruned => {
                let mut options = Optimize::timeout(search_budget);
                if let Some(max) = self.max_trials {
                    options = options.with_trials(max);
                }
                study.optimize_with_options(
                    options,
                    |trial| self.search_trial::<B>(trial, &search_data, None),
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
                        let score = self.search_trial::<B>(trial, &search_data, Some(scheduled))?;
                        if trial.params().get("family").and_then(ParamValue::as_str)
                            == Some(Family::Forest.name())
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
        let mut leaderboard: Vec<FrozenTrial> = trials
            .iter()
            .filter(|t| t.state == TrialState::Complete && t.value.is_some())
            .cloned()
            .collect();
        leaderboard.sort_by(|a, b| value(b).total_cmp(&value(a)));
        // Does the rest of the budget cut a trial's refit short of its most epochs?
        let left = self.budget.saturating_sub(started.elapsed()).as_secs_f64() * 0.97;
        let time_binds = |t: &FrozenTrial| {
            epoch_seconds(t, fit.len(), valid.len()) * self.max_refit_epochs as f64 > left
        };
        let winner = choose(&leaderboard, &train.schema().task, valid.len(), time_binds)
            .ok_or_else(|| {
                invalid(format!(
                    "none of the {} trials completed within the search budget of {:.0} s",
                    trials.len(),
                    search_budget.as_secs_f64()
                ))
            })?
            .clone();

        // Refit: as many epochs as the winner's measured speed fits into the rest of the
        // budget (less a small reserve for the caller's test evaluation).
        let family = winner
            .params
            .get("family")
            .and_then(ParamValue::as_str)
            .and_then(Family::parse)
            .ok_or_else(|| invalid("the winning trial has no family".into()))?;
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
        let candidate = Candidate::from_params(family, &winner.params, self)?
            .with_epochs(epochs, patience)
            .with_seed(self.seed);
        observer.refit_started(&winner, epochs);
        let refit_started = Instant::now();
        let mut model = {
            let mut ctx = Relay(observer);
            let run = RunLimits {
                time: guard,
                devices: self.data_parallel,
                scheduled: None,
            };
            candidate.train::<B>(&fit, &valid, run, &mut ctx)?
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
            model = candidate.with_epochs(best_epoch, best_epoch).train::<B>(
                &everything,
                &none,
                RunLimits {
                    time: None,
                    devices: self.data_parallel,
                    scheduled: None,
                },
                &mut Relay(&mut Quiet),
            )?;
        }
        Ok(AutoMlRun {
            model,
            winner,
            leaderboard,
            trials,
            valid_score,
            refit_epochs: epochs,
            on_all_rows,
            search_time,
            refit_time: refit_started.elapsed(),
            schema: train.schema().clone(),
            replay: replay_sample(train, self.seed)?,
        })
    }

    /// One search trial: suggests a family and its configuration, trains it on the search
    /// rows (when scheduled: up to its budget, continuing its checkpoint) and returns its best
    /// validation score, recording its speed for the refit.
    fn search_trial<B: Backend>(
        &self,
        trial: &mut Trial,
        data: &SearchData,
        scheduled: Option<Scheduled>,
    ) -> CoreResult<f64> {
        let names: Vec<&str> = data.families.iter().map(|f| f.name()).collect();
        let family = trial.suggest_categorical("family", &names)?;
        let family = family
            .as_str()
            .and_then(Family::parse)
            .ok_or_else(|| CoreError::InvalidInput(format!("unknown family {family}")))?;
        // A configuration keeps its seed across promotions.
        let config = scheduled
            .as_ref()
            .map_or(trial.number(), |s| s.budget.config);
        let candidate = self
            .candidate(family, trial)?
            .with_epochs(self.search_epochs, self.patience)
            .with_seed(self.seed.wrapping_add(config));
        let model = {
            let mut ctx = Deadline {
                trial: &mut *trial,
                until: data.deadline,
            };
            let run = RunLimits {
                time: self.trial_time,
                devices: self.data_parallel,
                scheduled,
            };
            candidate.train::<B>(data.search, data.valid, run, &mut ctx)?
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

    /// Checks the settings against the data; returns the families that fit its task.
    fn check(&self, train: &dyn Dataset) -> Result<Vec<Family>> {
        let bad = |name: &str, reason: String| -> Error {
            CoreError::InvalidParameter {
                name: name.into(),
                reason,
            }
            .into()
        };
        if !(self.search_share > 0.0 && self.search_share < 1.0) {
            return Err(bad(
                "search_share",
                format!("{} is outside (0, 1)", self.search_share),
            ));
        }
        if self.budget.is_zero() {
            return Err(bad("budget", "must be positive".into()));
        }
        if self.trial_time.is_some_and(|t| t.is_zero()) {
            return Err(bad("trial_time", "must be positive".into()));
        }
        for (name, v) in [
            ("search_rows", self.search_rows),
            ("search_epochs", self.search_epochs),
            ("patience", self.patience),
            ("max_refit_epochs", self.max_refit_epochs),
            ("data_parallel", self.data_parallel),
        ] {
            if v == 0 {
                return Err(bad(name, "must be at least 1".into()));
            }
        }
        let schema = train.schema();
        let classification = match &schema.task {
            Task::Classification { classes } if classes.len() < 2 => {
                return Err(invalid(format!(
                    "classification needs at least 2 classes, the data has {}",
                    classes.len()
                )));
            }
            Task::Classification { .. } => true,
            Task::Regression => false,
        };
        if train.len() < 10 {
            return Err(invalid(format!(
                "{} training rows are too few to search on",
                train.len()
            )));
        }
        let mut families = Vec::new();
        for &f in &self.families {
            if f == Family::Cnn {
                let Some((h, w)) = self.image else {
                    return Err(bad(
                        "families",
                        "the CNN needs an image size (AutoMl::for_images)".into(),
                    ));
                };
                if schema.features.len() != h * w {
                    return Err(invalid(format!(
                        "rows have {} values, {h}x{w} images need {}",
                        schema.features.len(),
                        h * w
                    )));
                }
                if !classification {
                    continue; // CNNs here classify; a regression searches the others.
                }
            }
            if !families.contains(&f) {
                families.push(f);
            }
        }
        if families.is_empty() {
            return Err(bad(
                "families",
                format!("none of {:?} fits this task", self.families),
            ));
        }
        Ok(families)
    }

    /// Suggests `family`'s parameters (under its prefix) and builds its configuration.
    fn candidate(&self, family: Family, trial: &mut Trial) -> CoreResult<Candidate> {
        trial.scoped(family.prefix(), |t| match family {
            Family::Linear => LinearSpace.suggest(t),
            Family::Mlp => MlpSpace.suggest(t),
            Family::Cnn => CnnSpace.suggest(t),
            Family::Forest => ForestSpace.suggest(t),
        })?;
        Ok(Candidate::from_params(family, trial.params(), self)?)
    }
}

impl Candidate {
    /// `family`'s configuration with the values of its scope in `params`.
    fn from_params<K: std::borrow::Borrow<str>>(
        family: Family,
        params: &BTreeMap<K, ParamValue>,
        settings: &AutoMl,
    ) -> lepton_models::Result<Candidate> {
        let own = scoped_params(params, family.prefix());
        Ok(match family {
            Family::Linear => {
                let mut c = LinearSpace::config();
                c.optimisation.schedule = settings.schedule;
                Candidate::Mlp(c.with_params(&own)?)
            }
            Family::Mlp => {
                let mut c = MlpConfig::default();
                c.optimisation.schedule = settings.schedule;
                Candidate::Mlp(c.with_params(&own)?)
            }
            Family::Cnn => {
                let (h, w) = settings.image.unwrap_or((0, 0));
                let mut c = CnnConfig::default().with_image_size(h, w);
                c.optimisation.schedule = settings.schedule;
                Candidate::Cnn(c.with_params(&own)?)
            }
            Family::Forest => Candidate::Forest(ForestConfig::default().with_params(&own)?),
        })
    }

    fn with_epochs(self, epochs: usize, patience: usize) -> Self {
        match self {
            Candidate::Mlp(c) => Candidate::Mlp(c.with_max_epochs(epochs).with_patience(patience)),
            Candidate::Cnn(c) => Candidate::Cnn(c.with_max_epochs(epochs).with_patience(patience)),
            // Trees are grown once: there are no epochs.
            Candidate::Forest(c) => Candidate::Forest(c),
        }
    }

    fn with_seed(self, seed: u64) -> Self {
        match self {
            Candidate::Mlp(c) => Candidate::Mlp(c.with_seed(seed)),
            Candidate::Cnn(c) => Candidate::Cnn(c.with_seed(seed)),
            Candidate::Forest(c) => Candidate::Forest(c.with_seed(seed)),
        }
    }

    fn train<B: Backend>(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        run: RunLimits,
        ctx: &mut dyn TrialContext,
    ) -> CoreResult<FittedModel<B>> {
        // No limit: one longer than any run.
        let limit = run.time.unwrap_or(Duration::MAX);
        // Sets a model's time limit and, when scheduled, its budget and checkpoints.
        macro_rules! limited {
            ($model:expr) => {{
                let model = $model
                    .with_time_limit(limit)
                    .with_data_parallel(run.devices);
                match &run.scheduled {
                    Some(s) => model
                        .with_epoch_budget(s.budget.steps as usize)
                        .with_checkpoints(s.checkpoints),
                    None => model,
                }
            }};
        }
        Ok(match self {
            Candidate::Mlp(c) => match train.schema().task {
                Task::Classification { .. } => FittedModel::Mlp(Box::new(
                    limited!(MlpClassifier::<B>::new(c.clone())?).train(train, valid, ctx)?,
                )),
                Task::Regression => FittedModel::Mlp(Box::new(
                    limited!(MlpRegressor::<B>::new(c.clone())?).train(train, valid, ctx)?,
                )),
            },
            Candidate::Cnn(c) => FittedModel::Cnn(Box::new(
                limited!(CnnClassifier::<B>::new(c.clone())?).train(train, valid, ctx)?,
            )),
            Candidate::Forest(c) => FittedModel::Forest(Box::new(
                ForestModel::new(c.clone())?.train(train, valid, ctx)?,
            )),
        })
    }
}

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

fn invalid(message: String) -> Error {
    CoreError::InvalidInput(message).into()
}

/// What every search trial trains and validates on, and when the search ends.
struct SearchData<'a> {
    families: &'a [Family],
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

/// How far one training run may go, and on how many devices.
struct RunLimits<'a> {
    /// No epoch starts after this much time.
    time: Option<Duration>,
    /// Devices of the backend sharing every batch (networks only).
    devices: usize,
    /// A budget within a longer, resumable run.
    scheduled: Option<Scheduled<'a>>,
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
struct Relay<'a>(&'a mut (dyn Observer + Send));

impl TrialContext for Relay<'_> {
    fn report(&mut self, step: u64, value: f64) -> CoreResult<()> {
        self.0.refit_epoch(step, value);
        Ok(())
    }

    fn should_prune(&self) -> bool {
        false
    }
}
