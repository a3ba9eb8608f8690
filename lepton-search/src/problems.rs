//! Standard black-box problems for trying samplers, storages and workers: the same
//! definitions, parameter names and ranges as the HPO benchmark harness's `problems.py`, so a
//! study run here can be compared with one run there. All are minimized.
//!
//! ```
//! use lepton_search::{Study, problems::Problem};
//!
//! let problem = Problem::by_name("branin")?;
//! let study = Study::builder("branin").build()?;
//! study.optimize(20, |trial| problem.evaluate(trial))?;
//! let best = study.best_trial()?.and_then(|t| t.value).unwrap_or(f64::INFINITY);
//! assert!(best >= problem.optimum());
//! # Ok::<(), lepton_core::Error>(())
//! ```

use std::f64::consts::PI;

use lepton_core::{Error, ParamValue, Result, Scale, Trial, TrialContext};

/// A benchmark problem: a function of the parameters a trial suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Branin on `x0` in [-5, 10], `x1` in [0, 15]; three global minima of 5/(4π).
    Branin,
    /// Hartmann-6 on `x0..x5` in [0, 1]; minimum -3.32237.
    Hartmann6,
    /// Rosenbrock in 5 dimensions, `x0..x4` in [-5, 10]; minimum 0 at (1, ..., 1).
    Rosenbrock5,
    /// A synthetic "train a net" surface over a mixed space: `lr` (log float), `momentum`,
    /// `dropout`, `depth` (int), `width` (log int), `opt` (categorical); minimum 0.
    Mixed6,
    /// Synthetic learning curves, for pruners: `x0`, `x1` in [0, 1] set a trial's final loss
    /// `0.05 + (x0 - 0.3)² + (x1 - 0.7)²`, and `speed` in [0, 1] how fast it gets there: at
    /// step `t` (reported for `t` = 1 to [`CURVE_STEPS`]) the loss is
    /// `final + exp(-t / tau)` with `tau = 2 + 20 (1 - speed)`. The value is the loss at the
    /// last step; the minimum, `0.05 + exp(-50)`, is at `x0 = 0.3`, `x1 = 0.7`, `speed = 1`.
    /// Slow learners look worse early than they end, which is what makes pruning hard.
    Curves,
}

/// The steps of a [`Problem::Curves`] trial.
pub const CURVE_STEPS: u64 = 100;

/// The names [`Problem::by_name`] knows.
pub const PROBLEM_NAMES: [&str; 5] = ["branin", "hartmann6", "rosenbrock5", "mixed6", "curves"];

/// The optimizer choices of [`Problem::Mixed6`].
const MIXED_OPTS: [&str; 4] = ["adam", "sgd", "rmsprop", "adagrad"];

const HARTMANN_A: [[f64; 6]; 4] = [
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
];
const HARTMANN_P: [[f64; 6]; 4] = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
];
const HARTMANN_ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];

impl Problem {
    /// The problem called `name` (one of [`PROBLEM_NAMES`]).
    pub fn by_name(name: &str) -> Result<Problem> {
        Ok(match name {
            "branin" => Problem::Branin,
            "hartmann6" => Problem::Hartmann6,
            "rosenbrock5" => Problem::Rosenbrock5,
            "mixed6" => Problem::Mixed6,
            "curves" => Problem::Curves,
            other => {
                return Err(Error::InvalidParameter {
                    name: "problem".into(),
                    reason: format!(
                        "unknown problem `{other}`; known: {}",
                        PROBLEM_NAMES.join(", ")
                    ),
                });
            }
        })
    }

    /// The global minimum.
    pub fn optimum(self) -> f64 {
        match self {
            Problem::Branin => 5.0 / (4.0 * PI),
            Problem::Hartmann6 => -3.322_368_011_415_515,
            Problem::Rosenbrock5 | Problem::Mixed6 => 0.0,
            Problem::Curves => 0.05 + (-(CURVE_STEPS as f64) / 2.0).exp(),
        }
    }

