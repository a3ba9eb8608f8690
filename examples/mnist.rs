//! AutoML on MNIST (or any image set in MNIST's IDX layout), end to end:
//!
//! 1. load the 60,000 training and 10,000 test digits; the test split stays untouched until
//!    the end;
//! 2. search model families and their hyper-parameters together (linear, MLP, CNN: TPE over a
//!    conditional space, ASHA pruning, each trial a few epochs on 10,000 digits) for about a
//!    third of the budget;
//! 3. refit the winner on the training digits less a 10 % validation hold-out, for as many
//!    epochs as the rest of the budget allows, keeping its best epoch;
//! 4. score it once on the test split (accuracy, confusion matrix), save the artifact (with
//!    the training data's fingerprint), load it back and check its predictions are identical;
//! 5. deploy it: register it in a local model registry as the next version of `mnist` and
//!    promote it to `production`.
//!
//! ```text
//! cargo run --release --example mnist [-- --budget-minutes M --seed S --json
//!     --idx-dir DIR --artifact DIR --registry DIR --sampler NAME --pruner NAME --storage URL
//!     --report FILE --log-format pretty|json --trial-logs DIR]
//! ```
//! `--report FILE` writes the study's report (plots of every trial, one HTML file);
//! `--trial-logs DIR` keeps each trial's log in `DIR/mnist-SEED/trial-N.log`.
//! `--idx-dir DIR` reads the four files named as MNIST's (raw or .gz) from DIR without checking
//! their digests, for Fashion-MNIST and the like. `RUST_LOG=lepton=debug` shows every epoch.

// burn's CPU kernels allocate fresh buffers every step; glibc's allocator returns them to the
// kernel and page-faults them back, mimalloc keeps them (docs/backends.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use lepton::core::{FrozenTrial, History};
use lepton::data::ImageDataset;
use lepton::data::datasets::{MnistSplit, mnist, mnist_from_dir};
use lepton::logging::LogFormat;
use lepton::prelude::*;
use lepton::report::StudyReport;
use lepton::{AutoMlRun, Observer, TRAIN_SECONDS_PER_ROW, evaluate};

struct Args {
    log_format: LogFormat,
    budget_minutes: f64,
    seed: u64,
    json: bool,
    idx_dir: Option<PathBuf>,
    artifact: Option<PathBuf>,
    registry: Option<PathBuf>,
    name: Option<String>,
    sampler: String,
    pruner: String,
    storage: Option<String>,
    trial_logs: Option<PathBuf>,
    report: Option<PathBuf>,
}

