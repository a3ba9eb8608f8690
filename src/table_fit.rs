//! AutoML on a raw table: each trial fits its family's preprocessing on its own training
//! rows (per fold), trains, predicts its validation rows and scores them in the run's
//! metric; ensemble selection over the trials' out-of-fold predictions picks the winner alone
//! or a weighted blend. Under k-fold cross-validation each member is the average of its fold
//! models (bagging), which made those predictions; under a hold-out each is refitted,
//! preprocessing and all, on every row.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lepton_core::{
    Dataset, Direction, Error as CoreError, FrozenTrial, Prediction, Result as CoreResult, Schema,
    Target, Task, Trial, TrialContext,
};
use lepton_data::{
    Column, FittedPreprocessor, Preprocessor, SplitIndices, Table, TabularDataset, TargetKind,
    holdout_indices, kfold_indices, stratified_holdout_indices, stratified_kfold_indices,
};
use lepton_models::Backend;
use lepton_search::OptimizeOptions;

use crate::automl::{
    AutoMl, AutoMlRun, Observer, Quiet, Relay, TRAIN_SECONDS_PER_ROW, TrialBudgets, Validation,
    attr, bad_setting, family_of, invalid, leaderboard, none_completed, own_params, suggest_family,
};
use crate::ensemble::Ensemble;
use crate::ensemble_selection::{SELECTION_ROUNDS, select_ensemble_within};
use crate::error::Result;
use crate::family::{Fitted, ModelFamily, features_for};
use crate::fitted_model::replay_sample_of_table;
use crate::metric::Metric;
use crate::out_of_fold::{self, OUT_OF_FOLD_BLOB};
use crate::predictor::Predictor;
use crate::scores::score_predictions;

/// The folds [`Validation::Auto`] cross-validates with.
const AUTO_FOLDS: usize = 5;

impl AutoMl {
    /// Searches and refits on a raw table for predicting column `target` (the test rows must
    /// not be in it): every family with its preprocessing, validated as
    /// [`with_validation`](Self::with_validation) says, scored in the run's metric.
    pub fn fit_table<B: Backend>(
        &self,
        table: &Table,
        target: &str,
        kind: TargetKind,
    ) -> Result<AutoMlRun> {
        self.fit_table_observed::<B>(table, target, kind, &mut Quiet)
    }

    /// [`fit_table`](Self::fit_table), telling `observer` about every trial and refit epoch.
    pub fn fit_table_observed<B: Backend>(
        &self,
        table: &Table,
        target: &str,
        kind: TargetKind,
        observer: &mut (dyn Observer + Send),
    ) -> Result<AutoMlRun> {
        self.run_table::<B>(table, target, kind, observer, true)?
            .ok_or_else(|| invalid("the run ended without its refit".into()))
    }

    /// Joins the search of a table run that another process started on the same persistent
    /// storage and study ([`with_storage`](Self::with_storage)), with the same data, target,
    /// settings and seed (so the same folds): runs trials until the search's share of the
    /// budget (from now) has passed or `max_trials` are done, then returns how many it ran.
    /// The refit happens once, in the process that started the run ([`fit_table`]), which
    /// chooses among every process's trials: each trial run here leaves its out-of-fold
    /// predictions in the storage (one that keeps trials' blobs, as SQLite and PostgreSQL
    /// do), so the run's ensemble selection sees them; such a member is refitted there on
    /// every row, where the starting process's own members are their bagged fold models.
    ///
    /// [`fit_table`]: Self::fit_table
    pub fn join_table<B: Backend>(
        &self,
        table: &Table,
        target: &str,
        kind: TargetKind,
        observer: &mut (dyn Observer + Send),
    ) -> Result<usize> {
        if self.storage.is_none() {
            return Err(bad_setting(
                "storage",
                "joining a run needs the storage and study it searches in".into(),
            ));
        }
        let mut seen = Counted(observer, 0);
        self.run_table::<B>(table, target, kind, &mut seen, false)?;
        Ok(seen.1)
    }

