//! The choice of a sparse linear classifier's trainer: its loss, and that trainer's settings.

use std::time::Duration;

use lepton_data::SparseRows;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sparse_linear::FittedSparseLinear;
use crate::sparse_logistic::SparseLogistic;
use crate::sparse_svm::SparseLinearSvm;

/// How a sparse linear classifier is trained: its loss, and that trainer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SparseClassifier {
    /// Multinomial logistic regression: calibrated probabilities.
    Logistic(SparseLogistic),
    /// A linear support vector machine, one class against the rest: often a little more
    /// accurate on texts, its probabilities only a softmax of its margins.
    LinearSvm(SparseLinearSvm),
}

impl SparseClassifier {
    /// The inverse of the regularization strength, `C`, of either loss.
    pub fn c(&self) -> f64 {
        match self {
            SparseClassifier::Logistic(m) => m.c,
            SparseClassifier::LinearSvm(m) => m.c,
        }
    }

    /// Sets `C`.
    pub fn set_c(&mut self, c: f64) {
        match self {
            SparseClassifier::Logistic(m) => m.c = c,
            SparseClassifier::LinearSvm(m) => m.c = c,
        }
    }

    /// Trains on `x`'s rows and their classes `y` (each below `classes`, at least 2),
    /// stopping after `time_limit` (if any) at the best point so far.
    pub fn fit_within(
        &self,
        x: &SparseRows,
        y: &[usize],
        classes: usize,
        time_limit: Option<Duration>,
    ) -> Result<FittedSparseLinear> {
        match self {
            SparseClassifier::Logistic(m) => m.fit_within(x, y, classes, time_limit),
            SparseClassifier::LinearSvm(m) => m.fit_within(x, y, classes, time_limit),
        }
    }
}
