//! Forests: random forests and extra trees learn (an interaction a linear model cannot),
//! their probabilities are class shares, they take missing values and categories as they
//! are, they are reproducible, they save and restore exactly, they stop when asked, and they
//! refuse bad settings and data.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;
use std::time::Duration;

use lepton_core::{
    Dataset, DetachedContext, Features, ParamValue, Predict, Prediction, Schema, Target, Task,
    TrialContext,
};
use lepton_data::{TabularDataset, datasets, stratified_split};
use lepton_models::{FittedForest, ForestConfig, ForestModel, ForestSplit, Head};

fn wine_split() -> (TabularDataset, TabularDataset) {
    stratified_split(&datasets::wine().unwrap(), 0.25, 0).unwrap()
}

fn two_classes(features: usize) -> Schema {
    Schema {
        features: (0..features).map(|i| format!("x{i}")).collect(),
        target: "y".into(),
        task: Task::Classification {
            classes: vec!["no".into(), "yes".into()],
        },
    }
}

fn accuracy(fitted: &FittedForest, data: &TabularDataset) -> f64 {
    let x = Features::with_missing(data.feature_values(), data.n_features()).unwrap();
    let right = fitted
        .predict(x)
        .unwrap()
        .iter()
        .zip(data.targets())
        .filter(|(p, t)| {
            matches!((p, t), (Prediction::Class { index, .. }, Target::Class(c)) if index == c)
        })
        .count();
    right as f64 / data.len() as f64
}

/// A forest of `split`'s kind whose splits look at every feature, `categorical` holding
/// category codes, grown on `train`.
fn every_feature(
    split: ForestSplit,
    categorical: &[usize],
    train: &TabularDataset,
    valid: &TabularDataset,
) -> FittedForest {
    let config = ForestConfig {
        split,
        feature_fraction: 1.0,
        ..ForestConfig::default()
    };
    ForestModel::new(config)
        .unwrap()
        .with_categorical(categorical.to_vec())
        .train(train, valid, &mut DetachedContext::new())
        .unwrap()
}

#[test]
fn classifies_wine_with_class_shares_reproducibly() {
    let (train, valid) = wine_split();
    for split in [ForestSplit::Random, ForestSplit::Best] {
        let config = ForestConfig {
            split,
            ..ForestConfig::default().with_seed(7)
        };
        let model = ForestModel::new(config).unwrap();
        let mut ctx = DetachedContext::new();
        let fitted = model.train(&train, &valid, &mut ctx).unwrap();
        assert_eq!(fitted.n_trees(), 100);
        let score = fitted.summary().best_valid_score.unwrap();
        assert!(score > 0.9, "{split:?}: validation accuracy {score}");
        assert_eq!(ctx.reports(), &[(1, score)]);
        let x = Features::new(valid.feature_values(), valid.n_features()).unwrap();
        let predictions = fitted.predict(x).unwrap();
        for p in &predictions {
            let Prediction::Class {
                index,
                probabilities,
            } = p
            else {
                panic!("{p:?}")
            };
            let total: f32 = probabilities.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "{probabilities:?}");
            let top = probabilities.iter().copied().fold(0.0, f32::max);
            assert_eq!(probabilities[*index], top);
        }
        let again = model
            .train(&train, &valid, &mut DetachedContext::new())
            .unwrap();
        assert_eq!(again.predict(x).unwrap(), predictions);
    }
}

#[test]
fn it_learns_an_interaction_no_single_feature_shows() {
    // XOR of the signs of two features, with a distractor: no linear model beats a coin.
    let xor = |seed: u32, n: usize| {
        let (mut rows, mut targets) = (Vec::new(), Vec::new());
        for i in 0..n as u32 {
            let u = |k: u32| {
                ((i.wrapping_mul(2654435761) ^ (seed + k).wrapping_mul(40503)) % 1000) as f32
                    / 500.0
                    - 1.0
            };
            let (a, b) = (u(1), u(7));
            rows.push(vec![a, b, u(13)]);
            targets.push(Target::Class(usize::from((a > 0.0) != (b > 0.0))));
        }
        TabularDataset::from_rows(two_classes(3), rows, targets).unwrap()
    };
    let (train, valid) = (xor(1, 2000), xor(2, 500));
    for split in [ForestSplit::Random, ForestSplit::Best] {
        let fitted = every_feature(split, &[], &train, &valid);
        let a = accuracy(&fitted, &valid);
        assert!(a > 0.95, "{split:?}: accuracy {a}");
    }
}

