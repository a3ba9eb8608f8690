//! Hyperband: several successive-halving brackets, from aggressive (early first rung) to
//! conservative, each trial assigned to one.

use lepton_core::{FrozenTrial, History, Pruner, Result};

use super::{SuccessiveHalvingPruner, resource};
use crate::samplers::stream_seed;

/// Optuna's `HyperbandPruner`. With `n = floor(log_eta(max_resource / min_resource)) + 1`
/// brackets, bracket `b` is a [`SuccessiveHalvingPruner`] whose first rung is `eta^b` times
/// later; a trial joins bracket `b` with probability proportional to
/// `ceil(n * eta^(n-1-b) / (n - b))` (more trials in the aggressive brackets), fixed by its
/// number, and competes only with the trials of its bracket.
///
/// With `max_resource` unset ("auto") it is the last step of the first complete trial plus
/// one; until a trial completes nothing is pruned, and the trials up to that first complete
/// one do not compete at the rungs (as in Optuna).
#[derive(Debug, Clone, Copy)]
pub struct HyperbandPruner {
    /// Every bracket's pruner but for its early-stopping rate: minimum resource, reduction
    /// factor and bootstrap count live here once.
    halving: SuccessiveHalvingPruner,
    max_resource: Option<u64>,
}

impl Default for HyperbandPruner {
    fn default() -> Self {
        let mut halving = SuccessiveHalvingPruner::new().with_min_resource(1);
        halving.reduction_factor = 3;
        HyperbandPruner {
            halving,
            max_resource: None,
        }
    }
}

impl HyperbandPruner {
    /// Optuna's defaults: minimum resource 1, automatic maximum, reduction factor 3.
    pub fn new() -> Self {
        Self::default()
    }

    /// The smallest budget (steps) a trial gets before its first rung (at least 1).
    pub fn with_min_resource(mut self, steps: u64) -> Self {
        self.halving = self.halving.with_min_resource(steps);
        self
    }

    /// The full budget of a trial, in steps.
    pub fn with_max_resource(mut self, steps: u64) -> Self {
        self.max_resource = Some(steps.max(1));
        self
    }

    /// The reduction factor `eta` of every bracket (at least 2).
    pub fn with_reduction_factor(mut self, factor: u64) -> Result<Self> {
        self.halving = self.halving.with_reduction_factor(factor)?;
        Ok(self)
    }

    /// Trials that must have reached a rung before it prunes anyone there.
    pub fn with_bootstrap_count(mut self, n: usize) -> Self {
        self.halving = self.halving.with_bootstrap_count(n);
        self
    }

    fn min_resource(&self) -> u64 {
        self.halving.min_resource.unwrap_or(1)
    }

    fn reduction_factor(&self) -> u64 {
        self.halving.reduction_factor
    }

    /// The number of brackets for a maximum resource.
    fn n_brackets(&self, max_resource: u64) -> u32 {
        let mut n = 0;
        let mut r = self.min_resource();
        while r <= max_resource {
            n += 1;
            match r.checked_mul(self.reduction_factor()) {
                Some(next) => r = next,
                None => break,
            }
        }
        n.max(1)
    }

    /// Each bracket's share of the trials.
    fn budgets(&self, n: u32) -> Vec<u64> {
        (0..n)
            .map(|b| {
                let s = n - 1 - b;
                let top = n as f64 * (self.reduction_factor() as f64).powi(s as i32);
                (top / (s + 1) as f64).ceil() as u64
            })
            .collect()
    }

    /// The bracket of trial `number` among `n_brackets`.
    pub fn bracket_of(&self, number: u64, n_brackets: u32) -> u32 {
        bracket(number, &self.budgets(n_brackets))
    }
}

/// The bracket of trial `number`, drawn by its hash in proportion to `budgets`.
fn bracket(number: u64, budgets: &[u64]) -> u32 {
    let total: u64 = budgets.iter().sum();
    let mut left = stream_seed(0, number, "hyperband") % total.max(1);
    for (b, budget) in budgets.iter().enumerate() {
        if left < *budget {
            return b as u32;
        }
        left -= budget;
    }
    0
}

