//! The sampler conformance suite (Optuna's `BasicSamplerTestCase` idea): every sampler,
//! Lepton's or a user's, must pass it.
//!
//! Each check drives real in-memory [`Study`]s, asking and telling trials by hand, for enough
//! trials (30 to 45) that a model-based sampler leaves its random start-up phase, and returns
//! the first violated expectation as an error instead of panicking, so it can run inside any
//! test harness. The error is an [`Error::Stage`] holding a [`Violation`] that names the check
//! and the offending value ([`Violation::of`] gets it back).
//!
//! The suite asks `make` for a fresh sampler for every study it runs, so state a sampler keeps
//! between trials starts clean, and a sampler is expected to be deterministic for a seed.
//!
//! One file though long: it is one suite, read top to bottom by whoever implements a sampler,
//! each check a short function beside the others.
//!
//! ```
//! use lepton_search::samplers::{RandomSampler, conformance};
//!
//! conformance::run(&|seed| Box::new(RandomSampler::new(seed)))?;
//! # Ok::<(), lepton_core::Error>(())
//! ```
//!
//! A sampler that only knows a fixed set of names (a grid) can be given values for every name
//! the suite suggests: [`parameters`] lists them, each with the distributions it is suggested
//! with.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use lepton_core::{
    Direction, Distribution, Error, History, JointSample, ParamName, ParamValue, Result, Sampler,
    Scale, Trial, TrialContext, TrialState,
};

use crate::Study;

/// Trials of most checks: well past the default start-up phase (10 trials) of TPE and GP.
const TRIALS: u64 = 40;
/// Trials of each one-parameter study.
const SINGLE_TRIALS: u64 = 30;
/// Trials of the failure check, where only about half complete.
const FAILURE_TRIALS: u64 = 45;
/// The trial from which the changing-distribution check suggests the changed distributions.
const CHANGE_AT: u64 = 20;
/// The trial from which the dynamic check's new parameter appears.
const APPEAR_AT: u64 = 15;
/// The seed of every check but reproducibility.
const SEED: u64 = 1;

/// What a sampler did wrong: the check that caught it and what happened, with the values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sampler conformance, check `{check}`: {detail}")]
pub struct Violation {
    /// The check's name, as listed in [`CHECKS`].
    pub check: &'static str,
    /// What went wrong, naming the trial, the parameter and the value.
    pub detail: String,
}

impl Violation {
    /// The violation an error of [`run`] (or of one check) holds, if it is one.
    pub fn of(error: &Error) -> Option<&Violation> {
        match error {
            Error::Stage(inner) => inner.downcast_ref::<Violation>(),
            _ => None,
        }
    }
}

fn violation(check: &'static str, detail: String) -> Error {
    Error::stage(Violation { check, detail })
}

/// One check of the suite: runs studies on samplers built by `make` from a seed.
pub type Check = fn(&dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()>;

/// Every check, by name, in the order [`run`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("mixed_space", mixed_space),
    ("single_parameter_spaces", single_parameter_spaces),
    ("conditional_space", conditional_space),
    ("reproducible", reproducible),
    ("failed_and_pruned_trials", failed_and_pruned_trials),
    ("maximize", maximize),
    ("changing_distribution", changing_distribution),
    ("dynamic_space", dynamic_space),
];

/// Runs every check of [`CHECKS`] on samplers built by `make`, stopping at the first
/// [`Violation`].
pub fn run(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    for (_, check) in CHECKS {
        check(make)?;
    }
    Ok(())
}

