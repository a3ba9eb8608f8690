//! Multi-objective pruning: stop a trial whose reports at a step are Pareto-dominated by most
//! of the complete trials' reports at that step.
//!
//! A training loop that cares about several things at once (validation accuracy and
//! calibration, accuracy and inference latency, a loss per task) reports them together with
//! [`TrialContext::report_objectives`](lepton_core::TrialContext::report_objectives). Ranking
//! by one of them would prune a trial that is the best trade-off so far; this pruner prunes only
//! trials that are worse on every objective than many others were at the same step.

use lepton_core::{Direction, Error, FrozenTrial, History, Pruner, Result};

use super::StepSchedule;

/// Prunes a trial when more than `share` (one half by default) of the complete trials that
/// reported at its latest step dominate its values there: each is at least as good on every
/// objective and better on one, each objective in its own direction. With one objective and
/// the default share this is the median rule; a trial on the Pareto front of its step is never
/// pruned.
///
/// The values compared are all those a trial reported at the step (see
/// [`FrozenTrial::objectives_at`]); trials that did not report there, or reported a different
/// number of values, are not compared, and neither are failed, pruned or running ones. Nothing
/// is pruned before `n_startup_trials` trials have completed, before step `n_warmup_steps`,
/// off the `interval_steps` grid, or while fewer than `n_min_trials` comparable trials reported
/// at the step.
#[derive(Debug, Clone)]
pub struct ParetoPruner {
    directions: Vec<Direction>,
    share: f64,
    n_startup_trials: usize,
    n_min_trials: usize,
    schedule: StepSchedule,
}

impl ParetoPruner {
    /// Prunes on the objectives of `directions` (one per reported value, at least one), with
    /// the defaults: share 0.5, 5 start-up trials, no warm-up, every step, 1 trial.
    pub fn new(directions: &[Direction]) -> Result<Self> {
        if directions.is_empty() {
            return Err(Error::InvalidParameter {
                name: "directions".into(),
                reason: "at least one objective is needed".into(),
            });
        }
        Ok(ParetoPruner {
            directions: directions.to_vec(),
            share: 0.5,
            n_startup_trials: 5,
            n_min_trials: 1,
            schedule: StepSchedule::default(),
        })
    }

    /// Prunes when more than this share (in `[0, 1)`) of the comparable trials dominate.
    pub fn with_share(mut self, share: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&share) {
            return Err(Error::InvalidParameter {
                name: "share".into(),
                reason: format!("must be within [0, 1), got {share}"),
            });
        }
        self.share = share;
        Ok(self)
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

    /// Comparable trials that must have reported at a step before it can prune.
    pub fn with_n_min_trials(mut self, n: usize) -> Self {
        self.n_min_trials = n.max(1);
        self
    }

    /// Whether `a` dominates `b`: at least as good on every objective, better on one.
    fn dominates(&self, a: &[f64], b: &[f64]) -> bool {
        let mut better_once = false;
        for ((&x, &y), d) in a.iter().zip(b).zip(&self.directions) {
            if d.is_better(y, x) {
                return false;
            }
            better_once |= d.is_better(x, y);
        }
        better_once
    }
}

