//! `lepton fit`: AutoML on a CSV file, from raw rows to a saved (and registered) model.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lepton::core::{FrozenTrial, History, Task};
use lepton::data::{
    Column, CsvLoader, Table, TargetKind, holdout_indices, stratified_holdout_indices,
};
use lepton::deploy::{LocalRegistry, ModelArtifact, PRODUCTION, Registry, name_from};
use lepton::models::Cpu;
use lepton::report::StudyReport;
use lepton::{
    AutoMl, Family, IMPORTANCE_REPEATS, Metric, Observer, Predictor, Validation, leaderboard_text,
    named_scores, score_predictions,
};

use crate::Result;

/// The most test rows permutation importance is measured on (evenly spaced among them): it
/// predicts them once per input column and repeat.
const IMPORTANCE_ROWS: usize = 1_000;
/// Fewer test rows than this measure no importance.
const IMPORTANCE_MIN_ROWS: usize = 100;
/// The share of the budget the search and the refit get: the rest measures the final
/// model's importance and saves it.
pub(crate) const AUTOML_SHARE: f64 = 0.95;

#[derive(Args)]
pub struct FitArgs {
    /// The CSV file (a header row, then one row per example); with `--task text`, a folder
    /// per class (DIR/CLASS/FILE), a .tar.gz of one, or a CSV file with `--text-column`.
    pub data: PathBuf,
    /// The column to predict (with `--task text`, a CSV corpus's label column).
    #[arg(long)]
    pub target: Option<String>,
    /// With `--task text` and a CSV file: the column of the texts.
    #[arg(long)]
    pub text_column: Option<String>,
    /// The task (default: a numeric target with fractional values or more than 20 distinct
    /// values is a regression, anything else a classification); `text` classifies documents.
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// The metric to optimize: accuracy, balanced_accuracy, log_loss, roc_auc, macro_f1 (a
    /// classification; accuracy by default), r2, rmse, mae (a regression; r2 by default).
    #[arg(long)]
    pub metric: Option<Metric>,
    /// The wall-clock budget of the search and the refit, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub budget_seconds: f64,
    /// Stop the search after this many trials, even with budget left.
    #[arg(long)]
    pub max_trials: Option<usize>,
    /// The families to choose from, comma-separated (boosted, linear, mlp, forest); the
    /// first ones' defaults are tried first.
    #[arg(long, value_delimiter = ',', default_value = "boosted,linear,mlp")]
    pub families: Vec<String>,
    /// How trials are validated: `auto` (5-fold cross-validation where the budget affords
    /// it: below 100,000 training rows and 2,500 cells, rows x columns, per second; a hold-out
    /// otherwise), `holdout` (20 % of the training rows) or `kfold:K` (K-fold
    /// cross-validation, each trial's fold models averaged into the final model).
    #[arg(long, default_value = "auto", value_parser = parse_validation)]
    pub validation: Validation,
    /// The seed of the test split, the sampler and every training run.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The share of the rows held out to score the final model once (stratified for a
    /// classification).
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Score the final model on this CSV file (same columns) instead of a hold-out: every
    /// row of DATA is searched and trained on.
    #[arg(long, conflicts_with = "test_fraction")]
    pub test: Option<PathBuf>,
    /// Keep the search's study in a storage (sqlite://PATH, postgres://...).
    #[arg(long)]
    pub storage: Option<String>,
    /// The study's name in the storage (default: the data file's name). A study that exists
    /// is resumed: its trials count.
    #[arg(long)]
    pub study: Option<String>,
    /// Search with this many processes on this machine around one study (needs --storage;
    /// the others are `lepton fit --join` processes this one starts and waits for). The
    /// ensemble and refit happen once, here, among every process's trials (each leaves its
    /// trials' out-of-fold predictions in the storage).
    #[arg(long, default_value_t = 1, requires = "storage")]
    pub workers: usize,
    /// Only search: join the run another `lepton fit` started with the same data, target,
    /// seed, test fraction, budget and --storage / --study (on this or another machine),
    /// until the budget's search share has passed; print how many trials this process ran.
    #[arg(
        long,
        requires = "storage",
        conflicts_with_all = ["workers", "register", "artifact", "report"]
    )]
    pub join: bool,
    /// Where to save the model artifact (default: NAME-model in the current directory, NAME being
    /// the data file's name without extension).
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Register the model under this name (default with --registry: the data file's name)
    /// as its next version, promoted to production.
    #[arg(long, requires = "registry")]
    pub register: Option<String>,
    /// The model registry's directory.
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Write the run's report here: one self-contained HTML page with the search's plots,
    /// the leaderboard and the final model's feature importance.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print a machine-readable summary as the last line.
    #[arg(long)]
    pub json: bool,
}

