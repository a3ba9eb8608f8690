//! Asynchronous successive halving (ASHA): trials climb rungs of growing budget, and only the
//! best `1 / reduction_factor` of those that reached a rung go on to the next.

use lepton_core::{Direction, Error, FrozenTrial, History, Pruner, Result, TrialState};

use super::resource;

/// Optuna's `SuccessiveHalvingPruner`. Rung `k` sits at step
/// `min_resource * reduction_factor^(min_early_stopping_rate + k)`. When a trial reports at or
/// after a rung's step, its value there is compared with the values every trial of the history
/// had at that rung; it continues only if it ranks in the best `1 / reduction_factor` (the
/// first trials to reach a rung always continue). It is asynchronous: no trial waits for a
/// rung to fill.
///
/// A trial's value at a rung is its first report at or after the rung's step, read from the
/// intermediate values (no extra bookkeeping in the storage). With `min_resource` unset
/// ("auto"), it is the last step of the first complete trial divided by 100 (at least 1),
/// nothing is pruned before a trial has completed, and, as in Optuna, the trials up to that
/// first complete one do not compete at the rungs (Optuna records rung values only once it
/// knows the resource).
#[derive(Debug, Clone, Copy)]
pub struct SuccessiveHalvingPruner {
    pub(super) min_resource: Option<u64>,
    pub(super) reduction_factor: u64,
    min_early_stopping_rate: u32,
    bootstrap_count: usize,
}

impl Default for SuccessiveHalvingPruner {
    fn default() -> Self {
        SuccessiveHalvingPruner {
            min_resource: None,
            reduction_factor: 4,
            min_early_stopping_rate: 0,
            bootstrap_count: 0,
        }
    }
}

impl SuccessiveHalvingPruner {
    /// Optuna's defaults: automatic minimum resource, reduction factor 4.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first rung's step (at least 1).
    pub fn with_min_resource(mut self, steps: u64) -> Self {
        self.min_resource = Some(steps.max(1));
        self
    }

    /// How much smaller each rung's surviving share is (at least 2).
    pub fn with_reduction_factor(mut self, factor: u64) -> Result<Self> {
        if factor < 2 {
            return Err(Error::InvalidParameter {
                name: "reduction_factor".into(),
                reason: format!("must be at least 2, got {factor}"),
            });
        }
        self.reduction_factor = factor;
        Ok(self)
    }

    /// Shifts every rung up by `rate` powers of the reduction factor (Hyperband's brackets).
    pub fn with_min_early_stopping_rate(mut self, rate: u32) -> Self {
        self.min_early_stopping_rate = rate;
        self
    }

    /// Trials that must have reached a rung before it prunes anyone there.
    pub fn with_bootstrap_count(mut self, n: usize) -> Self {
        self.bootstrap_count = n;
        self
    }

    /// The step of rung `k`; `None` past `u64`.
    fn rung_step(&self, min_resource: u64, k: u32) -> Option<u64> {
        self.reduction_factor
            .checked_pow(self.min_early_stopping_rate.checked_add(k)?)
            .and_then(|f| f.checked_mul(min_resource))
    }
}

/// A trial's value at a rung: its first report at or after `step`.
fn value_at(trial: &FrozenTrial, step: u64) -> Option<f64> {
    trial
        .intermediate_values
        .range(step..)
        .next()
        .map(|(_, v)| *v)
}

impl Pruner for SuccessiveHalvingPruner {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        self.prune_reason(history, trial).is_some()
    }

    fn prune_reason(&self, history: &History, trial: &FrozenTrial) -> Option<String> {
        let (step, _) = trial.last_step()?;
        // With an automatic resource, the trials that ran before it was known never compete.
        let (min_resource, auto_from) =
            resource(self.min_resource, history, |step| (step / 100).max(1))?;
        let mut rung = 0;
        while let Some(rung_step) = self.rung_step(min_resource, rung) {
            if step < rung_step {
                return None;
            }
            let value = value_at(trial, rung_step)?;
            if value.is_nan() {
                return Some(format!(
                    "its value at rung {rung} (step {rung_step}) is NaN"
                ));
            }
            let mut competing: Vec<f64> = history
                .trials()
                .iter()
                .filter(|t| t.number != trial.number && t.state != TrialState::Failed)
                .filter(|t| auto_from.is_none_or(|first| t.number > first))
                .filter_map(|t| value_at(t, rung_step))
                .filter(|v| !v.is_nan())
                .collect();
            competing.push(value);
            let n = competing.len();
            if n <= self.bootstrap_count {
                return Some(format!(
                    "rung {rung} (step {rung_step}) has {n} trials, not more than the \
                     bootstrap count {}",
                    self.bootstrap_count
                ));
            }
            if !promotable(
                value,
                &mut competing,
                self.reduction_factor,
                history.direction(),
            ) {
                return Some(format!(
                    "value {value} at rung {rung} (step {rung_step}) is not in the best 1/{} \
                     of {n} trials",
                    self.reduction_factor
                ));
            }
            rung += 1;
        }
        None
    }
}

