//! `lepton worker`: one worker process of a study shared through a storage, running one of
//! the benchmark problems. Start as many as you like, on as many machines as reach the
//! storage; they fill the study to its total between them.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lepton::core::{Direction, FrozenTrial, Pruner, Sampler};
use lepton::search::problems::Problem;
use lepton::search::samplers::BohbSampler;
use lepton::search::{
    DEFAULT_HEARTBEAT_GRACE, DEFAULT_HEARTBEAT_INTERVAL, HyperbandPruner, Observe, OptimizeOptions,
    Study, pruners, samplers, storage,
};

/// What one worker runs.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Storage URL (sqlite://PATH, postgres://...; memory: for a worker on its own).
    #[arg(long)]
    storage: String,
    /// Study name; the study is created if it is missing.
    #[arg(long)]
    study: String,
    /// The problem to minimize: branin, hartmann6, rosenbrock5, mixed6, or curves (synthetic
    /// learning curves reported at every step, for pruners).
    #[arg(long)]
    objective: String,
    /// Sampler: random, sobol, tpe, tpe-indep, tpe-group, gp, gp-deterministic, cmaes.
    #[arg(long, default_value = "tpe")]
    sampler: String,
    /// Pruner: none, median, asha (asynchronous successive halving), hyperband, or bohb
    /// (Hyperband's pruning with the BOHB sampler, which then replaces --sampler).
    #[arg(long, default_value = "none")]
    pruner: String,
    /// The study's total number of trials, shared by all workers (failed trials excepted).
    #[arg(long)]
    trials: u64,
    /// Sampler seed (default: from the process id and the clock, so workers differ).
    #[arg(long)]
    seed: Option<u64>,
    /// How often a running trial's heartbeat is refreshed, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_HEARTBEAT_INTERVAL.as_millis() as u64)]
    heartbeat_ms: u64,
    /// How old a running trial's heartbeat may be before any worker fails it, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_HEARTBEAT_GRACE.as_millis() as u64)]
    grace_ms: u64,
    /// How many times a configuration whose worker died is tried again.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Time each evaluation takes, in milliseconds (stands in for a costlier objective).
    #[arg(long, default_value_t = 0)]
    trial_ms: u64,
    /// Starts no trial after this many seconds.
    #[arg(long)]
    timeout_s: Option<f64>,
    /// Prints no line per trial.
    #[arg(long)]
    quiet: bool,
}

/// One finished trial, as the worker prints it (one JSON object per line on stdout).
#[derive(serde::Serialize)]
struct TrialLine<'a> {
    worker: u32,
    number: u64,
    state: &'a str,
    value: Option<f64>,
    /// From the end of this worker's previous trial (or its start) to the start of this
    /// trial's objective: sweeping stale trials, reading the study, sampling, creating.
    ask_ms: f64,
    /// When the trial's outcome was stored, in seconds since the Unix epoch.
    finished_at: f64,
}

/// Runs the worker until the study holds its total; prints a summary on stderr.
pub fn run(args: WorkerArgs) -> Result<(), Box<dyn std::error::Error>> {
    let problem = Problem::by_name(&args.objective)?;
    let seed = args.seed.unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    let (sampler, pruner): (Box<dyn Sampler>, Box<dyn Pruner>) = match args.pruner.as_str() {
        "bohb" => (
            Box::new(BohbSampler::new(seed)),
            Box::new(HyperbandPruner::new()),
        ),
        name => (
            samplers::by_name(&args.sampler, seed)?,
            pruners::by_name(name)?,
        ),
    };
    let study = Study::builder(&args.study)
        .with_direction(Direction::Minimize)
        .with_storage(storage::open(&args.storage)?)
        .with_sampler(sampler)
        .with_pruner(pruner)
        .with_heartbeat(Duration::from_millis(args.heartbeat_ms))
        .with_heartbeat_grace(Duration::from_millis(args.grace_ms))
        .with_stale_retries(args.retries)
        .build()?;
    let mut options = OptimizeOptions::study_total(args.trials).with_observe(Observe::Always);
    if let Some(t) = args.timeout_s {
        options = options.with_timeout(Duration::try_from_secs_f64(t)?);
    }
    let worker = std::process::id();
    // This worker is one thread: the objective of one trial starts after the previous
    // trial's record reached the observer.
    let previous_end = Mutex::new(Instant::now());
    let ask_ms = Mutex::new(0.0);
    let mut asks = Vec::new();
    let delay = Duration::from_millis(args.trial_ms);
    let stdout = std::io::stdout();
    let mut write_error = None;
    study.optimize_with_options(
        options,
        |trial| {
            let waited = lock(&previous_end).elapsed();
            *lock(&ask_ms) = waited.as_secs_f64() * 1e3;
            std::thread::sleep(delay);
            problem.evaluate(trial)
        },
        |record: &FrozenTrial| {
            let ask = *lock(&ask_ms);
            asks.push(ask);
            if !args.quiet {
                let line = TrialLine {
                    worker,
                    number: record.number,
                    state: record.state.as_str(),
                    value: record.value,
                    ask_ms: ask,
                    finished_at: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                };
                let mut out = stdout.lock();
                let written = serde_json::to_string(&line)
                    .map_err(std::io::Error::other)
                    .and_then(|text| writeln!(out, "{text}"))
                    .and_then(|()| out.flush());
                if let Err(e) = written {
                    write_error.get_or_insert(e);
                }
            }
            *lock(&previous_end) = Instant::now();
        },
    )?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    asks.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        asks.get(((asks.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    eprintln!(
        "worker {worker}: {} trials; ask latency median {:.2} ms, p99 {:.2} ms",
        asks.len(),
        quantile(0.5),
        quantile(0.99)
    );
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
