//! The predictor survives a trip through an artifact directory, and bad artifacts or rows
//! are refused with typed errors.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;

use lepton::prelude::*;

mod common;
use common::iris_predictor;
use lepton::{Error, deploy::DeployError};

#[test]
fn reloaded_predictor_predicts_identically() {
    let (predictor, test) = iris_predictor();
    let dir = tempfile::tempdir().unwrap();
    predictor
        .save(dir.path(), BTreeMap::from([("acc".into(), 1.0)]))
        .unwrap();
    let loaded = TabularPredictor::<Cpu>::load(dir.path()).unwrap();
    let before = predictor.predict_table(&test).unwrap();
    assert_eq!(before, loaded.predict_table(&test).unwrap());
    let labels = loaded.labels(&before).unwrap();
    assert!(labels.iter().all(|l| ["0", "1", "2"].contains(&l.as_str())));
    let scores = predictor.score(&test).unwrap();
    assert!(scores.accuracy.unwrap() > 0.8, "{scores:?}");
    // Three balanced classes: the other classification scores agree with accuracy.
    assert!(scores.balanced_accuracy.unwrap() > 0.75, "{scores:?}");
    assert!(scores.macro_f1.unwrap() > 0.75, "{scores:?}");
    assert!((0.0..1.0).contains(&scores.log_loss.unwrap()), "{scores:?}");
    assert!(scores.r2.is_none() && scores.mae.is_none());
}

#[test]
fn records_by_column_name_are_validated() {
    let (predictor, _) = iris_predictor();
    let schema = predictor.input_schema();
    assert_eq!(schema.features.len(), 4);
    let record: BTreeMap<String, String> = schema
        .features
        .iter()
        .zip(["5.1", "3.5", "1.4", "0.2"])
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let p = predictor
        .predict_records(std::slice::from_ref(&record))
        .unwrap();
    assert_eq!(predictor.labels(&p).unwrap(), ["0"], "a textbook setosa");
    let mut bad = record.clone();
    bad.insert(schema.features[0].clone(), "NaN-ish".into());
    assert!(predictor.predict_records(&[bad]).is_err());
    let mut extra = record;
    extra.insert("colour".into(), "blue".into());
    assert!(matches!(
        predictor.predict_records(&[extra]),
        Err(Error::Data(_))
    ));
}

#[test]
fn tampered_and_foreign_artifacts_are_refused() {
    let (predictor, _) = iris_predictor();
    let dir = tempfile::tempdir().unwrap();
    predictor.save(dir.path(), BTreeMap::new()).unwrap();
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();

    std::fs::write(
        &manifest,
        text.replace("\"model_family\": \"mlp\"", "\"model_family\": \"cnn\""),
    )
    .unwrap();
    assert!(matches!(
        TabularPredictor::<Cpu>::load(dir.path()),
        Err(Error::IncompatibleArtifact(_))
    ));

    std::fs::write(
        &manifest,
        text.replace("\"hidden_width\": 64", "\"hidden_width\": 65"),
    )
    .unwrap();
    assert!(matches!(
        TabularPredictor::<Cpu>::load(dir.path()),
        Err(Error::Model(_))
    ));

    std::fs::write(&manifest, &text).unwrap();
    let weights = dir.path().join("weights.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&weights, bytes).unwrap();
    assert!(matches!(
        TabularPredictor::<Cpu>::load(dir.path()),
        Err(Error::Deploy(DeployError::Checksum { .. }))
    ));
}