/// Whether `value` ranks in the best `1 / reduction_factor` of `competing` (which includes it);
/// the first trials at a rung, fewer than the factor, always do.
fn promotable(
    value: f64,
    competing: &mut [f64],
    reduction_factor: u64,
    direction: Direction,
) -> bool {
    let promotable_index = (competing.len() / reduction_factor as usize).saturating_sub(1);
    competing.sort_by(f64::total_cmp);
    match direction {
        Direction::Minimize => value <= competing[promotable_index],
        Direction::Maximize => competing[competing.len() - 1 - promotable_index] <= value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(number: u64, state: TrialState, curve: &[(u64, f64)]) -> FrozenTrial {
        let mut t = FrozenTrial::new(number);
        t.state = state;
        t.intermediate_values = curve.iter().copied().collect();
        if state == TrialState::Complete {
            t.value = curve.last().map(|c| c.1);
        }
        t
    }

    /// Trials with losses 1..=n at every step 1..=16.
    fn ladder(n: u64) -> Vec<FrozenTrial> {
        (0..n)
            .map(|i| {
                let curve: Vec<(u64, f64)> = (1..=16).map(|s| (s, (i + 1) as f64)).collect();
                trial(i, TrialState::Complete, &curve)
            })
            .collect()
    }

    #[test]
    fn only_the_best_quarter_climbs_each_rung() {
        let p = SuccessiveHalvingPruner::new().with_min_resource(1);
        let h = History::new(Direction::Minimize, ladder(8));
        // Rung 0 at step 1: 9 values, the best 9/4 = 2 go on; loss 1.5 is second best.
        assert!(!p.should_prune(&h, &trial(9, TrialState::Running, &[(1, 1.5)])));
        assert!(p.should_prune(&h, &trial(9, TrialState::Running, &[(1, 3.0)])));
        // A tie with the cut-off value is promoted.
        assert!(!p.should_prune(&h, &trial(9, TrialState::Running, &[(1, 2.0)])));
        // Between rungs (steps 2, 3) nothing new is decided; rung 1 at step 4 decides again.
        let climbing = trial(9, TrialState::Running, &[(1, 1.5), (2, 1.5), (3, 1.5)]);
        assert!(!p.should_prune(&h, &climbing));
        let falls_back = trial(9, TrialState::Running, &[(1, 1.5), (4, 5.0)]);
        assert!(p.should_prune(&h, &falls_back));
        let max = History::new(Direction::Maximize, ladder(8));
        assert!(!p.should_prune(&max, &trial(9, TrialState::Running, &[(1, 7.5)])));
        assert!(p.should_prune(&max, &trial(9, TrialState::Running, &[(1, 3.0)])));
    }

    #[test]
    fn early_trials_go_on_and_auto_waits_for_a_complete_trial() {
        let p = SuccessiveHalvingPruner::new().with_min_resource(1);
        // The first trial at a rung has nobody to lose to.
        let alone = History::new(Direction::Minimize, vec![]);
        assert!(!p.should_prune(&alone, &trial(0, TrialState::Running, &[(1, 99.0)])));
        // Auto: no complete trial yet, no pruning.
        let auto = SuccessiveHalvingPruner::new();
        let running_only = History::new(
            Direction::Minimize,
            vec![trial(0, TrialState::Running, &[(1, 1.0)])],
        );
        assert!(!auto.should_prune(&running_only, &trial(1, TrialState::Running, &[(1, 99.0)])));
        // Auto with a complete trial of 16 steps: min resource 1. As in Optuna, the first
        // complete trial (loss 1) ran before the resource was known and does not compete: 3.0
        // ranks second of 8 and goes on, where with a fixed minimum resource (all 9
        // competing) it would be pruned.
        let h = History::new(Direction::Minimize, ladder(8));
        assert!(!auto.should_prune(&h, &trial(9, TrialState::Running, &[(1, 3.0)])));
        assert!(p.should_prune(&h, &trial(9, TrialState::Running, &[(1, 3.0)])));
        assert!(auto.should_prune(&h, &trial(9, TrialState::Running, &[(1, 3.5)])));
        // NaN is pruned; a trial with no report is not.
        assert!(p.should_prune(&h, &trial(9, TrialState::Running, &[(1, f64::NAN)])));
        assert!(!p.should_prune(&h, &trial(9, TrialState::Running, &[])));
    }

    #[test]
    fn failed_trials_do_not_compete_and_bootstrap_waits() {
        let mut trials = ladder(3);
        trials.extend((3..20).map(|i| trial(i, TrialState::Failed, &[(1, 0.0)])));
        let h = History::new(Direction::Minimize, trials);
        let p = SuccessiveHalvingPruner::new().with_min_resource(1);
        // 4 competing values (3 + this one): the best 1 goes on; 0.5 beats them all.
        assert!(!p.should_prune(&h, &trial(30, TrialState::Running, &[(1, 0.5)])));
        assert!(p.should_prune(&h, &trial(30, TrialState::Running, &[(1, 2.0)])));
        let patient = p.with_bootstrap_count(4);
        assert!(patient.should_prune(&h, &trial(30, TrialState::Running, &[(1, 0.5)])));
        assert!(
            SuccessiveHalvingPruner::new()
                .with_reduction_factor(1)
                .is_err()
        );
    }
}
