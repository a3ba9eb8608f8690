//! Patience: prune only a trial that has stopped improving for a while.

use lepton_core::{Direction, FrozenTrial, History, Pruner};

/// Lets a trial run while it has improved (by more than `min_delta`) within its last
/// `patience` reports; once it has not, defers to the wrapped pruner, or prunes when there is
/// none (Optuna's `PatientPruner`).
pub struct PatientPruner {
    wrapped: Option<Box<dyn Pruner>>,
    patience: usize,
    min_delta: f64,
}

impl std::fmt::Debug for PatientPruner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientPruner")
            .field("wraps", &self.wrapped.is_some())
            .field("patience", &self.patience)
            .field("min_delta", &self.min_delta)
            .finish()
    }
}

impl PatientPruner {
    /// Waits `patience` reports without an improvement larger than `min_delta` (a negative or
    /// NaN `min_delta` counts as 0) before `wrapped` (or, with `None`, pruning) decides.
    pub fn new(wrapped: Option<Box<dyn Pruner>>, patience: usize, min_delta: f64) -> Self {
        PatientPruner {
            wrapped,
            patience,
            min_delta: if min_delta > 0.0 { min_delta } else { 0.0 },
        }
    }
}

impl Pruner for PatientPruner {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        self.prune_reason(history, trial).is_some()
    }

    fn prune_reason(&self, history: &History, trial: &FrozenTrial) -> Option<String> {
        let values: Vec<f64> = trial.intermediate_values.values().copied().collect();
        if values.len() <= self.patience + 1 {
            return None;
        }
        let (before, recent) = values.split_at(values.len() - self.patience - 1);
        let finite = |xs: &[f64]| {
            xs.iter()
                .copied()
                .filter(|v| !v.is_nan())
                .collect::<Vec<_>>()
        };
        let (before, recent) = (finite(before), finite(recent));
        let stalled = match history.direction() {
            Direction::Minimize => {
                let best_before = before.iter().copied().fold(f64::INFINITY, f64::min);
                let best_recent = recent.iter().copied().fold(f64::INFINITY, f64::min);
                best_before + self.min_delta < best_recent
            }
            Direction::Maximize => {
                let best_before = before.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let best_recent = recent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                best_before - self.min_delta > best_recent
            }
        };
        if !stalled {
            return None;
        }
        let stalled = format!(
            "its best of its last {} reports is not better than its best before them by more \
             than {}",
            self.patience + 1,
            self.min_delta
        );
        match &self.wrapped {
            None => Some(stalled),
            Some(p) => p
                .prune_reason(history, trial)
                .map(|why| format!("{stalled}, and {why}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::NopPruner;

    fn running(values: &[f64]) -> FrozenTrial {
        let mut t = FrozenTrial::new(0);
        t.intermediate_values = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, *v))
            .collect();
        t
    }

    #[test]
    fn waits_out_its_patience() {
        let max = History::new(Direction::Maximize, vec![]);
        let p = PatientPruner::new(None, 2, 0.0);
        // Best 0.9 came three reports ago; the last three are all worse: stalled.
        assert!(p.should_prune(&max, &running(&[0.5, 0.9, 0.8, 0.85, 0.7])));
        // An improvement within the window keeps it alive.
        assert!(!p.should_prune(&max, &running(&[0.5, 0.9, 0.8, 0.95, 0.7])));
        // Too few reports to judge.
        assert!(!p.should_prune(&max, &running(&[0.9, 0.1, 0.1])));
        // min_delta: a 0.05 gain over 0.9 is not enough when 0.1 is asked for.
        let strict = PatientPruner::new(None, 2, 0.1);
        assert!(!strict.should_prune(&max, &running(&[0.5, 0.9, 0.8, 0.85, 0.75])));
        assert!(strict.should_prune(&max, &running(&[0.5, 0.9, 0.75, 0.7, 0.7])));
        let min = History::new(Direction::Minimize, vec![]);
        assert!(p.should_prune(&min, &running(&[3.0, 1.0, 2.0, 1.5, 1.2])));
        assert!(!p.should_prune(&min, &running(&[3.0, 1.0, 2.0, 0.5, 1.2])));
    }

    #[test]
    fn defers_to_the_wrapped_pruner_once_stalled() {
        let max = History::new(Direction::Maximize, vec![]);
        let p = PatientPruner::new(Some(Box::new(NopPruner)), 1, 0.0);
        assert!(!p.should_prune(&max, &running(&[0.9, 0.1, 0.1])));
    }
}
