//! Ensemble selection (Caruana, Niculescu-Mizil, Crew and Ksikes, ICML 2004), as auto-sklearn
//! and AutoGluon use it: starting from nothing, add, round after round, the candidate (with
//! replacement) whose predictions make the blend score best on rows none of them trained on
//! (out-of-fold or hold-out predictions); a candidate's weight is the share of rounds that
//! picked it. The blend of the best round is kept, and only when it validates better than
//! every candidate alone.
//!
//! Classification metrics that count rows (accuracy, balanced accuracy, macro F1) tie often
//! on small data, several models reaching 100 %: ties are broken by the blend's log loss, a
//! proper scoring rule, so that among equally accurate blends the better calibrated (usually
//! the more averaged) one wins.

use std::cmp::Ordering;

use lepton_core::{Direction, Prediction, Target, Task};

use crate::ensemble::Blend;
use crate::error::Result;
use crate::metric::Metric;

/// The rounds AutoML's table runs select with (AutoGluon's default is 25 as well).
pub const SELECTION_ROUNDS: usize = 25;

/// What ensemble selection chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// `(candidate index, weight)`, the weights summing to 1, heaviest first (ties: the
    /// lower index first); a single candidate with weight 1 when no blend validates better.
    pub weights: Vec<(usize, f64)>,
    /// The chosen blend's score in the metric on the rows.
    pub score: f64,
    /// The best single candidate's score.
    pub best_single: f64,
}

/// Selects an ensemble of `candidates` (each one prediction per row of `targets`, of the
/// same task) by `rounds` greedy rounds on `metric`. At equal scores the candidate listed
/// first is picked: list them best first. An error when the metric is undefined on the rows
/// for every candidate, or the predictions do not fit the targets.
pub fn select_ensemble(
    candidates: &[&[Prediction]],
    targets: &[Target],
    task: &Task,
    metric: Metric,
    rounds: usize,
) -> Result<Selection> {
    let free = vec![0.0; candidates.len()];
    select_ensemble_within(
        candidates,
        &free,
        f64::INFINITY,
        targets,
        task,
        metric,
        rounds,
    )
}

/// [`select_ensemble`] where each candidate costs `costs[i]` (say, the seconds to refit it)
/// and the distinct members of the blend may cost at most `max_cost` together: a candidate
/// that would take the blend past it is not added (picking a member again costs nothing).
#[allow(clippy::too_many_arguments)]
pub fn select_ensemble_within(
    candidates: &[&[Prediction]],
    costs: &[f64],
    max_cost: f64,
    targets: &[Target],
    task: &Task,
    metric: Metric,
    rounds: usize,
) -> Result<Selection> {
    if let Some(i) = candidates.iter().position(|c| c.len() != targets.len()) {
        return Err(invalid(format!(
            "candidate {i} has {} predictions of {} rows",
            candidates[i].len(),
            targets.len()
        )));
    }
    if costs.len() != candidates.len() {
        return Err(invalid(format!(
            "{} costs for {} candidates",
            costs.len(),
            candidates.len()
        )));
    }
    let key = |blend: &Blend| Key::of(metric, task, targets, &blend.predictions());
    // Every candidate alone: the reference a blend must beat.
    let mut single: Option<(usize, Key)> = None;
    for (i, c) in candidates.iter().enumerate() {
        let mut alone = Blend::default();
        alone.add(c, 1.0)?;
        if let Some(k) = key(&alone)?
            && single.as_ref().is_none_or(|(_, s)| k.beats(s))
        {
            single = Some((i, k));
        }
    }
    let Some((best_index, best_alone)) = single else {
        return Err(invalid(format!(
            "{metric} is undefined on these rows for every candidate"
        )));
    };

    let mut blend = Blend::default();
    let mut counts = vec![0usize; candidates.len()];
    let mut spent = 0.0;
    let mut best: Option<(Key, Vec<usize>)> = None;
    for _ in 0..rounds.max(1) {
        let mut pick: Option<(usize, Key)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let fits = counts[i] > 0 || spent + costs[i] <= max_cost;
            if !fits {
                continue;
            }
            let mut trial = blend.clone();
            trial.add(c, 1.0)?;
            if let Some(k) = key(&trial)?
                && pick.as_ref().is_none_or(|(_, p)| k.beats(p))
            {
                pick = Some((i, k));
            }
        }
        let Some((i, k)) = pick else { break };
        if counts[i] == 0 {
            spent += costs[i];
        }
        blend.add(candidates[i], 1.0)?;
        counts[i] += 1;
        if best.as_ref().is_none_or(|(b, _)| k.beats(b)) {
            best = Some((k, counts.clone()));
        }
    }
    let (score, counts) = match best {
        Some((k, counts))
            if counts.iter().filter(|c| **c > 0).count() > 1 && k.beats(&best_alone) =>
        {
            (k.score, counts)
        }
        _ => {
            let mut alone = vec![0; candidates.len()];
            alone[best_index] = 1;
            (best_alone.score, alone)
        }
    };
    let total: usize = counts.iter().sum();
    let mut weights: Vec<(usize, f64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (i, *c as f64 / total as f64))
        .collect();
    weights.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(Selection {
        weights,
        score,
        best_single: best_alone.score,
    })
}

