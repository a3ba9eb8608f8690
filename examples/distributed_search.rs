//! A search over an MNIST MLP's hyper-parameters, run by several worker processes around one
//! PostgreSQL study: each worker asks the shared study for a trial (TPE, a median pruner on
//! the per-epoch validation accuracy), trains, tells, and asks again, until the study holds
//! `--trials` trials. Workers keep their running trial's heartbeat; a worker that dies has its
//! trial failed after a grace period and its configuration tried again by another.
//!
//! ```text
//! # N workers on this machine, then the leaderboard:
//! cargo run --release --example distributed_search -- \
//!     --storage postgres://postgres@127.0.0.1:5432/test --workers 2 --trials 12
//! # one more worker, on any machine that reaches the database:
//! cargo run --release --example distributed_search -- --worker \
//!     --storage postgres://USER@DB-HOST:5432/DB --study mnist-mlp --trials 12
//! ```
//! Every worker trains on the same fixed subset of MNIST's training split (`--train-size`
//! images, stratified, and a validation split of a fifth of that), so trials are comparable
//! wherever they run. Needs MNIST (see `lepton_data::datasets::mnist`).

// burn's CPU kernels allocate fresh buffers every step; glibc's allocator returns them to the
// kernel and page-faults them back, mimalloc keeps them (docs/backends.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use lepton::core::FrozenTrial;
use lepton::data::datasets::{MnistSplit, mnist};
use lepton::data::stratified_holdout_indices;
use lepton::logging::LogFormat;
use lepton::prelude::*;
use lepton::search::{OptimizeOptions, PercentilePruner, TpeSampler, storage};

struct Args {
    log_format: LogFormat,
    storage: String,
    study: String,
    workers: usize,
    trials: u64,
    train_size: usize,
    epochs: usize,
    worker: bool,
}