/// Every parameter name the suite suggests, each with every distribution it is suggested
/// with (most have one; the changing-distribution check suggests some with two).
pub fn parameters() -> Vec<(&'static str, Vec<Distribution>)> {
    let mut all: Vec<(&'static str, Vec<Distribution>)> = Vec::new();
    let tables = [
        kinds(),
        conditional_params(),
        changing(false),
        changing(true),
        dynamic_params(),
    ];
    for (name, d) in tables.into_iter().flatten() {
        match all.iter_mut().find(|(n, _)| *n == name) {
            Some((_, ds)) if ds.contains(&d) => {}
            Some((_, ds)) => ds.push(d),
            None => all.push((name, vec![d])),
        }
    }
    all
}

/// Every kind of distribution, one parameter each: float (linear, log, stepped), int (linear,
/// stepped with a range the step does not divide, log), categorical (strings, ints, bools,
/// mixed types), and the one-value ranges and choices.
fn kinds() -> Vec<(&'static str, Distribution)> {
    vec![
        ("float", Distribution::float(-2.0, 3.0, Scale::Linear)),
        ("float_log", Distribution::float(1e-5, 1.0, Scale::Log)),
        (
            "float_step",
            Distribution::Float {
                low: 0.0,
                high: 1.0,
                scale: Scale::Linear,
                step: Some(0.1),
            },
        ),
        ("int", Distribution::int(-5, 5, Scale::Linear)),
        (
            "int_step",
            Distribution::Int {
                low: -3,
                high: 18,
                scale: Scale::Linear,
                step: 4,
            },
        ),
        ("int_log", Distribution::int(1, 1000, Scale::Log)),
        (
            "cat_str",
            Distribution::categorical(["relu", "tanh", "gelu"]),
        ),
        ("cat_int", Distribution::categorical([1i64, 7, -3])),
        ("cat_bool", Distribution::categorical([true, false])),
        (
            "cat_mixed",
            Distribution::categorical([
                ParamValue::from("a"),
                ParamValue::Int(1),
                ParamValue::Bool(true),
                ParamValue::Float(2.5),
            ]),
        ),
        ("float_single", Distribution::float(0.5, 0.5, Scale::Linear)),
        ("int_single", Distribution::int(4, 4, Scale::Log)),
        ("cat_single", Distribution::categorical(["only"])),
    ]
}

/// The conditional check's parameters: `kind`, then `xa` under "a" or `yb` under "b".
fn conditional_params() -> Vec<(&'static str, Distribution)> {
    vec![
        ("kind", Distribution::categorical(["a", "b"])),
        ("xa", Distribution::float(0.0, 1.0, Scale::Linear)),
        ("yb", Distribution::int(0, 10, Scale::Linear)),
    ]
}

/// The changing-distribution check's space before (`false`) and after (`true`) the change:
/// `x` widens, `k` narrows and shifts, `c` changes its choices, `s` changes its scale, `q`
/// its step; `y` stays.
fn changing(after: bool) -> Vec<(&'static str, Distribution)> {
    let (x_high, (k_low, k_high), choices, s_scale, q_step) = if after {
        (10.0, (2, 5), vec!["b", "c", "d"], Scale::Log, 0.25)
    } else {
        (1.0, (0, 9), vec!["a", "b"], Scale::Linear, 0.1)
    };
    vec![
        ("x", Distribution::float(0.0, x_high, Scale::Linear)),
        ("k", Distribution::int(k_low, k_high, Scale::Linear)),
        ("c", Distribution::categorical(choices)),
        ("s", Distribution::float(1e-3, 1.0, s_scale)),
        (
            "q",
            Distribution::Float {
                low: 0.0,
                high: 1.0,
                scale: Scale::Linear,
                step: Some(q_step),
            },
        ),
        ("y", Distribution::float(-1.0, 1.0, Scale::Linear)),
    ]
}

/// The dynamic check's parameters: `x` always, `gone` before trial [`APPEAR_AT`], `new` from
/// it on.
fn dynamic_params() -> Vec<(&'static str, Distribution)> {
    vec![
        ("x", Distribution::float(0.0, 1.0, Scale::Linear)),
        ("gone", Distribution::int(0, 5, Scale::Linear)),
        ("new", Distribution::float(1e-3, 1.0, Scale::Log)),
    ]
}

/// A value's position in `[0, 1]` within its distribution (on the log axis for log scales),
/// or a choice's share of the choices: what the test objectives are made of.
fn position(d: &Distribution, v: &ParamValue) -> f64 {
    let span = |x: f64, low: f64, high: f64, scale: Scale| {
        let (x, low, high) = match scale {
            Scale::Log => (x.ln(), low.ln(), high.ln()),
            Scale::Linear => (x, low, high),
        };
        if high > low {
            (x - low) / (high - low)
        } else {
            0.5
        }
    };
    match (d, v.as_f64()) {
        (
            Distribution::Float {
                low, high, scale, ..
            },
            Some(x),
        ) => span(x, *low, *high, *scale),
        (
            Distribution::Int {
                low, high, scale, ..
            },
            Some(x),
        ) => span(x, *low as f64, *high as f64, *scale),
        (Distribution::Categorical { choices }, _) => {
            let i = d.to_internal(v).unwrap_or(0.0);
            i / (choices.len().saturating_sub(1).max(1) as f64)
        }
        _ => 0.5,
    }
}

/// A smooth bowl around 0.3 of every range: a deterministic objective with a clear optimum.
fn bowl(d: &Distribution, v: &ParamValue) -> f64 {
    (position(d, v) - 0.3).powi(2)
}

/// Records the first thing a wrapped sampler did wrong (an error, a value outside its
/// distribution, in `sample` or `sample_joint`), whether or not the trial used the value.
struct Probe {
    inner: Box<dyn Sampler>,
    fault: Arc<Mutex<Option<String>>>,
}

impl Probe {
    fn note(&self, what: String) {
        let mut fault = self.fault.lock().unwrap_or_else(PoisonError::into_inner);
        fault.get_or_insert(what);
    }
}

impl Sampler for Probe {
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        let out = self.inner.sample(history, trial_number, name, distribution);
        match &out {
            Err(e) => self.note(format!(
                "trial {trial_number}: sample(`{name}`, {distribution:?}) returned an error: {e}"
            )),
            Ok(v) if !distribution.contains(v) => self.note(format!(
                "trial {trial_number}: sample(`{name}`) proposed {v:?}, outside {distribution:?}"
            )),
            Ok(_) => {}
        }
        out
    }

    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        let out = self.inner.sample_joint(history, trial_number);
        match &out {
            Err(e) => self.note(format!(
                "trial {trial_number}: sample_joint returned an error: {e}"
            )),
            Ok(joint) => {
                for (name, (d, v)) in joint {
                    if d.validate(name).is_err() || !d.contains(v) {
                        self.note(format!(
                            "trial {trial_number}: sample_joint proposed {v:?} for `{name}`, \
                             outside {d:?}"
                        ));
                    }
                }
            }
        }
        out
    }
}

