//! A read-only view of a study's past trials, the only thing samplers and pruners see.

use crate::trial::{Direction, FrozenTrial, TrialState};

/// The trials of a study as they stood when a trial was asked, and the study's direction.
#[derive(Debug, Clone, Default)]
pub struct History {
    direction: Direction,
    trials: Vec<FrozenTrial>,
}

impl History {
    /// A view over `trials` for a study optimised in `direction`.
    pub fn new(direction: Direction, trials: Vec<FrozenTrial>) -> Self {
        History { direction, trials }
    }

    /// The study's direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Every trial, in number order.
    pub fn trials(&self) -> &[FrozenTrial] {
        &self.trials
    }

    /// Trials that finished with a value.
    pub fn completed(&self) -> impl Iterator<Item = &FrozenTrial> {
        self.trials
            .iter()
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
}
