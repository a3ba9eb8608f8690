//! AutoML on the wine data set, end to end:
//!
//! 1. hold out 20% as a test split (stratified); cut the rest into 5 stratified folds, each
//!    standardised on its own training rows only;
//! 2. search an MLP's hyper-parameters with a study (random sampler, 25 trials); a trial's
//!    score is its 5-fold cross-validated accuracy, each fold trained with early stopping;
//! 3. refit the best configuration on all 80%, score it once on the untouched test split;
//! 4. save the model artifact, load it back, check the predictions are identical, deploy it.
//!
//! ```text
//! cargo run --release --example quickstart [-- --trials N --seed S --json]
//! ```
//! `RUST_LOG=lepton=debug` shows every epoch.

use std::collections::BTreeMap;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lepton::core::{FrozenTrial, Target};
use lepton::prelude::*;

/// Cross-validation folds per trial.
const FOLDS: usize = 5;

struct Args {
    trials: usize,
    seed: u64,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
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
                println!("usage: quickstart [--trials N] [--seed S] [--json]");
                std::process::exit(0);
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = parse_args().map_err(Into::into).and_then(run);
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();

    // 1. Data: 20% test, held out until the end; the search sees only the other 80%, as five
    //    stratified cross-validation folds, each standardised on its own training rows.
    let wine = datasets::wine()?;
    let (train_full, test) = stratified_split(&wine, 0.2, args.seed)?;
    let mut folds = Vec::new();
    for (train_rows, valid_rows) in stratified_kfold(&train_full, FOLDS, args.seed)? {
        let (train, valid) = (
            train_full.select(&train_rows)?,
            train_full.select(&valid_rows)?,
        );
        let scaler = StandardScaler.fit(&train)?;
        folds.push((scaler.transform(&train)?, scaler.transform(&valid)?));
    }
    println!(
        "wine: {} rows x {} features, 3 classes; search on {} rows ({FOLDS}-fold CV), test on {}",
        wine.len(),
        wine.n_features(),
        train_full.len(),
        test.len()
    );

