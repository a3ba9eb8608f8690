//! Synchronous Hyperband (Li et al., 2018): budgets handed out by a scheduler, and promoted
//! configurations continued from where their last budget stopped.
//!
//! The pruners ([`HyperbandPruner`](crate::HyperbandPruner) and friends) stop a trial that
//! runs to the end unless told otherwise, Optuna's asynchronous way. A scheduler instead gives
//! each trial a budget (epochs, steps) up front. In each bracket, `n` new configurations get
//! the bracket's smallest budget; the best `1/eta` of them are promoted to `eta` times the
//! budget, and so on up to the largest. A promotion is a new trial with the same parameters
//! whose [`Budget`] names the configuration and the steps it has already trained, so an
//! objective that checkpoints (see `lepton_models`' `with_checkpoints` and
//! `with_epoch_budget`) continues the run instead of training from zero: a configuration that
//! reaches the largest budget costs what one full run costs, whichever rungs it climbed.
//!
//! Every trial records its budget and configuration as user attributes ([`BUDGET_ATTR`],
//! [`CONFIG_ATTR`]), so the study's export shows the ladder. Pair it with
//! [`BohbSampler`](crate::BohbSampler) for BOHB: new configurations are then drawn from TPE
//! fitted on the largest budget with enough results.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lepton_core::{Error, FrozenTrial, ParamValue, Result, Trial, TrialState};

use crate::Study;

/// The user attribute with the budget (steps) a scheduled trial was given.
pub const BUDGET_ATTR: &str = "lepton.budget";
/// The user attribute naming a scheduled trial's configuration: the number of the trial that
/// first ran it.
pub const CONFIG_ATTR: &str = "lepton.config";

/// What a scheduled trial trains for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Train up to this step, counted from the configuration's start.
    pub steps: u64,
    /// The configuration: the number of the trial that first ran it. Checkpoints kept under
    /// this number let a promoted trial go on from where the last one stopped.
    pub config: u64,
    /// The steps earlier trials already trained of this configuration (0 for a new one).
    pub resumed_from: u64,
}

/// Synchronous Hyperband over budgets from `min_budget` to `max_budget` steps with reduction
/// factor `eta` (3 by default), or a single successive-halving bracket.
#[derive(Debug, Clone)]
pub struct HyperbandScheduler {
    min_budget: u64,
    max_budget: u64,
    eta: u64,
    only_most_aggressive: bool,
    rounds: usize,
    timeout: Option<Duration>,
    max_trials: Option<usize>,
}

/// One rung of a bracket: how many configurations run, and to which budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// Configurations that run at this rung.
    pub configurations: usize,
    /// The budget (steps) each is trained up to.
    pub budget: u64,
}

impl HyperbandScheduler {
    /// Budgets from `min_budget` to `max_budget` steps (`1 <= min <= max`), reduction factor
    /// 3, every bracket, one round.
    pub fn new(min_budget: u64, max_budget: u64) -> Result<Self> {
        if min_budget == 0 || min_budget > max_budget {
            return Err(Error::InvalidParameter {
                name: "budgets".into(),
                reason: format!(
                    "need 1 <= min_budget <= max_budget, got {min_budget} and {max_budget}"
                ),
            });
        }
        Ok(HyperbandScheduler {
            min_budget,
            max_budget,
            eta: 3,
            only_most_aggressive: false,
            rounds: 1,
            timeout: None,
            max_trials: None,
        })
    }

    /// Sets the reduction factor `eta` (at least 2): each rung keeps the best `1/eta`.
    pub fn with_reduction_factor(mut self, eta: u64) -> Result<Self> {
        if eta < 2 {
            return Err(Error::InvalidParameter {
                name: "reduction_factor".into(),
                reason: format!("must be at least 2, got {eta}"),
            });
        }
        self.eta = eta;
        Ok(self)
    }

    /// Runs only the most aggressive bracket (plain successive halving).
    pub fn successive_halving_only(mut self) -> Self {
        self.only_most_aggressive = true;
        self
    }

    /// Repeats the brackets this many times (at least 1).
    pub fn with_rounds(mut self, rounds: usize) -> Self {
        self.rounds = rounds.max(1);
        self
    }

    /// Starts no trial once `timeout` has passed since [`run`](Self::run) began.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Starts at most this many trials (promotions included).
    pub fn with_max_trials(mut self, trials: usize) -> Self {
        self.max_trials = Some(trials);
        self
    }