    /// The search, and the refit when `refit`.
    fn run_table<B: Backend>(
        &self,
        table: &Table,
        target: &str,
        kind: TargetKind,
        observer: &mut (dyn Observer + Send),
        refit: bool,
    ) -> Result<Option<AutoMlRun>> {
        let started = Instant::now();
        self.check()?;
        if let TrialBudgets::Hyperband { .. } = self.trial_budgets {
            return Err(bad_setting(
                "trial_budgets",
                "Hyperband budgets are for dataset runs (fit); a table run prunes by fold".into(),
            ));
        }
        let (task, labels) = target_of(table, target, kind)?;
        let metric = self.metric.unwrap_or_else(|| Metric::default_for(&task));
        if !metric.fits(&task) {
            return Err(bad_setting(
                "metric",
                format!(
                    "{metric} scores a {}, the target `{target}` is a {}",
                    if metric.classifies() {
                        "classification"
                    } else {
                        "regression"
                    },
                    if labels.is_some() {
                        "classification"
                    } else {
                        "regression"
                    },
                ),
            ));
        }
        let n = table.n_rows();
        if n < 10 {
            return Err(invalid(format!(
                "{}: {n} rows are too few to search on (at least 10)",
                table.source()
            )));
        }
        let columns = table.names().len().saturating_sub(1);
        let (validation, splits) = self.splits(n, columns, labels.as_ref(), &task)?;
        let folds: Vec<(Table, Table)> = splits
            .iter()
            .map(|(t, v)| Ok((table.select(t)?, table.select(v)?)))
            .collect::<Result<_>>()?;
        let raw = Schema {
            features: table
                .names()
                .iter()
                .filter(|n| *n != target)
                .cloned()
                .collect(),
            target: target.to_owned(),
            task: task.clone(),
        };
        let families = self.families_for::<B>(&raw)?;
        let study = self.study(metric, true)?;
        if refit {
            // Joining processes leave the warm start to the run's own.
            self.enqueue_defaults(&study, &families)?;
        }

        // Bagged fold models need no refit: the search may use nearly all of the budget,
        // unless other processes may join the study (`join_table`), whose trials' models are
        // not here: a winner among them is refitted.
        let bagging = self.bagging && matches!(validation, Validation::KFold(_));
        let share = match (self.search_share, bagging && self.storage.is_none()) {
            (Some(share), _) => share,
            (None, true) => BAGGED_SEARCH_SHARE,
            (None, false) => TABLE_SEARCH_SHARE,
        };
        let search_budget = self.budget.mul_f64(share);
        let mut oof_rows: Vec<usize> = splits.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        oof_rows.sort_unstable();
        let oof_targets = row_targets(table, target, labels.as_deref(), &oof_rows)?;
        let search = TableSearch {
            families: &families,
            folds: &folds,
            splits: &splits,
            target,
            kind,
            task: &task,
            metric,
            balance: metric.balances_classes(),
            deadline: started + search_budget,
            prepared: Mutex::new(HashMap::new()),
            out_of_fold: Mutex::new(BTreeMap::new()),
            oof_rows: &oof_rows,
            oof_targets: &oof_targets,
            shares_out_of_fold: !refit,
            // Only the process that ends the run uses them.
            bags: (bagging && refit).then(|| Mutex::new(BTreeMap::new())),
        };
        let mut options = OptimizeOptions::timeout(search_budget);
        if let Some(max) = self.max_trials {
            options = options.with_trials(max);
        }
        study.optimize_with_options(
            options,
            |trial| self.table_trial(trial, &search),
            |t| observer.trial(t),
        )?;
        let search_time = started.elapsed();
        if !refit {
            return Ok(None);
        }
        // Trials other processes still run (`join_table`) end about now: wait for them, for
        // at most half the time left, so that the winner is chosen among them too.
        let patience = self.budget.saturating_sub(started.elapsed()) / 2;
        wait_for_running(&study, Instant::now() + patience)?;
        let trials = study.trials()?;
        let board = leaderboard(&trials, metric.direction());
        let winner = board
            .first()
            .ok_or_else(|| none_completed(&trials, search_budget))?
            .clone();
        let mut out_of_fold = search
            .out_of_fold
            .into_inner()
            .map_err(|_| invalid("a trial panicked while keeping its predictions".into()))?;
        let mut bags = match search.bags {
            Some(bags) => Some(
                bags.into_inner()
                    .map_err(|_| invalid("a trial panicked while keeping its models".into()))?,
            ),
            None => None,
        };

        let members = if self.ensemble {
            if self.storage.is_some() {
                let rows = (&oof_rows[..], &oof_targets[..]);
                shared_out_of_fold(&study, &board, &mut out_of_fold, rows, &task)?;
            }
            // A trial whose fold models are here costs nothing more; any other is refitted,
            // at the speed its folds measured.
            let cost = |t: &FrozenTrial| match &bags {
                Some(b) if b.contains_key(&t.number) => 0.0,
                _ => refit_seconds(t, n),
            };
            self.ensemble_members(
                &board,
                &out_of_fold,
                &cost,
                &oof_targets,
                &task,
                metric,
                started,
            )?
        } else {
            None
        };
        let (members, valid_score) = match members {
            Some((members, score)) => (members, score),
            None => (
                vec![(winner.clone(), 1.0)],
                winner.value.unwrap_or(f64::NAN),
            ),
        };

        let refit_started = Instant::now();
        let (mut preprocessors, mut models) = (Vec::new(), Vec::new());
        let mut refit_epochs = attr(&winner, "best_epoch").max(1.0) as usize;
        let mut bagged_folds = 0;
        // A member whose fold models are here is their average; any other (every member
        // without bagging, another process's trial with it) is refitted below.
        let mut refitted = Vec::new();
        for (trial, weight) in &members {
            match bags.as_mut().and_then(|bags| bags.remove(&trial.number)) {
                Some(bag) => {
                    bagged_folds = bag.models.len();
                    let share = weight / bag.models.len() as f64;
                    for (fold, model) in bag.folds.iter().zip(bag.models) {
                        preprocessors.push(fold.preprocessor.clone());
                        models.push((model, share));
                    }
                }
                None => refitted.push((trial, *weight)),
            }
        }
        // Refitted on every row, for the epochs its folds needed on average, as many as the
        // rest of the budget allows at the speed its folds measured.
        for (i, (trial, weight)) in refitted.iter().enumerate() {
            let after: f64 = refitted[i + 1..]
                .iter()
                .map(|(t, _)| refit_seconds(t, n))
                .filter(|s| s.is_finite())
                .sum();
            let left = self.budget.saturating_sub(started.elapsed()).as_secs_f64() * 0.97 - after;
            let (preprocessor, model, epochs) = self.refit(
                trial, &families, table, target, kind, metric, left, observer,
            )?;
            if trial.number == winner.number {
                refit_epochs = epochs;
            }
            preprocessors.push(preprocessor);
            models.push((model, *weight));
        }
        let predictor = if models.len() == 1 {
            Predictor::tabular(preprocessors.remove(0), models.remove(0).0)?
        } else {
            Predictor::tabular(
                FittedPreprocessor::side_by_side(&preprocessors)?,
                Box::new(Ensemble::new(models)?),
            )?
        };
        let preprocessor = predictor
            .preprocessor()
            .ok_or_else(|| invalid("a table model without its preprocessor".into()))?;
        Ok(Some(AutoMlRun {
            replay: replay_sample_of_table(preprocessor, table, self.seed)?,
            predictor,
            valid_score,
            members: members.iter().map(|(t, w)| (t.number, *w)).collect(),
            winner,
            leaderboard: board,
            trials,
            metric,
            validation,
            on_all_rows: true,
            refit_epochs,
            bagged_folds,
            search_time,
            refit_time: refit_started.elapsed(),
            out_of_fold,
            out_of_fold_rows: oof_rows,
        }))
    }

