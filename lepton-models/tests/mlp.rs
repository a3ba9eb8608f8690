//! The MLP classifier on real data: it learns, it saves and restores exactly, it refuses bad
//! input, it can be pruned.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use lepton_core::{DetachedContext, Error, Features, Model, Predict, Result, TrialContext};
use lepton_data::{StandardScaler, TabularDataset, datasets, stratified_split};
use lepton_models::{
    Cpu, FineTuning, FittedMlp, Head, MlpClassifier, MlpConfig, MlpRegressor, ModelError,
    OptimizerKind, TrainingRun,
};

fn scaled_iris() -> (TabularDataset, TabularDataset) {
    let iris = datasets::iris().unwrap();
    let (train, valid) = stratified_split(&iris, 0.3, 0).unwrap();
    let scaler = StandardScaler.fit(&train).unwrap();
    (
        scaler.transform(&train).unwrap(),
        scaler.transform(&valid).unwrap(),
    )
}

fn quick() -> MlpConfig {
    MlpConfig::default()
        .with_learning_rate(1e-2)
        .with_max_epochs(60)
        .with_patience(15)
        .with_seed(3)
}

fn accuracy(model: &impl Predict, data: &TabularDataset) -> f64 {
    let x = Features::new(data.feature_values(), data.n_features()).unwrap();
    let p = model.predict(x).unwrap();
    let hits = p
        .iter()
        .zip(data.targets())
        .filter(|(p, t)| matches!(t, lepton_core::Target::Class(c) if p.class() == Some(*c)))
        .count();
    hits as f64 / p.len() as f64
}

#[test]
fn learns_iris_and_reports_every_epoch() {
    let (train, valid) = scaled_iris();
    let mut ctx = DetachedContext::new();
    let fitted = MlpClassifier::<Cpu>::new(quick())
        .unwrap()
        .fit(&train, &valid, &mut ctx)
        .unwrap();
    let s = fitted.summary();
    assert_eq!(ctx.reports().len(), s.epochs_run);
    assert!(s.best_epoch >= 1 && s.best_epoch <= s.epochs_run);
    let acc = accuracy(&fitted, &valid);
    assert!(acc >= 0.9, "validation accuracy {acc}");
    assert_eq!(Some(acc), s.best_valid_score);
}

#[test]
fn saved_weights_restore_identical_predictions() {
    let (train, valid) = scaled_iris();
    let fitted = MlpClassifier::<Cpu>::new(quick().with_depth(2))
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let bytes = fitted.weights_to_bytes().unwrap();
    let restored = FittedMlp::<Cpu>::from_weights(
        fitted.config().clone(),
        fitted.n_features(),
        fitted.head(),
        fitted.summary().clone(),
        bytes.clone(),
    )
    .unwrap();
    let x = Features::new(valid.feature_values(), 4).unwrap();
    assert_eq!(fitted.predict(x).unwrap(), restored.predict(x).unwrap());

    // Weights for another shape of network are refused, not silently mis-loaded.
    let wrong = FittedMlp::<Cpu>::from_weights(
        fitted.config().clone().with_hidden_width(7),
        4,
        Head::Classes { count: 3 },
        fitted.summary().clone(),
        bytes.clone(),
    );
    assert!(matches!(wrong, Err(ModelError::Weights(_))), "{wrong:?}");
    let garbage = FittedMlp::<Cpu>::from_weights(
        fitted.config().clone(),
        4,
        Head::Classes { count: 3 },
        fitted.summary().clone(),
        b"not burnpack".to_vec(),
    );
    assert!(matches!(garbage, Err(ModelError::Weights(_))));
    // A shape far wider than the weights is refused before the network is allocated.
    for n_features in [1 << 21, 1 << 40, usize::MAX] {
        let huge = FittedMlp::<Cpu>::from_weights(
            fitted.config().clone(),
            n_features,
            Head::Classes { count: 3 },
            fitted.summary().clone(),
            bytes.clone(),
        );
        assert!(
            matches!(&huge, Err(ModelError::Weights(m)) if m.contains("at most")),
            "{huge:?}"
        );
    }
    let many_classes = FittedMlp::<Cpu>::from_weights(
        fitted.config().clone(),
        4,
        Head::Classes { count: 1 << 40 },
        fitted.summary().clone(),
        bytes.clone(),
    );
    assert!(matches!(many_classes, Err(ModelError::Weights(_))));
}

