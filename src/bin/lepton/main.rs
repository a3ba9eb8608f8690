//! `lepton`: inspect studies from a shell, run workers on the benchmark problems, and manage
//! the model registry.
//!
//! ```text
//! lepton fit DATA.csv --target COLUMN [--task classification|regression] [--metric NAME]
//!            [--budget-seconds N] [--seed S] [--test-fraction F] [--storage URL]
//!            [--artifact DIR] [--register NAME] [--registry DIR] [--json]
//! lepton fit CORPUS --task text [--text-column COLUMN --target LABEL] [--budget-seconds N] ...
//! lepton predict --model DIR DATA.csv [--output FILE]
//! lepton study list   --storage URL
//! lepton study show   --storage URL --study NAME
//! lepton study best   --storage URL --study NAME
//! lepton study export --storage URL --study NAME [--format json|csv]
//! lepton study importance --storage URL --study NAME
//! lepton study report --storage URL --study NAME --out report.html [--top N]
//! lepton study sweep  --storage URL [--study NAME] [--grace-seconds S]
//! lepton worker --storage URL --study NAME --objective branin|hartmann6|rosenbrock5|mixed6|curves
//!               --trials N [--sampler NAME] [--pruner none|median|asha|hyperband]
//!               [--retries K] [--trial-ms MS] ...
//! lepton model register --registry DIR --name NAME ARTIFACT_DIR
//! lepton model list     --registry DIR [--name NAME]
//! lepton model promote  --registry DIR --name NAME --version V [--alias production]
//! lepton model rollback --registry DIR --name NAME [--alias production]
//! ```
//! Every command takes `--log-format pretty|json` (stderr; `RUST_LOG` filters it) and
//! `--trial-logs DIR` (a log file per trial, `DIR/STUDY/trial-N.log`).
//! Storage URLs: `memory:`, `sqlite:///path/to/study.db`, `postgres://user@host:port/db`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use lepton::core::History;
use lepton::logging::LogFormat;
use lepton::report::StudyReport;
use lepton::search::{DEFAULT_HEARTBEAT_GRACE, PedAnova, export};

mod fit;
mod fit_text;
mod model;
mod predict;
mod worker;

#[derive(Parser)]
#[command(
    name = "lepton",
    version,
    about = "AutoML on CSV files, predictions, studies, workers and the model registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on stderr look (RUST_LOG filters them; warnings only by default).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    /// Keep each trial's log (a worker's trials) in DIR/STUDY/trial-N.log.
    #[arg(long, global = true, value_name = "DIR")]
    trial_logs: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// AutoML on a CSV file: holds out test rows, searches model families and their
    /// preprocessing within the budget, refits the winner, scores it once on the test rows,
    /// saves the model (and registers it when asked).
    Fit(fit::FitArgs),
    /// A saved model's predictions (and class probabilities) for the rows of a CSV file.
    Predict(predict::PredictArgs),
    /// Studies: list them, show one, its best trial, export its trials, or fail stale ones.
    #[command(subcommand)]
    Study(StudyCommand),
    /// Runs one worker of a shared study on a benchmark problem, until the study holds its
    /// total of trials; prints one JSON line per finished trial.
    Worker(worker::WorkerArgs),
    /// The model registry: register artifacts, list versions, promote, roll back.
    #[command(subcommand)]
    Model(model::ModelCommand),
}