    /// The members of an ensemble and its blend's score, by ensemble selection over the
    /// best trials whose out-of-fold predictions are here, among those whose `cost` (the
    /// seconds to refit them) fits together in the time left; `None` when the best model
    /// alone validates as well, or when the winner's predictions are not here.
    #[allow(clippy::too_many_arguments)]
    fn ensemble_members(
        &self,
        board: &[FrozenTrial],
        out_of_fold: &BTreeMap<u64, Vec<Prediction>>,
        cost: &dyn Fn(&FrozenTrial) -> f64,
        targets: &[Target],
        task: &Task,
        metric: Metric,
        started: Instant,
    ) -> Result<Option<(Members, f64)>> {
        let kept = |t: &FrozenTrial| out_of_fold.contains_key(&t.number);
        if board.first().is_none_or(|w| !kept(w)) {
            return Ok(None);
        }
        let candidates: Vec<&FrozenTrial> = board
            .iter()
            .filter(|t| kept(t))
            .take(ENSEMBLE_CANDIDATES)
            .collect();
        let predictions: Vec<&[Prediction]> = candidates
            .iter()
            .map(|t| out_of_fold[&t.number].as_slice())
            .collect();
        let costs: Vec<f64> = candidates.iter().map(|t| cost(t)).collect();
        let left = self.budget.saturating_sub(started.elapsed()).as_secs_f64() * 0.97;
        let selection = select_ensemble_within(
            &predictions,
            &costs,
            left,
            targets,
            task,
            metric,
            SELECTION_ROUNDS,
        )?;
        tracing::info!(
            members = selection.weights.len(),
            score = selection.score,
            best_single = selection.best_single,
            left_seconds = left,
            "ensemble selection"
        );
        if selection.weights.len() < 2 {
            return Ok(None);
        }
        let members = selection
            .weights
            .iter()
            .map(|(i, w)| (candidates[*i].clone(), *w))
            .collect();
        Ok(Some((members, selection.score)))
    }