fn parse_validation(text: &str) -> std::result::Result<Validation, String> {
    match text {
        "auto" => Ok(Validation::Auto),
        "holdout" => Ok(Validation::Holdout),
        _ => match text.strip_prefix("kfold:").map(str::parse::<usize>) {
            Some(Ok(k)) if k >= 2 => Ok(Validation::KFold(k)),
            _ => Err(format!(
                "`{text}` is not a validation: auto, holdout or kfold:K with K at least 2"
            )),
        },
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TaskArg {
    Classification,
    Regression,
    Text,
}

pub fn run(args: FitArgs) -> Result<()> {
    let started = Instant::now();
    let budget = Duration::try_from_secs_f64(args.budget_seconds)
        .ok()
        .filter(|b| !b.is_zero())
        .ok_or_else(|| format!("--budget-seconds {}: must be positive", args.budget_seconds))?;
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) {
        return Err(format!("--test-fraction {}: must be in (0, 1)", args.test_fraction).into());
    }
    if matches!(args.task, Some(TaskArg::Text)) {
        return crate::fit_text::run(args, started, budget);
    }
    if args.text_column.is_some() {
        return Err("--text-column is for --task text".into());
    }
    let target = args
        .target
        .clone()
        .ok_or("--target: the column to predict is needed")?;
    let families = args
        .families
        .iter()
        .map(|name| match Family::parse(name) {
            Some(Family::Cnn) | None => Err(format!(
                "--families: unknown table family `{name}` (there are boosted, linear, mlp, \
                 forest)"
            )),
            Some(f) => Ok(f),
        })
        .collect::<std::result::Result<Vec<Family>, String>>()?;
    let table = CsvLoader::new(&args.data).read_table()?;
    if table.column(&target).is_none() {
        return Err(format!(
            "{}: no column `{}` (the columns are {})",
            args.data.display(),
            target,
            table.names().join(", ")
        )
        .into());
    }
    let kind = match args.task {
        // A text run returned above.
        Some(TaskArg::Classification | TaskArg::Text) => TargetKind::Classification,
        Some(TaskArg::Regression) => TargetKind::Regression,
        None => {
            let kind = infer_task(&table, &target);
            tracing::info!(?kind, target = %target, "task inferred from the target column");
            kind
        }
    };
    let (train, test) = match &args.test {
        Some(path) => (table.clone(), CsvLoader::new(path).read_table()?),
        None => {
            let (train_rows, test_rows) = match kind {
                TargetKind::Classification => {
                    let (labels, classes) = table.class_indices(&target)?;
                    stratified_holdout_indices(&labels, &classes, args.test_fraction, args.seed)?
                }
                TargetKind::Regression => {
                    holdout_indices(table.n_rows(), args.test_fraction, args.seed)?
                }
            };
            (table.select(&train_rows)?, table.select(&test_rows)?)
        }
    };
    let name = data_name(&args.data);
    let study = args.study.clone().unwrap_or_else(|| name.clone());
    let mut automl = AutoMl::new()
        .with_families(&families)
        .with_budget(budget.mul_f64(AUTOML_SHARE))
        .with_seed(args.seed)
        .with_validation(args.validation)
        .with_study_name(&study);
    if let Some(metric) = args.metric {
        automl = automl.with_metric(metric);
    }
    if let Some(max) = args.max_trials {
        automl = automl.with_max_trials(max);
    }
    if let Some(url) = &args.storage {
        automl = automl.with_storage_url(url, &study);
    }
    if args.join {
        let trials = automl.join_table::<Cpu>(&train, &target, kind, &mut lepton::Quiet)?;
        writeln!(
            std::io::stdout().lock(),
            "joined study `{study}`: ran {trials} trials"
        )?;
        return Ok(());
    }
    if args.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    let helpers = start_helpers(args.workers - 1, &study)?;
    eprintln!(
        "{}: {} rows x {} columns, target `{}` ({kind:?}); searching on {} rows for {:.0} s, \
         testing on {}",
        args.data.display(),
        table.n_rows(),
        table.names().len(),
        target,
        train.n_rows(),
        budget.as_secs_f64(),
        test.n_rows()
    );
    let mut progress = Progress::new(budget);
    let run = automl.fit_table_observed::<Cpu>(&train, &target, kind, &mut progress);
    progress.bar.finish_and_clear();
    // The helpers stop at the search's deadline; wait for them whatever happened here.
    for mut helper in helpers {
        match helper.wait() {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("a helper process ended with {status}"),
            Err(e) => eprintln!("a helper process could not be waited for: {e}"),
        }
    }
    let run = run?;

    let out = &mut std::io::stdout().lock();
    let predictor = &run.predictor;
    if let Some(p) = predictor.preprocessor() {
        for (column, reason) in p.dropped() {
            writeln!(out, "dropped column `{column}`: {reason}")?;
        }
    }
    let validation = format!("{:?}", run.validation);
    write_leaderboard(
        out,
        run.trials.len(),
        &run.leaderboard,
        &validation,
        run.metric,
    )?;
    let test = match known_classes_only(&test, &target, predictor)? {
        Some(known) => known,
        None => test,
    };
    let (targets, predictions) = predictor.predict_labelled(&test)?;
    let task = predictor.input_schema().task.clone();
    let (scores, _) = score_predictions(&task, &targets, &predictions)?;
    let scores = named_scores(&scores);
    let members: Vec<(u64, String, f64)> = run
        .members
        .iter()
        .map(|(number, weight)| {
            let family = run
                .trials
                .iter()
                .find(|t| t.number == *number)
                .and_then(|t| t.params.get("family"))
                .map_or_else(|| "?".to_owned(), ToString::to_string);
            (*number, family, *weight)
        })
        .collect();
    // The family of the one trial kept (alone or as its bagged fold models), else an ensemble.
    let family = match members.as_slice() {
        [(_, family, _)] => family.clone(),
        _ => predictor.model().family().to_owned(),
    };
    let how = if run.bagged_folds > 0 {
        format!("each the average of its {} fold models", run.bagged_folds)
    } else {
        format!("each refitted on {} rows", train.n_rows())
    };
    if members.len() > 1 {
        let listed: Vec<String> = members
            .iter()
            .map(|(trial, family, weight)| format!("trial {trial} ({family}) {weight:.2}"))
            .collect();
        writeln!(
            out,
            "ensemble of {} trials by weight: {}; {} {:.4} out of fold (the best trial alone: \
             trial {}, {:.4}); {how}",
            members.len(),
            listed.join(", "),
            run.metric,
            run.valid_score,
            run.winner.number,
            run.winner.value.unwrap_or(f64::NAN),
        )?;
    } else if run.bagged_folds > 0 {
        writeln!(
            out,
            "winner: trial {} ({family}), {} {:.4} in validation; the average of its {} fold \
             models",
            run.winner.number, run.metric, run.valid_score, run.bagged_folds
        )?;
    } else {
        writeln!(
            out,
            "winner: trial {} ({family}), {} {:.4} in validation; refitted on {} rows for {} \
             epoch(s)",
            run.winner.number,
            run.metric,
            run.valid_score,
            train.n_rows(),
            run.refit_epochs
        )?;
    }
    let test_line: Vec<String> = scores.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
    writeln!(
        out,
        "test ({} rows): {}",
        test.n_rows(),
        test_line.join(", ")
    )?;

    // Permutation importance on (a sample of) the test rows, which nothing trained on. It
    // describes the model; a failure (the metric undefined on these rows) loses nothing.
    let importance_started = Instant::now();
    let left = budget.saturating_sub(started.elapsed());
    let importance = match importance_sample(&test, predictor, left).and_then(|sample| {
        let n = sample.n_rows();
        let found =
            predictor.permutation_importance(&sample, run.metric, IMPORTANCE_REPEATS, args.seed)?;
        Ok((n, found))
    }) {
        Ok((rows, importance)) => {
            let listed: Vec<String> = importance
                .iter()
                .take(10)
                .map(|f| format!("{} {:.4} ± {:.4}", f.column, f.mean, f.sd))
                .collect();
            writeln!(
                out,
                "permutation importance ({} drop on {} test rows, {IMPORTANCE_REPEATS} \
                 shuffles): {}",
                run.metric,
                rows,
                listed.join(", ")
            )?;
            importance
        }
        Err(e) => {
            eprintln!("permutation importance not measured: {e}");
            Vec::new()
        }
    };

    let importance_seconds = importance_started.elapsed().as_secs_f64();

    if let Some(path) = &args.report {
        let history = History::new(run.metric.direction(), run.trials.clone());
        let bars: Vec<(String, f64, f64)> = importance
            .iter()
            .map(|f| (f.column.clone(), f.mean, f.sd))
            .collect();
        let html = StudyReport::new(&study, &history)
            .with_feature_importance(run.metric.name(), &bars)
            .html()?;
        std::fs::write(path, html).map_err(|e| format!("--report {}: {e}", path.display()))?;
        writeln!(out, "wrote the report to {}", path.display())?;
    }

    let mut metrics: BTreeMap<String, f64> = scores
        .iter()
        .map(|(n, v)| (format!("test_{n}"), *v))
        .collect();
    metrics.insert(format!("valid_{}", run.metric), run.valid_score);
    let artifact_dir = args
        .artifact
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}-model")));
    run.save(&artifact_dir, metrics.clone())?;
    writeln!(out, "saved the model to {}", artifact_dir.display())?;
    let mut registered = serde_json::Value::Null;
    if let Some(registry_dir) = &args.registry {
        let model = args.register.clone().unwrap_or_else(|| name.clone());
        let registry = LocalRegistry::new(registry_dir);
        let version = registry.register(&model, &ModelArtifact::load(&artifact_dir)?)?;
        registry.promote(&model, version, PRODUCTION)?;
        writeln!(
            out,
            "registered `{model}` v{version} in {} ({PRODUCTION})",
            registry_dir.display()
        )?;
        registered = serde_json::json!({"name": model, "version": version});
    }
    let wall = started.elapsed().as_secs_f64();
    writeln!(out, "done in {wall:.1} s")?;
    if args.json {
        let mut summary = serde_json::json!({
            "data": args.data.display().to_string(),
            "target": target,
            "task": format!("{kind:?}").to_lowercase(),
            "metric": run.metric.name(),
            "model": family,
            "params": run.winner.params,
            "members": members
                .iter()
                .map(|(trial, family, weight)| {
                    serde_json::json!({"trial": trial, "family": family, "weight": weight})
                })
                .collect::<Vec<_>>(),
            "trials": run.trials.len(),
            "processes": processes(&run.trials),
            "complete_trials": run.leaderboard.len(),
            "validation": format!("{:?}", run.validation),
            "valid_score": run.valid_score,
            "refit_epochs": run.refit_epochs,
            "bagged_folds": run.bagged_folds,
            "search_seconds": run.search_time.as_secs_f64(),
            "refit_seconds": run.refit_time.as_secs_f64(),
            "importance_seconds": importance_seconds,
            "wall_seconds": wall,
            "budget_seconds": budget.as_secs_f64(),
            "artifact": artifact_dir.display().to_string(),
            "registered": registered,
            "seed": args.seed,
            "importance": importance,
        });
        for (name, value) in &scores {
            summary[format!("test_{name}")] = (*value).into();
        }
        writeln!(out, "{summary}")?;
    }
    Ok(())
}

