//! Ensembles end to end: members of different families behind their own preprocessing blend
//! as their weights say, save, load, are served raw rows over HTTP, and learn online member by
//! member when they are networks; a table run that selects an ensemble returns it.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use lepton::core::{Prediction, Target, TrialContext};
use lepton::data::{Column, FittedPreprocessor, Preprocessor};
use lepton::deploy::{
    Cell, Examples, LocalRegistry, ModelLoader, PRODUCTION, Registry, Server, ServerConfig, Tuning,
};
use lepton::models::Schedule;
use lepton::prelude::*;
use lepton::{ArtifactLoader, ENSEMBLE, Ensemble, Fitted, TrainRequest};

/// 240 rows: a number with gaps, a category, and a class that depends on both.
fn table() -> Table {
    let mut text = String::from("x,colour,label\n");
    for i in 0..240 {
        let x = (i as f64 * 0.61).sin() * 2.0;
        let colour = ["red", "blue", "green"][i % 3];
        let label = if x + if colour == "red" { 1.0 } else { 0.0 } > 0.3 {
            "yes"
        } else {
            "no"
        };
        let cell = if i % 9 == 0 {
            String::new()
        } else {
            format!("{x:.4}")
        };
        text.push_str(&format!("{cell},{colour},{label}\n"));
    }
    CsvLoader::new("blend.csv")
        .read_table_from(text.as_bytes())
        .unwrap()
}

struct Quiet;

impl TrialContext for Quiet {
    fn report(&mut self, _step: u64, _value: f64) -> lepton::core::Result<()> {
        Ok(())
    }
    fn should_prune(&self) -> bool {
        false
    }
}

/// `family` with its own preprocessing fitted and trained on `table`.
fn member(family: Family, table: &Table) -> (FittedPreprocessor, Box<dyn Fitted>) {
    let family = family.on::<Cpu>(None);
    let preprocessor = family
        .preprocessing(&Preprocessor::default())
        .fit(table, "label", TargetKind::Classification)
        .unwrap();
    let data = preprocessor.transform(table).unwrap();
    let none = data.select(&[]).unwrap();
    let request = TrainRequest {
        params: family.defaults(),
        train: &data,
        valid: &none,
        max_epochs: 30,
        patience: 30,
        seed: 7,
        schedule: Schedule::Constant,
        time_limit: None,
        devices: 1,
        resume: None,
        categorical: preprocessor.categorical_features(),
    };
    (
        preprocessor.clone(),
        family.train(&request, &mut Quiet).unwrap(),
    )
}