    /// Refits `trial`'s family and configuration, preprocessing and all, on every row of
    /// `table`, for the epochs its folds needed on average, as many as `left` seconds allow
    /// at the speed its folds measured (at least one).
    #[allow(clippy::too_many_arguments)]
    fn refit(
        &self,
        trial: &FrozenTrial,
        families: &[Arc<dyn ModelFamily>],
        table: &Table,
        target: &str,
        kind: TargetKind,
        metric: Metric,
        left: f64,
        observer: &mut (dyn Observer + Send),
    ) -> Result<(FittedPreprocessor, Box<dyn Fitted>, usize)> {
        let family = family_of(trial, families)?;
        let preprocessor = family
            .preprocessing(&self.preprocessor)
            .fit(table, target, kind)?;
        let data = preprocessor.transform(table)?;
        let none = data.select(&[])?;
        let taught = if metric.balances_classes() {
            balanced(&data)?
        } else {
            data
        };
        let best_epoch = match attr(trial, "best_epoch") {
            e if e.is_finite() && e >= 1.0 => e.round() as usize,
            _ => 1,
        };
        let per_epoch = attr(trial, TRAIN_SECONDS_PER_ROW) * table.n_rows() as f64;
        let known = per_epoch.is_finite() && per_epoch > 0.0;
        let epochs = if known {
            ((left / per_epoch).floor() as usize).clamp(1, best_epoch)
        } else {
            best_epoch
        };
        let guard = known.then(|| Duration::from_secs_f64((left - per_epoch).max(0.0)));
        observer.refit_started(trial, epochs);
        let mut request = self.request(
            own_params(trial, family.name()),
            &taught,
            &none,
            epochs,
            epochs,
            // The seed the trial's folds trained with: the refit repeats what was validated.
            self.seed.wrapping_add(trial.number),
            guard,
        );
        request.categorical = preprocessor.categorical_features();
        let model = family.train(&request, &mut Relay(observer))?;
        Ok((preprocessor, model, epochs))
    }

    /// The validation the run uses on `n` rows of `columns` inputs, and its `(train, valid)`
    /// row indices.
    fn splits(
        &self,
        n: usize,
        columns: usize,
        labels: Option<&Vec<usize>>,
        task: &Task,
    ) -> Result<(Validation, Vec<SplitIndices>)> {
        let validation = match self.validation {
            Validation::Auto if Validation::cross_validates(n, columns, self.budget) => {
                // Stratified folds need every class in every fold: fewer folds for rare
                // classes (at least 2), said in the log.
                let rarest = match (labels, task) {
                    (Some(l), Task::Classification { classes }) => {
                        let mut counts = vec![0usize; classes.len()];
                        l.iter().for_each(|&c| counts[c] += 1);
                        counts.into_iter().filter(|&c| c > 0).min().unwrap_or(0)
                    }
                    _ => usize::MAX,
                };
                let k = AUTO_FOLDS.min(rarest).max(2);
                if k < AUTO_FOLDS {
                    tracing::info!(
                        folds = k,
                        rarest,
                        "fewer folds: the rarest class has only {rarest} rows"
                    );
                }
                Validation::KFold(k)
            }
            Validation::Auto => Validation::Holdout,
            other => other,
        };
        let f = self.validation_fraction;
        let splits = match (validation, labels, task) {
            (Validation::KFold(k), Some(l), Task::Classification { classes }) => {
                stratified_kfold_indices(l, classes.as_slice(), k, self.seed)?
            }
            (Validation::KFold(k), _, _) => kfold_indices(n, k, self.seed)?,
            (_, Some(l), Task::Classification { classes }) => {
                vec![stratified_holdout_indices(
                    l,
                    classes.as_slice(),
                    f,
                    self.seed,
                )?]
            }
            _ => vec![holdout_indices(n, f, self.seed)?],
        };
        Ok((validation, splits))
    }

