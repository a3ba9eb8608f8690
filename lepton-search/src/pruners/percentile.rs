//! Percentile and median pruning: stop a trial whose best report so far is worse than a
//! percentile of the complete trials' reports at the same step.

use lepton_core::{Direction, Error, FrozenTrial, History, Pruner, Result};

use super::StepSchedule;

/// Prunes a trial when its best intermediate value so far is worse than the `percentile`-th
/// percentile of the complete trials' values at its latest step (Optuna's `PercentilePruner`;
/// percentiles interpolate linearly, as numpy's).
///
/// Nothing is pruned before `n_startup_trials` trials have completed, before step
/// `n_warmup_steps`, off the `interval_steps` grid, or while fewer than `n_min_trials` complete
/// trials reported at that step. A trial that reported a NaN is pruned.
#[derive(Debug, Clone, Copy)]
pub struct PercentilePruner {
    percentile: f64,
    n_startup_trials: usize,
    n_min_trials: usize,
    schedule: StepSchedule,
}

impl PercentilePruner {
    /// Prunes below the `percentile` (in `[0, 100]`; 25 keeps the best quarter running).
    /// Optuna's defaults otherwise: 5 start-up trials, no warm-up, every step, 1 trial.
    pub fn new(percentile: f64) -> Result<Self> {
        if !(0.0..=100.0).contains(&percentile) {
            return Err(Error::InvalidParameter {
                name: "percentile".into(),
                reason: format!("must be within [0, 100], got {percentile}"),
            });
        }
        Ok(PercentilePruner {
            percentile,
            n_startup_trials: 5,
            n_min_trials: 1,
            schedule: StepSchedule::default(),
        })
    }

    /// The median pruner (Optuna's `MedianPruner`): prunes a trial worse than the median.
    #[doc(alias = "MedianPruner")]
    pub fn median() -> Self {
        PercentilePruner {
            percentile: 50.0,
            n_startup_trials: 5,
            n_min_trials: 1,
            schedule: StepSchedule::default(),
        }
    }

    /// Complete trials needed before anything is pruned.
    pub fn with_n_startup_trials(mut self, n: usize) -> Self {
        self.n_startup_trials = n;
        self
    }

    /// Steps before which a trial is never pruned.
    pub fn with_n_warmup_steps(mut self, n: u64) -> Self {
        self.schedule.n_warmup_steps = n;
        self
    }

    /// Prune only on every `n`-th step after the warm-up (at least 1).
    pub fn with_interval_steps(mut self, n: u64) -> Self {
        self.schedule.interval_steps = n.max(1);
        self
    }

    /// Complete trials that must have reported at a step before it can prune.
    pub fn with_n_min_trials(mut self, n: usize) -> Self {
        self.n_min_trials = n.max(1);
        self
    }
}

impl Pruner for PercentilePruner {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        self.prune_reason(history, trial).is_some()
    }

    fn prune_reason(&self, history: &History, trial: &FrozenTrial) -> Option<String> {
        let (complete, step) = self
            .schedule
            .judged_step(history, trial, self.n_startup_trials)?;
        let direction = history.direction();
        let values = trial.intermediate_values.values();
        if values.clone().any(|v| v.is_nan()) {
            return Some("a report is NaN".into());
        }
        let best = match direction {
            Direction::Minimize => values.copied().fold(f64::INFINITY, f64::min),
            Direction::Maximize => values.copied().fold(f64::NEG_INFINITY, f64::max),
        };
        let mut at_step: Vec<f64> = complete
            .iter()
            .filter_map(|t| t.intermediate_values.get(&step).copied())
            .filter(|v| !v.is_nan())
            .collect();
        if at_step.len() < self.n_min_trials {
            return None;
        }
        let q = match direction {
            Direction::Minimize => self.percentile,
            Direction::Maximize => 100.0 - self.percentile,
        };
        let n = at_step.len();
        let p = percentile(&mut at_step, q);
        let worse = match direction {
            Direction::Minimize => best > p,
            Direction::Maximize => best < p,
        };
        worse.then(|| {
            format!(
                "best value so far {best} is worse than {p}, the {q}th percentile of {n} \
                 complete trials at step {step}"
            )
        })
    }
}

