//! A linear classifier of sparse rows (TF-IDF features of texts), whichever loss trained it:
//! a weight row and an intercept per class, the class scores' softmax as probabilities. Its
//! trainers are [`SparseLogistic`](crate::SparseLogistic) and
//! [`SparseLinearSvm`](crate::SparseLinearSvm), chosen through a
//! [`SparseClassifier`](crate::SparseClassifier); the checks they share are here.

use lepton_data::SparseRows;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// A trained linear classifier of sparse rows: a weight row and an intercept per class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredSparseLinear")]
pub struct FittedSparseLinear {
    classes: usize,
    columns: usize,
    /// `classes x columns`, row-major.
    weights: Vec<f32>,
    intercepts: Vec<f32>,
}

/// What a [`FittedSparseLinear`] stores, checked when read back.
#[derive(Deserialize)]
struct StoredSparseLinear {
    classes: usize,
    columns: usize,
    weights: Vec<f32>,
    intercepts: Vec<f32>,
}

impl TryFrom<StoredSparseLinear> for FittedSparseLinear {
    type Error = String;

    fn try_from(s: StoredSparseLinear) -> std::result::Result<Self, String> {
        if s.classes < 2
            || s.intercepts.len() != s.classes
            || Some(s.weights.len()) != s.classes.checked_mul(s.columns)
        {
            return Err(format!(
                "{} weights and {} intercepts for {} classes of {} columns",
                s.weights.len(),
                s.intercepts.len(),
                s.classes,
                s.columns
            ));
        }
        Ok(FittedSparseLinear {
            classes: s.classes,
            columns: s.columns,
            weights: s.weights,
            intercepts: s.intercepts,
        })
    }
}

