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

use std::cell::RefCell;
use std::f64::consts::PI;
use std::sync::Mutex;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use lepton_core::{
    Direction, Distribution, History, JointSample, ParamValue, Result, Sampler, TrialState,
};

use super::{RandomSampler, gauss, stream_seed, unit};

/// The smallest noise variance the model allows (on the standardized objective).
const MIN_NOISE: f64 = 1e-6;
const SQRT5: f64 = 2.236_067_977_499_79;

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

/// The complete trials on the model's coordinates, with the objective standardized as a
/// loss (lower is better).
#[derive(Debug, Clone)]
struct Data {
    categorical: Vec<bool>,
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
}

impl Data {
    fn read(history: &History, dims: &[(String, Distribution)]) -> Option<Data> {
        let sign = match history.direction() {
            Direction::Minimize => 1.0,
            Direction::Maximize => -1.0,
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        for t in history.completed() {
            let row: Option<Vec<f64>> = dims
                .iter()
                .map(|(name, d)| {
                    let v = t.params.get(name.as_str())?;
                    match d {
                        Distribution::Categorical { .. } => d.to_internal(v),
                        _ => unit::to_unit(d, v),
                    }
                })
                .collect();
            if let (Some(row), Some(v)) = (row, t.value) {
                x.push(row);
                y.push(sign * v);
            }
        }
        if x.len() < 2 {
            return None;
        }
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let sd = if sd > 1e-12 { sd } else { 1.0 };
        Some(Data {
            categorical: dims
                .iter()
                .map(|(_, d)| matches!(d, Distribution::Categorical { .. }))
                .collect(),
            x,
            y: y.iter().map(|v| (v - mean) / sd).collect(),
        })
    }

    fn d(&self) -> usize {
        self.categorical.len()
    }

    fn n(&self) -> usize {
        self.y.len()
    }

    /// Rows to fit the hyper-parameters on: all of them up to `max`, else the best half and a
    /// random half of the rest.
    fn fit_subset(&self, max: usize, rng: &mut StdRng) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n()).collect();
        if self.n() <= max {
            return order;
        }
        order.sort_by(|&a, &b| self.y[a].total_cmp(&self.y[b]));
        let mut rest = order.split_off(max / 2);
        rest.shuffle(rng);
        order.extend(rest.into_iter().take(max - max / 2));
        order
    }

    fn subset(&self, rows: &[usize]) -> Data {
        Data {
            categorical: self.categorical.clone(),
            x: rows.iter().map(|&i| self.x[i].clone()).collect(),
            y: rows.iter().map(|&i| self.y[i]).collect(),
        }
    }

    /// Per-dimension squared differences between two points (Hamming for choices).
    fn sq_diff(&self, a: &[f64], b: &[f64], d: usize) -> f64 {
        if self.categorical[d] {
            if a[d] == b[d] { 0.0 } else { 1.0 }
        } else {
            (a[d] - b[d]).powi(2)
        }
    }
}

/// The kernel's hyper-parameters on their natural scale.
#[derive(Debug, Clone)]
struct Hyper {
    /// Inverse squared lengthscale of each dimension.
    inv_sq: Vec<f64>,
    scale: f64,
    noise: f64,
}

impl Hyper {
    /// The raw (log-space) starting point, Optuna's: unit lengthscales, scale and noise.
    fn initial(d: usize) -> Vec<f64> {
        let mut theta = vec![0.0; d + 2];
        theta[d + 1] = (1.0 - MIN_NOISE).ln();
        theta
    }

    fn from_raw(theta: &[f64], deterministic: bool) -> Hyper {
        let d = theta.len() - 2;
        Hyper {
            inv_sq: theta[..d].iter().map(|t| t.exp()).collect(),
            scale: theta[d].exp(),
            noise: if deterministic {
                MIN_NOISE
            } else {
                MIN_NOISE + theta[d + 1].exp()
            },
        }
    }

    fn r2(&self, data: &Data, a: &[f64], b: &[f64]) -> f64 {
        (0..a.len())
            .map(|d| self.inv_sq[d] * data.sq_diff(a, b, d))
            .sum()
    }
}