#[test]
fn predict_refuses_the_wrong_width() {
    let (train, valid) = scaled_iris();
    let fitted = MlpClassifier::<Cpu>::new(quick().with_max_epochs(2))
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let x = Features::new(&[0.0; 6], 3).unwrap();
    assert!(matches!(fitted.predict(x), Err(Error::InvalidInput(_))));
}

#[test]
fn bad_hyper_parameters_fail_before_training() {
    for config in [
        MlpConfig::default().with_dropout(1.0),
        MlpConfig::default().with_dropout(f64::NAN),
        MlpConfig::default().with_learning_rate(0.0),
        MlpConfig::default().with_batch_size(0),
        MlpConfig::default().with_hidden_width(0),
        MlpConfig::default().with_max_epochs(0),
    ] {
        let e = MlpClassifier::<Cpu>::new(config).unwrap_err();
        assert!(
            matches!(e, ModelError::Core(Error::InvalidParameter { .. })),
            "{e:?}"
        );
    }
    let unknown = [("beta_3".to_string(), 0.9.into())].into_iter().collect();
    assert!(MlpConfig::default().with_params(&unknown).is_err());
    // The optimizer's settings are parameters too, checked like the others.
    let sgd = [
        ("optimizer".to_string(), "sgd".into()),
        ("momentum".to_string(), 0.8.into()),
    ]
    .into_iter()
    .collect();
    let config = MlpConfig::default().with_params(&sgd).unwrap();
    assert_eq!(config.optimizer.momentum, 0.8);
    let bad = [("momentum".to_string(), 1.5.into())].into_iter().collect();
    assert!(MlpConfig::default().with_params(&bad).is_err());
}

#[test]
fn one_class_data_is_refused() {
    let d = lepton_data::CsvLoader::new("one.csv")
        .load_from(&b"x,target\n1,a\n2,a\n"[..])
        .unwrap();
    let e = MlpClassifier::<Cpu>::new(quick())
        .unwrap()
        .train(&d, &d, &mut DetachedContext::new())
        .unwrap_err();
    assert!(matches!(e, ModelError::InvalidData(_)), "{e:?}");
}

#[test]
fn a_diverging_run_fails_cleanly() {
    let d = lepton_data::CsvLoader::new("huge.csv")
        .load_from(&b"x,target\n3.4e38,a\n-3.4e38,b\n3.3e38,a\n-3.3e38,b\n"[..])
        .unwrap();
    let e = MlpClassifier::<Cpu>::new(
        quick()
            .with_learning_rate(1.0)
            .with_hidden_width(512)
            .with_depth(3),
    )
    .unwrap()
    .train(&d, &d, &mut DetachedContext::new())
    .unwrap_err();
    assert!(matches!(e, ModelError::Diverged { .. }), "{e:?}");
}

/// Prunes as soon as anything is reported.
struct PruneAtOnce(usize);

impl TrialContext for PruneAtOnce {
    fn report(&mut self, _: u64, _: f64) -> Result<()> {
        self.0 += 1;
        Ok(())
    }
    fn should_prune(&self) -> bool {
        self.0 > 0
    }
}

#[test]
fn training_stops_when_pruned() {
    let (train, valid) = scaled_iris();
    let mut ctx = PruneAtOnce(0);
    let e = MlpClassifier::<Cpu>::new(quick())
        .unwrap()
        .fit(&train, &valid, &mut ctx)
        .unwrap_err();
    assert!(matches!(e, Error::Pruned { step: 1 }), "{e:?}");
    assert_eq!(ctx.0, 1);
}

#[test]
fn impossible_report_counts_are_refused() {
    let (train, valid) = scaled_iris();
    // 105 training rows in batches of 32 are 4 batches an epoch.
    for (k, why) in [(0, "at least 1 report"), (5, "only 4 batches")] {
        let e = MlpClassifier::<Cpu>::new(quick())
            .unwrap()
            .with_reports_per_epoch(k)
            .train(&train, &valid, &mut DetachedContext::new())
            .unwrap_err();
        assert!(
            matches!(&e, ModelError::Core(Error::InvalidParameter { name, .. }) if name == "reports_per_epoch"),
            "{e:?}"
        );
        assert!(e.to_string().contains(why), "{e}");
    }
}