const USAGE: &str = "usage: distributed_search --storage URL [--study NAME] [--trials N] \
                     [--workers K | --worker] [--train-size N] [--epochs E] \
                     [--log-format pretty|json]";

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        log_format: LogFormat::default(),
        storage: String::new(),
        study: "mnist-mlp".into(),
        workers: 2,
        trials: 12,
        train_size: 6000,
        epochs: 4,
        worker: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{a}: `{v}` is not a number"))
        };
        match a.as_str() {
            "--storage" => args.storage = value()?,
            "--study" => args.study = value()?,
            "--workers" => args.workers = number(value()?)? as usize,
            "--trials" => args.trials = number(value()?)?,
            "--train-size" => args.train_size = number(value()?)? as usize,
            "--epochs" => args.epochs = number(value()?)? as usize,
            "--worker" => args.worker = true,
            "--log-format" => args.log_format = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if args.storage.is_empty() {
        return Err(format!("--storage is required\n{USAGE}"));
    }
    if args.workers == 0 || args.trials == 0 || args.epochs == 0 || args.train_size < 100 {
        return Err("--workers, --trials and --epochs must be at least 1, --train-size 100".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let result = parse_args().map_err(Into::into).and_then(|a| {
        lepton::logging::init(a.log_format, "warn", None)?;
        if a.worker { work(&a) } else { coordinate(&a) }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Starts `--workers` copies of this program as workers, waits, and prints the leaderboard.
fn coordinate(args: &Args) -> Result<()> {
    let started = Instant::now();
    let study = study(args, 0)?;
    let exe = std::env::current_exe()?;
    println!(
        "study `{}` on {}: {} trials by {} worker processes",
        args.study, args.storage, args.trials, args.workers
    );
    let children = (0..args.workers)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--worker",
                    "--storage",
                    &args.storage,
                    "--study",
                    &args.study,
                ])
                .args(["--trials", &args.trials.to_string()])
                .args(["--train-size", &args.train_size.to_string()])
                .args(["--epochs", &args.epochs.to_string()])
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a worker failed: {status}").into());
        }
    }
    let trials = study.trials()?;
    let state = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
    println!(
        "\n{} trials: {} complete, {} pruned, {} failed; {:.0} s",
        trials.len(),
        state(TrialState::Complete),
        state(TrialState::Pruned),
        state(TrialState::Failed),
        started.elapsed().as_secs_f64()
    );
    print_leaderboard(&study.best_trials(5)?);
    Ok(())
}

/// The shared study, as every process opens it (created by the first).
fn study(args: &Args, seed: u64) -> Result<Study> {
    Ok(Study::builder(&args.study)
        .with_direction(Direction::Maximize)
        .with_storage(storage::open(&args.storage)?)
        .with_sampler(TpeSampler::new(seed))
        .with_pruner(PercentilePruner::median())
        .with_heartbeat(Duration::from_secs(2))
        .with_heartbeat_grace(Duration::from_secs(20))
        .with_stale_retries(1)
        .build()?)
}

/// One worker: trials until the study holds `--trials`.
fn work(args: &Args) -> Result<()> {
    let pid = std::process::id();
    let all = mnist(MnistSplit::Train)?;
    // The same subset in every worker: a fixed seed, not the worker's.
    let subset_fraction = args.train_size as f64 / all.len() as f64;
    let (_, subset) =
        stratified_holdout_indices(all.labels(), classes(&all), subset_fraction.min(0.99), 0)?;
    let data = all.select(&subset)?;
    let (train_rows, valid_rows) =
        stratified_holdout_indices(data.labels(), classes(&data), 0.2, 1)?;
    let (train, valid) = (data.select(&train_rows)?, data.select(&valid_rows)?);
    // Workers sample differently: each seeds its sampler with its process id.
    let study = study(args, u64::from(pid))?;
    let epochs = args.epochs;
    study.optimize_with_options(
        OptimizeOptions::study_total(args.trials),
        |trial| {
            trial.suggest_float("learning_rate", 1e-4, 1e-2, Scale::Log)?;
            trial.suggest_int("hidden_width", 64, 512, Scale::Log)?;
            trial.suggest_int("depth", 1, 2, Scale::Linear)?;
            trial.suggest_float("dropout", 0.0, 0.5, Scale::Linear)?;
            trial.suggest_categorical("batch_size", &[64i64, 128])?;
            let config = MlpConfig::default()
                .with_params(trial.params())?
                .with_max_epochs(epochs)
                .with_patience(epochs)
                .with_seed(trial.number());
            let fitted = MlpClassifier::<Cpu>::new(config)?.train(&train, &valid, trial)?;
            Ok(fitted.summary().best_valid_score.unwrap_or(0.0))
        },
        |t: &FrozenTrial| {
            let value = t.value.map_or("-".into(), |v| format!("{v:.4}"));
            eprintln!("[worker {pid}] trial {} {:?} {value}", t.number, t.state);
        },
    )?;
    Ok(())
}

fn classes(d: &lepton::data::ImageDataset) -> &[String] {
    match &d.schema().task {
        lepton::core::Task::Classification { classes } => classes,
        _ => &[],
    }
}

fn print_leaderboard(best: &[FrozenTrial]) {
    println!(
        "\n{:>5}  {:>9}  {:>10}  {:>5}  {:>5}  {:>7}  {:>5}",
        "trial", "valid acc", "lr", "width", "depth", "dropout", "batch"
    );
    let p = |t: &FrozenTrial, k: &str| t.params.get(k).map_or("-".into(), |v| v.to_string());
    for t in best {
        println!(
            "{:>5}  {:>9.4}  {:>10}  {:>5}  {:>5}  {:>7}  {:>5}",
            t.number,
            t.value.unwrap_or(f64::NAN),
            p(t, "learning_rate"),
            p(t, "hidden_width"),
            p(t, "depth"),
            p(t, "dropout"),
            p(t, "batch_size"),
        );
    }
}
