//! The tree-structured Parzen estimator (TPE), the default model-based sampler.
//!
//! After `n_startup_trials` random trials, TPE splits the finished trials into the best
//! `gamma(n)` ("below") and the rest ("above"), fits a Parzen estimator `l` to the first and
//! `g` to the second, draws `n_ei_candidates` points from `l` and proposes the one that
//! maximizes `l(x) / g(x)` (equivalent to expected improvement under TPE's model).
//!
//! - **Multivariate** (the default, as in Optuna 5): the parameters every finished trial
//!   shares are modelled jointly, one kernel per trial across all dimensions.
//! - **Grouped**: the parameters are split into groups that always appear together
//!   (conditional spaces: `model = "cnn"` brings `channels`), each modelled jointly.
//! - **Univariate**: every parameter on its own (Optuna's pre-5.0 default).
//! - **Constant liar**: running trials count as bad ones, so parallel workers spread out
//!   instead of proposing the same point.
//!
//! Pruned trials rank after complete ones, the further they got the better. Failed trials are
//! ignored.
//!
//! The submodules: `rows` (a finished trial's rank and values on the axes), `folded` (what
//! the sampler has read from the history so far, kept between asks).

mod folded;
mod rows;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;

use lepton_core::{
    Distribution, FrozenTrial, History, JointSample, ParamValue, Result, Sampler, TrialState,
};

use super::parzen::{Axis, Parzen, ParzenConfig, recency_weights};
use super::{RandomSampler, stream_seed};
use folded::{Folded, presorted_gaps};
use rows::{Rank, Row, encode};

/// How many of `n` finished trials count as good: Optuna's `min(ceil(n / 10), 25)`.
fn default_gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

/// The TPE sampler. Deterministic for a seed in sequential studies.
///
/// ```
/// use lepton_search::{Study, TpeSampler};
/// use lepton_core::Scale;
///
/// let study = Study::builder("tpe").with_sampler(TpeSampler::new(7)).build()?;
/// study.optimize(60, |t| {
///     let x = t.suggest_float("x", -5.0, 5.0, Scale::Linear)?;
///     let y = t.suggest_int("y", -5, 5, Scale::Linear)?;
///     Ok((x - 1.0).powi(2) + (y as f64 + 2.0).powi(2))
/// })?;
/// assert!(study.best_trial()?.unwrap().value.unwrap() < 1.0);
/// # Ok::<(), lepton_core::Error>(())
/// ```
#[derive(Debug)]
pub struct TpeSampler {
    seed: u64,
    n_startup_trials: usize,
    n_ei_candidates: usize,
    multivariate: bool,
    group: bool,
    constant_liar: bool,
    prior_weight: f64,
    gamma: fn(usize) -> usize,
    random: RandomSampler,
    folded: Mutex<Folded>,
}

impl TpeSampler {
    /// Optuna 5's defaults: 10 random start-up trials, 24 candidates, multivariate, constant
    /// liar on.
    pub fn new(seed: u64) -> Self {
        TpeSampler {
            seed,
            n_startup_trials: 10,
            n_ei_candidates: 24,
            multivariate: true,
            group: false,
            constant_liar: true,
            prior_weight: 1.0,
            gamma: default_gamma,
            random: RandomSampler::new(seed),
            folded: Mutex::new(Folded::default()),
        }
    }

    /// Random trials before the model takes over (at least 1).
    pub fn with_n_startup_trials(mut self, n: usize) -> Self {
        self.n_startup_trials = n.max(1);
        self
    }

    /// Candidates drawn from `l` per proposal (at least 1).
    pub fn with_n_ei_candidates(mut self, n: usize) -> Self {
        self.n_ei_candidates = n.max(1);
        self
    }

    /// Models shared parameters jointly (`true`, the default) or one at a time.
    pub fn with_multivariate(mut self, on: bool) -> Self {
        self.multivariate = on;
        self
    }

    /// Splits a conditional space into groups of parameters that appear together and models
    /// each group jointly (implies multivariate).
    pub fn with_group(mut self, on: bool) -> Self {
        self.group = on;
        if on {
            self.multivariate = true;
        }
        self
    }

    /// Counts running trials as bad ones, so that parallel workers do not propose the same
    /// point.
    pub fn with_constant_liar(mut self, on: bool) -> Self {
        self.constant_liar = on;
        self
    }

    /// The prior kernel's weight relative to one observation (default 1).
    pub fn with_prior_weight(mut self, weight: f64) -> Self {
        if weight.is_finite() && weight > 0.0 {
            self.prior_weight = weight;
        }
        self
    }

    /// How many of `n` finished trials count as good (default `min(ceil(n / 10), 25)`).
    pub fn with_gamma(mut self, gamma: fn(usize) -> usize) -> Self {
        self.gamma = gamma;
        self
    }

    fn config(&self) -> ParzenConfig {
        ParzenConfig {
            prior_weight: self.prior_weight,
        }
    }

