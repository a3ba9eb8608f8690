//! Multi-fidelity search on real training: an MLP on MNIST, one search space searched by
//!
//! - `random`: random sampling, every trial trained to the end;
//! - `hyperband`: random sampling, Hyperband pruning (asynchronous, Optuna's way);
//! - `bohb`: BOHB's sampler (TPE on the largest budget with enough reports), Hyperband pruning;
//! - `hyperband-resume` / `bohb-resume`: synchronous Hyperband (`HyperbandScheduler`) with
//!   random or BOHB sampling: each trial gets a budget of epochs, and a promoted configuration
//!   continues from its checkpoint instead of training again from zero.
//!
//! One worker; the validation accuracy is reported to the trial after every epoch, or
//! `--reports-per-epoch K` times an epoch (after nearly equal numbers of batches), which lets
//! Hyperband's smallest budget be a fraction of an epoch.
//!
//! ```text
//! cargo run --release --example mnist_pruning -- --method METHOD [--seed S] [--trials N] \
//!     [--epochs E] [--reports-per-epoch K] [--rounds R] [--target A] [--json]
//! ```
//! Each trial trains an MLP on 50,000 MNIST training digits for up to `--epochs` epochs
//! (Adam, constant learning rate) and is scored on the other 10,000 (the same stratified split
//! for every method and seed). The run reports the training budget spent (epochs, summed over
//! trials), the wall time, the time until some trial first reached `--target` validation
//! accuracy (the "time to 98 %"), the best validation accuracy, and the accuracy of that best
//! network on the 10,000 test digits, which no method saw. `--trials` applies to the
//! first three methods (`hyperband` and `bohb` prune from 1 to `E * K` reports, reduction
//! factor 3); the scheduled ones run `--rounds` rounds of Hyperband's brackets from 1 to
//! `--epochs` epochs (their checkpoints are per epoch). `benches/mnist_pruning.sh` runs every
//! method for several seeds and tabulates the results.

// burn's CPU kernels allocate fresh buffers every step; glibc's allocator returns them to the
// kernel and page-faults them back, mimalloc keeps them (docs/backends.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use lepton::core::{FrozenTrial, NopPruner, Pruner, Sampler, Task, TrialContext};
use lepton::data::ImageDataset;
use lepton::data::datasets::{MnistSplit, mnist};
use lepton::data::stratified_holdout_indices;
use lepton::evaluate;
use lepton::logging::LogFormat;
use lepton::models::FittedMlp;
use lepton::prelude::*;
use lepton::search::scheduler::BUDGET_ATTR;
use lepton::search::{BohbSampler, Budget, HyperbandPruner, HyperbandScheduler, RandomSampler};

/// Multi-fidelity search on MNIST: one method, one seed.
#[derive(Parser)]
#[command(name = "mnist_pruning")]
struct Args {
    /// The search method.
    #[arg(long, value_enum)]
    method: Method,
    /// Seed of the sampler and of training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Trials (random, hyperband, bohb).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    trials: u64,
    /// The most epochs one configuration trains.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Validation reports per epoch: Hyperband pruning's steps (the smallest budget is one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    reports_per_epoch: u64,
    /// Rounds of Hyperband's brackets (the -resume methods).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// The validation accuracy whose first reaching is timed.
    #[arg(long, default_value_t = 0.98, value_parser = accuracy)]
    target: f64,
    /// Print only the JSON summary.
    #[arg(long)]
    json: bool,
    /// How log lines on stderr look (RUST_LOG filters them).
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    /// Keep each trial's log in DIR/STUDY/trial-N.log.
    #[arg(long, value_name = "DIR")]
    trial_logs: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    Random,
    Hyperband,
    Bohb,
    HyperbandResume,
    BohbResume,
}

impl Method {
    /// BOHB's sampler rather than random sampling.
    fn bohb(self) -> bool {
        matches!(self, Method::Bohb | Method::BohbResume)
    }

    /// Synchronous Hyperband resuming checkpoints, rather than a study of `--trials`.
    fn resumes(self) -> bool {
        matches!(self, Method::HyperbandResume | Method::BohbResume)
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned())
    }
}