/// Matérn 5/2 as a function of the scaled squared distance.
fn matern52(r2: f64) -> f64 {
    let r = r2.sqrt();
    (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * (-SQRT5 * r).exp()
}

/// `-(5/6) (1 + sqrt5 r) exp(-sqrt5 r)`: the derivative of Matérn 5/2 with respect to `r^2`.
fn matern52_d_r2(r2: f64) -> f64 {
    let r = r2.sqrt();
    -5.0 / 6.0 * (1.0 + SQRT5 * r) * (-SQRT5 * r).exp()
}

/// The trials' scaled squared distances and their noise-free kernel matrix.
fn kernel_matrices(data: &Data, h: &Hyper) -> (DMatrix<f64>, DMatrix<f64>) {
    let n = data.n();
    let mut r2 = DMatrix::<f64>::zeros(n, n);
    let mut k = DMatrix::<f64>::zeros(n, n);
    for i in 0..n {
        for j in 0..i {
            let d = h.r2(data, &data.x[i], &data.x[j]);
            let v = h.scale * matern52(d);
            r2[(i, j)] = d;
            r2[(j, i)] = d;
            k[(i, j)] = v;
            k[(j, i)] = v;
        }
        k[(i, i)] = h.scale;
    }
    (r2, k)
}

/// `k` with `noise` added to its diagonal.
fn noisy(mut k: DMatrix<f64>, noise: f64) -> DMatrix<f64> {
    for i in 0..k.nrows() {
        k[(i, i)] += noise;
    }
    k
}

fn cholesky(mut k: DMatrix<f64>) -> Option<nalgebra::Cholesky<f64, nalgebra::Dyn>> {
    let mut jitter = 0.0;
    for _ in 0..6 {
        if let Some(c) = k.clone().cholesky() {
            return Some(c);
        }
        let add = if jitter == 0.0 { 1e-9 } else { jitter * 9.0 };
        for i in 0..k.nrows() {
            k[(i, i)] += add;
        }
        jitter += add;
    }
    None
}

/// Negative log marginal likelihood minus log prior, and its gradient in raw coordinates.
fn objective(data: &Data, theta: &[f64], deterministic: bool) -> Option<(f64, Vec<f64>)> {
    let h = Hyper::from_raw(theta, deterministic);
    let n = data.n();
    let d = data.d();
    let (r2, base) = kernel_matrices(data, &h);
    let chol = cholesky(noisy(base.clone(), h.noise))?;
    let y = DVector::from_column_slice(&data.y);
    let alpha = chol.solve(&y);
    let log_det: f64 = chol.l_dirty().diagonal().iter().map(|v| v.ln()).sum();
    let nll = 0.5 * y.dot(&alpha) + log_det + 0.5 * n as f64 * (2.0 * PI).ln();
    // Priors (Optuna's): on each inverse squared lengthscale s, -(0.1/s + 0.1 s); on the scale,
    // Gamma(2, 1); on the noise, Gamma(1.1, 30).
    let mut log_prior: f64 = h.inv_sq.iter().map(|s| -(0.1 / s + 0.1 * s)).sum();
    log_prior += h.scale.ln() - h.scale;
    if !deterministic {
        log_prior += 0.1 * h.noise.ln() - 30.0 * h.noise;
    }

    // d nll / d theta = -1/2 tr(W dK/dtheta), W = alpha alpha^T - K^-1.
    let k_inv = chol.inverse();
    let mut grad = vec![0.0; d + 2];
    let mut tr_scale = 0.0;
    let mut tr_noise = 0.0;
    for i in 0..n {
        let w_ii = alpha[i] * alpha[i] - k_inv[(i, i)];
        tr_scale += w_ii * base[(i, i)];
        tr_noise += w_ii;
        for j in 0..i {
            let w = 2.0 * (alpha[i] * alpha[j] - k_inv[(i, j)]);
            tr_scale += w * base[(i, j)];
            let common = w * h.scale * matern52_d_r2(r2[(i, j)]);
            for (dim, g) in grad.iter_mut().enumerate().take(d) {
                *g += common * h.inv_sq[dim] * data.sq_diff(&data.x[i], &data.x[j], dim);
            }
        }
    }
    for (dim, g) in grad.iter_mut().enumerate().take(d) {
        let s = h.inv_sq[dim];
        *g = -0.5 * *g - (0.1 / s - 0.1 * s);
    }
    grad[d] = -0.5 * tr_scale - (1.0 - h.scale);
    grad[d + 1] = if deterministic {
        0.0
    } else {
        let e = theta[d + 1].exp();
        -0.5 * tr_noise * e - (0.1 / h.noise - 30.0) * e
    };
    let value = nll - log_prior;
    value.is_finite().then_some((value, grad))
}

/// A point, the cost there and its gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// An argmin problem whose cost and gradient come from one evaluation, cached.
struct Cached<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> {
    f: F,
    last: RefCell<Option<Evaluation>>,
}

impl<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> Cached<F> {
    fn new(f: F) -> Self {
        Cached {
            f,
            last: RefCell::new(None),
        }
    }

    fn eval(&self, p: &[f64]) -> std::result::Result<(f64, Vec<f64>), argmin::core::Error> {
        if let Some((q, v, g)) = &*self.last.borrow()
            && q == p
        {
            return Ok((*v, g.clone()));
        }
        let (v, g) =
            (self.f)(p).ok_or_else(|| argmin::core::Error::msg("not finite at this point"))?;
        *self.last.borrow_mut() = Some((p.to_vec(), v, g.clone()));
        Ok((v, g))
    }
}

impl<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> CostFunction for Cached<F> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.eval(p)?.0)
    }
}

