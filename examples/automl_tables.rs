//! `AutoMl` with its default table settings on wine, breast cancer and the 8x8 digits: for
//! each, a stratified 20 % test split, a standard scaler fitted on the training rows, model
//! selection over linear models and MLPs, and the test scores; beside it, the tree-ensemble
//! baseline (the same search over `Family::Forest` alone) on the same split.
//!
//! ```text
//! cargo run --release --example automl_tables [-- --seed S --json]
//! ```
//! The digits come from `$LEPTON_DATA_DIR/tabular/digits.csv` and are left out without it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use lepton::prelude::*;
use lepton::{AutoMlRun, evaluate};

fn main() {
    let mut seed = 42u64;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--seed" => match args.next().and_then(|v| v.parse().ok()) {
                Some(s) => seed = s,
                None => fail("--seed needs a whole number"),
            },
            "-h" | "--help" => {
                println!("usage: automl_tables [--seed S] [--json]");
                return;
            }
            other => fail(&format!("unknown argument `{other}` (try --help)")),
        }
    }
    let mut sets: Vec<(&str, TabularDataset)> = vec![
        (
            "wine",
            datasets::wine().unwrap_or_else(|e| fail(&e.to_string())),
        ),
        (
            "breast_cancer",
            datasets::breast_cancer().unwrap_or_else(|e| fail(&e.to_string())),
        ),
    ];
    match std::env::var_os("LEPTON_DATA_DIR") {
        Some(dir) => {
            let path = std::path::Path::new(&dir).join("tabular/digits.csv");
            sets.push((
                "digits",
                CsvLoader::new(&path)
                    .load()
                    .unwrap_or_else(|e| fail(&e.to_string())),
            ));
        }
        None => eprintln!("LEPTON_DATA_DIR is unset: leaving out the digits"),
    }
    println!(
        "{:<14} {:>5} {:>6} {:>8} {:>9} {:>9} {:>8} {:>12}",
        "data set", "rows", "trials", "winner", "valid acc", "test acc", "seconds", "forest test"
    );
    let mut results = Vec::new();
    for (name, data) in &sets {
        let outcome = run(data, seed, AutoMl::new()).and_then(|main| {
            let forest = run(data, seed, AutoMl::new().with_families(&[Family::Forest]))?;
            Ok((main, forest.1))
        });
        match outcome {
            Ok(((run, test_accuracy, seconds), forest_accuracy)) => {
                println!(
                    "{name:<14} {:>5} {:>6} {:>8} {:>9.4} {:>9.4} {:>8.1} {forest_accuracy:>12.4}",
                    data.len(),
                    run.trials.len(),
                    run.predictor.model().family(),
                    run.valid_score,
                    test_accuracy,
                    seconds
                );
                results.push(serde_json::json!({
                    "dataset": name,
                    "trials": run.trials.len(),
                    "best_model": run.predictor.model().family(),
                    "best_params": run.winner.params,
                    "valid_accuracy": run.valid_score,
                    "test_accuracy": test_accuracy,
                    "wall_seconds": seconds,
                    "forest_test_accuracy": forest_accuracy,
                }));
            }
            Err(e) => fail(&format!("{name}: {e}")),
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "seed": seed, "results": results })
        );
    }
}

fn run(data: &TabularDataset, seed: u64, automl: AutoMl) -> lepton::Result<(AutoMlRun, f64, f64)> {
    let started = Instant::now();
    let (train, test) = stratified_split(data, 0.2, seed)?;
    let scaler = StandardScaler.fit(&train)?; // fitted on the training rows only
    let (train, test) = (scaler.transform(&train)?, scaler.transform(&test)?);
    let run: AutoMlRun = automl.with_seed(seed).fit::<Cpu>(&train)?;
    let accuracy = evaluate(&run.predictor, &test)?
        .0
        .accuracy
        .unwrap_or(f64::NAN);
    Ok((run, accuracy, started.elapsed().as_secs_f64()))
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
