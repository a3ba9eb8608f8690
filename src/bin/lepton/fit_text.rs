//! `lepton fit DATA --task text`: AutoML on labelled documents, from raw texts to a saved model.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lepton::data::{TextCorpus, stratified_holdout_indices};
use lepton::{AutoMl, named_scores};

use crate::Result;
use crate::fit::{AUTOML_SHARE, FitArgs, Progress, data_name, write_leaderboard};

/// Reads a corpus: a folder per class, a `.tar.gz` (or `.tgz`) of one, or a CSV file whose
/// `text_column` holds the texts and `label` the classes.
fn read_corpus(path: &Path, text_column: Option<&str>, label: Option<&str>) -> Result<TextCorpus> {
    let name = path.to_string_lossy();
    if path.is_dir() {
        return Ok(TextCorpus::from_dir(path)?);
    }
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        return Ok(TextCorpus::from_tar_gz(path)?);
    }
    match (text_column, label) {
        (Some(text), Some(label)) => Ok(TextCorpus::from_csv(path, text, label)?),
        _ => Err(format!(
            "{}: a text corpus is a folder per class, a .tar.gz of one, or a CSV file with \
             --text-column and --target (its label column)",
            path.display()
        )
        .into()),
    }
}

pub fn run(args: FitArgs, started: Instant, budget: Duration) -> Result<()> {
    let refused = [
        (args.workers != 1, "--workers"),
        (args.join, "--join"),
        (args.report.is_some(), "--report"),
        (args.registry.is_some(), "--registry"),
        (args.validation != lepton::Validation::Auto, "--validation"),
    ];
    if let Some((_, option)) = refused.iter().find(|(given, _)| *given) {
        return Err(format!("{option} is for tables; --task text validates on a hold-out").into());
    }
    let text_column = args.text_column.as_deref();
    let corpus = read_corpus(&args.data, text_column, args.target.as_deref())?;
    let counts: Vec<String> = corpus
        .classes()
        .iter()
        .zip(corpus.class_counts())
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let (documents, latin1) = (corpus.len(), corpus.latin1_documents());
    let (train, test) = match &args.test {
        Some(path) => (
            corpus,
            read_corpus(path, text_column, args.target.as_deref())?,
        ),
        None => {
            let (train, test) = stratified_holdout_indices(
                corpus.labels(),
                corpus.classes(),
                args.test_fraction,
                args.seed,
            )?;
            (corpus.select(&train)?, corpus.select(&test)?)
        }
    };
    let name = data_name(&args.data);
    let study = args.study.clone().unwrap_or_else(|| name.clone());
    let mut automl = AutoMl::new()
        .with_budget(budget.mul_f64(AUTOML_SHARE))
        .with_seed(args.seed)
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
    eprintln!(
        "{}: {documents} documents ({}; {latin1} read as Latin-1); searching on {} for {:.0} s, \
         testing on {}",
        args.data.display(),
        counts.join(", "),
        train.len(),
        budget.as_secs_f64(),
        test.len()
    );
    let mut progress = Progress::new(budget);
    let run = automl.fit_text_with(&train, &lepton::TextFamilyKind::all(), &mut progress);
    progress.bar.finish_and_clear();
    let run = run?;

    let out = &mut std::io::stdout().lock();
    write_leaderboard(
        out,
        run.trials.len(),
        &run.leaderboard,
        "hold-out",
        run.metric,
    )?;
    let family = run.predictor.model().family().to_owned();
    writeln!(
        out,
        "winner: trial {} ({family}), {} {:.4} in validation; {}",
        run.winner.number,
        run.metric,
        run.valid_score,
        if run.on_all_documents {
            format!("retrained on {} documents", train.len())
        } else {
            "the trial's model (no time left to retrain on every document)".to_owned()
        }
    )?;
    let spent: Vec<String> = run
        .family_seconds
        .iter()
        .map(|(f, s)| format!("{f} {s:.1} s"))
        .collect();
    writeln!(
        out,
        "search: {:.1} s, by family: {}",
        run.search_time.as_secs_f64(),
        spent.join(", ")
    )?;
    let scores = named_scores(&run.predictor.score(&test)?);
    let line: Vec<String> = scores.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
    writeln!(out, "test ({} documents): {}", test.len(), line.join(", "))?;

    let mut metrics: BTreeMap<String, f64> = scores
        .iter()
        .map(|(n, v)| (format!("test_{n}"), *v))
        .collect();
    metrics.insert(format!("valid_{}", run.metric), run.valid_score);
    let artifact: PathBuf = args
        .artifact
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}-model")));
    run.predictor.save(&artifact, metrics)?;
    writeln!(out, "saved the model to {}", artifact.display())?;
    let wall = started.elapsed().as_secs_f64();
    writeln!(out, "done in {wall:.1} s")?;
    if args.json {
        let mut summary = serde_json::json!({
            "data": args.data.display().to_string(),
            "task": "text",
            "documents": documents,
            "classes": run.predictor.classes(),
            "metric": run.metric.name(),
            "model": family,
            "params": run.winner.params,
            "trials": run.trials.len(),
            "complete_trials": run.leaderboard.len(),
            "valid_score": run.valid_score,
            "on_all_documents": run.on_all_documents,
            "family_seconds": run.family_seconds,
            "search_seconds": run.search_time.as_secs_f64(),
            "refit_seconds": run.refit_time.as_secs_f64(),
            "wall_seconds": wall,
            "budget_seconds": budget.as_secs_f64(),
            "artifact": artifact.display().to_string(),
            "seed": args.seed,
        });
        for (name, value) in &scores {
            summary[format!("test_{name}")] = (*value).into();
        }
        writeln!(out, "{summary}")?;
    }
    Ok(())
}