/// One study of one check, over a probed sampler, asked and told by hand.
struct Session {
    check: &'static str,
    study: Study,
    fault: Arc<Mutex<Option<String>>>,
}

impl Session {
    fn new(
        check: &'static str,
        make: &dyn Fn(u64) -> Box<dyn Sampler>,
        seed: u64,
        direction: Direction,
    ) -> Result<Self> {
        let fault = Arc::new(Mutex::new(None));
        let probe = Probe {
            inner: make(seed),
            fault: Arc::clone(&fault),
        };
        let study = Study::builder(format!("conformance-{check}"))
            .with_sampler(probe)
            .with_direction(direction)
            .build()
            .map_err(|e| violation(check, format!("cannot build a study: {e}")))?;
        Ok(Session {
            check,
            study,
            fault,
        })
    }

    /// A violation: what the probe saw first if anything, else `detail`.
    fn fail(&self, detail: String) -> Error {
        let fault = self
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        violation(self.check, fault.unwrap_or(detail))
    }

    /// Fails if the sampler did anything wrong so far, even with a value no trial used.
    fn clean(&self) -> Result<()> {
        let fault = self.fault.lock().unwrap_or_else(PoisonError::into_inner);
        match &*fault {
            Some(f) => Err(violation(self.check, f.clone())),
            None => Ok(()),
        }
    }

    fn ask(&self) -> Result<Trial> {
        self.study
            .ask()
            .map_err(|e| self.fail(format!("asking a trial failed: {e}")))
    }

    fn suggest(&self, trial: &mut Trial, name: &str, d: &Distribution) -> Result<ParamValue> {
        let number = trial.number();
        let v = trial.suggest(name, d).map_err(|e| {
            self.fail(format!(
                "trial {number}: suggesting `{name}` from {d:?} failed: {e}"
            ))
        })?;
        if !d.contains(&v) {
            return Err(self.fail(format!("trial {number}: `{name}` = {v:?} is outside {d:?}")));
        }
        Ok(v)
    }

    /// Suggests every parameter of `space`; returns the bowl objective over them.
    fn suggest_all(&self, trial: &mut Trial, space: &[(&str, Distribution)]) -> Result<f64> {
        let mut total = 0.0;
        for (name, d) in space {
            let v = self.suggest(trial, name, d)?;
            total += bowl(d, &v);
        }
        Ok(total)
    }

