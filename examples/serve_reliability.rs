//! Load and reliability scenarios against the `lepton-serve` binary, on the loopback:
//!
//! - `saturate`: the requests/s it answers from `--concurrency` closed loops (64) of valid
//!   single-row requests for `--saturate-seconds` (10), with p50 and p99;
//! - `soak`: saturation measured, then an open loop at half that rate for `--seconds` (600) of
//!   mixed requests, an `--invalid-share` (20 %) of them bad in four ways (malformed JSON: 400,
//!   an unknown column: 422, `Content-Type: text/plain`: 415, more rows than `--max-rows`:
//!   413), registering and promoting a new version every `--swap-every` seconds (60; a hot
//!   swap). It reports the valid requests sent, answered 200 and failed (anything else: must be
//!   0), the statuses of the bad ones, p50/p99 of the valid ones, the swaps and how soon each
//!   version answered, and the server's RSS (VmRSS of /proc/PID/status) at the start and the
//!   end, its largest sample (every 10 s) and its peak (VmHWM);
//! - `overload`: saturation measured, then twice that rate of valid requests for `--seconds`
//!   (60) over `--overload-connections` (1024, more than the server admits at once), with
//!   `/healthz` asked every second meanwhile; it reports the statuses (503: shed), the
//!   `/healthz` failures, and the p99, second by second, of a light open loop (a twentieth of
//!   the rate) for `--recovery-seconds` (10) from the moment the overload stops, against the
//!   p99 of the same light loop for `--baseline-seconds` (5) before it: the seconds until p99
//!   is back within 2x.
//!
//! ```text
//! cargo build --release --bin lepton-serve --example serve_reliability
//! cargo run --release --example serve_reliability -- saturate|soak|overload [--seconds N]
//!     [--rate R] [--json] [--server PATH] [--concurrency 64] [--saturate-seconds 10]
//!     [--connections 64] [--overload-connections 1024] [--swap-every 60]
//!     [--invalid-share 0.2] [--max-rows 32] [--baseline-seconds 5] [--recovery-seconds 10]
//! ```
//!
//! `lepton-serve` is found beside this example's executable (`target/release/lepton-serve`
//! for `target/release/examples/serve_reliability`): build it first, as above, or name it with
//! `--server`. It runs with its defaults (logging at `info`, to a file that is counted, not
//! shown) but `--max-rows`. The model is an MLP with its preprocessor on the embedded wine
//! data (13 named columns, 3 classes; trained here in well under a second). `--rate R` takes R
//! as the saturation rate instead of measuring it.
//!
//! An open loop is oha's `-q RATE -c CONNECTIONS`: requests fall due at the rate, and each is
//! sent by the first of the connections free (each runs one request at a time); its latency
//! runs from when it fell due, so a server that falls behind shows it (no coordinated
//! omission), and what no connection was free to send before the end is counted as not sent.
//! The client runs in this process on the same cores as the server: on a small machine it
//! takes a good share of them, and the rates are the ones this client reaches. Everything
//! stops by itself; with `--json` the last line of output is one JSON object. The exit status
//! is 1 when a check fails (a valid soak request not answered 200 or not sent, a bad one
//! answered otherwise than expected, a swap not served, `/healthz` failing, no shedding or no
//! recovery under overload, the server gone), 2 on an error.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use lepton::data::Column;
use lepton::deploy::{LocalRegistry, ModelArtifact, PRODUCTION, Registry};
use lepton::prelude::*;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const NAME: &str = "wine";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Saturate,
    Soak,
    Overload,
}

