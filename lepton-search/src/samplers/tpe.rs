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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;

use lepton_core::{
    Direction, Distribution, FrozenTrial, History, JointSample, ParamValue, Result, Sampler,
    TrialState,
};

use super::parzen::{
    Axis, Parzen, ParzenConfig, from_ordered_bits, ordered_bits, recency_weights, sorted_gaps,
};
use super::{RandomSampler, stream_seed};

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

/// The bad estimator's neighbour gaps per dimension, read off the cached per-dimension
/// orders instead of sorting: the bad rows are the rows that are not good, in row order
/// (which is trial order; otherwise, or with liars, nothing is returned and the estimator
/// sorts for itself).
fn presorted_gaps(
    dims: &[(String, Distribution)],
    rows: &[Row],
    order: &[ValueOrder],
    good: &[&Row],
    n_bad: usize,
) -> Vec<Option<Vec<f64>>> {
    if order.len() != dims.len() || !rows.is_sorted_by_key(|r| r.number) {
        return Vec::new();
    }
    let good_numbers: Vec<u64> = good.iter().map(|r| r.number).collect();
    let is_good: Vec<bool> = rows
        .iter()
        .map(|r| good_numbers.binary_search(&r.number).is_ok())
        .collect();
    // Each bad row's position among the bad ones.
    let mut position = vec![0usize; rows.len()];
    let mut k = 0;
    for (i, g) in is_good.iter().enumerate() {
        if !g {
            position[i] = k;
            k += 1;
        }
    }
    if k != n_bad {
        return Vec::new();
    }
    dims.iter()
        .enumerate()
        .map(|(j, (_, d))| {
            let bad_in_order = || order[j].iter().filter(|&&(_, i)| !is_good[i as usize]);
            // The value is in the key: no need to visit the rows.
            let values = bad_in_order().map(|&(key, _)| from_ordered_bits(key));
            let gaps = sorted_gaps(&Axis::of(d), values, k)?;
            let mut by_row = vec![0.0; k];
            for (&(_, i), gap) in bad_in_order().zip(gaps) {
                by_row[position[i as usize]] = gap;
            }
            Some(by_row)
        })
        .collect()
}

/// Where a finished trial ranks: complete trials by loss, then pruned ones by how far they
/// got and their last value, then running ones (the constant liar's pessimism).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rank {
    Complete(f64),
    Pruned { step: u64, loss: f64 },
    Running,
}

impl Rank {
    /// The rank of a finished trial, in terms of loss (lower is better); `None` for trials
    /// TPE does not learn from.
    fn of(t: &FrozenTrial, direction: Direction) -> Option<Rank> {
        let loss = |v: f64| match direction {
            Direction::Minimize => v,
            Direction::Maximize => -v,
        };
        match t.state {
            TrialState::Complete => t.value.map(|v| Rank::Complete(loss(v))),
            TrialState::Pruned => Some(match t.last_step() {
                Some((step, v)) => Rank::Pruned {
                    step,
                    loss: loss(v),
                },
                None => Rank::Pruned {
                    step: 0,
                    loss: f64::INFINITY,
                },
            }),
            _ => None,
        }
    }

    fn cmp(&self, other: &Rank) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Rank::Complete(a), Rank::Complete(b)) => a.total_cmp(b),
            (Rank::Complete(_), _) => Ordering::Less,
            (_, Rank::Complete(_)) => Ordering::Greater,
            (Rank::Pruned { step: s, loss: a }, Rank::Pruned { step: t, loss: b }) => {
                t.cmp(s).then(a.total_cmp(b))
            }
            (Rank::Pruned { .. }, Rank::Running) => Ordering::Less,
            (Rank::Running, Rank::Pruned { .. }) => Ordering::Greater,
            (Rank::Running, Rank::Running) => Ordering::Equal,
        }
    }
}

/// Rows in ascending order of their value on one axis: (value key, row index).
type ValueOrder = Vec<(u64, u32)>;

/// One trial's values on the axes of a set of parameters.
#[derive(Debug, Clone)]
struct Row {
    number: u64,
    rank: Rank,
    x: Vec<f64>,
}

impl Row {
    fn of(t: &FrozenTrial, dims: &[(String, Distribution)], direction: Direction) -> Option<Row> {
        Some(Row {
            number: t.number,
            rank: Rank::of(t, direction)?,
            x: encode(t, dims)?,
        })
    }
}

/// A trial's distributions keyed by `String`, as the sampler's spaces and groups are.
fn string_keyed(
    distributions: &BTreeMap<lepton_core::ParamName, Distribution>,
) -> BTreeMap<String, Distribution> {
    distributions
        .iter()
        .map(|(name, d)| (name.to_string(), d.clone()))
        .collect()
}

