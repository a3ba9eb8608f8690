//! `AutoMl` end to end on small data: model selection over families, the budget, the refit,
//! the artifact round trip, and refused input.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;
use std::time::Duration;

use lepton::core::{Schema, Target, Task};
use lepton::data::{ImageDataset, stratified_holdout_indices};
use lepton::prelude::*;
use lepton::report::Confusion;
use lepton::{AutoMlRun, Error, evaluate};

/// The 8x8 digits (1,797 images, 10 classes) from `$LEPTON_DATA_DIR/tabular/digits.csv`,
/// pixels scaled to [0, 1]; `None` (the test skips) without the data.
fn digits() -> Option<ImageDataset> {
    let dir = lepton_test_support::env_or_skip("LEPTON_DATA_DIR", "digits")?;
    let path = std::path::Path::new(&dir).join("tabular/digits.csv");
    let table = CsvLoader::new(&path).load().unwrap();
    let pixels: Vec<u8> = table.feature_values().iter().map(|&v| v as u8).collect();
    let labels: Vec<u8> = table
        .targets()
        .iter()
        .map(|t| match t {
            Target::Class(c) => *c as u8,
            Target::Value(v) => panic!("digits target {v}"),
        })
        .collect();
    let classes = table.schema().n_classes().unwrap();
    let images = ImageDataset::from_u8(
        8,
        8,
        &pixels.iter().map(|&p| p * 15).collect::<Vec<u8>>(), // 0..16 -> 0..240
        &labels,
        (0..classes).map(|c| c.to_string()).collect(),
    )
    .unwrap();
    Some(images)
}

fn split(data: &ImageDataset) -> (ImageDataset, ImageDataset) {
    let classes: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let (train, test) = stratified_holdout_indices(data.labels(), &classes, 0.2, 0).unwrap();
    (data.select(&train).unwrap(), data.select(&test).unwrap())
}