impl FittedSparseLinear {
    /// A model of `weights` (`classes x columns`, row-major, as `f64`) and `intercepts`.
    pub(crate) fn new(columns: usize, weights: &[f64], intercepts: &[f64]) -> Self {
        FittedSparseLinear {
            classes: intercepts.len(),
            columns,
            weights: weights.iter().map(|&w| w as f32).collect(),
            intercepts: intercepts.iter().map(|&b| b as f32).collect(),
        }
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The number of input columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Each row's class probabilities: the softmax of the class scores. An error when the
    /// rows have other columns than it was trained on.
    pub fn predict_proba(&self, x: &SparseRows) -> Result<Vec<Vec<f32>>> {
        if x.columns != self.columns || x.indices.iter().any(|&j| j as usize >= self.columns) {
            return Err(invalid(format!(
                "rows of {} columns for a model of {}",
                x.columns, self.columns
            )));
        }
        let d = self.columns;
        Ok((0..x.len())
            .map(|r| {
                let (columns, values) = x.row(r);
                let scores: Vec<f32> = (0..self.classes)
                    .map(|class| {
                        let row = &self.weights[class * d..(class + 1) * d];
                        self.intercepts[class]
                            + columns
                                .iter()
                                .zip(values)
                                .map(|(&j, &v)| row[j as usize] * v)
                                .sum::<f32>()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exp.iter().sum();
                exp.into_iter().map(|e| e / sum).collect()
            })
            .collect())
    }
}

/// Refuses a trainer's settings that cannot train: `c` not positive and finite, no
/// iterations, a tolerance not positive and finite.
pub(crate) fn check_settings(c: f64, iterations: u64, tolerance: f64) -> Result<()> {
    if !(c.is_finite() && c > 0.0) {
        return Err(invalid(format!("C must be positive and finite, not {c}")));
    }
    if iterations == 0 || !(tolerance.is_finite() && tolerance > 0.0) {
        return Err(invalid(format!(
            "{iterations} iterations at tolerance {tolerance}: both must be positive"
        )));
    }
    Ok(())
}

/// Refuses training data no trainer can use: rows and classes of other lengths, no rows, fewer
/// than 2 classes, a class out of range, a value that is not finite, a column out of range.
pub(crate) fn check_training(x: &SparseRows, y: &[usize], classes: usize) -> Result<()> {
    if x.len() != y.len() || x.is_empty() {
        return Err(invalid(format!(
            "{} rows and {} classes given",
            x.len(),
            y.len()
        )));
    }
    if classes < 2 {
        return Err(invalid(format!("{classes} classes: at least 2 are needed")));
    }
    if let Some(bad) = y.iter().find(|&&c| c >= classes) {
        return Err(invalid(format!("class {bad} of {classes}")));
    }
    if let Some(bad) = x.values.iter().find(|v| !v.is_finite()) {
        return Err(invalid(format!("a feature value of {bad}")));
    }
    if x.indices.iter().any(|&j| j as usize >= x.columns) {
        return Err(invalid(format!(
            "a column beyond the {} declared",
            x.columns
        )));
    }
    Ok(())
}

pub(crate) fn invalid(message: String) -> ModelError {
    ModelError::InvalidData(message)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lepton_data::{Analyzer, FittedTfidf, Tfidf};

    /// The TF-IDF word vocabulary of `texts` (every word kept) and their rows.
    pub(crate) fn word_rows(texts: &[&str]) -> (FittedTfidf, SparseRows) {
        let tfidf = Tfidf {
            analyzers: vec![Analyzer::Words { min: 1, max: 1 }],
            min_df: 1,
            ..Tfidf::default()
        }
        .fit(texts)
        .unwrap();
        let rows = tfidf.transform(texts);
        (tfidf, rows)
    }

    /// Sparse rows of `(column, value)` pairs.
    pub(crate) fn sparse(rows: &[&[(u32, f32)]], columns: usize) -> SparseRows {
        let mut x = SparseRows {
            offsets: vec![0],
            columns,
            ..SparseRows::default()
        };
        for row in rows {
            for &(j, v) in *row {
                x.indices.push(j);
                x.values.push(v);
            }
            x.offsets.push(x.indices.len());
        }
        x
    }

    #[test]
    fn probabilities_are_the_softmax_of_the_scores() {
        let model = FittedSparseLinear::new(2, &[1.0, 0.0, 0.0, 2.0], &[0.0, -1.0]);
        let p = model
            .predict_proba(&sparse(&[&[(0, 1.0)], &[(1, 1.0)], &[]], 2))
            .unwrap();
        let expected =
            |a: f32, b: f32| [a.exp() / (a.exp() + b.exp()), b.exp() / (a.exp() + b.exp())];
        for (row, (a, b)) in p.iter().zip([(1.0, -1.0), (0.0, 1.0), (0.0, -1.0)]) {
            let e = expected(a, b);
            assert!(
                (row[0] - e[0]).abs() < 1e-6 && (row[1] - e[1]).abs() < 1e-6,
                "{row:?}"
            );
        }
        assert!(model.predict_proba(&sparse(&[&[(2, 1.0)]], 3)).is_err());
    }

    #[test]
    fn a_stored_model_of_inconsistent_sizes_is_refused() {
        let model = FittedSparseLinear::new(2, &[1.0, 0.0, 0.0, 2.0], &[0.0, -1.0]);
        let mut json = serde_json::to_value(&model).unwrap();
        assert_eq!(
            serde_json::from_value::<FittedSparseLinear>(json.clone()).unwrap(),
            model
        );
        json["columns"] = 3.into();
        let e = serde_json::from_value::<FittedSparseLinear>(json).unwrap_err();
        assert!(e.to_string().contains("4 weights"), "{e}");
    }

    #[test]
    fn training_data_no_trainer_can_use_is_refused() {
        let x = sparse(&[&[(0, 1.0)], &[(1, 1.0)]], 2);
        assert!(check_training(&x, &[0, 1], 2).is_ok());
        assert!(check_training(&x, &[0], 2).is_err());
        assert!(check_training(&x, &[0, 1], 1).is_err());
        assert!(check_training(&x, &[0, 2], 2).is_err());
        let nan = sparse(&[&[(0, f32::NAN)], &[(1, 1.0)]], 2);
        assert!(check_training(&nan, &[0, 1], 2).is_err());
        let beyond = sparse(&[&[(5, 1.0)], &[(1, 1.0)]], 2);
        assert!(check_training(&beyond, &[0, 1], 2).is_err());
    }
}