#[test]
fn missing_values_and_categories_need_no_encoding() {
    // y is 1 for categories 3 and 7 of feature 0, or when feature 1 is missing.
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    for i in 0..3000 {
        let category = (i % 10) as f32;
        let value = if i % 7 == 0 {
            f32::NAN
        } else {
            (i % 13) as f32
        };
        rows.push(vec![category, value]);
        let yes = category == 3.0 || category == 7.0 || value.is_nan();
        targets.push(Target::Class(usize::from(yes)));
    }
    let data = TabularDataset::with_missing(two_classes(2), rows.concat(), targets).unwrap();
    let (train, valid) = (
        data.select(&(0..2400).collect::<Vec<_>>()).unwrap(),
        data.select(&(2400..3000).collect::<Vec<_>>()).unwrap(),
    );
    for split in [ForestSplit::Random, ForestSplit::Best] {
        let fitted = every_feature(split, &[0], &train, &valid);
        assert_eq!(accuracy(&fitted, &valid), 1.0, "{split:?}");
        // An unseen category and a missing one are answered, not refused.
        let p = fitted
            .predict(Features::with_missing(&[42.0, 1.0, f32::NAN, f32::NAN], 2).unwrap())
            .unwrap();
        assert!(matches!(p[1], Prediction::Class { index: 1, .. }), "{p:?}");
        let Prediction::Class { probabilities, .. } = &p[0] else {
            panic!("{p:?}")
        };
        assert!(probabilities.iter().all(|q| q.is_finite()));
    }
}

#[test]
fn it_stops_when_asked_and_keeps_the_trees_grown_in_time() {
    let (train, valid) = wine_split();
    let config = ForestConfig {
        n_trees: 1000,
        ..ForestConfig::default()
    };
    let fitted = ForestModel::new(config.clone())
        .unwrap()
        .with_time_limit(Some(Duration::ZERO))
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    assert!(
        (1..1000).contains(&fitted.n_trees()),
        "{}",
        fitted.n_trees()
    );
    // The trees kept save and load.
    let back = FittedForest::from_bytes(
        config.clone(),
        train.n_features(),
        fitted.head(),
        fitted.summary().clone(),
        &fitted.trees_to_bytes().unwrap(),
    )
    .unwrap();
    assert_eq!(back.n_trees(), fitted.n_trees());

    struct Stop;
    impl TrialContext for Stop {
        fn report(&mut self, _step: u64, _value: f64) -> lepton_core::Result<()> {
            Ok(())
        }
        fn should_prune(&self) -> bool {
            true
        }
    }
    let err = ForestModel::new(config)
        .unwrap()
        .train(&train, &valid, &mut Stop)
        .unwrap_err();
    assert!(err.to_string().contains("pruned"), "{err}");
}

#[test]
fn regresses_and_restores_exactly() {
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let (a, b) = ((i % 20) as f32, (i / 20) as f32);
        rows.push(vec![a, b]);
        targets.push(Target::Value(f64::from(3.0 * a - 2.0 * b)));
    }
    let schema = Schema {
        features: vec!["a".into(), "b".into()],
        target: "y".into(),
        task: Task::Regression,
    };
    let data = TabularDataset::from_rows(schema, rows, targets).unwrap();
    // Every fifth row validates: inside the training range, as trees do not extrapolate.
    let (valid_rows, train_rows): (Vec<usize>, Vec<usize>) = (0..300).partition(|i| i % 5 == 0);
    let (train, valid) = (
        data.select(&train_rows).unwrap(),
        data.select(&valid_rows).unwrap(),
    );
    let config = ForestConfig {
        feature_fraction: 1.0,
        split: ForestSplit::Best,
        ..ForestConfig::default()
    };
    let fitted = ForestModel::new(config.clone())
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let r2 = fitted.summary().best_valid_score.unwrap();
    assert!(r2 > 0.8, "validation R² {r2}");

    let bytes = fitted.trees_to_bytes().unwrap();
    let back = FittedForest::from_bytes(
        config.clone(),
        2,
        fitted.head(),
        fitted.summary().clone(),
        &bytes,
    )
    .unwrap();
    let x = Features::new(valid.feature_values(), 2).unwrap();
    assert_eq!(back.predict(x).unwrap(), fitted.predict(x).unwrap());
    // Trees that do not fit the description are refused.
    assert!(
        FittedForest::from_bytes(
            config.clone(),
            1,
            fitted.head(),
            fitted.summary().clone(),
            &bytes
        )
        .is_err()
    );
    assert!(
        FittedForest::from_bytes(
            config.clone(),
            2,
            Head::Classes { count: 2 },
            fitted.summary().clone(),
            &bytes
        )
        .is_err()
    );
    let fewer = ForestConfig {
        n_trees: 5,
        ..config.clone()
    };
    assert!(
        FittedForest::from_bytes(fewer, 2, fitted.head(), fitted.summary().clone(), &bytes)
            .is_err()
    );
    assert!(
        FittedForest::from_bytes(config, 2, fitted.head(), fitted.summary().clone(), b"{}")
            .is_err()
    );
    // Rows of the wrong width get a typed error.
    assert!(
        fitted
            .predict(Features::new(&[1.0, 2.0, 3.0], 3).unwrap())
            .is_err()
    );
}

