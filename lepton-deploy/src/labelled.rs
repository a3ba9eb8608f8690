//! Labelled rows in a model's encoded input space: the feedback a server collects, and the
//! replay sample of training rows an artifact can carry so that fine-tuning on feedback
//! does not forget the training distribution.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use lepton_core::{Dataset, Error, Schema, Target, Task};

/// Encoded rows (all of one width) with their targets. A [`Dataset`] whose feature columns
/// are named `x0`, `x1`, ... (they are model inputs, not raw columns).
#[derive(Debug, Clone, PartialEq)]
pub struct Examples {
    schema: Schema,
    features: Vec<f32>,
    targets: Vec<Target>,
}

/// The widest rows a stored sample may declare (a model input far wider than any Lepton
/// trains); checked before anything of that width is allocated.
const MAX_WIDTH: usize = 1 << 20;

/// What a stored sample may be: a width in 1..=[`MAX_WIDTH`] and at least one row.
fn stored_shape(width: usize, rows: usize) -> Result<(), String> {
    if !(1..=MAX_WIDTH).contains(&width) {
        return Err(format!("a width of {width} is outside 1..={MAX_WIDTH}"));
    }
    if rows == 0 {
        return Err("no rows".into());
    }
    Ok(())
}

/// How examples are stored (`replay.json` in an artifact): a class index or a value per row.
#[derive(Serialize, Deserialize)]
struct Stored {
    task: Task,
    width: usize,
    features: Vec<f32>,
    targets: Vec<f64>,
}

impl Examples {
    /// No rows yet, of `width` inputs, for `task`.
    pub fn empty(task: Task, width: usize) -> Self {
        Examples {
            schema: Schema {
                features: (0..width).map(|i| format!("x{i}")).collect(),
                target: "target".into(),
                task,
            },
            features: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// A random sample of at most `max_rows` rows of `data` (features as the model takes
    /// them), drawn without replacement with `seed`; rows with a missing value (NaN, which
    /// only models that split on missing values take) are left out.
    pub fn sample(data: &dyn Dataset, max_rows: usize, seed: u64) -> lepton_core::Result<Self> {
        let schema = data.schema();
        let mut out = Examples::empty(schema.task.clone(), schema.features.len());
        let n = max_rows.min(data.len());
        let mut rows = sample(&mut StdRng::seed_from_u64(seed), data.len(), n).into_vec();
        rows.sort_unstable();
        for i in rows {
            let (Some(x), Some(y)) = (data.features(i), data.target(i)) else {
                return Err(Error::InvalidInput(format!("row {i} is missing")));
            };
            if x.iter().any(|v| v.is_nan()) {
                continue;
            }
            out.push(x, y)?;
        }
        Ok(out)
    }

    /// Adds one row; refuses a row of another width, a non-finite value, or a target that
    /// does not fit the task.
    pub fn push(&mut self, row: &[f32], target: Target) -> lepton_core::Result<()> {
        let width = self.width();
        if row.len() != width {
            return Err(Error::InvalidInput(format!(
                "a row of {} values, the examples have {width}",
                row.len()
            )));
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidInput("a row has a non-finite value".into()));
        }
        let ok = match (&self.schema.task, target) {
            (Task::Classification { classes }, Target::Class(c)) => c < classes.len(),
            (Task::Regression, Target::Value(v)) => v.is_finite(),
            _ => false,
        };
        if !ok {
            return Err(Error::InvalidInput(format!(
                "target {target:?} does not fit {:?}",
                self.schema.task
            )));
        }
        self.features.extend_from_slice(row);
        self.targets.push(target);
        Ok(())
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        let mut out = Examples::empty(self.schema.task.clone(), self.width());
        for &i in indices {
            if let (Some(x), Some(y)) = (self.features(i), self.target(i)) {
                out.features.extend_from_slice(x);
                out.targets.push(y);
            }
        }
        out
    }

    /// Every row's inputs in `columns` (clamped to the width), with its target: the slice
    /// of the input one member of an ensemble reads.
    pub fn columns(&self, columns: std::ops::Range<usize>) -> Self {
        let width = self.width();
        let columns = columns.start.min(width)..columns.end.min(width);
        let mut out = Examples::empty(self.schema.task.clone(), columns.len());
        if width > 0 {
            for row in self.features.chunks(width) {
                out.features.extend_from_slice(&row[columns.clone()]);
            }
            out.targets = self.targets.clone();
        }
        out
    }

    /// The first `at` rows and the rest.
    pub fn split_at(&self, at: usize) -> (Self, Self) {
        let at = at.min(self.len());
        let (x, y) = self.features.split_at(at * self.width());
        let part = |features: &[f32], targets: &[Target]| Examples {
            schema: self.schema.clone(),
            features: features.to_vec(),
            targets: targets.to_vec(),
        };
        (part(x, &self.targets[..at]), part(y, &self.targets[at..]))
    }

    /// Appends every row of `other` (same width and task).
    pub fn extend(&mut self, other: &Examples) -> lepton_core::Result<()> {
        if other.schema.task != self.schema.task || other.width() != self.width() {
            return Err(Error::InvalidInput(
                "examples of another width or task".into(),
            ));
        }
        self.features.extend_from_slice(&other.features);
        self.targets.extend_from_slice(&other.targets);
        Ok(())
    }

    /// Drops the oldest rows so that at most `max_rows` remain.
    pub fn keep_last(&mut self, max_rows: usize) {
        let extra = self.len().saturating_sub(max_rows);
        if extra > 0 {
            self.features.drain(..extra * self.width());
            self.targets.drain(..extra);
        }
    }

    /// Inputs per row.
    pub fn width(&self) -> usize {
        self.schema.features.len()
    }

    /// Every row's inputs, row-major.
    pub fn feature_values(&self) -> &[f32] {
        &self.features
    }

    /// Every row's target.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// As stored in an artifact; refused if [`from_json`](Self::from_json) would refuse it.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, String> {
        stored_shape(self.width(), self.len())?;
        serde_json::to_vec(&Stored {
            task: self.schema.task.clone(),
            width: self.width(),
            features: self.features.clone(),
            targets: self
                .targets
                .iter()
                .map(|t| match *t {
                    Target::Class(c) => c as f64,
                    Target::Value(v) => v,
                })
                .collect(),
        })
        .map_err(|e| e.to_string())
    }

