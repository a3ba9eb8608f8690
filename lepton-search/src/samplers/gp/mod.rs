//! Gaussian-process Bayesian optimization, the most sample-efficient sampler for budgets of
//! tens to a few hundred trials.
//!
//! The model, as Optuna's `GPSampler`:
//!
//! - numeric parameters live in the unit cube (log scales through the logarithm, integers and
//!   stepped floats as equal cells); categorical parameters enter the kernel by a Hamming
//!   distance, so no order is invented between choices;
//! - a Matérn 5/2 kernel with one lengthscale per parameter (ARD), a kernel scale and a noise
//!   variance, fitted by maximizing the marginal likelihood plus weak priors (L-BFGS from
//!   argmin, analytic gradients, warm-started from the previous trial's fit);
//! - the objective is standardized; the next point maximizes the logarithm of expected
//!   improvement (stable far into the tail) from the best trial and the most promising of
//!   several hundred random points: L-BFGS moves the continuous parameters, while integer,
//!   stepped and categorical ones only ever take values on their grids (every value when
//!   there are few, else moves of 1, 2, 4, ... steps), the two in turn until neither moves.
//!
//! Dense linear algebra (Cholesky factorization, triangular solves) is nalgebra's.
//!
//! The submodules: `data` (the trials in the unit cube), `kernel` (Matérn 5/2 and its
//! hyper-parameters), `likelihood` (their fit), `lbfgs` (argmin's L-BFGS on a function with
//! its gradient), `acquisition` (the posterior and log-EI) and `proposal` (maximizing it).

mod acquisition;
mod data;
mod kernel;
mod lbfgs;
mod likelihood;
mod proposal;
#[cfg(test)]
mod tests;

use std::sync::Mutex;

use rand::SeedableRng;
use rand::rngs::StdRng;

use lepton_core::{Distribution, History, JointSample, ParamValue, Result, Sampler, TrialState};

use super::{RandomSampler, stream_seed, unit};
use acquisition::Posterior;
use data::Data;
use kernel::Hyper;
use likelihood::fit_hyper;
use proposal::maximize_log_ei;

/// The Gaussian-process sampler. Deterministic for a seed in sequential studies.
///
/// ```
/// use lepton_search::{GpSampler, Study};
/// use lepton_core::Scale;
///
/// let study = Study::builder("gp").with_sampler(GpSampler::new(1)).build()?;
/// study.optimize(25, |t| {
///     let x = t.suggest_float("x", -5.0, 5.0, Scale::Linear)?;
///     let y = t.suggest_float("y", -5.0, 5.0, Scale::Linear)?;
///     Ok((x - 1.0).powi(2) + (y + 2.0).powi(2))
/// })?;
/// assert!(study.best_trial()?.unwrap().value.unwrap() < 0.05);
/// # Ok::<(), lepton_core::Error>(())
/// ```
#[derive(Debug)]
pub struct GpSampler {
    seed: u64,
    n_startup_trials: usize,
    deterministic: bool,
    n_candidates: usize,
    n_local_starts: usize,
    max_fit_points: usize,
    refit_growth: f64,
    refit_every_until: usize,
    random: RandomSampler,
    last_fit: Mutex<Option<LastFit>>,
}

/// The last kernel fit: its space, the number of trials it saw and its raw hyper-parameters.
type LastFit = (Vec<(String, Distribution)>, usize, Vec<f64>);

impl GpSampler {
    /// Optuna's defaults: 10 random start-up trials, a noise variance fitted with the kernel.
    pub fn new(seed: u64) -> Self {
        GpSampler {
            seed,
            n_startup_trials: 10,
            deterministic: false,
            n_candidates: 2048,
            n_local_starts: 10,
            max_fit_points: 160,
            refit_growth: 0.1,
            refit_every_until: 200,
            random: RandomSampler::new(seed),
            last_fit: Mutex::new(None),
        }
    }

