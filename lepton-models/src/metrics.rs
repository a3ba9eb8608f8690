//! Evaluation metrics, with scikit-learn's definitions: a confusion matrix and the
//! classification scores read from it (accuracy, balanced accuracy, macro-F1), log-loss from
//! predicted probabilities, and RMSE, MAE and R² for regression.

use serde::{Deserialize, Serialize};

use lepton_core::Prediction;

use crate::error::{ModelError, Result};
use crate::head::Head;

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    n_classes: usize,
    /// Row-major: `counts[truth * n_classes + predicted]`.
    counts: Vec<usize>,
}

impl ConfusionMatrix {
    /// The matrix of `truth` against `predicted` (equal lengths, at least one sample, every
    /// class below `n_classes`).
    pub fn new(n_classes: usize, truth: &[usize], predicted: &[usize]) -> Result<Self> {
        if truth.len() != predicted.len() || truth.is_empty() {
            return Err(ModelError::InvalidData(format!(
                "{} true classes and {} predictions: need as many, at least one",
                truth.len(),
                predicted.len()
            )));
        }
        let mut counts = vec![0; n_classes * n_classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            if t >= n_classes || p >= n_classes {
                return Err(ModelError::InvalidData(format!(
                    "class {} is not below {n_classes}",
                    t.max(p)
                )));
            }
            counts[t * n_classes + p] += 1;
        }
        Ok(ConfusionMatrix { n_classes, counts })
    }

    /// Number of classes (rows and columns).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Samples of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        self.counts[truth * self.n_classes + predicted]
    }

    fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    fn row(&self, class: usize) -> usize {
        (0..self.n_classes).map(|p| self.count(class, p)).sum()
    }

    fn column(&self, class: usize) -> usize {
        (0..self.n_classes).map(|t| self.count(t, class)).sum()
    }

    /// Share of samples predicted right.
    pub fn accuracy(&self) -> f64 {
        let right: usize = (0..self.n_classes).map(|c| self.count(c, c)).sum();
        right as f64 / self.total() as f64
    }

    /// Mean recall over the classes that occur in the truth (robust to imbalance).
    pub fn balanced_accuracy(&self) -> f64 {
        let recalls: Vec<f64> = (0..self.n_classes)
            .filter(|&c| self.row(c) > 0)
            .map(|c| self.count(c, c) as f64 / self.row(c) as f64)
            .collect();
        recalls.iter().sum::<f64>() / recalls.len() as f64
    }

    /// Unweighted mean of the per-class F1 scores over the classes that occur in the truth or
    /// the predictions (F1 is 0 for a class never predicted right).
    pub fn macro_f1(&self) -> f64 {
        let f1: Vec<f64> = (0..self.n_classes)
            .filter(|&c| self.row(c) + self.column(c) > 0)
            .map(|c| 2.0 * self.count(c, c) as f64 / (self.row(c) + self.column(c)) as f64)
            .collect();
        f1.iter().sum::<f64>() / f1.len() as f64
    }
}

/// Mean negative log-likelihood of the true classes under `probabilities` (one row per
/// sample, renormalized to sum to 1; each probability clipped to `[1e-15, 1 - 1e-15]` as
/// scikit-learn does, so a confident mistake costs about 34.5, not infinity).
pub fn log_loss(truth: &[usize], probabilities: &[Vec<f32>]) -> Result<f64> {
    if truth.len() != probabilities.len() || truth.is_empty() {
        return Err(ModelError::InvalidData(format!(
            "{} true classes and {} probability rows: need as many, at least one",
            truth.len(),
            probabilities.len()
        )));
    }
    let eps = 1e-15;
    let mut sum = 0.0;
    for (i, (&t, p)) in truth.iter().zip(probabilities).enumerate() {
        let total: f64 = p.iter().map(|&v| f64::from(v)).sum();
        let Some(&pt) = p.get(t) else {
            return Err(ModelError::InvalidData(format!(
                "sample {i}: class {t} has no probability among {}",
                p.len()
            )));
        };
        if !(total.is_finite() && total > 0.0) || p.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(ModelError::InvalidData(format!(
                "sample {i}: {p:?} are not probabilities"
            )));
        }
        sum -= (f64::from(pt) / total).clamp(eps, 1.0 - eps).ln();
    }
    Ok(sum / truth.len() as f64)
}