/// Evenly spaced test rows to measure permutation importance on: at most
/// [`IMPORTANCE_ROWS`], fewer when predicting them once per input column and repeat would
/// not end within `left` (timed on one prediction of them); an error when not even
/// [`IMPORTANCE_MIN_ROWS`] would.
fn importance_sample(test: &Table, predictor: &Predictor, left: Duration) -> Result<Table> {
    let evenly = |at_most: usize| -> Result<Table> {
        let step = test.n_rows().div_ceil(at_most.max(1)).max(1);
        let rows: Vec<usize> = (0..test.n_rows()).step_by(step).collect();
        Ok(test.select(&rows)?)
    };
    let sample = evenly(IMPORTANCE_ROWS)?;
    let timed = Instant::now();
    predictor.predict_table(&sample)?;
    let passes = (predictor.input_schema().features.len() * IMPORTANCE_REPEATS) as f64;
    let seconds = timed.elapsed().as_secs_f64() * passes;
    if seconds <= left.as_secs_f64() {
        return Ok(sample);
    }
    let rows = (sample.n_rows() as f64 * left.as_secs_f64() / seconds) as usize;
    if rows < IMPORTANCE_MIN_ROWS {
        return Err(format!(
            "no time left in the budget ({:.1} s) to predict {IMPORTANCE_MIN_ROWS} rows per \
             column and repeat",
            left.as_secs_f64()
        )
        .into());
    }
    evenly(rows)
}

