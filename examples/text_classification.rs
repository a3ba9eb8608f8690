//! Text classification, the whole story, on the SpamAssassin corpus (6,046 raw e-mails, spam
//! or ham):
//!
//! 1. unpack and read the corpus (`$LEPTON_DATA_DIR/text/spamassassin.tar.gz`, or a folder per
//!    class or `.tar.gz` given as the first argument);
//! 2. hold out a stratified 20 % test split, and search the text families on the rest for the
//!    budget;
//! 3. print the leaderboard, the test scores and the test confusion matrix;
//! 4. save the model, load it back, and check it predicts the same;
//! 5. serve it (in this process, on a free loopback port) and ask the server about two texts.
//!
//! ```text
//! LEPTON_DATA_DIR=../shared/data cargo run --release --example text_classification \
//!     [-- CORPUS --budget-seconds 60 --seed 42]
//! ```

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use lepton::core::{Prediction, Target};
use lepton::data::{TextCorpus, stratified_holdout_indices};
use lepton::deploy::{LocalRegistry, ModelArtifact, PRODUCTION, Registry, Server, ServerConfig};
use lepton::models::metrics::ConfusionMatrix;
use lepton::{ArtifactLoader, AutoMl, TextPredictor, leaderboard_text, named_scores};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let (mut corpus_path, mut budget, mut seed) = (None, 60.0, 42u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--budget-seconds" => budget = number(args.next(), "--budget-seconds")?,
            "--seed" => seed = number(args.next(), "--seed")?,
            "-h" | "--help" => {
                println!("usage: text_classification [CORPUS] [--budget-seconds S] [--seed N]");
                return Ok(());
            }
            other if !other.starts_with('-') && corpus_path.is_none() => {
                corpus_path = Some(PathBuf::from(other));
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    let path = match corpus_path {
        Some(path) => path,
        None => std::env::var_os("LEPTON_DATA_DIR")
            .map(|dir| PathBuf::from(dir).join("text/spamassassin.tar.gz"))
            .ok_or("give a corpus, or set LEPTON_DATA_DIR to the shared data")?,
    };

    // 1. The corpus.
    let corpus = if path.is_dir() {
        TextCorpus::from_dir(&path)?
    } else {
        TextCorpus::from_tar_gz(&path)?
    };
    println!(
        "{}: {} documents, classes {:?} ({:?}), {} decoded as Latin-1",
        path.display(),
        corpus.len(),
        corpus.classes(),
        corpus.class_counts(),
        corpus.latin1_documents()
    );

    // 2. A stratified test split, and the search on the rest.
    let (train, test) = stratified_holdout_indices(corpus.labels(), corpus.classes(), 0.2, seed)?;
    let (train, test) = (corpus.select(&train)?, corpus.select(&test)?);
    let started = Instant::now();
    let run = AutoMl::new()
        .with_budget(Duration::from_secs_f64(budget))
        .with_seed(seed)
        .fit_text(&train)?;
    println!(
        "searched {} trials in {:.0} s; the winner {}",
        run.trials.len(),
        started.elapsed().as_secs_f64(),
        if run.on_all_documents {
            format!(
                "retrained on every training document in {:.0} s",
                run.refit_time.as_secs_f64()
            )
        } else {
            "kept as its trial trained it (no time left to retrain)".to_owned()
        }
    );

    // 3. Leaderboard, test scores, confusion matrix.
    print!("{}", leaderboard_text(&run.leaderboard, run.metric, 5));
    let scores = named_scores(&run.predictor.score(&test)?);
    let line: Vec<String> = scores.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
    println!("test ({} documents): {}", test.len(), line.join(", "));
    let (targets, predictions) = run.predictor.predict_labelled(&test)?;
    let truth: Vec<usize> = targets
        .iter()
        .filter_map(|t| match t {
            Target::Class(c) => Some(*c),
            Target::Value(_) => None,
        })
        .collect();
    let chosen: Vec<usize> = predictions
        .iter()
        .filter_map(|p| match p {
            Prediction::Class { index, .. } => Some(*index),
            Prediction::Value(_) => None,
        })
        .collect();
    let classes = run.predictor.classes();
    let confusion = ConfusionMatrix::new(classes.len(), &truth, &chosen)?;
    println!("confusion matrix (rows: true class, columns: predicted)");
    println!(
        "{:>12} {}",
        "",
        classes
            .iter()
            .map(|c| format!("{c:>8}"))
            .collect::<String>()
    );
    for (t, name) in classes.iter().enumerate() {
        let counts: String = (0..classes.len())
            .map(|p| format!("{:>8}", confusion.count(t, p)))
            .collect();
        println!("{name:>12} {counts}");
    }

    // 4. Save, load, the same predictions.
    let dir = tempfile::tempdir()?;
    let artifact = dir.path().join("spam-model");
    run.predictor.save(
        &artifact,
        scores
            .iter()
            .map(|(n, v)| (format!("test_{n}"), *v))
            .collect(),
    )?;
    let loaded = TextPredictor::load(&artifact)?;
    let queries = [
        "Congratulations! You have been selected to receive a FREE vacation. Click here now",
        "Hi Bob, the build is broken again; can you look at the failing test before the release?",
    ];
    let in_process = loaded.labels(&loaded.predict(&queries)?)?;
    if loaded.predict(test.texts())? != predictions {
        return Err("the reloaded model predicts otherwise".into());
    }
    println!(
        "saved to and reloaded from {}: the same predictions",
        artifact.display()
    );

    // 5. Served.
    let registry = Arc::new(LocalRegistry::new(dir.path().join("registry")));
    registry.register("spam", &ModelArtifact::load(&artifact)?)?;
    registry.promote("spam", 1, PRODUCTION)?;
    let server = Server::start(
        "127.0.0.1:0".parse()?,
        ServerConfig::default(),
        registry,
        Arc::new(ArtifactLoader),
    )?;
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!(
            "http://{}/v1/models/spam/predict",
            server.local_addr()
        ))
        .json(&json!({ "texts": queries }))
        .send()?
        .json()?;
    for ((query, answer), local) in queries
        .iter()
        .zip(answer["predictions"].as_array().ok_or("no predictions")?)
        .zip(&in_process)
    {
        println!(
            "served: {:<12} (in process: {local:<5}) {query}",
            answer["label"]
        );
        if answer["label"].as_str() != Some(local.as_str()) {
            return Err("the server and the model disagree".into());
        }
    }
    server.shutdown()?;
    Ok(())
}

fn number<T: std::str::FromStr>(value: Option<String>, flag: &str) -> Result<T> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a number").into())
}