#[test]
fn image_search_selects_among_families_and_refits_within_budget() {
    let Some(data) = digits() else { return };
    let (train, test) = split(&data);
    let automl = AutoMl::for_images(8, 8)
        .with_budget(Duration::from_secs(40))
        .with_max_trials(6)
        .with_seed(1);
    let run: AutoMlRun = automl.fit::<Cpu>(&train).unwrap();
    // The warm start tries each family's default first: linear, MLP, CNN.
    let families: Vec<&str> = run.trials[..3]
        .iter()
        .map(|t| t.params["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["linear", "mlp", "cnn"]);
    assert!(run.trials.len() <= 6);
    let values: Vec<f64> = run.leaderboard.iter().map(|t| t.value.unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
    assert!(
        run.refit_epochs >= 1 && run.predictor.model().summary().epochs_run <= run.refit_epochs
    );
    // Each complete trial keeps its validation confusion matrix for the study's report; its
    // accuracy is the trial's value.
    for t in &run.leaderboard {
        let m = Confusion::of_trial(t).unwrap().unwrap();
        assert_eq!(m.labels.len(), 10);
        let total: u64 = m.counts.iter().flatten().sum();
        let right: u64 = (0..10).map(|i| m.counts[i][i]).sum();
        let accuracy = right as f64 / total as f64;
        assert!(
            (accuracy - t.value.unwrap()).abs() < 1e-9,
            "trial {}",
            t.number
        );
    }
    assert_eq!(
        run.predictor.model().family(),
        run.winner.params["family"].as_str().unwrap()
    );
    let (scores, confusion) = evaluate(&run.predictor, &test).unwrap();
    let accuracy = scores.accuracy.unwrap();
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
    let m = confusion.unwrap();
    let total: usize = (0..10)
        .flat_map(|t| (0..10).map(move |p| (t, p)))
        .map(|(t, p)| m.count(t, p))
        .sum();
    assert_eq!(total, test.len());
}

#[test]
fn artifact_round_trip_and_refusals() {
    let Some(data) = digits() else { return };
    let (train, test) = split(&data);
    let run: AutoMlRun = AutoMl::for_images(8, 8)
        .with_families(&[Family::Cnn])
        .with_budget(Duration::from_secs(20))
        .with_max_trials(1)
        .with_max_refit_epochs(2)
        .fit::<Cpu>(&train)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schema = train.schema().clone();
    run.predictor
        .to_artifact(BTreeMap::new())
        .unwrap()
        .save(dir.path())
        .unwrap();
    let artifact = ModelArtifact::load(dir.path()).unwrap();
    assert_eq!(artifact.manifest().model_family, "cnn");
    let back = Predictor::from_artifact(&artifact).unwrap();
    let x = Features::new(test.pixels(), 64).unwrap();
    assert_eq!(back.predict(x).unwrap(), run.predictor.predict(x).unwrap());
    let model = run.predictor.model();
    let described_as = |schema: Schema| {
        ModelArtifact::new(
            "cnn",
            &model.config().unwrap(),
            &(),
            schema,
            BTreeMap::new(),
            model.weights().unwrap(),
        )
        .unwrap()
    };

    // The same weights described as 3 classes, or as 7x9 images: refused, no panic.
    let three = Schema {
        task: Task::Classification {
            classes: vec!["a".into(), "b".into(), "c".into()],
        },
        ..schema.clone()
    };
    let wrong_classes = described_as(three);
    assert!(matches!(
        Predictor::from_artifact(&wrong_classes),
        Err(Error::IncompatibleArtifact(_))
    ));
    let mut narrow = schema.clone();
    narrow.features.truncate(63);
    let wrong_width = described_as(narrow);
    assert!(Predictor::from_artifact(&wrong_width).is_err());
}

#[test]
fn refuses_bad_input_with_typed_errors() {
    let images = |n: usize, classes: usize, side: usize| {
        let pixels: Vec<u8> = (0..n * side * side).map(|i| (i * 7 % 251) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % classes) as u8).collect();
        ImageDataset::from_u8(
            side,
            side,
            &pixels,
            &labels,
            (0..classes).map(|c| c.to_string()).collect(),
        )
        .unwrap()
    };
    let quick = |a: AutoMl| a.with_budget(Duration::from_secs(5)).with_max_trials(1);

    // One class.
    let one = images(40, 1, 8);
    let err = quick(AutoMl::for_images(8, 8))
        .fit::<Cpu>(&one)
        .unwrap_err();
    assert!(err.to_string().contains("at least 2 classes"), "{err}");
    // Images of the wrong size for the CNN.
    let small = images(40, 2, 6);
    let err = quick(AutoMl::for_images(8, 8))
        .fit::<Cpu>(&small)
        .unwrap_err();
    assert!(err.to_string().contains("8x8 images need 64"), "{err}");
    // A CNN without an image size, an unknown sampler, a bad budget share.
    let ok = images(40, 2, 8);
    let err = quick(AutoMl::new().with_families(&[Family::Cnn]))
        .fit::<Cpu>(&ok)
        .unwrap_err();
    assert!(err.to_string().contains("image size"), "{err}");
    let err = quick(AutoMl::for_images(8, 8).with_sampler_name("annealing"))
        .fit::<Cpu>(&ok)
        .unwrap_err();
    assert!(err.to_string().contains("unknown sampler"), "{err}");
    let err = quick(AutoMl::for_images(8, 8).with_search_share(1.5))
        .fit::<Cpu>(&ok)
        .unwrap_err();
    assert!(err.to_string().contains("search_share"), "{err}");
    let err = quick(AutoMl::for_images(8, 8).with_data_parallel(0))
        .fit::<Cpu>(&ok)
        .unwrap_err();
    assert!(err.to_string().contains("data_parallel"), "{err}");
}

#[test]
fn regression_searches_the_families_that_regress() {
    // y = 3 a - 2 b + noise-free; the CNN family is left out of a regression. Every network
    // trains data-parallel, its batches split across two replicas of the CPU device.
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let (a, b) = ((i % 20) as f32 / 10.0, (i / 20) as f32 / 5.0);
        rows.push(vec![a, b]);
        targets.push(Target::Value(f64::from(3.0 * a - 2.0 * b)));
    }
    let schema = Schema {
        features: vec!["a".into(), "b".into()],
        target: "y".into(),
        task: Task::Regression,
    };
    let data = TabularDataset::from_rows(schema, rows, targets).unwrap();
    let run: AutoMlRun = AutoMl::new()
        .with_budget(Duration::from_secs(20))
        .with_max_trials(3)
        .with_data_parallel(2)
        .fit::<Cpu>(&data)
        .unwrap();
    assert!(run.trials.len() <= 3);
    assert!(run.valid_score > 0.9, "validation R² {}", run.valid_score);
    // Small data and a roomy budget: the model was retrained on every row.
    assert!(run.on_all_rows);
    let (scores, confusion) = evaluate(&run.predictor, &data).unwrap();
    assert!(confusion.is_none() && scores.r2.unwrap() > 0.9);
}

/// A trial whose training diverges (the loss turns NaN) fails on its own; the study goes on.
#[test]
fn a_diverging_trial_fails_and_the_study_continues() {
    let schema = Schema {
        features: vec!["x".into()],
        target: "y".into(),
        task: Task::Classification {
            classes: vec!["a".into(), "b".into()],
        },
    };
    let rows: Vec<Vec<f32>> = (0..64).map(|i| vec![i as f32]).collect();
    let targets = (0..64).map(|i| Target::Class(i % 2)).collect();
    let data = TabularDataset::from_rows(schema, rows, targets).unwrap();
    let huge = TabularDataset::from_rows(
        data.schema().clone(),
        (0..64).map(|i| vec![f32::MAX / (i as f32 + 1.0)]).collect(),
        (0..64).map(|i| Target::Class(i % 2)).collect(),
    )
    .unwrap();
    let study = Study::builder("diverge").build().unwrap();
    study
        .optimize(2, |trial| {
            let d = if trial.number() == 0 { &huge } else { &data };
            let config = MlpConfig::default().with_max_epochs(2);
            let fitted = MlpClassifier::<Cpu>::new(config)?.train(d, d, trial)?;
            Ok(fitted.summary().best_valid_score.unwrap_or(0.0))
        })
        .unwrap();
    let states: Vec<TrialState> = study.trials().unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, [TrialState::Failed, TrialState::Complete]);
}

