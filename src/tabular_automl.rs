//! AutoML for raw tables: a cross-validated hyper-parameter search over an MLP, a refit of the
//! best configuration, and a predictor that carries its preprocessing.

use lepton_core::{
    DetachedContext, Direction, Error as CoreError, FrozenTrial, ParamValue, SearchSpace,
    TrialContext, TrialState,
};
use lepton_data::{
    Preprocessor, Table, TabularDataset, TargetKind, kfold_indices, stratified_kfold_indices,
};
use lepton_deploy::{Examples, ModelArtifact};
use lepton_models::{Backend, FittedMlp, MlpClassifier, MlpConfig, MlpRegressor, MlpSpace};
use lepton_search::{RandomSampler, Study};

use crate::error::{Error, Result};
use crate::fitted_model::replay_sample;
use crate::predictor::TabularPredictor;

/// The search settings. Defaults: 25 trials, 5 folds, seed 42, the automatic preprocessing
/// pipeline, random search over [`MlpSpace`].
#[derive(Debug, Clone)]
pub struct TabularAutoMl {
    trials: usize,
    folds: usize,
    seed: u64,
    preprocessor: Preprocessor,
}

impl Default for TabularAutoMl {
    fn default() -> Self {
        TabularAutoMl {
            trials: 25,
            folds: 5,
            seed: 42,
            preprocessor: Preprocessor::default(),
        }
    }
}

/// The outcome of a search.
#[derive(Debug)]
pub struct TabularRun<B: Backend> {
    /// The best configuration refitted on all the training rows, with its preprocessor.
    pub predictor: TabularPredictor<B>,
    /// Complete trials, best first (cross-validated score, then validation loss).
    pub leaderboard: Vec<FrozenTrial>,
    /// Every trial of the study, in number order (failed and pruned ones included).
    pub trials: Vec<FrozenTrial>,
    /// Epochs of the refit (the winner's mean best epoch over the folds).
    pub refit_epochs: usize,
    /// Up to 1,000 training rows, encoded as the model takes them, for online learning to
    /// replay ([`to_artifact`](Self::to_artifact) stores them as `replay.json`).
    pub replay: Examples,
}

impl<B: Backend> TabularRun<B> {
    /// The predictor's artifact with its evaluation `metrics` and the run's replay sample,
    /// so that the prediction server can fine-tune it online.
    pub fn to_artifact(
        &self,
        metrics: std::collections::BTreeMap<String, f64>,
    ) -> Result<ModelArtifact> {
        Ok(self
            .predictor
            .to_artifact(metrics)?
            .with_replay(&self.replay)?)
    }

    /// Saves [`to_artifact`](Self::to_artifact)'s artifact as a directory.
    pub fn save(
        &self,
        dir: impl AsRef<std::path::Path>,
        metrics: std::collections::BTreeMap<String, f64>,
    ) -> Result<()> {
        self.to_artifact(metrics)?.save(dir)?;
        Ok(())
    }
}

impl TabularAutoMl {
    /// Default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of trials (at least 1).
    pub fn with_trials(mut self, trials: usize) -> Self {
        self.trials = trials;
        self
    }

    /// Sets the cross-validation folds per trial (at least 2).
    pub fn with_folds(mut self, folds: usize) -> Self {
        self.folds = folds;
        self
    }

    /// Sets the seed of the folds, the sampler and the training runs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the preprocessing pipeline.
    pub fn with_preprocessor(mut self, preprocessor: Preprocessor) -> Self {
        self.preprocessor = preprocessor;
        self
    }