#[derive(Parser)]
#[command(about = "Load and reliability scenarios against lepton-serve (see the source)")]
struct Args {
    /// What to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// How long the soak or the overload lasts (default 600 for soak, 60 for overload).
    #[arg(long)]
    seconds: Option<f64>,
    /// The saturation rate (requests/s) to take instead of measuring it.
    #[arg(long)]
    rate: Option<f64>,
    /// Also print the figures as one JSON line, last.
    #[arg(long)]
    json: bool,
    /// The lepton-serve binary (default: beside this example's executable).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Closed loops while measuring saturation.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long saturation is measured.
    #[arg(long, default_value_t = 10.0)]
    saturate_seconds: f64,
    /// Seconds between two hot swaps during the soak.
    #[arg(long, default_value_t = 60.0)]
    swap_every: f64,
    /// The share of bad requests during the soak.
    #[arg(long, default_value_t = 0.2)]
    invalid_share: f64,
    /// The server's --max-rows (a bad request sends one row more).
    #[arg(long, default_value_t = 32)]
    max_rows: usize,
    /// How long the light loop runs before the overload, for its p99.
    #[arg(long, default_value_t = 5.0)]
    baseline_seconds: f64,
    /// How long the light loop runs after the overload.
    #[arg(long, default_value_t = 10.0)]
    recovery_seconds: f64,
    /// Connections (and so the most requests in flight) of the soak's open loop and of the
    /// light loops around the overload.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Connections of the overload's open loop: more than the server's --max-concurrency
    /// (512), so that it has more requests than it admits.
    #[arg(long, default_value_t = 1024)]
    overload_connections: usize,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// Runs the scenario; whether every check passed.
fn run(args: &Args) -> Result<bool> {
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .ok_or("cannot tell where this executable lies")?
            .join("lepton-serve"),
    };
    if !binary.is_file() {
        return Err(format!(
            "no lepton-serve at {}: run `cargo build --release --bin lepton-serve` first, or \
             name it with --server",
            binary.display()
        )
        .into());
    }
    let load_at_start = load_average();
    let work = tempfile::tempdir()?;
    let registry = LocalRegistry::new(work.path().join("registry"));
    let (artifact, requests) = prepare(&registry, args.max_rows)?;
    let server = ServerProcess::start(
        &binary,
        registry.root(),
        args.max_rows,
        work.path().join("server.log"),
    )?;
    eprintln!("lepton-serve (pid {}) at {}", server.pid, server.base);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let client = Client::new(&server.base, requests)?;
        client.wait_ready().await?;
        let saturation = match args.rate {
            Some(rate) => Saturation {
                rate,
                measured: None,
            },
            None => saturate(&client, args.concurrency, secs(args.saturate_seconds)).await,
        };
        if saturation.rate < 1.0 {
            return Err(format!("a saturation rate of {:.1}/s is too low", saturation.rate).into());
        }
        match args.scenario {
            Scenario::Saturate => Ok(Report::new(args, &saturation)),
            Scenario::Soak => {
                let seconds = args.seconds.unwrap_or(600.0);
                soak(
                    args,
                    &client,
                    &server,
                    &registry,
                    artifact,
                    &saturation,
                    seconds,
                )
                .await
            }
            Scenario::Overload => {
                let seconds = args.seconds.unwrap_or(60.0);
                overload(args, &client, &server, &saturation, seconds).await
            }
        }
    })?;
    let mut report = report;
    report
        .figures
        .insert("load_average_at_start".into(), json!(load_at_start));
    let (lines, errors) = server.logged();
    report.lines.push(format!(
        "server log (RUST_LOG=info): {lines} lines, {errors} at ERROR"
    ));
    report.figures.insert(
        "server_log".into(),
        json!({"lines": lines, "error_lines": errors}),
    );
    report.check("the server is still running", server.alive());
    report.print(args.json);
    Ok(report.passed())
}

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.max(0.0))
}

/// Trains the wine predictor, registers and promotes it as v1; returns its artifact (for the
/// hot swaps) and the requests to send.
fn prepare(registry: &LocalRegistry, max_rows: usize) -> Result<(ModelArtifact, Requests)> {
    let started = Instant::now();
    let wine = datasets::table("wine")?;
    let (labels, classes) = wine.class_indices("target")?;
    let (train_rows, test_rows) =
        lepton::data::stratified_holdout_indices(&labels, &classes, 0.3, 0)?;
    let (train, test) = (wine.select(&train_rows)?, wine.select(&test_rows)?);
    let preprocessor = Preprocessor::default().fit(&train, "target", TargetKind::Classification)?;
    let config = MlpConfig::default()
        .with_learning_rate(1e-2)
        .with_max_epochs(30);
    let model = MlpClassifier::<Cpu>::new(config)?.train(
        &preprocessor.transform(&train)?,
        &preprocessor.transform(&test)?,
        &mut DetachedContext::new(),
    )?;
    let predictor = Predictor::tabular(preprocessor, Box::new(FittedModel::Mlp(Box::new(model))))?;
    let artifact = predictor.to_artifact(BTreeMap::new())?;
    let version = registry.register(NAME, &artifact)?;
    registry.promote(NAME, version, PRODUCTION)?;
    eprintln!(
        "trained the wine predictor and registered it as v{version} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let inputs = predictor.input_schema().features.clone();
    let mut rows = Vec::new();
    for i in 0..test.n_rows() {
        let mut row = serde_json::Map::new();
        for name in &inputs {
            let Some(Column::Numeric(values)) = test.column(name) else {
                return Err(format!("wine column {name} is not numeric").into());
            };
            row.insert(name.clone(), json!(values[i]));
        }
        rows.push(Value::Object(row));
    }
    Ok((artifact, Requests::new(&rows, max_rows)?))
}

/// The kinds of request sent: a valid one, and four bad ones with the status they must get.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    MalformedJson,
    UnknownColumn,
    NotJson,
    TooManyRows,
}

impl Kind {
    const BAD: [Kind; 4] = [
        Kind::MalformedJson,
        Kind::UnknownColumn,
        Kind::NotJson,
        Kind::TooManyRows,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Valid => "valid",
            Kind::MalformedJson => "malformed_json",
            Kind::UnknownColumn => "unknown_column",
            Kind::NotJson => "not_json_content_type",
            Kind::TooManyRows => "too_many_rows",
        }
    }

    fn expected(self) -> u16 {
        match self {
            Kind::Valid => 200,
            Kind::MalformedJson => 400,
            Kind::UnknownColumn => 422,
            Kind::NotJson => 415,
            Kind::TooManyRows => 413,
        }
    }
}