    /// The conditional space: returns the objective and the branch taken.
    fn suggest_conditional(&self, trial: &mut Trial) -> Result<(f64, String)> {
        let mut params = conditional_params().into_iter().map(|(_, d)| d);
        let (Some(kind), Some(xa), Some(yb)) = (params.next(), params.next(), params.next()) else {
            return Err(self.fail("the conditional space is incomplete".into()));
        };
        let branch = self.suggest(trial, "kind", &kind)?;
        let value = match branch.as_str() {
            Some("a") => bowl(&xa, &self.suggest(trial, "xa", &xa)?),
            Some("b") => bowl(&yb, &self.suggest(trial, "yb", &yb)?) + 0.02,
            _ => {
                return Err(self.fail(format!(
                    "trial {}: `kind` = {branch:?} is neither branch",
                    trial.number()
                )));
            }
        };
        Ok((value, branch.to_string()))
    }

    fn tell(&self, trial: Trial, outcome: Result<f64>) -> Result<TrialState> {
        let number = trial.number();
        let state = self
            .study
            .tell(trial, outcome)
            .map_err(|e| self.fail(format!("trial {number}: telling the outcome failed: {e}")))?;
        self.clean()?;
        Ok(state)
    }

    /// Every trial's parameters, in number order.
    fn params(&self) -> Result<Vec<BTreeMap<ParamName, ParamValue>>> {
        Ok(self
            .study
            .trials()
            .map_err(|e| self.fail(format!("listing the trials failed: {e}")))?
            .into_iter()
            .map(|t| t.params)
            .collect())
    }
}

/// Runs `trials` trials over `space` in `direction`, every value checked.
fn plain_study(
    check: &'static str,
    make: &dyn Fn(u64) -> Box<dyn Sampler>,
    direction: Direction,
    space: &[(&str, Distribution)],
    trials: u64,
) -> Result<()> {
    let s = Session::new(check, make, SEED, direction)?;
    for _ in 0..trials {
        let mut t = s.ask()?;
        let value = s.suggest_all(&mut t, space)?;
        s.tell(t, Ok(value))?;
    }
    Ok(())
}

/// Every kind of distribution in one space: every suggested value lies in its distribution,
/// and the sampler never errors, over 40 trials.
pub fn mixed_space(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    plain_study("mixed_space", make, Direction::Minimize, &kinds(), TRIALS)
}

/// Every kind of distribution alone in a one-parameter study of 30 trials: every value lies in
/// its distribution (single-value ranges and single choices included).
pub fn single_parameter_spaces(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    for param in kinds() {
        plain_study(
            "single_parameter_spaces",
            make,
            Direction::Minimize,
            &[param],
            SINGLE_TRIALS,
        )?;
    }
    Ok(())
}

/// A conditional space (`kind` in {a, b}; a float `xa` under "a", an int `yb` under "b"):
/// values are valid and both branches are tried in 40 trials.
pub fn conditional_space(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    let s = Session::new("conditional_space", make, SEED, Direction::Minimize)?;
    let mut branches: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..TRIALS {
        let mut t = s.ask()?;
        let (value, branch) = s.suggest_conditional(&mut t)?;
        *branches.entry(branch).or_default() += 1;
        s.tell(t, Ok(value))?;
    }
    if branches.len() < 2 {
        return Err(s.fail(format!(
            "only one branch of `kind` was tried in {TRIALS} trials: {branches:?}"
        )));
    }
    Ok(())
}

/// The parameters of a 40-trial study over every kind and the conditional space, seeded by
/// `seed`.
fn trial_params(
    make: &dyn Fn(u64) -> Box<dyn Sampler>,
    seed: u64,
) -> Result<Vec<BTreeMap<ParamName, ParamValue>>> {
    let s = Session::new("reproducible", make, seed, Direction::Minimize)?;
    let space = kinds();
    for _ in 0..TRIALS {
        let mut t = s.ask()?;
        let value = s.suggest_all(&mut t, &space)?;
        let (branch_value, _) = s.suggest_conditional(&mut t)?;
        s.tell(t, Ok(value + branch_value))?;
    }
    s.params()
}