    /// Past `every_until` trials (default 200), refits the kernel only once the trials have
    /// grown by `fraction` since the last fit (default 0.1: every ~50th trial at 500), reusing
    /// the last hyper-parameters as they are in between; up to `every_until` every trial
    /// refits, as Optuna does. The posterior always conditions on every trial. A fit costs
    /// more than the rest of a trial (see `docs/benchmarks.md`), hence the schedule.
    pub fn with_refit_schedule(mut self, every_until: usize, fraction: f64) -> Self {
        self.refit_every_until = every_until;
        if fraction.is_finite() && fraction >= 0.0 {
            self.refit_growth = fraction;
        }
        self
    }

    /// Random trials before the model takes over (at least 2).
    pub fn with_n_startup_trials(mut self, n: usize) -> Self {
        self.n_startup_trials = n.max(2);
        self
    }

    /// Declares the objective noise-free: the noise variance stays at its minimum instead of
    /// being fitted.
    pub fn with_deterministic_objective(mut self, on: bool) -> Self {
        self.deterministic = on;
        self
    }

    /// Random points scored before the local searches (at least 16; default 2048, as Optuna;
    /// past 100 trials the number shrinks with the square of the trials, to 256 at least).
    pub fn with_n_candidates(mut self, n: usize) -> Self {
        self.n_candidates = n.max(16);
        self
    }

    /// Trials the kernel's hyper-parameters are fitted on, at most (the best half and a
    /// seeded random half of the rest; default 160). The posterior always uses every trial.
    pub fn with_max_fit_points(mut self, n: usize) -> Self {
        self.max_fit_points = n.max(8);
        self
    }
}

impl Default for GpSampler {
    fn default() -> Self {
        GpSampler::new(0)
    }
}

impl Sampler for GpSampler {
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        self.random
            .sample(history, trial_number, name, distribution)
    }

    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        let complete = history
            .trials()
            .iter()
            .filter(|t| t.state == TrialState::Complete)
            .count();
        if complete < self.n_startup_trials {
            return Ok(JointSample::new());
        }
        let dims: Vec<(String, Distribution)> = history.intersection_space().into_iter().collect();
        if dims.is_empty() {
            return Ok(JointSample::new());
        }
        let Some(data) = Data::read(history, &dims) else {
            return Ok(JointSample::new());
        };
        let mut rng = StdRng::seed_from_u64(stream_seed(self.seed, trial_number, "gp"));

        // As Optuna: each trial refits the kernel, warm-started from the previous fit (past
        // `refit_every_until` trials, only once the trials have grown by `refit_growth`).
        let mut last_fit = self
            .last_fit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = data.n();
        let theta = match &*last_fit {
            Some((space, fitted_at, theta))
                if *space == dims
                    && n > self.refit_every_until
                    && n >= *fitted_at
                    && (n as f64) < *fitted_at as f64 * (1.0 + self.refit_growth) =>
            {
                theta.clone()
            }
            previous => {
                let start = match previous {
                    Some((space, _, theta)) if *space == dims => theta.clone(),
                    _ => Hyper::initial(data.d()),
                };
                let fit_data = data.subset(&data.fit_subset(self.max_fit_points, &mut rng));
                let theta = fit_hyper(&fit_data, start, self.deterministic);
                *last_fit = Some((dims.clone(), n, theta.clone()));
                theta
            }
        };
        drop(last_fit);

        let Some(posterior) = Posterior::new(&data, Hyper::from_raw(&theta, self.deterministic))
        else {
            return Ok(JointSample::new());
        };
        let x = maximize_log_ei(&posterior, &data, &dims, self, &mut rng);
        Ok(dims
            .iter()
            .zip(&x)
            .map(|((name, d), u)| (name.clone(), (d.clone(), decode(d, *u))))
            .collect())
    }
}

/// The value of a coordinate: a unit-cube position, or a choice index.
fn decode(d: &Distribution, x: f64) -> ParamValue {
    match d {
        Distribution::Categorical { .. } => d.from_internal(x),
        _ => unit::from_unit(d, x),
    }
}