impl<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> Gradient for Cached<F> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(p)?.1)
    }
}

/// Minimizes `f` from `start` with L-BFGS; returns the best point seen (`start` if the
/// solver fails outright).
fn lbfgs<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>>(
    f: F,
    start: Vec<f64>,
    iters: u64,
    tol_grad: f64,
) -> Vec<f64> {
    let problem = Cached::new(f);
    let Ok(start_value) = problem.eval(&start).map(|(v, _)| v) else {
        return start;
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7);
    let solver = match solver.clone().with_tolerance_grad(tol_grad) {
        Ok(s) => s,
        Err(_) => solver,
    };
    let run = Executor::new(problem, solver)
        .configure(|state| state.param(start.clone()).max_iters(iters))
        .run();
    match run {
        Ok(result) => {
            let state = result.state();
            match state.get_best_param() {
                Some(p) if state.get_best_cost() <= start_value => p.clone(),
                _ => start,
            }
        }
        Err(_) => start,
    }
}

/// Raw hyper-parameters stay within `[-LIMIT, LIMIT]` (lengthscales within e^±6 of the unit
/// cube, the kernel scale likewise), except the noise's, which may go down to `NOISE_LOW`:
/// its value is `MIN_NOISE + e^raw`, and a deterministic objective wants it at the minimum
/// (a floor of e^-12 = 6e-6 measurably blurred the model near the optimum).
const LIMIT: f64 = 12.0;
const NOISE_LOW: f64 = -40.0;

/// `theta` moved into the box.
fn clamp_raw(theta: &[f64]) -> Vec<f64> {
    let last = theta.len().saturating_sub(1);
    theta
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let low = if i == last { NOISE_LOW } else { -LIMIT };
            v.clamp(low, LIMIT)
        })
        .collect()
}

/// Fits the kernel's raw hyper-parameters, from `start`. Outside the box the objective is
/// evaluated at the nearest point inside plus a steep quadratic wall, so line searches that
/// overshoot come back instead of failing.
fn fit_hyper(data: &Data, start: Vec<f64>, deterministic: bool) -> Vec<f64> {
    let theta = lbfgs(
        |t| {
            let inside = clamp_raw(t);
            let (value, mut grad) = objective(data, &inside, deterministic)?;
            let mut wall = 0.0;
            for ((g, v), c) in grad.iter_mut().zip(t).zip(&inside) {
                let excess = v - c;
                if excess != 0.0 {
                    wall += 1e3 * excess * excess;
                    *g = 2e3 * excess;
                }
            }
            Some((value + wall, grad))
        },
        clamp_raw(&start),
        50,
        // Optuna's gtol: a tighter fit costs more than it gains.
        1e-2,
    );
    clamp_raw(&theta)
}

/// The model conditioned on every complete trial.
struct Posterior {
    data: Data,
    h: Hyper,
    l: DMatrix<f64>,
    alpha: DVector<f64>,
    best: f64,
}

impl Posterior {
    fn new(data: &Data, h: Hyper) -> Option<Posterior> {
        let chol = cholesky(noisy(kernel_matrices(data, &h).1, h.noise))?;
        let alpha = chol.solve(&DVector::from_column_slice(&data.y));
        let best = data.y.iter().copied().fold(f64::INFINITY, f64::min);
        Some(Posterior {
            data: data.clone(),
            h,
            l: chol.unpack(),
            alpha,
            best,
        })
    }