    /// One trial: a family and its configuration, trained and scored on every fold (its
    /// preprocessing fitted on the fold's training rows); the mean of the folds' scores.
    fn table_trial(&self, trial: &mut Trial, search: &TableSearch<'_>) -> CoreResult<f64> {
        let family = suggest_family(trial, search.families)?;
        // Which process ran it, when several search one study (`lepton fit --workers`).
        trial.set_user_attr("process", i64::from(std::process::id()))?;
        let prepared = search.prepared(family.as_ref(), &self.preprocessor)?;
        let params = crate::automl::own_params_of(trial.params(), family.name());
        let mut scores = Vec::with_capacity(prepared.len());
        let (mut best_epochs, mut seconds_per_row) = (0.0, 0.0);
        let mut predicted: Vec<(usize, Prediction)> = Vec::new();
        let mut models = Vec::with_capacity(prepared.len());
        for (i, fold) in prepared.iter().enumerate() {
            let (train, valid) = (&fold.train, &fold.valid);
            if i > 0 && Instant::now() >= search.deadline {
                // Scored on fewer folds than the others, it would not compare with them.
                return Err(CoreError::Pruned { step: i as u64 });
            }
            let mut request = self.request(
                params.clone(),
                train,
                valid,
                self.search_epochs,
                self.patience,
                self.seed.wrapping_add(trial.number()),
                self.trial_time,
            );
            request.categorical = fold.categorical.clone();
            let model = family.train(
                &request,
                &mut Until {
                    deadline: search.deadline,
                },
            )?;
            let predictions = model.predict(features_for(
                model.as_ref(),
                valid.feature_values(),
                valid.n_features(),
            )?)?;
            let (fold, _) = score_predictions(search.task, valid.targets(), &predictions)
                .map_err(CoreError::stage)?;
            let score = search.metric.of(&fold).ok_or_else(|| {
                CoreError::InvalidInput(format!(
                    "{} is undefined on fold {i} (a single class?)",
                    search.metric
                ))
            })?;
            scores.push(score);
            let s = model.summary();
            best_epochs += s.best_epoch.max(1) as f64;
            seconds_per_row += s.train_seconds / (s.epochs_run.max(1) * train.len()) as f64;
            predicted.extend(search.splits[i].1.iter().copied().zip(predictions));
            let mean = scores.iter().sum::<f64>() / scores.len() as f64;
            trial.report(i as u64 + 1, mean)?;
            if i + 1 < prepared.len() && trial.should_prune() {
                return Err(CoreError::Pruned { step: i as u64 + 1 });
            }
            models.push(model);
        }
        let k = scores.len() as f64;
        trial.set_user_attr("best_epoch", (best_epochs / k).round() as i64)?;
        trial.set_user_attr(TRAIN_SECONDS_PER_ROW, seconds_per_row / k)?;
        trial.set_user_attr("fold_scores", format!("{scores:?}"))?;
        predicted.sort_by_key(|(row, _)| *row);
        let predicted: Vec<Prediction> = predicted.into_iter().map(|(_, p)| p).collect();
        if search.shares_out_of_fold {
            let bytes = out_of_fold::encode(search.oof_rows, search.oof_targets, &predicted);
            if bytes.len() <= MAX_SHARED_OUT_OF_FOLD_BYTES {
                trial.set_blob(OUT_OF_FOLD_BLOB, &bytes)?;
            } else {
                tracing::info!(
                    trial = trial.number(),
                    bytes = bytes.len(),
                    "out-of-fold predictions too large to share: the run's ensemble leaves \
                     this trial out"
                );
            }
        }
        if let Ok(mut oof) = search.out_of_fold.lock() {
            oof.insert(trial.number(), predicted);
        }
        let score = scores.iter().sum::<f64>() / k;
        if let Some(Ok(mut bags)) = search.bags.as_ref().map(Mutex::lock) {
            keep_best(
                &mut bags,
                trial.number(),
                Bag {
                    score,
                    folds: prepared,
                    models,
                },
                search.metric,
            );
        }
        Ok(score)
    }
}

/// The largest out-of-fold predictions a joining process leaves in the storage for one trial
/// (12 bytes a row for two classes: a hold-out of 1.4 million rows; larger ones are left out
/// of the run's ensemble rather than fill the storage).
const MAX_SHARED_OUT_OF_FOLD_BYTES: usize = 16 << 20;