const USAGE: &str = "usage: mnist [--budget-minutes M] [--seed S] [--json] [--idx-dir DIR] \
                     [--artifact DIR] [--registry DIR] [--name NAME] [--sampler NAME] [--pruner NAME] \
                     [--storage URL] [--report FILE] [--log-format pretty|json] \
                     [--trial-logs DIR]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        log_format: LogFormat::default(),
        budget_minutes: 20.0,
        seed: 42,
        json: false,
        idx_dir: None,
        artifact: None,
        registry: None,
        name: None,
        sampler: "tpe".into(),
        pruner: "asha".into(),
        storage: None,
        trial_logs: None,
        report: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--json" {
            args.json = true;
            continue;
        }
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = it.next().ok_or(format!("{a} needs a value (try --help)"))?;
        match a.as_str() {
            "--budget-minutes" => {
                args.budget_minutes = v
                    .parse()
                    .ok()
                    .filter(|m: &f64| m.is_finite() && *m > 0.0)
                    .ok_or(format!("--budget-minutes: `{v}` is not a positive number"))?;
            }
            "--seed" => {
                args.seed = v
                    .parse()
                    .map_err(|_| format!("--seed: `{v}` is not a whole number"))?;
            }
            "--idx-dir" => args.idx_dir = Some(v.into()),
            "--artifact" => args.artifact = Some(v.into()),
            "--registry" => args.registry = Some(v.into()),
            "--name" => args.name = Some(v),
            "--sampler" => args.sampler = v,
            "--pruner" => args.pruner = v,
            "--storage" => args.storage = Some(v),
            "--trial-logs" => args.trial_logs = Some(v.into()),
            "--report" => args.report = Some(v.into()),
            "--log-format" => args.log_format = v.parse()?,
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    let result = parse_args().map_err(Into::into).and_then(|a| {
        lepton::logging::init(a.log_format, "warn", a.trial_logs.as_deref())?;
        run(a)
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The registry name: `--name`, else `mnist` for MNIST and the `--idx-dir` directory's name
/// (made a valid name) for another image set, so Fashion-MNIST is no version of
/// `mnist`.
fn model_name(args: &Args) -> String {
    if let Some(name) = &args.name {
        return name.clone();
    }
    let Some(dir) = &args.idx_dir else {
        return "mnist".into();
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let stem = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    lepton::deploy::name_from(stem.as_deref().unwrap_or_default(), "images")
}

/// A progress bar over the budget: search trials, then refit epochs.
struct Progress {
    bar: ProgressBar,
    best: f64,
    trials: usize,
}

impl Observer for Progress {
    fn trial(&mut self, t: &FrozenTrial) {
        self.trials += 1;
        if t.state == TrialState::Complete {
            self.best = self.best.max(t.value.unwrap_or(f64::NEG_INFINITY));
        }
        self.bar.set_message(format!(
            "search: {} trials, best validation accuracy {:.4}",
            self.trials, self.best
        ));
    }

    fn refit_started(&mut self, winner: &FrozenTrial, epochs: usize) {
        self.bar.println(format!(
            "search done: {} trials; refitting trial {} ({}) for up to {epochs} epochs",
            self.trials,
            winner.number,
            family(winner)
        ));
        self.bar.set_message("refit");
    }

    fn refit_epoch(&mut self, epoch: u64, score: f64) {
        self.bar.set_message(format!(
            "refit: epoch {epoch}, validation accuracy {score:.4}"
        ));
    }
}

fn load(args: &Args) -> lepton::Result<(ImageDataset, ImageDataset)> {
    Ok(match &args.idx_dir {
        Some(dir) => (
            mnist_from_dir(dir, MnistSplit::Train, false)?,
            mnist_from_dir(dir, MnistSplit::Test, false)?,
        ),
        None => (mnist(MnistSplit::Train)?, mnist(MnistSplit::Test)?),
    })
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let (train, test) = load(&args)?;
    if (test.height(), test.width()) != (train.height(), train.width())
        || test.schema() != train.schema()
    {
        return Err("the test images differ from the training images in size or classes".into());
    }
    let budget = Duration::from_secs_f64(args.budget_minutes * 60.0);
    println!(
        "{} training and {} test images of {}x{}, {} classes; budget {:.1} min",
        train.len(),
        test.len(),
        train.height(),
        train.width(),
        train.class_counts().len(),
        args.budget_minutes
    );

    let study = format!("mnist-{}", args.seed);
    let mut automl = AutoMl::for_images(train.height(), train.width())
        .with_study_name(&study)
        .with_budget(budget)
        .with_seed(args.seed)
        .with_sampler_name(&args.sampler)
        .with_pruner_name(&args.pruner);
    if let Some(url) = &args.storage {
        automl = automl.with_storage_url(url, &study);
    }
    let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {msg}",
    )?);
    bar.enable_steady_tick(Duration::from_millis(500));
    let mut progress = Progress {
        bar,
        best: f64::NEG_INFINITY,
        trials: 0,
    };
    let run: AutoMlRun = automl.fit_observed::<Cpu>(&train, &mut progress)?;
    progress.bar.finish_and_clear();
    print_leaderboard(&run.leaderboard);
    println!(
        "winner: trial {} ({}), refitted for {} of {} epochs in {:.0} s (search took {:.0} s); \
         validation accuracy {:.4}",
        run.winner.number,
        family(&run.winner),
        run.predictor.model().summary().epochs_run,
        run.refit_epochs,
        run.refit_time.as_secs_f64(),
        run.search_time.as_secs_f64(),
        run.valid_score
    );

    if let Some(path) = &args.report {
        let history = History::new(Direction::Maximize, run.trials.clone());
        std::fs::write(path, StudyReport::new(&study, &history).html()?)?;
        println!("study report written to {}", path.display());
    }

    let (scores, confusion) = evaluate(&run.predictor, &test)?;
    let test_accuracy = scores.accuracy.unwrap_or(f64::NAN);
    println!(
        "test accuracy {test_accuracy:.4} ({:.0}/{}), balanced {:.4}, macro-F1 {:.4}, log-loss {:.4}",
        test_accuracy * test.len() as f64,
        test.len(),
        scores.balanced_accuracy.unwrap_or(f64::NAN),
        scores.macro_f1.unwrap_or(f64::NAN),
        scores.log_loss.unwrap_or(f64::NAN)
    );
    if let Some(m) = &confusion {
        println!("\nconfusion matrix (rows: true class, columns: predicted)");
        print!("{:>6}", "");
        for c in 0..m.n_classes() {
            print!("{c:>6}");
        }
        println!();
        for t in 0..m.n_classes() {
            print!("{t:>6}");
            for p in 0..m.n_classes() {
                print!("{:>6}", m.count(t, p));
            }
            println!();
        }
    }

    let artifact_dir = args.artifact.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("lepton-mnist-{}", std::process::id()))
    });
    let metrics = BTreeMap::from([
        ("test_accuracy".to_owned(), test_accuracy),
        ("valid_accuracy".to_owned(), run.valid_score),
    ]);
    // With the run's replay sample of training digits, for `lepton-serve --learn`.
    run.to_artifact(metrics)?
        .with_training_data(lepton::deploy::fingerprint(&train)?)
        .save(&artifact_dir)?;
    let reloaded = Predictor::load(&artifact_dir)?;
    let width = test.height() * test.width();
    let sample = Features::new(&test.pixels()[..test.len().min(1000) * width], width)?;
    if reloaded.predict(sample)? != run.predictor.predict(sample)? {
        return Err("the reloaded artifact predicts differently".into());
    }
    println!(
        "\nartifact saved to {} and reloaded: identical predictions",
        artifact_dir.display()
    );
    let registry = args
        .registry
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("lepton-registry"));
    let deployment =
        LocalRegistryDeployer::new(&registry).deploy(&model_name(&args), &artifact_dir)?;
    println!(
        "deployed as {} v{} (production) in the registry {}",
        deployment.name,
        deployment.version,
        registry.display()
    );
    let wall = started.elapsed().as_secs_f64();
    println!("done in {wall:.0} s");

    if args.json {
        let summary = serde_json::json!({
            "test_accuracy": test_accuracy,
            "valid_accuracy": run.valid_score,
            "trials": run.trials.len(),
            "best_trial": run.winner.number,
            "best_model": run.predictor.model().family(),
            "best_params": run.winner.params,
            "refit_epochs": run.predictor.model().summary().epochs_run,
            "search_seconds": run.search_time.as_secs_f64(),
            "refit_seconds": run.refit_time.as_secs_f64(),
            "wall_seconds": wall,
            "seed": args.seed,
            "artifact": artifact_dir.display().to_string(),
            "deployed_name": deployment.name,
            "deployed_version": deployment.version,
        });
        println!("{summary}");
    }
    Ok(())
}

fn family(t: &FrozenTrial) -> String {
    t.params
        .get("family")
        .map_or("?".into(), |v| v.as_str().unwrap_or("?").to_owned())
}

fn print_leaderboard(trials: &[FrozenTrial]) {
    println!(
        "\n{:>5}  {:>6}  {:>9}  {:>10}  parameters",
        "trial", "family", "valid acc", "ms/1k rows"
    );
    for t in trials.iter().take(10) {
        let f = family(t);
        let params: Vec<String> = t
            .params
            .iter()
            .filter_map(|(k, v)| Some(format!("{}={v}", k.strip_prefix(&format!("{f}."))?)))
            .collect();
        println!(
            "{:>5}  {:>6}  {:>9.4}  {:>10.1}  {}",
            t.number,
            f,
            t.value.unwrap_or(f64::NAN),
            lepton::attr(t, TRAIN_SECONDS_PER_ROW) * 1e6,
            params.join(" ")
        );
    }
    println!();
}