impl Pruner for ParetoPruner {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        let Some((complete, step)) =
            self.schedule
                .judged_step(history, trial, self.n_startup_trials)
        else {
            return false;
        };
        let k = self.directions.len();
        let Some(mine) = trial.objectives_at(step).filter(|v| v.len() == k) else {
            return false; // not this pruner's kind of report: nothing to compare
        };
        if mine.iter().any(|v| v.is_nan()) {
            return true;
        }
        let others: Vec<Vec<f64>> = complete
            .iter()
            .filter_map(|t| t.objectives_at(step))
            .filter(|v| v.len() == k && v.iter().all(|x| !x.is_nan()))
            .collect();
        if others.len() < self.n_min_trials {
            return false;
        }
        let dominating = others.iter().filter(|o| self.dominates(o, &mine)).count();
        dominating as f64 > self.share * others.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PercentilePruner, RandomSampler, Study};
    use Direction::{Maximize, Minimize};
    use lepton_core::{ParamValue, Scale, TrialContext, TrialState};

    /// A trial whose report at each step is the given objectives.
    fn trial(number: u64, state: TrialState, reports: &[(u64, &[f64])]) -> FrozenTrial {
        let mut t = FrozenTrial::new(number);
        t.state = state;
        for (step, values) in reports {
            t.intermediate_values.insert(*step, values[0]);
            for (i, v) in values.iter().enumerate().skip(1) {
                t.user_attrs
                    .insert(format!("lepton.report.{step}.{i}"), ParamValue::Float(*v));
            }
        }
        if state == TrialState::Complete {
            t.value = reports.last().map(|r| r.1[0]);
        }
        t
    }

    /// Complete trials reporting (accuracy, latency) at step 1.
    fn history(points: &[[f64; 2]]) -> History {
        let trials = points
            .iter()
            .enumerate()
            .map(|(i, p)| trial(i as u64, TrialState::Complete, &[(1, p)]))
            .collect();
        History::new(Maximize, trials)
    }

    fn pruner() -> ParetoPruner {
        ParetoPruner::new(&[Maximize, Minimize])
            .unwrap()
            .with_n_startup_trials(1)
    }

    fn running(values: &[f64]) -> FrozenTrial {
        trial(99, TrialState::Running, &[(1, values)])
    }

    #[test]
    fn dominated_by_most_is_pruned_and_the_front_is_kept() {
        // (accuracy up, latency down): a front of three trade-offs and a poor trial.
        let h = history(&[[0.9, 10.0], [0.8, 5.0], [0.7, 2.0], [0.5, 20.0]]);
        let p = pruner();
        // Worse than the three front members on both: pruned.
        assert!(p.should_prune(&h, &running(&[0.6, 12.0])));
        // The fastest of all, though the least accurate: on the front, kept.
        assert!(!p.should_prune(&h, &running(&[0.4, 1.0])));
        // Dominated by exactly two of four (not more than half): kept.
        assert!(!p.should_prune(&h, &running(&[0.75, 11.0])));
        // Directions matter: maximizing latency instead, the slow trial leads.
        let flipped = ParetoPruner::new(&[Maximize, Maximize])
            .unwrap()
            .with_n_startup_trials(1);
        assert!(!flipped.should_prune(&h, &running(&[0.6, 30.0])));
        assert!(flipped.should_prune(&h, &running(&[0.3, 1.0])));
    }

    #[test]
    fn ties_do_not_dominate() {
        let h = history(&[[0.8, 5.0], [0.8, 5.0], [0.8, 5.0]]);
        assert!(!pruner().should_prune(&h, &running(&[0.8, 5.0])));
        // Equal on one objective, worse on the other: dominated by all three.
        assert!(pruner().should_prune(&h, &running(&[0.8, 6.0])));
    }

    #[test]
    fn missing_steps_other_shapes_and_unfinished_trials_are_not_compared() {
        let trials = vec![
            // Complete, but reported only at step 2.
            trial(0, TrialState::Complete, &[(2, &[0.9, 1.0])]),
            // One objective only at step 1.
            trial(1, TrialState::Complete, &[(1, &[0.9])]),
            // Failed and pruned trials are no reference.
            trial(2, TrialState::Failed, &[(1, &[0.9, 1.0])]),
            trial(3, TrialState::Pruned, &[(1, &[0.9, 1.0])]),
            trial(4, TrialState::Running, &[(1, &[0.9, 1.0])]),
        ];
        let h = History::new(Maximize, trials.clone());
        // Nothing comparable at step 1: kept however poor.
        assert!(!pruner().should_prune(&h, &running(&[0.1, 50.0])));
        // One comparable trial once it is there.
        let mut more = trials;
        more.push(trial(5, TrialState::Complete, &[(1, &[0.9, 1.0])]));
        let h = History::new(Maximize, more);
        assert!(pruner().should_prune(&h, &running(&[0.1, 50.0])));
        let two = pruner().with_n_min_trials(2);
        assert!(!two.should_prune(&h, &running(&[0.1, 50.0])));
        // A trial reporting another number of values is not this pruner's to judge.
        assert!(!pruner().should_prune(&h, &running(&[0.1])));
        // Nor one with no report yet.
        assert!(!pruner().should_prune(&h, &FrozenTrial::new(7)));
    }

    #[test]
    fn start_up_warm_up_and_intervals() {
        let h = history(&[[0.9, 1.0], [0.9, 1.0]]);
        let bad = running(&[0.1, 9.0]);
        let p = ParetoPruner::new(&[Maximize, Minimize]).unwrap();
        assert!(!p.should_prune(&h, &bad), "5 start-up trials by default");
        assert!(p.clone().with_n_startup_trials(2).should_prune(&h, &bad));
        let warm = p.with_n_startup_trials(2).with_n_warmup_steps(2);
        assert!(!warm.should_prune(&h, &bad), "step 1 is in the warm-up");
        let interval = pruner().with_interval_steps(2);
        let late = trial(
            99,
            TrialState::Running,
            &[(0, &[0.5, 5.0]), (1, &[0.1, 9.0])],
        );
        assert!(!interval.should_prune(&h, &late), "step 1 is off the grid");
        assert!(ParetoPruner::new(&[]).is_err());
        assert!(pruner().with_share(1.0).is_err());
        assert!(pruner().with_share(-0.1).is_err());
    }

    #[test]
    fn one_objective_is_the_median_rule() {
        let finals = [0.2, 0.4, 0.6, 0.8, 1.0];
        let trials: Vec<FrozenTrial> = finals
            .iter()
            .enumerate()
            .map(|(i, v)| trial(i as u64, TrialState::Complete, &[(1, &[*v])]))
            .collect();
        let h = History::new(Minimize, trials);
        let pareto = ParetoPruner::new(&[Minimize]).unwrap();
        let median = PercentilePruner::median();
        for v in [0.1, 0.3, 0.5, 0.59, 0.61, 0.7, 0.9, 1.1] {
            let t = trial(99, TrialState::Running, &[(1, &[v])]);
            assert_eq!(
                pareto.should_prune(&h, &t),
                median.should_prune(&h, &t),
                "value {v}"
            );
        }
    }

    #[test]
    fn a_dominated_configuration_is_pruned_after_its_first_report() {
        let study = Study::builder("two-objectives")
            .with_direction(Maximize)
            .with_sampler(RandomSampler::new(0))
            .with_pruner(ParetoPruner::new(&[Maximize, Minimize]).unwrap())
            .build()
            .unwrap();
        // Accuracy climbs towards `skill`, cost per step is `cost`; `bad` is poor on both.
        let run = |bad: bool| {
            move |trial: &mut lepton_core::Trial| {
                let skill = trial.suggest_float("skill", 0.6, 0.9, Scale::Linear)?;
                let cost = trial.suggest_float("cost", 1.0, 2.0, Scale::Linear)?;
                let (skill, cost) = if bad { (0.1, 9.0) } else { (skill, cost) };
                let mut accuracy = 0.0;
                for step in 0..10 {
                    accuracy = skill * (1.0 - 0.5f64.powi(step as i32 + 1));
                    trial.report_objectives(step, &[accuracy, cost])?;
                    if trial.should_prune() {
                        return Err(Error::Pruned { step });
                    }
                }
                Ok(accuracy)
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
        assert_eq!(bad.objectives_at(0), Some(vec![0.05, 9.0]));
        assert!(trials[..5].iter().all(|t| t.state == TrialState::Complete));
        // Non-finite values are refused, and nothing of the report is kept.
        let mut t = study.ask().unwrap();
        assert!(t.report_objectives(0, &[0.5, f64::NAN]).is_err());
        assert!(t.report_objectives(0, &[]).is_err());
        assert_eq!(t.record().objectives_at(0), None);
        assert!(t.record().user_attrs.is_empty());
    }
}