/// Adds to `out_of_fold` the predictions that other processes' trials among the best of
/// `board` left in the storage ([`AutoMl::join_table`]); a trial whose predictions are missing
/// or do not fit the run's rows (indices and targets) and `task` is left out, and said so.
fn shared_out_of_fold(
    study: &lepton_search::Study,
    board: &[FrozenTrial],
    out_of_fold: &mut BTreeMap<u64, Vec<Prediction>>,
    (rows, targets): (&[usize], &[Target]),
    task: &Task,
) -> Result<()> {
    for t in board.iter().take(ENSEMBLE_CANDIDATES) {
        if out_of_fold.contains_key(&t.number) {
            continue;
        }
        match study.trial_blob(t.number, OUT_OF_FOLD_BLOB)? {
            Some(bytes) => match out_of_fold::decode(&bytes, rows, targets, task) {
                Ok(predictions) => {
                    out_of_fold.insert(t.number, predictions);
                }
                Err(why) => tracing::warn!(
                    trial = t.number,
                    %why,
                    "another process's out-of-fold predictions left out of the ensemble"
                ),
            },
            None => tracing::info!(
                trial = t.number,
                "another process's trial left no out-of-fold predictions: not in the ensemble"
            ),
        }
    }
    Ok(())
}

/// Waits until no trial of `study` is running, or until `until`.
fn wait_for_running(study: &lepton_search::Study, until: Instant) -> Result<()> {
    while Instant::now() < until
        && study
            .trials()?
            .iter()
            .any(|t| t.state == lepton_core::TrialState::Running)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The share of a table run's budget its search may use when none is set: a table's refit
/// is one training on every row (per ensemble member), a fraction of a cross-validated
/// trial.
const TABLE_SEARCH_SHARE: f64 = 0.9;

/// The share of the budget a bagged run's search may use when none is set: what is left
/// saves the models and, in `lepton fit`, scores them.
const BAGGED_SEARCH_SHARE: f64 = 0.97;

/// Trials to refit, with their weights in the model.
type Members = Vec<(FrozenTrial, f64)>;

/// A trial's fold models, kept for bagging, with the folds they were trained on.
struct Bag {
    score: f64,
    folds: Arc<Folds>,
    models: Vec<Box<dyn Fitted>>,
}

/// Keeps `bag` among `bags` when it is among the [`ENSEMBLE_CANDIDATES`] best by `metric`;
/// of equal scores the earlier trial stays, as on the leaderboard.
fn keep_best(bags: &mut BTreeMap<u64, Bag>, trial: u64, bag: Bag, metric: Metric) {
    bags.insert(trial, bag);
    if bags.len() <= ENSEMBLE_CANDIDATES {
        return;
    }
    let rank = |score: f64| match metric.direction() {
        _ if score.is_nan() => f64::NEG_INFINITY,
        Direction::Maximize => score,
        Direction::Minimize => -score,
    };
    let worst = bags
        .iter()
        .min_by(|a, b| {
            rank(a.1.score)
                .total_cmp(&rank(b.1.score))
                .then(b.0.cmp(a.0))
        })
        .map(|(t, _)| *t);
    if let Some(t) = worst {
        bags.remove(&t);
    }
}

/// The best trials ensemble selection chooses among.
const ENSEMBLE_CANDIDATES: usize = 20;

/// The seconds refitting `trial` on `n` rows should take, at the speed its folds measured
/// (NaN when they measured none).
fn refit_seconds(trial: &FrozenTrial, n: usize) -> f64 {
    let epochs = attr(trial, "best_epoch").max(1.0);
    attr(trial, TRAIN_SECONDS_PER_ROW) * n as f64 * epochs
}

/// The targets of `rows` of `table`: the class indices of `labels` for a classification, the
/// column's values for a regression.
fn row_targets(
    table: &Table,
    target: &str,
    labels: Option<&[usize]>,
    rows: &[usize],
) -> Result<Vec<Target>> {
    if let Some(labels) = labels {
        return Ok(rows.iter().map(|&r| Target::Class(labels[r])).collect());
    }
    match table.column(target) {
        Some(Column::Numeric(v)) => rows
            .iter()
            .map(|&r| {
                v[r].map(Target::Value)
                    .ok_or_else(|| invalid(format!("row {r}: the target `{target}` is missing")))
            })
            .collect(),
        _ => Err(invalid(format!("the target `{target}` is not numeric"))),
    }
}

/// The task of column `target` and, for a classification, every row's class index.
fn target_of(table: &Table, target: &str, kind: TargetKind) -> Result<(Task, Option<Vec<usize>>)> {
    if table.n_rows() == 0 {
        return Err(invalid(format!(
            "{}: the table has no rows",
            table.source()
        )));
    }
    let column = table.column(target).ok_or_else(|| {
        invalid(format!(
            "{}: no target column `{target}` (the columns are {})",
            table.source(),
            table.names().join(", ")
        ))
    })?;
    if let Some(row) = missing_row(column) {
        return Err(invalid(format!(
            "{}, row {row}: the target `{target}` is missing ({} of {} rows have none); drop \
             those rows first",
            table.source(),
            column.missing(),
            table.n_rows()
        )));
    }
    match kind {
        TargetKind::Classification => {
            let (labels, classes) = table.class_indices(target)?;
            if classes.len() < 2 {
                return Err(invalid(format!(
                    "{}: the target `{target}` has a single class ({}): nothing to learn",
                    table.source(),
                    classes.first().map_or("", String::as_str)
                )));
            }
            Ok((Task::Classification { classes }, Some(labels)))
        }
        TargetKind::Regression => match column {
            Column::Numeric(_) => Ok((Task::Regression, None)),
            other => Err(invalid(format!(
                "{}: the target `{target}` is {:?}, a regression needs numbers",
                table.source(),
                other.column_type()
            ))),
        },
    }
}

/// The rows of `data` with every class's rows repeated, in turn, until each class has as
/// many as the largest: for the metrics that count every class alike (balanced accuracy,
/// macro F1), the equivalent of weighing each class by its inverse frequency, for any family.
/// A regression comes back as it is.
fn balanced(data: &TabularDataset) -> Result<TabularDataset> {
    let Some(k) = data.schema().n_classes() else {
        return Ok(data.clone());
    };
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, t) in data.targets().iter().enumerate() {
        if let Target::Class(c) = t
            && let Some(r) = rows.get_mut(*c)
        {
            r.push(i);
        }
    }
    let largest = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut indices: Vec<usize> = (0..data.len()).collect();
    for class in rows.iter().filter(|r| !r.is_empty()) {
        indices.extend((0..largest - class.len()).map(|j| class[j % class.len()]));
    }
    Ok(data.select(&indices)?)
}

