//! AutoML on text: [`AutoMl::fit_text`] searches the text families on a stratified hold-out
//! of the training documents within the run's budget, then retrains the winner on every
//! training document when the time left allows it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lepton_core::{
    Error as CoreError, FrozenTrial, ParamValue, Result as CoreResult, Target, Task, Trial,
};
use lepton_data::{TextCorpus, stratified_holdout_indices};
use lepton_search::OptimizeOptions;

use crate::automl::{
    AutoMl, Observer, bad_setting, family_of, invalid, leaderboard, none_completed, own_params,
    own_params_of, suggest_family,
};
use crate::error::Result;
use crate::metric::Metric;
use crate::text_family::{FittedText, TextFamily, TextFamilyKind, TextTrainRequest};
use crate::text_predictor::TextPredictor;

/// The user attribute of a text trial: the seconds its training takes from raw documents.
const TRAIN_SECONDS: &str = "train_seconds";
/// The user attribute of a text trial: the seconds its training and validation took.
const TRIAL_SECONDS: &str = "trial_seconds";

/// The outcome of a text run ([`AutoMl::fit_text`]).
#[derive(Debug)]
pub struct TextRun {
    /// The winner, ready to predict raw texts and to save.
    pub predictor: TextPredictor,
    /// The search trial whose configuration won.
    pub winner: FrozenTrial,
    /// Complete trials, best first.
    pub leaderboard: Vec<FrozenTrial>,
    /// Every trial of the study, in number order.
    pub trials: Vec<FrozenTrial>,
    /// The metric the search optimized.
    pub metric: Metric,
    /// The winner's score on the validation documents.
    pub valid_score: f64,
    /// Whether the model was retrained on every training document (else it is the winning
    /// trial's, trained without the validation documents: there was no time to retrain).
    pub on_all_documents: bool,
    /// Seconds the search's trials spent training and validating, by family.
    pub family_seconds: BTreeMap<String, f64>,
    /// Wall time of the search.
    pub search_time: Duration,
    /// Wall time of the retraining.
    pub refit_time: Duration,
}

/// A trial's number, score and model.
type KeptModel = (u64, f64, Box<dyn FittedText>);

/// The share of the budget a text run's search may use: the rest retrains the winner on
/// every document (a trial's training and a bit more).
const TEXT_SEARCH_SHARE: f64 = 0.8;

impl AutoMl {
    /// Searches the built-in text families on `corpus` (at least two classes) for the
    /// run's budget and returns the best model, retrained on every document when the time
    /// left allows it. Trials are validated on a stratified hold-out of the validation
    /// fraction; the metric must score a classification (accuracy by default).
    pub fn fit_text(&self, corpus: &TextCorpus) -> Result<TextRun> {
        self.fit_text_with(corpus, &TextFamilyKind::all(), &mut crate::Quiet)
    }

