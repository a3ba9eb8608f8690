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
    let loaded = Predictor::load(dir.path()).unwrap();
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

    // An edit of the manifest is refused, whatever it changes: the preprocessor's fitted
    // centre of a column (which no shape check could catch) as much as the family.
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let centre = original
        .pointer("/preprocessor/inputs/0/2/Numeric/center")
        .unwrap();
    let mut edited = original.clone();
    *edited
        .pointer_mut("/preprocessor/inputs/0/2/Numeric/center")
        .unwrap() = (centre.as_f64().unwrap() + 5.0).into();
    let family = text.replace("\"model_family\": \"mlp\"", "\"model_family\": \"cnn\"");
    assert_ne!(family, text);
    for tampered in [serde_json::to_string_pretty(&edited).unwrap(), family] {
        std::fs::write(&manifest, tampered).unwrap();
        let e = Predictor::load(dir.path()).unwrap_err();
        assert!(
            matches!(&e, Error::Deploy(DeployError::Checksum { file, .. }) if file.ends_with("manifest.json")),
            "{e:?}"
        );
    }

    // Behind the checksum, a manifest whose family or configuration does not fit its
    // weights is refused too (built in memory, as a buggy writer could).
    std::fs::write(&manifest, &text).unwrap();
    let artifact = ModelArtifact::load(dir.path()).unwrap();
    let m = artifact.manifest();
    let rebuilt = |family: &str, config: &serde_json::Value| {
        ModelArtifact::new(
            family,
            config,
            &m.preprocessor,
            m.input_schema.clone(),
            BTreeMap::new(),
            artifact.weights().to_vec(),
        )
        .unwrap()
    };
    assert!(matches!(
        Predictor::from_artifact(&rebuilt("cnn", &m.model_config)),
        Err(Error::IncompatibleArtifact(_))
    ));
    let mut wider = m.model_config.clone();
    wider["config"]["hidden_width"] = 65.into();
    assert!(matches!(
        Predictor::from_artifact(&rebuilt("mlp", &wider)),
        Err(Error::Model(_))
    ));

    let weights = dir.path().join("weights.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&weights, bytes).unwrap();
    assert!(matches!(
        Predictor::load(dir.path()),
        Err(Error::Deploy(DeployError::Checksum { .. }))
    ));
}

#[test]
fn a_format_3_table_mlp_without_a_network_tag_still_loads() {
    // Format 3 wrote a table's MLP (TabularPredictor) with an untagged model_config; the
    // same model, described that way, loads as an MLP and predicts the same.
    let (predictor, test) = iris_predictor();
    let artifact = predictor.to_artifact(BTreeMap::new()).unwrap();
    let m = artifact.manifest();
    let mut untagged = m.model_config.clone();
    assert_eq!(untagged["network"], "mlp");
    untagged.as_object_mut().unwrap().remove("network");
    let old = ModelArtifact::new(
        "mlp",
        &untagged,
        &m.preprocessor,
        m.input_schema.clone(),
        BTreeMap::new(),
        artifact.weights().to_vec(),
    )
    .unwrap();
    let loaded = Predictor::from_artifact(&old).unwrap();
    assert_eq!(
        loaded.predict_table(&test).unwrap(),
        predictor.predict_table(&test).unwrap()
    );
}