/// numpy's default (linear) percentile of non-empty `values`, `q` in `[0, 100]`.
fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = q / 100.0 * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    values[lo] + (values[hi] - values[lo]) * (rank - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::TrialState;

    fn trial(number: u64, state: TrialState, reports: &[(u64, f64)]) -> FrozenTrial {
        let mut t = FrozenTrial::new(number);
        t.state = state;
        t.intermediate_values = reports.iter().copied().collect();
        if state == TrialState::Complete {
            t.value = reports.last().map(|r| r.1);
        }
        t
    }

    fn history(direction: Direction, finals: &[f64]) -> History {
        let trials = finals
            .iter()
            .enumerate()
            .map(|(i, v)| trial(i as u64, TrialState::Complete, &[(1, *v), (2, *v)]))
            .collect();
        History::new(direction, trials)
    }

    #[test]
    fn numpy_percentiles() {
        assert_eq!(percentile(&mut [3.0, 1.0, 2.0, 4.0], 50.0), 2.5);
        assert_eq!(percentile(&mut [1.0, 2.0, 3.0, 4.0, 5.0], 25.0), 2.0);
        assert_eq!(percentile(&mut [7.0], 90.0), 7.0);
    }

    #[test]
    fn median_prunes_the_worse_half_in_either_direction() {
        let h = history(Direction::Minimize, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let pruner = PercentilePruner::median();
        assert!(pruner.should_prune(&h, &trial(9, TrialState::Running, &[(1, 3.5)])));
        assert!(!pruner.should_prune(&h, &trial(9, TrialState::Running, &[(1, 2.5)])));
        // A tie with the median is not worse than it.
        assert!(!pruner.should_prune(&h, &trial(9, TrialState::Running, &[(1, 3.0)])));
        // The trial's best report counts, not its last.
        assert!(!pruner.should_prune(&h, &trial(9, TrialState::Running, &[(1, 0.5), (2, 9.0)])));
        // The reason, for the log, names the numbers compared.
        assert_eq!(
            pruner
                .prune_reason(&h, &trial(9, TrialState::Running, &[(1, 3.5)]))
                .as_deref(),
            Some(
                "best value so far 3.5 is worse than 3, the 50th percentile of 5 complete trials at step 1"
            )
        );
        assert_eq!(
            pruner.prune_reason(&h, &trial(9, TrialState::Running, &[(1, 2.5)])),
            None
        );
        let h = history(Direction::Maximize, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(pruner.should_prune(&h, &trial(9, TrialState::Running, &[(1, 2.5)])));
        assert!(!pruner.should_prune(&h, &trial(9, TrialState::Running, &[(1, 3.5)])));
    }

    #[test]
    fn start_up_warm_up_intervals_and_missing_steps() {
        let bad = trial(9, TrialState::Running, &[(1, 100.0)]);
        // Four complete trials are fewer than the five start-up trials.
        let few = history(Direction::Minimize, &[1.0, 2.0, 3.0, 4.0]);
        assert!(!PercentilePruner::median().should_prune(&few, &bad));
        let h = history(Direction::Minimize, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(
            !PercentilePruner::median()
                .with_n_warmup_steps(2)
                .should_prune(&h, &bad)
        );
        let at3 = trial(9, TrialState::Running, &[(3, 100.0)]);
        // No complete trial reported at step 3: nothing to compare with.
        assert!(!PercentilePruner::median().should_prune(&h, &at3));
        // Interval 2 after no warm-up: a report at step 1 after one at step 0 falls in the
        // interval [0, 2) that already had its chance.
        let second = trial(9, TrialState::Running, &[(0, 100.0), (1, 100.0)]);
        assert!(
            !PercentilePruner::median()
                .with_interval_steps(2)
                .should_prune(&h, &second)
        );
        assert!(PercentilePruner::median().should_prune(&h, &second));
        let at2 = trial(9, TrialState::Running, &[(2, 100.0)]);
        assert!(
            PercentilePruner::median()
                .with_interval_steps(2)
                .should_prune(&h, &at2)
        );
        // Too few complete trials at the step.
        assert!(
            !PercentilePruner::median()
                .with_n_min_trials(6)
                .should_prune(&h, &at2)
        );
        // No report yet.
        assert!(!PercentilePruner::median().should_prune(&h, &trial(9, TrialState::Running, &[])));
    }

    #[test]
    fn failed_and_pruned_trials_are_not_the_reference_and_nan_is_pruned() {
        let mut trials: Vec<FrozenTrial> = (0..5)
            .map(|i| trial(i, TrialState::Complete, &[(1, 1.0)]))
            .collect();
        // Awful failed and pruned trials must not drag the median up.
        trials.extend((5..20).map(|i| trial(i, TrialState::Failed, &[(1, 1e9)])));
        trials.extend((20..30).map(|i| trial(i, TrialState::Pruned, &[(1, 1e9)])));
        let h = History::new(Direction::Minimize, trials);
        assert!(
            PercentilePruner::median()
                .should_prune(&h, &trial(40, TrialState::Running, &[(1, 2.0)]))
        );
        assert!(
            PercentilePruner::median()
                .should_prune(&h, &trial(40, TrialState::Running, &[(1, f64::NAN)]))
        );
    }

    #[test]
    fn percentile_is_validated() {
        assert!(PercentilePruner::new(-1.0).is_err());
        assert!(PercentilePruner::new(100.5).is_err());
        let h = history(Direction::Minimize, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let p25 = PercentilePruner::new(25.0).unwrap();
        assert!(p25.should_prune(&h, &trial(9, TrialState::Running, &[(1, 2.5)])));
        assert!(!p25.should_prune(&h, &trial(9, TrialState::Running, &[(1, 1.5)])));
    }
}