/// Area under the ROC curve of one score per sample against 0/1 `positive` labels: the
/// probability that a random positive scores above a random negative, ties counting a half
/// (the Mann-Whitney U statistic over `n_pos * n_neg`). `None` when a label is absent.
fn binary_auc(positive: &[bool], scores: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the positives' ranks (1-based), tied scores sharing their mean rank.
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * order[i..j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j;
    }
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    (n_pos > 0.0 && n_neg > 0.0).then(|| (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// ROC AUC of class probabilities, as scikit-learn's `roc_auc_score`: for two classes, the
/// AUC of the second class's probability; for more, the unweighted mean over the classes of
/// each class's one-vs-rest AUC (`multi_class="ovr", average="macro"`). Classes absent from
/// `truth` are left out of the mean; an error when fewer than two classes are present.
pub fn roc_auc(truth: &[usize], probabilities: &[Vec<f32>]) -> Result<f64> {
    if truth.len() != probabilities.len() || truth.is_empty() {
        return Err(ModelError::InvalidData(format!(
            "{} true classes and {} probability rows: need as many, at least one",
            truth.len(),
            probabilities.len()
        )));
    }
    let k = probabilities[0].len();
    if let Some(i) = (0..truth.len()).find(|&i| probabilities[i].len() != k || truth[i] >= k) {
        return Err(ModelError::InvalidData(format!(
            "sample {i}: class {} among {} probabilities, expected {k}",
            truth[i],
            probabilities[i].len()
        )));
    }
    let auc_of = |class: usize| {
        let positive: Vec<bool> = truth.iter().map(|&t| t == class).collect();
        let scores: Vec<f64> = probabilities.iter().map(|p| f64::from(p[class])).collect();
        binary_auc(&positive, &scores)
    };
    let aucs: Vec<f64> = if k == 2 {
        auc_of(1).into_iter().collect()
    } else {
        (0..k).filter_map(auc_of).collect()
    };
    if aucs.is_empty() {
        return Err(ModelError::InvalidData(
            "ROC AUC needs samples of at least two classes".into(),
        ));
    }
    Ok(aucs.iter().sum::<f64>() / aucs.len() as f64)
}

/// Errors of real-valued predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegressionScores {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination, `1 - SSE / SST` (0 when the truth is constant).
    pub r2: f64,
}

/// RMSE, MAE and R² of `predicted` against `truth` (equal lengths, at least one, finite).
pub fn regression_scores(truth: &[f64], predicted: &[f64]) -> Result<RegressionScores> {
    if truth.len() != predicted.len() || truth.is_empty() {
        return Err(ModelError::InvalidData(format!(
            "{} true values and {} predictions: need as many, at least one",
            truth.len(),
            predicted.len()
        )));
    }
    if truth.iter().chain(predicted).any(|v| !v.is_finite()) {
        return Err(ModelError::InvalidData(
            "a true or predicted value is not finite".into(),
        ));
    }
    let n = truth.len() as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let (mut sse, mut sae, mut sst) = (0.0, 0.0, 0.0);
    for (&y, &p) in truth.iter().zip(predicted) {
        sse += (p - y).powi(2);
        sae += (p - y).abs();
        sst += (y - mean).powi(2);
    }
    Ok(RegressionScores {
        rmse: (sse / n).sqrt(),
        mae: sae / n,
        r2: if sst > 0.0 { 1.0 - sse / sst } else { 0.0 },
    })
}

/// A tree model's validation of `predictions` against `truth` (class indices or values, as
/// numbers): accuracy, log-loss and the confusion matrix for `Head::Classes`, R² and the
/// mean squared error for `Head::Value`.
pub(crate) fn head_scores(
    head: Head,
    truth: &[f64],
    predictions: &[Prediction],
) -> Result<(f64, f64, Option<ConfusionMatrix>)> {
    let wrong = |p: &Prediction| ModelError::InvalidData(format!("prediction {p:?}"));
    match head {
        Head::Classes { count } => {
            let truth: Vec<usize> = truth.iter().map(|&c| c as usize).collect();
            let (mut chosen, mut probabilities) = (Vec::new(), Vec::new());
            for p in predictions {
                let Prediction::Class {
                    index,
                    probabilities: q,
                } = p
                else {
                    return Err(wrong(p));
                };
                chosen.push(*index);
                probabilities.push(q.clone());
            }
            let loss = log_loss(&truth, &probabilities)?;
            let confusion = ConfusionMatrix::new(count, &truth, &chosen)?;
            Ok((confusion.accuracy(), loss, Some(confusion)))
        }
        Head::Value { .. } => {
            let predicted = predictions
                .iter()
                .map(|p| match p {
                    Prediction::Value(v) => Ok(*v),
                    other => Err(wrong(other)),
                })
                .collect::<Result<Vec<f64>>>()?;
            let r = regression_scores(truth, &predicted)?;
            Ok((r.r2, r.rmse * r.rmse, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn roc_auc_matches_hand_computed_values() {
        // Binary: positives score 0.35 and 0.8, negatives 0.1 and 0.4. Of the four
        // (positive, negative) pairs, three are ordered right: AUC 0.75 (scikit-learn's
        // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) is 0.75).
        let p = |x: f32| vec![1.0 - x, x];
        let probs = vec![p(0.1), p(0.4), p(0.35), p(0.8)];
        assert!(close(roc_auc(&[0, 0, 1, 1], &probs).unwrap(), 0.75));
        // A tie between a positive and a negative counts a half: pairs (0.5 vs 0.5) = 0.5,
        // (0.5 vs 0.2) = 1, (0.9 vs both) = 2, so 3.5 / 4.
        let tied = vec![p(0.5), p(0.2), p(0.5), p(0.9)];
        assert!(close(roc_auc(&[0, 0, 1, 1], &tied).unwrap(), 0.875));
        // Three classes, one-vs-rest macro. Class 0: positive 0.8 vs negatives 0.1 and 0.2
        // -> 1.0.
        let three = vec![
            vec![0.8, 0.1, 0.1],
            vec![0.1, 0.3, 0.6],
            vec![0.2, 0.2, 0.6],
        ];
        let ovr = roc_auc(&[0, 1, 2], &three).unwrap();
        // class 1: positive 0.3 vs negatives 0.1 and 0.2 -> 1.0; class 2: positive 0.6 vs
        // negatives 0.1 and 0.6 -> (1 + 0.5) / 2 = 0.75.
        assert!(close(ovr, (1.0 + 1.0 + 0.75) / 3.0), "{ovr}");
        // One class only, mismatched lengths, a class out of range: errors.
        assert!(roc_auc(&[1, 1], &[p(0.2), p(0.3)]).is_err());
        assert!(roc_auc(&[0, 1], &[p(0.2)]).is_err());
        assert!(roc_auc(&[0, 2], &[p(0.2), p(0.3)]).is_err());
    }

    #[test]
    fn classification_scores_match_scikit_learn() {
        // sklearn.metrics on y_true=[0,0,1,1,2], y_pred=[0,1,1,1,0]: accuracy 0.6,
        // balanced_accuracy 0.5, f1_score(average="macro") 0.43333.
        let m = ConfusionMatrix::new(3, &[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0]).unwrap();
        assert_eq!((m.count(0, 0), m.count(0, 1), m.count(2, 0)), (1, 1, 1));
        assert!(close(m.accuracy(), 0.6));
        assert!(close(m.balanced_accuracy(), 0.5));
        assert!(close(m.macro_f1(), 1.3 / 3.0));
        // A class in neither truth nor predictions is left out of the means.
        let m = ConfusionMatrix::new(4, &[0, 1], &[0, 1]).unwrap();
        assert!(close(m.macro_f1(), 1.0) && close(m.balanced_accuracy(), 1.0));
        assert!(ConfusionMatrix::new(2, &[0, 2], &[0, 1]).is_err());
        assert!(ConfusionMatrix::new(2, &[0], &[0, 1]).is_err());
        assert!(ConfusionMatrix::new(2, &[], &[]).is_err());
    }

    #[test]
    fn log_loss_matches_scikit_learn() {
        // sklearn.metrics.log_loss([0, 1, 1], [[.9, .1], [.2, .8], [.7, .3]]) = 0.61327...
        let p = vec![vec![0.9, 0.1], vec![0.2, 0.8], vec![0.7, 0.3]];
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.3f64.ln()) / 3.0;
        assert!((log_loss(&[0, 1, 1], &p).unwrap() - expected).abs() < 1e-6);
        // A certain mistake is clipped, not infinite.
        let certain = log_loss(&[0], &[vec![0.0, 1.0]]).unwrap();
        assert!((certain - 34.538776394910684).abs() < 1e-6, "{certain}");
        assert!(log_loss(&[2], &[vec![0.5, 0.5]]).is_err());
        assert!(log_loss(&[0], &[vec![f32::NAN, 0.5]]).is_err());
    }

    #[test]
    fn regression_scores_are_right() {
        let s = regression_scores(&[1.0, 2.0, 3.0], &[1.0, 2.0, 5.0]).unwrap();
        assert!(close(s.rmse, (4.0f64 / 3.0).sqrt()));
        assert!(close(s.mae, 2.0 / 3.0));
        assert!(close(s.r2, 1.0 - 4.0 / 2.0));
        assert_eq!(regression_scores(&[2.0, 2.0], &[2.0, 2.0]).unwrap().r2, 0.0);
        assert!(regression_scores(&[1.0], &[f64::NAN]).is_err());
        assert!(regression_scores(&[1.0], &[]).is_err());
    }
}
