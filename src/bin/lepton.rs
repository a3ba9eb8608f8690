//! `lepton`: inspect studies from a shell.
//!
//! ```text
//! lepton study list   --storage URL
//! lepton study show   --storage URL --study NAME
//! lepton study best   --storage URL --study NAME
//! lepton study export --storage URL --study NAME [--format json|csv]
//! ```
//! Storage URLs: `memory:`, `sqlite:///path/to/study.db`, `postgres://user@host:port/db`.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lepton::core::{FrozenTrial, History};

#[derive(Parser)]
#[command(name = "lepton", version, about = "Inspect Lepton studies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Studies: list them, show one, its best trial, or export its trials.
    #[command(subcommand)]
    Study(StudyCommand),
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
    /// Every trial of a study, as JSON (an array) or CSV.
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
    let Command::Study(command) = cli.command;
    let out = &mut std::io::stdout().lock();
    match command {
        StudyCommand::List { storage } => {
            let storage = lepton::search::storage::open(&storage)?;
            for name in storage.study_names()? {
                let trials = storage.trials(&name)?;
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
            for t in storage.trials(&study)? {
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
            let storage = lepton::search::storage::open(&storage)?;
            let history = History::new(storage.study_direction(&study)?, storage.trials(&study)?);
            let best = history
                .best()
                .ok_or_else(|| format!("study `{study}` has no complete trial"))?;
            writeln!(out, "{}", serde_json::to_string(best)?)?;
        }
        StudyCommand::Export {
            storage,
            study,
            format,
        } => {
            let storage = lepton::search::storage::open(&storage)?;
            let trials = storage.trials(&study)?;
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string(&trials)?)?,
                Format::Csv => write_csv(out, &trials)?,
            }
        }
    }
    Ok(())
}

/// One row per trial: number, state, value, one column per parameter (`param:NAME`), then the
/// intermediate values as a JSON object (step -> value).
fn write_csv(out: &mut impl Write, trials: &[FrozenTrial]) -> Result<()> {
    let names: BTreeSet<&String> = trials.iter().flat_map(|t| t.params.keys()).collect();
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["number".to_owned(), "state".into(), "value".into()];
    header.extend(names.iter().map(|n| format!("param:{n}")));
    header.push("intermediate_values".into());
    w.write_record(&header)?;
    for t in trials {
        let mut row = vec![
            t.number.to_string(),
            serde_json::to_value(t.state)?
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            t.value.map_or(String::new(), |v| v.to_string()),
        ];
        row.extend(
            names
                .iter()
                .map(|n| t.params.get(*n).map_or(String::new(), |v| v.to_string())),
        );
        row.push(serde_json::to_string(&t.intermediate_values)?);
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}