#[derive(Subcommand)]
enum StudyCommand {
    /// The studies in a storage, with their trial counts.
    List {
        /// Storage URL (memory:, sqlite://PATH, postgres://...).
        #[arg(long)]
        storage: String,
    },
    /// A study's trials, one line each.
    Show {
        /// Storage URL.
        #[arg(long)]
        storage: String,
        /// Study name.
        #[arg(long)]
        study: String,
    },
    /// A study's best complete trial, as JSON.
    Best {
        /// Storage URL.
        #[arg(long)]
        storage: String,
        /// Study name.
        #[arg(long)]
        study: String,
    },
    /// How much each parameter matters (PED-ANOVA: the top 10 % of the complete trials against
    /// all of them), most important first; the shares sum to 1.
    Importance {
        /// Storage URL.
        #[arg(long)]
        storage: String,
        /// Study name.
        #[arg(long)]
        study: String,
    },
    /// A study's report: one self-contained HTML page (open it in any browser, no network
    /// needed) with the optimization history, learning curves, parallel coordinates,
    /// importance, slices, the leaderboard and the best trial's confusion matrix.
    Report {
        /// Storage URL.
        #[arg(long)]
        storage: String,
        /// Study name.
        #[arg(long)]
        study: String,
        /// Where to write the page.
        #[arg(long)]
        out: PathBuf,
        /// How many of the best trials the leaderboard lists.
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
    /// Every trial of a study, as JSON (an array of trial records) or CSV (one row per
    /// trial; columns number, state, value, param_NAME..., attr_NAME..., intermediate_values).
    Export {
        /// Storage URL.
        #[arg(long)]
        storage: String,
        /// Study name.
        #[arg(long)]
        study: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Fails the running trials whose heartbeat is older than the grace period: their
    /// process died (a killed worker or AutoML run). Prints `STUDY<TAB>NUMBER` for each.
    /// Processes with a heartbeat do this themselves before each trial; this is for studies
    /// no process is working on, or whose processes run without a heartbeat.
    Sweep {
        /// Storage URL.
        #[arg(long)]
        storage: String,
        /// Study name (default: every study in the storage).
        #[arg(long)]
        study: Option<String>,
        /// How old a running trial's heartbeat must be to fail it, in seconds. Keep it above
        /// the heartbeat interval of every live process (`lepton worker --heartbeat-ms`), or live trials
        /// are failed too.
        #[arg(long, default_value_t = DEFAULT_HEARTBEAT_GRACE.as_secs_f64())]
        grace_seconds: f64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Csv,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn run(cli: Cli) -> Result<()> {
    lepton::logging::init(cli.log_format, "warn", cli.trial_logs.as_deref())?;
    let command = match cli.command {
        Command::Study(command) => command,
        Command::Worker(args) => return worker::run(args),
        Command::Model(command) => return model::run(command),
        Command::Fit(args) => return fit::run(args),
        Command::Predict(args) => return predict::run(args),
    };
    let out = &mut std::io::stdout().lock();
    match command {
        StudyCommand::List { storage } => {
            let storage = lepton::search::storage::open(&storage)?;
            for name in storage.study_names()? {
                let trials = storage.trials_shared(&name)?;
                writeln!(
                    out,
                    "{name}\t{:?}\t{} trials",
                    storage.study_direction(&name)?,
                    trials.len()
                )?;
            }
        }
        StudyCommand::Show { storage, study } => {
            let storage = lepton::search::storage::open(&storage)?;
            for t in storage.trials_shared(&study)? {
                let params: Vec<String> =
                    t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let value = t.value.map_or("-".into(), |v| v.to_string());
                writeln!(
                    out,
                    "{}\t{:?}\t{value}\t{}",
                    t.number,
                    t.state,
                    params.join(" ")
                )?;
            }
        }
        StudyCommand::Best { storage, study } => {
            let history = open_history(&storage, &study)?;
            let best = history
                .best()
                .ok_or_else(|| format!("study `{study}` has no complete trial"))?;
            writeln!(out, "{}", serde_json::to_string(best)?)?;
        }
        StudyCommand::Importance { storage, study } => {
            let history = open_history(&storage, &study)?;
            let mut importances: Vec<(String, f64)> =
                PedAnova::new().importances(&history)?.into_iter().collect();
            importances.sort_by(|a, b| b.1.total_cmp(&a.1));
            for (name, share) in importances {
                writeln!(out, "{name}\t{share:.4}")?;
            }
        }
        StudyCommand::Report {
            storage,
            study,
            out: path,
            top,
        } => {
            let started = Instant::now();
            let history = open_history(&storage, &study)?;
            let html = StudyReport::new(&study, &history)
                .with_leaderboard(top)
                .html()?;
            std::fs::write(&path, &html)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            writeln!(
                out,
                "wrote {} ({} trials, {} KiB) in {:.0} ms",
                path.display(),
                history.trials().len(),
                html.len() / 1024,
                started.elapsed().as_secs_f64() * 1e3
            )?;
        }
        StudyCommand::Sweep {
            storage,
            study,
            grace_seconds,
        } => {
            let grace = Duration::try_from_secs_f64(grace_seconds)
                .map_err(|e| format!("--grace-seconds {grace_seconds}: {e}"))?;
            let storage = lepton::search::storage::open(&storage)?;
            let studies = match study {
                Some(name) => vec![name],
                None => storage.study_names()?,
            };
            for name in studies {
                for number in storage.fail_stale_trials(&name, grace)? {
                    writeln!(out, "{name}\t{number}")?;
                }
            }
        }
        StudyCommand::Export {
            storage,
            study,
            format,
        } => {
            let storage = lepton::search::storage::open(&storage)?;
            let trials = storage.trials_shared(&study)?;
            match format {
                Format::Json => {
                    export::write_json(&mut *out, &trials)?;
                    writeln!(out)?;
                }
                Format::Csv => export::write_csv(out, &trials)?,
            }
        }
    }
    Ok(())
}

/// A study's trials and direction, from the storage at `url`.
fn open_history(url: &str, study: &str) -> Result<History> {
    let storage = lepton::search::storage::open(url)?;
    Ok(History::shared(
        storage.study_direction(study)?,
        storage.trials_shared(study)?,
    ))
}