    /// Suggests the problem's parameters on `trial` and returns the function's value there.
    /// [`Problem::Curves`] reports its loss at every step and stops with [`Error::Pruned`]
    /// when the study's pruner says so.
    pub fn evaluate(self, trial: &mut Trial) -> Result<f64> {
        Ok(match self {
            Problem::Curves => {
                let x0 = trial.suggest_float("x0", 0.0, 1.0, Scale::Linear)?;
                let x1 = trial.suggest_float("x1", 0.0, 1.0, Scale::Linear)?;
                let speed = trial.suggest_float("speed", 0.0, 1.0, Scale::Linear)?;
                let last = curve(x0, x1, speed, CURVE_STEPS);
                for step in 1..=CURVE_STEPS {
                    trial.report(step, curve(x0, x1, speed, step))?;
                    if step < CURVE_STEPS && trial.should_prune() {
                        return Err(Error::Pruned { step });
                    }
                }
                last
            }
            Problem::Branin => {
                let x0 = trial.suggest_float("x0", -5.0, 10.0, Scale::Linear)?;
                let x1 = trial.suggest_float("x1", 0.0, 15.0, Scale::Linear)?;
                branin(x0, x1)
            }
            Problem::Hartmann6 => hartmann6(&box_params::<6>(trial, 0.0, 1.0)?),
            Problem::Rosenbrock5 => rosenbrock(&box_params::<5>(trial, -5.0, 10.0)?),
            Problem::Mixed6 => {
                let lr = trial.suggest_float("lr", 1e-5, 1e-1, Scale::Log)?;
                let momentum = trial.suggest_float("momentum", 0.0, 1.0, Scale::Linear)?;
                let dropout = trial.suggest_float("dropout", 0.0, 0.5, Scale::Linear)?;
                let depth = trial.suggest_int("depth", 1, 8, Scale::Linear)?;
                let width = trial.suggest_int("width", 16, 512, Scale::Log)?;
                let opt = match trial.suggest_categorical("opt", &MIXED_OPTS)? {
                    ParamValue::Str(s) => s,
                    other => {
                        return Err(Error::InvalidParameter {
                            name: "opt".into(),
                            reason: format!("`{other}` is not an optimizer name"),
                        });
                    }
                };
                mixed6(lr, momentum, dropout, depth, width, &opt)?
            }
        })
    }
}

/// `x0..x{D-1}`, each a float in `[low, high]`.
fn box_params<const D: usize>(trial: &mut Trial, low: f64, high: f64) -> Result<[f64; D]> {
    let mut x = [0.0; D];
    for (i, xi) in x.iter_mut().enumerate() {
        *xi = trial.suggest_float(&format!("x{i}"), low, high, Scale::Linear)?;
    }
    Ok(x)
}

/// The loss of a [`Problem::Curves`] trial at `step`.
fn curve(x0: f64, x1: f64, speed: f64, step: u64) -> f64 {
    let final_loss = 0.05 + (x0 - 0.3).powi(2) + (x1 - 0.7).powi(2);
    let tau = 2.0 + 20.0 * (1.0 - speed);
    final_loss + (-(step as f64) / tau).exp()
}

fn branin(x0: f64, x1: f64) -> f64 {
    let (b, c, t) = (5.1 / (4.0 * PI * PI), 5.0 / PI, 1.0 / (8.0 * PI));
    (x1 - b * x0 * x0 + c * x0 - 6.0).powi(2) + 10.0 * (1.0 - t) * x0.cos() + 10.0
}