/// A trial's values for `dims`, if it has every one of them with the same distribution.
fn encode(t: &FrozenTrial, dims: &[(String, Distribution)]) -> Option<Vec<f64>> {
    dims.iter()
        .map(|(name, d)| {
            if t.distributions.get(name.as_str()) != Some(d) {
                return None;
            }
            Axis::encode(d, t.params.get(name.as_str())?)
        })
        .collect()
}

/// What the sampler has learned from finished trials so far. Finished trials never change,
/// so each is read once; a long study's `ask` then costs a scan of trial states, not of every
/// parameter of every trial.
#[derive(Debug, Default)]
struct Folded {
    direction: Direction,
    /// Trial numbers already read (finished when they were read).
    seen: Vec<bool>,
    /// The finished trials TPE learns from, in the order read.
    finished: Vec<Arc<FrozenTrial>>,
    /// The parameters every finished trial shares, with their distribution.
    space: Option<BTreeMap<String, Distribution>>,
    /// `finished`'s rows over `space`, valid while `rows_valid`.
    rows: Vec<Row>,
    /// For each dimension, the rows in ascending order of their value there (value key,
    /// row index), kept as rows arrive so that bandwidths need no sort; valid with `rows`.
    order: Vec<ValueOrder>,
    rows_valid: bool,
}

impl Folded {
    /// Reads the trials that finished since the last call.
    fn fold(&mut self, history: &History) {
        // A sampler may be reused for another study (or a storage that renumbers): if any
        // trial read before is not the same trial any more, start over. A finished trial
        // never changes, so its number, state and value identify it; comparing them (not
        // the parameters) keeps the check cheap for storages that hand out fresh copies.
        let same = |t: &Arc<FrozenTrial>| {
            history.trials().get(t.number as usize).is_some_and(|h| {
                Arc::ptr_eq(h, t)
                    || (h.number == t.number
                        && h.state == t.state
                        && h.value.map(f64::to_bits) == t.value.map(f64::to_bits))
            })
        };
        if self.direction != history.direction() || !self.finished.iter().all(same) {
            *self = Folded {
                direction: history.direction(),
                ..Folded::default()
            };
        }
        for t in history.trials() {
            let i = t.number as usize;
            if self.seen.get(i).copied().unwrap_or(false) || !t.state.is_finished() {
                continue;
            }
            if self.seen.len() <= i {
                self.seen.resize(i + 1, false);
            }
            self.seen[i] = true;
            if Rank::of(t, self.direction).is_none() {
                continue;
            }
            let before = self.space.as_ref().map(BTreeMap::len);
            match &mut self.space {
                None => self.space = Some(string_keyed(&t.distributions)),
                Some(s) => s.retain(|name, d| t.distributions.get(name.as_str()) == Some(d)),
            }
            self.finished.push(Arc::clone(t));
            if before.is_some() && before != self.space.as_ref().map(BTreeMap::len) {
                self.rows_valid = false;
            }
            if self.rows_valid {
                let dims: Vec<_> = self.space_dims();
                match Row::of(t, &dims, self.direction) {
                    Some(row) => {
                        let index = self.rows.len() as u32;
                        for (order, x) in self.order.iter_mut().zip(&row.x) {
                            let entry = (ordered_bits(*x), index);
                            let at = order.partition_point(|e| *e < entry);
                            order.insert(at, entry);
                        }
                        self.rows.push(row);
                    }
                    None => self.rows_valid = false,
                }
            }
        }
    }

    fn space_dims(&self) -> Vec<(String, Distribution)> {
        self.space
            .as_ref()
            .map(|s| s.iter().map(|(n, d)| (n.clone(), d.clone())).collect())
            .unwrap_or_default()
    }

    /// Rows of every finished trial over the intersection space, with their per-dimension
    /// orders.
    fn intersection_rows(&mut self) -> (&[Row], &[ValueOrder]) {
        if !self.rows_valid {
            let dims = self.space_dims();
            self.rows = self
                .finished
                .iter()
                .filter_map(|t| Row::of(t, &dims, self.direction))
                .collect();
            self.order = (0..dims.len())
                .map(|j| {
                    let mut order: Vec<(u64, u32)> = self
                        .rows
                        .iter()
                        .enumerate()
                        .map(|(i, r)| (ordered_bits(r.x[j]), i as u32))
                        .collect();
                    order.sort_unstable();
                    order
                })
                .collect();
            self.rows_valid = true;
        }
        (&self.rows, &self.order)
    }

    /// Rows of the finished trials that have every parameter of `dims`.
    fn rows_for(&self, dims: &[(String, Distribution)]) -> Vec<Row> {
        self.finished
            .iter()
            .filter_map(|t| Row::of(t, dims, self.direction))
            .collect()
    }

