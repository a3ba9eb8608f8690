//! The predictor survives a trip through an artifact directory, and bad artifacts or rows
//! are refused with typed errors.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;

use lepton::prelude::*;
use lepton::{Error, deploy::DeployError};

fn fitted() -> (TabularPredictor, TabularDataset) {
    let iris = datasets::iris().unwrap();
    let (train, test) = stratified_split(&iris, 0.3, 0).unwrap();
    let scaler = StandardScaler.fit(&train).unwrap();
    let config = MlpConfig::default()
        .with_learning_rate(1e-2)
        .with_max_epochs(30);
    let model = MlpClassifier::<Cpu>::new(config)
        .unwrap()
        .train(
            &scaler.transform(&train).unwrap(),
            &scaler.transform(&test).unwrap(),
            &mut DetachedContext::new(),
        )
        .unwrap();
    (
        TabularPredictor::new(iris.schema().clone(), scaler, model).unwrap(),
        test,
    )
}

#[test]
fn reloaded_predictor_predicts_identically() {
    let (predictor, test) = fitted();
    let dir = tempfile::tempdir().unwrap();
    predictor
        .save(dir.path(), BTreeMap::from([("acc".into(), 1.0)]))
        .unwrap();
    let loaded = TabularPredictor::<Cpu>::load(dir.path()).unwrap();
    let raw = test.feature_values();
    assert_eq!(
        predictor.predict_rows(raw).unwrap(),
        loaded.predict_rows(raw).unwrap()
    );
    let labels = loaded.predict_labels(raw).unwrap();
    assert!(labels.iter().all(|l| ["0", "1", "2"].contains(&l.as_str())));
}

#[test]
fn bad_rows_are_refused() {
    let (predictor, _) = fitted();
    assert!(matches!(
        predictor.predict_rows(&[1.0, 2.0, 3.0]),
        Err(Error::Core(lepton::core::Error::InvalidInput(_)))
    ));
    assert!(predictor.predict_rows(&[1.0, f32::NAN, 3.0, 4.0]).is_err());
}

#[test]
fn tampered_and_foreign_artifacts_are_refused() {
    let (predictor, _) = fitted();
    let dir = tempfile::tempdir().unwrap();
    predictor.save(dir.path(), BTreeMap::new()).unwrap();
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();

    std::fs::write(&manifest, text.replace("mlp-classifier", "cnn")).unwrap();
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