/// A blend's score in the metric, and the log loss that breaks its ties.
#[derive(Debug, Clone, Copy)]
struct Key {
    score: f64,
    direction: Direction,
    /// The log loss of a classification scored by another metric (NaN otherwise: no ties
    /// broken).
    tie: f64,
}

impl Key {
    fn of(
        metric: Metric,
        task: &Task,
        targets: &[Target],
        predictions: &[Prediction],
    ) -> Result<Option<Key>> {
        let scores = metric.scores(task, targets, predictions)?;
        let tie = match metric {
            Metric::LogLoss => f64::NAN,
            _ => scores.log_loss.unwrap_or(f64::NAN),
        };
        Ok(metric
            .of(&scores)
            .filter(|s| s.is_finite())
            .map(|score| Key {
                score,
                direction: metric.direction(),
                tie,
            }))
    }

    /// Whether this key is strictly better than `other`.
    fn beats(&self, other: &Key) -> bool {
        let by_score = match self.direction {
            Direction::Maximize => self.score.total_cmp(&other.score),
            Direction::Minimize => other.score.total_cmp(&self.score),
        };
        match by_score {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => self.tie < other.tie,
        }
    }
}

fn invalid(message: String) -> crate::Error {
    lepton_core::Error::InvalidInput(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(p1: f32) -> Prediction {
        Prediction::Class {
            index: usize::from(p1 > 0.5),
            probabilities: vec![1.0 - p1, p1],
        }
    }

    fn binary() -> Task {
        Task::Classification {
            classes: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn two_models_right_on_different_rows_blend_by_hand_computed_weights() {
        // Truth 1, 1, 0, 0. A is right on rows 0 and 2, B on rows 1 and 3, C says 0.5
        // (class 0) everywhere: all three are 50 % accurate. Their log losses break the tie:
        // A 0.634, B 0.596 (its 0.875 on row 1), C 0.693, so B is the best alone.
        let targets = [1, 1, 0, 0].map(Target::Class);
        let a = [0.75, 0.375, 0.25, 0.625].map(class);
        let b = [0.375, 0.875, 0.625, 0.25].map(class);
        let c = [0.5; 4].map(class);
        let one = select_ensemble(&[&a, &b, &c], &targets, &binary(), Metric::Accuracy, 1);
        assert_eq!(one.unwrap().weights, vec![(1, 1.0)]);
        // Round 2: B+A averages (0.5625, 0.625, 0.4375, 0.4375), accuracy 1; B+B and B+C
        // stay at 0.5. Round 3: B+A+A (1, log loss 0.562) and B+A+C (1, 0.595) are both
        // accurate but worse calibrated than B+A (0.549): the second round's blend is kept.
        let s = select_ensemble(&[&a, &b, &c], &targets, &binary(), Metric::Accuracy, 3).unwrap();
        assert_eq!(s.weights, vec![(0, 0.5), (1, 0.5)]);
        assert_eq!((s.score, s.best_single), (1.0, 0.5));
    }

    #[test]
    fn a_member_past_the_cost_limit_is_not_added() {
        // Truth 0. B says -1, A 1, C 2; A costs 10, the others 1. Unlimited: B, then B+A
        // (mean 0). Within 5: A cannot join; B+C (mean 0.5), then B+C+B (mean 0).
        let targets = [0.0, 0.0].map(Target::Value);
        let value = |v| [Prediction::Value(v), Prediction::Value(v)];
        let (b, a, c) = (value(-1.0), value(1.0), value(2.0));
        let candidates: [&[Prediction]; 3] = [&b, &a, &c];
        let s = select_ensemble(&candidates, &targets, &Task::Regression, Metric::Rmse, 4);
        assert_eq!(s.unwrap().weights, vec![(0, 0.5), (1, 0.5)]);
        let s = select_ensemble_within(
            &candidates,
            &[1.0, 10.0, 1.0],
            5.0,
            &targets,
            &Task::Regression,
            Metric::Rmse,
            4,
        )
        .unwrap();
        assert_eq!(s.weights, vec![(0, 2.0 / 3.0), (2, 1.0 / 3.0)]);
        assert_eq!((s.score, s.best_single), (0.0, 1.0));
    }

    #[test]
    fn a_blend_no_better_than_the_best_model_leaves_it_alone() {
        // Truth all class 1. A says 0.9, B says 0.6: A alone is best and stays best
        // (every mix with B raises the loss), so A wins alone.
        let targets = [1, 1].map(Target::Class);
        let a = [0.9, 0.9].map(class);
        let b = [0.6, 0.6].map(class);
        let s = select_ensemble(&[&b, &a], &targets, &binary(), Metric::LogLoss, 4).unwrap();
        assert_eq!(s.weights, vec![(1, 1.0)]);
        assert!((s.score - -(0.9f64.ln())).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn regression_weights_are_shares_of_the_rounds() {
        // Truth 0, 0. A predicts 3, B predicts -1. Round 1: B (RMSE 1). Round 2: B+A and
        // B+B both have RMSE 1, A is listed first: B+A, no better than round 1. Round 3:
        // B+A+B (mean 1/3) beats B+A+A (5/3). Round 4: B+A+B+B (mean 0, RMSE 0): weights
        // A 1/4, B 3/4, and no later round beats 0.
        let targets = [0.0, 0.0].map(Target::Value);
        let a = [Prediction::Value(3.0), Prediction::Value(3.0)];
        let b = [Prediction::Value(-1.0), Prediction::Value(-1.0)];
        let s = select_ensemble(&[&a, &b], &targets, &Task::Regression, Metric::Rmse, 8).unwrap();
        assert_eq!(s.weights, vec![(1, 0.75), (0, 0.25)]);
        assert_eq!((s.score, s.best_single), (0.0, 1.0));
    }

    #[test]
    fn predictions_that_do_not_fit_are_refused() {
        let targets = [0.0, 0.0].map(Target::Value);
        let short = [Prediction::Value(1.0)];
        let e = select_ensemble(&[&short], &targets, &Task::Regression, Metric::R2, 3).unwrap_err();
        assert!(e.to_string().contains("1 predictions of 2 rows"), "{e}");
        let classes = [class(0.9), class(0.2)];
        assert!(
            select_ensemble(&[&classes], &targets, &Task::Regression, Metric::Rmse, 3).is_err()
        );
    }
}