/// The first row where `column` is missing.
fn missing_row(column: &Column) -> Option<usize> {
    match column {
        Column::Numeric(v) => v.iter().position(Option::is_none),
        Column::Categorical(v) => v.iter().position(Option::is_none),
        Column::Boolean(v) => v.iter().position(Option::is_none),
    }
}

/// What every trial of a table run shares.
struct TableSearch<'a> {
    families: &'a [Arc<dyn ModelFamily>],
    folds: &'a [(Table, Table)],
    splits: &'a [SplitIndices],
    target: &'a str,
    kind: TargetKind,
    task: &'a Task,
    metric: Metric,
    /// Whether training rows are rebalanced (see [`balanced`]).
    balance: bool,
    deadline: Instant,
    /// Each preprocessing's folds, fitted on the first trial that needs them: the same
    /// configuration fitted on the same rows gives the same transform, so later trials reuse
    /// it.
    prepared: Mutex<HashMap<String, Arc<Folds>>>,
    out_of_fold: Mutex<BTreeMap<u64, Vec<Prediction>>>,
    /// The rows the out-of-fold predictions are of, ascending, and their targets.
    oof_rows: &'a [usize],
    oof_targets: &'a [Target],
    /// Whether each trial leaves its out-of-fold predictions in the storage, for the
    /// process that ends the run (this one joined it).
    shares_out_of_fold: bool,
    /// The best trials' fold models, when bagging.
    bags: Option<Mutex<BTreeMap<u64, Bag>>>,
}

/// One fold, preprocessed for a family.
struct PreparedFold {
    train: TabularDataset,
    valid: TabularDataset,
    /// The features that hold category codes (the preprocessor may have dropped columns).
    categorical: Vec<usize>,
    /// Fitted on the fold's training rows.
    preprocessor: FittedPreprocessor,
}

type Folds = Vec<PreparedFold>;