#[test]
fn a_time_limit_ends_training_after_the_epoch_that_reaches_it() {
    let wine = datasets::wine().unwrap();
    let (train, valid) = stratified_split(&wine, 0.25, 0).unwrap();
    let config = MlpConfig::default().with_max_epochs(50).with_patience(50);
    let fitted = MlpClassifier::<Cpu>::new(config)
        .unwrap()
        .with_time_limit(Duration::from_nanos(1))
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let s = fitted.summary();
    assert_eq!((s.epochs_run, s.best_epoch), (1, 1));
    assert!(s.train_seconds > 0.0 && s.valid_seconds > 0.0, "{s:?}");

    // In a search, every trial then runs a single epoch; a zero limit is refused.
    let run: AutoMlRun = AutoMl::new()
        .with_trial_time(Duration::from_nanos(1))
        .with_max_trials(4)
        .fit::<Cpu>(&train)
        .unwrap();
    for t in &run.trials {
        assert!(t.intermediate_values.len() <= 1, "{t:?}");
    }
    let err = AutoMl::new()
        .with_trial_time(Duration::ZERO)
        .fit::<Cpu>(&train)
        .unwrap_err();
    assert!(err.to_string().contains("trial_time"), "{err}");
}

#[test]
fn tables_search_the_forest_too_and_it_round_trips() {
    let (train, test) = stratified_split(&datasets::wine().unwrap(), 0.25, 5).unwrap();
    let run: AutoMlRun = AutoMl::new()
        .with_families(&[Family::Forest])
        .with_max_trials(2)
        .fit::<Cpu>(&train)
        .unwrap();
    assert_eq!(run.predictor.model().family(), "forest");
    let accuracy = evaluate(&run.predictor, &test).unwrap().0.accuracy.unwrap();
    assert!(accuracy > 0.85, "test accuracy {accuracy}");
    let dir = tempfile::tempdir().unwrap();
    run.to_artifact(BTreeMap::new())
        .unwrap()
        .save(dir.path())
        .unwrap();
    let artifact = ModelArtifact::load(dir.path()).unwrap();
    let back = Predictor::from_artifact(&artifact).unwrap();
    let x = Features::new(test.feature_values(), test.n_features()).unwrap();
    assert_eq!(back.predict(x).unwrap(), run.predictor.predict(x).unwrap());
    // The run's artifact carries a replay sample of distinct training rows, for online
    // learning: every training row here (fewer than 1,000), each with its own target.
    let replay = artifact.replay().unwrap().unwrap();
    assert_eq!(replay.len(), train.len());
    assert_eq!(replay.width(), train.n_features());
    let rows: Vec<(&[f32], Option<Target>)> = (0..train.len())
        .map(|i| (train.features(i).unwrap(), train.target(i)))
        .collect();
    for i in 0..replay.len() {
        let row = (replay.features(i).unwrap(), replay.target(i));
        assert!(rows.contains(&row), "replay row {i} is not a training row");
    }
}