#[test]
fn regressor_learns_a_linear_function_and_restores() {
    // y = 3 a - 2 b + 10, a and b on a grid: an MLP should explain nearly all of it.
    let mut text = String::from("a,b,y\n");
    for i in 0..120 {
        let (a, b) = ((i % 12) as f64 / 6.0 - 1.0, (i / 12) as f64 / 5.0 - 1.0);
        text.push_str(&format!("{a},{b},{}\n", 3.0 * a - 2.0 * b + 10.0));
    }
    let d = lepton_data::CsvLoader::new("lin.csv")
        .with_target("y")
        .with_regression(true)
        .load_from(text.as_bytes())
        .unwrap();
    let (train, valid) = lepton_data::holdout_split(&d, 0.25, 0).unwrap();
    let fitted = MlpRegressor::<Cpu>::new(quick().with_max_epochs(150).with_dropout(0.0))
        .unwrap()
        .fit(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let r2 = fitted.summary().best_valid_score.unwrap();
    assert!(r2 > 0.95, "R² {r2}");
    assert!(matches!(fitted.head(), Head::Value { mean, .. } if (mean - 10.0).abs() < 1.0));
    let x = Features::new(valid.feature_values(), 2).unwrap();
    let p = fitted.predict(x).unwrap();
    assert!(matches!(p[0], lepton_core::Prediction::Value(_)));
    let restored = FittedMlp::<Cpu>::from_weights(
        fitted.config().clone(),
        2,
        fitted.head(),
        fitted.summary().clone(),
        fitted.weights_to_bytes().unwrap(),
    )
    .unwrap();
    assert_eq!(restored.predict(x).unwrap(), p);
    // The classifier refuses a regression target and the regressor a classification one.
    assert!(
        MlpClassifier::<Cpu>::new(quick())
            .unwrap()
            .train(&train, &valid, &mut DetachedContext::new())
            .is_err()
    );
    let (iris_train, iris_valid) = scaled_iris();
    assert!(
        MlpRegressor::<Cpu>::new(quick())
            .unwrap()
            .train(&iris_train, &iris_valid, &mut DetachedContext::new())
            .is_err()
    );
}

#[test]
fn fine_tuning_trains_a_copy_further_and_leaves_the_original_alone() {
    let (train, valid) = scaled_iris();
    let barely = MlpClassifier::<Cpu>::new(quick().with_max_epochs(1).with_learning_rate(1e-3))
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let x = Features::new(valid.feature_values(), 4).unwrap();
    let before = barely.predict(x).unwrap();
    let tuning = FineTuning {
        epochs: 40,
        learning_rate: 1e-2,
        batch_size: 16,
        seed: 1,
    };
    let tuned = barely.fine_tune(&train, tuning).unwrap();
    assert_eq!(barely.predict(x).unwrap(), before, "the original changed");
    let (was, now) = (accuracy(&barely, &valid), accuracy(&tuned, &valid));
    assert!(
        now >= 0.9 && now > was,
        "validation accuracy {was} -> {now}"
    );
    assert_eq!(tuned.summary().epochs_run, 41);
    assert_eq!(tuned.head(), barely.head());

    for bad in [
        FineTuning {
            epochs: 0,
            ..tuning
        },
        FineTuning {
            batch_size: 0,
            ..tuning
        },
        FineTuning {
            learning_rate: 0.0,
            ..tuning
        },
        FineTuning {
            learning_rate: f64::NAN,
            ..tuning
        },
    ] {
        assert!(barely.fine_tune(&train, bad).is_err(), "{bad:?}");
    }
    // Examples of another task or width are refused.
    let wine = datasets::wine().unwrap();
    assert!(matches!(
        barely.fine_tune(&wine, tuning),
        Err(ModelError::InvalidData(_))
    ));
}

#[test]
fn a_configuration_saved_under_the_former_names_still_reads() {
    // `optimizer` was `optimisation`, and its `kind` was `optimizer`, before 0.1.0.
    let saved = r#"{"hidden_width": 8, "depth": 1, "dropout": 0.0, "activation": "relu",
        "batch_norm": false, "learning_rate": 0.01, "batch_size": 16, "max_epochs": 5,
        "patience": 2, "seed": 3,
        "optimisation": {"optimizer": "sgd", "momentum": 0.5, "weight_decay": 0.0,
                         "clip_norm": null, "schedule": {"kind": "cosine"}}}"#;
    let config: MlpConfig = serde_json::from_str(saved).unwrap();
    assert_eq!(config.optimizer.kind, OptimizerKind::Sgd);
    assert_eq!(config.optimizer.momentum, 0.5);
    // Written back, it uses today's names.
    let written = serde_json::to_string(&config).unwrap();
    assert!(
        written.contains(r#""optimizer":{"kind":"sgd""#),
        "{written}"
    );
}
