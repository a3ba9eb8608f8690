//! The tree-ensemble baseline: it learns, its probabilities are votes, it is reproducible, it
//! saves and restores exactly, and it refuses bad settings and data.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;

use lepton_core::{
    Dataset, DetachedContext, Features, ParamValue, Predict, Prediction, Schema, Target, Task,
};
use lepton_data::{TabularDataset, datasets, stratified_split};
use lepton_models::{FittedForest, ForestConfig, ForestModel, Head};

fn wine_split() -> (TabularDataset, TabularDataset) {
    stratified_split(&datasets::wine().unwrap(), 0.25, 0).unwrap()
}

#[test]
fn classifies_wine_with_vote_probabilities_reproducibly() {
    let (train, valid) = wine_split();
    let model = ForestModel::new(ForestConfig::default().with_seed(7)).unwrap();
    let mut ctx = DetachedContext::new();
    let fitted = model.train(&train, &valid, &mut ctx).unwrap();
    let score = fitted.summary().best_valid_score.unwrap();
    assert!(score > 0.9, "validation accuracy {score}");
    assert_eq!(ctx.reports(), &[(1, score)]);
    let x = Features::new(valid.feature_values(), valid.n_features()).unwrap();
    let predictions = fitted.predict(x).unwrap();
    for p in &predictions {
        let Prediction::Class { probabilities, .. } = p else {
            panic!("{p:?}")
        };
        let total: f32 = probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "{probabilities:?}");
        // Each probability is a share of 100 trees' votes.
        assert!(
            probabilities
                .iter()
                .all(|q| (q * 100.0 - (q * 100.0).round()).abs() < 1e-3)
        );
    }
    let again = model
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    assert_eq!(again.predict(x).unwrap(), predictions);
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
    // A NaN feature: TabularDataset refuses one at construction, so a dataset of raw rows
    // brings it to the forest, which must refuse it too.
    struct Raw(Schema);
    impl Dataset for Raw {
        fn schema(&self) -> &Schema {
            &self.0
        }
        fn len(&self) -> usize {
            2
        }
        fn features(&self, i: usize) -> Option<&[f32]> {
            [[f32::NAN], [1.0]].get(i).map(|r| &r[..])
        }
        fn target(&self, i: usize) -> Option<Target> {
            (i < 2).then_some(Target::Class(i))
        }
    }
    let nan = Raw(schema);
    let err = model
        .train(&nan, &nan, &mut DetachedContext::new())
        .unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}