    fn k_star(&self, x: &[f64]) -> DVector<f64> {
        DVector::from_iterator(
            self.data.n(),
            self.data
                .x
                .iter()
                .map(|xi| self.h.scale * matern52(self.h.r2(&self.data, x, xi))),
        )
    }

    /// Log expected improvement at each of `points` (batched triangular solve).
    fn log_ei_many(&self, points: &[Vec<f64>]) -> Vec<f64> {
        let n = self.data.n();
        let mut ks = DMatrix::<f64>::zeros(n, points.len());
        for (c, p) in points.iter().enumerate() {
            ks.set_column(c, &self.k_star(p));
        }
        let mu = ks.tr_mul(&self.alpha);
        let mut v = ks;
        if !self.l.solve_lower_triangular_mut(&mut v) {
            return vec![f64::NEG_INFINITY; points.len()];
        }
        (0..points.len())
            .map(|c| {
                let var = (self.h.scale - v.column(c).norm_squared()).max(1e-12);
                log_ei(mu[c], var.sqrt(), self.best).0
            })
            .collect()
    }

    /// Log expected improvement at `x` and its gradient over the numeric coordinates.
    fn log_ei_grad(&self, x: &[f64]) -> Option<(f64, Vec<f64>)> {
        let ks = self.k_star(x);
        let mu = ks.dot(&self.alpha);
        let v = self.l.solve_lower_triangular(&ks)?;
        let beta = self.l.tr_solve_lower_triangular(&v)?;
        let var = (self.h.scale - v.norm_squared()).max(1e-12);
        let sd = var.sqrt();
        let (value, d_mu, d_sd) = log_ei(mu, sd, self.best);
        let mut grad = vec![0.0; x.len()];
        for (i, xi) in self.data.x.iter().enumerate() {
            let r2 = self.h.r2(&self.data, x, xi);
            // d k(x, x_i) / d x_d = 2 scale m'(r2) s_d (x_d - x_id)
            let common = 2.0 * self.h.scale * matern52_d_r2(r2);
            for (d, g) in grad.iter_mut().enumerate() {
                if self.data.categorical[d] {
                    continue;
                }
                let dk = common * self.h.inv_sq[d] * (x[d] - xi[d]);
                // d mu = alpha . dk ; d var = -2 beta . dk ; d sd = d var / (2 sd)
                *g += d_mu * self.alpha[i] * dk + d_sd * (-beta[i] * dk / sd);
            }
        }
        value.is_finite().then_some((value, grad))
    }
}

/// `ln EI` for minimization at a point with posterior `N(mu, sd^2)` and incumbent `best`,
/// with its partial derivatives in `mu` and `sd`. Stable far into the tail, where EI itself
/// underflows (the "logEI" of Ament et al., 2023).
fn log_ei(mu: f64, sd: f64, best: f64) -> (f64, f64, f64) {
    let z = (best - mu) / sd;
    // h(z) = z Phi(z) + phi(z); EI = sd h(z).
    let (ln_h, pdf_over_h, cdf_over_h) = if z > -3.0 {
        let h = z * gauss::cdf(z) + gauss::pdf(z);
        (h.ln(), gauss::pdf(z) / h, gauss::cdf(z) / h)
    } else {
        let t = -z;
        let r = mills_ratio(t);
        let q = (1.0 - t * r).max(f64::MIN_POSITIVE);
        (gauss::ln_pdf(t) + q.ln(), 1.0 / q, r / q)
    };
    // d ln EI = (phi dsd - Phi dmu) / (sd h)
    (sd.ln() + ln_h, -cdf_over_h / sd, pdf_over_h / sd)
}

/// Mills' ratio `Q(t) / phi(t)` for `t >= 3`, by its continued fraction.
fn mills_ratio(t: f64) -> f64 {
    let mut f = t;
    for k in (1..=60).rev() {
        f = t + k as f64 / f;
    }
    1.0 / f
}

/// Rounds of a local search (continuous coordinates by L-BFGS, then discrete ones on their
/// grids) from one start, at most, and sweeps over the discrete coordinates in a round; most
/// searches settle in two or three.
const MAX_ROUNDS: usize = 6;

/// Whether `d` is continuous: a float without a step.
fn is_continuous(d: &Distribution) -> bool {
    matches!(d, Distribution::Float { step: None, .. })
}