#[test]
fn hyperband_budgets_promote_trials_that_resume_from_their_checkpoints() {
    use lepton::search::scheduler::{BUDGET_ATTR, CONFIG_ATTR};
    let Some(data) = digits() else { return };
    let (train, test) = split(&data);
    // Networks: they resume from checkpoints (trees are grown once per configuration).
    let automl = AutoMl::new()
        .with_families(&[Family::Linear, Family::Mlp])
        .with_search_epochs(9, 9)
        .with_trial_budgets(lepton::TrialBudgets::Hyperband {
            reduction_factor: 3,
        })
        .with_max_trials(13) // the first bracket: 9 at 1 epoch, 3 at 3, 1 at 9
        .with_seed(3);
    let run: AutoMlRun = automl.fit::<Cpu>(&train).unwrap();
    let attr = |t: &lepton::core::FrozenTrial, k: &str| t.user_attrs[k].as_i64().unwrap() as u64;
    let budgets: Vec<u64> = run.trials.iter().map(|t| attr(t, BUDGET_ATTR)).collect();
    assert_eq!(budgets, [1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 9]);
    // The warm start's defaults are the first configurations.
    assert_eq!(run.trials[0].params["family"].as_str(), Some("linear"));
    assert_eq!(run.trials[1].params["family"].as_str(), Some("mlp"));
    let mut promoted = 0;
    for t in &run.trials[9..] {
        let config = &run.trials[attr(t, CONFIG_ATTR) as usize];
        assert_eq!(
            t.params, config.params,
            "a promotion keeps its configuration"
        );
        if t.state == TrialState::Complete {
            // It trained only the epochs past its last budget: resumed, not started over.
            let first = *t.intermediate_values.keys().next().unwrap();
            let before = run
                .trials
                .iter()
                .filter(|u| u.number < t.number && attr(u, CONFIG_ATTR) == attr(t, CONFIG_ATTR))
                .map(|u| attr(u, BUDGET_ATTR))
                .max()
                .unwrap();
            assert_eq!(first, before + 1, "trial {}", t.number);
            promoted += 1;
        }
    }
    assert!(promoted >= 3, "{promoted} promotions completed");
    // The three promoted to 3 epochs were the best three at 1 epoch.
    let mut first_rung: Vec<&lepton::core::FrozenTrial> = run.trials[..9]
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .collect();
    first_rung.sort_by(|a, b| b.value.unwrap().total_cmp(&a.value.unwrap()));
    let chosen: Vec<u64> = run.trials[9..12]
        .iter()
        .map(|t| attr(t, CONFIG_ATTR))
        .collect();
    let best: Vec<u64> = first_rung[..3].iter().map(|t| t.number).collect();
    assert_eq!(chosen, best);
    let (scores, _) = evaluate(&run.predictor, &test).unwrap();
    let accuracy = scores.accuracy.unwrap();
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
}