    /// Optuna's group decomposition: the coarsest split of all parameters seen into groups
    /// whose members always appear together.
    fn groups(&self) -> Vec<Vec<(String, Distribution)>> {
        let mut groups: Vec<BTreeMap<String, Distribution>> = Vec::new();
        for t in &self.finished {
            let mut rest = string_keyed(&t.distributions);
            let mut next = Vec::with_capacity(groups.len() * 2 + 1);
            for g in groups {
                let (inside, outside): (BTreeMap<_, _>, BTreeMap<_, _>) =
                    g.into_iter().partition(|(name, _)| rest.contains_key(name));
                for name in inside.keys() {
                    rest.remove(name);
                }
                next.push(inside);
                next.push(outside);
            }
            next.push(rest);
            groups = next.into_iter().filter(|g| !g.is_empty()).collect();
        }
        groups
            .into_iter()
            .map(|g| g.into_iter().collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Study;
    use lepton_core::Scale;

    fn sphere(sampler: impl Sampler + 'static, n: usize) -> f64 {
        let study = Study::builder("s").with_sampler(sampler).build().unwrap();
        study
            .optimize(n, |t| {
                let mut s = 0.0;
                for i in 0..4 {
                    let x = t.suggest_float(&format!("x{i}"), -5.0, 5.0, Scale::Linear)?;
                    s += (x - 1.0).powi(2);
                }
                Ok(s)
            })
            .unwrap();
        study.best_trial().unwrap().unwrap().value.unwrap()
    }

    #[test]
    fn beats_random_search_on_a_sphere() {
        let (mut tpe, mut random) = (0, 0);
        for seed in 0..5 {
            let t = sphere(TpeSampler::new(seed), 100);
            let r = sphere(RandomSampler::new(seed), 100);
            tpe += usize::from(t < r);
            random += usize::from(r < t);
        }
        assert!(tpe >= 4, "TPE won {tpe} of 5, random {random}");
        let univariate = sphere(TpeSampler::new(0).with_multivariate(false), 100);
        assert!(univariate < sphere(RandomSampler::new(0), 100));
    }

    #[test]
    fn reproducible_by_seed() {
        assert_eq!(
            sphere(TpeSampler::new(3), 40),
            sphere(TpeSampler::new(3), 40)
        );
        assert_ne!(
            sphere(TpeSampler::new(3), 40),
            sphere(TpeSampler::new(4), 40)
        );
    }

    #[test]
    fn grouped_mode_models_a_conditional_space() {
        let study = Study::builder("c")
            .with_sampler(TpeSampler::new(1).with_group(true))
            .build()
            .unwrap();
        study
            .optimize(80, |t| {
                let kind = t.suggest_categorical("kind", &["a", "b"])?;
                if kind.as_str() == Some("a") {
                    let x = t.suggest_float("xa", -4.0, 4.0, Scale::Linear)?;
                    Ok(1.0 + x * x)
                } else {
                    let y = t.suggest_int("yb", 0, 20, Scale::Linear)?;
                    Ok(((y - 13) as f64).abs())
                }
            })
            .unwrap();
        let trials = study.trials().unwrap();
        let late_b = trials[40..]
            .iter()
            .filter(|t| t.params.get("kind") == Some(&ParamValue::from("b")))
            .count();
        assert!(
            late_b > 25,
            "TPE should favour the better branch, chose it {late_b} times"
        );
        assert_eq!(study.best_trial().unwrap().unwrap().value, Some(0.0));
        let folded = Folded {
            finished: trials.into_iter().map(Arc::new).collect(),
            ..Folded::default()
        };
        let mut groups: Vec<Vec<String>> = folded
            .groups()
            .iter()
            .map(|g| g.iter().map(|(n, _)| n.clone()).collect())
            .collect();
        groups.sort();
        assert_eq!(groups, vec![vec!["kind"], vec!["xa"], vec!["yb"]]);
    }

    #[test]
    fn constant_liar_steers_away_from_running_trials() {
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        let mut trials = Vec::new();
        for i in 0..30u64 {
            let mut t = FrozenTrial::new(i);
            let x = i as f64 / 30.0;
            t.params.insert("x".into(), ParamValue::Float(x));
            t.distributions.insert("x".into(), d.clone());
            t.state = TrialState::Complete;
            t.value = Some((x - 0.5).abs());
            trials.push(t);
        }
        // Many workers are already evaluating points at the optimum.
        for i in 30..60u64 {
            let mut t = FrozenTrial::new(i);
            t.params.insert("x".into(), ParamValue::Float(0.5));
            t.distributions.insert("x".into(), d.clone());
            trials.push(t);
        }
        let history = History::new(Direction::Minimize, trials);
        let near = |s: &TpeSampler| {
            (0..20)
                .filter(|&n| {
                    let j = s.sample_joint(&history, 100 + n).unwrap();
                    (j["x"].1.as_f64().unwrap() - 0.5).abs() < 0.02
                })
                .count()
        };
        let plain = near(&TpeSampler::new(0).with_constant_liar(false));
        let liar = near(&TpeSampler::new(0));
        assert!(liar < plain, "liar {liar} vs plain {plain}");
    }

    #[test]
    fn presorted_bandwidths_equal_sorted_ones() {
        use rand::Rng;
        let dims = vec![
            (
                "a".to_owned(),
                Distribution::float(-3.0, 7.0, Scale::Linear),
            ),
            ("b".to_owned(), Distribution::float(1e-4, 1.0, Scale::Log)),
            ("c".to_owned(), Distribution::int(0, 40, Scale::Linear)),
        ];
        let mut rng = StdRng::seed_from_u64(9);
        let mut folded = Folded::default();
        let trials: Vec<FrozenTrial> = (0..300u64)
            .map(|i| {
                let mut t = FrozenTrial::new(i);
                for (name, d) in &dims {
                    let v = match d {
                        Distribution::Int { .. } => ParamValue::Int(rng.random_range(0..=40)),
                        Distribution::Float {
                            scale: Scale::Log, ..
                        } => ParamValue::Float(10f64.powf(rng.random_range(-4.0..0.0))),
                        _ => ParamValue::Float(rng.random_range(-3.0..7.0)),
                    };
                    t.params.insert(name.as_str().into(), v);
                    t.distributions.insert(name.as_str().into(), d.clone());
                }
                t.state = TrialState::Complete;
                t.value = Some(rng.random());
                t
            })
            .collect();
        // Fold in two steps, so the cached orders are both built and extended.
        folded.fold(&History::new(Direction::Minimize, trials[..150].to_vec()));
        let _ = folded.intersection_rows();
        folded.fold(&History::new(Direction::Minimize, trials.clone()));
        let (rows, order) = folded.intersection_rows();
        let sampler = TpeSampler::new(0);
        let (good, bad) = sampler.split(rows, &[]);
        let gaps = presorted_gaps(&dims, rows, order, &good, bad.len());
        assert!(gaps.iter().take(3).all(Option::is_some));
        let axes: Vec<Axis> = dims.iter().map(|(_, d)| Axis::of(d)).collect();
        let xs: Vec<&[f64]> = bad.iter().map(|r| &r.x[..]).collect();
        let w = recency_weights(xs.len());
        let config = sampler.config();
        let sorted = Parzen::fit(&axes, &xs, &w, config, &[]);
        let presorted = Parzen::fit(&axes, &xs, &w, config, &gaps);
        let points: Vec<Vec<f64>> = (0..50)
            .map(|i| {
                vec![
                    -3.0 + i as f64 * 0.2,
                    10f64.powf(-4.0 + i as f64 * 0.08),
                    (i % 41) as f64,
                ]
            })
            .collect();
        assert_eq!(sorted.ln_pdf(&points), presorted.ln_pdf(&points));
    }

    #[test]
    fn a_sampler_reused_for_another_study_forgets_the_first() {
        let sampler = Arc::new(TpeSampler::new(0));
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        let history = |offset: f64| {
            let trials = (0..20u64)
                .map(|i| {
                    let mut t = FrozenTrial::new(i);
                    let x = (i as f64 / 20.0 + offset) % 1.0;
                    t.params.insert("x".into(), ParamValue::Float(x));
                    t.distributions.insert("x".into(), d.clone());
                    t.state = TrialState::Complete;
                    t.value = Some((x - 0.5).abs());
                    t
                })
                .collect();
            History::new(Direction::Minimize, trials)
        };
        let (first, second) = (history(0.0), history(0.37));
        sampler.sample_joint(&first, 20).unwrap();
        let reused = sampler.sample_joint(&second, 20).unwrap();
        let fresh = TpeSampler::new(0).sample_joint(&second, 20).unwrap();
        assert_eq!(reused, fresh);
    }

    #[test]
    fn pruned_trials_rank_after_complete_ones_and_failed_are_ignored() {
        let mut a = FrozenTrial::new(0);
        a.state = TrialState::Pruned;
        a.intermediate_values.insert(5, 0.1);
        let mut b = FrozenTrial::new(1);
        b.state = TrialState::Pruned;
        b.intermediate_values.insert(2, 0.01);
        let mut c = FrozenTrial::new(2);
        c.state = TrialState::Complete;
        c.value = Some(9.0);
        let mut f = FrozenTrial::new(3);
        f.state = TrialState::Failed;
        let ranks: Vec<Rank> = [&a, &b, &c]
            .iter()
            .map(|t| Rank::of(t, Direction::Minimize).unwrap())
            .collect();
        assert!(ranks[2].cmp(&ranks[0]).is_lt());
        assert!(
            ranks[0].cmp(&ranks[1]).is_lt(),
            "further pruned trials rank higher"
        );
        assert!(Rank::of(&f, Direction::Minimize).is_none());
    }
}