fn accuracy(v: &str) -> std::result::Result<f64, String> {
    v.parse()
        .ok()
        .filter(|t: &f64| (0.0..=1.0).contains(t))
        .ok_or(format!("`{v}` is not an accuracy in [0, 1]"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let logging = lepton::logging::init(args.log_format, "warn", args.trial_logs.as_deref());
    match logging.map_err(Into::into).and_then(|()| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The training budget spent so far, and when the target was first reached.
struct Log {
    started: Instant,
    target: f64,
    reached_at: Option<f64>,
    /// Validation reports, each `1 / reports_per_epoch` of an epoch's training.
    reports: u64,
    /// Seconds spent validating, summed over the trials that ran to the end.
    complete_validation: f64,
    /// The best trial that ran to the end (the first of equals, as `Study::best_trial`
    /// chooses): its number, score and network, kept to be scored once on the test digits
    /// (the validation accuracy chose it, so that is biased upward).
    best: Option<(u64, f64, FittedMlp<Cpu>)>,
}

/// A trial's context that logs every report before passing it on.
struct Clocked<'a> {
    trial: &'a mut Trial,
    log: &'a mut Log,
}

impl TrialContext for Clocked<'_> {
    fn report(&mut self, step: u64, value: f64) -> lepton::core::Result<()> {
        self.log.reports += 1;
        if value >= self.log.target && self.log.reached_at.is_none() {
            self.log.reached_at = Some(self.log.started.elapsed().as_secs_f64());
        }
        self.trial.report(step, value)
    }

    fn should_prune(&self) -> bool {
        self.trial.should_prune()
    }
}

/// What every trial trains on.
struct Data<'a> {
    train: &'a ImageDataset,
    valid: &'a ImageDataset,
    epochs: usize,
    reports_per_epoch: usize,
    seed: u64,
}

/// Suggests an MLP and trains it (when scheduled: up to its budget, continuing the
/// configuration's checkpoint); returns its best validation accuracy.
fn train_trial(
    trial: &mut Trial,
    data: &Data,
    scheduled: Option<(Budget, &Path)>,
    log: &mut Log,
) -> lepton::core::Result<f64> {
    trial.suggest_float("learning_rate", 1e-4, 3e-2, Scale::Log)?;
    trial.suggest_int("hidden_width", 32, 1024, Scale::Log)?;
    trial.suggest_int("depth", 1, 3, Scale::Linear)?;
    trial.suggest_float("dropout", 0.0, 0.5, Scale::Linear)?;
    trial.suggest_categorical("batch_size", &[64i64, 128, 256])?;
    // A configuration keeps its seed across promotions (the number of its first trial).
    let config_number = scheduled.map_or(trial.number(), |(b, _)| b.config);
    let config = MlpConfig::default()
        .with_params(trial.params())?
        .with_max_epochs(data.epochs)
        .with_patience(data.epochs)
        .with_seed(data.seed * 1000 + config_number);
    let mut model =
        MlpClassifier::<Cpu>::new(config)?.with_reports_per_epoch(data.reports_per_epoch);
    if let Some((budget, dir)) = scheduled {
        model = model
            .with_checkpoints(dir)
            .with_epoch_budget(budget.steps as usize);
    }
    let mut ctx = Clocked {
        trial,
        log: &mut *log,
    };
    let fitted = model.train(data.train, data.valid, &mut ctx)?;
    log.complete_validation += fitted.summary().valid_seconds;
    let score = fitted.summary().best_valid_score.unwrap_or(0.0);
    if log.best.as_ref().is_none_or(|(_, best, _)| score > *best) {
        log.best = Some((trial.number(), score, fitted));
    }
    Ok(score)
}

fn run(args: &Args) -> Result<()> {
    let all = mnist(MnistSplit::Train)?;
    let Task::Classification { classes } = &all.schema().task else {
        return Err("MNIST should be a classification".into());
    };
    // The same split for every method and seed.
    let (train_rows, valid_rows) = stratified_holdout_indices(all.labels(), classes, 1.0 / 6.0, 0)?;
    let (train, valid) = (all.select(&train_rows)?, all.select(&valid_rows)?);

    let method = args.method.name();
    let sampler: Box<dyn Sampler> = if args.method.bohb() {
        Box::new(BohbSampler::new(args.seed))
    } else {
        Box::new(RandomSampler::new(args.seed))
    };
    let pruner: Box<dyn Pruner> = match args.method {
        Method::Hyperband | Method::Bohb => Box::new(
            HyperbandPruner::new()
                .with_min_resource(1)
                .with_max_resource(args.epochs * args.reports_per_epoch),
        ),
        _ => Box::new(NopPruner),
    };
    let study = Study::builder(format!("mnist-mlp-{method}-{}", args.seed))
        .with_direction(Direction::Maximize)
        .with_sampler(sampler)
        .with_pruner(pruner)
        .build()?;

    let started = Instant::now();
    let mut log = Log {
        started,
        target: args.target,
        reached_at: None,
        reports: 0,
        complete_validation: 0.0,
        best: None,
    };
    let data = Data {
        train: &train,
        valid: &valid,
        epochs: args.epochs as usize,
        reports_per_epoch: args.reports_per_epoch as usize,
        seed: args.seed,
    };
    let show = |t: &FrozenTrial| {
        if !args.json {
            let budget = t
                .user_attrs
                .get(BUDGET_ATTR)
                .map_or(String::new(), |b| format!("budget {b:>2}  "));
            println!(
                "trial {:>3} {:<8} {budget}reports {:>2}  best valid {:.4}  {:>6.0} s  {:?}",
                t.number,
                format!("{:?}", t.state),
                t.intermediate_values.len(),
                t.intermediate_values.values().copied().fold(0.0, f64::max),
                started.elapsed().as_secs_f64(),
                t.params
            );
        }
    };
    if args.method.resumes() {
        let checkpoints =
            std::env::temp_dir().join(format!("lepton-mnist-pruning-{}", std::process::id()));
        let scheduler = HyperbandScheduler::new(1, args.epochs)?.with_rounds(args.rounds as usize);
        let outcome = scheduler.run(
            &study,
            |trial, budget| {
                let dir = checkpoints.join(format!("config-{}", budget.config));
                train_trial(trial, &data, Some((budget, &dir)), &mut log)
            },
            show,
        );
        // The checkpoints serve only promotions within this run.
        let _ = std::fs::remove_dir_all(&checkpoints);
        outcome?;
    } else {
        study.optimize_with(
            args.trials as usize,
            |trial| train_trial(trial, &data, None, &mut log),
            show,
        )?;
    }

    let wall = started.elapsed().as_secs_f64();
    let epochs = log.reports as f64 / args.reports_per_epoch as f64;
    let trials = study.trials()?;
    let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
    let best = study.best_trial()?;
    let best_valid = best.as_ref().and_then(|t| t.value).unwrap_or(f64::NAN);
    // Scored after the clock stopped: the search's time is training and validation only.
    let test_accuracy = match (&log.best, &best) {
        (Some((number, _, model)), Some(trial)) if *number == trial.number => {
            evaluate(model, &mnist(MnistSplit::Test)?)?.0.accuracy
        }
        (None, None) => None,
        _ => return Err("the network kept for the test digits is not the study's best".into()),
    };
    if !args.json {
        println!(
            "\n{method}: {} trials ({} pruned, {} failed), {epochs:.1} epochs, {wall:.0} s; best \
             validation accuracy {best_valid:.4} (test {:.4}); {} reached after {}",
            trials.len(),
            count(TrialState::Pruned),
            count(TrialState::Failed),
            test_accuracy.unwrap_or(f64::NAN),
            args.target,
            log.reached_at
                .map_or("never".into(), |s| format!("{s:.0} s")),
        );
    }
    let summary = serde_json::json!({
        "method": method,
        "seed": args.seed,
        "trials": trials.len(),
        "complete": count(TrialState::Complete),
        "pruned": count(TrialState::Pruned),
        "failed": count(TrialState::Failed),
        "epochs": epochs,
        "max_epochs": args.epochs,
        "reports_per_epoch": args.reports_per_epoch,
        "wall_seconds": wall,
        // Random search validates every trial to the end, so this is all its validation
        // time (with pruning or resumed budgets the trials' own sums miss or repeat some).
        "validation_seconds": (args.method == Method::Random).then_some(log.complete_validation),
        "target": args.target,
        "seconds_to_target": log.reached_at,
        "best_valid_accuracy": best_valid,
        "best_test_accuracy": test_accuracy,
        "best_params": best.map(|t| t.params),
    });
    println!("{summary}");
    Ok(())
}