/// For a classification whose test rows hold classes the training rows lack (the model never
/// predicts them, so they cannot be scored), the other test rows, said so; `None` when every
/// test row's class is known (or the task is a regression).
fn known_classes_only(test: &Table, target: &str, predictor: &Predictor) -> Result<Option<Table>> {
    let Task::Classification { classes } = &predictor.input_schema().task else {
        return Ok(None);
    };
    let (labels, seen) = test.class_indices(target)?;
    let unknown: Vec<&str> = seen
        .iter()
        .filter(|c| !classes.contains(c))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(None);
    }
    let keep: Vec<usize> = (0..labels.len())
        .filter(|&i| classes.contains(&seen[labels[i]]))
        .collect();
    eprintln!(
        "{} test rows are of classes the training rows lack ({}): not scored",
        labels.len() - keep.len(),
        unknown.join(", ")
    );
    if keep.is_empty() {
        return Err(format!(
            "{}: no test row is of a class the training rows have",
            test.source()
        )
        .into());
    }
    Ok(Some(test.select(&keep)?))
}

/// Starts `count` processes of this command with the same arguments, less those of the
/// refit's outputs, plus `--join --study STUDY`: they search the same study until the
/// deadline, then exit.
fn start_helpers(count: usize, study: &str) -> Result<Vec<std::process::Child>> {
    const LEFT_OUT: [&str; 6] = [
        "--workers",
        "--study",
        "--artifact",
        "--register",
        "--registry",
        "--report",
    ];
    let exe = std::env::current_exe()?;
    let mut args: Vec<String> = Vec::new();
    let mut given = std::env::args().skip(1);
    while let Some(a) = given.next() {
        if LEFT_OUT.contains(&a.as_str()) {
            given.next();
        } else if !LEFT_OUT.iter().any(|o| a.starts_with(&format!("{o}="))) {
            args.push(a);
        }
    }
    (0..count)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(&args)
                .args(["--join", "--study", study])
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start a helper process: {e}").into())
        })
        .collect()
}

