//! An in-memory table of numeric features with a target.

use lepton_core::{Dataset, Schema, Target, Task};

use crate::error::{DataError, Result};

/// Rows of `f32` features (row-major) with one target each: the in-memory [`Dataset`].
#[derive(Debug, Clone, PartialEq)]
pub struct TabularDataset {
    schema: Schema,
    features: Vec<f32>,
    targets: Vec<Target>,
}

impl TabularDataset {
    /// Builds a dataset, checking that the shapes agree, every feature is finite and every
    /// target fits the task.
    pub fn new(schema: Schema, features: Vec<f32>, targets: Vec<Target>) -> Result<Self> {
        Self::checked(schema, features, targets, false)
    }

    /// [`new`](Self::new), but NaN marks a missing value (for models that split on missing
    /// values themselves, such as boosted trees); infinities are still refused.
    pub fn with_missing(schema: Schema, features: Vec<f32>, targets: Vec<Target>) -> Result<Self> {
        Self::checked(schema, features, targets, true)
    }

    fn checked(
        schema: Schema,
        features: Vec<f32>,
        targets: Vec<Target>,
        missing: bool,
    ) -> Result<Self> {
        let width = schema.features.len();
        if width == 0 {
            return Err(DataError::InvalidInput("no feature columns".into()));
        }
        if features.len() != width * targets.len() {
            return Err(DataError::InvalidInput(format!(
                "{} feature values for {} rows of {width} features",
                features.len(),
                targets.len()
            )));
        }
        if let Some(i) = features
            .iter()
            .position(|v| !(v.is_finite() || missing && v.is_nan()))
        {
            return Err(DataError::InvalidInput(format!(
                "row {}, column `{}`: value {} is not finite",
                i / width,
                schema.features[i % width],
                features[i]
            )));
        }
        for (row, t) in targets.iter().enumerate() {
            let ok = match (&schema.task, t) {
                (Task::Classification { classes }, Target::Class(c)) => *c < classes.len(),
                (Task::Regression, Target::Value(v)) => v.is_finite(),
                _ => false,
            };
            if !ok {
                return Err(DataError::InvalidInput(format!(
                    "row {row}: target {t:?} does not fit the task {:?}",
                    schema.task
                )));
            }
        }
        Ok(TabularDataset {
            schema,
            features,
            targets,
        })
    }

    /// Builds a dataset from rows of features (each as long as the schema's feature list).
    pub fn from_rows(schema: Schema, rows: Vec<Vec<f32>>, targets: Vec<Target>) -> Result<Self> {
        let width = schema.features.len();
        if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
            return Err(DataError::InvalidInput(format!(
                "row {i} has {} values, the schema {width} features",
                row.len()
            )));
        }
        TabularDataset::new(schema, rows.concat(), targets)
    }

    /// Builds a dataset from a `[rows, features]` array (any memory layout).
    pub fn from_ndarray(
        schema: Schema,
        features: ndarray::ArrayView2<'_, f32>,
        targets: Vec<Target>,
    ) -> Result<Self> {
        if features.ncols() != schema.features.len() {
            return Err(DataError::InvalidInput(format!(
                "the array has {} columns, the schema {} features",
                features.ncols(),
                schema.features.len()
            )));
        }
        TabularDataset::new(schema, features.iter().copied().collect(), targets)
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.schema.features.len()
    }

    /// All features, row-major.
    pub fn feature_values(&self) -> &[f32] {
        &self.features
    }

    /// All targets, in row order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The rows at `indices`, in that order (indices past the end are refused).
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        let w = self.n_features();
        let mut features = Vec::with_capacity(indices.len() * w);
        let mut targets = Vec::with_capacity(indices.len());
        for &i in indices {
            let t = self.targets.get(i).ok_or_else(|| {
                DataError::InvalidInput(format!("row {i} is past the end ({})", self.len()))
            })?;
            features.extend_from_slice(&self.features[i * w..(i + 1) * w]);
            targets.push(*t);
        }
        Ok(TabularDataset {
            schema: self.schema.clone(),
            features,
            targets,
        })
    }

    /// The rows of `self` followed by those of `other` (same schema required).
    pub fn concat(&self, other: &Self) -> Result<Self> {
        if self.schema != other.schema {
            return Err(DataError::InvalidInput(
                "cannot concatenate datasets with different schemas".into(),
            ));
        }
        let mut out = self.clone();
        out.features.extend_from_slice(&other.features);
        out.targets.extend_from_slice(&other.targets);
        Ok(out)
    }

    /// The same rows with their features replaced (same shape required).
    pub(crate) fn with_features(&self, features: Vec<f32>) -> Result<Self> {
        TabularDataset::new(self.schema.clone(), features, self.targets.clone())
    }
}

impl Dataset for TabularDataset {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn len(&self) -> usize {
        self.targets.len()
    }

    fn features(&self, index: usize) -> Option<&[f32]> {
        let w = self.n_features();
        self.features.get(index * w..(index + 1) * w)
    }

    fn target(&self, index: usize) -> Option<Target> {
        self.targets.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema {
            features: vec!["a".into(), "b".into()],
            target: "y".into(),
            task: Task::Classification {
                classes: vec!["no".into(), "yes".into()],
            },
        }
    }

    #[test]
    fn in_memory_constructors_agree() {
        let targets = vec![Target::Class(0), Target::Class(1)];
        let rows = TabularDataset::from_rows(
            schema(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]],
            targets.clone(),
        )
        .unwrap();
        let array = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]];
        let from_array =
            TabularDataset::from_ndarray(schema(), array.view(), targets.clone()).unwrap();
        assert_eq!(rows, from_array);
        // A transposed (column-major) view still reads row by row.
        let t = ndarray::array![[1.0f32, 3.0], [2.0, 4.0]];
        assert_eq!(
            TabularDataset::from_ndarray(schema(), t.t(), targets.clone()).unwrap(),
            rows
        );
        assert!(
            TabularDataset::from_rows(schema(), vec![vec![1.0]], vec![Target::Class(0)]).is_err()
        );
        assert!(
            TabularDataset::from_rows(schema(), vec![vec![1.0, f32::NAN]], vec![Target::Class(0)])
                .is_err()
        );
        assert!(
            TabularDataset::from_rows(schema(), vec![vec![1.0, 2.0]], vec![Target::Class(5)])
                .is_err()
        );
        assert!(
            TabularDataset::from_ndarray(
                schema(),
                ndarray::Array2::zeros((1, 3)).view(),
                vec![Target::Class(0)]
            )
            .is_err()
        );
    }
}
