//! The metric a run optimizes, chosen by the user, and how to read it off [`Scores`].

use std::fmt;
use std::str::FromStr;

use lepton_core::{Direction, Prediction, Target, Task};

use crate::error::Result;
use crate::scores::{Scores, scored};

/// A score AutoML can optimize (scikit-learn's definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Share of rows classified right.
    Accuracy,
    /// Mean recall over the classes (for imbalanced classes).
    BalancedAccuracy,
    /// Mean negative log-likelihood of the true classes (lower is better).
    LogLoss,
    /// Area under the ROC curve (binary, or one-vs-rest macro).
    RocAuc,
    /// Unweighted mean of the classes' F1 scores.
    MacroF1,
    /// Coefficient of determination.
    R2,
    /// Root mean squared error (lower is better).
    Rmse,
    /// Mean absolute error (lower is better).
    Mae,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 8] = [
        Metric::Accuracy,
        Metric::BalancedAccuracy,
        Metric::LogLoss,
        Metric::RocAuc,
        Metric::MacroF1,
        Metric::R2,
        Metric::Rmse,
        Metric::Mae,
    ];

    /// The metric's name (`accuracy`, `balanced_accuracy`, `log_loss`, `roc_auc`,
    /// `macro_f1`, `r2`, `rmse`, `mae`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BalancedAccuracy => "balanced_accuracy",
            Metric::LogLoss => "log_loss",
            Metric::RocAuc => "roc_auc",
            Metric::MacroF1 => "macro_f1",
            Metric::R2 => "r2",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
        }
    }

    /// The default for a task: accuracy for a classification, R² for a regression.
    pub fn default_for(task: &Task) -> Metric {
        match task {
            Task::Classification { .. } => Metric::Accuracy,
            Task::Regression => Metric::R2,
        }
    }

    /// Whether the metric scores a classification (else a regression).
    pub fn classifies(self) -> bool {
        !matches!(self, Metric::R2 | Metric::Rmse | Metric::Mae)
    }

    /// Whether the metric fits `task`.
    pub fn fits(self, task: &Task) -> bool {
        self.classifies() == matches!(task, Task::Classification { .. })
    }

    /// Whether larger values are better.
    pub fn direction(self) -> Direction {
        match self {
            Metric::LogLoss | Metric::Rmse | Metric::Mae => Direction::Minimize,
            _ => Direction::Maximize,
        }
    }

    /// Whether training should weigh the classes by their inverse frequency for this metric
    /// (the metrics that count every class alike).
    pub fn balances_classes(self) -> bool {
        matches!(self, Metric::BalancedAccuracy | Metric::MacroF1)
    }

    /// The metric's value among `scores` (`None` when the scores lack it, e.g. ROC AUC on
    /// rows of one class).
    pub fn of(self, scores: &Scores) -> Option<f64> {
        match self {
            Metric::Accuracy => scores.accuracy,
            Metric::BalancedAccuracy => scores.balanced_accuracy,
            Metric::LogLoss => scores.log_loss,
            Metric::RocAuc => scores.roc_auc,
            Metric::MacroF1 => scores.macro_f1,
            Metric::R2 => scores.r2,
            Metric::Rmse => scores.rmse,
            Metric::Mae => scores.mae,
        }
    }

    /// The metric of `predictions` against `targets` (`None` where undefined, e.g. ROC AUC on
    /// rows of one class), without the cost of the other scores.
    pub(crate) fn score(
        self,
        task: &Task,
        targets: &[Target],
        predictions: &[Prediction],
    ) -> Result<Option<f64>> {
        Ok(self.of(&self.scores(task, targets, predictions)?))
    }

    /// The scores of `predictions` this metric needs, with those that cost no more than a
    /// pass over the rows (ROC AUC, a sort per class, only for itself).
    pub(crate) fn scores(
        self,
        task: &Task,
        targets: &[Target],
        predictions: &[Prediction],
    ) -> Result<Scores> {
        Ok(scored(task, targets, predictions, self == Metric::RocAuc)?.0)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                format!("unknown metric `{s}` (there are {})", names.join(", "))
            })
    }
}

/// Every metric of `scores` that is known, by name (`accuracy`, `roc_auc`, ...).
pub fn named_scores(scores: &Scores) -> Vec<(&'static str, f64)> {
    Metric::ALL
        .into_iter()
        .filter_map(|m| Some((m.name(), m.of(scores)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_directions_and_tasks() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
        }
        assert!(
            "f1".parse::<Metric>()
                .is_err_and(|e| e.contains("macro_f1"))
        );
        let classes = Task::Classification {
            classes: vec!["a".into(), "b".into()],
        };
        assert_eq!(Metric::default_for(&classes), Metric::Accuracy);
        assert_eq!(Metric::default_for(&Task::Regression), Metric::R2);
        assert!(Metric::RocAuc.fits(&classes) && !Metric::RocAuc.fits(&Task::Regression));
        assert!(Metric::Mae.fits(&Task::Regression) && !Metric::Mae.fits(&classes));
        let lower = [Metric::LogLoss, Metric::Rmse, Metric::Mae];
        for m in Metric::ALL {
            let expected = if lower.contains(&m) {
                Direction::Minimize
            } else {
                Direction::Maximize
            };
            assert_eq!(m.direction(), expected, "{m}");
        }
        let scores = Scores {
            accuracy: Some(0.5),
            roc_auc: Some(0.75),
            ..Scores::default()
        };
        assert_eq!(
            named_scores(&scores),
            vec![("accuracy", 0.5), ("roc_auc", 0.75)]
        );
        assert_eq!(Metric::MacroF1.of(&scores), None);
    }
}