/// `u` moved onto the grid of an integer or stepped distribution (the centre of its cell).
fn snap(d: &Distribution, u: f64) -> f64 {
    if is_continuous(d) {
        u
    } else {
        unit::to_unit(d, &unit::from_unit(d, u)).unwrap_or(u)
    }
}

/// The point maximizing log EI: the best of several hundred random points and of local
/// searches from the most promising of them and from the incumbent, every discrete
/// coordinate on its grid.
fn maximize_log_ei(
    post: &Posterior,
    data: &Data,
    dims: &[(String, Distribution)],
    sampler: &GpSampler,
    rng: &mut StdRng,
) -> Vec<f64> {
    let d = dims.len();
    // Discrete coordinates are drawn on their grids, so every score below is the score of a
    // point that can be proposed (off the grid, EI rewards the variance between two cells).
    let random_point = |rng: &mut StdRng| -> Vec<f64> {
        dims.iter()
            .map(|(_, dist)| match dist {
                Distribution::Categorical { choices } => rng.random_range(0..choices.len()) as f64,
                _ => snap(dist, rng.random::<f64>()),
            })
            .collect()
    };
    // Scoring a candidate costs a triangular solve, O(n^2): past 100 trials fewer random points
    // are scored (never fewer than 256), so a 500-trial study stays under 0.1 s per trial.
    let n = data.n() as f64;
    let n_candidates = if n > 100.0 {
        ((sampler.n_candidates as f64 * (100.0 / n).powi(2)) as usize)
            .clamp(256.min(sampler.n_candidates), sampler.n_candidates)
    } else {
        sampler.n_candidates
    };
    let candidates: Vec<Vec<f64>> = (0..n_candidates).map(|_| random_point(rng)).collect();
    let scores = post.log_ei_many(&candidates);
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));

    // Local searches start from the incumbent, the best candidate, and candidates drawn with
    // probability proportional to their EI relative to the best (Optuna's roulette).
    let incumbent = data
        .y
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| data.x[i].clone());
    let mut starts: Vec<Vec<f64>> = incumbent.into_iter().collect();
    let top = order[0];
    starts.push(candidates[top].clone());
    let mut weights: Vec<f64> = scores
        .iter()
        .map(|s| (s - scores[top]).exp())
        .map(|w| if w.is_finite() { w } else { 0.0 })
        .collect();
    weights[top] = 0.0;
    for _ in 2..sampler.n_local_starts {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut u = rng.random::<f64>() * total;
        let mut pick = top;
        for (i, w) in weights.iter().enumerate() {
            u -= w;
            if u <= 0.0 && *w > 0.0 {
                pick = i;
                break;
            }
        }
        if pick == top {
            break;
        }
        weights[pick] = 0.0;
        starts.push(candidates[pick].clone());
    }

    // Gradients move the continuous coordinates only; the discrete ones are searched on their
    // grids, the two in turn until neither moves.
    let continuous: Vec<usize> = (0..d).filter(|&j| is_continuous(&dims[j].1)).collect();
    let score = |x: &[f64]| post.log_ei_many(&[x.to_vec()])[0];
    let mut best = candidates[order[0]].clone();
    let mut best_score = scores[order[0]];
    for start in starts {
        let mut x = start;
        for _round in 0..MAX_ROUNDS {
            x = local_continuous(post, &x, &continuous);
            let settled = settle_discrete(post, &x, dims);
            if settled == x {
                break;
            }
            x = settled;
        }
        let s = score(&x);
        if s > best_score {
            best_score = s;
            best = x;
        }
    }
    best
}

/// L-BFGS over the continuous coordinates of `x`, the others held. Coordinates are mapped
/// through `x = (1 - cos(pi z)) / 2`, so the unconstrained search stays inside `[0, 1]`.
fn local_continuous(post: &Posterior, x: &[f64], numeric: &[usize]) -> Vec<f64> {
    if numeric.is_empty() {
        return x.to_vec();
    }
    let to_x = |z: &[f64]| {
        let mut full = x.to_vec();
        for (k, &j) in numeric.iter().enumerate() {
            full[j] = (1.0 - (PI * z[k]).cos()) / 2.0;
        }
        full
    };
    let z0: Vec<f64> = numeric
        .iter()
        .map(|&j| (1.0 - 2.0 * x[j].clamp(0.0, 1.0)).acos() / PI)
        .collect();
    let z = lbfgs(
        |z| {
            let full = to_x(z);
            let (v, g) = post.log_ei_grad(&full)?;
            let gz = numeric
                .iter()
                .enumerate()
                .map(|(k, &j)| -g[j] * PI / 2.0 * (PI * z[k]).sin())
                .collect();
            Some((-v, gz))
        },
        z0,
        100,
        1e-6,
    );
    to_x(&z)
}