    /// [`fit_text`](Self::fit_text) among `families` (the built-in ones are
    /// [`TextFamilyKind::all`]), telling `observer` of every trial.
    pub fn fit_text_with(
        &self,
        corpus: &TextCorpus,
        families: &[Arc<dyn TextFamily>],
        observer: &mut (dyn Observer + Send),
    ) -> Result<TextRun> {
        let started = Instant::now();
        let task = Task::Classification {
            classes: corpus.classes().to_vec(),
        };
        let metric = self.metric.unwrap_or_else(|| Metric::default_for(&task));
        if !metric.fits(&task) {
            return Err(bad_setting(
                "metric",
                format!("{metric} does not score a text classification"),
            ));
        }
        if families.is_empty() {
            return Err(bad_setting("families", "no text family to search".into()));
        }
        let classes = corpus.classes().len();
        let counts = corpus.class_counts();
        if let Some(c) = counts.iter().position(|&n| n < 2) {
            return Err(invalid(format!(
                "class `{}` has {} document(s): each class needs at least 2 to be searched on",
                corpus.classes()[c],
                counts[c]
            )));
        }
        let (train_rows, valid_rows) = stratified_holdout_indices(
            corpus.labels(),
            corpus.classes(),
            self.validation_fraction,
            self.seed,
        )?;
        let (train, valid) = (corpus.select(&train_rows)?, corpus.select(&valid_rows)?);
        let valid_targets: Vec<Target> = valid.labels().iter().map(|&l| Target::Class(l)).collect();
        let valid_texts: Vec<&str> = valid.texts().iter().map(String::as_str).collect();

        let study = self.study(metric, false)?;
        self.enqueue_defaults(&study, families)?;
        let search_budget = self.budget.mul_f64(TEXT_SEARCH_SHARE);
        let mut options = OptimizeOptions::timeout(search_budget);
        if let Some(max) = self.max_trials {
            options = options.with_trials(max);
        }
        let deadline = started + search_budget;
        // The best trial's model so far, kept in case there is no time to retrain.
        let best: Mutex<Option<KeptModel>> = Mutex::new(None);
        let objective = |trial: &mut Trial| -> CoreResult<f64> {
            let family = suggest_family(trial, families)?;
            let request = TextTrainRequest {
                params: own_params_of(trial.params(), family.name()),
                texts: train.texts(),
                labels: train.labels(),
                classes,
                seed: self.seed.wrapping_add(trial.number()),
                time_limit: Some(deadline.saturating_duration_since(Instant::now())),
            };
            let timed = Instant::now();
            let model = family.train(&request)?;
            // From raw documents, as a retraining would take (a family may reuse work).
            trial.set_user_attr(TRAIN_SECONDS, model.train_seconds())?;
            let predictions = model.predict_texts(&valid_texts)?;
            let scores = metric
                .scores(&task, &valid_targets, &predictions)
                .map_err(CoreError::from)?;
            trial.set_user_attr(TRIAL_SECONDS, timed.elapsed().as_secs_f64())?;
            let score = metric
                .of(&scores)
                .filter(|s| s.is_finite())
                .ok_or_else(|| {
                    CoreError::InvalidInput(format!(
                        "{metric} is undefined on the validation documents"
                    ))
                })?;
            let mut best = best.lock().map_err(|_| {
                CoreError::InvalidInput("a text trial panicked while keeping its model".into())
            })?;
            if best
                .as_ref()
                .is_none_or(|(_, b, _)| metric.direction().is_better(score, *b))
            {
                *best = Some((trial.number(), score, model));
            }
            Ok(score)
        };
        study.optimize_with_options(options, objective, |t| observer.trial(t))?;
        let search_time = started.elapsed();

        let trials = study.trials()?;
        let mut family_seconds: BTreeMap<String, f64> = BTreeMap::new();
        for t in &trials {
            if let (Some(name), Some(seconds)) = (
                t.params.get("family").and_then(ParamValue::as_str),
                t.user_attrs.get(TRIAL_SECONDS).and_then(ParamValue::as_f64),
            ) {
                *family_seconds.entry(name.to_owned()).or_default() += seconds;
            }
        }
        let board = leaderboard(&trials, metric.direction());
        let winner = board
            .first()
            .ok_or_else(|| none_completed(&trials, search_budget))?
            .clone();
        let family = family_of(&winner, families)?;
        let params = own_params(&winner, family.name());
        let valid_score = winner.value.unwrap_or(f64::NAN);

        // Retrained on every document when the time left allows one more training at the
        // pace the winner's trial measured, scaled to the larger corpus; else the winning
        // trial's model (trained without the validation documents) is kept.
        let refit_started = Instant::now();
        let left = self.budget.saturating_sub(started.elapsed()).as_secs_f64();
        let measured = winner
            .user_attrs
            .get(TRAIN_SECONDS)
            .and_then(ParamValue::as_f64)
            .unwrap_or(f64::INFINITY);
        let needed = measured * corpus.len() as f64 / train.len() as f64 * 1.2;
        let kept = best
            .into_inner()
            .map_err(|_| invalid("a text trial panicked while keeping its model".into()))?
            .filter(|(number, _, _)| *number == winner.number);
        let (model, on_all_documents) = match kept {
            Some((_, _, model)) if needed > left => {
                tracing::info!(
                    needed_seconds = needed,
                    left_seconds = left,
                    "no time to retrain on every document: the winning trial's model is kept"
                );
                (model, false)
            }
            _ => {
                let model = family.train(&TextTrainRequest {
                    params,
                    texts: corpus.texts(),
                    labels: corpus.labels(),
                    classes,
                    seed: self.seed.wrapping_add(winner.number),
                    time_limit: None,
                })?;
                (model, true)
            }
        };
        let predictor = TextPredictor::new(model, corpus.classes().to_vec())?;
        Ok(TextRun {
            predictor,
            winner,
            leaderboard: board,
            trials,
            metric,
            valid_score,
            on_all_documents,
            family_seconds,
            search_time,
            refit_time: refit_started.elapsed(),
        })
    }
}
