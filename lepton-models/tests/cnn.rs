//! The CNN classifier: it learns shapes and MNIST digits, saves and restores exactly, and
//! refuses bad input with typed errors.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

mod common;

use lepton_core::{Dataset, DetachedContext, Features, Predict, Target};
use lepton_data::datasets::{MnistSplit, mnist};
use lepton_data::{ImageDataset, datasets, stratified_holdout_indices};
use lepton_models::{
    CnnClassifier, CnnConfig, Cpu, FittedCnn, Head, ModelError, Optimizer, OptimizerKind, Schedule,
};

use common::{bars, small};

fn accuracy(model: &impl Predict, data: &ImageDataset) -> f64 {
    let x = Features::new(data.pixels(), data.height() * data.width()).unwrap();
    let p = model.predict(x).unwrap();
    let hits = (0..data.len())
        .filter(|&i| matches!(data.target(i), Some(Target::Class(c)) if p[i].class() == Some(c)))
        .count();
    hits as f64 / data.len() as f64
}

#[test]
fn lenet_and_residual_nets_learn_bars_and_restore_their_weights_exactly() {
    let (train, valid) = (bars(256, 1), bars(128, 2));
    for residual_blocks in [0, 1] {
        let config = CnnConfig {
            residual_blocks,
            ..small()
        };
        let fitted = CnnClassifier::<Cpu>::new(config)
            .unwrap()
            .train(&train, &valid, &mut DetachedContext::new())
            .unwrap();
        let score = fitted.summary().best_valid_score.unwrap();
        assert!(
            score > 0.95,
            "{residual_blocks} blocks: validation accuracy {score}"
        );
        assert!(accuracy(&fitted, &bars(128, 3)) > 0.95);
        // The weights, batch-norm statistics included, come back exactly.
        let restored = FittedCnn::<Cpu>::from_weights(
            fitted.config().clone(),
            fitted.head(),
            fitted.summary().clone(),
            fitted.weights_to_bytes().unwrap(),
        )
        .unwrap();
        let test = bars(64, 4);
        let x = Features::new(test.pixels(), 64).unwrap();
        assert_eq!(restored.predict(x).unwrap(), fitted.predict(x).unwrap());
    }
    let fitted = CnnClassifier::<Cpu>::new(small())
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    // Weights of another shape are refused.
    let wider = CnnConfig {
        channels1: 6,
        ..fitted.config().clone()
    };
    let bytes = fitted.weights_to_bytes().unwrap();
    let summary = fitted.summary().clone();
    assert!(matches!(
        FittedCnn::<Cpu>::from_weights(wider, Head::Classes { count: 2 }, summary.clone(), bytes),
        Err(ModelError::Weights(_))
    ));
    assert!(
        FittedCnn::<Cpu>::from_weights(
            small(),
            Head::Classes { count: 2 },
            summary.clone(),
            vec![1, 2]
        )
        .is_err()
    );
    // A class count or image size far beyond the weights is refused before allocating.
    let huge = [
        (small(), 1usize << 40),
        (small().with_image_size(4096, 4096), 2),
    ];
    for (config, count) in huge {
        let e = FittedCnn::<Cpu>::from_weights(
            config,
            Head::Classes { count },
            summary.clone(),
            fitted.weights_to_bytes().unwrap(),
        );
        assert!(
            matches!(&e, Err(ModelError::Weights(m)) if m.contains("more parameters")),
            "{e:?}"
        );
    }
}

#[test]
fn every_optimizer_and_schedule_learns_bars() {
    let (train, valid) = (bars(256, 1), bars(128, 2));
    for (learning_rate, optimizer) in [
        (
            0.05,
            Optimizer {
                kind: OptimizerKind::Sgd,
                momentum: 0.9,
                schedule: Schedule::Cosine,
                ..Optimizer::default()
            },
        ),
        (
            1e-2,
            Optimizer {
                kind: OptimizerKind::AdamW,
                weight_decay: 1e-4,
                clip_norm: Some(1.0),
                schedule: Schedule::WarmupCosine { warmup: 0.2 },
                ..Optimizer::default()
            },
        ),
        (
            1e-2,
            Optimizer {
                weight_decay: 1e-4,
                schedule: Schedule::Step {
                    every_epochs: 3,
                    gamma: 0.5,
                },
                ..Optimizer::default()
            },
        ),
    ] {
        let config = CnnConfig {
            learning_rate,
            optimizer,
            ..small()
        };
        let fitted = CnnClassifier::<Cpu>::new(config)
            .unwrap()
            .train(&train, &valid, &mut DetachedContext::new())
            .unwrap();
        let score = fitted.summary().best_valid_score.unwrap();
        assert!(score > 0.9, "{optimizer:?}: validation accuracy {score}");
    }
}

