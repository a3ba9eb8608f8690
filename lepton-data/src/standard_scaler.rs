//! Standard scaling: zero mean and unit variance per feature, learnt from training rows.

use serde::{Deserialize, Serialize};

use lepton_core::Dataset;

use crate::error::{DataError, Result};
use crate::tabular::TabularDataset;

/// Scales every feature to zero mean and unit variance. Fit it on training rows only; the
/// fitted scaler then applies the same transform to any row.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardScaler;

impl StandardScaler {
    /// Learns each feature's mean and standard deviation from `train`.
    pub fn fit(&self, train: &TabularDataset) -> Result<FittedStandardScaler> {
        let n = train.len();
        if n == 0 {
            return Err(DataError::InvalidInput(
                "cannot fit a scaler on no rows".into(),
            ));
        }
        let w = train.n_features();
        let values = train.feature_values();
        let (mean, scale) = (0..w)
            .map(|j| mean_and_scale(values.iter().skip(j).step_by(w).map(|&x| f64::from(x))))
            .unzip();
        tracing::debug!(features = w, rows = n, "fitted standard scaler");
        Ok(FittedStandardScaler {
            features: train.schema().features.clone(),
            mean,
            scale,
        })
    }
}

/// The mean and standard deviation of `values` (population, Welford's update: stable for
/// large offsets such as wine's proline, around 1000), with a standard deviation of 1 for a
/// constant column, which then stays constant (at 0) rather than being divided by zero.
/// Shared by [`StandardScaler`] and the preprocessor's standard scaling.
pub(crate) fn mean_and_scale(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut n, mut mean, mut m2) = (0usize, 0.0f64, 0.0f64);
    for x in values {
        n += 1;
        let delta = x - mean;
        mean += delta / n as f64;
        m2 += delta * (x - mean);
    }
    let sd = if n > 0 { (m2 / n as f64).sqrt() } else { 0.0 };
    (mean, if sd > 1e-12 { sd } else { 1.0 })
}

/// A fitted [`StandardScaler`]: per-feature means and scales, serializable so that it travels
/// inside a model artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedStandardScaler {
    features: Vec<String>,
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl FittedStandardScaler {
    /// The feature names the scaler was fitted on, in order.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// The learnt means.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The learnt standard deviations (1 for constant features).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// Scales every row of `data`, whose columns must be the ones fitted on.
    pub fn transform(&self, data: &TabularDataset) -> Result<TabularDataset> {
        if data.schema().features != self.features {
            return Err(DataError::InvalidInput(format!(
                "the scaler was fitted on columns [{}], got [{}]",
                self.features.join(", "),
                data.schema().features.join(", ")
            )));
        }
        data.with_features(self.transform_rows(data.feature_values())?)
    }

    /// Scales row-major `values` whose rows have the fitted feature count.
    pub fn transform_rows(&self, values: &[f32]) -> Result<Vec<f32>> {
        let w = self.mean.len();
        if w == 0 || !values.len().is_multiple_of(w) {
            return Err(DataError::InvalidInput(format!(
                "{} values do not make rows of {w} features",
                values.len()
            )));
        }
        Ok(values
            .chunks_exact(w)
            .flat_map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(j, &x)| ((f64::from(x) - self.mean[j]) / self.scale[j]) as f32)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::{Schema, Target, Task};
    use proptest::prelude::*;

    fn table(values: Vec<f32>, width: usize) -> TabularDataset {
        let rows = values.len() / width;
        let schema = Schema {
            features: (0..width).map(|j| format!("f{j}")).collect(),
            target: "y".into(),
            task: Task::Regression,
        };
        TabularDataset::new(schema, values, vec![Target::Value(0.0); rows]).unwrap()
    }

    #[test]
    fn constant_column_maps_to_zero() {
        let d = table(vec![5.0, 1.0, 5.0, 2.0, 5.0, 3.0], 2);
        let s = StandardScaler.fit(&d).unwrap();
        let t = s.transform(&d).unwrap();
        assert_eq!(t.feature_values()[0], 0.0);
        assert_eq!(s.scale()[0], 1.0);
    }

    #[test]
    fn wrong_width_is_refused() {
        let s = StandardScaler.fit(&table(vec![1.0, 2.0], 2)).unwrap();
        assert!(s.transform_rows(&[1.0, 2.0, 3.0]).is_err());
        assert!(s.transform(&table(vec![1.0, 2.0, 3.0], 3)).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let s = StandardScaler
            .fit(&table(vec![1.0, 2.0, 3.0, 5.0], 2))
            .unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            serde_json::from_str::<FittedStandardScaler>(&json).unwrap(),
            s
        );
    }

    proptest! {
        #[test]
        fn scaled_training_rows_have_mean_0_and_std_1(
            rows in proptest::collection::vec(proptest::collection::vec(-1e4f32..1e4, 3), 2..60)
        ) {
            let values: Vec<f32> = rows.iter().flatten().copied().collect();
            let d = table(values, 3);
            let s = StandardScaler.fit(&d).unwrap();
            let t = s.transform(&d).unwrap();
            let n = d.len() as f64;
            for j in 0..3 {
                let col: Vec<f64> = t.feature_values().iter().skip(j).step_by(3).map(|&x| f64::from(x)).collect();
                let mean = col.iter().sum::<f64>() / n;
                let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                prop_assert!(mean.abs() < 1e-3, "mean {mean}");
                // Constant columns stay at 0; every other column gets unit variance.
                prop_assert!(var < 1e-6 || (var - 1.0).abs() < 1e-3, "var {var}");
            }
        }
    }
}
