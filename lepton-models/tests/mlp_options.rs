//! The MLP's activation and batch-norm options: they train, they restore exactly (batch
//! norm's running statistics included), and bad values are refused.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;

use lepton_core::{DetachedContext, Features, ParamValue, Predict};
use lepton_data::{StandardScaler, datasets, stratified_split};
use lepton_models::{Cpu, FittedMlp, MlpActivation, MlpClassifier, MlpConfig};

#[test]
fn every_activation_with_and_without_batch_norm_learns_and_restores() {
    let (train, valid) = stratified_split(&datasets::wine().unwrap(), 0.25, 0).unwrap();
    let scaler = StandardScaler.fit(&train).unwrap();
    let (train, valid) = (
        scaler.transform(&train).unwrap(),
        scaler.transform(&valid).unwrap(),
    );
    let x = Features::new(valid.feature_values(), valid.n_features()).unwrap();
    for activation in [
        MlpActivation::Relu,
        MlpActivation::Gelu,
        MlpActivation::Tanh,
    ] {
        for batch_norm in [false, true] {
            let config = MlpConfig {
                activation,
                batch_norm,
                ..MlpConfig::default().with_depth(2).with_max_epochs(60)
            };
            let fitted = MlpClassifier::<Cpu>::new(config.clone())
                .unwrap()
                .train(&train, &valid, &mut DetachedContext::new())
                .unwrap();
            let score = fitted.summary().best_valid_score.unwrap();
            assert!(
                score > 0.85,
                "{activation:?} batch norm {batch_norm}: {score}"
            );
            let back = FittedMlp::<Cpu>::from_weights(
                config,
                fitted.n_features(),
                fitted.head(),
                fitted.summary().clone(),
                fitted.weights_to_bytes().unwrap(),
            )
            .unwrap();
            assert_eq!(back.predict(x).unwrap(), fitted.predict(x).unwrap());
        }
    }
}

#[test]
fn options_come_from_trial_parameters_and_bad_values_are_refused() {
    let params = BTreeMap::from([
        ("activation", ParamValue::from("gelu")),
        ("batch_norm", ParamValue::Bool(true)),
    ]);
    let config = MlpConfig::default().with_params(&params).unwrap();
    assert_eq!(
        (config.activation, config.batch_norm),
        (MlpActivation::Gelu, true)
    );
    let swish = BTreeMap::from([("activation", ParamValue::from("swish"))]);
    assert!(MlpConfig::default().with_params(&swish).is_err());
    let number = BTreeMap::from([("batch_norm", ParamValue::from(1i64))]);
    assert!(MlpConfig::default().with_params(&number).is_err());
    // Configurations saved before these options existed still load, as ReLU without batch norm.
    let mut json = serde_json::to_value(MlpConfig::default()).unwrap();
    let object = json.as_object_mut().unwrap();
    object.remove("activation");
    object.remove("batch_norm");
    let old: MlpConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old, MlpConfig::default());
}
