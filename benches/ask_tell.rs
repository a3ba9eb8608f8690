//! Per-trial overhead of Lepton's samplers: one `ask`, ten `suggest_float`s and one `tell`
//! on a study that already holds N complete trials (in memory).
//!
//! This is the Rust half of the comparison with Optuna and Rustuna; the Python half is
//! `benches/ask_tell_python.py` and uses the same problem: ten floats `x0..x9` uniform in
//! `[-5, 5]`, objective `sum (x_i - 1)^2` (minimized), a history of N complete trials drawn
//! uniformly (here from a seeded `StdRng`; Python's from numpy's `default_rng(0)`: the same
//! distribution, not the same numbers).
//!
//! ```text
//! cargo bench --bench ask_tell                 # all
//! cargo bench --bench ask_tell -- 'tpe/1000'   # one
//! ```
//!
//! Every measured cycle runs on a fresh snapshot of the prefilled study (a cheap clone of the
//! in-memory storage), so the history holds N trials, while the sampler instance is shared
//! across cycles, as across the trials of one study: what it has learned stays learned, as
//! Optuna's and Rustuna's caches do in the Python half. The GP alternates between N and N + 1
//! trials, so that its warm start is one trial out of date, as in a study.

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use lepton::core::{Direction, Distribution, ParamValue, Sampler, Scale, Storage, TrialState};
use lepton::search::{GpSampler, InMemoryStorage, RandomSampler, Study, TpeSampler};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIMS: usize = 10;
const STUDY: &str = "ask-tell";

fn objective(x: &[f64]) -> f64 {
    x.iter().map(|v| (v - 1.0).powi(2)).sum()
}

fn names() -> Vec<String> {
    (0..DIMS).map(|i| format!("x{i}")).collect()
}

/// A storage holding one study of `n` complete trials.
fn prefilled(n: usize) -> InMemoryStorage {
    let storage = InMemoryStorage::new();
    let d = Distribution::float(-5.0, 5.0, Scale::Linear);
    let mut rng = StdRng::seed_from_u64(0);
    let mut fill = || -> lepton::core::Result<()> {
        storage.create_study(STUDY, Direction::Minimize)?;
        for _ in 0..n {
            let number = storage.create_trial(STUDY)?;
            let x: Vec<f64> = (0..DIMS).map(|_| rng.random_range(-5.0..=5.0)).collect();
            for (name, v) in names().iter().zip(&x) {
                storage.set_param(STUDY, number, name, &d, &ParamValue::Float(*v))?;
            }
            storage.finish_trial(STUDY, number, TrialState::Complete, Some(objective(&x)))?;
        }
        Ok(())
    };
    if let Err(e) = fill() {
        eprintln!("cannot prefill the bench study: {e}");
        std::process::exit(1);
    }
    storage
}

fn cycle(study: &Study, names: &[String]) {
    let mut trial = study.ask().unwrap_or_else(fail);
    let mut x = [0.0; DIMS];
    for (v, name) in x.iter_mut().zip(names) {
        *v = trial
            .suggest_float(name, -5.0, 5.0, Scale::Linear)
            .unwrap_or_else(fail);
    }
    study.tell(trial, Ok(objective(&x))).unwrap_or_else(fail);
}

fn fail<T>(e: lepton::core::Error) -> T {
    eprintln!("bench cycle failed: {e}");
    std::process::exit(1)
}

/// How cycles meet the sampler.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// One sampler for every cycle, every cycle on the same N trials.
    Shared,
    /// One sampler, cycles alternating between N and N + 1 trials, so that what the sampler
    /// kept from its last call is one trial out of date, as in a study's next trial.
    Alternating,
    /// A new sampler for every cycle: nothing learnt yet.
    Fresh,
}

fn bench_sampler(
    c: &mut Criterion,
    label: &str,
    make: impl Fn() -> Arc<dyn Sampler>,
    mode: Mode,
    sizes: &[usize],
    samples: usize,
) {
    let sampler = make();
    let mut group = c.benchmark_group(format!("ask_tell/{label}"));
    group.sample_size(samples);
    group.measurement_time(Duration::from_secs(5));
    let names = names();
    for &n in sizes {
        let template = prefilled(n);
        let next = prefilled(n + 1);
        let turn = std::cell::Cell::new(false);
        // One untimed cycle, so the sampler has read the N trials before timing starts.
        let warm = Study::builder(STUDY)
            .with_sampler(Arc::clone(&sampler))
            .with_storage(Arc::new(template.clone()))
            .build()
            .unwrap_or_else(fail);
        cycle(&warm, &names);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || {
                    let sampler = match mode {
                        Mode::Fresh => make(),
                        Mode::Shared | Mode::Alternating => Arc::clone(&sampler),
                    };
                    turn.set(!turn.get());
                    let storage = if mode == Mode::Alternating && turn.get() {
                        next.clone()
                    } else {
                        template.clone()
                    };
                    Study::builder(STUDY)
                        .with_sampler(sampler)
                        .with_storage(Arc::new(storage))
                        .build()
                        .unwrap_or_else(fail)
                },
                |study| cycle(&study, &names),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn ask_tell(c: &mut Criterion) {
    let sizes = [100, 1_000, 10_000];
    let random = || -> Arc<dyn Sampler> { Arc::new(RandomSampler::new(0)) };
    let tpe = || -> Arc<dyn Sampler> { Arc::new(TpeSampler::new(0)) };
    let gp = || -> Arc<dyn Sampler> { Arc::new(GpSampler::new(0)) };
    bench_sampler(c, "random", random, Mode::Shared, &sizes, 30);
    bench_sampler(c, "tpe", tpe, Mode::Shared, &sizes, 30);
    // The GP refits its kernel on every trial, warm-started from its last fit: `gp` is a
    // study's next trial (the last fit one trial out of date), `gp-cold` a first fit.
    bench_sampler(c, "gp", gp, Mode::Alternating, &[100, 500], 10);
    bench_sampler(c, "gp-cold", gp, Mode::Fresh, &[100, 500], 10);
}

criterion_group!(benches, ask_tell);
criterion_main!(benches);