    /// The brackets of one round, most aggressive first: Li et al.'s
    /// `s_max = floor(log_eta(max / min))`; bracket `s` starts `ceil((s_max + 1) / (s + 1) *
    /// eta^s)` configurations at `max / eta^s` and keeps `floor(n_i / eta)` at each rung.
    pub fn brackets(&self) -> Vec<Vec<Rung>> {
        let eta = self.eta;
        let mut s_max = 0u32;
        while self.min_budget.saturating_mul(eta.pow(s_max + 1)) <= self.max_budget {
            s_max += 1;
        }
        let last = if self.only_most_aggressive { s_max } else { 0 };
        (last..=s_max)
            .rev()
            .map(|s| {
                let n = ((u64::from(s_max) + 1) * eta.pow(s)).div_ceil(u64::from(s) + 1);
                (0..=s)
                    .map(|i| Rung {
                        configurations: (n / eta.pow(i)) as usize,
                        budget: (self.max_budget / eta.pow(s - i)).max(self.min_budget),
                    })
                    .take_while(|r| r.configurations > 0)
                    .collect()
            })
            .collect()
    }

    /// Runs the schedule on `study`: `objective` trains `trial` up to `budget.steps` and
    /// returns its score (a failed or pruned trial is not promoted); `on_trial` sees every
    /// finished trial. Only a storage error stops the run.
    pub fn run<F, O>(&self, study: &Study, mut objective: F, mut on_trial: O) -> Result<()>
    where
        F: FnMut(&mut Trial, Budget) -> Result<f64>,
        O: FnMut(&FrozenTrial),
    {
        let started = Instant::now();
        let mut trials_started = 0usize;
        for _ in 0..self.rounds {
            for bracket in self.brackets() {
                // The configurations that go on, best first.
                let mut survivors: Vec<Survivor> = Vec::new();
                for (i, rung) in bracket.iter().enumerate() {
                    let entrants: Vec<Option<Survivor>> = if i == 0 {
                        (0..rung.configurations).map(|_| None).collect()
                    } else {
                        survivors
                            .drain(..)
                            .take(rung.configurations)
                            .map(Some)
                            .collect()
                    };
                    let mut results = Vec::new();
                    for entrant in entrants {
                        let out_of_time = self.timeout.is_some_and(|t| started.elapsed() >= t);
                        if out_of_time || self.max_trials.is_some_and(|m| trials_started >= m) {
                            return Ok(());
                        }
                        trials_started += 1;
                        let mut trial = match &entrant {
                            None => study.ask()?,
                            Some(s) => study.ask_with(s.params.clone())?,
                        };
                        let budget = Budget {
                            steps: rung.budget,
                            config: entrant.as_ref().map_or(trial.number(), |s| s.config),
                            resumed_from: entrant.as_ref().map_or(0, |s| s.trained),
                        };
                        trial.set_user_attr(BUDGET_ATTR, budget.steps as i64)?;
                        trial.set_user_attr(CONFIG_ATTR, budget.config as i64)?;
                        // The heartbeat (a persistent storage's) is kept while the trial trains.
                        let outcome =
                            study.beating_while(trial.number(), || objective(&mut trial, budget));
                        let record = study.finish(trial, outcome)?;
                        on_trial(&record);
                        if record.state == TrialState::Complete
                            && let Some(value) = record.value
                        {
                            results.push(Survivor {
                                value,
                                config: budget.config,
                                params: record
                                    .params
                                    .into_iter()
                                    .map(|(k, v)| (k.as_str().to_owned(), v))
                                    .collect(),
                                trained: budget.steps,
                            });
                        }
                    }
                    let direction = study.direction();
                    results.sort_by(|a, b| {
                        if direction.is_better(a.value, b.value) {
                            std::cmp::Ordering::Less
                        } else if direction.is_better(b.value, a.value) {
                            std::cmp::Ordering::Greater
                        } else {
                            a.config.cmp(&b.config) // ties: the older configuration first
                        }
                    });
                    survivors = results;
                }
            }
        }
        Ok(())
    }
}

/// A configuration that completed a rung.
struct Survivor {
    value: f64,
    config: u64,
    params: BTreeMap<String, ParamValue>,
    /// The budget it was trained to.
    trained: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RandomSampler;
    use lepton_core::{Direction, Scale};

    fn rungs(s: &HyperbandScheduler) -> Vec<Vec<(usize, u64)>> {
        s.brackets()
            .iter()
            .map(|b| b.iter().map(|r| (r.configurations, r.budget)).collect())
            .collect()
    }

