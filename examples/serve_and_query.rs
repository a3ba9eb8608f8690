//! Serving, end to end, with a real HTTP client:
//!
//! 1. train an MLP on MNIST (784-256-256-10, two epochs, a 10 % validation hold-out);
//! 2. start the prediction server (in this process, on a free loopback port) over a model
//!    registry, and deploy the artifact with `HttpServerDeployer`, which returns once the
//!    server answers with the new version;
//! 3. ask it about the model, send it test digits, and check its answers are the ones the
//!    model gives in process;
//! 4. send 1,024 single-digit requests from 16 threads at once (the server batches them) and
//!    report the accuracy of the answers and the batch sizes it ran;
//! 5. show what a bad request gets back;
//! 6. deploy a second model (one epoch, another seed): traffic moves to it; roll back: traffic
//!    moves back; then shut down gracefully.
//!
//! ```text
//! cargo run --release --example serve_and_query [-- --registry DIR --epochs N]
//! ```
//! The registry keeps both versions (`production` on the first) for `lepton-serve --registry
//! DIR` to serve afterwards; benches/serve_load.sh load-tests it that way.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use lepton::ArtifactLoader;
use lepton::core::Subset;
use lepton::data::ImageDataset;
use lepton::data::datasets::{MnistSplit, mnist};
use lepton::deploy::{Examples, HttpServerDeployer, LocalRegistry, Registry, Server, ServerConfig};
use lepton::logging::LogFormat;
use lepton::prelude::*;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const NAME: &str = "mnist-mlp";