    /// Searches on `train` (the held-out test rows must not be in it) for predicting
    /// `target`; `on_trial` sees every finished trial (for progress display).
    pub fn fit<B: Backend>(
        &self,
        train: &Table,
        target: &str,
        kind: TargetKind,
        mut on_trial: impl FnMut(&FrozenTrial),
    ) -> Result<TabularRun<B>> {
        if self.trials == 0 {
            return Err(CoreError::InvalidParameter {
                name: "trials".into(),
                reason: "at least 1".into(),
            }
            .into());
        }
        let splits = match kind {
            TargetKind::Classification => {
                let (labels, classes) = train.class_indices(target)?;
                stratified_kfold_indices(&labels, &classes, self.folds, self.seed)?
            }
            TargetKind::Regression => kfold_indices(train.n_rows(), self.folds, self.seed)?,
        };
        let mut folds: Vec<(TabularDataset, TabularDataset)> = Vec::with_capacity(splits.len());
        for (train_rows, valid_rows) in &splits {
            let (fold_train, fold_valid) = (train.select(train_rows)?, train.select(valid_rows)?);
            let p = self.preprocessor.fit(&fold_train, target, kind)?;
            folds.push((p.transform(&fold_train)?, p.transform(&fold_valid)?));
        }

        let study = Study::builder("tabular-automl")
            .with_direction(Direction::Maximize)
            .with_sampler(RandomSampler::new(self.seed))
            .build()?;
        study.optimize_with(
            self.trials,
            |trial| {
                MlpSpace.suggest(trial)?;
                let config = MlpConfig::default()
                    .with_seed(self.seed + trial.number())
                    .with_params(trial.params())?;
                let (mut score, mut loss, mut epochs) = (0.0, 0.0, 0.0);
                for (i, (fold_train, fold_valid)) in folds.iter().enumerate() {
                    let fitted: FittedMlp<B> = train_mlp(kind, &config, fold_train, fold_valid)?;
                    let summary = fitted.summary();
                    let (Some(s), Some(l)) = (summary.best_valid_score, summary.best_valid_loss)
                    else {
                        return Err(CoreError::InvalidInput("no validation score".into()));
                    };
                    score += s;
                    loss += l;
                    epochs += summary.best_epoch as f64;
                    trial.report(i as u64 + 1, score / (i + 1) as f64)?;
                    if trial.should_prune() {
                        return Err(CoreError::Pruned { step: i as u64 + 1 });
                    }
                }
                let k = folds.len() as f64;
                trial.set_user_attr("best_epoch", (epochs / k).round() as i64)?;
                trial.set_user_attr("valid_loss", loss / k)?;
                Ok(score / k)
            },
            &mut on_trial,
        )?;

        let trials = study.trials()?;
        let mut leaderboard: Vec<FrozenTrial> = trials
            .iter()
            .filter(|t| t.state == TrialState::Complete && t.value.is_some())
            .cloned()
            .collect();
        leaderboard.sort_by(|a, b| {
            b.value
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.value.unwrap_or(f64::NEG_INFINITY))
                .then(attr(a, "valid_loss").total_cmp(&attr(b, "valid_loss")))
        });
        let winner = leaderboard.first().ok_or_else(|| {
            CoreError::InvalidInput(format!("none of the {} trials completed", trials.len()))
        })?;

        // Refit on every training row for the epochs the winner needed on average.
        let refit_epochs = (attr(winner, "best_epoch") as usize).max(1);
        let config = MlpConfig::default()
            .with_seed(self.seed)
            .with_params(&winner.params)
            .map_err(Error::from)?
            .with_max_epochs(refit_epochs);
        let preprocessor = self.preprocessor.fit(train, target, kind)?;
        let data = preprocessor.transform(train)?;
        let empty = data.select(&[])?;
        let model: FittedMlp<B> = train_mlp(kind, &config, &data, &empty)?;
        Ok(TabularRun {
            predictor: TabularPredictor::new(preprocessor, model)?,
            leaderboard,
            trials,
            refit_epochs,
            replay: replay_sample(&data, self.seed)?,
        })
    }
}

/// A numeric user attribute of a trial (NaN when absent).
pub fn attr(t: &FrozenTrial, key: &str) -> f64 {
    t.user_attrs
        .get(key)
        .and_then(ParamValue::as_f64)
        .unwrap_or(f64::NAN)
}

fn train_mlp<B: Backend>(
    kind: TargetKind,
    config: &MlpConfig,
    train: &TabularDataset,
    valid: &TabularDataset,
) -> lepton_core::Result<FittedMlp<B>> {
    let mut ctx = DetachedContext::new();
    Ok(match kind {
        TargetKind::Classification => {
            MlpClassifier::<B>::new(config.clone())?.train(train, valid, &mut ctx)?
        }
        TargetKind::Regression => {
            MlpRegressor::<B>::new(config.clone())?.train(train, valid, &mut ctx)?
        }
    })
}
