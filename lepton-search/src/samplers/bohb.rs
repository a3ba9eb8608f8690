//! BOHB's model (Falkner et al., 2018): TPE fitted on the largest budget that has enough
//! observations. Paired with [`HyperbandPruner`](crate::HyperbandPruner), whose rungs are the
//! budgets, it proposes configurations from what the cheap, early steps already show instead
//! of sampling at random until enough trials have finished.
//!
//! A trial's "budget" here is a step of its intermediate values. Before each sample, the
//! sampler picks the largest step at which at least `min_points` trials (complete or pruned)
//! reported a value, and hands TPE a history where each of those trials is complete with its
//! value at that step; running trials stay running (for TPE's constant liar), the others are
//! left out. Until some step has enough reports, TPE sees the study as it is.

use std::collections::BTreeMap;
use std::sync::Arc;

use lepton_core::{
    Distribution, FrozenTrial, History, JointSample, ParamValue, Result, Sampler, TrialState,
};

use super::TpeSampler;

/// TPE on the largest budget with enough observations.
#[derive(Debug)]
pub struct BohbSampler {
    tpe: TpeSampler,
    min_points: usize,
}

impl BohbSampler {
    /// A BOHB sampler seeded with `seed`: grouped multivariate TPE, at least 10 reports at a
    /// step before it is modelled (BOHB's `d + 1` for spaces up to 9 dimensions, and TPE's
    /// default number of start-up trials).
    pub fn new(seed: u64) -> Self {
        BohbSampler {
            tpe: TpeSampler::new(seed).with_group(true),
            min_points: 10,
        }
    }

    /// Sets how many trials must have reported at a step before it is modelled (at least 2).
    pub fn with_min_points(mut self, n: usize) -> Self {
        self.min_points = n.max(2);
        self
    }

    /// The history TPE is fitted on: trials as they stood at the modelled budget.
    fn at_budget(&self, history: &History) -> History {
        let observed =
            |t: &FrozenTrial| matches!(t.state, TrialState::Complete | TrialState::Pruned);
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for t in history.trials().iter().filter(|t| observed(t)) {
            for step in t.intermediate_values.keys() {
                *counts.entry(*step).or_default() += 1;
            }
        }
        let Some(budget) = counts
            .iter()
            .rev()
            .find(|(_, n)| **n >= self.min_points)
            .map(|(step, _)| *step)
        else {
            return history.clone();
        };
        let trials = history
            .trials()
            .iter()
            .filter_map(|t| {
                if t.state == TrialState::Running {
                    return Some(Arc::clone(t));
                }
                let value = *t.intermediate_values.get(&budget)?;
                if !observed(t) || !value.is_finite() {
                    return None;
                }
                let mut at = FrozenTrial::clone(t);
                at.state = TrialState::Complete;
                at.value = Some(value);
                Some(Arc::new(at))
            })
            .collect();
        History::shared(history.direction(), trials)
    }
}

impl Sampler for BohbSampler {
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        self.tpe
            .sample(&self.at_budget(history), trial_number, name, distribution)
    }

    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        self.tpe
            .sample_joint(&self.at_budget(history), trial_number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::Direction;

    fn trial(number: u64, state: TrialState, curve: &[(u64, f64)]) -> Arc<FrozenTrial> {
        let mut t = FrozenTrial::new(number);
        t.state = state;
        t.intermediate_values = curve.iter().copied().collect();
        if state == TrialState::Complete {
            t.value = curve.last().map(|c| c.1);
        }
        Arc::new(t)
    }

    #[test]
    fn models_the_largest_budget_with_enough_reports() {
        let sampler = BohbSampler::new(0).with_min_points(3);
        let mut trials = vec![
            trial(0, TrialState::Complete, &[(1, 5.0), (3, 4.0), (9, 3.0)]),
            trial(1, TrialState::Pruned, &[(1, 6.0), (3, 5.5)]),
            trial(2, TrialState::Pruned, &[(1, 7.0), (3, 6.5)]),
            trial(3, TrialState::Pruned, &[(1, 8.0)]),
            trial(4, TrialState::Failed, &[(1, 0.0), (3, 0.0)]),
            trial(5, TrialState::Running, &[(1, 1.0)]),
        ];
        let history = History::shared(Direction::Minimize, trials.clone());
        let at = sampler.at_budget(&history);
        // Step 9 has one report, step 3 three (failed trials do not count): step 3 is modelled.
        let seen: Vec<(u64, TrialState, Option<f64>)> = at
            .trials()
            .iter()
            .map(|t| (t.number, t.state, t.value))
            .collect();
        assert_eq!(
            seen,
            [
                (0, TrialState::Complete, Some(4.0)),
                (1, TrialState::Complete, Some(5.5)),
                (2, TrialState::Complete, Some(6.5)),
                (5, TrialState::Running, None),
            ]
        );
        // Too few reports anywhere: TPE sees the study unchanged.
        trials.truncate(2);
        let history = History::shared(Direction::Minimize, trials);
        assert_eq!(sampler.at_budget(&history).trials().len(), 2);
        assert_eq!(
            sampler.at_budget(&history).trials()[1].state,
            TrialState::Pruned
        );
    }
}
