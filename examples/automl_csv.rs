//! AutoML on any CSV file: the automatic preprocessing pipeline (imputation, encoding,
//! scaling, cleaning) and a cross-validated MLP search, scored on a held-out 20%.
//!
//! ```text
//! cargo run --release --example automl_csv -- PATH --target COLUMN \
//!     [--task classification|regression] [--trials N] [--seed S] [--json]
//! ```
//! Without `--task`, a numeric target with fractional values or more than 20 distinct values
//! is a regression, anything else a classification.

// burn's CPU kernels allocate fresh buffers every step; glibc's allocator returns them to the
// kernel and page-faults them back, mimalloc keeps them (docs/backends.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lepton::data::{Column, holdout_indices, stratified_holdout_indices};
use lepton::logging::LogFormat;
use lepton::prelude::*;

struct Args {
    log_format: LogFormat,
    path: String,
    target: String,
    task: Option<TargetKind>,
    trials: usize,
    seed: u64,
    json: bool,
}

const USAGE: &str = "usage: automl_csv PATH --target COLUMN [--task classification|regression] \
                     [--trials N] [--seed S] [--json] [--log-format pretty|json]";

fn parse_args() -> Result<Args, String> {
    let (mut path, mut target, mut task) = (None, None, None);
    let (mut trials, mut seed, mut json) = (25usize, 42u64, false);
    let mut log_format = LogFormat::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--target" => target = Some(value()?),
            "--task" => {
                task = Some(match value()?.as_str() {
                    "classification" => TargetKind::Classification,
                    "regression" => TargetKind::Regression,
                    other => {
                        return Err(format!(
                            "--task: `{other}` is not classification or regression"
                        ));
                    }
                })
            }
            "--trials" => {
                let v = value()?;
                trials = v
                    .parse()
                    .map_err(|_| format!("--trials: `{v}` is not a number"))?;
            }
            "--seed" => {
                let v = value()?;
                seed = v
                    .parse()
                    .map_err(|_| format!("--seed: `{v}` is not a number"))?;
            }
            "--json" => json = true,
            "--log-format" => log_format = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if other.starts_with('-') => {
                return Err(format!("unknown option `{other}`\n{USAGE}"));
            }
            other => path = Some(other.to_owned()),
        }
    }
    if trials == 0 {
        return Err("--trials must be at least 1".into());
    }
    Ok(Args {
        log_format,
        path: path.ok_or(USAGE)?,
        target: target.ok_or(USAGE)?,
        task,
        trials,
        seed,
        json,
    })
}

fn main() {
    if let Err(e) = parse_args().map_err(Into::into).and_then(|a| {
        lepton::logging::init(a.log_format, "warn", None)?;
        run(a)
    }) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A numeric target with fractional values or many distinct values is a regression.
fn infer_task(table: &Table, target: &str) -> TargetKind {
    match table.column(target) {
        Some(Column::Numeric(v)) => {
            let present: Vec<f64> = v.iter().flatten().copied().collect();
            let mut distinct: Vec<u64> = present.iter().map(|x| x.to_bits()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            if present.iter().any(|x| x.fract() != 0.0) || distinct.len() > 20 {
                TargetKind::Regression
            } else {
                TargetKind::Classification
            }
        }
        _ => TargetKind::Classification,
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let table = CsvLoader::new(&args.path).read_table()?;
    if table.column(&args.target).is_none() {
        return Err(format!(
            "{}: no column `{}` (columns: {})",
            args.path,
            args.target,
            table.names().join(", ")
        )
        .into());
    }
    let kind = args
        .task
        .unwrap_or_else(|| infer_task(&table, &args.target));
    let (train_rows, test_rows) = match kind {
        TargetKind::Classification => {
            let (labels, classes) = table.class_indices(&args.target)?;
            stratified_holdout_indices(&labels, &classes, 0.2, args.seed)?
        }
        TargetKind::Regression => holdout_indices(table.n_rows(), 0.2, args.seed)?,
    };
    let (train, test) = (table.select(&train_rows)?, table.select(&test_rows)?);
    println!(
        "{}: {} rows x {} columns, target `{}` ({kind:?}); search on {} rows (5-fold CV), test on {}",
        args.path,
        table.n_rows(),
        table.names().len(),
        args.target,
        train.n_rows(),
        test.n_rows()
    );

    let bar = ProgressBar::new(args.trials as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} trials  best cv score {msg}  [{elapsed}]",
    )?);
    let mut best = f64::NEG_INFINITY;
    let run = TabularAutoMl::new()
        .with_trials(args.trials)
        .with_seed(args.seed)
        .fit::<Cpu>(&train, &args.target, kind, |t| {
            best = best.max(t.value.unwrap_or(f64::NEG_INFINITY));
            bar.set_message(format!("{best:.4}"));
            bar.inc(1);
        })?;
    bar.finish();
    let predictor = &run.predictor;
    let dropped: Vec<String> = predictor
        .preprocessor()
        .dropped()
        .iter()
        .map(|(name, reason)| {
            println!("dropped column `{name}`: {reason}");
            (*name).to_owned()
        })
        .collect();
    let winner = &run.leaderboard[0];
    println!(
        "best trial {} (cv score {:.4}): {}",
        winner.number,
        winner.value.unwrap_or(f64::NAN),
        winner
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let scores = predictor.score(&test)?;
    match kind {
        TargetKind::Classification => println!(
            "test accuracy {:.4}, balanced accuracy {:.4}, macro-F1 {:.4}, log-loss {:.4}",
            scores.accuracy.unwrap_or(f64::NAN),
            scores.balanced_accuracy.unwrap_or(f64::NAN),
            scores.macro_f1.unwrap_or(f64::NAN),
            scores.log_loss.unwrap_or(f64::NAN)
        ),
        TargetKind::Regression => println!(
            "test R² {:.4}, RMSE {:.4}, MAE {:.4}",
            scores.r2.unwrap_or(f64::NAN),
            scores.rmse.unwrap_or(f64::NAN),
            scores.mae.unwrap_or(f64::NAN)
        ),
    }
    let wall = started.elapsed().as_secs_f64();
    println!("done in {wall:.1} s");
    if args.json {
        let mut summary = serde_json::json!({
            "path": args.path,
            "target": args.target,
            "task": format!("{kind:?}").to_lowercase(),
            "rows": table.n_rows(),
            "columns": table.names().len(),
            "dropped_columns": dropped,
            "features_after_preprocessing": predictor.preprocessor().features().len(),
            "trials": run.trials.len(),
            "best_params": winner.params,
            "cv_score": winner.value,
            "wall_seconds": wall,
        });
        match kind {
            TargetKind::Classification => {
                summary["test_accuracy"] = scores.accuracy.into();
                summary["test_balanced_accuracy"] = scores.balanced_accuracy.into();
                summary["test_macro_f1"] = scores.macro_f1.into();
                summary["test_log_loss"] = scores.log_loss.into();
            }
            TargetKind::Regression => {
                summary["test_r2"] = scores.r2.into();
                summary["test_rmse"] = scores.rmse.into();
                summary["test_mae"] = scores.mae.into();
            }
        }
        println!("{summary}");
    }
    Ok(())
}
