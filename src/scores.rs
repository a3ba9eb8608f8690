//! Held-out evaluation of any model on any dataset: scikit-learn's scores, and the confusion
//! matrix of a classifier.

use serde::{Deserialize, Serialize};

use lepton_core::{Dataset, Features, Predict, Prediction, Target, Task};
use lepton_models::metrics::{self, ConfusionMatrix};

use crate::error::{Error, Result};

/// Held-out scores (scikit-learn's definitions, `lepton_models::metrics`): the classification
/// scores for a classifier, the regression ones for a regressor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Share of rows whose class is right (classification).
    pub accuracy: Option<f64>,
    /// Mean recall over the classes (classification).
    pub balanced_accuracy: Option<f64>,
    /// Unweighted mean of the classes' F1 scores (classification).
    pub macro_f1: Option<f64>,
    /// Mean negative log-likelihood of the true classes (classification).
    pub log_loss: Option<f64>,
    /// Area under the ROC curve: binary, or the one-vs-rest macro mean (classification;
    /// `None` when the rows hold a single class).
    pub roc_auc: Option<f64>,
    /// Coefficient of determination (regression).
    pub r2: Option<f64>,
    /// Root mean squared error (regression).
    pub rmse: Option<f64>,
    /// Mean absolute error (regression).
    pub mae: Option<f64>,
}

/// The scores of `predictions` against the `targets` of a `task`, and the confusion matrix
/// of a classification.
pub fn score_predictions(
    task: &Task,
    targets: &[Target],
    predictions: &[Prediction],
) -> Result<(Scores, Option<ConfusionMatrix>)> {
    scored(task, targets, predictions, true)
}

/// The scores, ROC AUC (a sort of the rows per class) only `with_auc`.
pub(crate) fn scored(
    task: &Task,
    targets: &[Target],
    predictions: &[Prediction],
    with_auc: bool,
) -> Result<(Scores, Option<ConfusionMatrix>)> {
    if targets.len() != predictions.len() {
        return Err(Error::Core(lepton_core::Error::InvalidInput(format!(
            "{} targets but {} predictions",
            targets.len(),
            predictions.len()
        ))));
    }
    let wrong = |what: String| Error::IncompatibleArtifact(what);
    let mut scores = Scores::default();
    match task {
        Task::Classification { classes } => {
            let mut truth = Vec::with_capacity(targets.len());
            for t in targets {
                match t {
                    Target::Class(c) => truth.push(*c),
                    Target::Value(v) => {
                        return Err(wrong(format!("target {v} of a classification")));
                    }
                }
            }
            let (mut predicted, mut probabilities) = (Vec::new(), Vec::new());
            for p in predictions {
                match p {
                    Prediction::Class {
                        index,
                        probabilities: probs,
                    } => {
                        predicted.push(*index);
                        probabilities.push(probs.clone());
                    }
                    other => return Err(wrong(format!("prediction {other:?}"))),
                }
            }
            let m = ConfusionMatrix::new(classes.len(), &truth, &predicted)?;
            scores.accuracy = Some(m.accuracy());
            scores.balanced_accuracy = Some(m.balanced_accuracy());
            scores.macro_f1 = Some(m.macro_f1());
            scores.log_loss = Some(metrics::log_loss(&truth, &probabilities)?);
            if with_auc {
                scores.roc_auc = metrics::roc_auc(&truth, &probabilities).ok();
            }
            Ok((scores, Some(m)))
        }
        Task::Regression => {
            let truth: Vec<f64> = targets
                .iter()
                .map(|t| match t {
                    Target::Value(v) => *v,
                    Target::Class(c) => *c as f64,
                })
                .collect();
            let predicted = predictions
                .iter()
                .map(|p| match p {
                    Prediction::Value(v) => Ok(*v),
                    other => Err(wrong(format!("prediction {other:?}"))),
                })
                .collect::<Result<Vec<f64>>>()?;
            let r = metrics::regression_scores(&truth, &predicted)?;
            (scores.r2, scores.rmse, scores.mae) = (Some(r.r2), Some(r.rmse), Some(r.mae));
            Ok((scores, None))
        }
    }
}

/// Scores `model` on every row of `data` (which must have targets), with the confusion matrix
/// of a classification.
pub fn evaluate(
    model: &dyn Predict,
    data: &dyn Dataset,
) -> Result<(Scores, Option<ConfusionMatrix>)> {
    let width = data.schema().features.len();
    let (mut x, mut targets) = (Vec::with_capacity(data.len() * width), Vec::new());
    for i in 0..data.len() {
        let (Some(row), Some(target)) = (data.features(i), data.target(i)) else {
            return Err(Error::Core(lepton_core::Error::InvalidInput(format!(
                "row {i} has no features or no target"
            ))));
        };
        x.extend_from_slice(row);
        targets.push(target);
    }
    let predictions = model.predict(Features::new(&x, width)?)?;
    score_predictions(&data.schema().task, &targets, &predictions)
}