/// The same seed gives the same 40 trials, parameter for parameter; another seed gives other
/// trials.
pub fn reproducible(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    let (seed, other) = (7, 8);
    let first = trial_params(make, seed)?;
    let again = trial_params(make, seed)?;
    if let Some((n, (a, b))) = first
        .iter()
        .zip(&again)
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        return Err(violation(
            "reproducible",
            format!("seed {seed}: trial {n} differs between two runs: {a:?} then {b:?}"),
        ));
    }
    if first.len() != again.len() {
        return Err(violation(
            "reproducible",
            format!(
                "seed {seed}: {} trials, then {} trials",
                first.len(),
                again.len()
            ),
        ));
    }
    if trial_params(make, other)? == first {
        return Err(violation(
            "reproducible",
            format!("seeds {seed} and {other} gave the same {TRIALS} trials"),
        ));
    }
    Ok(())
}

/// Every third trial fails (alternately an error after suggesting one parameter, and a NaN
/// after suggesting them all) and every fifth other one is pruned after reporting a value:
/// the study goes on over 45 trials, later values stay valid and the sampler never errors.
pub fn failed_and_pruned_trials(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    let check = "failed_and_pruned_trials";
    let s = Session::new(check, make, SEED, Direction::Minimize)?;
    let space = kinds();
    for i in 0..FAILURE_TRIALS {
        let mut t = s.ask()?;
        let number = t.number();
        let (outcome, expected) = if i % 3 == 0 {
            if i % 2 == 0 {
                s.suggest_all(&mut t, &space[..1])?;
                let e = Error::InvalidInput("conformance: a failing objective".into());
                (Err(e), TrialState::Failed)
            } else {
                s.suggest_all(&mut t, &space)?;
                (Ok(f64::NAN), TrialState::Failed)
            }
        } else if i % 5 == 0 {
            let value = s.suggest_all(&mut t, &space)?;
            t.report(1, value + 1.0)
                .map_err(|e| s.fail(format!("trial {number}: reporting a value failed: {e}")))?;
            (Err(Error::Pruned { step: 1 }), TrialState::Pruned)
        } else {
            (Ok(s.suggest_all(&mut t, &space)?), TrialState::Complete)
        };
        let state = s.tell(t, outcome)?;
        if state != expected {
            return Err(s.fail(format!(
                "trial {number} ended {state:?}, expected {expected:?}"
            )));
        }
    }
    let n = s.params()?.len() as u64;
    if n != FAILURE_TRIALS {
        return Err(s.fail(format!(
            "the study holds {n} trials, expected {FAILURE_TRIALS}"
        )));
    }
    Ok(())
}

/// A maximized study over every kind: values are valid and the sampler never errors.
pub fn maximize(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    plain_study("maximize", make, Direction::Maximize, &kinds(), TRIALS)
}

/// Distributions that change between trials (from trial 20 `x` goes from [0, 1] to [0, 10],
/// `k` from [0, 9] to [2, 5], `c` from {a, b} to {b, c, d}, `s` from a linear to a log scale,
/// `q` from step 0.1 to step 0.25; `y` stays): every value lies in the distribution it was
/// suggested with, over 40 trials.
pub fn changing_distribution(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    let s = Session::new("changing_distribution", make, SEED, Direction::Minimize)?;
    let (before, after) = (changing(false), changing(true));
    for i in 0..TRIALS {
        let mut t = s.ask()?;
        let space = if i < CHANGE_AT { &before } else { &after };
        let value = s.suggest_all(&mut t, space)?;
        s.tell(t, Ok(value))?;
    }
    Ok(())
}