fn main() {
    if let Err(e) = parse_args().and_then(|a| {
        lepton::logging::init(a.log_format, "warn", None)?;
        run(a)
    }) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

struct Args {
    log_format: LogFormat,
    registry: PathBuf,
    epochs: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        log_format: LogFormat::default(),
        registry: std::env::temp_dir().join(format!("lepton-serve-{}", std::process::id())),
        epochs: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "-h" || a == "--help" {
            println!(
                "usage: serve_and_query [--registry DIR] [--epochs N] [--log-format pretty|json]"
            );
            std::process::exit(0);
        }
        let v = it.next().ok_or(format!("{a} needs a value (try --help)"))?;
        match a.as_str() {
            "--registry" => args.registry = v.into(),
            "--log-format" => args.log_format = v.parse()?,
            "--epochs" => {
                args.epochs = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--epochs: `{v}` is not a positive number"))?;
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    Ok(args)
}

/// Trains the MLP for `epochs` with `seed` and saves its artifact into `dir`.
fn train(train: &ImageDataset, epochs: usize, seed: u64, dir: &Path) -> Result<FittedModel> {
    let n = train.len();
    let fit_rows: Vec<usize> = (0..n * 9 / 10).collect();
    let valid_rows: Vec<usize> = (n * 9 / 10..n).collect();
    let config = MlpConfig {
        hidden_width: 256,
        depth: 2,
        batch_size: 128,
        learning_rate: 1e-3,
        max_epochs: epochs,
        seed,
        ..MlpConfig::default()
    };
    let started = Instant::now();
    let fitted = MlpClassifier::<Cpu>::new(config)?.train(
        &Subset::new(train, fit_rows)?,
        &Subset::new(train, valid_rows)?,
        &mut DetachedContext::new(),
    )?;
    let valid = fitted.summary().best_valid_score.unwrap_or(f64::NAN);
    println!(
        "trained 784-256-256-10 for {epochs} epoch(s), seed {seed}: validation accuracy {valid:.4} \
         ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let model = FittedModel::Mlp(Box::new(fitted));
    Predictor::numeric(Box::new(model.clone()), train.schema().clone())?
        .to_artifact(BTreeMap::from([("valid_accuracy".to_owned(), valid)]))?
        .with_training_data(lepton::deploy::fingerprint(train)?)
        // 500 training digits for online learning (`lepton-serve --learn`) to replay.
        .with_replay(&Examples::sample(train, 500, seed)?)?
        .save(dir)?;
    Ok(model)
}

fn run(args: Args) -> Result<()> {
    let (train_set, test) = (mnist(MnistSplit::Train)?, mnist(MnistSplit::Test)?);
    let width = test.height() * test.width();
    let staged = tempfile::tempdir()?;

    // 1. Train.
    let first_dir = staged.path().join("first");
    let model = train(&train_set, args.epochs, 1, &first_dir)?;

    // 2. Serve and deploy.
    let registry = Arc::new(LocalRegistry::new(&args.registry));
    let server = Server::start(
        "127.0.0.1:0".parse()?,
        ServerConfig::default(),
        registry.clone(),
        Arc::new(ArtifactLoader),
    )?;
    let base = format!("http://{}", server.local_addr());
    println!(
        "\nserving the registry {} at {base}",
        args.registry.display()
    );
    let deployer = HttpServerDeployer::new(&args.registry, &base);
    let first = deployer.deploy(NAME, &first_dir)?;
    println!("deployed {NAME} v{} -> {}", first.version, first.address);

    // 3. Ask about the model, then send eight digits in one request.
    let client = reqwest::blocking::Client::new();
    let about: Value = client
        .get(format!("{base}/v1/models/{NAME}"))
        .send()?
        .json()?;
    println!(
        "GET /v1/models/{NAME}: version {}, family {}, {} inputs, classes {}, metrics {}",
        about["version"],
        about["family"],
        about["inputs"].as_array().map_or(0, Vec::len),
        about["classes"],
        about["metrics"]
    );
    let digits = |range: std::ops::Range<usize>| -> Vec<Vec<f32>> {
        range
            .map(|i| test.pixels()[i * width..(i + 1) * width].to_vec())
            .collect()
    };
    let rows = digits(0..8);
    let answer: Value = client
        .post(&first.address)
        .json(&json!({"rows": rows}))
        .send()?
        .json()?;
    let served: Vec<usize> = answer["predictions"]
        .as_array()
        .ok_or("no predictions in the answer")?
        .iter()
        .filter_map(|p| p["class"].as_u64().map(|c| c as usize))
        .collect();
    let in_process: Vec<usize> = model
        .predict(Features::new(&test.pixels()[..8 * width], width)?)?
        .iter()
        .filter_map(Prediction::class)
        .collect();
    println!(
        "POST 8 digits: served {served:?}, true {:?}",
        &test.labels()[..8]
    );
    if served != in_process {
        return Err(format!("the server answered {served:?}, in process {in_process:?}").into());
    }
    println!("the served answers are the in-process ones");

    // 4. Many single-digit requests at once.
    let batch_counts = |client: &reqwest::blocking::Client| -> Result<(f64, f64)> {
        let text = client.get(format!("{base}/metrics")).send()?.text()?;
        Ok((
            metric(
                &text,
                &format!("lepton_batch_rows_count{{model=\"{NAME}\"}}"),
            ),
            metric(&text, &format!("lepton_batch_rows_sum{{model=\"{NAME}\"}}")),
        ))
    };
    let before = batch_counts(&client)?;
    let started = Instant::now();
    let (threads, per_thread) = (16, 64);
    let correct: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (client, address, test) = (client.clone(), &first.address, &test);
                scope.spawn(move || -> Result<usize> {
                    let mut correct = 0;
                    for k in 0..per_thread {
                        let i = t * per_thread + k;
                        let row = &test.pixels()[i * width..(i + 1) * width];
                        let answer: Value = client
                            .post(address)
                            .json(&json!({"rows": [row]}))
                            .send()?
                            .error_for_status()?
                            .json()?;
                        let class = answer["predictions"][0]["class"].as_u64();
                        correct += usize::from(class == Some(test.labels()[i] as u64));
                    }
                    Ok(correct)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a client thread panicked")?)
            .sum::<Result<usize>>()
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let sent = threads * per_thread;
    let after = batch_counts(&client)?;
    let (batches, batched_rows) = (after.0 - before.0, after.1 - before.1);
    println!(
        "{sent} single-digit requests from {threads} threads in {:.2} s: accuracy {:.4}; the \
         server ran {batched_rows} rows in {batches} batches ({:.1} rows per batch)",
        elapsed,
        correct as f64 / sent as f64,
        batched_rows / batches.max(1.0)
    );

    // 5. A bad request.
    let bad = client
        .post(&first.address)
        .json(&json!({"rows": [[0.5, 0.5]]}))
        .send()?;
    println!("a 2-value row: {} {}", bad.status(), bad.text()?);

    // 6. A second version, then a rollback.
    let second_dir = staged.path().join("second");
    train(&train_set, 1, 2, &second_dir)?;
    let second = deployer.deploy(NAME, &second_dir)?;
    let version = |client: &reqwest::blocking::Client| -> Result<Value> {
        let answer: Value = client
            .post(&first.address)
            .json(&json!({"rows": digits(0..1)}))
            .send()?
            .json()?;
        Ok(answer["version"].clone())
    };
    println!(
        "deployed v{}: the server now answers with version {}",
        second.version,
        version(&client)?
    );
    let back = deployer.rollback(NAME)?;
    println!(
        "rolled back to v{}: the server answers with version {}",
        back.version,
        version(&client)?
    );
    server.shutdown()?;
    println!(
        "shut down; the registry {} keeps versions {:?}",
        args.registry.display(),
        registry.versions(NAME)?
    );
    Ok(())
}

/// The value of one sample line of Prometheus text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