/// The data file's name without its extension, made a valid model name.
/// How many trials ran and the best 10 of `leaderboard`, as table and text runs print them.
pub(crate) fn write_leaderboard(
    out: &mut impl Write,
    trials: usize,
    leaderboard: &[FrozenTrial],
    validation: &str,
    metric: Metric,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{trials} trials ({} complete), {validation} validation; leaderboard by {metric}:",
        leaderboard.len(),
    )?;
    write!(out, "{}", leaderboard_text(leaderboard, metric, 10))
}

/// The name of the data at `path`, for its study and model: the file's name without its
/// extension (`.tar.gz` and `.tgz` whole), or the folder's name.
pub(crate) fn data_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".tar.gz", ".tgz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .map(str::to_owned)
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()));
    name_from(stem.as_deref().unwrap_or_default(), "model")
}

/// How many processes ran the trials.
fn processes(trials: &[FrozenTrial]) -> usize {
    let mut ids: Vec<String> = trials
        .iter()
        .filter_map(|t| t.user_attrs.get("process").map(ToString::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

/// A numeric target with fractional values or more than 20 distinct values is a regression;
/// anything else (text, booleans, a few whole numbers) a classification.
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

/// The search on a terminal: elapsed time against the budget, trials, the last one.
pub(crate) struct Progress {
    pub(crate) bar: ProgressBar,
    trials: usize,
}

impl Progress {
    pub(crate) fn new(budget: Duration) -> Self {
        let bar = ProgressBar::new(budget.as_secs().max(1));
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {elapsed}/{len}s budget  {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(500));
        Progress { bar, trials: 0 }
    }
}

impl Observer for Progress {
    fn trial(&mut self, t: &FrozenTrial) {
        self.trials += 1;
        self.bar.set_position(self.bar.elapsed().as_secs());
        let family = t
            .params
            .get("family")
            .map_or("-".into(), ToString::to_string);
        let value = t.value.map_or("-".into(), |v| format!("{v:.4}"));
        self.bar.set_message(format!(
            "{} trials, last: {family} {:?} {value}",
            self.trials, t.state
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_named_without_its_extensions() {
        let name = |p: &str| data_name(Path::new(p));
        assert_eq!(name("../data/iris.csv"), "iris");
        assert_eq!(name("text/spamassassin.tar.gz"), "spamassassin");
        assert_eq!(name("mails.tgz"), "mails");
        assert_eq!(name("corpora/reviews"), "reviews");
        assert_eq!(name("archive.gz"), "archive");
    }
}