fn hartmann6(x: &[f64; 6]) -> f64 {
    -HARTMANN_ALPHA
        .iter()
        .zip(HARTMANN_A.iter().zip(&HARTMANN_P))
        .map(|(alpha, (a, p))| {
            let d: f64 = (0..6).map(|j| a[j] * (x[j] - p[j]).powi(2)).sum();
            alpha * (-d).exp()
        })
        .sum::<f64>()
}

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn mixed6(lr: f64, momentum: f64, dropout: f64, depth: i64, width: i64, opt: &str) -> Result<f64> {
    let (u_opt, offset) = match opt {
        "adam" => (-2.5, 0.0),
        "sgd" => (-1.5, 0.1),
        "rmsprop" => (-3.0, 0.05),
        "adagrad" => (-2.0, 0.2),
        other => {
            return Err(Error::InvalidParameter {
                name: "opt".into(),
                reason: format!("unknown optimizer `{other}`"),
            });
        }
    };
    let u = lr.log10() - u_opt;
    let w = (width as f64).log2() - 7.0;
    let (dd, dz) = (depth as f64 - 5.0, dropout - 0.2);
    Ok(offset
        + 0.5 * u * u
        + 2.0 * (momentum - 0.9 - 0.1 * u).powi(2)
        + 4.0 * dz * dz
        + 0.1 * (3.0 * PI * dz).sin().powi(2)
        + 0.05 * dd * dd
        + 0.02 * dd * w
        + 0.1 * w * w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RandomSampler, Study};

    #[test]
    fn optima_are_where_the_harness_says() {
        assert!((branin(PI, 2.275) - Problem::Branin.optimum()).abs() < 1e-12);
        assert!((branin(-PI, 12.275) - Problem::Branin.optimum()).abs() < 1e-12);
        let h = [
            0.201_689_508_539_761_7,
            0.150_010_693_432_875_93,
            0.476_873_973_659_767_7,
            0.275_332_428_504_474_15,
            0.311_651_615_223_032_86,
            0.657_300_532_946_453_3,
        ];
        assert!((hartmann6(&h) - Problem::Hartmann6.optimum()).abs() < 1e-9);
        assert_eq!(rosenbrock(&[1.0; 5]), 0.0);
        assert_eq!(rosenbrock(&[0.0, 0.0]), 1.0);
        let best = mixed6(10f64.powf(-2.5), 0.9, 0.2, 5, 128, "adam").unwrap();
        assert!(best.abs() < 1e-12);
        // Another optimizer's basin is worse by its offset.
        let sgd = mixed6(10f64.powf(-1.5), 0.9, 0.2, 5, 128, "sgd").unwrap();
        assert!((sgd - 0.1).abs() < 1e-12);
        assert!(mixed6(0.01, 0.9, 0.2, 5, 128, "lion").is_err());
    }

    #[test]
    fn random_points_are_never_below_the_optimum() {
        for name in PROBLEM_NAMES {
            let problem = Problem::by_name(name).unwrap();
            let study = Study::builder(name)
                .with_sampler(RandomSampler::new(3))
                .build()
                .unwrap();
            study.optimize(200, |t| problem.evaluate(t)).unwrap();
            let trials = study.trials().unwrap();
            assert_eq!(trials.len(), 200);
            for t in &trials {
                let v = t.value.unwrap();
                assert!(v >= problem.optimum() - 1e-9, "{name}: {v}");
            }
            let dims = match problem {
                Problem::Branin => 2,
                Problem::Curves => 3,
                Problem::Rosenbrock5 => 5,
                Problem::Hartmann6 | Problem::Mixed6 => 6,
            };
            assert_eq!(trials[0].params.len(), dims, "{name}");
        }
        assert!(Problem::by_name("sphere").is_err());
    }

    #[test]
    fn curves_report_every_step_and_get_pruned() {
        assert!((curve(0.3, 0.7, 1.0, CURVE_STEPS) - Problem::Curves.optimum()).abs() < 1e-15);
        // A slow learner is worse early than a fast one with a worse final loss, better late.
        let (slow, fast) = ((0.3, 0.7, 0.0), (0.5, 0.5, 1.0));
        let at = |(a, b, s): (f64, f64, f64), t| curve(a, b, s, t);
        assert!(at(slow, 5) > at(fast, 5) && at(slow, CURVE_STEPS) < at(fast, CURVE_STEPS));
        let study = Study::builder("curves")
            .with_sampler(RandomSampler::new(1))
            .with_pruner(crate::pruners::by_name("median").unwrap())
            .build()
            .unwrap();
        study.optimize(30, |t| Problem::Curves.evaluate(t)).unwrap();
        let trials = study.trials().unwrap();
        let pruned = trials
            .iter()
            .filter(|t| t.state == lepton_core::TrialState::Pruned)
            .count();
        assert!(
            pruned > 0,
            "the median pruner stopped none of 30 random trials"
        );
        for t in &trials {
            let steps = t.intermediate_values.len() as u64;
            match t.state {
                lepton_core::TrialState::Complete => assert_eq!(steps, CURVE_STEPS),
                _ => assert!(steps < CURVE_STEPS),
            }
        }
        assert!(crate::pruners::by_name("lion").is_err());
    }
}