impl TableSearch<'_> {
    /// The folds preprocessed as `family` wants them.
    fn prepared(&self, family: &dyn ModelFamily, run: &Preprocessor) -> CoreResult<Arc<Folds>> {
        let preprocessor = family.preprocessing(run);
        let key = serde_json::to_string(&preprocessor).map_err(CoreError::stage)?;
        let cached = self
            .prepared
            .lock()
            .map_err(|_| CoreError::InvalidInput("a trial panicked".into()))?
            .get(&key)
            .cloned();
        if let Some(folds) = cached {
            return Ok(folds);
        }
        let folds: Folds = self
            .folds
            .iter()
            .map(|(train, valid)| {
                let fitted = preprocessor
                    .fit(train, self.target, self.kind)
                    .map_err(CoreError::stage)?;

                let mut train = fitted.transform(train).map_err(CoreError::stage)?;
                if self.balance {
                    train = balanced(&train).map_err(CoreError::stage)?;
                }
                let valid = fitted.transform(valid).map_err(CoreError::stage)?;
                Ok(PreparedFold {
                    train,
                    valid,
                    categorical: fitted.categorical_features(),
                    preprocessor: fitted,
                })
            })
            .collect::<CoreResult<_>>()?;
        let folds = Arc::new(folds);
        if let Ok(mut cache) = self.prepared.lock() {
            cache.insert(key, folds.clone());
        }
        Ok(folds)
    }
}

/// Counts the trials an observer sees.
struct Counted<'a>(&'a mut (dyn Observer + Send), usize);

impl Observer for Counted<'_> {
    fn trial(&mut self, trial: &lepton_core::FrozenTrial) {
        self.1 += 1;
        self.0.trial(trial);
    }
}

/// A fold's training context: stops training once the search's deadline has passed; its
/// epochs are not reported (the trial reports the folds' mean score).
struct Until {
    deadline: Instant,
}

impl TrialContext for Until {
    fn report(&mut self, _step: u64, _value: f64) -> CoreResult<()> {
        Ok(())
    }

    fn should_prune(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_trials_fold_models_are_kept_the_earlier_of_equals_first() {
        let bag = |score| Bag {
            score,
            folds: Arc::new(Vec::new()),
            models: Vec::new(),
        };
        let mut bags = BTreeMap::new();
        // Trials 0..20 score 0.5, trial 20 scores 0.9, trial 21 NaN, trial 22 0.5 again.
        for t in 0..20 {
            keep_best(&mut bags, t, bag(0.5), Metric::Accuracy);
        }
        keep_best(&mut bags, 20, bag(0.9), Metric::Accuracy);
        assert!(!bags.contains_key(&19) && bags.contains_key(&20));
        keep_best(&mut bags, 21, bag(f64::NAN), Metric::Accuracy);
        assert!(!bags.contains_key(&21));
        keep_best(&mut bags, 22, bag(0.5), Metric::Accuracy);
        assert!(!bags.contains_key(&22));
        assert_eq!(bags.len(), ENSEMBLE_CANDIDATES);
        // A loss keeps the lowest.
        let mut losses = BTreeMap::new();
        for t in 0..=20 {
            keep_best(&mut losses, t, bag(f64::from(t as u32)), Metric::LogLoss);
        }
        assert!(!losses.contains_key(&20) && losses.contains_key(&0));
    }

    #[test]
    fn balancing_repeats_each_class_up_to_the_largest() {
        let schema = Schema {
            features: vec!["x".into()],
            target: "y".into(),
            task: Task::Classification {
                classes: vec!["a".into(), "b".into(), "c".into()],
            },
        };
        let targets = [0, 0, 0, 0, 1, 2, 2].map(Target::Class).to_vec();
        let features = (0..7).map(|i| i as f32).collect();
        let data = TabularDataset::new(schema, features, targets).unwrap_or_else(|e| panic!("{e}"));
        let b = balanced(&data).unwrap_or_else(|e| panic!("{e}"));
        let count = |c| {
            b.targets()
                .iter()
                .filter(|t| **t == Target::Class(c))
                .count()
        };
        assert_eq!((count(0), count(1), count(2)), (4, 4, 4));
        // The original rows first, then the repeats, in turn within each class.
        assert_eq!(&b.feature_values()[..7], data.feature_values());
        assert_eq!(&b.feature_values()[7..], &[4.0, 4.0, 4.0, 5.0, 6.0]);
    }
}