    // 2. Search: each trial trains one MLP per fold, with early stopping on that fold's
    //    validation rows, and reports the running mean accuracy after each fold.
    let study = Study::builder("wine-mlp")
        .with_direction(Direction::Maximize)
        .with_sampler(RandomSampler::new(args.seed))
        .build()?;
    let bar = ProgressBar::new(args.trials as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} trials  best {msg}  [{elapsed}]",
    )?);
    let mut best = f64::NEG_INFINITY;
    study.optimize(args.trials, |trial| {
        MlpSpace.suggest(trial)?;
        let config = MlpConfig::default()
            .with_seed(args.seed + trial.number())
            .with_params(trial.params())?;
        let model = MlpClassifier::<Cpu>::new(config)?;
        let (mut accuracy, mut loss, mut epochs) = (0.0, 0.0, 0.0);
        for (i, (train, valid)) in folds.iter().enumerate() {
            let fitted = model.train(train, valid, &mut DetachedContext::new())?;
            let summary = fitted.summary();
            let (Some(a), Some(l)) = (summary.best_valid_accuracy, summary.best_valid_loss) else {
                return Err(lepton::core::Error::InvalidInput(
                    "no validation score".into(),
                ));
            };
            accuracy += a;
            loss += l;
            epochs += summary.best_epoch as f64;
            trial.report(i as u64 + 1, accuracy / (i + 1) as f64)?;
            if trial.should_prune() {
                return Err(lepton::core::Error::Pruned { step: i as u64 + 1 });
            }
        }
        let k = folds.len() as f64;
        trial.set_user_attr("best_epoch", (epochs / k).round() as i64)?;
        trial.set_user_attr("valid_loss", loss / k)?;
        best = best.max(accuracy / k);
        bar.set_message(format!("{best:.4}"));
        bar.inc(1);
        Ok(accuracy / k)
    })?;
    bar.finish();

    let mut trials: Vec<FrozenTrial> = study
        .trials()?
        .into_iter()
        .filter(|t| t.value.is_some() && t.state == TrialState::Complete)
        .collect();
    if trials.is_empty() {
        return Err("no trial completed".into());
    }
    // Best cross-validated accuracy first; the validation cross-entropy (which does not
    // saturate) breaks ties.
    trials.sort_by(|a, b| {
        b.value
            .unwrap_or(0.0)
            .total_cmp(&a.value.unwrap_or(0.0))
            .then(valid_loss(a).total_cmp(&valid_loss(b)))
    });
    print_leaderboard(&trials);
    let winner = &trials[0];

    // 3. Refit on all 80% for the epochs the winner needed on average, test once.
    let scaler = StandardScaler.fit(&train_full)?;
    let epochs = best_epoch(winner).max(1);
    let config = MlpConfig::default()
        .with_seed(args.seed)
        .with_params(&winner.params)?
        .with_max_epochs(epochs);
    let empty = train_full.select(&[])?;
    let model = MlpClassifier::<Cpu>::new(config)?.train(
        &scaler.transform(&train_full)?,
        &empty,
        &mut DetachedContext::new(),
    )?;
    let predictor = TabularPredictor::new(wine.schema().clone(), scaler, model)?;
    let predictions = predictor.predict_rows(test.feature_values())?;
    let correct = predictions
        .iter()
        .zip(test.targets())
        .filter(|(p, t)| matches!(t, Target::Class(c) if p.class() == Some(*c)))
        .count();
    let test_accuracy = correct as f64 / test.len() as f64;
    println!(
        "refit trial {}'s configuration on {} rows for {epochs} epochs: test accuracy {test_accuracy:.4} ({correct}/{})",
        winner.number,
        train_full.len(),
        test.len()
    );

    // 4. Save, reload, compare, deploy.
    let dir = std::env::temp_dir().join(format!("lepton-quickstart-{}", std::process::id()));
    let artifact_dir = dir.join("artifact");
    let metrics = BTreeMap::from([
        ("test_accuracy".to_owned(), test_accuracy),
        ("cv_accuracy".to_owned(), winner.value.unwrap_or(f64::NAN)),
    ]);
    predictor.save(&artifact_dir, metrics)?;
    let reloaded = TabularPredictor::<Cpu>::load(&artifact_dir)?;
    let identical = reloaded.predict_rows(test.feature_values())? == predictions;
    if !identical {
        return Err("the reloaded artifact predicts differently".into());
    }
    let deployment =
        LocalRegistryDeployer::new(dir.join("registry")).deploy("wine", &artifact_dir)?;
    println!(
        "artifact saved to {} and reloaded: identical predictions on all {} test rows",
        artifact_dir.display(),
        test.len()
    );
    println!(
        "deployed `{}` version {} at {}",
        deployment.name, deployment.version, deployment.address
    );
    let wall = started.elapsed().as_secs_f64();
    println!("done in {wall:.1} s");

    if args.json {
        let best_params: BTreeMap<_, _> = winner.params.clone();
        let summary = serde_json::json!({
            "dataset": "wine",
            "trials": study.trials()?.len(),
            "best_trial": winner.number,
            "best_params": best_params,
            "cv_accuracy": winner.value,
            "refit_epochs": epochs,
            "test_accuracy": test_accuracy,
            "identical_after_reload": identical,
            "artifact": artifact_dir.display().to_string(),
            "wall_seconds": wall,
        });
        println!("{summary}");
    }
    Ok(())
}

/// The epoch whose weights training kept, as the objective recorded it.
fn best_epoch(t: &FrozenTrial) -> usize {
    t.user_attrs
        .get("best_epoch")
        .and_then(ParamValue::as_i64)
        .map_or(0, |e| e as usize)
}

/// The validation cross-entropy of the kept weights, as the objective recorded it.
fn valid_loss(t: &FrozenTrial) -> f64 {
    t.user_attrs
        .get("valid_loss")
        .and_then(ParamValue::as_f64)
        .unwrap_or(f64::INFINITY)
}

fn print_leaderboard(trials: &[FrozenTrial]) {
    println!(
        "\n{:>5}  {:>9}  {:>10}  {:>6}  {:>10}  {:>5}  {:>5}  {:>7}  {:>5}",
        "trial", "cv acc", "cv loss", "epochs", "lr", "width", "depth", "dropout", "batch"
    );
    let p = |t: &FrozenTrial, k: &str| t.params.get(k).map_or("-".into(), |v| v.to_string());
    for t in trials.iter().take(10) {
        println!(
            "{:>5}  {:>9.4}  {:>10.4}  {:>6}  {:>10}  {:>5}  {:>5}  {:>7}  {:>5}",
            t.number,
            t.value.unwrap_or(f64::NAN),
            valid_loss(t),
            best_epoch(t),
            p(t, "learning_rate"),
            p(t, "hidden_width"),
            p(t, "depth"),
            p(t, "dropout"),
            p(t, "batch_size"),
        );
    }
    println!();
}