/// The grid values a discrete coordinate at index `here` of `cells` may move to: every cell
/// when there are few, else cells at 1, 2, 4, ... steps on either side (a wide move is found
/// in a few sweeps, a fine one in the next).
fn grid_moves(here: usize, cells: usize) -> Vec<usize> {
    if cells <= 16 {
        return (0..cells).collect();
    }
    let mut moves = Vec::new();
    let mut offset = 1;
    while offset < cells {
        moves.extend(here.checked_sub(offset));
        moves.extend(Some(here + offset).filter(|&i| i < cells));
        offset *= 2;
    }
    moves
}

/// The number of grid values of a discrete distribution and the index of `u`'s value;
/// `None` for a continuous one.
fn grid_index(d: &Distribution, u: f64) -> Option<(usize, usize)> {
    let (cells, index) = match *d {
        Distribution::Categorical { ref choices } => (choices.len() as f64, u),
        Distribution::Int {
            low, high, step, ..
        } => {
            let v = unit::from_unit(d, u).as_i64()?;
            (((high - low) / step + 1) as f64, ((v - low) / step) as f64)
        }
        Distribution::Float {
            low,
            high,
            step: Some(s),
            ..
        } => {
            let v = unit::from_unit(d, u).as_f64()?;
            (
                ((high - low) / s + 1e-9).floor() + 1.0,
                ((v - low) / s).round(),
            )
        }
        Distribution::Float { step: None, .. } => return None,
    };
    let cells = cells as usize;
    Some((
        cells,
        (index.max(0.0) as usize).min(cells.saturating_sub(1)),
    ))
}

/// The coordinate of grid value `index` of a discrete distribution.
fn grid_coordinate(d: &Distribution, index: usize) -> Option<f64> {
    match *d {
        Distribution::Categorical { .. } => Some(index as f64),
        Distribution::Int { low, step, .. } => {
            unit::to_unit(d, &ParamValue::Int(low + index as i64 * step))
        }
        Distribution::Float {
            low, step: Some(s), ..
        } => unit::to_unit(d, &ParamValue::Float(low + index as f64 * s)),
        Distribution::Float { step: None, .. } => None,
    }
}