#[test]
fn refuses_bad_configurations_and_data() {
    for bad in [
        CnnConfig {
            kernel: 4,
            ..small()
        },
        CnnConfig {
            hidden: 0,
            ..small()
        },
        CnnConfig {
            residual_blocks: 9,
            ..small()
        },
        CnnConfig {
            dropout: 1.0,
            ..small()
        },
        small().with_max_shift(2),
        small().with_image_size(3, 8),
        CnnConfig {
            optimizer: Optimizer {
                momentum: -0.1,
                ..Optimizer::default()
            },
            ..small()
        },
    ] {
        assert!(CnnClassifier::<Cpu>::new(bad).is_err());
    }
    assert!(
        small()
            .with_params(&std::collections::BTreeMap::from([(
                "depth",
                lepton_core::ParamValue::Int(2)
            )]))
            .is_err()
    );
    let model = CnnClassifier::<Cpu>::new(small()).unwrap();
    let ctx = &mut DetachedContext::new();
    // Tabular rows are not 8x8 images.
    let iris = datasets::iris().unwrap();
    let e = model.train(&iris, &iris, ctx).unwrap_err();
    assert!(e.to_string().contains("8x8 images"), "{e}");
    // One class is no classification.
    let one = ImageDataset::from_u8(8, 8, &[0; 128], &[0, 0], vec!["only".into()]).unwrap();
    let e = model.train(&one, &one, ctx).unwrap_err();
    assert!(e.to_string().contains("at least 2 classes"), "{e}");
    // Predicting rows of the wrong width is an error, not a panic.
    let fitted = CnnClassifier::<Cpu>::new(small().with_max_epochs(1))
        .unwrap()
        .train(&bars(32, 1), &bars(16, 2), ctx)
        .unwrap();
    assert!(
        fitted
            .predict(Features::new(&[0.0; 10], 10).unwrap())
            .is_err()
    );
}

/// A few thousand MNIST digits, three epochs: far above chance (observed 0.91-0.96 on 1,000 test
/// images; the weights' initial draw varies when tests share burn's device seed in parallel).
/// Needs MNIST; skips without it.
#[test]
fn learns_mnist_digits() {
    let Ok(all) = mnist(MnistSplit::Train) else {
        lepton_test_support::skip("MNIST is not found (set LEPTON_DATA_DIR)");
        return;
    };
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let (_, subset) = stratified_holdout_indices(all.labels(), &classes, 0.1, 0).unwrap();
    let data = all.select(&subset).unwrap();
    let (train_rows, valid_rows) =
        stratified_holdout_indices(data.labels(), &classes, 0.2, 1).unwrap();
    let (train, valid) = (
        data.select(&train_rows).unwrap(),
        data.select(&valid_rows).unwrap(),
    );
    let config = CnnConfig {
        channels1: 16,
        channels2: 32,
        ..CnnConfig::default()
    }
    .with_max_epochs(3)
    .with_max_shift(1);
    let fitted = CnnClassifier::<Cpu>::new(config)
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let score = fitted.summary().best_valid_score.unwrap();
    let test = mnist(MnistSplit::Test).unwrap();
    let test = test.select(&(0..1000).collect::<Vec<_>>()).unwrap();
    let acc = accuracy(&fitted, &test);
    eprintln!("MNIST subset: validation accuracy {score:.4}, test accuracy {acc:.4}");
    assert!(score > 0.88, "validation accuracy {score}");
    assert!(acc > 0.88, "test accuracy {acc}");
}