/// One request, ready to send.
struct Request {
    kind: Kind,
    content_type: &'static str,
    body: Vec<u8>,
}

/// Single-row valid requests (one per test row), then one request of each bad kind.
struct Requests {
    all: Vec<Request>,
    valid: usize,
}

impl Requests {
    fn new(rows: &[Value], max_rows: usize) -> Result<Self> {
        let request = |kind, content_type, body: &Value| Request {
            kind,
            content_type,
            body: body.to_string().into_bytes(),
        };
        let mut all: Vec<Request> = rows
            .iter()
            .map(|row| request(Kind::Valid, "application/json", &json!({"rows": [row]})))
            .collect();
        let valid = all.len();
        let first = rows.first().ok_or("no test rows")?;
        let too_many: Vec<&Value> = rows.iter().cycle().take(max_rows + 1).collect();
        let mut malformed = json!({"rows": [first]}).to_string().into_bytes();
        malformed.truncate(malformed.len() / 2);
        all.extend([
            Request {
                kind: Kind::MalformedJson,
                content_type: "application/json",
                body: malformed,
            },
            request(
                Kind::UnknownColumn,
                "application/json",
                &json!({"rows": [{"petal_length": 1.0}]}),
            ),
            request(Kind::NotJson, "text/plain", &json!({"rows": [first]})),
            request(
                Kind::TooManyRows,
                "application/json",
                &json!({"rows": too_many}),
            ),
        ]);
        Ok(Requests { all, valid })
    }

    /// The index of a random request: a bad one with probability `bad_share`.
    fn pick(&self, rng: &mut StdRng, bad_share: f64) -> usize {
        if self.valid < self.all.len() && rng.random_bool(bad_share.clamp(0.0, 1.0)) {
            rng.random_range(self.valid..self.all.len())
        } else {
            rng.random_range(0..self.valid)
        }
    }
}