impl Pruner for HyperbandPruner {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        self.prune_reason(history, trial).is_some()
    }

    fn prune_reason(&self, history: &History, trial: &FrozenTrial) -> Option<String> {
        // With an automatic maximum, as in Optuna, the trials that ran before it was known
        // (up to the first complete one) never compete at a rung.
        let (max_resource, auto_from) = resource(self.max_resource, history, |step| step + 1)?;
        // The shares are computed once, not once per trial of the history.
        let budgets = self.budgets(self.n_brackets(max_resource));
        let mine = bracket(trial.number, &budgets);
        let same_bracket = history
            .trials()
            .iter()
            .filter(|t| bracket(t.number, &budgets) == mine)
            .filter(|t| auto_from.is_none_or(|first| t.number > first))
            .cloned()
            .collect();
        let view = History::shared(history.direction(), same_bracket);
        self.halving
            .with_min_early_stopping_rate(mine)
            .prune_reason(&view, trial)
            .map(|why| format!("in bracket {mine}: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::{Direction, TrialState};

    #[test]
    fn brackets_follow_optunas_budgets() {
        let p = HyperbandPruner::new().with_max_resource(27);
        // min 1, eta 3, max 27: rungs 1, 3, 9, 27 -> 4 brackets.
        assert_eq!(p.n_brackets(27), 4);
        assert_eq!(p.budgets(4), vec![27, 12, 6, 4]);
        let mut counts = [0usize; 4];
        for number in 0..49_000 {
            counts[p.bracket_of(number, 4) as usize] += 1;
        }
        // Shares 27:12:6:4 of 49 within 5%.
        for (count, budget) in counts.iter().zip([27.0, 12.0, 6.0, 4.0]) {
            let expected = 49_000.0 * budget / 49.0;
            assert!(
                (*count as f64 - expected).abs() < 0.05 * expected,
                "{counts:?}"
            );
        }
        assert_eq!(p.bracket_of(17, 4), p.bracket_of(17, 4));
    }

    #[test]
    fn trials_compete_only_within_their_bracket() {
        let p = HyperbandPruner::new().with_max_resource(27);
        let n = p.n_brackets(27);
        // Find two trial numbers in bracket 0 (first rung at step 1).
        let in0: Vec<u64> = (0..200)
            .filter(|&i| p.bracket_of(i, n) == 0)
            .take(12)
            .collect();
        let other: Vec<u64> = (0..200)
            .filter(|&i| p.bracket_of(i, n) != 0)
            .take(12)
            .collect();
        let complete = |number: u64, loss: f64| {
            let mut t = FrozenTrial::new(number);
            t.state = TrialState::Complete;
            t.intermediate_values = (1..=27).map(|s| (s, loss)).collect();
            t.value = Some(loss);
            t
        };
        // Excellent trials in other brackets do not count against a bracket-0 trial...
        let strangers: Vec<FrozenTrial> = other.iter().map(|&i| complete(i, 0.0)).collect();
        let h = History::new(Direction::Minimize, strangers);
        let mut candidate = FrozenTrial::new(in0[11]);
        candidate.intermediate_values.insert(1, 5.0);
        assert!(!p.should_prune(&h, &candidate));
        // ... while better trials of its own bracket do.
        let rivals: Vec<FrozenTrial> = in0[..8].iter().map(|&i| complete(i, 1.0)).collect();
        let h = History::new(Direction::Minimize, rivals);
        assert!(p.should_prune(&h, &candidate));
        assert!(HyperbandPruner::new().with_reduction_factor(1).is_err());
    }

    #[test]
    fn failed_rivals_do_not_count_ties_go_on_and_late_reports_count_at_their_rung() {
        let p = HyperbandPruner::new().with_max_resource(27);
        let n = p.n_brackets(27);
        let in0: Vec<u64> = (0..400)
            .filter(|&i| p.bracket_of(i, n) == 0)
            .take(22)
            .collect();
        assert_eq!(in0.len(), 22);
        let with = |number: u64, state: TrialState, from: u64, loss: f64| {
            let mut t = FrozenTrial::new(number);
            t.state = state;
            t.intermediate_values = (from..=27).map(|s| (s, loss)).collect();
            t.value = (state == TrialState::Complete).then_some(loss);
            t
        };
        // Eight rivals at 1.0 and six failed trials that had reported 0.0.
        let mut trials: Vec<FrozenTrial> = in0[..8]
            .iter()
            .map(|&i| with(i, TrialState::Complete, 1, 1.0))
            .collect();
        trials.extend(
            in0[8..14]
                .iter()
                .map(|&i| with(i, TrialState::Failed, 1, 0.0)),
        );
        let h = History::new(Direction::Minimize, trials.clone());
        let at_step_1 = |loss: f64| {
            let mut t = FrozenTrial::new(in0[15]);
            t.intermediate_values.insert(1, loss);
            t
        };
        // 9 values at the rung (the failed ones left out): a tie with the cut-off goes on...
        assert!(!p.should_prune(&h, &at_step_1(1.0)));
        // ... a worse value does not.
        assert!(p.should_prune(&h, &at_step_1(1.5)));
        // A rival that first reported at step 2 counts at the step-1 rung with that value:
        // six of them at 0.0 put the cut-off (15 values, the best 5 go on) below 1.0.
        trials.extend(
            in0[16..22]
                .iter()
                .map(|&i| with(i, TrialState::Complete, 2, 0.0)),
        );
        let h = History::new(Direction::Minimize, trials);
        assert!(p.should_prune(&h, &at_step_1(1.0)));
    }

    #[test]
    fn auto_max_resource_waits_for_a_complete_trial() {
        let p = HyperbandPruner::new();
        let mut t = FrozenTrial::new(3);
        t.intermediate_values.insert(1, 1e9);
        assert!(!p.should_prune(&History::default(), &t));
    }
}
