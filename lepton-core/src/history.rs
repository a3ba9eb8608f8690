//! A read-only view of a study's past trials, the only thing samplers and pruners see.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::direction::Direction;
use crate::frozen_trial::FrozenTrial;
use crate::param::Distribution;
use crate::trial_state::TrialState;

/// The trials of a study as they stood when a trial was asked, and the study's direction.
///
/// Trials are shared (`Arc`), so taking a view of a long study costs a reference count per
/// trial, not a copy of every record.
#[derive(Debug, Clone, Default)]
pub struct History {
    direction: Direction,
    trials: Vec<Arc<FrozenTrial>>,
}

impl History {
    /// A view over `trials` for a study optimized in `direction`.
    pub fn new(direction: Direction, trials: Vec<FrozenTrial>) -> Self {
        Self::shared(direction, trials.into_iter().map(Arc::new).collect())
    }

    /// A view over trials already shared with a storage.
    pub fn shared(direction: Direction, trials: Vec<Arc<FrozenTrial>>) -> Self {
        History { direction, trials }
    }

    /// The study's direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Every trial, in number order.
    pub fn trials(&self) -> &[Arc<FrozenTrial>] {
        &self.trials
    }

    /// Trials that finished with a value.
    pub fn completed(&self) -> impl Iterator<Item = &FrozenTrial> {
        self.trials
            .iter()
            .map(|t| &**t)
            .filter(|t| t.state == TrialState::Complete && t.value.is_some())
    }

    /// The best complete trial (the earliest one on ties).
    pub fn best(&self) -> Option<&FrozenTrial> {
        let mut best: Option<&FrozenTrial> = None;
        for t in self.completed() {
            let (Some(v), Some(b)) = (t.value, best.and_then(|b| b.value)) else {
                best = best.or(Some(t));
                continue;
            };
            if self.direction.is_better(v, b) {
                best = Some(t);
            }
        }
        best
    }

    /// The complete trials, best first in the study's direction (the earlier trial first on
    /// ties).
    pub fn ranked(&self) -> Vec<&FrozenTrial> {
        let mut ranked: Vec<&FrozenTrial> = self.completed().collect();
        let value = |t: &FrozenTrial| t.value.unwrap_or(f64::NAN);
        // `completed` is in number order and the sort is stable: ties stay in that order.
        ranked.sort_by(|a, b| match self.direction {
            Direction::Minimize => value(a).total_cmp(&value(b)),
            Direction::Maximize => value(b).total_cmp(&value(a)),
        });
        ranked
    }

    /// The parameters every finished (complete or pruned) trial has, each with one
    /// distribution throughout: the space a joint sampler can model (Optuna's intersection
    /// search space). Empty before the first trial finishes.
    pub fn intersection_space(&self) -> BTreeMap<String, Distribution> {
        let mut space: Option<BTreeMap<String, Distribution>> = None;
        for t in self
            .trials
            .iter()
            .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
        {
            match &mut space {
                None => {
                    space = Some(
                        t.distributions
                            .iter()
                            .map(|(name, d)| (name.to_string(), d.clone()))
                            .collect(),
                    )
                }
                Some(s) => s.retain(|name, d| t.distributions.get(name.as_str()) == Some(d)),
            }
        }
        space.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::{ParamValue, Scale};

    fn trial(number: u64, state: TrialState, params: &[(&str, Distribution)]) -> FrozenTrial {
        let mut t = FrozenTrial::new(number);
        t.state = state;
        for (name, d) in params {
            t.params.insert((*name).into(), d.from_internal(0.0));
            t.distributions.insert((*name).into(), d.clone());
        }
        t
    }

    #[test]
    fn intersection_keeps_common_parameters_with_one_distribution() {
        let x = Distribution::float(0.0, 1.0, Scale::Linear);
        let y = Distribution::int(0, 4, Scale::Linear);
        let y_wide = Distribution::int(0, 8, Scale::Linear);
        let c = Distribution::categorical(["a"]);
        let h = History::new(
            Direction::Minimize,
            vec![
                trial(
                    0,
                    TrialState::Complete,
                    &[("x", x.clone()), ("y", y.clone()), ("c", c.clone())],
                ),
                trial(1, TrialState::Pruned, &[("x", x.clone()), ("y", y)]),
                trial(
                    2,
                    TrialState::Complete,
                    &[("x", x.clone()), ("y", y_wide.clone()), ("c", c)],
                ),
                // Running and failed trials do not narrow the space.
                trial(3, TrialState::Running, &[("y", y_wide.clone())]),
                trial(4, TrialState::Failed, &[]),
            ],
        );
        let space = h.intersection_space();
        assert_eq!(space.len(), 1);
        assert_eq!(space.get("x"), Some(&x));
        assert!(History::default().intersection_space().is_empty());
        assert_eq!(ParamValue::Float(0.0), x.from_internal(0.0));
    }

    #[test]
    fn ranked_is_best_first_and_keeps_ties_in_number_order() {
        let with_value = |number: u64, state: TrialState, value: Option<f64>| {
            let mut t = trial(number, state, &[]);
            t.value = value;
            t
        };
        let trials = vec![
            with_value(0, TrialState::Complete, Some(2.0)),
            with_value(1, TrialState::Complete, Some(1.0)),
            with_value(2, TrialState::Pruned, Some(0.0)),
            with_value(3, TrialState::Complete, Some(2.0)),
            with_value(4, TrialState::Complete, Some(3.0)),
        ];
        let numbers = |h: &History| h.ranked().iter().map(|t| t.number).collect::<Vec<_>>();
        assert_eq!(
            numbers(&History::new(Direction::Minimize, trials.clone())),
            [1, 0, 3, 4]
        );
        assert_eq!(
            numbers(&History::new(Direction::Maximize, trials)),
            [4, 0, 3, 1]
        );
    }
}