    /// Proposes values for `dims` from `good` and `bad` observations (rows on the axes).
    fn propose(
        &self,
        rng: &mut StdRng,
        config: ParzenConfig,
        dims: &[(String, Distribution)],
        good: &[&Row],
        bad: &[&Row],
        bad_gaps: &[Option<Vec<f64>>],
    ) -> Vec<ParamValue> {
        let axes: Vec<Axis> = dims.iter().map(|(_, d)| Axis::of(d)).collect();
        let fit = |rows: &[&Row], gaps: &[Option<Vec<f64>>]| {
            let xs: Vec<&[f64]> = rows.iter().map(|r| &r.x[..]).collect();
            Parzen::fit(&axes, &xs, &recency_weights(rows.len()), config, gaps)
        };
        let (l, g) = (fit(good, &[]), fit(bad, bad_gaps));
        let candidates = l.sample(rng, self.n_ei_candidates);
        let (ll, lg) = (l.ln_pdf(&candidates), g.ln_pdf(&candidates));
        let mut best = 0;
        for i in 1..candidates.len() {
            if ll[i] - lg[i] > ll[best] - lg[best] {
                best = i;
            }
        }
        dims.iter()
            .zip(&candidates[best])
            .map(|((_, d), x)| Axis::decode(d, *x))
            .collect()
    }

    /// Splits rows into good and bad (each in trial order), with running trials as bad ones.
    fn split<'a>(&self, finished: &'a [Row], running: &'a [Row]) -> (Vec<&'a Row>, Vec<&'a Row>) {
        let n_good = (self.gamma)(finished.len()).min(finished.len());
        // The n_good best by rank (ties broken by number, so the split is deterministic),
        // found in linear time; both sides keep trial order.
        let key = |r: &Row| (r.rank, r.number);
        let mut ranked: Vec<&Row> = finished.iter().collect();
        let cut = if n_good == 0 || n_good == ranked.len() {
            None
        } else {
            let (_, nth, _) = ranked.select_nth_unstable_by(n_good - 1, |a, b| {
                a.rank.cmp(&b.rank).then(a.number.cmp(&b.number))
            });
            Some(key(nth))
        };
        let is_good = |r: &Row| match cut {
            None => n_good > 0,
            Some((rank, number)) => match r.rank.cmp(&rank) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal => r.number <= number,
                std::cmp::Ordering::Greater => false,
            },
        };
        let (mut good, mut bad): (Vec<&Row>, Vec<&Row>) = finished.iter().partition(|r| is_good(r));
        bad.extend(running);
        if !good.is_sorted_by_key(|r| r.number) {
            good.sort_by_key(|r| r.number);
        }
        if !bad.is_sorted_by_key(|r| r.number) {
            bad.sort_by_key(|r| r.number);
        }
        (good, bad)
    }

    /// Rows of the running trials (other than `this`) that hold every parameter of `dims`.
    fn liars(&self, history: &History, dims: &[(String, Distribution)]) -> Vec<Row> {
        if !self.constant_liar {
            return Vec::new();
        }
        history
            .trials()
            .iter()
            .filter(|t| t.state == TrialState::Running)
            .filter_map(|t| {
                Some(Row {
                    number: t.number,
                    rank: Rank::Running,
                    x: encode(t, dims)?,
                })
            })
            .collect()
    }
}

impl Default for TpeSampler {
    fn default() -> Self {
        TpeSampler::new(0)
    }
}

impl Sampler for TpeSampler {
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        distribution.validate(name)?;
        let finished: Vec<&Arc<FrozenTrial>> = history
            .trials()
            .iter()
            .filter(|t| Rank::of(t, history.direction()).is_some())
            .collect();
        if finished.len() < self.n_startup_trials {
            return self
                .random
                .sample(history, trial_number, name, distribution);
        }
        // Univariate TPE over the trials that have this parameter.
        let dims = [(name.to_owned(), distribution.clone())];
        let rows: Vec<Row> = finished
            .iter()
            .filter_map(|t| Row::of(t, &dims, history.direction()))
            .collect();
        let liars = self.liars(history, &dims);
        let (good, bad) = self.split(&rows, &liars);
        let mut rng = StdRng::seed_from_u64(stream_seed(self.seed, trial_number, name));
        let mut values = self.propose(&mut rng, self.config(), &dims, &good, &bad, &[]);
        Ok(values
            .pop()
            .unwrap_or_else(|| distribution.from_internal(0.0)))
    }

    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        let mut folded = self
            .folded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        folded.fold(history);
        if folded.finished.len() < self.n_startup_trials || !self.multivariate {
            return Ok(JointSample::new());
        }
        let groups = if self.group {
            folded.groups()
        } else {
            let space = folded.space.clone().unwrap_or_default();
            vec![space.into_iter().collect::<Vec<_>>()]
        };
        let mut joint = JointSample::new();
        for (g, dims) in groups.iter().enumerate() {
            if dims.is_empty() {
                continue;
            }
            let grouped;
            let (rows, order) = if self.group {
                grouped = folded.rows_for(dims);
                (&grouped[..], &[][..])
            } else {
                folded.intersection_rows()
            };
            let liars = self.liars(history, dims);
            let (good, bad) = self.split(rows, &liars);
            let bad_gaps = if liars.is_empty() {
                presorted_gaps(dims, rows, order, &good, bad.len())
            } else {
                Vec::new()
            };
            let stream = format!("tpe/joint/{g}");
            let mut rng = StdRng::seed_from_u64(stream_seed(self.seed, trial_number, &stream));
            let values = self.propose(&mut rng, self.config(), dims, &good, &bad, &bad_gaps);
            for ((name, d), v) in dims.iter().zip(values) {
                joint.insert(name.clone(), (d.clone(), v));
            }
        }
        Ok(joint)
    }
}
