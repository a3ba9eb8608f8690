//! Pruners: each decides, behind the core `Pruner` trait, whether a running trial should stop.
//! [`ParetoPruner`] judges several reported objectives at once.
//!
//! A pruner sees the trial's own reports and the [`History`](lepton_core::History) as it stood
//! when the trial was asked (so the reference trials do not shift while a trial runs).

mod hyperband;
mod pareto;
mod patient;
mod percentile;
mod successive_halving;
mod threshold;

use lepton_core::{Error, FrozenTrial, History, NopPruner, Pruner, Result, TrialState};

/// The names [`by_name`] knows.
pub const PRUNER_NAMES: [&str; 4] = ["none", "median", "asha", "hyperband"];

/// A pruner with its default settings by name (as the command line names them): `none`,
/// `median` ([`PercentilePruner::median`]), `asha` ([`SuccessiveHalvingPruner`]) or
/// `hyperband` ([`HyperbandPruner`]).
pub fn by_name(name: &str) -> Result<Box<dyn Pruner>> {
    Ok(match name {
        "none" => Box::new(NopPruner),
        "median" => Box::new(PercentilePruner::median()),
        "asha" => Box::new(SuccessiveHalvingPruner::new()),
        "hyperband" => Box::new(HyperbandPruner::new()),
        other => {
            return Err(Error::InvalidParameter {
                name: "pruner".into(),
                reason: format!(
                    "unknown pruner `{other}`; known: {}",
                    PRUNER_NAMES.join(", ")
                ),
            });
        }
    })
}

pub use hyperband::HyperbandPruner;
pub use pareto::ParetoPruner;
pub use patient::PatientPruner;
pub use percentile::PercentilePruner;
pub use successive_halving::SuccessiveHalvingPruner;
pub use threshold::ThresholdPruner;

/// A pruner's resource: `fixed` if set, else derived (by `derive`) from the last step of the
/// study's first complete trial, with the number of that trial. Since Optuna's pruners record a
/// trial's rung values only once such an automatic resource is known, the trials up to that
/// one never compete at a rung; Lepton reads rung values off the intermediate values, so its
/// pruners leave out the trials numbered up to the returned one (exactly Optuna's rule in a
/// sequential study, close to it with parallel workers). `None` while no trial is complete.
pub(crate) fn resource(
    fixed: Option<u64>,
    history: &History,
    derive: impl Fn(u64) -> u64,
) -> Option<(u64, Option<u64>)> {
    if let Some(r) = fixed {
        return Some((r, None));
    }
    let first = history
        .trials()
        .iter()
        .find(|t| t.state == TrialState::Complete)?;
    let (step, _) = first.last_step()?;
    Some((derive(step), Some(first.number)))
}

/// When a pruner may act: not before `n_warmup_steps`, then on every `interval_steps`-th step
/// (Optuna's rule: the first report at or after each pruning step counts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepSchedule {
    pub n_warmup_steps: u64,
    pub interval_steps: u64,
}

impl Default for StepSchedule {
    fn default() -> Self {
        StepSchedule {
            n_warmup_steps: 0,
            interval_steps: 1,
        }
    }
}

impl StepSchedule {
    /// The complete trials and the step to judge `trial` at, for the pruners that compare
    /// against complete trials (percentile, Pareto): `None` before `n_startup` trials have
    /// completed (at least one), before the trial's first report, or off the schedule.
    pub(crate) fn judged_step<'h>(
        &self,
        history: &'h History,
        trial: &FrozenTrial,
        n_startup: usize,
    ) -> Option<(Vec<&'h FrozenTrial>, u64)> {
        // The cheap checks first: this runs on every report.
        let (step, _) = trial.last_step()?;
        if !self.is_pruning_step(trial, step) {
            return None;
        }
        let complete: Vec<&FrozenTrial> = history
            .trials()
            .iter()
            .map(|t| &**t)
            .filter(|t| t.state == TrialState::Complete)
            .collect();
        (!complete.is_empty() && complete.len() >= n_startup).then_some((complete, step))
    }

    /// Whether `step`, the trial's latest report, is one to prune at.
    pub(crate) fn is_pruning_step(&self, trial: &FrozenTrial, step: u64) -> bool {
        if step < self.n_warmup_steps {
            return false;
        }
        let interval = self.interval_steps.max(1);
        let nearest_lower =
            (step - self.n_warmup_steps) / interval * interval + self.n_warmup_steps;
        // The report before this one must lie before the nearest pruning step, so that each
        // interval prunes once, on its first report.
        let previous = trial
            .intermediate_values
            .keys()
            .copied()
            .filter(|s| *s != step)
            .max();
        previous.is_none_or(|p| p < nearest_lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RandomSampler, Study};
    use lepton_core::{Error, Scale, TrialContext, TrialState};

    #[test]
    fn a_bad_configuration_is_pruned_after_its_first_report() {
        let study = Study::builder("curves")
            .with_sampler(RandomSampler::new(0))
            .with_pruner(PercentilePruner::median())
            .build()
            .unwrap();
        // Learning curves: loss = rate^-step-ish; `bad` never learns.
        let run = |bad: bool| {
            move |trial: &mut lepton_core::Trial| {
                let rate = trial.suggest_float("rate", 0.5, 0.9, Scale::Linear)?;
                let mut loss = 1.0;
                for step in 0..10 {
                    loss = if bad { 10.0 } else { loss * rate };
                    trial.report(step, loss)?;
                    if trial.should_prune() {
                        return Err(Error::Pruned { step });
                    }
                }
                Ok(loss)
            }
        };
        study.optimize(6, run(false)).unwrap();
        study.optimize(1, run(true)).unwrap();
        let trials = study.trials().unwrap();
        let bad = trials.last().unwrap();
        assert_eq!(bad.state, TrialState::Pruned);
        assert_eq!(
            bad.intermediate_values.len(),
            1,
            "pruned at its first report"
        );
        // The start-up trials always complete.
        assert!(trials[..5].iter().all(|t| t.state == TrialState::Complete));
    }
}
