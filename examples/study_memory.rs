//! Memory target: a study of 100,000 trials (random sampler, in-memory storage, ten float
//! parameters each) stays under 200 MB resident.
//!
//! ```text
//! cargo run --release --example study_memory -- --trials 100000 [--limit-mb 200]
//! ```
//!
//! Prints the trial count, the wall time and the process's peak resident set size (`VmHWM` in
//! `/proc/self/status`, Linux only), and exits with status 1 when the peak is over the limit.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use lepton::core::{Scale, Storage};
use lepton::search::{InMemoryStorage, RandomSampler, Study};

/// The parameters each trial suggests.
const PARAMS: [&str; 10] = ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"];

#[derive(Parser)]
#[command(about = "Peak memory of a long in-memory study")]
struct Args {
    /// Trials to run.
    #[arg(long, default_value_t = 100_000)]
    trials: usize,
    /// Fail when the peak resident set size is over this many MB (10^6 bytes).
    #[arg(long, default_value_t = 200)]
    limit_mb: u64,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the study; `Ok(false)` when the peak is over the limit.
fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let storage = Arc::new(InMemoryStorage::new());
    let study = Study::builder("memory")
        .with_sampler(RandomSampler::new(0))
        .with_storage(Arc::clone(&storage) as Arc<dyn Storage>)
        .build()?;
    let started = Instant::now();
    study.optimize(args.trials, |trial| {
        let mut sum = 0.0;
        for name in PARAMS {
            let x = trial.suggest_float(name, -5.0, 5.0, Scale::Linear)?;
            sum += x * x;
        }
        Ok(sum)
    })?;
    let elapsed = started.elapsed();
    // Counted from the shared records: cloning 100,000 trials would itself raise the peak.
    let count = storage.trials_shared(study.name())?.len();
    let peak_kb = peak_rss_kb()?;
    let peak_mb = peak_kb as f64 * 1024.0 / 1e6;
    println!("trials: {count}");
    println!("wall time: {:.1} s", elapsed.as_secs_f64());
    println!(
        "peak RSS (VmHWM): {peak_kb} kB = {peak_mb:.1} MB (limit {} MB)",
        args.limit_mb
    );
    let within = peak_mb <= args.limit_mb as f64;
    if !within {
        eprintln!("peak RSS over the limit");
    }
    Ok(within)
}

/// The process's peak resident set size in kB, from `/proc/self/status`.
fn peak_rss_kb() -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .ok_or("no VmHWM line in /proc/self/status")?;
    let kb = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb)
}