/// A space that grows and shrinks: `x` in every trial, `gone` only before trial 15, `new` only
/// from trial 15 on; every value is valid.
pub fn dynamic_space(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Result<()> {
    let s = Session::new("dynamic_space", make, SEED, Direction::Minimize)?;
    let params = dynamic_params();
    for i in 0..TRIALS {
        let mut t = s.ask()?;
        let space: Vec<(&str, Distribution)> = params
            .iter()
            .filter(|(name, _)| match *name {
                "gone" => i < APPEAR_AT,
                "new" => i >= APPEAR_AT,
                _ => true,
            })
            .cloned()
            .collect();
        let value = s.suggest_all(&mut t, &space)?;
        s.tell(t, Ok(value))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::samplers::{GridSampler, RandomSampler, SAMPLER_NAMES, by_name};

    /// The first error of every check on samplers built by `make`, as text.
    fn violations(make: &dyn Fn(u64) -> Box<dyn Sampler>) -> Vec<String> {
        CHECKS
            .iter()
            .filter_map(|(_, check)| check(make).err().map(|e| e.to_string()))
            .collect()
    }

    fn assert_conforms(label: &str, make: &dyn Fn(u64) -> Box<dyn Sampler>) {
        let start = Instant::now();
        let found = violations(make);
        eprintln!("{label}: suite ran in {:.2?}", start.elapsed());
        assert!(found.is_empty(), "{label}:\n{}", found.join("\n"));
    }

    fn named(name: &'static str) {
        assert_conforms(name, &|seed| match by_name(name, seed) {
            Ok(sampler) => sampler,
            Err(e) => panic!("{name}: {e}"),
        });
    }

    /// The named samplers that have a test below.
    const TESTED: &[&str] = &[
        "random",
        "sobol",
        "tpe",
        "tpe-indep",
        "tpe-group",
        "gp",
        "gp-deterministic",
        "cmaes",
        "bohb",
    ];

    #[test]
    fn every_named_sampler_is_tested() {
        assert_eq!(TESTED, SAMPLER_NAMES);
    }

    #[test]
    fn random_conforms() {
        named("random");
    }

    #[test]
    fn sobol_conforms() {
        named("sobol");
    }

    #[test]
    fn tpe_conforms() {
        named("tpe");
    }

    #[test]
    fn tpe_indep_conforms() {
        named("tpe-indep");
    }

    #[test]
    fn tpe_group_conforms() {
        named("tpe-group");
    }

    #[test]
    fn gp_conforms() {
        named("gp");
    }

    #[test]
    fn gp_deterministic_conforms() {
        named("gp-deterministic");
    }

    #[test]
    fn cmaes_conforms() {
        named("cmaes");
    }

    #[test]
    fn bohb_conforms() {
        named("bohb");
    }

    /// Up to two values that lie in every one of `ds`: the ends and the middle of the first
    /// range, or its choices.
    fn common_values(ds: &[Distribution]) -> Vec<ParamValue> {
        let first = &ds[0];
        let candidates = match first {
            Distribution::Categorical { choices } => choices.clone(),
            Distribution::Float { low, high, .. } => [*low, (low + high) / 2.0, *high]
                .map(|x| first.from_internal(x))
                .to_vec(),
            Distribution::Int { low, high, .. } => [*low, (low + high) / 2, *high]
                .map(|x| first.from_internal(x as f64))
                .to_vec(),
        };
        let mut values: Vec<ParamValue> = Vec::new();
        for v in candidates {
            if ds.iter().all(|d| d.contains(&v)) && !values.contains(&v) {
                values.push(v);
            }
        }
        values.truncate(2);
        values
    }

    /// The grid sampler knows only the names of its grid, so it gets a grid over every name the
    /// suite suggests, with values that lie in each of the name's distributions; with that,
    /// every check applies to it. Names get two values while the grid stays under 2^18 points,
    /// one after.
    #[test]
    fn grid_conforms() {
        let mut points = 1usize;
        let grid: BTreeMap<String, Vec<ParamValue>> = parameters()
            .into_iter()
            .map(|(name, ds)| {
                let mut values = common_values(&ds);
                assert!(!values.is_empty(), "no grid value for `{name}` fits {ds:?}");
                if points * values.len() > 1 << 18 {
                    values.truncate(1);
                }
                points *= values.len();
                (name.to_owned(), values)
            })
            .collect();
        assert!(points > 1 << 16, "a grid of {points} points");
        assert_conforms("grid", &|seed| {
            Box::new(GridSampler::new(grid.clone(), seed).unwrap())
        });
    }

    /// Random sampling, with one fault (or none) chosen by the test.
    struct Broken {
        inner: RandomSampler,
        fault: Fault,
    }

    #[derive(Clone, Copy)]
    enum Fault {
        /// Log-scale floats land just above their upper bound.
        Overshoot,
        /// A joint value, never used by a trial, lies outside its own distribution.
        JointOutside,
        /// Every categorical takes its first choice.
        FirstChoice,
        /// The seed is ignored.
        SeedBlind,
        /// Each draw is reseeded from a process-wide counter.
        Unrepeatable,
        /// Errors once the history holds a pruned trial.
        PrunedShy,
    }

    static DRAWS: AtomicU64 = AtomicU64::new(0);

    impl Sampler for Broken {
        fn sample(
            &self,
            history: &History,
            trial_number: u64,
            name: &str,
            d: &Distribution,
        ) -> Result<ParamValue> {
            match (self.fault, d) {
                (
                    Fault::Overshoot,
                    Distribution::Float {
                        high,
                        scale: Scale::Log,
                        ..
                    },
                ) => Ok(ParamValue::Float(high * (1.0 + 1e-9))),
                (Fault::FirstChoice, Distribution::Categorical { choices }) => {
                    Ok(choices[0].clone())
                }
                (Fault::SeedBlind, _) => {
                    RandomSampler::new(0).sample(history, trial_number, name, d)
                }
                (Fault::Unrepeatable, _) => RandomSampler::new(
                    DRAWS.fetch_add(1, Ordering::Relaxed),
                )
                .sample(history, trial_number, name, d),
                (Fault::PrunedShy, _)
                    if history
                        .trials()
                        .iter()
                        .any(|t| t.state == TrialState::Pruned) =>
                {
                    Err(Error::InvalidInput("pruned trials confuse me".into()))
                }
                _ => self.inner.sample(history, trial_number, name, d),
            }
        }

        fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
            let mut joint = JointSample::new();
            if matches!(self.fault, Fault::JointOutside) && trial_number > 3 {
                // Another distribution than the one suggested, so no trial uses the value.
                let d = Distribution::float(0.0, 1.0, Scale::Linear);
                joint.insert("float".into(), (d, ParamValue::Float(2.0)));
            }
            let _ = history;
            Ok(joint)
        }
    }

    fn broken(fault: Fault) -> Violation {
        let make = move |seed| -> Box<dyn Sampler> {
            Box::new(Broken {
                inner: RandomSampler::new(seed),
                fault,
            })
        };
        let e = run(&make).expect_err("a broken sampler passed the suite");
        Violation::of(&e)
            .cloned()
            .unwrap_or_else(|| panic!("not a violation: {e}"))
    }

    #[test]
    fn values_outside_their_range_are_reported() {
        let v = broken(Fault::Overshoot);
        assert_eq!(v.check, "mixed_space", "{v}");
        assert!(
            v.detail.contains("`float_log`") && v.detail.contains("1.000000001"),
            "{v}"
        );
    }

    #[test]
    fn unused_joint_values_outside_their_range_are_reported() {
        let v = broken(Fault::JointOutside);
        assert_eq!(v.check, "mixed_space", "{v}");
        assert!(
            v.detail
                .contains("trial 4: sample_joint proposed Float(2.0) for `float`"),
            "{v}"
        );
    }

    #[test]
    fn a_sampler_that_never_explores_a_branch_is_reported() {
        let v = broken(Fault::FirstChoice);
        assert_eq!(v.check, "conditional_space", "{v}");
        assert!(v.detail.contains("only one branch"), "{v}");
    }

    #[test]
    fn ignoring_the_seed_is_reported() {
        let v = broken(Fault::SeedBlind);
        assert_eq!(v.check, "reproducible", "{v}");
        assert!(v.detail.contains("seeds 7 and 8 gave the same"), "{v}");
    }

    #[test]
    fn unrepeatable_draws_are_reported() {
        let v = broken(Fault::Unrepeatable);
        assert_eq!(v.check, "reproducible", "{v}");
        assert!(v.detail.contains("trial 0 differs between two runs"), "{v}");
    }

    #[test]
    fn sampler_errors_are_reported() {
        let v = broken(Fault::PrunedShy);
        assert_eq!(v.check, "failed_and_pruned_trials", "{v}");
        assert!(v.detail.contains("pruned trials confuse me"), "{v}");
    }

    #[test]
    fn violations_are_found_in_the_error() {
        let e = violation("mixed_space", "x".into());
        assert_eq!(Violation::of(&e).map(|v| v.check), Some("mixed_space"));
        assert!(Violation::of(&Error::InvalidInput("x".into())).is_none());
        assert_eq!(e.to_string(), "sampler conformance, check `mixed_space`: x");
    }

    #[test]
    fn every_check_is_listed_once_under_its_own_name() {
        let names: Vec<&str> = CHECKS.iter().map(|(n, _)| *n).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        // The names checks report are the names listed.
        let v = broken(Fault::FirstChoice);
        assert!(names.contains(&v.check));
    }
}
