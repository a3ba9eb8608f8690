//! AutoML on the wine data set, end to end:
//!
//! 1. hold out 20% of the rows as a test split (stratified), untouched until the end;
//! 2. `AutoMl` searches linear models and MLPs (TPE, a 20-second budget, at most N trials);
//!    a trial's score is its 5-fold cross-validated accuracy, each fold with its own
//!    preprocessing fitted on that fold's training rows and its own early stopping;
//! 3. keep the best trial (or an ensemble of trials) as the average of its 5 fold models
//!    (bagging: they made the cross-validated predictions it was chosen on), score it once on
//!    the test split;
//! 4. save the model artifact, load it back, check the predictions are identical, deploy it.
//!
//! ```text
//! cargo run --release --example quickstart [-- --trials N --seed S --json]
//! ```
//! `lepton fit` does the same for any CSV file.
//! `RUST_LOG=lepton=debug` shows every epoch.

// burn's CPU kernels allocate fresh buffers every step; glibc's allocator returns them to the
// kernel and page-faults them back, mimalloc keeps them (docs/backends.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use lepton::core::FrozenTrial;
use lepton::data::stratified_holdout_indices;
use lepton::logging::LogFormat;
use lepton::prelude::*;
use lepton::{Observer, leaderboard_text};

struct Args {
    log_format: LogFormat,
    trials: usize,
    seed: u64,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        log_format: LogFormat::default(),
        trials: 25,
        seed: 42,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => args.json = true,
            "--trials" | "--seed" => {
                let v = it.next().ok_or(format!("{a} needs a value"))?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("{a}: `{v}` is not a number"))?;
                if a == "--trials" {
                    args.trials = usize::try_from(n).map_err(|e| e.to_string())?;
                } else {
                    args.seed = n;
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: quickstart [--trials N] [--seed S] [--json] [--log-format pretty|json]"
                );
                std::process::exit(0);
            }
            "--log-format" => {
                let v = it.next().ok_or(format!("{a} needs a value"))?;
                args.log_format = v.parse()?;
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    if args.trials == 0 {
        return Err("--trials must be at least 1".into());
    }
    Ok(args)
}

fn main() {
    let result = parse_args().map_err(Into::into).and_then(|a| {
        lepton::logging::init(a.log_format, "warn", None)?;
        run(a)
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();

    // 1. Data.
    let wine = datasets::table("wine")?;
    let (labels, classes) = wine.class_indices("target")?;
    let (train_rows, test_rows) = stratified_holdout_indices(&labels, &classes, 0.2, args.seed)?;
    let (train, test) = (wine.select(&train_rows)?, wine.select(&test_rows)?);
    println!(
        "wine: {} rows x {} features, {} classes; search on {} rows (5-fold CV), test on {}",
        wine.n_rows(),
        wine.names().len() - 1,
        classes.len(),
        train.n_rows(),
        test.n_rows()
    );

    // 2 and 3. Search, then bag the chosen trials' fold models.
    let bar = ProgressBar::new(args.trials as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} trials  best cv accuracy {msg}  [{elapsed}]",
    )?);
    let run = AutoMl::new()
        .with_budget(Duration::from_secs(20))
        .with_max_trials(args.trials)
        .with_seed(args.seed)
        .fit_table_observed::<Cpu>(
            &train,
            "target",
            TargetKind::Classification,
            &mut Progress {
                bar: &bar,
                best: f64::NEG_INFINITY,
            },
        )?;
    bar.finish();
    println!("\n{}", leaderboard_text(&run.leaderboard, run.metric, 10));
    let (winner, predictor) = (&run.winner, &run.predictor);
    let test_accuracy = predictor.score(&test)?.accuracy.unwrap_or(0.0);
    // The trials kept: the winner, or an ensemble's members with their weights.
    let kept: Vec<String> = run
        .members
        .iter()
        .map(|(trial, weight)| format!("trial {trial} ({weight:.2})"))
        .collect();
    let how = match run.bagged_folds {
        0 => format!("refitted on {} rows", train.n_rows()),
        k => format!("each the average of its {k} fold models"),
    };
    println!(
        "kept {}, {how}, as one {} model: test accuracy {test_accuracy:.4} ({:.0}/{})",
        kept.join(", "),
        predictor.model().family(),
        test_accuracy * test.n_rows() as f64,
        test.n_rows()
    );

    // 4. Save, reload, compare, deploy.
    let dir = std::env::temp_dir().join(format!("lepton-quickstart-{}", std::process::id()));
    let artifact_dir = dir.join("artifact");
    let metrics = BTreeMap::from([
        ("test_accuracy".to_owned(), test_accuracy),
        ("cv_accuracy".to_owned(), run.valid_score),
    ]);
    // The run's artifact: the predictor with a replay sample of training rows (for
    // `lepton-serve --learn`).
    run.save(&artifact_dir, metrics)?;
    let reloaded = Predictor::load(&artifact_dir)?;
    let identical = reloaded.predict_table(&test)? == predictor.predict_table(&test)?;
    if !identical {
        return Err("the reloaded artifact predicts differently".into());
    }
    let deployment =
        LocalRegistryDeployer::new(dir.join("registry")).deploy("wine", &artifact_dir)?;
    println!(
        "artifact saved to {} and reloaded: identical predictions on all {} test rows",
        artifact_dir.display(),
        test.n_rows()
    );
    println!(
        "deployed `{}` version {} at {}",
        deployment.name, deployment.version, deployment.address
    );
    let wall = started.elapsed().as_secs_f64();
    println!("done in {wall:.1} s");

    if args.json {
        let summary = serde_json::json!({
            "dataset": "wine",
            "trials": run.trials.len(),
            "best_trial": winner.number,
            "best_params": winner.params,
            "cv_accuracy": run.valid_score,
            "members": run.members,
            "bagged_folds": run.bagged_folds,
            "test_accuracy": test_accuracy,
            "identical_after_reload": identical,
            "artifact": artifact_dir.display().to_string(),
            "wall_seconds": wall,
        });
        println!("{summary}");
    }
    Ok(())
}

/// Shows the search's progress on a bar.
struct Progress<'a> {
    bar: &'a ProgressBar,
    best: f64,
}

impl Observer for Progress<'_> {
    fn trial(&mut self, t: &FrozenTrial) {
        self.best = self.best.max(t.value.unwrap_or(f64::NEG_INFINITY));
        self.bar.set_message(format!("{:.4}", self.best));
        self.bar.inc(1);
    }
}