    #[test]
    fn brackets_follow_li_et_al() {
        // R = 81, eta = 3: the table in the Hyperband paper (section 3.3).
        let s = HyperbandScheduler::new(1, 81).unwrap();
        let b = rungs(&s);
        assert_eq!(b.len(), 5);
        assert_eq!(b[0], [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)]);
        assert_eq!(b[1], [(34, 3), (11, 9), (3, 27), (1, 81)]);
        assert_eq!(b[2], [(15, 9), (5, 27), (1, 81)]);
        assert_eq!(b[3], [(8, 27), (2, 81)]);
        assert_eq!(b[4], [(5, 81)]);
        assert_eq!(rungs(&s.successive_halving_only()), [b[0].clone()]);
        let small = HyperbandScheduler::new(2, 12).unwrap();
        assert_eq!(rungs(&small), [vec![(3, 4), (1, 12)], vec![(2, 12)]]);
        assert!(HyperbandScheduler::new(0, 9).is_err());
        assert!(HyperbandScheduler::new(10, 9).is_err());
        assert!(
            HyperbandScheduler::new(1, 9)
                .unwrap()
                .with_reduction_factor(1)
                .is_err()
        );
    }

    #[test]
    fn the_best_go_on_from_where_they_stopped_and_failures_stay_behind() {
        let study = Study::builder("ladder")
            .with_direction(Direction::Minimize)
            .with_sampler(RandomSampler::new(3))
            .build()
            .unwrap();
        let scheduler = HyperbandScheduler::new(1, 9)
            .unwrap()
            .successive_halving_only();
        // A "run" per configuration: the steps trained so far, which a promotion must find
        // where the previous budget left it.
        let mut trained: BTreeMap<u64, u64> = BTreeMap::new();
        let mut seen = Vec::new();
        scheduler
            .run(
                &study,
                |trial, budget| {
                    let x = trial.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
                    let done = trained.entry(budget.config).or_default();
                    assert_eq!(*done, budget.resumed_from, "resumes where it stopped");
                    *done = budget.steps;
                    if x > 0.9 {
                        return Err(Error::InvalidInput("diverged".into()));
                    }
                    Ok(x / budget.steps as f64)
                },
                |t| seen.push(t.number),
            )
            .unwrap();
        let trials = study.trials().unwrap();
        assert_eq!(seen.len(), trials.len());
        let attr = |t: &FrozenTrial, k: &str| t.user_attrs[k].as_i64().unwrap() as u64;
        let at = |b: u64| -> Vec<&FrozenTrial> {
            trials
                .iter()
                .filter(|t| attr(t, BUDGET_ATTR) == b)
                .collect()
        };
        assert_eq!(at(1).len(), 9);
        let ok: Vec<&FrozenTrial> = at(1)
            .into_iter()
            .filter(|t| t.state == TrialState::Complete)
            .collect();
        let mut best: Vec<u64> = ok.iter().map(|t| t.number).collect();
        best.sort_by(|a, b| {
            trials[*a as usize]
                .value
                .unwrap()
                .total_cmp(&trials[*b as usize].value.unwrap())
        });
        // The best third climb, with their own parameters, each once.
        let promoted: Vec<u64> = at(3).iter().map(|t| attr(t, CONFIG_ATTR)).collect();
        assert_eq!(promoted, best[..ok.len().min(3)]);
        for t in at(3) {
            assert_eq!(t.params, trials[attr(t, CONFIG_ATTR) as usize].params);
        }
        assert!(at(9).len() <= 1);
        // A failed configuration is never promoted.
        for t in trials.iter().filter(|t| t.state == TrialState::Failed) {
            assert_eq!(attr(t, BUDGET_ATTR), 1);
        }
        // Every configuration trained exactly to its last budget.
        for (config, steps) in trained {
            let last = trials
                .iter()
                .filter(|t| attr(t, CONFIG_ATTR) == config)
                .map(|t| attr(t, BUDGET_ATTR))
                .max();
            assert_eq!(last, Some(steps));
        }
    }

    #[test]
    fn a_timeout_or_a_trial_cap_starts_no_further_trial() {
        let study = Study::builder("timeout").build().unwrap();
        let scheduler = HyperbandScheduler::new(1, 27)
            .unwrap()
            .with_timeout(Duration::from_millis(30));
        scheduler
            .run(
                &study,
                |trial, _| {
                    std::thread::sleep(Duration::from_millis(50));
                    trial.suggest_float("x", 0.0, 1.0, Scale::Linear)
                },
                |_| {},
            )
            .unwrap();
        assert_eq!(study.trials().unwrap().len(), 1);
        let capped = Study::builder("capped").build().unwrap();
        HyperbandScheduler::new(1, 27)
            .unwrap()
            .with_rounds(3)
            .with_max_trials(7)
            .run(
                &capped,
                |trial, _| trial.suggest_float("x", 0.0, 1.0, Scale::Linear),
                |_| {},
            )
            .unwrap();
        assert_eq!(capped.trials().unwrap().len(), 7);
    }
}
