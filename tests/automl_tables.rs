//! `AutoMl` on raw tables end to end: every built-in family through the raw-row round trip,
//! a user's own family, the metrics, the budget, and refused input.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::any::Any;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lepton::core::{Features, Schema, Target, Task};
use lepton::data::Column;
use lepton::models::{Head, TrainingSummary};
use lepton::prelude::*;
use lepton::{CV_MAX_ROWS, Error, Fitted, ModelFamily, Observer, Quiet, TrainRequest};

/// 200 rows: numbers with gaps, a category, an identifier, and a class that depends on the
/// first number and the category.
fn mixed_table() -> Table {
    let mut text = String::from("x,noise,colour,id,label\n");
    for i in 0..200 {
        let x = (i as f64 * 0.37).sin() * 3.0;
        let colour = ["red", "blue", "green"][i % 3];
        let shifted = x + if colour == "red" { 1.5 } else { 0.0 };
        let label = if shifted > 0.5 { "high" } else { "low" };
        let noise = if i % 7 == 0 {
            String::new()
        } else {
            format!("{}", (i * 31 % 17) as f64 / 17.0)
        };
        text.push_str(&format!("{x:.4},{noise},{colour},row-{i},{label}\n"));
    }
    CsvLoader::new("mixed.csv")
        .read_table_from(text.as_bytes())
        .unwrap()
}

fn split(table: &Table, seed: u64) -> (Table, Table) {
    let (labels, classes) = table.class_indices("label").unwrap();
    let (train, test) =
        lepton::data::stratified_holdout_indices(&labels, &classes, 0.25, seed).unwrap();
    (table.select(&train).unwrap(), table.select(&test).unwrap())
}

