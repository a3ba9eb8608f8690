//! Threshold pruning: stop a trial whose latest report leaves a fixed band.

use lepton_core::{Error, FrozenTrial, History, Pruner, Result};

use super::StepSchedule;

/// Prunes a trial whose latest intermediate value is below `lower`, above `upper`, or NaN
/// (Optuna's `ThresholdPruner`), after `n_warmup_steps` and on every `interval_steps`-th step.
/// Needs no other trial: useful from the first trial on (a diverging loss, an accuracy stuck
/// at chance).
#[derive(Debug, Clone, Copy)]
pub struct ThresholdPruner {
    lower: f64,
    upper: f64,
    schedule: StepSchedule,
}

impl ThresholdPruner {
    /// Keeps trials whose latest report stays within `[lower, upper]` (either may be infinite;
    /// `lower` must not exceed `upper`).
    pub fn new(lower: f64, upper: f64) -> Result<Self> {
        if lower.is_nan() || upper.is_nan() || lower > upper {
            return Err(Error::InvalidParameter {
                name: "threshold".into(),
                reason: format!("need lower <= upper, got [{lower}, {upper}]"),
            });
        }
        Ok(ThresholdPruner {
            lower,
            upper,
            schedule: StepSchedule::default(),
        })
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
}

impl Pruner for ThresholdPruner {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        self.prune_reason(history, trial).is_some()
    }

    fn prune_reason(&self, _: &History, trial: &FrozenTrial) -> Option<String> {
        let (step, value) = trial.last_step()?;
        if !self.schedule.is_pruning_step(trial, step) {
            return None;
        }
        (value.is_nan() || value < self.lower || value > self.upper).then(|| {
            format!(
                "value {value} at step {step} is outside [{}, {}]",
                self.lower, self.upper
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(reports: &[(u64, f64)]) -> FrozenTrial {
        let mut t = FrozenTrial::new(0);
        t.intermediate_values = reports.iter().copied().collect();
        t
    }

    #[test]
    fn prunes_outside_the_band_after_the_warm_up() {
        let p = ThresholdPruner::new(0.1, f64::INFINITY).unwrap();
        let h = History::default();
        assert!(p.should_prune(&h, &running(&[(0, 0.05)])));
        assert!(!p.should_prune(&h, &running(&[(0, 0.5)])));
        assert!(p.should_prune(&h, &running(&[(0, 0.5), (1, f64::NAN)])));
        assert!(
            !p.with_n_warmup_steps(3)
                .should_prune(&h, &running(&[(1, 0.05)]))
        );
        let loss = ThresholdPruner::new(f64::NEG_INFINITY, 10.0).unwrap();
        assert!(loss.should_prune(&h, &running(&[(2, 1e6)])));
        assert!(!loss.should_prune(&h, &running(&[])));
    }

    #[test]
    fn an_empty_band_is_refused() {
        assert!(ThresholdPruner::new(1.0, 0.0).is_err());
        assert!(ThresholdPruner::new(f64::NAN, 1.0).is_err());
    }
}
