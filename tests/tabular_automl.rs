//! The AutoML driver end to end on small searches: classification and regression, the
//! leaderboard order, the refit, and refused settings.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use lepton::prelude::*;
use lepton::{Error, attr};

#[test]
fn classification_search_refits_a_good_predictor() {
    let iris = datasets::table("iris").unwrap();
    let (labels, classes) = iris.class_indices("target").unwrap();
    let (train_rows, test_rows) =
        lepton::data::stratified_holdout_indices(&labels, &classes, 0.2, 3).unwrap();
    let (train, test) = (
        iris.select(&train_rows).unwrap(),
        iris.select(&test_rows).unwrap(),
    );
    let mut seen = 0;
    let run = TabularAutoMl::new()
        .with_trials(3)
        .with_folds(3)
        .with_seed(3)
        .fit::<Cpu>(&train, "target", TargetKind::Classification, |_| seen += 1)
        .unwrap();
    assert_eq!((seen, run.trials.len()), (3, 3));
    let values: Vec<f64> = run.leaderboard.iter().map(|t| t.value.unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
    let best = &run.leaderboard[0];
    assert_eq!(best.intermediate_values.len(), 3, "one report per fold");
    assert_eq!(run.refit_epochs, (attr(best, "best_epoch") as usize).max(1));
    let accuracy = run.predictor.score(&test).unwrap().accuracy.unwrap();
    assert!(accuracy >= 0.8, "test accuracy {accuracy}");

    // The run's artifact carries a replay sample: the training rows (fewer than 1,000) as
    // the model takes them, which loads back with the predictor.
    let dir = tempfile::tempdir().unwrap();
    run.save(dir.path(), std::collections::BTreeMap::new())
        .unwrap();
    let artifact = lepton::deploy::ModelArtifact::load(dir.path()).unwrap();
    let replay = artifact.replay().unwrap().unwrap();
    let encoded = run.predictor.preprocessor().transform(&train).unwrap();
    assert_eq!(replay.len(), train.n_rows());
    assert_eq!(replay.feature_values(), encoded.feature_values());
    assert_eq!(replay.targets(), encoded.targets());
    assert!(TabularPredictor::<Cpu>::from_artifact(&artifact).is_ok());
}

#[test]
fn regression_search_scores_r2() {
    // y = 2 a - b on a grid, with a categorical column that does not matter.
    let mut text = String::from("a,b,colour,y\n");
    for i in 0..90 {
        let (a, b) = ((i % 10) as f64, (i / 10) as f64);
        let colour = ["red", "blue", "green"][i % 3];
        text.push_str(&format!("{a},{b},{colour},{}\n", 2.0 * a - b));
    }
    let table = CsvLoader::new("grid.csv")
        .read_table_from(text.as_bytes())
        .unwrap();
    let run = TabularAutoMl::new()
        .with_trials(2)
        .with_folds(3)
        .fit::<Cpu>(&table, "y", TargetKind::Regression, |_| {})
        .unwrap();
    let scores = run.predictor.score(&table).unwrap();
    assert!(scores.r2.unwrap() > 0.8, "{scores:?}");
    assert!(scores.mae.unwrap() <= scores.rmse.unwrap(), "{scores:?}");
    assert!(scores.accuracy.is_none() && scores.log_loss.is_none());
}

#[test]
fn refused_settings() {
    let iris = datasets::table("iris").unwrap();
    let zero = TabularAutoMl::new().with_trials(0).fit::<Cpu>(
        &iris,
        "target",
        TargetKind::Classification,
        |_| {},
    );
    assert!(matches!(zero, Err(Error::Core(_))));
    let folds = TabularAutoMl::new().with_folds(1).fit::<Cpu>(
        &iris,
        "target",
        TargetKind::Classification,
        |_| {},
    );
    assert!(matches!(folds, Err(Error::Data(_))));
    let target = TabularAutoMl::new().fit::<Cpu>(&iris, "nope", TargetKind::Classification, |_| {});
    assert!(matches!(target, Err(Error::Data(_))));
}
