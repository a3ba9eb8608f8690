//! A model family of your own in the search: k-nearest neighbours, written here against
//! [`ModelFamily`] and [`Fitted`], registered with `AutoMl::with_family`, searched beside the
//! built-in families (its `k` and vote weighting are in the search space), and, when it is
//! part of the chosen model, saved in the artifact and loaded back with
//! `Predictor::load_with`. A second run searches the neighbours alone (at most 60 trials),
//! so the round trip is shown whichever family wins the first.
//!
//! ```text
//! cargo run --release --example custom_family [-- --data breast_cancer|wine|iris
//!     --budget-seconds 20 --seed 42]
//! ```

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lepton::core::{Features, Schema, Target, Task};
use lepton::data::stratified_holdout_indices;
use lepton::models::{Head, TrainingSummary};
use lepton::prelude::*;
use lepton::{Fitted, ModelFamily, TrainRequest};

/// k-nearest neighbours on the rows as the run's preprocessing leaves them (imputed,
/// one-hot, standardized: distances need comparable scales).
#[derive(Debug)]
struct Neighbours;

/// The training rows, their targets (class indices or values) and how to vote.
#[derive(Debug)]
struct FittedNeighbours {
    k: usize,
    /// Votes weighted by 1 / distance instead of one each.
    by_distance: bool,
    width: usize,
    head: Head,
    rows: Vec<f32>,
    targets: Vec<f64>,
    summary: TrainingSummary,
}

impl FittedNeighbours {
    /// The prediction for one row `x`: a weighted vote of its `k` nearest training rows.
    fn predict_row(&self, x: &[f32]) -> Prediction {
        let mut nearest: Vec<(f32, usize)> = self
            .rows
            .chunks_exact(self.width)
            .enumerate()
            .map(|(i, r)| (r.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum(), i))
            .collect();
        let k = self.k.min(nearest.len());
        nearest.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let votes = nearest[..k].iter().map(|&(d2, i)| {
            let weight = if self.by_distance {
                1.0 / (f64::from(d2).sqrt() + 1e-9)
            } else {
                1.0
            };
            (weight, self.targets[i])
        });
        match self.head {
            Head::Classes { count } => {
                let mut shares = vec![0.0f64; count];
                for (w, t) in votes {
                    shares[t as usize] += w;
                }
                let total: f64 = shares.iter().sum();
                let probabilities: Vec<f32> = shares.iter().map(|s| (s / total) as f32).collect();
                let index = (0..count)
                    .max_by(|&a, &b| shares[a].total_cmp(&shares[b]).then(b.cmp(&a)))
                    .unwrap_or(0);
                Prediction::Class {
                    index,
                    probabilities,
                }
            }
            Head::Value { .. } => {
                let (sum, weights) = votes.fold((0.0, 0.0), |(s, n), (w, t)| (s + w * t, n + w));
                Prediction::Value(sum / weights)
            }
        }
    }
}

impl Predict for FittedNeighbours {
    fn predict(&self, x: Features<'_>) -> lepton::core::Result<Vec<Prediction>> {
        if x.n_features() != self.width {
            return Err(lepton::core::Error::InvalidInput(format!(
                "rows have {} features, the neighbours {}",
                x.n_features(),
                self.width
            )));
        }
        Ok(x.values()
            .chunks_exact(self.width)
            .map(|row| self.predict_row(row))
            .collect())
    }
}

