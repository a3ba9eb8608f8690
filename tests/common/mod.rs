//! What several integration tests train, and the `lepton` command they run.

#![allow(dead_code)] // each test crate uses its own part of it

use lepton::prelude::*;

/// Runs the `lepton` command with `args`; its success, stdout and stderr.
pub fn lepton(args: &[&str]) -> (bool, String, String) {
    lepton_in(std::path::Path::new("."), args)
}

/// [`lepton`] run from the directory `cwd`.
pub fn lepton_in(cwd: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lepton"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// An iris predictor (fitted preprocessor + MLP, 30 epochs) and the 30 % of the rows it was
/// not trained on.
pub fn iris_predictor() -> (Predictor, Table) {
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
    let model = Box::new(FittedModel::<Cpu>::Mlp(Box::new(model)));
    (Predictor::tabular(p, model).unwrap(), test)
}

/// Wine split 70 / 30 (stratified), standardized on the 70 %.
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

/// An MLP trained for `epochs` on standardized wine (seed 1), as an artifact with a replay
/// sample of 100 training rows (so that it can learn online), and the validation rows.
pub fn wine_artifact_with_replay(epochs: usize) -> (lepton::deploy::ModelArtifact, TabularDataset) {
    let (train, valid) = scaled_wine();
    let config = MlpConfig::default()
        .with_learning_rate(1e-2)
        .with_max_epochs(epochs)
        .with_seed(1);
    let fitted = MlpClassifier::<Cpu>::new(config)
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let model = Box::new(FittedModel::<Cpu>::Mlp(Box::new(fitted)));
    let artifact = Predictor::numeric(model, train.schema().clone())
        .unwrap()
        .to_artifact(std::collections::BTreeMap::new())
        .unwrap()
        .with_replay(&lepton::deploy::Examples::sample(&train, 100, 0).unwrap())
        .unwrap();
    (artifact, valid)
}

/// Starts `lepton-serve` over `registry` on a free loopback port, with `extra` arguments and
/// `env` variables; returns the process and the base URL it prints first.
pub fn start_lepton_serve(
    registry: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lepton-serve"))
        .args([
            "--registry",
            registry.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}
