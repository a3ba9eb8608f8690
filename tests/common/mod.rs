//! What several integration tests train.

#![allow(dead_code)] // each test crate uses its own part of it

use lepton::prelude::*;

/// An iris predictor (fitted preprocessor + MLP, 30 epochs) and the 30 % of the rows it was
/// not trained on.
pub fn iris_predictor() -> (TabularPredictor, Table) {
    let iris = datasets::table("iris").unwrap();
    let (labels, classes) = iris.class_indices("target").unwrap();
    let (train_rows, test_rows) =
        lepton::data::stratified_holdout_indices(&labels, &classes, 0.3, 0).unwrap();
    let (train, test) = (
        iris.select(&train_rows).unwrap(),
        iris.select(&test_rows).unwrap(),
    );
    let p = Preprocessor::default()
        .fit(&train, "target", TargetKind::Classification)
        .unwrap();
    let config = MlpConfig::default()
        .with_learning_rate(1e-2)
        .with_max_epochs(30);
    let model = MlpClassifier::<Cpu>::new(config)
        .unwrap()
        .train(
            &p.transform(&train).unwrap(),
            &p.transform(&test).unwrap(),
            &mut DetachedContext::new(),
        )
        .unwrap();
    (TabularPredictor::new(p, model).unwrap(), test)
}

/// Wine split 70 / 30 (stratified), standardised on the 70 %.
pub fn scaled_wine() -> (TabularDataset, TabularDataset) {
    let wine = datasets::wine().unwrap();
    let (train, valid) = stratified_split(&wine, 0.3, 0).unwrap();
    let scaler = StandardScaler.fit(&train).unwrap();
    let (train, valid) = (
        scaler.transform(&train).unwrap(),
        scaler.transform(&valid).unwrap(),
    );
    (train, valid)
}
