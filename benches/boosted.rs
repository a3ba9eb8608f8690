//! Lepton's tree models on one prepared table, for `benches/boosted_vs_lightgbm.py`, which
//! runs LightGBM (and, with `--forests`, scikit-learn's forests) with the same parameters on
//! the same files and compares.
//!
//! `BOOSTED_DIR` holds train.csv and test.csv: a header, numbers only (category codes for
//! categorical columns, empty cells for missing values), the target last. `BOOSTED_TASK` is
//! `classification` or `regression`; `BOOSTED_CATEGORICAL` lists categorical columns by
//! index (`1,2`). `BOOSTED_MODEL` picks the model: `boosted` (the default: 100 rounds,
//! learning rate 0.1, 31 leaves, 20 rows a leaf, no early stopping), `random_forest` or
//! `extra_trees` (100 fully grown trees, each split looking at the square root of the
//! features for classes and at all of them for values, as scikit-learn's defaults; seeded by
//! `BOOSTED_SEED`, 0 by default). Prints
//! one JSON line: fit and predict seconds, the test score.

use std::time::Instant;

use lepton::core::{DetachedContext, Features, Prediction, Schema, Target, Task};
use lepton::data::TabularDataset;
use lepton::models::{BoostedConfig, BoostedModel, ForestConfig, ForestModel, ForestSplit};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Feature names, row-major features and targets of a prepared CSV file.
type Table = (Vec<String>, Vec<f32>, Vec<f64>);

fn read(path: &std::path::Path, classification: bool) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path:?}: {e}"))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let (features, target) = cells.split_at(cells.len() - 1);
        x.extend(
            features
                .iter()
                .map(|c| c.parse::<f32>().unwrap_or(f32::NAN)),
        );
        let t: f64 = target[0]
            .parse()
            .map_err(|e| format!("{path:?}: target of `{line}`: {e}"))?;
        y.push(if classification { t.round() } else { t });
    }
    Ok((header[..header.len() - 1].to_vec(), x, y))
}

fn main() -> Result<()> {
    let Ok(dir) = std::env::var("BOOSTED_DIR") else {
        eprintln!("set BOOSTED_DIR (see benches/boosted_vs_lightgbm.py); nothing to run");
        return Ok(());
    };
    let dir = std::path::Path::new(&dir);
    let classification = std::env::var("BOOSTED_TASK").as_deref() != Ok("regression");
    let categorical: Vec<usize> = std::env::var("BOOSTED_CATEGORICAL")
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let (names, x, y) = read(&dir.join("train.csv"), classification)?;
    let (_, test_x, test_y) = read(&dir.join("test.csv"), classification)?;
    let classes = y.iter().chain(&test_y).fold(0.0f64, |m, &v| m.max(v)) as usize + 1;
    let task = if classification {
        Task::Classification {
            classes: (0..classes).map(|c| c.to_string()).collect(),
        }
    } else {
        Task::Regression
    };
    let target = |v: f64| {
        if classification {
            Target::Class(v as usize)
        } else {
            Target::Value(v)
        }
    };
    let schema = Schema {
        features: names,
        target: "y".into(),
        task,
    };
    let train = TabularDataset::with_missing(schema, x, y.iter().map(|&v| target(v)).collect())?;
    let none = train.select(&[])?;
    let width = train.n_features();
    let model = std::env::var("BOOSTED_MODEL").unwrap_or_else(|_| "boosted".into());
    let started = Instant::now();
    let (fitted, trees): (Box<dyn lepton::core::Predict>, usize) = match model.as_str() {
        "boosted" => {
            let config = BoostedConfig {
                max_rounds: 100,
                l1: 0.0,
                l2: 0.0,
                ..BoostedConfig::default()
            };
            let fitted = BoostedModel::new(config)?
                .with_categorical(categorical)
                .train(&train, &none, &mut DetachedContext::new())?;
            let trees = fitted.n_trees();
            (Box::new(fitted), trees)
        }
        "random_forest" | "extra_trees" => {
            let config = ForestConfig {
                n_trees: 100,
                max_depth: 0,
                min_samples_leaf: 1,
                // Half a feature under the square root's floor: the share, times the width
                // and rounded up, gives exactly that floor.
                feature_fraction: if classification {
                    ((width as f64).sqrt().floor().max(1.0) - 0.5) / width as f64
                } else {
                    1.0
                },
                split: if model == "extra_trees" {
                    ForestSplit::Random
                } else {
                    ForestSplit::Best
                },
                seed: std::env::var("BOOSTED_SEED")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            };
            let fitted = ForestModel::new(config)?
                .with_categorical(categorical)
                .train(&train, &none, &mut DetachedContext::new())?;
            let trees = fitted.n_trees();
            (Box::new(fitted), trees)
        }
        other => return Err(format!("BOOSTED_MODEL={other}: not a tree model here").into()),
    };
    let fit_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let predictions = fitted.predict(Features::with_missing(&test_x, width)?)?;
    let predict_seconds = started.elapsed().as_secs_f64();
    let score = if classification {
        let right = predictions
            .iter()
            .zip(&test_y)
            .filter(|(p, t)| matches!(p, Prediction::Class { index, .. } if *index == **t as usize))
            .count();
        right as f64 / test_y.len() as f64
    } else {
        let mean = test_y.iter().sum::<f64>() / test_y.len() as f64;
        let (mut residual, mut total) = (0.0, 0.0);
        for (p, t) in predictions.iter().zip(&test_y) {
            if let Prediction::Value(v) = p {
                residual += (t - v).powi(2);
            }
            total += (t - mean).powi(2);
        }
        1.0 - residual / total
    };
    println!(
        "{{\"fit_seconds\": {fit_seconds}, \"predict_seconds\": {predict_seconds}, \"score\": {score}, \"trees\": {trees}}}"
    );
    Ok(())
}