fn probabilities(p: &Prediction) -> Vec<f32> {
    match p {
        Prediction::Class { probabilities, .. } => probabilities.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn weights_that_sum_to_one_are_kept_exactly_through_a_round_trip() {
    let table = table();
    let parts: Vec<(FittedPreprocessor, Box<dyn Fitted>)> =
        (0..3).map(|_| member(Family::Linear, &table)).collect();
    let preprocessors: Vec<FittedPreprocessor> = parts.iter().map(|p| p.0.clone()).collect();
    // 0.3 + 0.6 + 0.1 is 0.9999999999999999 in floating point: dividing by the sum would
    // move them.
    let weights = [0.3, 0.6, 0.1];
    let models = parts.into_iter().map(|p| p.1).zip(weights).collect();
    let ensemble = Ensemble::new(models).unwrap();
    assert_eq!(
        ensemble.members().map(|(_, w)| w).collect::<Vec<_>>(),
        weights
    );
    let predictor = Predictor::tabular(
        FittedPreprocessor::side_by_side(&preprocessors).unwrap(),
        Box::new(ensemble),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    predictor.save(dir.path(), BTreeMap::new()).unwrap();
    let back = Predictor::load(dir.path()).unwrap();
    assert_eq!(
        back.predict_table(&table).unwrap(),
        predictor.predict_table(&table).unwrap()
    );
}

#[test]
fn an_ensemble_of_networks_learns_online_member_by_member() {
    let table = table();
    let (linear_prep, linear) = member(Family::Linear, &table);
    let (mlp_prep, mlp) = member(Family::Mlp, &table);
    let predictor = Predictor::tabular(
        FittedPreprocessor::side_by_side(&[linear_prep, mlp_prep]).unwrap(),
        Box::new(Ensemble::new(vec![(linear, 1.0), (mlp, 3.0)]).unwrap()),
    )
    .unwrap();
    let before = predictor.predict_table(&table).unwrap();
    let servable = ArtifactLoader
        .load(&predictor.to_artifact(BTreeMap::new()).unwrap())
        .unwrap();
    // Feedback that says every row is the other class.
    let (labels, _) = table.class_indices("label").unwrap();
    let mut examples = Examples::empty(servable.schema().task.clone(), servable.width());
    for (r, label) in labels.iter().enumerate() {
        let cells: Vec<Cell> = table
            .names()
            .iter()
            .zip(table.columns())
            .filter(|(n, _)| *n != "label")
            .map(|(_, c)| match c {
                Column::Numeric(v) => v[r].map_or(Cell::Missing, Cell::Number),
                Column::Categorical(v) => v[r].clone().map_or(Cell::Missing, Cell::Text),
                Column::Boolean(_) => unreachable!(),
            })
            .collect();
        let mut row = Vec::new();
        servable.encode(&cells, &mut row).unwrap();
        examples.push(&row, Target::Class(1 - label)).unwrap();
    }
    let tuning = Tuning {
        epochs: 20,
        learning_rate: 1e-2,
        ..Tuning::default()
    };
    let tuned = Predictor::from_artifact(&servable.fine_tune(&examples, &tuning).unwrap()).unwrap();
    // Both members learnt, each on its slice of the input; the weights stayed.
    let ensemble = tuned.model().as_any().downcast_ref::<Ensemble>().unwrap();
    let members: Vec<(String, f64)> = ensemble
        .members()
        .map(|(m, w)| (m.family().to_owned(), w))
        .collect();
    assert_eq!(
        members,
        [("linear".to_owned(), 0.25), ("mlp".to_owned(), 0.75)]
    );
    let after = tuned.predict_table(&table).unwrap();
    let flipped = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.class() != a.class())
        .count();
    assert!(flipped > 120, "{flipped} of 240 answers changed");

    // An ensemble with trees in it does not learn online, and says why.
    let (boosted_prep, boosted) = member(Family::Boosted, &table);
    let (linear_prep, linear) = member(Family::Linear, &table);
    let mixed = Predictor::tabular(
        FittedPreprocessor::side_by_side(&[linear_prep, boosted_prep]).unwrap(),
        Box::new(Ensemble::new(vec![(linear, 1.0), (boosted, 1.0)]).unwrap()),
    )
    .unwrap();
    let servable = ArtifactLoader
        .load(&mixed.to_artifact(BTreeMap::new()).unwrap())
        .unwrap();
    let width = servable.width();
    let mut one = Examples::empty(servable.schema().task.clone(), width);
    one.push(&vec![0.0; width], Target::Class(0)).unwrap();
    let err = servable.fine_tune(&one, &tuning).unwrap_err();
    assert!(
        err.to_string()
            .contains("boosted model does not learn online"),
        "{err}"
    );
}

#[test]
fn an_ensemble_of_two_families_blends_by_weight_saves_and_serves_raw_rows() {
    let table = table();
    let (boosted_prep, boosted) = member(Family::Boosted, &table);
    let (linear_prep, linear) = member(Family::Linear, &table);
    let alone = |p: &FittedPreprocessor, m: &dyn Fitted| {
        let d = p.transform(&table).unwrap();
        let x = lepton::core::Features::with_missing(d.feature_values(), d.n_features()).unwrap();
        m.predict(x).unwrap()
    };
    let (from_boosted, from_linear) = (
        alone(&boosted_prep, boosted.as_ref()),
        alone(&linear_prep, linear.as_ref()),
    );
    // Weights 3 and 1 are normalized to 0.75 and 0.25.
    let ensemble = Ensemble::new(vec![(boosted, 3.0), (linear, 1.0)]).unwrap();
    let weights: Vec<f64> = ensemble.members().map(|(_, w)| w).collect();
    assert_eq!(weights, [0.75, 0.25]);
    let predictor = Predictor::tabular(
        FittedPreprocessor::side_by_side(&[boosted_prep, linear_prep]).unwrap(),
        Box::new(ensemble),
    )
    .unwrap();
    let blended = predictor.predict_table(&table).unwrap();
    for (row, p) in blended.iter().enumerate() {
        let (b, l) = (
            probabilities(&from_boosted[row]),
            probabilities(&from_linear[row]),
        );
        let got = probabilities(p);
        for k in 0..2 {
            let want = 0.75 * b[k] + 0.25 * l[k];
            assert!((got[k] - want).abs() < 1e-6, "row {row}: {got:?} vs {want}");
        }
        let most = if got[1] > got[0] { 1 } else { 0 };
        assert_eq!(p.class(), Some(most));
    }

    // Saved and loaded, it predicts the same, from a table or from text records.
    let dir = tempfile::tempdir().unwrap();
    predictor.save(dir.path(), BTreeMap::new()).unwrap();
    let back = Predictor::load(dir.path()).unwrap();
    assert_eq!(back.model().family(), ENSEMBLE);
    assert_eq!(back.predict_table(&table).unwrap(), blended);
    let record = |x: &str, colour: &str| -> BTreeMap<String, String> {
        [("x", x), ("colour", colour)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let Column::Numeric(xs) = table.column("x").unwrap() else {
        panic!("x is numeric")
    };
    let first = record(&xs[1].unwrap().to_string(), "blue");
    assert_eq!(back.predict_records(&[first]).unwrap()[0], blended[1]);
    // A missing number and an unseen category are answered by both members' handling.
    assert_eq!(
        back.predict_records(&[record("", "purple")]).unwrap().len(),
        1
    );

    // Served: raw JSON rows in, the blend's labels out, missing cells included.
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(LocalRegistry::new(registry_dir.path()));
    registry
        .register(
            "blend",
            &lepton::deploy::ModelArtifact::load(dir.path()).unwrap(),
        )
        .unwrap();
    registry.promote("blend", 1, PRODUCTION).unwrap();
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig {
            poll_interval: Duration::from_millis(50),
            ..ServerConfig::default()
        },
        registry,
        Arc::new(ArtifactLoader),
    )
    .unwrap();
    let Column::Categorical(colours) = table.column("colour").unwrap() else {
        panic!("colour is categorical")
    };
    let rows: Vec<Value> = (0..20)
        .map(|i| json!({"x": xs[i], "colour": colours[i]}))
        .collect();
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!(
            "http://{}/v1/models/blend/predict",
            server.local_addr()
        ))
        .json(&json!({"rows": rows}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let served: Vec<&str> = answer["predictions"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    let expected = predictor.labels(&blended[..20]).unwrap();
    assert_eq!(served, expected);
    server.shutdown().unwrap();
}

#[test]
fn ensembles_refuse_members_that_do_not_fit_together() {
    let table = table();
    let (_, boosted) = member(Family::Boosted, &table);
    let (_, linear) = member(Family::Linear, &table);
    let e = Ensemble::new(vec![(boosted, 1.0), (linear, 0.0)]).unwrap_err();
    assert!(e.to_string().contains("weight 0"), "{e}");
    assert!(Ensemble::new(Vec::new()).is_err());
    // A regression member beside a classifier.
    let mut text = String::from("x,y\n");
    for i in 0..40 {
        text.push_str(&format!("{i},{}\n", i * 2));
    }
    let numbers = CsvLoader::new("line.csv")
        .read_table_from(text.as_bytes())
        .unwrap();
    let family = Family::Linear.on::<Cpu>(None);
    let p = family
        .preprocessing(&Preprocessor::default())
        .fit(&numbers, "y", TargetKind::Regression)
        .unwrap();
    let data = p.transform(&numbers).unwrap();
    let none = data.select(&[]).unwrap();
    let request = TrainRequest {
        params: family.defaults(),
        train: &data,
        valid: &none,
        max_epochs: 2,
        patience: 2,
        seed: 1,
        schedule: Schedule::Constant,
        time_limit: None,
        devices: 1,
        resume: None,
        categorical: Vec::new(),
    };
    let regressor = family.train(&request, &mut Quiet).unwrap();
    let (_, classifier) = member(Family::Linear, &table);
    let e = Ensemble::new(vec![(classifier, 1.0), (regressor, 1.0)]).unwrap_err();
    assert!(e.to_string().contains("head"), "{e}");
}

#[test]
fn a_table_run_ends_with_an_ensemble_when_its_blend_validates_better() {
    // Diabetes (a regression): boosted trees and MLPs err differently, and the blend of
    // their out-of-fold predictions beats each alone on it.
    let Some(dir) = lepton_test_support::env_or_skip("LEPTON_DATA_DIR", "diabetes") else {
        return;
    };
    let table = CsvLoader::new(format!("{dir}/tabular/diabetes.csv"))
        .read_table()
        .unwrap();
    let run = AutoMl::new()
        .with_budget(Duration::from_secs(60))
        .with_max_trials(12)
        .fit_table::<Cpu>(&table, "target", TargetKind::Regression)
        .unwrap();
    assert!(run.members.len() > 1, "members {:?}", run.members);
    let total: f64 = run.members.iter().map(|(_, w)| w).sum();
    assert!((total - 1.0).abs() < 1e-9, "{:?}", run.members);
    assert_eq!(run.predictor.model().family(), ENSEMBLE);
    // Its score on the out-of-fold rows beats the best trial's there.
    let Some(Column::Numeric(y)) = table.column("target") else {
        panic!("the target is numeric")
    };
    let targets: Vec<Target> = run
        .out_of_fold_rows
        .iter()
        .map(|&r| Target::Value(y[r].unwrap()))
        .collect();
    let (alone, _) = lepton::score_predictions(
        &lepton::core::Task::Regression,
        &targets,
        &run.out_of_fold[&run.winner.number],
    )
    .unwrap();
    assert!(
        run.valid_score > alone.r2.unwrap(),
        "{} vs {alone:?}",
        run.valid_score
    );
    // Every member is a trial of the run, listed heaviest first.
    for pair in run.members.windows(2) {
        assert!(pair[0].1 >= pair[1].1, "{:?}", run.members);
    }
    for (number, _) in &run.members {
        assert!(run.leaderboard.iter().any(|t| t.number == *number));
    }
    let scores = run.predictor.score(&table).unwrap();
    assert!(scores.r2.unwrap() > 0.4, "{scores:?}");
    let dir = tempfile::tempdir().unwrap();
    run.save(dir.path(), BTreeMap::new()).unwrap();
    let back = Predictor::load(dir.path()).unwrap();
    assert_eq!(
        back.predict_table(&table).unwrap(),
        run.predictor.predict_table(&table).unwrap()
    );
}
