//! The model stage: configured estimators that fit into predictors.

use crate::context::TrialContext;
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// A borrowed row-major matrix of features, checked for shape and finiteness.
#[derive(Debug, Clone, Copy)]
pub struct Features<'a> {
    values: &'a [f32],
    n_features: usize,
}

impl<'a> Features<'a> {
    /// Views `values` as rows of `n_features`; refuses a ragged length or a non-finite value.
    pub fn new(values: &'a [f32], n_features: usize) -> Result<Self> {
        Self::checked(values, n_features, false)
    }

    /// [`new`](Self::new), but NaN marks a missing value, for models that split on missing
    /// values themselves (boosted trees); infinities are still refused.
    pub fn with_missing(values: &'a [f32], n_features: usize) -> Result<Self> {
        Self::checked(values, n_features, true)
    }

    /// [`with_missing`](Self::with_missing) when `missing` (the model takes missing values),
    /// else [`new`](Self::new): for callers that learn it from the model at run time.
    pub fn checked(values: &'a [f32], n_features: usize, missing: bool) -> Result<Self> {
        if n_features == 0 {
            return Err(Error::InvalidInput("rows need at least one feature".into()));
        }
        if !values.len().is_multiple_of(n_features) {
            return Err(Error::InvalidInput(format!(
                "{} values do not make rows of {n_features} features",
                values.len()
            )));
        }
        if let Some(i) = values
            .iter()
            .position(|v| !(v.is_finite() || missing && v.is_nan()))
        {
            return Err(Error::InvalidInput(format!(
                "row {}, feature {}: value {} is not finite",
                i / n_features,
                i % n_features,
                values[i]
            )));
        }
        Ok(Features { values, n_features })
    }

    /// The values, row-major.
    pub fn values(&self) -> &'a [f32] {
        self.values
    }

    /// Features per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.values.len() / self.n_features
    }
}

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// A class index with the probability of every class.
    Class {
        /// The most probable class.
        index: usize,
        /// Probability of each class.
        probabilities: Vec<f32>,
    },
    /// A real value.
    Value(f64),
}

impl Prediction {
    /// A classification: `probabilities` and the most probable class (the first of equals).
    pub fn most_probable(probabilities: Vec<f32>) -> Prediction {
        let index = probabilities.iter().enumerate().fold(0, |best, (i, p)| {
            if *p > probabilities[best] { i } else { best }
        });
        Prediction::Class {
            index,
            probabilities,
        }
    }

    /// The predicted class, for classifications.
    pub fn class(&self) -> Option<usize> {
        match self {
            Prediction::Class { index, .. } => Some(*index),
            Prediction::Value(_) => None,
        }
    }
}

/// A fitted predictor.
pub trait Predict {
    /// One prediction per row of `x`.
    fn predict(&self, x: Features<'_>) -> Result<Vec<Prediction>>;
}

/// An untrained, configured estimator. `fit` trains on `train`, scores on `valid` after each
/// step, reports those scores through `ctx`, and stops with [`Error::Pruned`] when
/// `ctx.should_prune()` says so: that is how any model takes part in multi-fidelity search.
///
/// A model that always predicts the most frequent training class:
///
/// ```
/// use lepton_core::*;
///
/// struct Majority;
/// struct FittedMajority(usize, usize);
///
/// impl Predict for FittedMajority {
///     fn predict(&self, x: Features<'_>) -> Result<Vec<Prediction>> {
///         let mut p = vec![0.0; self.1];
///         p[self.0] = 1.0;
///         Ok(vec![Prediction::Class { index: self.0, probabilities: p }; x.n_rows()])
///     }
/// }
///
/// impl Model for Majority {
///     type Fitted = FittedMajority;
///     fn fit(&self, train: &dyn Dataset, _: &dyn Dataset, ctx: &mut dyn TrialContext)
///         -> Result<FittedMajority>
///     {
///         let k = train.schema().n_classes().ok_or(Error::InvalidInput("not a classification".into()))?;
///         let mut counts = vec![0usize; k];
///         for i in 0..train.len() {
///             if let Some(Target::Class(c)) = train.target(i) { counts[c] += 1; }
///         }
///         let best = (0..k).max_by_key(|&c| counts[c]).unwrap_or(0);
///         ctx.report(1, counts[best] as f64 / train.len().max(1) as f64)?;
///         Ok(FittedMajority(best, k))
///     }
/// }
/// ```
pub trait Model {
    /// The predictor training produces.
    type Fitted: Predict;
    /// Trains on `train`, validating on `valid`.
    fn fit(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> Result<Self::Fitted>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_probable_class_is_the_first_of_equals() {
        assert_eq!(
            Prediction::most_probable(vec![0.2, 0.5, 0.3]).class(),
            Some(1)
        );
        assert_eq!(
            Prediction::most_probable(vec![0.4, 0.2, 0.4]).class(),
            Some(0)
        );
        assert_eq!(Prediction::most_probable(vec![0.5, 0.5]).class(), Some(0));
    }
}