impl Fitted for FittedNeighbours {
    fn family(&self) -> &str {
        "neighbours"
    }
    fn summary(&self) -> &TrainingSummary {
        &self.summary
    }
    fn shape(&self) -> (usize, Head) {
        (self.width, self.head)
    }
    fn config(&self) -> lepton::Result<serde_json::Value> {
        Ok(serde_json::json!({
            "k": self.k,
            "by_distance": self.by_distance,
            "width": self.width,
            "head": self.head,
            "rows": self.targets.len(),
        }))
    }
    /// The training rows (`f32`) then their targets (`f64`), little-endian.
    fn weights(&self) -> lepton::Result<Vec<u8>> {
        let rows = self.rows.iter().flat_map(|v| v.to_le_bytes());
        let targets = self.targets.iter().flat_map(|v| v.to_le_bytes());
        Ok(rows.chain(targets).collect())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn summary(train_seconds: f64) -> TrainingSummary {
    TrainingSummary {
        epochs_run: 1,
        best_epoch: 1,
        best_valid_score: None,
        best_valid_loss: None,
        best_valid_confusion: None,
        final_train_loss: 0.0,
        train_seconds,
        valid_seconds: 0.0,
    }
}

impl ModelFamily for Neighbours {
    fn name(&self) -> &str {
        "neighbours"
    }

    fn supports(&self, _schema: &Schema) -> lepton::Result<bool> {
        Ok(true)
    }

    fn suggest(&self, trial: &mut Trial) -> lepton::core::Result<()> {
        trial.suggest_int("k", 1, 50, Scale::Log)?;
        trial.suggest_categorical("weighting", &["uniform", "distance"])?;
        Ok(())
    }

    fn defaults(&self) -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("k".into(), ParamValue::Int(5)),
            ("weighting".into(), "uniform".into()),
        ])
    }

    fn train(
        &self,
        request: &TrainRequest<'_>,
        _ctx: &mut dyn TrialContext,
    ) -> lepton::core::Result<Box<dyn Fitted>> {
        let started = Instant::now();
        let bad = |what: String| lepton::core::Error::InvalidParameter {
            name: "neighbours".into(),
            reason: what,
        };
        let k = match request.params.get("k") {
            Some(ParamValue::Int(k)) if *k >= 1 => *k as usize,
            other => return Err(bad(format!("k must be a whole number >= 1, not {other:?}"))),
        };
        let by_distance = match request.params.get("weighting").and_then(ParamValue::as_str) {
            Some("uniform") => false,
            Some("distance") => true,
            other => return Err(bad(format!("weighting {other:?}: uniform or distance"))),
        };
        let data = request.train;
        let width = data.schema().features.len();
        let mut rows = Vec::with_capacity(data.len() * width);
        let mut targets = Vec::with_capacity(data.len());
        for i in 0..data.len() {
            let (Some(x), Some(t)) = (data.features(i), data.target(i)) else {
                return Err(lepton::core::Error::InvalidInput(format!(
                    "row {i} is missing"
                )));
            };
            rows.extend_from_slice(x);
            targets.push(match t {
                Target::Class(c) => c as f64,
                Target::Value(v) => v,
            });
        }
        if targets.is_empty() {
            return Err(lepton::core::Error::InvalidInput("no training rows".into()));
        }
        let head = match &data.schema().task {
            Task::Classification { classes } => Head::Classes {
                count: classes.len(),
            },
            Task::Regression => Head::Value { mean: 0.0, sd: 1.0 },
        };
        Ok(Box::new(FittedNeighbours {
            k,
            by_distance,
            width,
            head,
            rows,
            targets,
            summary: summary(started.elapsed().as_secs_f64()),
        }))
    }

    fn load(&self, config: &serde_json::Value, weights: &[u8]) -> lepton::Result<Box<dyn Fitted>> {
        let refused = |why: &str| LeptonError::IncompatibleArtifact(format!("neighbours: {why}"));
        let field = |name: &str| {
            config
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| refused(&format!("no `{name}` in the configuration")))
        };
        let (k, width, n) = (field("k")?, field("width")?, field("rows")?);
        let by_distance = config
            .get("by_distance")
            .and_then(serde_json::Value::as_bool)
            .ok_or_else(|| refused("no `by_distance` in the configuration"))?;
        let head: Head = serde_json::from_value(config["head"].clone())
            .map_err(|e| refused(&format!("head: {e}")))?;
        let row_bytes = n
            .checked_mul(width)
            .and_then(|v| v.checked_mul(4))
            .ok_or_else(|| refused("too many rows"))?;
        if k == 0 || n == 0 || weights.len() != row_bytes + 8 * n {
            return Err(refused(
                "the weights do not hold the rows the configuration says",
            ));
        }
        let (row_part, target_part) = weights.split_at(row_bytes);
        let rows = row_part
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let targets: Vec<f64> = target_part
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect();
        if let Head::Classes { count } = head
            && targets.iter().any(|&t| t < 0.0 || t as usize >= count)
        {
            return Err(refused("a class outside the head"));
        }
        Ok(Box::new(FittedNeighbours {
            k,
            by_distance,
            width,
            head,
            rows,
            targets,
            summary: summary(0.0),
        }))
    }
}