/// Moves each integer, stepped and categorical coordinate to its best grid value among
/// [`grid_moves`], one coordinate at a time, sweeping until none moves.
fn settle_discrete(post: &Posterior, x: &[f64], dims: &[(String, Distribution)]) -> Vec<f64> {
    let mut x = x.to_vec();
    for _sweep in 0..MAX_ROUNDS {
        let mut moved = false;
        for (j, (_, d)) in dims.iter().enumerate() {
            let Some((cells, here)) = grid_index(d, x[j]) else {
                continue;
            };
            // The point as it is first: a move must beat it.
            let mut points = vec![x.clone()];
            points.extend(
                grid_moves(here, cells)
                    .into_iter()
                    .filter(|&i| i != here)
                    .filter_map(|i| grid_coordinate(d, i))
                    .map(|c| {
                        let mut y = x.clone();
                        y[j] = c;
                        y
                    }),
            );
            let scores = post.log_ei_many(&points);
            let best = (1..points.len()).fold(0, |b, k| if scores[k] > scores[b] { k } else { b });
            if best > 0 {
                x[j] = points[best][j];
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Study;
    use lepton_core::Scale;

    fn toy_data(n: usize, seed: u64) -> Data {
        let mut rng = StdRng::seed_from_u64(seed);
        let x: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![rng.random(), rng.random(), rng.random_range(0..3) as f64])
            .collect();
        let y = x
            .iter()
            .map(|p| (3.0 * p[0]).sin() + p[1] * p[1] + if p[2] == 1.0 { 0.5 } else { 0.0 })
            .collect();
        Data {
            categorical: vec![false, false, true],
            x,
            y,
        }
    }

    #[test]
    fn marginal_likelihood_gradient_matches_finite_differences() {
        let data = toy_data(25, 1);
        let theta = vec![0.3, -0.4, 0.1, 0.2, (0.05f64).ln()];
        let (_, grad) = objective(&data, &theta, false).unwrap();
        for k in 0..theta.len() {
            let h = 1e-5;
            let (mut a, mut b) = (theta.clone(), theta.clone());
            a[k] += h;
            b[k] -= h;
            let fd = (objective(&data, &a, false).unwrap().0
                - objective(&data, &b, false).unwrap().0)
                / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 1e-4 * (1.0 + fd.abs()),
                "{k}: {fd} vs {}",
                grad[k]
            );
        }
    }

    #[test]
    fn log_ei_gradient_matches_finite_differences() {
        let data = toy_data(30, 2);
        let theta = fit_hyper(&data, Hyper::initial(3), false);
        let post = Posterior::new(&data, Hyper::from_raw(&theta, false)).unwrap();
        for x in [
            vec![0.2, 0.7, 1.0],
            vec![0.9, 0.1, 0.0],
            vec![0.55, 0.45, 2.0],
        ] {
            let (_, grad) = post.log_ei_grad(&x).unwrap();
            for k in 0..2 {
                let h = 1e-6;
                let (mut a, mut b) = (x.clone(), x.clone());
                a[k] += h;
                b[k] -= h;
                let fd =
                    (post.log_ei_grad(&a).unwrap().0 - post.log_ei_grad(&b).unwrap().0) / (2.0 * h);
                assert!(
                    (fd - grad[k]).abs() < 1e-3 * (1.0 + fd.abs()),
                    "{fd} vs {}",
                    grad[k]
                );
            }
            assert_eq!(grad[2], 0.0, "choices are not differentiated");
        }
    }

    #[test]
    fn log_ei_is_continuous_and_finite_deep_in_the_tail() {
        // Across the switch between the direct and the continued-fraction forms.
        let below = log_ei(3.0 - 1e-9, 1.0, 0.0).0;
        let above = log_ei(3.0 + 1e-9, 1.0, 0.0).0;
        assert!((below - above).abs() < 1e-6, "{below} vs {above}");
        // Direct evaluation where it is still accurate.
        let z: f64 = -2.0;
        let direct = (z * gauss::cdf(z) + gauss::pdf(z)).ln();
        assert!((log_ei(2.0, 1.0, 0.0).0 - direct).abs() < 1e-12);
        // EI underflows at z = -40; its logarithm does not.
        let far = log_ei(40.0, 1.0, 0.0);
        assert!(far.0.is_finite() && far.0 < -800.0, "{far:?}");
        assert!(far.1.is_finite() && far.2.is_finite());
    }

    fn branin(trial: &mut lepton_core::Trial) -> Result<f64> {
        let x = trial.suggest_float("x", -5.0, 10.0, Scale::Linear)?;
        let y = trial.suggest_float("y", 0.0, 15.0, Scale::Linear)?;
        let b = 5.1 / (4.0 * PI * PI);
        let c = 5.0 / PI;
        Ok(
            (y - b * x * x + c * x - 6.0).powi(2)
                + 10.0 * (1.0 - 1.0 / (8.0 * PI)) * x.cos()
                + 10.0,
        )
    }

    #[test]
    fn finds_the_branin_optimum_far_better_than_random_search() {
        let best = |s: Box<dyn Fn() -> Study>| {
            let study = s();
            study.optimize(40, branin).unwrap();
            study.best_trial().unwrap().unwrap().value.unwrap() - 0.397_887
        };
        let gp = best(Box::new(|| {
            Study::builder("b")
                .with_sampler(GpSampler::new(0))
                .build()
                .unwrap()
        }));
        let random = best(Box::new(|| {
            Study::builder("b")
                .with_sampler(RandomSampler::new(0))
                .build()
                .unwrap()
        }));
        assert!(gp < 0.01, "GP regret after 40 trials: {gp}");
        assert!(gp < random / 10.0, "GP {gp} vs random {random}");
    }

    #[test]
    fn integers_and_choices_are_searched_on_their_grids() {
        let study = Study::builder("m")
            .with_sampler(GpSampler::new(3))
            .build()
            .unwrap();
        study
            .optimize(30, |t| {
                let width = t.suggest_int("width", 1, 1024, Scale::Log)?;
                let depth = t.suggest_int("depth", 1, 8, Scale::Linear)?;
                let act = t.suggest_categorical("act", &["relu", "tanh", "gelu"])?;
                let penalty = if act.as_str() == Some("gelu") {
                    0.0
                } else {
                    1.0
                };
                Ok(((width as f64).log2() - 7.0).powi(2) + ((depth - 5) as f64).powi(2) + penalty)
            })
            .unwrap();
        let best = study.best_trial().unwrap().unwrap();
        assert!(best.value.unwrap() <= 1.0, "{best:?}");
        assert_eq!(best.params["act"], ParamValue::from("gelu"));
    }

    #[test]
    fn the_proposal_is_the_best_grid_point_of_a_discrete_space() {
        // 40 integers x 3 choices: few enough to score every point, too many integers for
        // the search to try each one.
        let dims = vec![
            ("k".to_owned(), Distribution::int(0, 39, Scale::Linear)),
            ("c".to_owned(), Distribution::categorical(["a", "b", "c"])),
        ];
        let mut rng = StdRng::seed_from_u64(4);
        for seed in 0..5u64 {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for _ in 0..14 {
                let k = rng.random_range(0..40i64);
                let c = rng.random_range(0..3usize);
                x.push(vec![
                    unit::to_unit(&dims[0].1, &ParamValue::Int(k)).unwrap(),
                    c as f64,
                ]);
                y.push(((k as f64 - 23.0) / 8.0).powi(2) + if c == 2 { 0.0 } else { 0.7 });
            }
            let data = Data {
                categorical: vec![false, true],
                x,
                y,
            };
            let theta = fit_hyper(&data, Hyper::initial(2), false);
            let post = Posterior::new(&data, Hyper::from_raw(&theta, false)).unwrap();
            let sampler = GpSampler::new(seed);
            let proposal = maximize_log_ei(&post, &data, &dims, &sampler, &mut rng);
            let every: Vec<Vec<f64>> = (0..40)
                .flat_map(|k| (0..3).map(move |c| (k, c)))
                .map(|(k, c)| {
                    let u = unit::to_unit(&dims[0].1, &ParamValue::Int(k)).unwrap();
                    vec![u, c as f64]
                })
                .collect();
            let scores = post.log_ei_many(&every);
            let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert!(
                every.contains(&proposal),
                "seed {seed}: {proposal:?} is off the grid"
            );
            let got = post.log_ei_many(std::slice::from_ref(&proposal))[0];
            assert!(
                got >= best - 1e-9,
                "seed {seed}: {got} < {best} at {proposal:?}"
            );
        }
    }

    #[test]
    fn wide_integer_and_stepped_ranges_are_searched_on_their_grids() {
        // 401 integers and 201 steps: too many to try every one, so the search moves on the
        // grids; a search between grid values proposes cells already tried, whose neighbours
        // look uncertain.
        let run = |seed| {
            let study = Study::builder("w")
                .with_sampler(GpSampler::new(seed))
                .build()
                .unwrap();
            study
                .optimize(30, |t| {
                    let k = t.suggest_int("k", -200, 200, Scale::Linear)?;
                    let stepped = Distribution::Float {
                        low: 0.0,
                        high: 10.0,
                        scale: Scale::Linear,
                        step: Some(0.05),
                    };
                    let s = t.suggest("s", &stepped)?.as_f64().unwrap_or(f64::NAN);
                    Ok(((k - 37) as f64 / 40.0).powi(2) + (s - 6.45).powi(2))
                })
                .unwrap();
            let trials = study.trials().unwrap();
            for t in &trials {
                let s = t.params["s"].as_f64().unwrap();
                assert!(
                    (s / 0.05 - (s / 0.05).round()).abs() < 1e-6,
                    "{s} is off the grid"
                );
            }
            study.best_trial().unwrap().unwrap().value.unwrap()
        };
        for seed in 0..3 {
            let best = run(seed);
            eprintln!("seed {seed}: {best}");
            assert!(best < 1e-3, "seed {seed}: best {best}");
        }
    }

    #[test]
    fn reproducible_by_seed_and_maximizes() {
        let run = |seed| {
            let study = Study::builder("r")
                .with_direction(Direction::Maximize)
                .with_sampler(GpSampler::new(seed))
                .build()
                .unwrap();
            study
                .optimize(20, |t| {
                    let x = t.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
                    Ok(-(x - 0.3f64).powi(2))
                })
                .unwrap();
            study.best_trial().unwrap().unwrap().value.unwrap()
        };
        assert_eq!(run(5), run(5));
        assert!(run(5) > -1e-4);
    }
}