#[test]
fn refuses_bad_settings_and_data() {
    for bad in [
        ForestConfig {
            n_trees: 0,
            ..ForestConfig::default()
        },
        ForestConfig {
            feature_fraction: 0.0,
            ..ForestConfig::default()
        },
        ForestConfig {
            feature_fraction: f64::NAN,
            ..ForestConfig::default()
        },
        ForestConfig {
            min_samples_leaf: 0,
            ..ForestConfig::default()
        },
        ForestConfig {
            max_depth: 65,
            ..ForestConfig::default()
        },
    ] {
        assert!(ForestModel::new(bad).is_err());
    }
    let unknown = BTreeMap::from([("learning_rate", ParamValue::from(0.1))]);
    assert!(ForestConfig::default().with_params(&unknown).is_err());
    let split = BTreeMap::from([("split", ParamValue::from("sideways"))]);
    assert!(ForestConfig::default().with_params(&split).is_err());
    let known = BTreeMap::from([("n_trees", ParamValue::from(7i64))]);
    assert_eq!(
        ForestConfig::default().with_params(&known).unwrap().n_trees,
        7
    );

    // One class in the training rows; a NaN feature.
    let schema = Schema {
        features: vec!["x".into()],
        target: "y".into(),
        task: Task::Classification {
            classes: vec!["a".into(), "b".into()],
        },
    };
    let one = TabularDataset::from_rows(
        schema.clone(),
        (0..10).map(|i| vec![i as f32]).collect(),
        vec![Target::Class(0); 10],
    )
    .unwrap();
    let model = ForestModel::new(ForestConfig::default()).unwrap();
    let err = model
        .train(&one, &one, &mut DetachedContext::new())
        .unwrap_err();
    assert!(err.to_string().contains("at least 2 classes"), "{err}");
    // Rows of the wrong width, and a target that is not a class of the task.
    struct Raw(Schema);
    impl Dataset for Raw {
        fn schema(&self) -> &Schema {
            &self.0
        }
        fn len(&self) -> usize {
            2
        }
        fn features(&self, i: usize) -> Option<&[f32]> {
            [&[1.0, 2.0][..], &[1.0][..]].get(i).copied()
        }
        fn target(&self, i: usize) -> Option<Target> {
            (i < 2).then_some(Target::Class(5 * i))
        }
    }
    let raw = Raw(schema);
    let err = model
        .train(&raw, &raw, &mut DetachedContext::new())
        .unwrap_err();
    assert!(err.to_string().contains("row 0 has 2 values"), "{err}");

    // The trees earlier versions saved (smartcore's) are refused with a reason.
    let earlier = br#"{"Classes":{"count":2,"classes":[0,1],"trees":[]}}"#;
    let err = FittedForest::from_bytes(
        ForestConfig::default(),
        1,
        Head::Classes { count: 2 },
        lepton_models::TrainingSummary {
            epochs_run: 1,
            best_epoch: 1,
            best_valid_score: None,
            best_valid_loss: None,
            best_valid_confusion: None,
            final_train_loss: 0.0,
            train_seconds: 0.0,
            valid_seconds: 0.0,
        },
        earlier,
    )
    .unwrap_err();
    assert!(err.to_string().contains("earlier Lepton"), "{err}");
}