/// Raw rows of `table` as text records, the target left out.
fn records(table: &Table) -> Vec<BTreeMap<String, String>> {
    (0..table.n_rows())
        .map(|r| {
            table
                .names()
                .iter()
                .zip(table.columns())
                .filter(|(n, _)| *n != "label")
                .map(|(n, c)| {
                    let text = match c {
                        Column::Numeric(v) => v[r].map_or(String::new(), |x| x.to_string()),
                        Column::Categorical(v) => v[r].clone().unwrap_or_default(),
                        Column::Boolean(v) => v[r].map_or(String::new(), |b| b.to_string()),
                    };
                    (n.clone(), text)
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_built_in_family_serves_raw_rows_after_a_round_trip() {
    let (train, test) = split(&mixed_table(), 1);
    let families = [Family::Linear, Family::Mlp, Family::Forest, Family::Boosted];
    // Each family refitted on every row, and as the average of its 5 fold models.
    for (family, bagging) in families.into_iter().flat_map(|f| [(f, false), (f, true)]) {
        let run = AutoMl::new()
            .with_families(&[family])
            .with_budget(Duration::from_secs(30))
            .with_max_trials(2)
            .with_ensemble(false)
            .with_bagging(bagging)
            .fit_table::<Cpu>(&train, "label", TargetKind::Classification)
            .unwrap();
        let model = run.predictor.model();
        match model.as_any().downcast_ref::<lepton::Ensemble>() {
            Some(bag) => {
                assert!(bagging);
                assert_eq!(run.bagged_folds, 5);
                let members: Vec<_> = bag.members().collect();
                assert_eq!(members.len(), 5);
                for (m, w) in members {
                    assert_eq!(m.family(), family.name());
                    assert!((w - 0.2).abs() < 1e-12, "{w}");
                }
            }
            None => {
                assert!(!bagging);
                assert_eq!(run.bagged_folds, 0);
                assert_eq!(model.family(), family.name());
            }
        }
        assert_eq!(run.validation, Validation::KFold(5));
        let accuracy = run.predictor.score(&test).unwrap().accuracy.unwrap();
        assert!(accuracy > 0.75, "{family:?}: test accuracy {accuracy}");
        // The identifier column was dropped, and said so.
        let dropped = run.predictor.preprocessor().unwrap().dropped();
        assert!(dropped.iter().any(|(n, _)| *n == "id"), "{dropped:?}");

        let dir = tempfile::tempdir().unwrap();
        run.save(dir.path(), BTreeMap::new()).unwrap();
        let back = Predictor::load(dir.path()).unwrap();
        let before = run.predictor.predict_table(&test).unwrap();
        assert_eq!(back.predict_table(&test).unwrap(), before, "{family:?}");
        // Text records (a CSV row, a JSON body) give the same answers, in the original labels.
        let by_record = back.predict_records(&records(&test)).unwrap();
        assert_eq!(by_record, before, "{family:?}");
        let labels = back.labels(&by_record).unwrap();
        assert!(labels.iter().all(|l| l == "high" || l == "low"));
        // An unseen category and an empty cell are answered, not refused.
        let mut odd = records(&test)[0].clone();
        odd.insert("colour".into(), "purple".into());
        odd.insert("x".into(), String::new());
        assert_eq!(back.predict_records(&[odd]).unwrap().len(), 1);
    }
}

#[test]
fn auto_validation_cross_validates_where_the_budget_affords_it() {
    let minute = Duration::from_secs(60);
    // Wine- and digits-sized tables: folds at a minute.
    assert!(Validation::cross_validates(142, 13, minute));
    assert!(Validation::cross_validates(1_437, 64, minute));
    // 17,817 rows of 12 columns: a hold-out at a minute, folds at five.
    assert!(!Validation::cross_validates(17_817, 12, minute));
    assert!(Validation::cross_validates(17_817, 12, 5 * minute));
    // Past CV_MAX_ROWS, a hold-out whatever the budget.
    let day = Duration::from_secs(86_400);
    assert!(Validation::cross_validates(CV_MAX_ROWS - 1, 1, day));
    assert!(!Validation::cross_validates(CV_MAX_ROWS, 1, day));
}

#[test]
fn regression_tables_score_r2_and_other_metrics_are_optimized() {
    // y = 2 a - b on a grid, with a categorical column that does not matter.
    let mut text = String::from("a,b,colour,y\n");
    for i in 0..120 {
        let (a, b) = ((i % 10) as f64, (i / 10) as f64);
        let colour = ["red", "blue", "green"][i % 3];
        text.push_str(&format!("{a},{b},{colour},{}\n", 2.0 * a - b));
    }
    let table = CsvLoader::new("grid.csv")
        .read_table_from(text.as_bytes())
        .unwrap();
    let run = AutoMl::new()
        .with_families(&[Family::Linear])
        .with_max_trials(5)
        .fit_table::<Cpu>(&table, "y", TargetKind::Regression)
        .unwrap();
    assert_eq!(run.metric, Metric::R2);
    assert!(run.valid_score > 0.8, "cv R² {}", run.valid_score);
    let scores = run.predictor.score(&table).unwrap();
    assert!(scores.mae.unwrap() <= scores.rmse.unwrap(), "{scores:?}");
    assert!(scores.accuracy.is_none() && scores.roc_auc.is_none());
    // A metric to minimize: the leaderboard is ascending.
    let run = AutoMl::new()
        .with_families(&[Family::Linear, Family::Forest])
        .with_metric(Metric::Mae)
        .with_validation(Validation::Holdout)
        .with_max_trials(4)
        .fit_table::<Cpu>(&table, "y", TargetKind::Regression)
        .unwrap();
    let values: Vec<f64> = run.leaderboard.iter().map(|t| t.value.unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    assert_eq!(run.validation, Validation::Holdout);
    // Out-of-fold predictions of the hold-out rows, for every completed trial.
    assert_eq!(run.out_of_fold.len(), run.leaderboard.len());
    for predictions in run.out_of_fold.values() {
        assert_eq!(predictions.len(), run.out_of_fold_rows.len());
    }
    // A classification metric on a regression: refused before any training.
    let e = AutoMl::new()
        .with_metric(Metric::RocAuc)
        .fit_table::<Cpu>(&table, "y", TargetKind::Regression)
        .unwrap_err();
    assert!(e.to_string().contains("roc_auc"), "{e}");
}

#[test]
fn cross_validation_keeps_every_rows_out_of_fold_prediction() {
    let (train, _) = split(&mixed_table(), 2);
    let run = AutoMl::new()
        .with_families(&[Family::Linear])
        .with_metric(Metric::LogLoss)
        .with_validation(Validation::KFold(3))
        .with_max_trials(2)
        .fit_table::<Cpu>(&train, "label", TargetKind::Classification)
        .unwrap();
    assert_eq!(
        run.out_of_fold_rows,
        (0..train.n_rows()).collect::<Vec<_>>()
    );
    let (_, classes) = train.class_indices("label").unwrap();
    for (trial, predictions) in &run.out_of_fold {
        assert_eq!(predictions.len(), train.n_rows(), "trial {trial}");
        assert!(
            predictions
                .iter()
                .all(|p| p.class().is_some_and(|c| c < classes.len()))
        );
    }
    // One report per fold, the mean so far.
    assert_eq!(run.winner.intermediate_values.len(), 3);
    assert!(
        run.valid_score > 0.0 && run.valid_score < 0.7,
        "log-loss {}",
        run.valid_score
    );
}

/// Numbers of the trials an observer saw finish.
struct Seen(Vec<u64>);

impl Observer for Seen {
    fn trial(&mut self, trial: &lepton::core::FrozenTrial) {
        self.0.push(trial.number);
    }
}

#[test]
fn a_joining_process_trials_reach_the_runs_ensemble() {
    // Two searches of one table run on one SQLite study, the second joined: the run that
    // ends it chooses among the joined search's trials too, by their shared out-of-fold
    // predictions.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("run.db").display());
    let (train, test) = split(&mixed_table(), 4);
    let automl = AutoMl::new()
        .with_families(&[Family::Linear, Family::Boosted])
        .with_budget(Duration::from_secs(6))
        .with_storage_url(&url, "joined")
        .with_seed(3);
    let joiner = {
        let (automl, train) = (automl.clone(), train.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            automl.join_table::<Cpu>(&train, "label", TargetKind::Classification, &mut Quiet)
        })
    };
    let mut seen = Seen(Vec::new());
    let run = automl
        .fit_table_observed::<Cpu>(&train, "label", TargetKind::Classification, &mut seen)
        .unwrap();
    let joined = joiner.join().unwrap().unwrap();
    assert!(joined > 0);
    let theirs: Vec<u64> = run
        .out_of_fold
        .keys()
        .copied()
        .filter(|t| !seen.0.contains(t))
        .collect();
    assert!(
        !theirs.is_empty(),
        "no joined trial's predictions: {:?} here, {joined} joined",
        seen.0
    );
    for t in &theirs {
        assert_eq!(run.out_of_fold[t].len(), run.out_of_fold_rows.len());
    }
    // Whichever trials it holds, the model serves the test rows.
    let accuracy = run.predictor.score(&test).unwrap().accuracy.unwrap();
    assert!(accuracy > 0.8, "{accuracy}");
}

#[test]
fn the_budget_is_kept() {
    let (train, _) = split(&mixed_table(), 3);
    let budget = Duration::from_secs(8);
    let started = Instant::now();
    let run = AutoMl::new()
        .with_budget(budget)
        .fit_table::<Cpu>(&train, "label", TargetKind::Classification)
        .unwrap();
    let wall = started.elapsed();
    assert!(run.trials.len() >= 2, "{} trials", run.trials.len());
    // Within 5 % of the budget (and a second for the machine's noise).
    assert!(
        wall <= budget.mul_f64(1.05) + Duration::from_secs(1),
        "{wall:?} for a budget of {budget:?}"
    );
}

#[test]
fn bad_tables_are_refused_with_their_reason() {
    let automl = AutoMl::new().with_max_trials(1);
    let table_of = |text: &str| {
        CsvLoader::new("bad.csv")
            .read_table_from(text.as_bytes())
            .unwrap()
    };
    let fit = |text: &str, target: &str| {
        automl
            .fit_table::<Cpu>(&table_of(text), target, TargetKind::Classification)
            .unwrap_err()
            .to_string()
    };
    let rows = |f: &dyn Fn(usize) -> String| {
        let mut t = String::from("a,b,y\n");
        (0..30).for_each(|i| t.push_str(&f(i)));
        t
    };
    let e = fit(&rows(&|i| format!("{i},1,x{}\n", i % 2)), "nope");
    assert!(e.contains("no target column `nope`"), "{e}");
    let e = fit(&rows(&|i| format!("{i},1,same\n")), "y");
    assert!(e.contains("single class"), "{e}");
    let e = fit(
        &rows(&|i| format!("{i},1,{}\n", if i == 4 { "" } else { "p" })),
        "y",
    );
    assert!(e.contains("row 4") && e.contains("missing"), "{e}");
    // A column with nothing in it is dropped (and the rest still learns).
    let table = table_of(&rows(&|i| {
        format!("{i},,{}\n", if i % 2 == 0 { "p" } else { "q" })
    }));
    let run = automl
        .fit_table::<Cpu>(&table, "y", TargetKind::Classification)
        .unwrap();
    let dropped = run.predictor.preprocessor().unwrap().dropped();
    assert!(dropped.iter().any(|(n, _)| *n == "b"), "{dropped:?}");
    // A budget too small for one trial: a clear error, not a model.
    let tiny = AutoMl::new()
        .with_families(&[Family::Mlp])
        .with_budget(Duration::from_millis(1))
        .fit_table::<Cpu>(&table, "y", TargetKind::Classification)
        .unwrap_err();
    assert!(tiny.to_string().contains("larger budget"), "{tiny}");
    // One fold: a refused setting.
    assert!(matches!(
        AutoMl::new()
            .with_validation(Validation::KFold(1))
            .fit_table::<Cpu>(&table, "y", TargetKind::Classification),
        Err(Error::Core(lepton::core::Error::InvalidParameter { .. }))
    ));
}

/// A user's family: k nearest neighbours (Euclidean, majority vote), with `k` searched.
#[derive(Debug)]
struct Knn;

#[derive(Debug)]
struct FittedKnn {
    k: usize,
    width: usize,
    classes: usize,
    rows: Vec<f32>,
    labels: Vec<usize>,
    summary: TrainingSummary,
}

fn summary() -> TrainingSummary {
    TrainingSummary {
        epochs_run: 1,
        best_epoch: 1,
        best_valid_score: None,
        best_valid_loss: None,
        best_valid_confusion: None,
        final_train_loss: 0.0,
        train_seconds: 0.0,
        valid_seconds: 0.0,
    }
}

impl Predict for FittedKnn {
    fn predict(&self, x: Features<'_>) -> lepton::core::Result<Vec<Prediction>> {
        Ok(x.values()
            .chunks(self.width)
            .map(|row| {
                let mut d: Vec<(f32, usize)> = self
                    .rows
                    .chunks(self.width)
                    .zip(&self.labels)
                    .map(|(r, &l)| (r.iter().zip(row).map(|(a, b)| (a - b).powi(2)).sum(), l))
                    .collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut votes = vec![0f32; self.classes];
                d.iter().take(self.k).for_each(|&(_, l)| votes[l] += 1.0);
                let total: f32 = votes.iter().sum();
                votes.iter_mut().for_each(|v| *v /= total);
                let index = (0..self.classes)
                    .max_by(|&a, &b| votes[a].total_cmp(&votes[b]))
                    .unwrap();
                Prediction::Class {
                    index,
                    probabilities: votes,
                }
            })
            .collect())
    }
}

impl Fitted for FittedKnn {
    fn family(&self) -> &str {
        "knn"
    }
    fn summary(&self) -> &TrainingSummary {
        &self.summary
    }
    fn shape(&self) -> (usize, Head) {
        (
            self.width,
            Head::Classes {
                count: self.classes,
            },
        )
    }
    fn config(&self) -> lepton::Result<serde_json::Value> {
        Ok(serde_json::json!({
            "k": self.k, "width": self.width, "classes": self.classes, "labels": self.labels
        }))
    }
    fn weights(&self) -> lepton::Result<Vec<u8>> {
        Ok(self.rows.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ModelFamily for Knn {
    fn name(&self) -> &str {
        "knn"
    }
    fn supports(&self, schema: &Schema) -> lepton::Result<bool> {
        Ok(matches!(schema.task, Task::Classification { .. }))
    }
    fn suggest(&self, trial: &mut Trial) -> lepton::core::Result<()> {
        trial.suggest_int("k", 1, 15, Scale::Linear)?;
        Ok(())
    }
    fn defaults(&self) -> BTreeMap<String, ParamValue> {
        BTreeMap::from([("k".into(), ParamValue::Int(5))])
    }
    fn train(
        &self,
        r: &TrainRequest<'_>,
        _ctx: &mut dyn TrialContext,
    ) -> lepton::core::Result<Box<dyn Fitted>> {
        let k = r.params.get("k").and_then(ParamValue::as_i64).unwrap_or(5) as usize;
        let width = r.train.schema().features.len();
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for i in 0..r.train.len() {
            rows.extend_from_slice(r.train.features(i).unwrap());
            let Some(Target::Class(c)) = r.train.target(i) else {
                panic!("row {i} has no class")
            };
            labels.push(c);
        }
        let classes = r.train.schema().n_classes().unwrap();
        Ok(Box::new(FittedKnn {
            k,
            width,
            classes,
            rows,
            labels,
            summary: summary(),
        }))
    }
    fn load(&self, config: &serde_json::Value, weights: &[u8]) -> lepton::Result<Box<dyn Fitted>> {
        let get = |k: &str| config[k].as_u64().unwrap() as usize;
        let rows = weights
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let labels = serde_json::from_value(config["labels"].clone()).unwrap();
        Ok(Box::new(FittedKnn {
            k: get("k"),
            width: get("width"),
            classes: get("classes"),
            rows,
            labels,
            summary: summary(),
        }))
    }
}

#[test]
fn a_users_family_competes_with_the_built_ins_and_saves() {
    let (train, test) = split(&mixed_table(), 4);
    let run = AutoMl::new()
        .with_families(&[Family::Linear])
        .with_family(Knn)
        .with_max_trials(6)
        .fit_table::<Cpu>(&train, "label", TargetKind::Classification)
        .unwrap();
    let families: Vec<&str> = run
        .trials
        .iter()
        .filter_map(|t| t.params.get("family").and_then(ParamValue::as_str))
        .collect();
    assert!(
        families.contains(&"knn") && families.contains(&"linear"),
        "{families:?}"
    );
    assert!(run.trials.iter().any(|t| t.params.contains_key("knn.k")));

    // A k-NN model saves, and loads back with the user's family.
    let knn = AutoMl::new()
        .with_families(&[])
        .with_family(Knn)
        .with_max_trials(3)
        .fit_table::<Cpu>(&train, "label", TargetKind::Classification)
        .unwrap();
    // The model is a k-NN model, or an ensemble of them (which loads its members with
    // the families given, too).
    let model = knn.predictor.model();
    match model.as_any().downcast_ref::<lepton::Ensemble>() {
        Some(ensemble) => assert!(ensemble.members().all(|(m, _)| m.family() == "knn")),
        None => assert_eq!(model.family(), "knn"),
    }
    let dir = tempfile::tempdir().unwrap();
    knn.save(dir.path(), BTreeMap::new()).unwrap();
    // The built-ins alone cannot load it: a clear refusal.
    let e = Predictor::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("knn"), "{e}");
    let mut families = Family::all_on::<Cpu>();
    families.push(std::sync::Arc::new(Knn));
    let back = Predictor::load_with(dir.path(), &families).unwrap();
    assert_eq!(
        back.predict_table(&test).unwrap(),
        knn.predictor.predict_table(&test).unwrap()
    );
}

#[test]
fn permutation_importance_finds_the_column_the_target_follows() {
    // y = 3 a; b is noise; c is constant, so the preprocessor drops it.
    let mut text = String::from("a,b,c,y\n");
    for i in 0..150 {
        let a = (i as f64 * 0.53).sin();
        let b = ((i * 37) % 101) as f64 / 101.0;
        text.push_str(&format!("{a:.5},{b:.5},1,{:.5}\n", 3.0 * a));
    }
    let table = CsvLoader::new("line.csv")
        .read_table_from(text.as_bytes())
        .unwrap();
    let (train, test) = (
        table.select(&(0..100).collect::<Vec<_>>()).unwrap(),
        table.select(&(100..150).collect::<Vec<_>>()).unwrap(),
    );
    let run = AutoMl::new()
        .with_families(&[Family::Boosted])
        .with_max_trials(3)
        .fit_table::<Cpu>(&train, "y", TargetKind::Regression)
        .unwrap();
    let importance = run
        .predictor
        .permutation_importance(&test, Metric::R2, 5, 1)
        .unwrap();
    let columns: Vec<&str> = importance.iter().map(|f| f.column.as_str()).collect();
    assert_eq!(columns[0], "a", "{importance:?}");
    // Shuffling `a` leaves an R² near -1 (a drop near 2); `b` and `c` barely or never matter.
    assert!(
        importance[0].mean > 1.0 && importance[0].sd >= 0.0,
        "{importance:?}"
    );
    for f in &importance[1..] {
        assert!(f.mean.abs() < 0.05, "{importance:?}");
    }
    let c = importance.iter().find(|f| f.column == "c").unwrap();
    assert_eq!((c.mean, c.sd), (0.0, 0.0));
    // A metric to minimize: the drop is still positive for the column that matters.
    let by_rmse = run
        .predictor
        .permutation_importance(&test, Metric::Rmse, 3, 1)
        .unwrap();
    assert_eq!(by_rmse[0].column, "a");
    assert!(by_rmse[0].mean > 0.5, "{by_rmse:?}");
    // A classification metric on a regression: refused.
    let e = run
        .predictor
        .permutation_importance(&test, Metric::Accuracy, 3, 1)
        .unwrap_err();
    assert!(e.to_string().contains("accuracy"), "{e}");
}

#[test]
fn awkward_columns_are_handled_without_nan_predictions() {
    // 1,200 rows: a category of 400 levels (more than the booster's 255 bins), a number
    // missing in a fifth of the rows, a constant, a number present in one row only (all
    // missing in the training rows of the fold that validates on it), and a class that
    // follows `x`.
    let mut text = String::from("x,level,patchy,constant,lonely,label\n");
    for i in 0..1200 {
        let x = (i as f64 * 0.77).sin();
        let level = format!("L{}", (i * 7919) % 400);
        let patchy = if i < 240 {
            String::new()
        } else {
            format!("{}", i % 13)
        };
        let label = if x > 0.0 { "up" } else { "down" };
        let lonely = if i == 7 { "3.5" } else { "" };
        text.push_str(&format!("{x:.4},{level},{patchy},5,{lonely},{label}\n"));
    }
    let table = CsvLoader::new("awkward.csv")
        .read_table_from(text.as_bytes())
        .unwrap();
    let (train, test) = split(&table, 4);
    for family in [Family::Boosted, Family::Forest, Family::Linear] {
        let run = AutoMl::new()
            .with_families(&[family])
            .with_max_trials(3)
            .fit_table::<Cpu>(&train, "label", TargetKind::Classification)
            .unwrap();
        let predictions = run.predictor.predict_table(&test).unwrap();
        for p in &predictions {
            let lepton::core::Prediction::Class { probabilities, .. } = p else {
                panic!("{p:?}")
            };
            assert!(
                probabilities.iter().all(|q| q.is_finite()),
                "{family:?}: {p:?}"
            );
        }
        let accuracy = run.predictor.score(&test).unwrap().accuracy.unwrap();
        assert!(accuracy > 0.8, "{family:?}: {accuracy}");
        // The trees keep the many-level category (they split on category sets); every
        // family drops the constant.
        let dropped = run.predictor.preprocessor().unwrap().dropped();
        assert!(dropped.iter().any(|(n, _)| *n == "constant"), "{dropped:?}");
        if family != Family::Linear {
            assert!(!dropped.iter().any(|(n, _)| *n == "level"), "{dropped:?}");
        }
    }
}