/// The `lepton-serve` child process, killed when dropped.
struct ServerProcess {
    child: Child,
    pid: u32,
    base: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts it over `registry`, its log (stderr) going to `log`.
    fn start(binary: &Path, registry: &Path, max_rows: usize, log: PathBuf) -> Result<Self> {
        let mut child = Command::new(binary)
            .arg("--registry")
            .arg(registry)
            .args(["--addr", "127.0.0.1:0", "--max-rows", &max_rows.to_string()])
            .env("RUST_LOG", "info")
            .env_remove("LEPTON_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let pid = child.id();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "lepton-serve did not start: its first line was {line:?}; its log:\n{said}"
            )
            .into());
        };
        let base = base.to_owned();
        Ok(ServerProcess {
            child,
            pid,
            base,
            log,
        })
    }

    /// How many lines it logged, and how many of them at ERROR.
    fn logged(&self) -> (usize, usize) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let errors = text.lines().filter(|l| l.contains(" ERROR ")).count();
        (text.lines().count(), errors)
    }

    fn alive(&self) -> bool {
        std::fs::metadata(format!("/proc/{}", self.pid)).is_ok()
            && memory(self.pid).is_some_and(|m| m.rss_kib > 0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's resident memory, in KiB.
#[derive(Clone, Copy)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

/// VmRSS and VmHWM of process `pid` (Linux).
fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A valid request answered 200: the second of the phase it was due in, and its latency in
/// microseconds from when it was due and from when it was sent.
struct Answered {
    second: u32,
    from_due_us: u32,
    from_sent_us: u32,
}

/// What the answers were, for one phase.
#[derive(Default)]
struct Tally {
    /// Per kind, per status (0: no answer: the connection failed or the client timed out).
    statuses: BTreeMap<Kind, BTreeMap<u16, u64>>,
    /// Valid requests answered 200.
    ok: Vec<Answered>,
    /// Each version that answered, and when it first did.
    first_seen: BTreeMap<u64, Instant>,
}

impl Tally {
    fn count(&self, kind: Kind, status: Option<u16>) -> u64 {
        self.statuses.get(&kind).map_or(0, |by| {
            by.iter()
                .filter(|(s, _)| status.is_none_or(|want| **s == want))
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// p50 and p99 of the latencies (from when they were due, or from when they were sent)
    /// of the valid requests answered 200, in milliseconds.
    fn percentiles(&self, from_sent: bool) -> Option<(f64, f64)> {
        let us = self.ok.iter().map(|a| {
            if from_sent {
                a.from_sent_us
            } else {
                a.from_due_us
            }
        });
        p50_p99(us.collect())
    }

    fn all_percentiles(&self) -> Option<(f64, f64)> {
        self.percentiles(false)
    }

    /// The p99 (from when they were due) of the valid requests answered 200 that were due
    /// in each of the first `seconds` seconds of the phase, in milliseconds.
    fn p99_per_second(&self, seconds: u32) -> Vec<Option<f64>> {
        let mut by_second = vec![Vec::new(); seconds as usize];
        for a in &self.ok {
            if let Some(second) = by_second.get_mut(a.second as usize) {
                second.push(a.from_due_us);
            }
        }
        by_second
            .into_iter()
            .map(|us| p50_p99(us).map(|p| p.1))
            .collect()
    }

    fn statuses_json(&self) -> Value {
        self.statuses
            .iter()
            .map(|(kind, by)| {
                let by: serde_json::Map<String, Value> = by
                    .iter()
                    .map(|(s, n)| (status_name(*s), json!(n)))
                    .collect();
                (kind.name().to_owned(), Value::Object(by))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// p50 and p99 of latencies in microseconds, in milliseconds.
fn p50_p99(mut us: Vec<u32>) -> Option<(f64, f64)> {
    if us.is_empty() {
        return None;
    }
    us.sort_unstable();
    let at = |q: f64| {
        let i = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
        f64::from(us[i]) / 1000.0
    };
    Some((at(0.50), at(0.99)))
}

fn status_name(status: u16) -> String {
    if status == 0 {
        "no_answer".into()
    } else {
        status.to_string()
    }
}

type Shared = Arc<Mutex<Tally>>;

fn lock(tally: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|p| p.into_inner())
}

/// The HTTP client and what it sends.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: Arc<str>,
    predict: Arc<str>,
    requests: Arc<Requests>,
}

impl Client {
    fn new(base: &str, requests: Requests) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Client {
            http,
            base: base.into(),
            predict: format!("{base}/v1/models/{NAME}/predict").into(),
            requests: Arc::new(requests),
        })
    }

    async fn wait_ready(&self) -> Result<()> {
        for _ in 0..300 {
            let ready = self.http.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("lepton-serve was not ready within 30 s".into())
    }

    /// Sends `request`; its status (0 without an answer) and, for a 200, the version that
    /// answered.
    async fn send(&self, request: &Request) -> (u16, Option<u64>) {
        let sent = self
            .http
            .post(&*self.predict)
            .header(reqwest::header::CONTENT_TYPE, request.content_type)
            .body(request.body.clone())
            .send()
            .await;
        let Ok(response) = sent else {
            return (0, None);
        };
        let status = response.status().as_u16();
        let Ok(body) = response.bytes().await else {
            return (0, None);
        };
        #[derive(serde::Deserialize)]
        struct Answered {
            version: u64,
        }
        let version = (status == 200)
            .then(|| serde_json::from_slice::<Answered>(&body).ok())
            .flatten()
            .map(|a| a.version);
        (status, version)
    }

    /// Sends request `index`, due at `due` (second `second` of the phase), and records the
    /// answer.
    async fn shoot(&self, index: usize, due: Instant, second: u32, tally: &Shared) {
        let Some(request) = self.requests.all.get(index) else {
            return;
        };
        let sent = Instant::now();
        let (status, version) = self.send(request).await;
        let micros =
            |since: Instant| u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX);
        let (from_due_us, from_sent_us) = (micros(due), micros(sent));
        let mut tally = lock(tally);
        *tally
            .statuses
            .entry(request.kind)
            .or_default()
            .entry(status)
            .or_default() += 1;
        if request.kind == Kind::Valid && status == 200 {
            tally.ok.push(Answered {
                second,
                from_due_us,
                from_sent_us,
            });
        }
        if let Some(v) = version {
            tally.first_seen.entry(v).or_insert_with(Instant::now);
        }
    }
}

/// The saturation rate, measured or given.
struct Saturation {
    rate: f64,
    /// p50 and p99 in milliseconds, and the 200s among the requests, when measured.
    measured: Option<(Option<(f64, f64)>, f64)>,
}

/// `concurrency` closed loops of valid requests for `duration`.
async fn saturate(client: &Client, concurrency: usize, duration: Duration) -> Saturation {
    let tally = Shared::default();
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for i in 0..concurrency.max(1) {
        let (client, tally) = (client.clone(), tally.clone());
        loops.spawn(async move {
            let mut rng = StdRng::seed_from_u64(i as u64);
            while started.elapsed() < duration {
                let index = client.requests.pick(&mut rng, 0.0);
                let due = Instant::now();
                let second = started.elapsed().as_secs() as u32;
                client.shoot(index, due, second, &tally).await;
            }
        });
    }
    while loops.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let tally = lock(&tally);
    let ok = tally.count(Kind::Valid, Some(200));
    let all = tally.count(Kind::Valid, None).max(1);
    let saturation = Saturation {
        rate: ok as f64 / elapsed,
        measured: Some((tally.all_percentiles(), ok as f64 / all as f64)),
    };
    eprintln!(
        "saturation: {:.0} requests/s answered 200 from {concurrency} closed loops in {elapsed:.1} s",
        saturation.rate
    );
    saturation
}

/// An open loop: requests due at `rate` per second for `duration`, sent by `connections`
/// workers (each with its connection), each request when it is due or, when every worker is
/// busy, as soon as one is free: its latency then includes the wait. Workers stop taking
/// requests at the end; those due and not taken by then are not sent.
struct OpenLoop {
    rate: f64,
    duration: Duration,
    connections: usize,
    bad_share: f64,
    seed: u64,
}

/// An open loop under way.
struct Running {
    workers: tokio::task::JoinSet<()>,
    sent: Arc<std::sync::atomic::AtomicU64>,
    due: u64,
    /// When the last request is due.
    end: Instant,
}

/// What one open loop did, besides its answers.
struct Driven {
    /// Requests due.
    due: u64,
    /// Requests due that no worker was free to take before the end.
    not_sent: u64,
    /// Whether every request sent was answered (or failed) within the time allowed.
    drained: bool,
}

impl OpenLoop {
    /// Starts the workers; returns at once.
    fn start(&self, client: &Client, tally: &Shared) -> Running {
        use std::sync::atomic::{AtomicU64, Ordering};
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let due = (self.duration.as_secs_f64() * self.rate) as u64;
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..self.connections.max(1) {
            let (client, tally, next, sent) =
                (client.clone(), tally.clone(), next.clone(), sent.clone());
            let (rate, bad_share) = (self.rate, self.bad_share);
            let mut rng = StdRng::seed_from_u64(self.seed.wrapping_mul(1000) + worker as u64);
            workers.spawn(async move {
                while started.elapsed() < Duration::from_secs_f64(due as f64 / rate) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= due {
                        break;
                    }
                    let offset = Duration::from_secs_f64(n as f64 / rate);
                    let when = started + offset;
                    if when > Instant::now() {
                        tokio::time::sleep_until(when.into()).await;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    let index = client.requests.pick(&mut rng, bad_share);
                    let second = offset.as_secs() as u32;
                    client.shoot(index, when, second, &tally).await;
                }
            });
        }
        Running {
            workers,
            sent,
            due,
            end: started + self.duration,
        }
    }

    /// Runs the loop to its end.
    async fn run(&self, client: &Client, tally: &Shared) -> Driven {
        self.start(client, tally).finish().await
    }
}

impl Running {
    /// Waits for the workers to stop (at most 30 s after the last request was due).
    async fn finish(mut self) -> Driven {
        let all = async { while self.workers.join_next().await.is_some() {} };
        let limit = self.end + Duration::from_secs(30);
        let drained = tokio::time::timeout_at(limit.into(), all).await.is_ok();
        self.workers.abort_all();
        let sent = self.sent.load(std::sync::atomic::Ordering::Relaxed);
        Driven {
            due: self.due,
            not_sent: self.due.saturating_sub(sent),
            drained,
        }
    }
}

/// The soak: mixed requests at half the saturation rate, a hot swap every `swap_every`.
async fn soak(
    args: &Args,
    client: &Client,
    server: &ServerProcess,
    registry: &LocalRegistry,
    artifact: ModelArtifact,
    saturation: &Saturation,
    seconds: f64,
) -> Result<Report> {
    let rate = saturation.rate / 2.0;
    let duration = secs(seconds);
    eprintln!(
        "soak: {rate:.0} requests/s for {seconds:.0} s, {:.0} % bad, a swap every {:.0} s",
        args.invalid_share * 100.0,
        args.swap_every
    );
    let tally = Shared::default();
    let start_memory = memory(server.pid).ok_or("cannot read the server's memory")?;
    let started = Instant::now();

    // Hot swaps: the same artifact registered again as the next version, and promoted.
    let swaps = {
        let (registry, artifact) = (registry.clone(), Arc::new(artifact));
        let every = secs(args.swap_every.max(1.0));
        tokio::spawn(async move {
            let mut promoted: Vec<(u64, Instant)> = Vec::new();
            let mut errors = Vec::new();
            let mut next = every;
            while next < duration {
                tokio::time::sleep_until((started + next).into()).await;
                next += every;
                let (registry, artifact) = (registry.clone(), artifact.clone());
                let swapped = tokio::task::spawn_blocking(move || {
                    let version = registry.register(NAME, &artifact)?;
                    registry.promote(NAME, version, PRODUCTION)?;
                    Ok::<_, lepton::deploy::DeployError>(version)
                })
                .await;
                match swapped {
                    Ok(Ok(version)) => promoted.push((version, Instant::now())),
                    Ok(Err(e)) => errors.push(e.to_string()),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (promoted, errors)
        })
    };
    // The server's memory every 10 s.
    let samples = {
        let pid = server.pid;
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while started.elapsed() < duration {
                tokio::time::sleep(Duration::from_secs(10).min(duration)).await;
                if let Some(m) = memory(pid) {
                    samples.push(m.rss_kib);
                }
            }
            samples
        })
    };
    let driven = OpenLoop {
        rate,
        duration,
        connections: args.connections,
        bad_share: args.invalid_share,
        seed: 1,
    }
    .run(client, &tally)
    .await;
    let (promoted, swap_errors) = swaps.await?;
    let samples = samples.await?;
    let end_memory = memory(server.pid).ok_or("cannot read the server's memory")?;
    // The last version promoted must answer: ask until it does (the poll is 1 s).
    let last = promoted.last().map_or(1, |(v, _)| *v);
    let asked = Shared::default();
    for _ in 0..50 {
        client.shoot(0, Instant::now(), 0, &asked).await;
        if lock(&asked).first_seen.contains_key(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last_served = lock(&asked).first_seen.contains_key(&last);

    let tally = lock(&tally);
    let lags_ms: Vec<f64> = promoted
        .iter()
        .map(|(v, at)| {
            tally.first_seen.get(v).map_or(f64::NAN, |seen| {
                seen.saturating_duration_since(*at).as_secs_f64() * 1e3
            })
        })
        .collect();
    let valid_sent = tally.count(Kind::Valid, None);
    let valid_ok = tally.count(Kind::Valid, Some(200));
    let bad_unexpected: u64 = Kind::BAD
        .iter()
        .map(|k| tally.count(*k, None) - tally.count(*k, Some(k.expected())))
        .sum();
    let max_sample = samples.iter().copied().max().unwrap_or(end_memory.rss_kib);
    let per_second = tally.p99_per_second(seconds.ceil() as u32);
    let latency = tally.all_percentiles();
    let worst = per_second
        .iter()
        .enumerate()
        .filter_map(|(s, p)| Some((s, (*p)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let mut report = Report::new(args, saturation);
    report.figures.insert(
        "soak".into(),
        json!({
            "seconds": seconds,
            "rate": rate,
            "due": driven.due,
            "not_sent": driven.not_sent,
            "drained": driven.drained,
            "valid_sent": valid_sent,
            "valid_ok": valid_ok,
            "valid_failed": valid_sent - valid_ok,
            "bad_sent": Kind::BAD.iter().map(|k| tally.count(*k, None)).sum::<u64>(),
            "bad_unexpected": bad_unexpected,
            "statuses": tally.statuses_json(),
            "p50_ms": latency.map(|p| p.0),
            "p99_ms": latency.map(|p| p.1),
            "p99_per_second_ms": per_second,
            "swaps": promoted.len(),
            "swap_errors": swap_errors,
            "swap_lag_ms": lags_ms,
            "rss_start_mib": mib(start_memory.rss_kib),
            "rss_end_mib": mib(end_memory.rss_kib),
            "rss_max_sample_mib": mib(max_sample),
            "rss_samples_mib": samples.iter().map(|k| mib(*k)).collect::<Vec<_>>(),
            "hwm_mib": mib(end_memory.hwm_kib),
        }),
    );
    let mut lines = vec![
        format!(
            "soak: {seconds:.0} s at {rate:.0} requests/s over {} connections ({} due, {} not \
             sent: no connection free in time)",
            args.connections, driven.due, driven.not_sent
        ),
        format!(
            "  valid: {valid_sent} sent, {valid_ok} answered 200, {} failed; p50 {} ms, p99 {} ms",
            valid_sent - valid_ok,
            two_places(latency.map(|p| p.0)),
            two_places(latency.map(|p| p.1)),
        ),
    ];
    if let Some((second, p99)) = worst {
        lines.push(format!(
            "  the worst second's p99: {p99:.2} ms (second {second}); swaps at {}",
            promoted
                .iter()
                .map(|(_, at)| format!(
                    "{:.0} s",
                    at.saturating_duration_since(started).as_secs_f64()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for kind in Kind::BAD {
        let by = tally.statuses.get(&kind).cloned().unwrap_or_default();
        let by: Vec<String> = by
            .iter()
            .map(|(s, n)| format!("{n} x {}", status_name(*s)))
            .collect();
        lines.push(format!(
            "  {} (want {}): {}",
            kind.name(),
            kind.expected(),
            by.join(", ")
        ));
    }
    let lags: Vec<String> = lags_ms.iter().map(|l| format!("{l:.0}")).collect();
    lines.push(format!(
        "  swaps: {}{}{}",
        promoted.len(),
        if lags.is_empty() {
            String::new()
        } else {
            format!(
                " (each version answered {} ms after its promotion)",
                lags.join(", ")
            )
        },
        if swap_errors.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", swap_errors.join("; "))
        }
    ));
    lines.push(format!(
        "  server RSS: {:.1} MiB at the start, {:.1} MiB at the end, {:.1} MiB the largest sample, \
         peak (VmHWM) {:.1} MiB",
        mib(start_memory.rss_kib),
        mib(end_memory.rss_kib),
        mib(max_sample),
        mib(end_memory.hwm_kib)
    ));
    report.lines.extend(lines);
    report.check(
        "every valid request answered 200",
        valid_sent > 0 && valid_ok == valid_sent,
    );
    report.check("every bad request got its status", bad_unexpected == 0);
    report.check("every request sent", driven.not_sent == 0);
    report.check("every request answered before the end", driven.drained);
    report.check(
        "every swap done and served",
        swap_errors.is_empty() && last_served && lags_ms.iter().all(|l| l.is_finite()),
    );
    Ok(report)
}

/// The overload: twice the saturation rate, `/healthz` every second, then the recovery.
async fn overload(
    args: &Args,
    client: &Client,
    server: &ServerProcess,
    saturation: &Saturation,
    seconds: f64,
) -> Result<Report> {
    let (rate, light) = (saturation.rate * 2.0, (saturation.rate / 20.0).max(10.0));
    let duration = secs(seconds);
    let light_loop = |duration, seed| OpenLoop {
        rate: light,
        duration,
        connections: args.connections,
        bad_share: 0.0,
        seed,
    };

    eprintln!(
        "overload: baseline at {light:.0}/s for {:.0} s",
        args.baseline_seconds
    );
    let baseline = Shared::default();
    light_loop(secs(args.baseline_seconds), 2)
        .run(client, &baseline)
        .await;
    let base_p99 = lock(&baseline)
        .all_percentiles()
        .map(|p| p.1)
        .ok_or("no baseline request was answered 200")?;

    eprintln!("overload: {rate:.0}/s for {seconds:.0} s, then {light:.0}/s");
    let health = {
        let (http, url) = (
            reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()?,
            format!("{}/healthz", client.base),
        );
        tokio::spawn(async move {
            let (mut ok, mut failed, mut slowest) = (0u64, 0u64, Duration::ZERO);
            let started = Instant::now();
            while started.elapsed() < duration {
                let asked = Instant::now();
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => ok += 1,
                    _ => failed += 1,
                }
                slowest = slowest.max(asked.elapsed());
                tokio::time::sleep_until((asked + Duration::from_secs(1)).into()).await;
            }
            (ok, failed, slowest)
        })
    };
    let loaded = Shared::default();
    let overloading = OpenLoop {
        rate,
        duration,
        connections: args.overload_connections,
        bad_share: 0.0,
        seed: 3,
    }
    .start(client, &loaded);
    tokio::time::sleep(duration).await;
    let memory_after = memory(server.pid);
    // At once, with the overload's last requests still in flight.
    let recovery = Shared::default();
    let recovery_seconds = args.recovery_seconds.max(1.0);
    let recovering = light_loop(secs(recovery_seconds), 4).start(client, &recovery);
    let driven = overloading.finish().await;
    let recovered = recovering.finish().await;
    let drained = driven.drained && recovered.drained;
    let (health_ok, health_failed, health_slowest) = health.await?;

    let loaded = lock(&loaded);
    let recovery = lock(&recovery);
    let per_second = recovery.p99_per_second(recovery_seconds.ceil() as u32);
    // The first second whose p99 is within 2x the baseline's, and how many after it are not.
    let within = |p: &Option<f64>| p.is_some_and(|p| p <= 2.0 * base_p99);
    let recovered_after_s = per_second.iter().position(within);
    let relapses =
        recovered_after_s.map_or(0, |s| per_second[s..].iter().filter(|p| !within(p)).count());
    let (latency, service) = (loaded.percentiles(false), loaded.percentiles(true));
    let sent = loaded.count(Kind::Valid, None);
    let (ok, shed) = (
        loaded.count(Kind::Valid, Some(200)),
        loaded.count(Kind::Valid, Some(503)),
    );
    let mut report = Report::new(args, saturation);
    report.figures.insert(
        "overload".into(),
        json!({
            "seconds": seconds,
            "rate": rate,
            "due": driven.due,
            "not_sent": driven.not_sent,
            "sent": sent,
            "ok": ok,
            "shed_503": shed,
            "other": sent - ok - shed,
            "statuses": loaded.statuses_json(),
            "sent_per_s": sent as f64 / seconds.max(1e-9),
            "ok_p50_ms": latency.map(|p| p.0),
            "ok_p99_ms": latency.map(|p| p.1),
            "ok_service_p50_ms": service.map(|p| p.0),
            "ok_service_p99_ms": service.map(|p| p.1),
            "healthz_ok": health_ok,
            "healthz_failed": health_failed,
            "healthz_slowest_ms": health_slowest.as_secs_f64() * 1e3,
            "light_rate": light,
            "baseline_p99_ms": base_p99,
            "recovery_p99_ms": per_second,
            "recovered_after_s": recovered_after_s,
            "seconds_above_2x_after": relapses,
            "rss_after_mib": memory_after.map(|m| mib(m.rss_kib)),
            "hwm_mib": memory_after.map(|m| mib(m.hwm_kib)),
            "drained": drained,
        }),
    );
    let statuses: Vec<String> = loaded
        .statuses
        .get(&Kind::Valid)
        .map(|by| {
            by.iter()
                .map(|(s, n)| format!("{n} x {}", status_name(*s)))
                .collect()
        })
        .unwrap_or_default();
    report.lines.extend([
        format!(
            "overload: {seconds:.0} s at {rate:.0} requests/s over {} connections ({} due, {} \
             not sent: no connection free in time)",
            args.overload_connections, driven.due, driven.not_sent
        ),
        format!(
            "  sent {:.0}/s; answers: {}; 200s from due p50 {} ms, p99 {} ms (the wait for a free \
             connection included); from sent p50 {} ms, p99 {} ms",
            sent as f64 / seconds.max(1e-9),
            statuses.join(", "),
            two_places(latency.map(|p| p.0)),
            two_places(latency.map(|p| p.1)),
            two_places(service.map(|p| p.0)),
            two_places(service.map(|p| p.1)),
        ),
        format!(
            "  /healthz every second: {health_ok} answered, {health_failed} failed (slowest {:.1} ms)",
            health_slowest.as_secs_f64() * 1e3
        ),
        format!(
            "  recovery at {light:.0}/s: p99 per second {} ms against {base_p99:.2} ms before; \
             within 2x {}",
            per_second
                .iter()
                .map(|p| two_places(*p))
                .collect::<Vec<_>>()
                .join(", "),
            recovered_after_s.map_or("never in the window".into(), |s| format!(
                "in second {} after the overload, counting from 1 ({relapses} later second(s) \
                 above)",
                s + 1
            ))
        ),
        format!(
            "  server RSS after the overload: {} MiB, peak (VmHWM) {} MiB",
            two_places(memory_after.map(|m| mib(m.rss_kib))),
            two_places(memory_after.map(|m| mib(m.hwm_kib)))
        ),
    ]);
    report.check("the server shed with 503s", shed > 0);
    // On a machine where the client shares the cores with the server it may not send what
    // is due: the overload was then less than aimed at, and this says so.
    report.check("the overload rate was sent", driven.not_sent == 0);
    report.check(
        "/healthz answered throughout",
        health_failed == 0 && health_ok > 0,
    );
    report.check(
        "p99 back within 2x in the recovery window",
        recovered_after_s.is_some(),
    );
    report.check("every request answered before the end", drained);
    Ok(report)
}

/// The 1-minute load average (Linux), if it can be read.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn two_places(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The figures, the lines for people, and the checks.
struct Report {
    figures: serde_json::Map<String, Value>,
    lines: Vec<String>,
    checks: Vec<(&'static str, bool)>,
}

impl Report {
    fn new(args: &Args, saturation: &Saturation) -> Self {
        let mut figures = serde_json::Map::new();
        let scenario = match args.scenario {
            Scenario::Saturate => "saturate",
            Scenario::Soak => "soak",
            Scenario::Overload => "overload",
        };
        figures.insert("scenario".into(), json!(scenario));
        figures.insert(
            "cores".into(),
            json!(std::thread::available_parallelism().map_or(1, |n| n.get())),
        );
        let mut lines = Vec::new();
        match saturation.measured {
            Some((percentiles, ok_share)) => {
                figures.insert(
                    "saturation".into(),
                    json!({
                        "rate": saturation.rate,
                        "concurrency": args.concurrency,
                        "seconds": args.saturate_seconds,
                        "p50_ms": percentiles.map(|p| p.0),
                        "p99_ms": percentiles.map(|p| p.1),
                        "ok_share": ok_share,
                    }),
                );
                lines.push(format!(
                    "saturation: {:.0} requests/s at c={} ({:.0} s; p50 {} ms, p99 {} ms; {:.2} % \
                     answered 200)",
                    saturation.rate,
                    args.concurrency,
                    args.saturate_seconds,
                    two_places(percentiles.map(|p| p.0)),
                    two_places(percentiles.map(|p| p.1)),
                    ok_share * 100.0
                ));
            }
            None => {
                figures.insert("saturation".into(), json!({"rate": saturation.rate}));
                lines.push(format!(
                    "saturation: {:.0} requests/s (given)",
                    saturation.rate
                ));
            }
        }
        figures.insert(
            "notes".into(),
            json!(
                "the client runs in this process on the same cores as the server and takes a \
                 share of them; open-loop latency runs from when a request was due"
            ),
        );
        Report {
            figures,
            lines,
            checks: Vec::new(),
        }
    }

    fn check(&mut self, what: &'static str, passed: bool) {
        self.checks.push((what, passed));
    }

    fn passed(&self) -> bool {
        self.checks.iter().all(|(_, p)| *p)
    }

    fn print(&mut self, json: bool) {
        for line in &self.lines {
            println!("{line}");
        }
        let (start, end) = (
            self.figures["load_average_at_start"].clone(),
            json!(load_average()),
        );
        println!(
            "note: the client shares the machine's {} cores with the server; open-loop \
             latencies run from when each request was due; 1-minute load average {start} at the \
             start, {end} at the end (anything else running shows in the figures)",
            self.figures["cores"]
        );
        self.figures.insert("load_average_at_end".into(), end);
        for (what, passed) in &self.checks {
            println!("{} {what}", if *passed { "PASS" } else { "FAIL" });
        }
        if json {
            let checks: serde_json::Map<String, Value> = self
                .checks
                .iter()
                .map(|(w, p)| ((*w).to_owned(), json!(p)))
                .collect();
            self.figures.insert("checks".into(), Value::Object(checks));
            println!("{}", Value::Object(self.figures.clone()));
        }
    }
}