fn fail(message: &str) -> ! {
    eprintln!("custom_family: {message}");
    std::process::exit(2);
}

/// Runs `automl` on `train`, prints its leaderboard by family and its test accuracy, and
/// saves, loads back (with the neighbours among the families) and checks the model.
fn run_and_reload(title: &str, automl: AutoMl, train: &Table, test: &Table) {
    let run = automl
        .fit_table::<Cpu>(train, "target", TargetKind::Classification)
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!("{title}: {} trials", run.trials.len());
    let mut best: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for t in &run.leaderboard {
        let family = t.params["family"].to_string();
        let entry = best
            .entry(family)
            .or_insert((t.value.unwrap_or(f64::NAN), 0));
        entry.1 += 1;
    }
    for (family, (score, count)) in &best {
        println!("  {family:12} best validation accuracy {score:.4} ({count} complete trials)");
    }
    let chosen: Vec<String> = run
        .members
        .iter()
        .map(|(number, weight)| {
            let t = run.trials.iter().find(|t| t.number == *number);
            let family = t.map_or("?".into(), |t| t.params["family"].to_string());
            format!("trial {number} ({family}) x {weight:.2}")
        })
        .collect();
    println!("  model: {}", chosen.join(" + "));
    let accuracy = run
        .predictor
        .score(test)
        .ok()
        .and_then(|s| s.accuracy)
        .unwrap_or_else(|| fail("the test rows could not be scored"));
    println!("  test accuracy {accuracy:.4}");

    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&e.to_string()));
    run.save(
        dir.path(),
        BTreeMap::from([("test_accuracy".into(), accuracy)]),
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let mut families = Family::all_on::<Cpu>();
    families.push(Arc::new(Neighbours));
    let loaded =
        Predictor::load_with(dir.path(), &families).unwrap_or_else(|e| fail(&e.to_string()));
    let before = run
        .predictor
        .predict_table(test)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let after = loaded
        .predict_table(test)
        .unwrap_or_else(|e| fail(&e.to_string()));
    if before != after {
        fail("the loaded model predicts differently");
    }
    println!(
        "  saved and loaded back: the same {} predictions",
        after.len()
    );
}

fn main() {
    let (mut data, mut budget, mut seed) = ("breast_cancer".to_owned(), 20.0f64, 42u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--data" => data = value(),
            "--budget-seconds" => {
                budget = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--budget-seconds: a number"))
            }
            "--seed" => {
                seed = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--seed: a whole number"))
            }
            "-h" | "--help" => {
                println!("usage: custom_family [--data NAME] [--budget-seconds S] [--seed S]");
                return;
            }
            other => fail(&format!("unknown argument `{other}` (try --help)")),
        }
    }
    if !budget.is_finite() || budget <= 0.0 {
        fail("--budget-seconds must be positive");
    }
    let table = datasets::table(&data).unwrap_or_else(|e| fail(&e.to_string()));
    let (labels, classes) = table
        .class_indices("target")
        .unwrap_or_else(|e| fail(&e.to_string()));
    let (train, test) = stratified_holdout_indices(&labels, &classes, 0.2, seed)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let (train, test) = match (table.select(&train), table.select(&test)) {
        (Ok(train), Ok(test)) => (train, test),
        _ => fail("the split does not fit the table"),
    };
    println!(
        "{data}: {} training rows, {} test rows",
        train.n_rows(),
        test.n_rows()
    );
    let budget = Duration::from_secs_f64(budget);
    run_and_reload(
        "the neighbours beside the built-in families",
        AutoMl::new()
            .with_family(Neighbours)
            .with_budget(budget)
            .with_seed(seed),
        &train,
        &test,
    );
    // Its space has 100 configurations: 60 trials are plenty.
    run_and_reload(
        "the neighbours alone",
        AutoMl::new()
            .with_families(&[])
            .with_family(Neighbours)
            .with_budget(budget)
            .with_max_trials(60)
            .with_seed(seed),
        &train,
        &test,
    );
}