    /// Read back from [`to_json`](Self::to_json), checking the width (at most 2^20) and the
    /// row count (at least one) before allocating, then every row.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let stored: Stored = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        stored_shape(stored.width, stored.targets.len())?;
        if stored.width.checked_mul(stored.targets.len()) != Some(stored.features.len()) {
            return Err(format!(
                "{} values do not make {} rows of {}",
                stored.features.len(),
                stored.targets.len(),
                stored.width
            ));
        }
        let mut out = Examples::empty(stored.task, stored.width);
        for (row, &t) in stored.features.chunks(stored.width).zip(&stored.targets) {
            let target = match &out.schema.task {
                Task::Classification { .. } if t >= 0.0 && t.fract() == 0.0 => {
                    Target::Class(t as usize)
                }
                Task::Classification { .. } => return Err(format!("class {t} is not an index")),
                Task::Regression => Target::Value(t),
            };
            out.push(row, target).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }
}

impl Dataset for Examples {
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn len(&self) -> usize {
        self.targets.len()
    }
    fn features(&self, index: usize) -> Option<&[f32]> {
        let w = self.width();
        self.features.get(index * w..(index + 1) * w)
    }
    fn target(&self, index: usize) -> Option<Target> {
        self.targets.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_classes() -> Task {
        Task::Classification {
            classes: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn rows_are_checked_selected_trimmed_and_round_trip() {
        let mut e = Examples::empty(two_classes(), 2);
        e.push(&[1.0, 2.0], Target::Class(0)).unwrap();
        e.push(&[3.0, 4.0], Target::Class(1)).unwrap();
        e.push(&[5.0, 6.0], Target::Class(1)).unwrap();
        assert!(e.push(&[1.0], Target::Class(0)).is_err());
        assert!(e.push(&[f32::NAN, 1.0], Target::Class(0)).is_err());
        assert!(e.push(&[1.0, 1.0], Target::Class(2)).is_err());
        assert!(e.push(&[1.0, 1.0], Target::Value(1.0)).is_err());
        assert_eq!(e.len(), 3);
        let (head, tail) = e.split_at(1);
        assert_eq!(
            (head.len(), tail.feature_values()),
            (1, &[3.0, 4.0, 5.0, 6.0][..])
        );
        let s = e.select(&[2, 0]);
        assert_eq!(s.feature_values(), &[5.0, 6.0, 1.0, 2.0]);
        assert_eq!(s.targets(), &[Target::Class(1), Target::Class(0)]);
        let right = e.columns(1..2);
        assert_eq!(right.feature_values(), &[2.0, 4.0, 6.0]);
        assert_eq!((right.width(), right.targets()), (1, e.targets()));
        assert_eq!(e.columns(1..9).width(), 1);
        let back = Examples::from_json(&e.to_json().unwrap()).unwrap();
        assert_eq!(back, e);
        e.keep_last(1);
        assert_eq!(e.feature_values(), &[5.0, 6.0]);
        let bad =
            br#"{"task": {"kind": "regression"}, "width": 2, "features": [1.0], "targets": [1.0]}"#;
        assert!(Examples::from_json(bad).is_err());
    }

    #[test]
    fn stored_widths_and_row_counts_are_bounded_before_allocating() {
        let stored = |width: &str, features: &str, targets: &str| {
            let text = format!(
                r#"{{"task": {{"kind": "regression"}}, "width": {width}, "features": {features}, "targets": {targets}}}"#
            );
            Examples::from_json(text.as_bytes())
        };
        assert!(stored("1", "[2.0]", "[1.0]").is_ok());
        // No rows makes width * rows 0 for any width: refused before `width` names are made.
        let e = stored("1000000000", "[]", "[]").unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = stored("1048577", "[]", "[]").unwrap_err();
        assert!(e.contains("outside"), "{e}");
        assert!(stored("0", "[]", "[1.0]").is_err());
        assert!(stored("1", "[]", "[]").unwrap_err().contains("no rows"));
        // A width whose product with the row count would wrap is refused by the bound.
        let e = stored(&usize::MAX.to_string(), "[]", "[1.0, 2.0]").unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = stored("1048576", "[1.0]", &format!("[{}]", ["1.0"; 2].join(","))).unwrap_err();
        assert!(e.contains("do not make"), "{e}");
    }

    #[test]
    fn what_would_not_read_back_is_not_written() {
        assert!(
            Examples::empty(two_classes(), 2).to_json().is_err(),
            "no rows"
        );
        let mut wide = Examples::empty(two_classes(), MAX_WIDTH + 1);
        wide.push(&vec![0.0; MAX_WIDTH + 1], Target::Class(0))
            .unwrap();
        let e = wide.to_json().unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }

    #[test]
    fn a_sample_draws_distinct_rows() {
        let mut all = Examples::empty(Task::Regression, 1);
        for i in 0..100 {
            all.push(&[i as f32], Target::Value(f64::from(i))).unwrap();
        }
        let s = Examples::sample(&all, 10, 7).unwrap();
        assert_eq!(s.len(), 10);
        let mut seen: Vec<f32> = s.feature_values().to_vec();
        seen.dedup();
        assert_eq!(seen.len(), 10);
        for i in 0..10 {
            assert_eq!(
                s.target(i),
                Some(Target::Value(f64::from(s.features(i).unwrap()[0])))
            );
        }
        assert_eq!(Examples::sample(&all, 1000, 7).unwrap().len(), 100);
    }
}
